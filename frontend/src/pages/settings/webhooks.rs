//! The webhooks section (admins): the form to register one, its signing secret shown once,
//! the list, and per webhook its recent deliveries with a Retry button each.

use confab_shared::validate;
use confab_shared::webhooks::{CreateWebhook, DeliveryStatus, Webhook, WebhookCreated, WebhookDelivery, WebhookEvent};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{
    FieldErrors, RegistryList, Section, SettingsForm, clear_errors, parse_rooms, secret_once, send_form, when,
};
use crate::components::confirm::ConfirmButton;
use crate::components::form::{CheckGroup, Choice, Field};
use crate::state::Chat;

/// The longest URL the server accepts.
const MAX_URL_CHARS: usize = 2000;

#[component]
pub fn WebhooksSection() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let registry = chat.webhooks.registry;
    let secret = secret_once(registry, "webhook-secret", "The webhook's signing secret", |created: WebhookCreated| {
        let hint = format!(
            "Deliveries to {} are signed with it (header webhook-signature, HMAC-SHA256 keyed with the base64 after whsec_).",
            created.url
        );
        (hint, created.secret)
    });
    view! {
        <Section
            id="webhooks"
            title="Webhooks"
            intro="Confab POSTs each chosen event to the URL, signed, and retries with backoff until it gets a 2xx."
        >
            <NewWebhookForm />
            {secret}
            <WebhookList />
        </Section>
    }
}

#[component]
fn NewWebhookForm() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let url = RwSignal::new(String::new());
    let events = RwSignal::new(vec![WebhookEvent::RoomMessage]);
    let rooms = RwSignal::new(String::new());
    let (url_error, events_error, rooms_error) = (RwSignal::new(None), RwSignal::new(None), RwSignal::new(None));
    let form_error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let fields: FieldErrors<3> = [("url", url_error), ("events", events_error), ("rooms", rooms_error)];
    let choices = Signal::derive(|| {
        WebhookEvent::ALL
            .into_iter()
            .map(|value| Choice { value, label: value.as_str(), hint: event_hint(value) })
            .collect::<Vec<_>>()
    });

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        clear_errors(&fields, form_error);
        let target = url.get_untracked().trim().to_owned();
        if !(target.starts_with("http://") || target.starts_with("https://")) || target.chars().count() > MAX_URL_CHARS
        {
            url_error.set(Some(format!("Enter an http:// or https:// URL of at most {MAX_URL_CHARS} characters.")));
        }
        let chosen = events.get_untracked();
        if chosen.is_empty() {
            events_error.set(Some("Choose at least one event.".into()));
        }
        let filter = parse_rooms(&rooms.get_untracked());
        if let Some((room, why)) =
            filter.iter().flatten().find_map(|r| validate::room_name(r).err().map(|why| (r, why)))
        {
            rooms_error.set(Some(format!("“{room}” is not a room name: it {why}.")));
        }
        if fields.iter().any(|(_, e)| e.with_untracked(Option::is_some)) {
            return;
        }
        let body = CreateWebhook { url: target, events: chosen, rooms: filter };
        send_form(busy, fields, form_error, chat.webhooks.create(body), move || {
            url.set(String::new());
            rooms.set(String::new());
            events.set(vec![WebhookEvent::RoomMessage]);
        });
    };

    view! {
        <SettingsForm
            testid="webhook-form"
            title="New webhook"
            submit=("Create webhook", "webhook-create")
            busy
            error=form_error
            on_submit=Callback::new(submit)
        >
            <Field
                id="webhook-url"
                label="URL"
                hint=""
                kind="url"
                autocomplete="off"
                placeholder="https://example.com/confab-events"
                value=url
                error=url_error
            />
            <CheckGroup id="webhook-events" legend="Events" choices selected=events error=events_error />
            <Field
                id="webhook-rooms"
                label="Only these rooms (optional)"
                hint="Room events of other rooms are not sent. Empty: every room. Private messages and sign-ups are not filtered."
                kind="text"
                autocomplete="off"
                placeholder="lobby, support"
                optional=true
                value=rooms
                error=rooms_error
            />
        </SettingsForm>
    }
}

