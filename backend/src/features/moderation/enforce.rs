//! The checks the other features call before they let someone in or let them speak: each
//! reads the in-memory [`Sanctions`](super::sanctions::Sanctions), never the database
//! ([`mute_notice`] reads who decided a mute, and only for someone muted).

use std::time::Instant;

use confab_shared::Timestamp;
use confab_shared::moderation::{ModerationAction, ModerationApplied, Sanction};

use super::sanctions::Entry;
use crate::auth::Identity;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::storage::moderation::{self as store, Kind};
use crate::storage::now_ms;

fn refused(reason: Sanction, entry: Entry, what: &str) -> AppError {
    let mut detail = what.to_owned();
    if let Some(why) = entry.reason.as_deref().filter(|r| !r.is_empty()) {
        detail.push_str(": ");
        detail.push_str(why);
    }
    AppError::Sanctioned { reason, until: entry.until, detail }
}

/// -32003 `banned` when `user_id` is banned from `room_id`.
pub fn not_banned(state: &AppState, room_id: i64, user_id: i64) -> AppResult<()> {
    match state.sanctions.ban(room_id, user_id) {
        Some(entry) => Err(refused(Sanction::Banned, entry, "you are banned from this room")),
        None => Ok(()),
    }
}

/// -32003 `muted` when `user_id` is muted in `room_id` (or banned from it).
pub fn may_speak(state: &AppState, room_id: i64, user_id: i64) -> AppResult<()> {
    not_banned(state, room_id, user_id)?;
    match state.sanctions.mute(room_id, user_id) {
        Some(entry) => Err(refused(Sanction::Muted, entry, "you are muted in this room")),
        None => Ok(()),
    }
}

/// [`may_speak`], then slow mode: -32029 `slow_mode` when `me` sent to the room too
/// recently (owners, moderators and admins are exempt). A send that passes counts.
pub fn may_send(state: &AppState, room_id: i64, me: &Identity) -> AppResult<()> {
    may_speak(state, room_id, me.user_id)?;
    state
        .sanctions
        .slow_mode_send(room_id, me.user_id, me.is_admin, Instant::now())
        .map_err(|wait| AppError::SlowMode { retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1) })
}

/// 403 / -32003 `suspended` when the account is suspended.
pub fn not_suspended(state: &AppState, user_id: i64) -> AppResult<()> {
    match state.sanctions.suspension(user_id) {
        Some(entry) => Err(refused(Sanction::Suspended, entry, "this account is suspended")),
        None => Ok(()),
    }
}

/// `user_id`'s mute in `room`, told as `moderation.applied` told it (`room.join`'s `muted`), so
/// a client that joins again knows at once why its composer is held back.
pub async fn mute_notice(state: &AppState, room_id: i64, room: &str, user_id: i64) -> AppResult<Option<ModerationApplied>> {
    if state.sanctions.mute(room_id, user_id).is_none() {
        return Ok(None);
    }
    let Some(row) = store::room_sanction(&state.db, room_id, user_id, Kind::Mute, now_ms()).await? else { return Ok(None) };
    Ok(Some(ModerationApplied {
        action: ModerationAction::Mute,
        room: Some(room.to_owned()),
        until: row.ends_at.map(Timestamp::from_millis),
        reason: row.reason,
        by: row.by_name.unwrap_or_else(|| "a former moderator".to_owned()),
        role: None,
    }))
}
