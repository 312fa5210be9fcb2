//! Log in: with a password, or with an identity provider ("Log in with …", one button per
//! provider the server offers), whose redirect comes back to [`LoginCallbackPage`].

use confab_shared::{Credentials, LoginProvider};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_query_map};

use super::set_title;
use crate::api::rest;
use crate::components::form::{Field, FormError};
use crate::oidc;
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
    // The identity providers offered; none (and no buttons) until the server says otherwise.
    let providers = RwSignal::new(Vec::<LoginProvider>::new());
    spawn_local(async move {
        if let Ok(list) = rest::providers().await {
            providers.set(list);
        }
    });
    let log_in_with = move |provider: LoginProvider| {
        if busy.get_untracked() {
            return;
        }
        let next = next_path(query.with_untracked(|q| q.get("next")));
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            // On success the browser is on its way to the provider.
            if let Err(err) = oidc::start(&provider, &next).await {
                error.set(Some(err.message));
                busy.set(false);
            }
        });
    };

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
                <Show when=move || providers.with(|p| !p.is_empty())>
                    <div class="oidc-providers" data-testid="oidc-providers">
                        {move || {
                            providers
                                .get()
                                .into_iter()
                                .map(|provider| {
                                    let label = format!("Log in with {}", provider.label);
                                    let testid = format!("oidc-login-{}", provider.name);
                                    view! {
                                        <button
                                            type="button"
                                            class="secondary wide"
                                            data-testid=testid
                                            disabled=move || busy.get()
                                            on:click=move |_| log_in_with(provider.clone())
                                        >
                                            {label}
                                        </button>
                                    }
                                })
                                .collect_view()
                        }}
                    </div>
                </Show>
                <p class="form-foot">"New here? " <a href="/signup">"Create an account"</a></p>
            </form>
        </section>
    }
}

/// Where an identity provider sends the browser back: finishes the login this tab started
/// and goes on as a password login does, or says what went wrong.
#[component]
pub fn LoginCallbackPage() -> impl IntoView {
    set_title("Logging in");
    let chat = expect_context::<Chat>();
    let query = use_query_map();
    let navigate = use_navigate();
    let error = RwSignal::new(None::<String>);
    let callback = query.with_untracked(|q| oidc::Callback { code: q.get("code"), state: q.get("state"), error: q.get("error") });
    spawn_local(async move {
        match oidc::finish(callback).await {
            Ok((tokens, next)) => {
                chat.logged_in(tokens);
                // Replace the callback (its code is spent) in the history.
                navigate(&next_path(Some(next)), leptos_router::NavigateOptions { replace: true, ..Default::default() });
            }
            Err(err) => error.set(Some(err.message)),
        }
    });

    view! {
        <section class="page narrow auth-page">
            <h1>"Log in"</h1>
            <div class="card prompt" data-testid="oidc-callback">
                {move || match error.get() {
                    None => view! { <p>"Logging in…"</p> }.into_any(),
                    Some(message) => {
                        view! {
                            <p role="alert" data-testid="oidc-error">{message}</p>
                            <p><a href="/login">"Back to the login page"</a></p>
                        }
                            .into_any()
                    }
                }}
            </div>
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
