//! The message box: Enter sends, Shift+Enter breaks the line, typing is announced
//! at most once per 2 s (the server's limit).
//!
//! In a room, `@` and the start of a name offers the room's members whose names start so
//! (at most [`SUGGESTED`]): arrows choose, Enter or Tab puts `@name ` in place of what was
//! typed, Escape closes the list. The box keeps focus throughout and points at the chosen
//! name with `aria-activedescendant`, as the quick switcher does.

use confab_shared::validate::MAX_TEXT_CHARS;
use leptos::ev::KeyboardEvent;
use leptos::html;
use leptos::prelude::*;

use crate::components::toasts::Toasts;
use crate::session::Session;
use crate::util::now_ms;

/// Names the `@` list offers at most.
pub const SUGGESTED: usize = 8;

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
    /// Who `@` offers (a room's members); no list without it.
    #[prop(optional, into)]
    members: Option<Signal<Vec<String>>>,
) -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    let session = expect_context::<Session>();
    let text = RwSignal::new(String::new());
    let area = NodeRef::<html::Textarea>::new();
    // The `@name` being typed: where its `@` is and what follows it, up to the caret.
    let typed = RwSignal::new(None::<(u32, String)>);
    let active = RwSignal::new(0usize);
    // A closure, not a memo: a few dozen names compared at a keystroke cost less than the
    // memo's code in the WASM.
    let suggestions = move || {
        let (Some(members), Some((_, prefix))) = (members, typed.get()) else { return Vec::new() };
        let prefix = prefix.to_lowercase();
        members.with(|all| {
            all.iter()
                .filter(|name| name.to_lowercase().starts_with(&prefix) && !session.is_me_untracked(name))
                .take(SUGGESTED)
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let listing = move || !suggestions().is_empty();
    let find_mention = move || {
        let Some(el) = area.get_untracked() else { return };
        let caret = el.selection_start().ok().flatten().unwrap_or(0);
        typed.set(mention_at(&el.value(), caret));
        active.set(0);
    };
    // Puts `@name ` in place of the `@` and what follows it up to the caret.
    let pick = move |name: String| {
        let (Some((at, _)), Some(el)) = (typed.get_untracked(), area.get_untracked()) else { return };
        let end = el.selection_start().ok().flatten().unwrap_or(at).max(at);
        let _ = el.set_range_text_with_start_and_end(&format!("@{name} "), at, end);
        // Usernames are ASCII: as many UTF-16 units as bytes.
        let caret = at + 2 + name.len() as u32;
        let _ = el.set_selection_range(caret, caret);
        text.set(el.value());
        typed.set(None);
    };
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
        find_mention();
        if let Some(on_typing) = on_typing
            && typing
            && now_ms() - last_typing.get_value() >= TYPING_EVERY_MS
        {
            last_typing.set_value(now_ms());
            on_typing.run(());
        }
    };
    let on_keydown = move |ev: KeyboardEvent| {
        let names = untrack(suggestions);
        let count = names.len();
        if count > 0 && !ev.is_composing() {
            match ev.key().as_str() {
                "ArrowDown" => active.update(|a| *a = (*a + 1) % count),
                "ArrowUp" => active.update(|a| *a = (*a + count - 1) % count),
                "Enter" | "Tab" if !ev.shift_key() => {
                    if let Some(name) = names.get(active.get_untracked()) {
                        pick(name.clone());
                    }
                }
                "Escape" => typed.set(None),
                _ => return,
            }
            ev.prevent_default();
            return;
        }
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
                    node_ref=area
                    data-testid="composer-input"
                    rows="1"
                    placeholder=placeholder
                    aria-autocomplete=members.map(|_| "list")
                    aria-controls=move || listing().then_some("mention-options")
                    aria-activedescendant=move || listing().then(|| format!("mention-option-{}", active.get()))
                    prop:value=move || text.get()
                    on:input=on_input
                    on:keydown=on_keydown
                    on:click=move |_| find_mention()
                    on:blur=move |_| typed.set(None)
                ></textarea>
            </label>
            <Show when=listing>
                <ul id="mention-options" class="mention-options" role="listbox" aria-label="People to mention" data-testid="mention-options">
                    {move || {
                        suggestions()
                            .into_iter()
                            .enumerate()
                            .map(|(i, name)| {
                                let picked = name.clone();
                                view! {
                                    <li
                                        id=format!("mention-option-{i}")
                                        role="option"
                                        class="switcher-option"
                                        aria-selected=move || (active.get() == i).to_string()
                                        data-testid="mention-option"
                                        data-username=name.clone()
                                        on:mousedown=move |ev| {
                                            // Keeps focus (and the caret) in the box.
                                            ev.prevent_default();
                                            pick(picked.clone());
                                        }
                                    >
                                        {format!("@{name}")}
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
            </Show>
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

/// The `@name` the caret is in: the offset of its `@` (at the start or after whitespace)
/// and the name characters from there to `caret`, both in UTF-16 units as the textarea
/// counts. `None` when the caret is not in one.
fn mention_at(value: &str, caret: u32) -> Option<(u32, String)> {
    let units: Vec<u16> = value.encode_utf16().take(caret as usize).collect();
    let at = units.iter().rposition(|&u| u == u16::from(b'@'))?;
    let prefix = &units[at + 1..];
    let name_char = |u: &u16| u8::try_from(*u).is_ok_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if prefix.len() > 32 || !prefix.iter().all(name_char) {
        return None;
    }
    if at > 0 && !char::from_u32(u32::from(units[at - 1])).is_some_and(char::is_whitespace) {
        return None;
    }
    Some((at as u32, prefix.iter().map(|&u| char::from(u as u8)).collect()))
}
