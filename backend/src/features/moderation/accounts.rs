//! Account-level moderation by admins: suspend and unsuspend an account, list the accounts
//! suspended now, purge a user's messages (a background job).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_shared::moderation::{
    ModerationAction, ModerationApplied, PurgeRequest, SanctionRequest, SuspendedAccount, Suspension, SuspensionsPage, SuspensionsQuery,
};
use confab_shared::rpc::close;
use confab_shared::{JobAccepted, Problem, Timestamp, validate};

use super::audit::{self, admin};
use super::sanctions::Entry;
use super::{ends_at, layer_up, reason, tell};
use crate::auth::extract::AuthUser;
use crate::error::{AppError, AppResult};
use crate::features::list_limit;
use crate::http::{ApiQuery, OptionalJson};
use crate::state::AppState;
use crate::storage::entity::users as user_entity;
use crate::storage::moderation as store;
use crate::storage::{jobs, now_ms, rooms, users};

/// The longest close reason a WebSocket close frame carries, in bytes.
const MAX_CLOSE_REASON: usize = 123;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users/{username}/suspend", post(suspend))
        .route("/api/users/{username}/unsuspend", post(unsuspend))
        .route("/api/users/{username}/purge", post(purge))
        .route("/api/suspensions", get(list))
}

async fn account(state: &AppState, username: &str) -> AppResult<user_entity::Model> {
    let name = validate::username(username).map_err(|_| AppError::NotFound("user"))?;
    users::by_name(&state.db, name).await?.ok_or(AppError::NotFound("user"))
}

