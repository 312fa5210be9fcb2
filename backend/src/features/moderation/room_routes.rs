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

use axum::extract::{Path, State};
use axum::routing::{patch, post, put};
use axum::{Json, Router};
use confab_shared::Problem;
use confab_shared::moderation::{
    BanParams, ConfigureParams, KickParams, KickRequest, ModerationResult, MuteParams, RoleRequest, RoomSettings, SanctionRequest, SetRoleParams,
    SettingsRequest, UnbanParams, UnmuteParams,
};

use super::room_actions;
use crate::auth::extract::AuthUser;
use crate::error::AppResult;
use crate::http::{ApiJson, OptionalJson};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/rooms/{room}/members/{username}/kick", post(kick))
        .route("/api/rooms/{room}/bans/{username}", put(ban).delete(unban))
        .route("/api/rooms/{room}/mutes/{username}", put(mute).delete(unmute))
        .route("/api/rooms/{room}/roles/{username}", put(set_role))
        .route("/api/rooms/{room}/settings", patch(configure))
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
