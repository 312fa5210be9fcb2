//! The API tokens section: the form to create one, its secret shown once, the list.

use confab_shared::tokens::{MAX_TOKEN_DAYS, MAX_TOKEN_NAME_CHARS};
use confab_shared::{ApiToken, ApiTokenCreated, CreateApiToken, Scope};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{FieldErrors, RegistryList, Section, SettingsForm, clear_errors, parse_days, secret_once, send_form, when};
use crate::components::confirm::ConfirmButton;
use crate::components::form::{CheckGroup, Choice, Field};
use crate::state::Chat;

#[component]
pub fn TokensSection() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let registry = chat.tokens.registry;
    let secret = secret_once(registry, "token-secret", "Your new API token", |created: ApiTokenCreated| {
        let hint = format!(
            "“{}” can now be sent as Authorization: Bearer <token> to the REST API and the WebSocket.",
            created.name
        );
        (hint, created.token)
    });
    view! {
        <Section
            id="tokens"
            title="API tokens"
            intro="A token lets a program act as you, limited to the scopes you choose. Revoke it when the program no longer needs it."
        >
            <NewTokenForm />
            {secret}
            <TokenList />
        </Section>
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
    let fields: FieldErrors<3> = [("name", name_error), ("scopes", scopes_error), ("expires_in_days", days_error)];

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
        if trimmed.is_empty() || trimmed.chars().count() > MAX_TOKEN_NAME_CHARS {
            name_error.set(Some(format!("Give the token a name of 1 to {MAX_TOKEN_NAME_CHARS} characters.")));
        }
        let chosen = scopes.get_untracked();
        if chosen.is_empty() {
            scopes_error.set(Some("Choose at least one scope.".into()));
        }
        let expires_in_days = parse_days(&days.get_untracked(), MAX_TOKEN_DAYS).unwrap_or_else(|why| {
            days_error.set(Some(why));
            None
        });
        if fields.iter().any(|(_, e)| e.with_untracked(Option::is_some)) {
            return;
        }
        let body = CreateApiToken { name: trimmed, scopes: chosen, expires_in_days };
        send_form(busy, fields, form_error, chat.tokens.create(body), move || {
            name.set(String::new());
            days.set(String::new());
            scopes.set(vec![Scope::Read]);
        });
    };

    view! {
        <SettingsForm
            testid="token-form"
            title="New token"
            submit=("Create token", "token-create")
            busy
            error=form_error
            on_submit=Callback::new(submit)
        >
            <Field
                id="token-name"
                label="Name"
                hint=""
                kind="text"
                autocomplete="off"
                placeholder="ci-bot"
                value=name
                error=name_error
            />
            <CheckGroup id="token-scopes" legend="Scopes" choices selected=scopes error=scopes_error />
            <Field
                id="token-days"
                label="Expires after (days)"
                hint="Leave empty for a token that does not expire."
                kind="number"
                autocomplete="off"
                placeholder="never"
                optional=true
                value=days
                error=days_error
            />
        </SettingsForm>
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
        <RegistryList title="Your tokens" registry what="tokens" empty="No tokens yet." error>
            <div class="table-wrap">
                <table class="settings-table" data-testid="token-list">
                    <thead>
                        <tr>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Scopes"</th>
                            <th scope="col">"Created"</th>
                            <th scope="col">"Expires"</th>
                            <th scope="col">"Last used"</th>
                            <th scope="col">
                                <span class="sr-only">"Actions"</span>
                            </th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=tokens key=|t| t.id children=move |token| view! { <TokenRow token error /> } />
                    </tbody>
                </table>
            </div>
        </RegistryList>
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
