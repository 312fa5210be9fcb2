//! A joined room's member panel, paged: `room.join` gives the first page, "more" asks
//! `room.members` for the next, and a `room.online_changed` (a busy tick in a big room)
//! reloads the first page, since the itemised joins and leaves were not sent.

use confab_shared::rpc::RoomMembersParams;
use leptos::prelude::*;

use super::Chat;
use super::room::RoomState;

/// Room members fetched per page in the member panel.
const MEMBERS_PAGE: u32 = 100;

impl Chat {
    /// The member panel's next page of a joined room's present users.
    pub async fn more_members(self, state: RoomState) {
        let Some(cursor) = state.members_cursor.get_untracked() else { return };
        let params = RoomMembersParams { room: state.wire_name(), cursor: Some(cursor), limit: Some(MEMBERS_PAGE) };
        match self.socket.call(params).await {
            Ok(page) => {
                state.online.update(|o| o.extend(page.members));
                state.online_total.set(page.total as u32);
                state.members_cursor.set(page.next_cursor);
            }
            Err(err) => self.report(&err),
        }
    }

    /// Replaces the member panel's names with the first page.
    pub(super) async fn reload_members(self, state: RoomState) {
        let params = RoomMembersParams { room: state.wire_name(), cursor: None, limit: Some(MEMBERS_PAGE) };
        match self.socket.call(params).await {
            Ok(page) => {
                state.online.set(page.members.into_iter().collect());
                state.online_total.set(page.total as u32);
                state.members_cursor.set(page.next_cursor);
            }
            Err(err) => self.report(&err),
        }
    }
}
