//! `sync`: what a reconnecting client missed, by last-seen id, at most 500 items per call.

use confab_shared::rpc::{SyncParams, SyncResult};

use crate::error::AppResult;
use crate::state::AppState;
use crate::storage::{dms, messages};
use crate::ws::Conn;

/// Most items (messages and DMs together) one `sync` returns.
pub const MAX_ITEMS: usize = 500;

/// Rooms are visited in name order, then DMs; `complete: false` as soon as anything may be
/// left, so a client simply calls again with the ids it has now.
pub async fn sync(state: &AppState, conn: &Conn, p: SyncParams) -> AppResult<SyncResult> {
    let caller = conn.identity.as_ref();
    let mut budget = MAX_ITEMS;
    let mut complete = true;
    let mut found = Vec::new();
    for (name, last_seen) in &p.rooms {
        if budget == 0 {
            complete = false;
            break;
        }
        // Rooms the caller may not read (or that do not exist) yield nothing, not an error:
        // one stale entry must not block catching up on the others.
        let Ok(room) = super::rooms::readable(state, caller, name).await else { continue };
        let mut rows = messages::after(&state.db, room.id, *last_seen, budget as u64 + 1).await?;
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
