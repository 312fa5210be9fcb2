//! The message box: Enter sends, Shift+Enter breaks the line, typing is announced
//! at most once per 2 s (the server's limit).

use confab_shared::validate::MAX_TEXT_CHARS;
use leptos::ev::KeyboardEvent;
use leptos::prelude::*;

use crate::components::toasts::Toasts;
use crate::util::now_ms;

/// The server drops `room.typing` more often than this; no point sending them.
const TYPING_EVERY_MS: f64 = 2_000.0;
/// The character counter appears this close to the limit.
const COUNTER_FROM: usize = MAX_TEXT_CHARS - 500;

#[component]
pub fn Composer(
    /// The accessible name of the box, e.g. "Message #lobby".
    #[prop(into)]
    label: String,
    #[prop(into)] placeholder: String,
    /// Sends the text; returns `false` when it was refused, so the box keeps it.
    on_send: Callback<String, bool>,
    /// Called (throttled) while the user types.
    #[prop(optional)]
    on_typing: Option<Callback<()>>,
    /// Whether sending is impossible right now (no connection).
    #[prop(into)]
    offline: Signal<bool>,
    /// Whether sending must wait (slow mode); the page says why next to the box.
    #[prop(optional, into)]
    held: Signal<bool>,
) -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    let text = RwSignal::new(String::new());
    let last_typing = StoredValue::new(0.0_f64);
    let send = move || {
        let value = text.get_untracked();
        if value.trim().is_empty() || held.get_untracked() {
            return;
        }
        if offline.get_untracked() {
            toasts.error("Not connected to the server. Your message is kept; send it once reconnected.");
            return;
        }
        if on_send.run(value) {
            text.set(String::new());
            last_typing.set_value(0.0);
        }
    };
    let on_input = move |ev| {
        let value = event_target_value(&ev);
        let typing = !value.trim().is_empty();
        text.set(value);
        if let Some(on_typing) = on_typing
            && typing
            && now_ms() - last_typing.get_value() >= TYPING_EVERY_MS
        {
            last_typing.set_value(now_ms());
            on_typing.run(());
        }
    };
    let on_keydown = move |ev: KeyboardEvent| {
        // IME composition uses Enter to confirm a candidate; that must not send.
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };
    let count = move || text.with(|t| t.chars().count());
    view! {
        <form
            class="composer"
            on:submit=move |ev| {
                ev.prevent_default();
                send();
            }
        >
            <label class="composer-field">
                <span class="sr-only">{label}</span>
                <textarea
                    data-testid="composer-input"
                    rows="1"
                    placeholder=placeholder
                    prop:value=move || text.get()
                    on:input=on_input
                    on:keydown=on_keydown
                ></textarea>
            </label>
            <Show when=move || { count() >= COUNTER_FROM }>
                <span
                    class="char-count"
                    class:over=move || { count() > MAX_TEXT_CHARS }
                    data-testid="composer-count"
                >
                    {move || format!("{}/{MAX_TEXT_CHARS}", count())}
                </span>
            </Show>
            <button
                type="submit"
                class="primary"
                data-testid="composer-send"
                disabled=move || offline.get() || held.get()
            >
                "Send"
            </button>
        </form>
    }
}
