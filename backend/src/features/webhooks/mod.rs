//! Webhooks (Standard Webhooks): admins register URLs that receive `room.message`,
//! `dm.message`, `message.edited`, `message.deleted` and `user.signed_up` events as signed
//! POSTs, at least once, in order per room.
//!
//! # Layout
//! - this file: the admin routes (`/api/webhooks…`): create, list, delete, recent
//!   deliveries, retry.
//! - [`crate::storage::webhook_queue`] (below this layer): the hooks the write paths call
//!   inside their transactions, and the in-memory list of webhooks they consult.
//! - [`worker`]: the delivery task: ordering, leases, backoff, disabling, admin notices.
//! - [`destination`]: which URLs may be posted to, and the HTTP client.
//!
//! Only a login may manage webhooks, never an API token: a token that could point a webhook
//! elsewhere would outlive its own revocation as a copy of every message.

pub mod destination;
pub mod worker;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use confab_shared::moderation::ModerationAction;
use confab_shared::webhooks::{CreateWebhook, DeliveryStatus, Webhook, WebhookCreated, WebhookDelivery, WebhookEvent};
use confab_shared::{Problem, Timestamp, validate};

use crate::auth::Identity;
use crate::auth::extract::LoginUser;
use crate::error::{AppError, AppResult};
use crate::http::ApiJson;
use crate::state::AppState;
use crate::storage::entity::{webhook_deliveries, webhooks as webhook_entity};
use crate::storage::webhooks as store;

/// Most rooms one webhook's filter may name.
const MAX_ROOMS: usize = confab_shared::webhooks::MAX_WEBHOOK_ROOMS;
/// Deliveries `GET /api/webhooks/{id}/deliveries` returns.
const RECENT: u64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/webhooks", get(list_webhooks).post(create_webhook))
        .route("/api/webhooks/{id}", delete(delete_webhook))
        .route("/api/webhooks/{id}/deliveries", get(list_deliveries))
        .route("/api/webhooks/{id}/deliveries/{delivery_id}/retry", post(retry_delivery))
}

/// The caller of every webhook route: a logged-in admin (never an API token), or 403.
pub struct Admin(pub Identity);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let LoginUser(caller) = LoginUser::from_request_parts(parts, state).await?;
        if !caller.is_admin {
            return Err(AppError::Forbidden("webhooks are managed by admins"));
        }
        Ok(Self(caller))
    }
}

/// 403 of every webhook route (see [`Admin`]).
#[derive(utoipa::IntoResponses)]
#[response(status = 403, description = "Not an admin, or an API token", content_type = "application/problem+json")]
pub struct NotAdmin(pub Problem);

/// 404 of the routes naming a webhook.
#[derive(utoipa::IntoResponses)]
#[response(status = 404, description = "No such webhook", content_type = "application/problem+json")]
pub struct NoSuchWebhook(pub Problem);

/// Register a webhook (admins only); the signing secret is in this answer only.
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks", security(("bearer" = [])), request_body = CreateWebhook,
    responses(
        (status = 201, description = "Registered; `secret` is shown only here", body = WebhookCreated),
        NotAdmin,
        (status = 422, description = "Invalid URL (or a private destination), events or rooms", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_webhook(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> AppResult<(StatusCode, Json<WebhookCreated>)> {
    let url = destination::parse(&body.url, state.config.webhook_allow_private).map_err(|m| AppError::invalid("url", m))?;
    if body.events.is_empty() {
        return Err(AppError::invalid("events", "name at least one event"));
    }
    let mut events = body.events.clone();
    events.sort();
    events.dedup();
    let rooms = match &body.rooms {
        None => None,
        Some(rooms) if rooms.is_empty() || rooms.len() > MAX_ROOMS => {
            return Err(AppError::invalid("rooms", "name 1 to 100 rooms, or leave it out for every room"));
        }
        Some(rooms) => {
            for room in rooms {
                validate::room_name(room).map_err(|m| AppError::invalid("rooms", format!("room name {m}")))?;
            }
            Some(rooms.join(","))
        }
    };
    let secret = crate::signing::new_secret();
    let events_list = events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",");
    let mut audit = super::moderation::audit::entry(&state, &caller, ModerationAction::Webhook);
    audit.detail = Some(format!("created for {} ({events_list})", url.as_str()));
    let row = store::create(
        &state.db,
        store::NewWebhook { url: url.as_str(), events: &events_list, rooms: rooms.as_deref(), secret: &secret, created_by: caller.user_id },
        &audit,
    )
    .await?;
    state.webhooks.reload(&state.db).await?;
    tracing::info!(admin = %caller.username, webhook = row.id, events = %events_list, "webhook registered");
    let w = listed(row);
    Ok((StatusCode::CREATED, Json(WebhookCreated { id: w.id, url: w.url, events: w.events, rooms: w.rooms, secret, created_at: w.created_at })))
}

/// Every webhook (admins only), without secrets.
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every webhook, oldest first", body = [Webhook]),
        NotAdmin,
    ))]
