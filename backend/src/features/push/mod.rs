//! Web Push for people with no tab open: the routes where a browser stores its push
//! subscription (`/api/push/…`), and the task ([`offline`]) that queues an encrypted
//! push to each of a person's subscriptions when a private message or a mention arrives for
//! them while they have no connection on any instance.
//!
//! # Layout
//! - this file: the routes (the VAPID public key; create, list and remove subscriptions).
//! - [`offline`]: what private messages and mentions hand over, and the task that turns it
//!   into queued pushes (subscribed, not quiet, offline; coalesced; bounded per message).
//! - [`crate::storage::push`] (below this layer): subscriptions and the push outbox.
//! - [`worker`]: the delivery task: lease, encrypt (RFC 8291), sign (VAPID, RFC 8292), POST,
//!   retry with backoff; 404 or 410 from the push service removes the subscription.
//! - [`crate::webpush`]: the encryption and the VAPID key.
//!
//! Push endpoints obey the webhooks' destination rules
//! ([`super::webhooks::destination`]): `https://` to a public address, unless
//! `CONFAB_WEBHOOK_ALLOW_PRIVATE` allows private ones (and then `http://` too). Only a login
//! may manage subscriptions: a browser does this, never a program with an API token.

pub mod offline;
pub mod worker;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use confab_shared::push::{
    CreatePushSubscription, MAX_PUSH_DEVICE_CHARS, MAX_PUSH_ENDPOINT_CHARS, MAX_PUSH_SUBSCRIPTIONS, PushKey, PushSubscription,
};
use confab_shared::{Problem, Timestamp};

use super::tokens::LoginOnly;
use super::webhooks::destination;
use crate::auth::extract::LoginUser;
use crate::error::{AppError, AppResult};
use crate::http::ApiJson;
use crate::state::AppState;
use crate::storage::entity::push_subscriptions as subscription_entity;
use crate::storage::push as store;
use crate::webpush;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/push/key", get(public_key))
        .route("/api/push/subscriptions", get(list_subscriptions).post(create_subscription))
        .route("/api/push/subscriptions/{id}", delete(delete_subscription))
}

/// The server's VAPID public key, for `pushManager.subscribe({applicationServerKey})`.
#[utoipa::path(get, path = "/api/push/key", tag = "push",
    responses((status = 200, description = "The VAPID public key", body = PushKey)))]
pub async fn public_key(State(state): State<AppState>) -> Json<PushKey> {
    Json(PushKey { public_key: state.vapid.public_key().to_owned() })
}

/// Store this browser's push subscription for the caller (posting an endpoint again replaces
/// its keys and device name, and moves it to the caller).
#[utoipa::path(post, path = "/api/push/subscriptions", tag = "push", security(("bearer" = [])), request_body = CreatePushSubscription,
    responses(
        (status = 201, description = "Stored", body = PushSubscription),
        LoginOnly,
        (status = 422, description = "Invalid endpoint (not https, a private address, or one too many subscriptions), keys or device", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_subscription(
    State(state): State<AppState>,
    LoginUser(caller): LoginUser,
    ApiJson(body): ApiJson<CreatePushSubscription>,
) -> AppResult<(StatusCode, Json<PushSubscription>)> {
    let allow_private = state.config.webhook_allow_private;
    if body.endpoint.chars().count() > MAX_PUSH_ENDPOINT_CHARS {
        return Err(AppError::invalid("endpoint", "must be at most 2000 characters"));
    }
    let url = destination::parse(&body.endpoint, allow_private).map_err(|m| AppError::invalid("endpoint", m))?;
    if url.scheme() != "https" && !allow_private {
        return Err(AppError::invalid("endpoint", "must be an https:// URL"));
    }
    webpush::decode_key(&body.keys.p256dh, webpush::PUBLIC_KEY_BYTES)
        .filter(|key| key[0] == 4)
        .ok_or_else(|| AppError::invalid("keys.p256dh", "must be an uncompressed P-256 public key: 65 bytes in base64url"))?;
    webpush::decode_key(&body.keys.auth, webpush::AUTH_BYTES)
        .ok_or_else(|| AppError::invalid("keys.auth", "must be 16 bytes in base64url"))?;
    let device = body.device.as_deref().map(str::trim).filter(|d| !d.is_empty());
    if device.is_some_and(|d| d.chars().count() > MAX_PUSH_DEVICE_CHARS || d.chars().any(char::is_control)) {
        return Err(AppError::invalid("device", "must be at most 64 characters, without control characters"));
    }
    let new = store::NewSubscription {
        user_id: caller.user_id,
        endpoint: &body.endpoint,
        p256dh: body.keys.p256dh.trim_end_matches('='),
        auth: body.keys.auth.trim_end_matches('='),
        device,
    };
    match store::subscribe(&state.db, new, MAX_PUSH_SUBSCRIPTIONS).await? {
        store::Saved::Stored(row) => {
            tracing::info!(user = %caller.username, subscription = row.id, service = %url.origin().ascii_serialization(), "push subscription stored");
            Ok((StatusCode::CREATED, Json(listed(row))))
        }
        store::Saved::Full => Err(AppError::invalid("endpoint", "this account has 20 push subscriptions already; remove one first")),
    }
}

/// The caller's push subscriptions (one per device and browser), oldest first.
#[utoipa::path(get, path = "/api/push/subscriptions", tag = "push", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's subscriptions", body = [PushSubscription]),
        LoginOnly,
    ))]
pub async fn list_subscriptions(State(state): State<AppState>, LoginUser(caller): LoginUser) -> AppResult<Json<Vec<PushSubscription>>> {
    Ok(Json(store::of_user(&state.db, caller.user_id).await?.into_iter().map(listed).collect()))
}

/// Remove one of the caller's push subscriptions and its pending pushes.
#[utoipa::path(delete, path = "/api/push/subscriptions/{id}", tag = "push", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Removed"),
        LoginOnly,
        (status = 404, description = "No such subscription of the caller's", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_subscription(State(state): State<AppState>, LoginUser(caller): LoginUser, Path(id): Path<String>) -> AppResult<StatusCode> {
    let id = super::path_id(&id, "push subscription")?;
    if !store::unsubscribe(&state.db, id, Some(caller.user_id)).await? {
        return Err(AppError::NotFound("push subscription"));
    }
    tracing::info!(user = %caller.username, subscription = id, "push subscription removed");
    Ok(StatusCode::NO_CONTENT)
}

fn listed(row: subscription_entity::Model) -> PushSubscription {
    let service = reqwest::Url::parse(&row.endpoint).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    PushSubscription {
        id: row.id,
        service,
        device: row.device,
        created_at: Timestamp::from_millis(row.created_at),
        last_push_at: row.last_push_at.map(Timestamp::from_millis),
    }
}
