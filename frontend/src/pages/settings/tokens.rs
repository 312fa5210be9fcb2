//! The API tokens section: the form to create one, its secret shown once, the list.

use confab_shared::tokens::{MAX_TOKEN_DAYS, MAX_TOKEN_NAME_CHARS};
use confab_shared::{ApiToken, CreateApiToken, Scope};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{clear_errors, parse_days, place_error, when};
use crate::components::confirm::ConfirmButton;
use crate::components::form::{CheckGroup, Choice, FieldError, FormError, error_id};
use crate::components::secret::SecretReveal;
use crate::state::Chat;

#[component]
pub fn TokensSection() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let registry = chat.tokens.registry;
    let secret = move || {
        registry.created.get().map(|created| {
            let hint = format!(
                "“{}” can now be sent as Authorization: Bearer <token> to the REST API and the WebSocket.",
                created.name
            );
            view! {
                <SecretReveal
                    id="token-secret"
                    title="Your new API token"
                    hint
                    secret=created.token
                    on_dismiss=Callback::new(move |()| registry.dismiss_secret())
                />
            }
        })
    };
    view! {
        <section class="settings-section" aria-labelledby="tokens-heading" data-testid="tokens-section">
            <h2 id="tokens-heading">"API tokens"</h2>
            <p class="muted">
                "A token lets a program act as you, limited to the scopes you choose. Revoke it when the program no longer needs it."
            </p>
            <NewTokenForm />
            {secret}
            <TokenList />
        </section>
    }
}

#[component]
fn NewTokenForm() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let name = RwSignal::new(String::new());
    let scopes = RwSignal::new(vec![Scope::Read]);
    let days = RwSignal::new(String::new());
    let (name_error, scopes_error, days_error) = (RwSignal::new(None), RwSignal::new(None), RwSignal::new(None));
    let form_error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let fields = [("name", name_error), ("scopes", scopes_error), ("expires_in_days", days_error)];

    // `publish` is offered to admins only: the server refuses it to anyone else.
    let choices = Signal::derive(move || {
        Scope::ALL
            .into_iter()
            .filter(|s| *s != Scope::Publish || session.is_admin())
            .map(|value| Choice { value, label: value.as_str(), hint: scope_hint(value) })
            .collect::<Vec<_>>()
    });

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        clear_errors(&fields, form_error);
        let trimmed = name.get_untracked().trim().to_owned();
        let mut valid = true;
        if trimmed.is_empty() || trimmed.chars().count() > MAX_TOKEN_NAME_CHARS {
            name_error.set(Some(format!("Give the token a name of 1 to {MAX_TOKEN_NAME_CHARS} characters.")));
            valid = false;
        }
        let chosen = scopes.get_untracked();
        if chosen.is_empty() {
            scopes_error.set(Some("Choose at least one scope.".into()));
            valid = false;
        }
        let expires_in_days = match parse_days(&days.get_untracked(), MAX_TOKEN_DAYS) {
            Ok(d) => d,
            Err(why) => {
                days_error.set(Some(why));
                valid = false;
                None
            }
        };
        if !valid {
            return;
        }
        busy.set(true);
        let body = CreateApiToken { name: trimmed, scopes: chosen, expires_in_days };
        spawn_local(async move {
            match chat.tokens.create(body).await {
                Ok(()) => {
                    name.set(String::new());
                    days.set(String::new());
                    scopes.set(vec![Scope::Read]);
                }
                Err(err) => place_error(err, &fields, form_error),
            }
            busy.set(false);
        });
    };

    view! {
        <form class="card form settings-form" on:submit=submit data-testid="token-form" novalidate>
            <h3>"New token"</h3>
            <div class="field">
                <label for="token-name">"Name"</label>
                <input
                    id="token-name"
                    maxlength=MAX_TOKEN_NAME_CHARS.to_string()
                    autocomplete="off"
                    placeholder="ci-bot"
                    data-testid="token-name"
                    aria-invalid=move || name_error.with(Option::is_some).to_string()
                    aria-describedby=error_id("token-name")
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                />
                <FieldError field_id="token-name" error=name_error />
            </div>
            <CheckGroup id="token-scopes" legend="Scopes" choices selected=scopes error=scopes_error />
            <div class="field">
                <label for="token-days">"Expires after (days)"</label>
                <input
                    id="token-days"
                    type="number"
                    inputmode="numeric"
                    min="1"
                    max=MAX_TOKEN_DAYS.to_string()
                    placeholder="never"
                    data-testid="token-days"
                    aria-invalid=move || days_error.with(Option::is_some).to_string()
                    aria-describedby=format!("token-days-hint {}", error_id("token-days"))
                    prop:value=move || days.get()
                    on:input=move |ev| days.set(event_target_value(&ev))
                />
                <small id="token-days-hint" class="hint">"Leave empty for a token that does not expire."</small>
                <FieldError field_id="token-days" error=days_error />
            </div>
            <FormError error=form_error />
            <button type="submit" class="primary" data-testid="token-create" disabled=move || busy.get()>
                {move || if busy.get() { "Creating…" } else { "Create token" }}
            </button>
        </form>
    }
}