fn event_hint(event: WebhookEvent) -> &'static str {
    match event {
        WebhookEvent::RoomMessage => "a message in a room",
        WebhookEvent::DmMessage => "a private message",
        WebhookEvent::MessageEdited => "a room message was edited",
        WebhookEvent::MessageDeleted => "a room message was deleted",
        WebhookEvent::UserSignedUp => "someone signed up",
    }
}

#[component]
fn WebhookList() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let registry = chat.webhooks.registry;
    let error = RwSignal::new(None::<String>);
    let hooks = move || registry.items.get().unwrap_or_default();
    view! {
        <RegistryList title="Webhooks" registry what="webhooks" empty="No webhooks yet." error>
            <ul class="list webhook-list" data-testid="webhook-list">
                <For each=hooks key=|h| (h.id, h.disabled_at) children=move |hook| view! { <WebhookItem hook error /> } />
            </ul>
        </RegistryList>
    }
}

#[component]
fn WebhookItem(hook: Webhook, error: RwSignal<Option<String>>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let webhooks = chat.webhooks;
    let id = hook.id;
    let events = hook.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
    let rooms = hook
        .rooms
        .as_ref()
        .map_or_else(|| "every room".to_owned(), |r| r.iter().map(|r| format!("#{r}")).collect::<Vec<_>>().join(", "));
    let delete = Callback::new(move |()| {
        error.set(None);
        spawn_local(async move {
            if let Err(err) = webhooks.delete(id).await {
                error.set(Some(format!("Could not delete the webhook: {}", err.message)));
            }
        });
    });
    let deleting = Signal::derive(move || webhooks.deleting.get() == Some(id));
    let open = move || webhooks.is_open(id);
    let toggle = move |_| {
        if webhooks.is_open(id) {
            webhooks.close(id);
        } else {
            spawn_local(webhooks.open(id));
        }
    };
    let panel_id = format!("webhook-{id}-deliveries");
    let disabled = hook.disabled_at.map(|at| {
        let why = hook.disabled_reason.clone().unwrap_or_else(|| "too many failures".into());
        view! {
            <p class="form-error" data-testid="webhook-disabled">
                "Disabled " {when(Some(at), "")} {format!(": {why}. Retrying a delivery enables it again.")}
            </p>
        }
    });
    view! {
        <li class="list-item webhook-item" data-testid="webhook-item" data-id=id.to_string() data-url=hook.url.clone()>
            <div class="webhook-head">
                <div class="webhook-main">
                    <code class="webhook-url" data-testid="webhook-item-url">{hook.url.clone()}</code>
                    <span class="muted small" data-testid="webhook-item-events">{format!("{events} · {rooms}")}</span>
                    <span class="muted small">"Created " {when(Some(hook.created_at), "")}</span>
                </div>
                <button
                    type="button"
                    class="secondary small"
                    data-testid="webhook-deliveries-toggle"
                    aria-expanded=move || open().to_string()
                    aria-controls=panel_id.clone()
                    on:click=toggle
                >
                    {move || if open() { "Hide deliveries" } else { "Deliveries" }}
                </button>
                <ConfirmButton
                    label="Delete"
                    confirm="Delete it"
                    aria_label=format!("Delete the webhook to {}", hook.url)
                    testid="webhook-delete"
                    busy=deleting
                    on_confirm=delete
                />
            </div>
            {disabled}
            <Show when=open>
                <DeliveryTable webhook_id=id panel_id=panel_id.clone() />
            </Show>
        </li>
    }
}

