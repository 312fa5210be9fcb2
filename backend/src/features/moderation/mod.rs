//! Moderation: what a room's owner and moderators and the admins may do about people, and
//! the record of it.
//!
//! Every decision is stored with its audit row in one transaction before it takes effect,
//! and refused whole when the database or the channel layer is down. Then it is applied to
//! this instance's [`sanctions::Sanctions`] at once, sent through the channel layer (a kick
//! or ban takes the user's sockets out of the room on every instance; the user gets
//! `moderation.applied`), and picked up by the other instances' copies within one presence
//! tick ([`refresh`]).
//!
//! # Layout
//! - [`sanctions`]: the in-memory copy of what is forbidden now (held in `AppState`).
//! - [`enforce`]: the checks other features call (banned, muted, slow mode, suspended).
//! - [`roles`]: ranks in a room and the no-escalation rules.
//! - [`room_actions`]: `room.kick`, `room.ban`, `room.unban`, `room.mute`, `room.unmute`,
//!   `room.set_role`, `room.configure`; [`room_routes`]: the same over REST.
//! - [`accounts`]: suspending, unsuspending and purging accounts (`/api/users/{username}/…`).
//! - [`reports`]: `message.report` and the reports queue (`/api/reports`).
//! - [`audit`]: the audit log (`GET /api/audit`) and how features write to it.
//! - [`refresh`]: the periodic reload of the copy, and acting on what it finds.
//! - [`retention`]: the sweep that deletes messages older than a room's retention.

pub mod accounts;
pub mod audit;
pub mod enforce;
pub mod refresh;
pub mod reports;
pub mod retention;
pub mod roles;
pub mod room_actions;
pub mod room_routes;
pub mod sanctions;

use axum::Router;
use confab_shared::moderation::{MAX_DURATION_SECS, MAX_REASON_CHARS, ModerationApplied};
use confab_shared::rpc::Notification;

use crate::error::{AppError, AppResult};
use crate::layer::{Class, Delivery, group};
use crate::state::AppState;
use crate::storage::now_ms;

pub fn router() -> Router<AppState> {
    Router::new().merge(room_routes::router()).merge(accounts::router()).merge(reports::router()).merge(audit::router())
}

/// A `reason` as given (at most [`MAX_REASON_CHARS`], no control characters but line breaks,
/// as the schema's pattern says), stored trimmed; empty or only spaces means none.
pub fn reason(raw: Option<&str>, field: &'static str) -> AppResult<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.chars().count() > MAX_REASON_CHARS {
        return Err(AppError::invalid(field, format!("at most {MAX_REASON_CHARS} characters")));
    }
    if raw.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AppError::invalid(field, "must not contain control characters but line breaks"));
    }
    let text = raw.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// When a decision of `duration_secs` taken now ends, in milliseconds (`None`: until lifted).
pub fn ends_at(duration_secs: Option<u64>) -> AppResult<Option<i64>> {
    match duration_secs {
        None => Ok(None),
        Some(secs @ 1..=MAX_DURATION_SECS) => Ok(Some(now_ms() + secs as i64 * 1000)),
        Some(_) => Err(AppError::invalid("duration_secs", format!("must be 1 to {MAX_DURATION_SECS} seconds"))),
    }
}

/// -32603/503 before a decision when the channel layer cannot carry it to the other
/// instances: refused whole rather than applied on one instance only.
pub fn layer_up(state: &AppState) -> AppResult<()> {
    if !state.layer.is_up() {
        return Err(AppError::Unavailable("channel layer"));
    }
    Ok(())
}

/// Tells every socket of `user_id` about a decision (never dropped).
pub fn tell(state: &AppState, user_id: i64, applied: ModerationApplied) {
    let frame = Notification::ModerationApplied(applied).to_frame();
    if let Err(err) = state.layer.group_send(&group::user(user_id), Delivery::frame(frame, Class::Reliable)) {
        tracing::warn!(%err, user_id, "moderation.applied not sent");
    }
}

/// Takes `user_id`'s sockets out of `room` on every instance.
pub fn evict(state: &AppState, room: &str, user_id: i64) {
    let delivery = Delivery::Evict { user_id, room: room.into() };
    if let Err(err) = state.layer.group_send(&group::room(room), delivery) {
        // This instance's sockets were taken out; the others take theirs out on their next reload.
        tracing::warn!(%err, room, user_id, "eviction not sent to the other instances");
    }
}
