//! Create an account, then log straight in.

use confab_shared::{Credentials, validate};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;

use super::set_title;
use crate::api::rest;
use crate::components::form::{Field, FormError};
use crate::state::Chat;
use crate::util::sentence;

#[component]
pub fn SignupPage() -> impl IntoView {
    set_title("Sign up");
    let chat = expect_context::<Chat>();
    let navigate = use_navigate();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let username_error = RwSignal::new(None::<String>);
    let password_error = RwSignal::new(None::<String>);
    let confirm_error = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let name = username.get_untracked().trim().to_owned();
        let pass = password.get_untracked();
        // The same rules as the server (shared crate), checked before the round trip.
        username_error.set(validate::username(&name).err().map(|why| format!("Username {why}.")));
        password_error.set(validate::password(&pass).err().map(|why| format!("Password {why}.")));
        confirm_error.set((confirm.get_untracked() != pass).then(|| "The passwords do not match.".to_owned()));
        error.set(None);
        if username_error.get_untracked().is_some()
            || password_error.get_untracked().is_some()
            || confirm_error.get_untracked().is_some()
        {
            return;
        }
        let credentials = Credentials { username: name, password: pass };
        let navigate = navigate.clone();
        busy.set(true);
        spawn_local(async move {
            let signed_up = rest::signup(&credentials).await;
            let logged_in = match signed_up {
                Ok(_) => rest::login(&credentials).await,
                Err(err) => Err(err),
            };
            match logged_in {
                Ok(pair) => {
                    chat.logged_in(pair);
                    chat.toasts.info(format!("Welcome to Confab, {}!", credentials.username));
                    navigate("/rooms", Default::default());
                }
                Err(err) => {
                    // Put the server's reason next to the field it is about, when it names one.
                    let field = err.field.as_deref().unwrap_or(if err.status == 409 { "username" } else { "" });
                    match field {
                        "username" => username_error.set(Some(sentence(&err.message))),
                        "password" => password_error.set(Some(sentence(&err.message))),
                        _ => error.set(Some(err.message)),
                    }
                    busy.set(false);
                }
            }
        });
    };

    view! {
        <section class="page narrow auth-page">
            <h1>"Create your account"</h1>
            <form class="card form" on:submit=submit data-testid="signup-form" novalidate>
                <Field
                    id="signup-username"
                    label="Username"
                    hint="3–32 letters, digits, '_', '.' or '-'"
                    kind="text"
                    autocomplete="username"
                    value=username
                    error=username_error
                />
                <Field
                    id="signup-password"
                    label="Password"
                    hint="At least 8 characters"
                    kind="password"
                    autocomplete="new-password"
                    value=password
                    error=password_error
                />
                <Field
                    id="signup-confirm"
                    label="Repeat password"
                    hint=""
                    kind="password"
                    autocomplete="new-password"
                    value=confirm
                    error=confirm_error
                />
                <FormError error />
                <button type="submit" class="primary wide" data-testid="signup-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Creating account…" } else { "Sign up" }}
                </button>
                <p class="form-foot">"Already have an account? " <a href="/login">"Log in"</a></p>
            </form>
        </section>
    }
}
