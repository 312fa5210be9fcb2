//! `/settings`: what a signed-in person configures: notifications, and what programs use.
//!
//! - [`notifications`]: desktop notifications and Web Push in this browser, and the list of
//!   devices that get pushes.
//! - [`tokens`]: API tokens (everyone): create (the secret is shown once), list, revoke.
//! - [`webhooks`]: webhooks (admins only): create, list, delete, and each one's recent
//!   deliveries with a retry.
//!
//! Both talk REST only. A form keeps what was typed until the server accepts it, and puts
//! the server's reason next to the field it names (problem+json `field`), or under the form.

mod notifications;
mod tokens;
mod webhooks;

use std::future::Future;

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{LoginPrompt, set_title};
use crate::api::rest::ApiError;
use crate::components::form::FormError;
use crate::components::secret::SecretReveal;
use crate::state::Chat;
use crate::state::registry::{Keyed, Registry};
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
                <p class="muted">"Notifications, and credentials for programs that talk to Confab: bots, backends, CI jobs."</p>
            </header>
            <Show
                when=move || session.is_logged_in()
                fallback=|| view! { <LoginPrompt what="to manage API tokens" /> }
            >
                <notifications::NotificationsSection />
                <tokens::TokensSection />
                <Show when=move || session.is_admin()>
                    <webhooks::WebhooksSection />
                </Show>
            </Show>
        </section>
    }
}

/// One section of the page: a heading, what it is for, then its parts.
#[component]
fn Section(id: &'static str, title: &'static str, intro: &'static str, children: Children) -> impl IntoView {
    let heading = format!("{id}-heading");
    let labelled_by = heading.clone();
    view! {
        <section class="settings-section" aria-labelledby=labelled_by data-testid=format!("{id}-section")>
            <h2 id=heading>{title}</h2>
            <p class="muted">{intro}</p>
            {children()}
        </section>
    }
}

/// The secret of the item created last, until dismissed; `reveal` gives its hint and secret.
fn secret_once<T, C>(
    registry: Registry<T, C>,
    id: &'static str,
    title: &'static str,
    reveal: fn(C) -> (String, String),
) -> impl Fn() -> Option<AnyView>
where
    T: Keyed + Clone + Send + Sync + 'static,
    C: Clone + Send + Sync + 'static,
{
    move || {
        registry.created.get().map(|created| {
            let (hint, secret) = reveal(created);
            let on_dismiss = Callback::new(move |()| registry.dismiss_secret());
            view! { <SecretReveal id title hint secret on_dismiss /> }.into_any()
        })
    }
}

/// What a list says instead of rows: why it could not load, that it is loading, or that
/// it is empty (`{what}-error`, `{what}-empty` as test ids).
#[component]
fn ListStatus<T, C>(registry: Registry<T, C>, what: &'static str, empty: &'static str) -> impl IntoView
where
    T: Keyed + Clone + Send + Sync + 'static,
    C: Clone + Send + Sync + 'static,
{
    move || {
        if let Some(err) = registry.load_error.get() {
            return view! {
                <p class="form-error" role="alert" data-testid=format!("{what}-error")>
                    {format!("Could not load the {what}: {err}")}
                </p>
            }
            .into_any();
        }
        match registry.items.with(|i| i.as_ref().map(Vec::is_empty)) {
            None => view! { <p class="muted">{format!("Loading {what}…")}</p> }.into_any(),
            Some(true) => view! { <p class="muted" data-testid=format!("{what}-empty")>{empty}</p> }.into_any(),
            Some(false) => ().into_any(),
        }
    }
}

/// A list of the page: its heading, what it says while it has no rows, the error of the
/// last action on a row, and the rows.
#[component]
fn RegistryList<T, C>(
    title: &'static str,
    registry: Registry<T, C>,
    /// What the list holds, in words and in test ids (`{what}-error`, `{what}-empty`).
    what: &'static str,
    empty: &'static str,
    error: RwSignal<Option<String>>,
    children: ChildrenFn,
) -> impl IntoView
where
    T: Keyed + Clone + Send + Sync + 'static,
    C: Clone + Send + Sync + 'static,
{
    view! {
        <h3>{title}</h3>
        <ListStatus registry what empty />
        <FormError error />
        <Show when=move || registry.items.with(|i| i.as_ref().is_some_and(|i| !i.is_empty()))>{children()}</Show>
    }
}

/// A form's fields by the name the server gives them in a problem's `field`, with their errors.
type FieldErrors<const N: usize> = [(&'static str, RwSignal<Option<String>>); N];

/// Sends a form's request once the form's own checks passed: `busy` while under way; on
/// success `done` (which clears the form); on a refusal the reason goes next to the field
/// the server named, or under the form, and everything typed stays.
fn send_form<const N: usize>(
    busy: RwSignal<bool>,
    fields: FieldErrors<N>,
    form: RwSignal<Option<String>>,
    request: impl Future<Output = Result<(), ApiError>> + 'static,
    done: impl FnOnce() + 'static,
) {
    busy.set(true);
    spawn_local(async move {
        match request.await {
            Ok(()) => done(),
            Err(err) => {
                let target = err.field.as_deref().and_then(|name| fields.iter().find(|(field, _)| *field == name));
                match target {
                    Some((_, signal)) => signal.set(Some(err.message)),
                    None => form.set(Some(err.message)),
                }
            }
        }
        busy.set(false);
    });
}

/// Clears every error of a form before it is checked and sent again.
fn clear_errors<const N: usize>(fields: &FieldErrors<N>, form: RwSignal<Option<String>>) {
    for (_, signal) in fields {
        signal.set(None);
    }
    form.set(None);
}

/// A settings form: its title, its fields, the form-wide error and the submit button
/// (which says so while the request is under way).
#[component]
fn SettingsForm(
    testid: &'static str,
    title: &'static str,
    /// The submit button's text and test id.
    submit: (&'static str, &'static str),
    busy: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    on_submit: Callback<SubmitEvent>,
    children: Children,
) -> impl IntoView {
    let (label, submit_testid) = submit;
    view! {
        <form class="card form settings-form" on:submit=move |ev| on_submit.run(ev) data-testid=testid novalidate>
            <h3>{title}</h3>
            {children()}
            <FormError error />
            <button type="submit" class="primary" data-testid=submit_testid disabled=move || busy.get()>
                {move || if busy.get() { "Creating…" } else { label }}
            </button>
        </form>
    }
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
