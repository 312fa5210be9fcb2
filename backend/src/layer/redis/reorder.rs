//! What a receiving instance does with a message from Redis: room messages released in
//! sequence, everything else delivered as it comes.
//!
//! Room messages carry their per-room sequence number. Two instances committing to one room
//! publish after their own commits, so their messages can arrive out of order: a receiver
//! holds a gap open for [`REORDER_WINDOW`] at most, so no client sees them out of id order.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use super::wire::{GROUP_PREFIX, decode};
use crate::layer::{Delivery, Hub};

/// How long a receiver waits for a missing room message before releasing later ones.
pub const REORDER_WINDOW: Duration = Duration::from_millis(250);

/// A room's first message's sequence number (the counter starts at 1).
const FIRST_SEQ: i64 = 1;

/// Per-group hold-back queue that releases room messages in sequence.
#[derive(Default)]
pub struct Reorder {
    next: HashMap<String, i64>,
    held: HashMap<String, (Instant, BTreeMap<i64, Delivery>)>,
}

impl Reorder {
    /// Delivers one message received on `channel` to this instance's connections.
    pub fn receive(&mut self, hub: &Hub, channel: &str, payload: &[u8]) {
        if let Some(group) = channel.strip_prefix(GROUP_PREFIX) {
            match decode(payload, false) {
                Some((delivery @ Delivery::Ordered { seq, .. }, _)) => self.accept(hub, group, seq, delivery),
                Some((delivery, _)) => {
                    hub.deliver_group(group, &delivery);
                }
                None => tracing::warn!(%channel, "undecodable layer message"),
            }
        } else if let Some((delivery, Some(conn))) = decode(payload, true) {
            hub.deliver_conn(conn, &delivery);
        }
    }

    fn accept(&mut self, hub: &Hub, group: &str, seq: i64, delivery: Delivery) {
        let expected = self.next.get(group).copied();
        // The first message of a group this instance sees may have overtaken earlier ones
        // published by other instances (each publishes after its own commit): unless it is
        // the room's first message, it is held like a gap until they arrive or the window
        // ends. Its cost: a room's first message after an instance starts may wait that long.
        let hold = match expected {
            Some(next) => seq > next,
            None => seq > FIRST_SEQ,
        };
        if hold {
            let (_, queue) = self.held.entry(group.to_owned()).or_insert_with(|| (Instant::now() + REORDER_WINDOW, BTreeMap::new()));
            queue.insert(seq, delivery);
            return;
        }
        hub.deliver_group(group, &delivery);
        if expected.is_none_or(|next| seq >= next) {
            self.next.insert(group.to_owned(), seq + 1);
        }
        self.release(hub, group, false);
    }

    /// Delivers held messages that are now in sequence (or all of them when `force`).
    fn release(&mut self, hub: &Hub, group: &str, force: bool) {
        let Some((_, queue)) = self.held.get_mut(group) else { return };
        let mut next = self.next.get(group).copied().unwrap_or(i64::MIN);
        while let Some(entry) = queue.first_entry() {
            if !force && *entry.key() != next {
                break;
            }
            let seq = *entry.key();
            hub.deliver_group(group, &entry.remove());
            next = seq + 1;
        }
        self.next.insert(group.to_owned(), next);
        if queue.is_empty() {
            self.held.remove(group);
        }
    }

    /// When the oldest gap's window ends, if any gap is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.held.values().map(|(deadline, _)| *deadline).min()
    }

    /// Releases the groups whose gap's window has ended.
    pub fn expire(&mut self, hub: &Hub) {
        let now = Instant::now();
        let due: Vec<String> = self.held.iter().filter(|(_, (d, _))| *d <= now).map(|(g, _)| g.clone()).collect();
        for group in due {
            tracing::debug!(%group, "released room messages after a gap");
            self.release(hub, &group, true);
        }
    }
}

/// Resolves at [`Reorder::deadline`]; never, when no gap is open (a `select!` arm that
/// `if deadline.is_some()` disables).
pub async fn until(deadline: Option<Instant>) {
    tokio::time::sleep_until(deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_messages_are_released_in_sequence() {
        let hub = Hub::new(1);
        let (a, mut inbox) = hub.register(None, crate::layer::hub::QueueLimits::frames(16));
        hub.group_add("room:r", a.conn());
        let mut reorder = Reorder::default();
        let msg = |seq: i64| Delivery::Ordered { text: seq.to_string().into(), seq };
        reorder.accept(&hub, "room:r", 1, msg(1));
        reorder.accept(&hub, "room:r", 3, msg(3));
        reorder.accept(&hub, "room:r", 4, msg(4));
        reorder.accept(&hub, "room:r", 2, msg(2));
        let got: Vec<String> = std::iter::from_fn(|| inbox.try_recv()).map(|t| t.to_string()).collect();
        assert_eq!(got, ["1", "2", "3", "4"]);
        // A gap that never fills is released when forced (the window expired).
        reorder.accept(&hub, "room:r", 6, msg(6));
        assert!(inbox.try_recv().is_none());
        reorder.release(&hub, "room:r", true);
        assert_eq!(inbox.try_recv().map(|t| t.to_string()).as_deref(), Some("6"));
    }

    #[test]
    fn the_first_messages_seen_of_a_room_wait_for_earlier_ones_from_other_instances() {
        let hub = Hub::new(1);
        let (a, mut inbox) = hub.register(None, crate::layer::hub::QueueLimits::frames(16));
        hub.group_add("room:r", a.conn());
        let mut reorder = Reorder::default();
        let msg = |seq: i64| Delivery::Ordered { text: seq.to_string().into(), seq };
        // Seq 3 overtook 1 and 2: nothing is known of the room yet, so it waits.
        reorder.accept(&hub, "room:r", 3, msg(3));
        assert!(inbox.try_recv().is_none());
        reorder.accept(&hub, "room:r", 1, msg(1));
        reorder.accept(&hub, "room:r", 2, msg(2));
        let got: Vec<String> = std::iter::from_fn(|| inbox.try_recv()).map(|t| t.to_string()).collect();
        assert_eq!(got, ["1", "2", "3"]);
        // Joining a busy room: its first message seen here is released when the window ends,
        // in order with whatever arrived meanwhile.
        hub.group_add("room:busy", a.conn());
        reorder.accept(&hub, "room:busy", 501, msg(501));
        reorder.accept(&hub, "room:busy", 500, msg(500));
        assert!(inbox.try_recv().is_none());
        reorder.release(&hub, "room:busy", true);
        let got: Vec<String> = std::iter::from_fn(|| inbox.try_recv()).map(|t| t.to_string()).collect();
        assert_eq!(got, ["500", "501"]);
        reorder.accept(&hub, "room:busy", 502, msg(502));
        assert_eq!(inbox.try_recv().map(|t| t.to_string()).as_deref(), Some("502"));
    }
}
