//! The audit log: who did what to whom, where, why, when and on which instance.
//!
//! Features build an [`Audit`] with [`entry`] and hand it to the storage call of their
//! action, which writes it in the same transaction. `GET /api/audit` pages it for admins,
//! newest first, with filters; `POST /api/audit/export` writes the rows matching the same
//! filters to a JSON or CSV file with the export job.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_shared::moderation::{AuditEntry, AuditExportRequest, AuditPage, AuditQuery, ModerationAction};
use confab_shared::{JobAccepted, Problem, Timestamp};

use crate::auth::Identity;
use crate::auth::extract::AuthUser;
use crate::error::{AppError, AppResult};
use crate::features::{Page, list_limit};
use crate::http::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::storage::jobs::{self, Export};
use crate::storage::moderation::{self as store, Audit, AuditFilter};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/audit", get(list)).route("/api/audit/export", post(export))
}

/// An audit row of `actor`'s `action`.
pub fn entry(state: &AppState, actor: &Identity, action: ModerationAction) -> Audit {
    Audit {
        actor_id: Some(actor.user_id),
        actor: actor.username.clone(),
        action,
        target: None,
        room: None,
        reason: None,
        detail: None,
        instance: instance(state),
    }
}

/// This instance's name in the audit log: its channel-layer id.
pub fn instance(state: &AppState) -> String {
    format!("{:08x}", state.layer.hub().instance())
}

/// -32003 / 403 unless `caller` is an admin.
pub fn admin(caller: &Identity) -> AppResult<()> {
    if !caller.is_admin {
        return Err(AppError::Forbidden("only admins can do this"));
    }
    Ok(())
}

/// Page the audit log, newest first (admins).
#[utoipa::path(get, path = "/api/audit", tag = "moderation", security(("bearer" = [])), params(AuditQuery),
    responses(
        (status = 200, description = "Entries, newest first", body = AuditPage),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter, cursor or limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(State(state): State<AppState>, AuthUser(caller): AuthUser, ApiQuery(q): ApiQuery<AuditQuery>) -> AppResult<Json<AuditPage>> {
    admin(&caller)?;
    let limit = list_limit(q.limit, 50)?;
    let before_id = Page::decode_id(q.cursor.as_deref())?;
    let AuditQuery { actor, target, room, action, after, before, .. } = q;
    let filter = filter(actor, target, room, action, after, before)?;
    let rows = store::audit_page(&state.db, &filter, before_id, limit as u64 + 1).await?;
    let (rows, next_cursor) = Page::split_by_id(rows, limit, |r| r.id);
    Ok(Json(AuditPage { entries: rows.into_iter().map(AuditEntry::from).collect(), next_cursor }))
}

/// Export the audit log, or the rows matching the filters of `GET /api/audit`, oldest
/// first, to a JSON (an array of `AuditEntry`) or CSV file (admins). It runs as a background
/// job like a room export: poll `GET /api/jobs/{id}` or watch `job.progress`, then fetch
/// `GET /api/jobs/{id}/download`.
#[utoipa::path(post, path = "/api/audit/export", tag = "moderation", security(("bearer" = [])), request_body = AuditExportRequest,
    responses(
        (status = 202, description = "Accepted; the job runs in the background", body = JobAccepted),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid format or filter", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The caller already has `jobs_per_user` jobs queued or running", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export(State(state): State<AppState>, AuthUser(caller): AuthUser, ApiJson(body): ApiJson<AuditExportRequest>) -> AppResult<(StatusCode, Json<JobAccepted>)> {
    admin(&caller)?;
    let AuditExportRequest { format, actor, target, room, action, after, before } = body;
    let filter = filter(actor, target, room, action, after, before)?;
    let job = jobs::create_export(&state.db, caller.user_id, Export::Audit(&filter), &format).await?;
    tracing::info!(job = job.id, user = %caller.username, format = jobs::format_name(&format), "audit export queued");
    Ok((StatusCode::ACCEPTED, Json(crate::features::jobs::admit(&state, job).await?)))
}

/// The storage filter of the audit filters, checked (-32602 / 422 naming the field); an
/// empty actor or target is no filter.
fn filter(
    actor: Option<String>,
    target: Option<String>,
    room: Option<String>,
    action: Option<ModerationAction>,
    after: Option<Timestamp>,
    before: Option<Timestamp>,
) -> AppResult<AuditFilter> {
    let bounded = |value: Option<String>, field: &'static str, max: usize| -> AppResult<Option<String>> {
        match value.filter(|v| !v.is_empty()) {
            Some(v) if v.chars().count() > max => Err(AppError::invalid(field, format!("at most {max} characters"))),
            other => Ok(other),
        }
    };
    Ok(AuditFilter {
        actor: bounded(actor, "actor", 32)?,
        target: bounded(target, "target", 64)?,
        room: room_filter(room.as_deref())?.map(str::to_owned),
        action,
        after: after.map(|t| t.0.timestamp_millis()),
        before: before.map(|t| t.0.timestamp_millis()),
    })
}

/// A list's `room` filter: absent, or a room name (-32602 / 422 `room` otherwise, the empty
/// name included: the schema's pattern does not allow it).
pub fn room_filter(room: Option<&str>) -> AppResult<Option<&str>> {
    room.map(|name| confab_shared::validate::room_name(name).map_err(|why| AppError::invalid("room", why))).transpose()
}
