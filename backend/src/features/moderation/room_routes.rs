//! The room actions over REST, for programs (bots, a backend's admin tools) that would
//! rather not hold a socket: each route builds the socket method's params from its path and
//! body and calls the same function, so permissions, audit, errors and effects are the
//! socket's.
//!
//! | route | socket method |
//! |---|---|
//! | `POST /api/rooms/{room}/members/{username}/kick` | `room.kick` |
//! | `PUT` / `DELETE /api/rooms/{room}/bans/{username}` | `room.ban` / `room.unban` |
//! | `PUT` / `DELETE /api/rooms/{room}/mutes/{username}` | `room.mute` / `room.unmute` |
//! | `PUT /api/rooms/{room}/roles/{username}` | `room.set_role` |
//! | `PATCH /api/rooms/{room}/settings` | `room.configure` |
//!
//! Listing what is in force has no socket method: `GET /api/rooms/{room}/bans` and
//! `GET /api/rooms/{room}/mutes` page the room's bans and mutes for its owner, moderators
//! and admins (the web app's room settings panel lifts them from there).

use axum::extract::{Path, State};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use confab_shared::moderation::{
    BanParams, ConfigureParams, KickParams, KickRequest, ModerationResult, MuteParams, RoleRequest, RoomSanction, RoomSanctionsPage,
    RoomSanctionsQuery, RoomSettings, SanctionRequest, SetRoleParams, SettingsRequest, UnbanParams, UnmuteParams,
};
use confab_shared::{Problem, Timestamp};

use super::accounts::decode_cursor;
use super::{roles, room_actions};
use crate::auth::Identity;
use crate::auth::extract::AuthUser;
use crate::error::{AppError, AppResult};
use crate::features::list_limit;
use crate::features::rooms::room_param;
use crate::http::{ApiJson, ApiQuery, OptionalJson};
use crate::state::AppState;
use crate::storage::moderation::{self as store, Kind};
use crate::storage::{now_ms, rooms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/rooms/{room}/members/{username}/kick", post(kick))
        .route("/api/rooms/{room}/bans/{username}", put(ban).delete(unban))
        .route("/api/rooms/{room}/mutes/{username}", put(mute).delete(unmute))
        .route("/api/rooms/{room}/roles/{username}", put(set_role))
        .route("/api/rooms/{room}/settings", patch(configure))
        .route("/api/rooms/{room}/bans", get(bans))
        .route("/api/rooms/{room}/mutes", get(mutes))
}