fn scope_hint(scope: Scope) -> &'static str {
    match scope {
        Scope::Read => "lists, history, joining rooms, receiving events",
        Scope::Write => "sending, editing, deleting, reacting, private messages",
        Scope::Publish => "server notices with POST /api/publish (admins)",
    }
}

#[component]
fn TokenList() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let registry = chat.tokens.registry;
    let error = RwSignal::new(None::<String>);
    let tokens = move || registry.items.get().unwrap_or_default();
    view! {
        <h3>"Your tokens"</h3>
        {move || registry.load_error.get().map(|e| view! {
            <p class="form-error" role="alert" data-testid="tokens-error">{format!("Could not load your tokens: {e}")}</p>
        })}
        <FormError error />
        <Show
            when=move || registry.items.with(Option::is_some)
            fallback=move || view! { <p class="muted">{move || if registry.load_error.with(Option::is_none) { "Loading tokens…" } else { "" }}</p> }
        >
            <Show
                when=move || registry.items.with(|i| i.as_ref().is_some_and(|i| !i.is_empty()))
                fallback=|| view! { <p class="muted" data-testid="tokens-empty">"No tokens yet."</p> }
            >
                <div class="table-wrap">
                    <table class="settings-table" data-testid="token-list">
                        <thead>
                            <tr>
                                <th scope="col">"Name"</th>
                                <th scope="col">"Scopes"</th>
                                <th scope="col">"Created"</th>
                                <th scope="col">"Expires"</th>
                                <th scope="col">"Last used"</th>
                                <th scope="col"><span class="sr-only">"Actions"</span></th>
                            </tr>
                        </thead>
                        <tbody>
                            <For each=tokens key=|t| t.id children=move |token| view! { <TokenRow token error /> } />
                        </tbody>
                    </table>
                </div>
            </Show>
        </Show>
    }
}

#[component]
fn TokenRow(token: ApiToken, error: RwSignal<Option<String>>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let id = token.id;
    let scopes = token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    let revoke = Callback::new(move |()| {
        error.set(None);
        spawn_local(async move {
            if let Err(err) = chat.tokens.revoke(id).await {
                error.set(Some(format!("Could not revoke the token: {}", err.message)));
            }
        });
    });
    let busy = Signal::derive(move || chat.tokens.revoking.get() == Some(id));
    view! {
        <tr data-testid="token-row" data-id=id.to_string() data-name=token.name.clone()>
            <td data-testid="token-row-name">{token.name.clone()}</td>
            <td data-testid="token-row-scopes">{scopes}</td>
            <td>{when(Some(token.created_at), "")}</td>
            <td data-testid="token-row-expires">{when(token.expires_at, "Never")}</td>
            <td data-testid="token-row-last-used">{when(token.last_used_at, "Never")}</td>
            <td class="actions">
                <ConfirmButton
                    label="Revoke"
                    confirm="Revoke it"
                    aria_label=format!("Revoke the token {}", token.name)
                    testid="token-revoke"
                    busy
                    on_confirm=revoke
                />
            </td>
        </tr>
    }
}
