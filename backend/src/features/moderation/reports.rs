//! Reports: any member flags a message (`message.report`, once per message); admins see
//! every report and a room's owner and moderators see their room's (`GET /api/reports`),
//! and resolving one records what was done (`POST /api/reports/{id}/resolve`).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_shared::moderation::{
    ModerationAction, Report, ReportAccepted, ReportParams, ReportState, ReportsPage, ReportsQuery, ResolveReport,
};
use confab_shared::{Problem, Timestamp, validate};

use super::audit::{self, room_filter};
use super::reason;
use super::roles::{self, Rank};
use crate::auth::Identity;
use crate::auth::extract::AuthUser;
use crate::error::{AppError, AppResult};
use crate::features::{Page, list_limit, path_id};
use crate::http::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::storage::moderation::{self as store, ReportRow};
use crate::storage::{StorageError, messages, rooms};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/reports", get(list)).route("/api/reports/{id}/resolve", post(resolve))
}

/// `message.report`: a member of the message's room (or anyone who may read it) reports it,
/// once, while they have fewer than `open_reports_per_user` reports open: one account cannot
/// bury the moderators' queue (calls racing at the cap may pass it by the calls in flight).
pub async fn report(state: &AppState, me: &Identity, p: ReportParams) -> AppResult<ReportAccepted> {
    let why = reason(Some(&p.reason), "reason")?.ok_or_else(|| AppError::invalid("reason", "must not be empty"))?;
    let cap = state.config.open_reports_per_user;
    if cap > 0 && store::open_reports_by(&state.db, me.user_id).await? >= cap {
        return Err(AppError::Conflict("you have too many open reports; wait until moderators resolve some"));
    }
    let message = messages::by_id(&state.db, p.id).await?.ok_or(AppError::NotFound("message"))?;
    let room = rooms::by_id(&state.db, message.room_id).await?.ok_or(AppError::NotFound("message"))?;
    crate::features::rooms::check_access(Some(me), &room)?;
    super::enforce::not_banned(state, room.id, me.user_id)?;
    let mut entry = audit::entry(state, me, ModerationAction::Report);
    (entry.room, entry.reason, entry.detail) = (Some(room.name.clone()), Some(why.clone()), Some(format!("message {}", message.id)));
    entry.target = Some(message.author_id.to_string());
    if let Some(author) = crate::storage::users::by_id(&state.db, message.author_id).await? {
        entry.target = Some(author.username);
    }
    match store::report(&state.db, message.id, room.id, me.user_id, &why, &entry).await {
        Ok(report_id) => Ok(ReportAccepted { report_id }),
        Err(StorageError::Duplicate) => Err(AppError::Conflict("you have reported this message already")),
        Err(err) => Err(err.into()),
    }
}

/// The rooms whose reports `caller` may see: `None` for every room (admins).
async fn visible_rooms(state: &AppState, caller: &Identity, room: Option<&str>) -> AppResult<Option<Vec<i64>>> {
    match room {
        Some(name) => {
            let name = validate::room_name(name).map_err(|m| AppError::invalid("room", m))?;
            let room = rooms::by_name(&state.db, name).await?.ok_or(AppError::NotFound("room"))?;
            roles::may_moderate(roles::rank(state, &room, caller.user_id, caller.is_admin).await?)?;
            Ok(Some(vec![room.id]))
        }
        None if caller.is_admin => Ok(None),
        None => Ok(Some(store::rooms_moderated_by(&state.db, caller.user_id).await?)),
    }
}

/// Reports with their messages: two queries for the page, whatever its length.
async fn to_wire(state: &AppState, rows: Vec<ReportRow>) -> AppResult<Vec<Report>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.message_id).collect();
    let found = messages::by_ids(&state.db, &ids).await?;
    let by_id: std::collections::HashMap<i64, confab_shared::Message> =
        messages::to_wire(&state.db, found).await?.into_iter().map(|m| (m.id, m)).collect();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(message) = by_id.get(&row.message_id).cloned() else { continue };
        out.push(Report {
            id: row.id,
            state: if row.state == "resolved" { ReportState::Resolved } else { ReportState::Open },
            reporter: row.reporter,
            reason: row.reason,
            created_at: Timestamp::from_millis(row.created_at),
            message,
            resolved_by: row.resolved_by,
            resolution: row.resolution,
            note: row.note,
            resolved_at: row.resolved_at.map(Timestamp::from_millis),
        });
    }
    Ok(out)
}

/// Page the reports queue, newest first: admins see every room, a room's owner and
/// moderators see their rooms (`room` narrows it to one).
#[utoipa::path(get, path = "/api/reports", tag = "moderation", security(("bearer" = [])), params(ReportsQuery),
    responses(
        (status = 200, description = "Reports, newest first, each with its message", body = ReportsPage),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a moderator of the room", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room, state, cursor or limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(State(state): State<AppState>, AuthUser(caller): AuthUser, ApiQuery(q): ApiQuery<ReportsQuery>) -> AppResult<Json<ReportsPage>> {
    let limit = list_limit(q.limit, 50)?;
    let before = Page::decode_id(q.cursor.as_deref())?;
    let rooms = visible_rooms(&state, &caller, room_filter(q.room.as_deref())?).await?;
    let rows = store::reports_page(&state.db, q.state.unwrap_or(ReportState::Open), rooms.as_deref(), before, limit as u64 + 1).await?;
    let (rows, next_cursor) = Page::split_by_id(rows, limit, |r| r.id);
    Ok(Json(ReportsPage { reports: to_wire(&state, rows).await?, next_cursor }))
}

/// Resolve a report, recording what was done about it (`dismissed`, `deleted`, `banned`, …).
#[utoipa::path(post, path = "/api/reports/{id}/resolve", tag = "moderation", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Report id")), request_body = ResolveReport,
    responses(
        (status = 200, description = "Resolved", body = Report),
        (status = 403, description = "Not an admin or a moderator of the report's room", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such report", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Resolved already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid action or note", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn resolve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResolveReport>,
) -> AppResult<Json<Report>> {
    let id = path_id(&id, "report")?;
    let action = body.action.trim();
    if action.is_empty() || body.action.chars().count() > 64 || body.action.chars().any(char::is_control) {
        return Err(AppError::invalid("action", "1 to 64 characters, not only spaces, without control characters"));
    }
    let note = reason(body.note.as_deref(), "note")?;
    let row = store::report_by_id(&state.db, id).await?.ok_or(AppError::NotFound("report"))?;
    let room = rooms::by_id(&state.db, row.room_id).await?.ok_or(AppError::NotFound("report"))?;
    let rank = roles::rank(&state, &room, caller.user_id, caller.is_admin).await?;
    if rank < Rank::Moderator {
        // A report of a room one does not moderate is none of one's business: as if absent.
        return Err(AppError::NotFound("report"));
    }
    let mut entry = audit::entry(&state, &caller, ModerationAction::ResolveReport);
    (entry.room, entry.target, entry.reason, entry.detail) = (Some(room.name.clone()), Some(id.to_string()), note.clone(), Some(action.to_owned()));
    if !store::resolve(&state.db, id, caller.user_id, action, note.as_deref(), &entry).await? {
        return Err(AppError::Conflict("the report was resolved already"));
    }
    let row = store::report_by_id(&state.db, id).await?.ok_or(AppError::NotFound("report"))?;
    to_wire(&state, vec![row]).await?.pop().map(Json).ok_or(AppError::NotFound("report"))
}
