//! One module per route.
//!
//! - [`login`], [`signup`]: the account forms; `/login/callback`, where an identity
//!   provider sends the browser back ("Log in with").
//! - [`online`]: "Who's online": everyone with a live presence badge.
//! - [`rooms`]: the room picker; [`room`]: one room.
//! - [`dm`]: the conversation list and one private conversation.
//! - [`settings`]: API tokens and (for admins) webhooks.
//! - [`moderation`]: for admins: the reports queue, the audit log, suspended accounts.

pub mod dm;
pub mod login;
pub mod moderation;
pub mod online;
pub mod room;
pub mod rooms;
pub mod settings;
pub mod signup;

use leptos::prelude::*;

/// Sets the tab title while a page is shown.
pub fn set_title(title: &str) {
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        document.set_title(&format!("{title} · Confab"));
    }
}

/// Shown for an unknown address.
#[component]
pub fn NotFound() -> impl IntoView {
    set_title("Not found");
    view! {
        <section class="page narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <a href="/rooms">"Go to the rooms"</a> "."</p>
        </section>
    }
}

/// Shown instead of a page whose address names something that cannot exist.
#[component]
pub fn InvalidAddress(
    testid: &'static str,
    message: String,
    /// A way out: the link's target and text.
    #[prop(optional)]
    back: Option<(&'static str, &'static str)>,
) -> impl IntoView {
    view! {
        <section class="page narrow">
            <div class="card error" role="alert" data-testid=testid>
                {message}
                {back.map(|(href, text)| view! { " " <a href=href>{text}</a> })}
            </div>
        </section>
    }
}

/// A "log in to …" card with a link back to where the visitor is.
#[component]
pub fn LoginPrompt(#[prop(into)] what: String) -> impl IntoView {
    let here = web_sys::window().and_then(|w| w.location().pathname().ok()).unwrap_or_default();
    let href = format!("/login?next={}", String::from(js_sys::encode_uri_component(&here)));
    view! {
        <div class="card prompt" data-testid="login-prompt">
            <p>
                <a href=href>"Log in"</a>
                {format!(" {what}. No account yet? ")}
                <a href="/signup">"Sign up"</a>
                "."
            </p>
        </div>
    }
}
