//! Talking to groups from outside: `POST /api/publish` (and `confab publish`) delivers a
//! `notice {payload}` to every open connection of a room, a user, or everyone, on every
//! instance.
//!
//! The frame goes through the channel layer like any broadcast, as a reliable frame: an
//! operator's notice is not something to drop silently for a slow reader.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use confab_shared::moderation::ModerationAction;
use confab_shared::rpc::Notification;
use confab_shared::rpc::notify::Notice;
use confab_shared::{Problem, PublishAccepted, PublishRequest, PublishTarget, validate};

use crate::auth::extract::AuthUser;
use crate::error::{AppError, AppResult};
use crate::http::ApiJson;
use crate::layer::{Class, Delivery, group};
use crate::state::AppState;
use crate::storage::{Db, rooms, users};

/// Largest payload, measured as compact JSON.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/publish", post(publish))
}

/// Deliver a `notice` to a room, a user or every connection (admins only).
#[utoipa::path(post, path = "/api/publish", tag = "publish", security(("bearer" = [])), request_body = PublishRequest,
    responses(
        (status = 202, description = "Handed to the channel layer; the body counts this instance's recipients", body = PublishAccepted),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room or user", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Payload over 16 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid target", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The channel layer refused the send", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn publish(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<PublishRequest>,
) -> AppResult<(StatusCode, Json<PublishAccepted>)> {
    if !caller.is_admin {
        return Err(AppError::Forbidden("publishing needs an admin"));
    }
    let frame = notice_frame(body.payload)?;
    let target = resolve_target(&state.db, &body.target).await?;
    // Recorded before it is sent: a publish the log does not know of never goes out.
    let mut audit = super::moderation::audit::entry(&state, &caller, ModerationAction::Publish);
    audit.target = Some(target.clone());
    crate::storage::moderation::record(&state.db, &audit).await?;
    let delivered = state
        .layer
        .group_send_counted(&target, Delivery::frame(frame, Class::Reliable))
        .map_err(|err| {
            tracing::warn!(%err, "publish not handed to the channel layer");
            AppError::Unavailable("channel layer")
        })?;
    tracing::info!(admin = %caller.username, group = %target, delivered_locally = delivered, "published a notice");
    Ok((StatusCode::ACCEPTED, Json(PublishAccepted { delivered_locally: delivered as u64 })))
}

/// The `notice` frame for a payload; 413 when the payload is over [`MAX_PAYLOAD_BYTES`].
pub fn notice_frame(payload: serde_json::Value) -> AppResult<String> {
    let size = serde_json::to_vec(&payload).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_PAYLOAD_BYTES {
        return Err(AppError::TooLarge("payload is over 16 KiB"));
    }
    Ok(Notification::Notice(Notice { payload }).to_frame())
}

/// The group a target names: 404 for an unknown room or user, 422 for `{"all": false}` or
/// a malformed name.
pub async fn resolve_target(db: &Db, target: &PublishTarget) -> AppResult<String> {
    match target {
        PublishTarget::Room(name) => {
            let name = validate::room_name(name).map_err(|m| AppError::invalid("target", format!("room name {m}")))?;
            let room = rooms::by_name(db, name).await?.ok_or(AppError::NotFound("room"))?;
            Ok(group::room(&room.name))
        }
        PublishTarget::User(name) => {
            let name = validate::username(name).map_err(|m| AppError::invalid("target", format!("username {m}")))?;
            let user = users::by_name(db, name).await?.ok_or(AppError::NotFound("user"))?;
            Ok(group::user(user.id))
        }
        PublishTarget::All(true) => Ok(group::ALL.to_owned()),
        PublishTarget::All(false) => Err(AppError::invalid("target", "all must be true")),
    }
}
