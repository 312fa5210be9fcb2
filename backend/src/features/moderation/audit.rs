//! The audit log: who did what to whom, where, why, when and on which instance.
//!
//! Features build an [`Audit`] with [`entry`] and hand it to the storage call of their
//! action, which writes it in the same transaction. `GET /api/audit` pages it for admins,
//! newest first, with filters.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use confab_shared::moderation::{AuditEntry, AuditPage, AuditQuery, ModerationAction};
use confab_shared::{Problem, Timestamp};

use crate::auth::Identity;
use crate::auth::extract::AuthUser;
use crate::error::{AppError, AppResult};
use crate::features::{Page, list_limit};
use crate::http::ApiQuery;
use crate::state::AppState;
use crate::storage::moderation::{self as store, Audit, AuditFilter};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/audit", get(list))
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
    let bounded = |value: Option<String>, field: &'static str, max: usize| -> AppResult<Option<String>> {
        match value.filter(|v| !v.is_empty()) {
            Some(v) if v.chars().count() > max => Err(AppError::invalid(field, format!("at most {max} characters"))),
            other => Ok(other),
        }
    };
    let filter = AuditFilter {
        actor: bounded(q.actor, "actor", 32)?,
        target: bounded(q.target, "target", 64)?,
        room: room_filter(q.room.as_deref())?.map(str::to_owned),
        action: q.action,
        after: q.after.map(|t| t.0.timestamp_millis()),
        before: q.before.map(|t| t.0.timestamp_millis()),
    };
    let rows = store::audit_page(&state.db, &filter, before_id, limit as u64 + 1).await?;
    let (rows, next_cursor) = Page::split_by_id(rows, limit, |r| r.id);
    let entries = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: Timestamp::from_millis(r.created_at),
            actor: r.actor,
            // Rows are written by this code from the same enum; an unknown name would be a newer version's.
            action: ModerationAction::parse(&r.action).unwrap_or(ModerationAction::Configure),
            target: r.target,
            room: r.room,
            reason: r.reason,
            detail: r.detail,
            instance: r.instance,
        })
        .collect();
    Ok(Json(AuditPage { entries, next_cursor }))
}

/// A list's `room` filter: absent, or a room name (-32602 / 422 `room` otherwise, the empty
/// name included: the schema's pattern does not allow it).
pub fn room_filter(room: Option<&str>) -> AppResult<Option<&str>> {
    room.map(|name| confab_shared::validate::room_name(name).map_err(|why| AppError::invalid("room", why))).transpose()
}