/// The close frame's reason for a suspension: `account suspended`, and why, cut to what a
/// close frame holds (never inside a character).
pub fn close_reason(why: Option<&str>) -> String {
    let mut text = match why {
        Some(why) => format!("account suspended: {why}"),
        None => "account suspended".to_owned(),
    };
    if text.len() > MAX_CLOSE_REASON {
        let mut end = MAX_CLOSE_REASON;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Suspend an account: its sockets close with 4003 on every instance, and its logins,
/// refreshes, API tokens and socket upgrades get 403 `reason: "suspended"` until it is
/// lifted or `duration_secs` ends. Nothing of theirs is deleted.
#[utoipa::path(post, path = "/api/users/{username}/suspend", tag = "moderation", security(("bearer" = [])),
    params(("username" = String, Path, description = "The account")), request_body = Option<SanctionRequest>,
    responses(
        (status = 200, description = "Suspended", body = Suspension),
        (status = 403, description = "Not an admin, or the caller's own account", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid reason or duration", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database or the channel layer is down: nothing was applied", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn suspend(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(username): Path<String>,
    OptionalJson(body): OptionalJson<SanctionRequest>,
) -> AppResult<Json<Suspension>> {
    admin(&caller)?;
    let why = reason(body.reason.as_deref(), "reason")?;
    let until = ends_at(body.duration_secs)?;
    let user = account(&state, &username).await?;
    if user.id == caller.user_id {
        return Err(AppError::Forbidden("you cannot suspend your own account"));
    }
    layer_up(&state)?;
    let mut entry = audit::entry(&state, &caller, ModerationAction::Suspend);
    (entry.target, entry.reason) = (Some(user.username.clone()), why.clone());
    entry.detail = body.duration_secs.map(|secs| format!("for {secs} s"));
    store::suspend(&state.db, user.id, why.as_deref(), until, caller.user_id, &entry).await?;
    state.sanctions.set_suspension(user.id, Some(Entry { until, reason: why.clone() }));
    tell(&state, user.id, ModerationApplied {
        action: ModerationAction::Suspend,
        room: None,
        until: until.map(Timestamp::from_millis),
        reason: why.clone(),
        by: caller.username.clone(),
        role: None,
    });
    // This instance's sockets now; the others' on their next reload (within a presence tick).
    let closed = state.layer.hub().close_user(user.id, close::LOGGED_OUT, &close_reason(why.as_deref()));
    tracing::info!(user = %user.username, by = %caller.username, closed, "account suspended");
    Ok(Json(Suspension { username: user.username, suspended: true, until: until.map(Timestamp::from_millis), reason: why }))
}

/// Lift an account's suspension (idempotent).
#[utoipa::path(post, path = "/api/users/{username}/unsuspend", tag = "moderation", security(("bearer" = [])),
    params(("username" = String, Path, description = "The account")),
    responses(
        (status = 200, description = "Not suspended (any more)", body = Suspension),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database or the channel layer is down: nothing was applied", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unsuspend(State(state): State<AppState>, AuthUser(caller): AuthUser, Path(username): Path<String>) -> AppResult<Json<Suspension>> {
    admin(&caller)?;
    let user = account(&state, &username).await?;
    layer_up(&state)?;
    let mut entry = audit::entry(&state, &caller, ModerationAction::Unsuspend);
    entry.target = Some(user.username.clone());
    store::unsuspend(&state.db, user.id, &entry).await?;
    state.sanctions.set_suspension(user.id, None);
    tracing::info!(user = %user.username, by = %caller.username, "suspension lifted");
    Ok(Json(Suspension { username: user.username, suspended: false, until: None, reason: None }))
}

/// The accounts suspended now, newest first (admins). Suspensions whose duration has ended
/// are not listed.
#[utoipa::path(get, path = "/api/suspensions", tag = "moderation", security(("bearer" = [])), params(SuspensionsQuery),
    responses(
        (status = 200, description = "Suspended accounts, newest first", body = SuspensionsPage),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid cursor or limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(State(state): State<AppState>, AuthUser(caller): AuthUser, ApiQuery(q): ApiQuery<SuspensionsQuery>) -> AppResult<Json<SuspensionsPage>> {
    admin(&caller)?;
    let limit = list_limit(q.limit, 50)?;
    let before = decode_cursor(q.cursor.as_deref())?;
    let mut rows = store::suspensions_page(&state.db, now_ms(), before, limit as u64 + 1).await?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| format!("{}-{}", r.created_at, r.user_id))
    } else {
        None
    };
    let suspensions = rows
        .into_iter()
        .map(|r| SuspendedAccount {
            username: r.username,
            reason: r.reason,
            until: r.ends_at.map(Timestamp::from_millis),
            by: r.by_name,
            at: Timestamp::from_millis(r.created_at),
        })
        .collect();
    Ok(Json(SuspensionsPage { suspensions, next_cursor }))
}

/// The position a suspensions (or a room's bans or mutes) cursor stands for,
/// `<created_at ms>-<user id>` (the list continues below it): these rows have no id of their
/// own, and two can share a millisecond.
/// -32602 / 422 `cursor` for anything else; empty means the first page.
pub(super) fn decode_cursor(cursor: Option<&str>) -> AppResult<Option<(i64, i64)>> {
    let bad = || AppError::invalid("cursor", "must be a next_cursor a list returned");
    let Some(cursor) = cursor.filter(|c| !c.is_empty()) else { return Ok(None) };
    let (at, user) = cursor.split_once('-').ok_or_else(bad)?;
    let digits = |part: &str, max: usize| -> AppResult<i64> {
        if part.is_empty() || part.len() > max || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    Ok(Some((digits(at, 15)?, digits(user, 18)?)))
}

/// Delete a user's messages, in one room or everywhere, as a background job: follow it with
/// `GET /api/jobs/{id}` or `job.subscribe` (`job.progress`, `job.finished`). Each message
/// becomes a deleted message (`message.deleted` to its room).
#[utoipa::path(post, path = "/api/users/{username}/purge", tag = "moderation", security(("bearer" = [])),
    params(("username" = String, Path, description = "The account")), request_body = Option<PurgeRequest>,
    responses(
        (status = 202, description = "Accepted; the job runs in the background", body = JobAccepted),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user or room", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn purge(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(username): Path<String>,
    OptionalJson(body): OptionalJson<PurgeRequest>,
) -> AppResult<(StatusCode, Json<JobAccepted>)> {
    admin(&caller)?;
    let user = account(&state, &username).await?;
    let room = match body.room.as_deref() {
        None => None,
        Some(name) => {
            let name = validate::room_name(name).map_err(|m| AppError::invalid("room", m))?;
            Some(rooms::by_name(&state.db, name).await?.ok_or(AppError::NotFound("room"))?)
        }
    };
    let mut entry = audit::entry(&state, &caller, ModerationAction::Purge);
    (entry.target, entry.room) = (Some(user.username.clone()), room.as_ref().map(|r| r.name.clone()));
    let job = jobs::create_purge(&state.db, caller.user_id, user.id, room.as_ref().map(|r| r.name.as_str()), &entry).await?;
    let job_id = job.id;
    tracing::info!(job = job_id, user = %user.username, by = %caller.username, room = ?entry.room, "purge queued");
    state.jobs.spawn(state.db.clone(), state.layer.clone(), job);
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_reason_fits_a_close_frame_and_never_cuts_a_character() {
        assert_eq!(close_reason(None), "account suspended");
        let long = close_reason(Some(&"é".repeat(200)));
        assert!(long.len() <= MAX_CLOSE_REASON && long.starts_with("account suspended: é"));
    }

    #[test]
    fn a_suspensions_cursor_is_two_numbers_or_nothing() {
        assert_eq!(decode_cursor(None).unwrap(), None);
        assert_eq!(decode_cursor(Some("")).unwrap(), None);
        assert_eq!(decode_cursor(Some("1765000000000-42")).unwrap(), Some((1_765_000_000_000, 42)));
        assert_eq!(decode_cursor(Some("999999999999999-999999999999999999")).unwrap(), Some((999_999_999_999_999, 999_999_999_999_999_999)));
        for bad in ["42", "-1", "1-", "1--2", "a-1", "1-b", "+1-2", "1-2-3", "1234567890123456-1", "1-1234567890123456789"] {
            assert!(decode_cursor(Some(bad)).is_err(), "{bad}");
        }
    }
}
