//! Log in.

use confab_shared::Credentials;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_query_map};

use super::set_title;
use crate::api::rest;
use crate::components::form::{Field, FormError};
use crate::state::Chat;

/// Where to go after logging in: the `next` query (already percent-decoded) if it is a path
/// on this site, else the rooms.
pub fn next_path(next: Option<String>) -> String {
    next.filter(|n| is_local_path(n) && !n.starts_with("/login")).unwrap_or_else(|| "/rooms".to_owned())
}

/// Whether `path` can only mean a page of this site: it starts with one `/`, and holds no
/// `//`, no backslash, no whitespace and no control character. Browsers read `\` as `/`
/// and drop tabs and newlines from URLs, so `/\evil.example` and `/<tab>/evil.example` both
/// become `//evil.example`: another site.
pub fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains("//")
        && !path.chars().any(|c| c == '\\' || c.is_whitespace() || c.is_control())
}

#[component]
pub fn LoginPage() -> impl IntoView {
    set_title("Log in");
    let chat = expect_context::<Chat>();
    let query = use_query_map();
    let navigate = use_navigate();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    // A refused login names no field: its reason goes under the form.
    let no_field_error = RwSignal::new(None::<String>);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let credentials = Credentials { username: username.get_untracked().trim().to_owned(), password: password.get_untracked() };
        if credentials.username.is_empty() || credentials.password.is_empty() {
            error.set(Some("Enter your username and password.".into()));
            return;
        }
        let next = next_path(query.with_untracked(|q| q.get("next")));
        let navigate = navigate.clone();
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match rest::login(&credentials).await {
                Ok(pair) => {
                    chat.logged_in(pair);
                    navigate(&next, Default::default());
                }
                Err(err) => {
                    error.set(Some(err.message));
                    busy.set(false);
                }
            }
        });
    };

    view! {
        <section class="page narrow auth-page">
            <h1>"Log in"</h1>
            <Show when=move || chat.session.is_logged_in()>
                <div class="card prompt">
                    <p>
                        {move || format!("You are logged in as {}. ", chat.session.username().unwrap_or_default())}
                        <a href="/rooms">"Go to the rooms"</a>
                        "."
                    </p>
                </div>
            </Show>
            <form class="card form" on:submit=submit data-testid="login-form" novalidate>
                <Field
                    id="login-username"
                    label="Username"
                    hint=""
                    kind="text"
                    autocomplete="username"
                    value=username
                    error=no_field_error
                />
                <Field
                    id="login-password"
                    label="Password"
                    hint=""
                    kind="password"
                    autocomplete="current-password"
                    value=password
                    error=no_field_error
                />
                <FormError error />
                <button type="submit" class="primary wide" data-testid="login-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Logging in…" } else { "Log in" }}
                </button>
                <p class="form-foot">"New here? " <a href="/signup">"Create an account"</a></p>
            </form>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed_after_login() {
        for local in ["/rooms", "/rooms/general?x=1#y", "/dm/ann", "/%5Cevil.example", "/a%2F%2Fb"] {
            assert_eq!(next_path(Some(local.to_owned())), local, "{local}");
        }
        for away in [
            "//evil.example", "/\\evil.example", "\\\\evil.example", "/\t/evil.example", "/\n/evil.example", "/\r//evil.example",
            " /x", "/x y", "https://evil.example", "evil.example", "", "/rooms//x", "/\u{0}x", "/\u{a0}/evil.example",
            "/login?next=/x", "javascript:alert(1)",
        ] {
            assert_eq!(next_path(Some(away.to_owned())), "/rooms", "{away:?}");
        }
        assert_eq!(next_path(None), "/rooms");
    }
}
