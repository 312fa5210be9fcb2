//! What the client has delivered, so that catching up after a reconnect misses nothing and
//! doubles nothing. Per the protocol's delivery rules, message ids increase and reach a
//! connection in id order per room, and `sync` returns everything newer than the ids it is
//! given; so one number per room (the newest id delivered) and one for direct messages are
//! enough: an item is new exactly when its id is larger.

use std::collections::{BTreeMap, HashMap};

use confab_shared::rpc::SyncParams;
use confab_shared::{DirectMessage, Message};

#[derive(Debug, Default)]
pub(crate) struct Cursors {
    /// Room → the newest message id delivered (or the baseline fixed at the first join).
    last_seen: HashMap<String, i64>,
    /// Rooms to re-join after a reconnect, in join order.
    pub(crate) rooms: Vec<String>,
    /// The newest direct message id delivered; `None` until the baseline is known.
    pub(crate) dm_after: Option<i64>,
}

impl Cursors {
    pub(crate) fn new(dm_after: Option<i64>) -> Self {
        Self { dm_after, ..Self::default() }
    }

    /// Whether `message` is new to this client; if so it counts as delivered.
    pub(crate) fn admit_message(&mut self, message: &Message) -> bool {
        let last = self.last_seen.entry(message.room.clone()).or_insert(0);
        if message.id <= *last {
            return false;
        }
        *last = message.id;
        true
    }

    /// Whether `dm` is new to this client; if so it counts as delivered.
    pub(crate) fn admit_dm(&mut self, dm: &DirectMessage) -> bool {
        if self.dm_after.is_some_and(|after| dm.id <= after) {
            return false;
        }
        self.dm_after = Some(dm.id);
        true
    }

    /// Moves the direct-message cursor forward to `id` (never back).
    pub(crate) fn raise_dm(&mut self, id: i64) {
        self.dm_after = Some(self.dm_after.unwrap_or(0).max(id));
    }

    pub(crate) fn last_seen_in(&self, room: &str) -> Option<i64> {
        self.last_seen.get(room).copied()
    }

    /// The first join fixes where catching up starts; a re-join keeps the cursor.
    pub(crate) fn joined(&mut self, room: &str, newest: i64) {
        if !self.rooms.iter().any(|r| r == room) {
            self.rooms.push(room.to_owned());
        }
        self.last_seen.entry(room.to_owned()).or_insert(newest);
    }

    pub(crate) fn left(&mut self, room: &str) {
        self.rooms.retain(|r| r != room);
        self.last_seen.remove(room);
    }

    /// The params of the next `sync` call.
    pub(crate) fn sync_params(&self, authenticated: bool) -> SyncParams {
        let rooms: BTreeMap<String, i64> =
            self.rooms.iter().map(|room| (room.clone(), self.last_seen.get(room).copied().unwrap_or(0))).collect();
        SyncParams { rooms, dm_after: authenticated.then(|| self.dm_after.unwrap_or(0)) }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use confab_shared::Timestamp;

    use super::*;

    fn message(room: &str, id: i64) -> Message {
        Message {
            id,
            room: room.to_owned(),
            author: "ann".to_owned(),
            text: "hi".to_owned(),
            sent_at: Timestamp::from_millis(0),
            edited_at: None,
            deleted: false,
            reactions: BTreeMap::new(),
            mentions: Vec::new(),
            mention_all: None,
        }
    }

    #[test]
    fn a_message_is_admitted_once_and_older_ones_never() {
        let mut cursors = Cursors::new(Some(0));
        cursors.joined("a", 10);
        assert!(!cursors.admit_message(&message("a", 10)), "the baseline counts as seen");
        assert!(cursors.admit_message(&message("a", 11)));
        assert!(!cursors.admit_message(&message("a", 11)), "a duplicate");
        assert!(!cursors.admit_message(&message("a", 9)), "an older one");
        assert!(cursors.admit_message(&message("b", 3)), "rooms count separately");
    }

    #[test]
    fn a_rejoin_keeps_the_cursor_and_leaving_drops_it() {
        let mut cursors = Cursors::new(None);
        cursors.joined("a", 5);
        assert!(cursors.admit_message(&message("a", 7)));
        cursors.joined("a", 0);
        assert_eq!(cursors.last_seen_in("a"), Some(7));
        assert_eq!(cursors.sync_params(false).rooms.get("a"), Some(&7));
        assert_eq!(cursors.sync_params(false).dm_after, None, "anonymous connections ask for no DMs");
        cursors.left("a");
        assert!(cursors.sync_params(true).rooms.is_empty());
        assert_eq!(cursors.sync_params(true).dm_after, Some(0));
    }
}
