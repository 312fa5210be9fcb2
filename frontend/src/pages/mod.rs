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

thread_local! {
    /// The shown page's title and the count of what waits for the reader (unread private
    /// messages and mentions), which the tab title leads with.
    static TITLE: std::cell::RefCell<(String, i64)> = std::cell::RefCell::new(("Confab".to_owned(), 0));
}

/// Sets the tab title while a page is shown.
pub fn set_title(title: &str) {
    TITLE.with_borrow_mut(|(base, _)| *base = format!("{title} · Confab"));
    show_title();
}

/// Shows `waiting` (unread private messages and mentions) as `(N) ` before the tab title,
/// and as a dot on the favicon.
pub fn set_waiting(waiting: i64) {
    let changed = TITLE.with_borrow_mut(|(_, n)| std::mem::replace(n, waiting) != waiting);
    if changed {
        show_title();
        crate::notify::show_waiting(waiting);
    }
}

fn show_title() {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let title = TITLE.with_borrow(|(base, n)| if *n > 0 { format!("({n}) {base}") } else { base.clone() });
    document.set_title(&title);
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
