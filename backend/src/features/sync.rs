//! `sync`: what a reconnecting client missed, by last-seen id, at most 500 items per call,
//! for at most 5000 rooms per call.

use std::collections::HashMap;

use confab_shared::rpc::{MAX_SYNC_ROOMS, SyncParams, SyncResult};
use confab_shared::validate;

use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::storage::{dms, messages, rooms};
use crate::ws::Conn;

/// Most items (messages and DMs together) one `sync` returns.
pub const MAX_ITEMS: usize = 500;

/// Rooms are visited in name order, then DMs; `complete: false` as soon as anything may be
/// left, so a client simply calls again with the ids it has now. The rooms named are bounded
/// ([`MAX_SYNC_ROOMS`]) and looked up in one query, so a call costs at most that many
/// message queries, whatever the client sends.
pub async fn sync(state: &AppState, conn: &Conn, p: SyncParams) -> AppResult<SyncResult> {
    if p.rooms.len() > MAX_SYNC_ROOMS {
        return Err(AppError::invalid("rooms", format!("at most {MAX_SYNC_ROOMS} rooms per call; split them over several calls")));
    }
    let caller = conn.identity.as_ref();
    // Rooms the caller may not read, that do not exist or whose names break the rules yield
    // nothing, not an error: one stale entry must not block catching up on the others.
    let names: Vec<&str> = p.rooms.keys().map(String::as_str).filter(|name| validate::room_name(name).is_ok()).collect();
    let readable: HashMap<String, i64> = rooms::by_names(&state.db, &names)
        .await?
        .into_iter()
        .filter(|room| super::rooms::check_access(caller, room).is_ok())
        .map(|room| (room.name, room.id))
        .collect();
    let mut budget = MAX_ITEMS;
    let mut complete = true;
    let mut found = Vec::new();
    for (name, last_seen) in &p.rooms {
        if budget == 0 {
            complete = false;
            break;
        }
        let Some(&room_id) = readable.get(name) else { continue };
        let mut rows = messages::after(&state.db, room_id, *last_seen, budget as u64 + 1).await?;
        if rows.len() > budget {
            rows.truncate(budget);
            complete = false;
        }
        budget -= rows.len();
        found.extend(rows);
    }
    let messages = messages::to_wire(&state.db, found).await?;

    let mut direct = Vec::new();
    if let (Some(after), Some(me)) = (p.dm_after, caller) {
        if budget == 0 {
            complete = false;
        } else {
            direct = dms::after(&state.db, me.user_id, after, budget as u64 + 1).await?;
            if direct.len() > budget {
                direct.truncate(budget);
                complete = false;
            }
        }
    }
    Ok(SyncResult { messages, dms: direct, complete })
}
