//! A secret the server shows only once (an API token, a webhook signing secret): the value
//! in a read-only box, a Copy button, and a button to dismiss it.
//!
//! Copying uses `navigator.clipboard.writeText`, which exists only in secure contexts and
//! can be refused; then the box's text is selected and the page says to press Ctrl+C, so
//! the secret can always be taken.

use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

/// What the last Copy did.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Copied {
    Not,
    Yes,
    Failed,
}

#[component]
pub fn SecretReveal(
    /// The id of the read-only box (its label points at it).
    id: &'static str,
    /// The heading, e.g. "Your new token".
    title: &'static str,
    /// What to do with it, e.g. "Send it as `Authorization: Bearer …`".
    hint: String,
    secret: String,
    on_dismiss: Callback<()>,
) -> impl IntoView {
    let copied = RwSignal::new(Copied::Not);
    let input = NodeRef::<leptos::html::Input>::new();
    // Shown once: put the keyboard (and a screen reader) on it as it appears.
    Effect::new(move |_| {
        if let Some(input) = input.get() {
            let _ = input.focus();
        }
    });
    let copy = {
        let secret = secret.clone();
        move |_| {
            let secret = secret.clone();
            leptos::task::spawn_local(async move {
                if write_clipboard(&secret).await {
                    copied.set(Copied::Yes);
                } else {
                    copied.set(Copied::Failed);
                    if let Some(input) = input.get_untracked() {
                        let _ = input.focus();
                        input.select();
                    }
                }
            });
        }
    };
    view! {
        <div class="card secret" role="region" aria-label=title data-testid=format!("{id}-reveal")>
            <h3>{title}</h3>
            <p class="hint">
                <strong>"Copy it now: it is not shown again. "</strong>
                {hint}
            </p>
            <label for=id class="sr-only">
                {title}
            </label>
            <div class="row">
                <input
                    id=id
                    node_ref=input
                    class="secret-value"
                    readonly
                    spellcheck="false"
                    autocomplete="off"
                    data-testid=id
                    prop:value=secret.clone()
                    on:focus=move |ev| {
                        if let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                            input.select();
                        }
                    }
                />
                <button type="button" class="primary small" data-testid=format!("{id}-copy") on:click=copy>
                    "Copy"
                </button>
                <button
                    type="button"
                    class="secondary small"
                    data-testid=format!("{id}-dismiss")
                    on:click=move |_| on_dismiss.run(())
                >
                    "I have saved it"
                </button>
            </div>
            <p class="copy-status small" role="status" data-testid=format!("{id}-copy-status")>
                {move || match copied.get() {
                    Copied::Not => "",
                    Copied::Yes => "Copied to the clipboard.",
                    Copied::Failed => "Copying is not available here: the text is selected, press Ctrl+C (⌘C on a Mac).",
                }}
            </p>
        </div>
    }
}

/// `navigator.clipboard.writeText(text)`; `false` when there is no clipboard API or it refused.
async fn write_clipboard(text: &str) -> bool {
    let Some(window) = web_sys::window() else { return false };
    let clipboard = js_sys::Reflect::get(&window.navigator(), &"clipboard".into()).ok().filter(JsValue::is_object);
    let Some(clipboard) = clipboard else { return false };
    let write =
        js_sys::Reflect::get(&clipboard, &"writeText".into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let Some(write) = write else { return false };
    let Ok(promise) = write.call1(&clipboard, &JsValue::from_str(text)).and_then(|p| p.dyn_into::<js_sys::Promise>())
    else {
        return false;
    };
    wasm_bindgen_futures::JsFuture::from(promise).await.is_ok()
}
