//! `/settings`: what a signed-in person configures for programs.
//!
//! - [`tokens`]: API tokens (everyone): create (the secret is shown once), list, revoke.
//! - [`webhooks`]: webhooks (admins only): create, list, delete, and each one's recent
//!   deliveries with a retry.
//!
//! Both talk REST only. A form keeps what was typed until the server accepts it, and puts
//! the server's reason next to the field it names (problem+json `field`), or under the form.

mod tokens;
mod webhooks;

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{LoginPrompt, set_title};
use crate::api::rest::ApiError;
use crate::state::Chat;
use crate::util::{long_time, short_time};

/// The route.
#[component]
pub fn SettingsPage() -> impl IntoView {
    set_title("Settings");
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let user = Memo::new(move |_| session.user().map(|u| (u.id, u.is_admin)));
    // Whatever the lists held belonged to whoever was here before: load them afresh on
    // every visit and whenever someone else logs in.
    Effect::new(move |_| {
        chat.tokens.reset();
        chat.webhooks.reset();
        if let Some((_, admin)) = user.get() {
            spawn_local(chat.tokens.load());
            if admin {
                spawn_local(chat.webhooks.load());
            }
        }
    });

    view! {
        <section class="page settings-page" data-testid="settings-page">
            <header class="page-head">
                <h1>"Settings"</h1>
                <p class="muted">"Credentials for programs that talk to Confab: bots, backends, CI jobs."</p>
            </header>
            <Show
                when=move || session.is_logged_in()
                fallback=|| view! { <LoginPrompt what="to manage API tokens" /> }
            >
                <tokens::TokensSection />
                <Show when=move || session.is_admin()>
                    <webhooks::WebhooksSection />
                </Show>
            </Show>
        </section>
    }
}

/// Puts a refused request's reason next to the field the server named, or under the form.
fn place_error(err: ApiError, fields: &[(&str, RwSignal<Option<String>>)], form: RwSignal<Option<String>>) {
    let target = err.field.as_deref().and_then(|name| fields.iter().find(|(field, _)| *field == name));
    match target {
        Some((_, signal)) => signal.set(Some(err.message)),
        None => form.set(Some(err.message)),
    }
}

/// Clears every error of a form before it is sent again.
fn clear_errors(fields: &[(&str, RwSignal<Option<String>>)], form: RwSignal<Option<String>>) {
    for (_, signal) in fields {
        signal.set(None);
    }
    form.set(None);
}

/// `Some(n)` for a whole number in `1..=max`, `None` for an empty box, or why it is not one.
fn parse_days(raw: &str, max: u32) -> Result<Option<u32>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(format!("Enter a whole number of days from 1 to {max}, or leave it empty for no expiry.")),
    }
}

/// Room names typed as a list (commas or spaces, `#` allowed); `None` when there are none.
fn parse_rooms(raw: &str) -> Option<Vec<String>> {
    let rooms: Vec<String> = raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|r| r.trim().trim_start_matches('#'))
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    (!rooms.is_empty()).then_some(rooms)
}

/// A `<time>` for a timestamp, or `none` in words.
fn when(at: Option<confab_shared::Timestamp>, none: &'static str) -> AnyView {
    match at {
        Some(at) => view! { <time datetime=at.to_string() title=long_time(at)>{short_time(at)}</time> }.into_any(),
        None => view! { <span class="muted">{none}</span> }.into_any(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_optional_whole_numbers_in_range() {
        assert_eq!(parse_days("", 3650), Ok(None));
        assert_eq!(parse_days(" 90 ", 3650), Ok(Some(90)));
        assert!(parse_days("0", 3650).is_err());
        assert!(parse_days("3651", 3650).is_err());
        assert!(parse_days("1.5", 3650).is_err());
    }

    #[test]
    fn rooms_are_split_on_commas_and_spaces() {
        assert_eq!(parse_rooms(""), None);
        assert_eq!(parse_rooms(" #lobby, dev  ops"), Some(vec!["lobby".into(), "dev".into(), "ops".into()]));
    }
}