pub async fn list_webhooks(State(state): State<AppState>, _: Admin) -> AppResult<Json<Vec<Webhook>>> {
    Ok(Json(store::all(&state.db).await?.into_iter().map(listed).collect()))
}

/// Remove a webhook and its pending deliveries (admins only).
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Removed"),
        NotAdmin,
        NoSuchWebhook,
    ))]
pub async fn delete_webhook(State(state): State<AppState>, Admin(caller): Admin, Path(id): Path<String>) -> AppResult<StatusCode> {
    let id = super::path_id(&id, "webhook")?;
    let mut audit = super::moderation::audit::entry(&state, &caller, ModerationAction::Webhook);
    (audit.target, audit.detail) = (Some(format!("webhook {id}")), Some("removed".to_owned()));
    if !store::delete(&state.db, id, &audit).await? {
        return Err(AppError::NotFound("webhook"));
    }
    state.webhooks.reload(&state.db).await?;
    tracing::info!(admin = %caller.username, webhook = id, "webhook removed");
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's most recent deliveries, newest first (admins only).
#[utoipa::path(get, path = "/api/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "Up to 50 deliveries, newest first", body = [WebhookDelivery]),
        NotAdmin,
        NoSuchWebhook,
    ))]
pub async fn list_deliveries(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> AppResult<Json<Vec<WebhookDelivery>>> {
    let id = super::path_id(&id, "webhook")?;
    store::by_id(&state.db, id).await?.ok_or(AppError::NotFound("webhook"))?;
    Ok(Json(store::recent(&state.db, id, RECENT).await?.into_iter().map(delivery).collect()))
}

/// Attempt a delivery again now (admins only). A disabled webhook is enabled again, with a
/// clean failure count: retrying says the endpoint is worth trying.
#[utoipa::path(post, path = "/api/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The webhook's id"), ("delivery_id" = i64, Path, description = "The delivery's id")),
    responses(
        (status = 202, description = "Scheduled now; it goes out after the webhook's earlier pending deliveries of the same room", body = WebhookDelivery),
        NotAdmin,
        (status = 404, description = "No such webhook or delivery", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path((id, delivery_id)): Path<(String, String)>,
) -> AppResult<(StatusCode, Json<WebhookDelivery>)> {
    let id = super::path_id(&id, "webhook")?;
    let delivery_id = super::path_id(&delivery_id, "delivery")?;
    let hook = store::by_id(&state.db, id).await?.ok_or(AppError::NotFound("webhook"))?;
    store::delivery(&state.db, id, delivery_id).await?.ok_or(AppError::NotFound("delivery"))?;
    store::reschedule(&state.db, delivery_id).await?;
    if hook.disabled_at.is_some() {
        store::enable(&state.db, id).await?;
        state.webhooks.reload(&state.db).await?;
    }
    state.webhooks.wake();
    tracing::info!(admin = %caller.username, webhook = id, delivery = delivery_id, "webhook delivery retried");
    let row = store::delivery(&state.db, id, delivery_id).await?.ok_or(AppError::NotFound("delivery"))?;
    Ok((StatusCode::ACCEPTED, Json(delivery(row))))
}

fn listed(row: webhook_entity::Model) -> Webhook {
    Webhook {
        id: row.id,
        url: row.url,
        events: row.events.split(',').filter_map(WebhookEvent::parse).collect(),
        rooms: row.rooms.map(|list| list.split(',').map(str::to_owned).collect()),
        created_at: Timestamp::from_millis(row.created_at),
        disabled_at: row.disabled_at.map(Timestamp::from_millis),
        disabled_reason: row.disabled_reason,
    }
}

fn delivery(row: webhook_deliveries::Model) -> WebhookDelivery {
    WebhookDelivery {
        id: row.id,
        event_type: WebhookEvent::parse(&row.event_type).unwrap_or(WebhookEvent::RoomMessage),
        event_id: row.event_id,
        status: match row.status.as_str() {
            store::DELIVERED => DeliveryStatus::Delivered,
            store::FAILED => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        },
        http_status: row.http_status.and_then(|c| u16::try_from(c).ok()),
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        next_attempt_at: row.next_attempt_at.filter(|_| row.status == store::PENDING).map(Timestamp::from_millis),
        created_at: Timestamp::from_millis(row.created_at),
        delivered_at: row.delivered_at.map(Timestamp::from_millis),
        error: row.error,
    }
}