/// Take the user's sockets out of the room now, on every instance (`room.kick`); they may rejoin.
#[utoipa::path(post, path = "/api/rooms/{room}/members/{username}/kick", tag = "moderation", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[A-Za-z0-9_-]{1,64}$"), ("username" = String, Path, description = "The user", pattern = "^[A-Za-z0-9_.-]{3,32}$")),
    request_body = Option<KickRequest>,
    responses(
        (status = 200, description = "Kicked", body = ModerationResult),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the room's owner, a moderator or an admin, or the user's rank is not below the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room or user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room, user or reason", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database or the channel layer is down: nothing was applied", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn kick(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((room, user)): Path<(String, String)>,
    OptionalJson(KickRequest { reason }): OptionalJson<KickRequest>,
) -> AppResult<Json<ModerationResult>> {
    Ok(Json(room_actions::kick(&state, &caller, KickParams { room, user, reason }).await?))
}

/// Keep the user out of the room until unbanned or `duration_secs` ends (`room.ban`).
#[utoipa::path(put, path = "/api/rooms/{room}/bans/{username}", tag = "moderation", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[A-Za-z0-9_-]{1,64}$"), ("username" = String, Path, description = "The user", pattern = "^[A-Za-z0-9_.-]{3,32}$")),
    request_body = Option<SanctionRequest>,
    responses(
        (status = 200, description = "Banned", body = ModerationResult),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the room's owner, a moderator or an admin, or the user's rank is not below the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room or user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room, user, reason or duration", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database or the channel layer is down: nothing was applied", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ban(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((room, user)): Path<(String, String)>,
    OptionalJson(SanctionRequest { reason, duration_secs }): OptionalJson<SanctionRequest>,
) -> AppResult<Json<ModerationResult>> {
    Ok(Json(room_actions::ban(&state, &caller, BanParams { room, user, reason, duration_secs }).await?))
}

/// Lift a ban (`room.unban`).
#[utoipa::path(delete, path = "/api/rooms/{room}/bans/{username}", tag = "moderation", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[A-Za-z0-9_-]{1,64}$"), ("username" = String, Path, description = "The user", pattern = "^[A-Za-z0-9_.-]{3,32}$")),
    responses(
        (status = 200, description = "Lifted (or there was none)", body = ModerationResult),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the room's owner, a moderator or an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room or user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room or user", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database or the channel layer is down: nothing was applied", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unban(State(state): State<AppState>, AuthUser(caller): AuthUser, Path((room, user)): Path<(String, String)>) -> AppResult<Json<ModerationResult>> {
    Ok(Json(room_actions::unban(&state, &caller, UnbanParams { room, user }).await?))
}

/// Let the user read but not send, react or type until unmuted or `duration_secs` ends (`room.mute`).
#[utoipa::path(put, path = "/api/rooms/{room}/mutes/{username}", tag = "moderation", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[A-Za-z0-9_-]{1,64}$"), ("username" = String, Path, description = "The user", pattern = "^[A-Za-z0-9_.-]{3,32}$")),
    request_body = Option<SanctionRequest>,
    responses(
        (status = 200, description = "Muted", body = ModerationResult),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the room's owner, a moderator or an admin, or the user's rank is not below the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room or user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room, user, reason or duration", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database or the channel layer is down: nothing was applied", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mute(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((room, user)): Path<(String, String)>,
    OptionalJson(SanctionRequest { reason, duration_secs }): OptionalJson<SanctionRequest>,
) -> AppResult<Json<ModerationResult>> {
    Ok(Json(room_actions::mute(&state, &caller, MuteParams { room, user, reason, duration_secs }).await?))
}

/// Lift a mute (`room.unmute`).
#[utoipa::path(delete, path = "/api/rooms/{room}/mutes/{username}", tag = "moderation", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[A-Za-z0-9_-]{1,64}$"), ("username" = String, Path, description = "The user", pattern = "^[A-Za-z0-9_.-]{3,32}$")),
    responses(
        (status = 200, description = "Lifted (or there was none)", body = ModerationResult),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the room's owner, a moderator or an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room or user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room or user", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database or the channel layer is down: nothing was applied", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unmute(State(state): State<AppState>, AuthUser(caller): AuthUser, Path((room, user)): Path<(String, String)>) -> AppResult<Json<ModerationResult>> {
    Ok(Json(room_actions::unmute(&state, &caller, UnmuteParams { room, user }).await?))
}

/// Make the user the room's moderator or a member again (owner, admin), or its owner (admin) (`room.set_role`).
#[utoipa::path(put, path = "/api/rooms/{room}/roles/{username}", tag = "moderation", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[A-Za-z0-9_-]{1,64}$"), ("username" = String, Path, description = "The user", pattern = "^[A-Za-z0-9_.-]{3,32}$")),
    request_body = RoleRequest,
    responses(
        (status = 200, description = "The role is set", body = ModerationResult),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed to give or take this role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room or user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The room has as many moderators as it may", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room, user or role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database or the channel layer is down: nothing was applied", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_role(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path((room, user)): Path<(String, String)>,
    ApiJson(RoleRequest { role }): ApiJson<RoleRequest>,
) -> AppResult<Json<ModerationResult>> {
    Ok(Json(room_actions::set_role(&state, &caller, SetRoleParams { room, user, role }).await?))
}

/// Change the room's slow mode (owner, moderators, admins) or retention (owner, admins) (`room.configure`).
#[utoipa::path(patch, path = "/api/rooms/{room}/settings", tag = "moderation", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body = SettingsRequest,
    responses(
        (status = 200, description = "The room's settings now", body = RoomSettings),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed to change this setting", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room or setting", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database or the channel layer is down: nothing was applied", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn configure(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(room): Path<String>,
    ApiJson(SettingsRequest { slow_mode_secs, retention_days }): ApiJson<SettingsRequest>,
) -> AppResult<Json<RoomSettings>> {
    Ok(Json(room_actions::configure(&state, &caller, ConfigureParams { room, slow_mode_secs, retention_days }).await?))
}

/// The bans in force in the room, newest first (its owner, moderators and admins). Bans whose
/// duration has ended are not listed.
#[utoipa::path(get, path = "/api/rooms/{room}/bans", tag = "moderation", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[A-Za-z0-9_-]{1,64}$"), RoomSanctionsQuery),
    responses(
        (status = 200, description = "The room's bans, newest first", body = RoomSanctionsPage),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the room's owner, a moderator or an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or an admins-only room, to anyone else)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room, cursor or limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn bans(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(room): Path<String>,
    ApiQuery(q): ApiQuery<RoomSanctionsQuery>,
) -> AppResult<Json<RoomSanctionsPage>> {
    Ok(Json(listing(&state, &caller, &room, Kind::Ban, q).await?))
}

/// The mutes in force in the room, newest first (its owner, moderators and admins). Mutes
/// whose duration has ended are not listed.
#[utoipa::path(get, path = "/api/rooms/{room}/mutes", tag = "moderation", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[A-Za-z0-9_-]{1,64}$"), RoomSanctionsQuery),
    responses(
        (status = 200, description = "The room's mutes, newest first", body = RoomSanctionsPage),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the room's owner, a moderator or an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room (or an admins-only room, to anyone else)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room, cursor or limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mutes(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(room): Path<String>,
    ApiQuery(q): ApiQuery<RoomSanctionsQuery>,
) -> AppResult<Json<RoomSanctionsPage>> {
    Ok(Json(listing(&state, &caller, &room, Kind::Mute, q).await?))
}

/// A page of the room's bans or mutes in force. An admins-only room is as absent to those
/// who may not see it; the others learn only that it is not theirs to moderate.
async fn listing(state: &AppState, caller: &Identity, room: &str, kind: Kind, q: RoomSanctionsQuery) -> AppResult<RoomSanctionsPage> {
    let name = room_param(room)?;
    let limit = list_limit(q.limit, 50)?;
    let before = decode_cursor(q.cursor.as_deref())?;
    let room = rooms::by_name(&state.db, name).await?.filter(|r| caller.is_admin || !r.admin_only).ok_or(AppError::NotFound("room"))?;
    roles::may_moderate(roles::rank(state, &room, caller.user_id, caller.is_admin).await?)?;
    let mut rows = store::room_sanctions_page(&state.db, room.id, kind, now_ms(), before, limit as u64 + 1).await?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| format!("{}-{}", r.created_at, r.user_id))
    } else {
        None
    };
    let sanctions = rows
        .into_iter()
        .map(|r| RoomSanction {
            user: r.username,
            reason: r.reason,
            until: r.ends_at.map(Timestamp::from_millis),
            by: r.by_name,
            at: Timestamp::from_millis(r.created_at),
        })
        .collect();
    Ok(RoomSanctionsPage { sanctions, next_cursor })
}
