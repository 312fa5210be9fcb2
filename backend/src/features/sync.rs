//! `sync`: what a reconnecting client missed, by last-seen id, at most 500 items and 1 MiB
//! per call, for at most 5000 rooms per call, in a fixed number of queries.

use confab_shared::rpc::{MAX_SYNC_ROOMS, SyncParams, SyncResult};
use confab_shared::validate;

use super::Budget;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::storage::{dms, messages};
use crate::ws::Conn;

/// Most items (messages and DMs together) one `sync` returns.
pub const MAX_ITEMS: usize = 500;
/// Messages turned into wire form (their reactions loaded) at a time: a page of small
/// messages takes one round, and one of heavily reacted messages stops loading once the
/// answer is full instead of loading the reactions of all 500.
const WIRE_CHUNK: usize = 100;

/// Rooms in name order, then DMs; `complete: false` as soon as anything may be left (the item
/// limit, or the answer's byte budget, [`Conn::answer_budget`]), so a client simply calls
/// again with the ids it has now. Every room named is handled by one query
/// ([`messages::after_in_rooms`]), which skips rooms that do not exist and, for callers who
/// are not admins, admin-only rooms: the number of queries does not depend on the rooms named.
pub async fn sync(state: &AppState, conn: &Conn, p: SyncParams) -> AppResult<SyncResult> {
    if p.rooms.len() > MAX_SYNC_ROOMS {
        return Err(AppError::invalid("rooms", format!("at most {MAX_SYNC_ROOMS} rooms per call; split them over several calls")));
    }
    let caller = conn.identity.as_ref();
    let is_admin = caller.is_some_and(|c| c.is_admin);
    // Rooms the caller may not read, that do not exist or whose names break the rules yield
    // nothing, not an error: one stale entry must not block catching up on the others.
    // Nor do rooms the caller is banned from: left out of the query, so they cannot take up
    // the item limit either.
    let banned = caller.map(|me| state.sanctions.banned_rooms(me.user_id)).unwrap_or_default();
    let wanted: Vec<(&str, i64)> = p
        .rooms
        .iter()
        .filter(|(name, _)| validate::room_name(name).is_ok() && !banned.iter().any(|b| &**b == name.as_str()))
        .map(|(name, &after)| (name.as_str(), after))
        .collect();
    let fetch = MAX_ITEMS as u64 + 1;
    let mut rows = messages::after_in_rooms(&state.db, &wanted, is_admin, fetch, fetch).await?;
    let mut complete = rows.len() <= MAX_ITEMS;
    rows.truncate(MAX_ITEMS);
    // What the item limit leaves for direct messages.
    let left = MAX_ITEMS - rows.len();

    let mut result = SyncResult { messages: Vec::new(), dms: Vec::new(), complete: false };
    let mut budget = Budget::after(conn.answer_budget, &result);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() && !budget.cut() {
        let chunk: Vec<_> = rows.by_ref().take(WIRE_CHUNK).collect();
        result.messages.extend(budget.oldest(messages::to_wire(&state.db, chunk).await?));
    }

    if let (Some(after), Some(me)) = (p.dm_after, caller) {
        if left == 0 || budget.cut() {
            complete = false;
        } else {
            let mut direct = dms::after(&state.db, me.user_id, after, left as u64 + 1).await?;
            if direct.len() > left {
                direct.truncate(left);
                complete = false;
            }
            result.dms = budget.oldest(direct);
        }
    }
    result.complete = complete && !budget.cut();
    Ok(result)
}
