//! A destructive button that asks once more before acting ("Revoke" → "Revoke it" / "Keep").
//!
//! No `window.confirm`: an inline question keeps focus in the page, is styled like the rest
//! and is announced to screen readers.

use leptos::prelude::*;

#[component]
pub fn ConfirmButton(
    /// What the button says, e.g. "Revoke".
    label: &'static str,
    /// What the confirming button says, e.g. "Revoke it".
    confirm: &'static str,
    /// The accessible name of the first button, naming what it acts on.
    #[prop(into)]
    aria_label: String,
    /// The `data-testid` of the first button; the others get `-confirm` and `-cancel`.
    testid: &'static str,
    /// Whether the action is under way (both buttons are disabled meanwhile).
    #[prop(into)]
    busy: Signal<bool>,
    on_confirm: Callback<()>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    // The first button goes away when asked; keyboard focus moves on to the question.
    let confirm_button = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |_| {
        if asking.get()
            && let Some(button) = confirm_button.get()
        {
            let _ = button.focus();
        }
    });
    let confirm_id = format!("{testid}-confirm");
    let cancel_id = format!("{testid}-cancel");
    view! {
        <Show
            when=move || asking.get()
            fallback=move || {
                view! {
                    <button
                        type="button"
                        class="secondary small danger"
                        data-testid=testid
                        aria-label=aria_label.clone()
                        disabled=move || busy.get()
                        on:click=move |_| asking.set(true)
                    >
                        {label}
                    </button>
                }
            }
        >
            <span class="confirm" role="group" aria-label="Are you sure?">
                <button
                    node_ref=confirm_button
                    type="button"
                    class="primary small danger"
                    data-testid=confirm_id.clone()
                    disabled=move || busy.get()
                    on:click=move |_| {
                        asking.set(false);
                        on_confirm.run(());
                    }
                >
                    {move || if busy.get() { "Working…" } else { confirm }}
                </button>
                <button
                    type="button"
                    class="secondary small"
                    data-testid=cancel_id.clone()
                    on:click=move |_| asking.set(false)
                >
                    "Cancel"
                </button>
            </span>
        </Show>
    }
}