#[component]
fn DeliveryTable(webhook_id: i64, panel_id: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let webhooks = chat.webhooks;
    let entry = Memo::new(move |_| webhooks.deliveries.with(|open| open.get(&webhook_id).cloned().unwrap_or_default()));
    let items = move || entry.with(|e| e.items.clone().unwrap_or_default());
    let status = move || {
        entry.with(|e| match &e.items {
            None if e.loading => Some("Loading deliveries…"),
            Some(items) if items.is_empty() => {
                Some("Nothing delivered yet: deliveries appear once a chosen event happens.")
            }
            _ => None,
        })
    };
    view! {
        <div id=panel_id class="deliveries" data-testid="deliveries">
            <div class="deliveries-head">
                <h4>"Recent deliveries"</h4>
                <button
                    type="button"
                    class="secondary small"
                    data-testid="deliveries-refresh"
                    disabled=move || entry.with(|e| e.loading)
                    on:click=move |_| spawn_local(webhooks.refresh(webhook_id))
                >
                    "Refresh"
                </button>
            </div>
            {move || entry.with(|e| e.error.clone()).map(|e| view! {
                <p class="form-error" role="alert" data-testid="deliveries-error">{e}</p>
            })}
            {move || status().map(|s| view! { <p class="muted" data-testid="deliveries-empty">{s}</p> })}
            <Show when=move || entry.with(|e| e.items.as_ref().is_some_and(|i| !i.is_empty()))>
                <div class="table-wrap">
                    <table class="settings-table">
                        <thead>
                            <tr>
                                <th scope="col">"Event"</th>
                                <th scope="col">"Type"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"HTTP"</th>
                                <th scope="col">"Attempts"</th>
                                <th scope="col">"Next retry"</th>
                                <th scope="col"><span class="sr-only">"Actions"</span></th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=items
                                key=|d| (d.id, d.attempts, status_name(&d.status), d.http_status, d.next_attempt_at)
                                children=move |delivery| view! { <DeliveryRow webhook_id delivery /> }
                            />
                        </tbody>
                    </table>
                </div>
            </Show>
        </div>
    }
}

#[component]
fn DeliveryRow(webhook_id: i64, delivery: WebhookDelivery) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let webhooks = chat.webhooks;
    let id = delivery.id;
    let retrying =
        move || webhooks.deliveries.with(|open| open.get(&webhook_id).is_some_and(|d| d.retrying.contains(&id)));
    let status = status_name(&delivery.status);
    let class = match delivery.status {
        DeliveryStatus::Pending => "badge",
        DeliveryStatus::Delivered => "badge ok",
        DeliveryStatus::Failed => "badge bad",
    };
    let http = delivery.http_status.map_or_else(|| "—".to_owned(), |code| code.to_string());
    view! {
        <tr
            data-testid="delivery-row"
            data-id=id.to_string()
            data-event-id=delivery.event_id.clone()
            data-status=status
            data-http=delivery.http_status.map(|c| c.to_string()).unwrap_or_default()
            data-attempts=delivery.attempts.to_string()
        >
            <td><code class="event-id" title=delivery.event_id.clone()>{delivery.event_id.clone()}</code></td>
            <td>{delivery.event_type.as_str()}</td>
            <td>
                <span class=class data-testid="delivery-status" title=delivery.error.clone().unwrap_or_default()>{status}</span>
                {delivery.error.clone().map(|e| view! { <span class="muted small delivery-error">{format!(" {e}")}</span> })}
            </td>
            <td data-testid="delivery-http">{http}</td>
            <td data-testid="delivery-attempts">{delivery.attempts}</td>
            <td>{when(delivery.next_attempt_at, "—")}</td>
            <td class="actions">
                <button
                    type="button"
                    class="secondary small"
                    data-testid="delivery-retry"
                    aria-label=format!("Retry delivery of event {}", delivery.event_id)
                    disabled=retrying
                    on:click=move |_| spawn_local(webhooks.retry(webhook_id, id))
                >
                    {move || if retrying() { "Retrying…" } else { "Retry" }}
                </button>
            </td>
        </tr>
    }
}

/// A delivery's status as the API names it.
fn status_name(status: &DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
    }
}
