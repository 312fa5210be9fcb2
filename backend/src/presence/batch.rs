//! Coalescing presence announcements per tick.
//!
//! Connections record first arrivals and last departures here as they happen (user presence
//! and room presence); every tick the [`Batcher`] keeps only the net change per user and per
//! (room, user): a user who goes offline and comes back within one tick announces nothing.
//!
//! - User presence: the tick's changes travel as **one** [`Delivery::Presence`] to the group
//!   [`group::PRESENCE`], which every instance hears and expands through its own watch index
//!   (one Redis message per instance per tick, whatever the number of watchers).
//! - Room presence: per room, the net joins and leaves go out as `room.user_joined` /
//!   `room.user_left` while the room is small and the tick calm; a room with more than
//!   [`RoomRule::detail_max_members`] present users, or more than
//!   [`RoomRule::detail_max_changes`] changes in the tick, gets one `room.online_changed`
//!   with its new count instead. A reconnect storm into a room of M members therefore costs
//!   at most M frames per tick, not M per arriving user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_shared::UserPresence;
use confab_shared::rpc::Notification;
use confab_shared::rpc::notify::{RoomOnline, RoomUser};
use tokio_util::sync::CancellationToken;

use super::{PresenceStore, Transitions};
use crate::layer::{ChannelLayer, Class, Delivery, broadcast_room, group};

/// How long the batcher keeps ticking after shutdown began (longer than the sockets' grace).
const DRAIN_AFTER_SHUTDOWN: Duration = Duration::from_secs(7);

/// When a room's presence is summarised instead of itemised.
#[derive(Clone, Copy, Debug)]
pub struct RoomRule {
    /// Rooms with more users present than this get `room.online_changed`.
    pub detail_max_members: u32,
    /// Ticks with more net joins and leaves in a room than this get `room.online_changed`.
    pub detail_max_changes: usize,
}

impl Default for RoomRule {
    fn default() -> Self {
        Self { detail_max_members: 100, detail_max_changes: 20 }
    }
}

/// A key's state when the tick began and now; only a difference is announced.
#[derive(Clone, Copy)]
struct Change {
    before: bool,
    now: bool,
}

#[derive(Default)]
struct Pending {
    users: HashMap<String, Change>,
    /// room → user → change.
    rooms: HashMap<String, HashMap<String, Change>>,
}

fn record(map: &mut HashMap<String, Change>, key: &str, now: bool) {
    match map.get_mut(key) {
        Some(change) => change.now = now,
        None => {
            map.insert(key.to_owned(), Change { before: !now, now });
        }
    }
}

fn net(map: HashMap<String, Change>) -> Vec<(String, bool)> {
    let mut changes: Vec<(String, bool)> = map.into_iter().filter(|(_, c)| c.before != c.now).map(|(k, c)| (k, c.now)).collect();
    changes.sort();
    changes
}

/// This instance's pending presence announcements.
pub struct Batcher {
    /// `std::sync::Mutex`: held only to record or to swap the pending maps out, never across
    /// an `.await`.
    pending: Mutex<Pending>,
    layer: Arc<dyn ChannelLayer>,
    presence: Arc<dyn PresenceStore>,
    rule: RoomRule,
}

impl Batcher {
    pub fn new(layer: Arc<dyn ChannelLayer>, presence: Arc<dyn PresenceStore>, rule: RoomRule) -> Arc<Self> {
        Arc::new(Self { pending: Mutex::new(Pending::default()), layer, presence, rule })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Pending) -> R) -> R {
        // A poisoned lock only means a panic mid-insert into plain maps.
        let mut guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// A user came online (first connection anywhere) or went offline (last one closed).
    pub fn user(&self, username: &str, online: bool) {
        self.with(|p| record(&mut p.users, username, online));
    }

    /// A user's first connection entered a room, or their last one left it.
    pub fn room(&self, room: &str, username: &str, present: bool) {
        self.with(|p| record(p.rooms.entry(room.to_owned()).or_default(), username, present));
    }

    /// Records what a store found on its own, all under one lock: a barrier recorded after
    /// any of it is announced after all of it.
    pub fn apply(&self, found: &Transitions) {
        self.with(|p| {
            for user in &found.online {
                record(&mut p.users, user, true);
            }
            for user in &found.offline {
                record(&mut p.users, user, false);
            }
            for (room, user) in &found.joined {
                record(p.rooms.entry(room.clone()).or_default(), user, true);
            }
            for (room, user) in &found.left {
                record(p.rooms.entry(room.clone()).or_default(), user, false);
            }
        });
    }

    /// Flushes every `tick` until a while after `shutdown`: the sockets closing on shutdown
    /// still announce their departures.
    pub async fn run(self: Arc<Self>, tick: Duration, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(tick.max(Duration::from_millis(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => self.flush().await,
                () = shutdown.cancelled() => break,
            }
        }
        let drained = tokio::time::sleep(DRAIN_AFTER_SHUTDOWN);
        tokio::pin!(drained);
        loop {
            tokio::select! {
                _ = interval.tick() => self.flush().await,
                () = &mut drained => break,
            }
        }
        self.flush().await;
    }

    /// Announces the net changes recorded since the last flush.
    pub async fn flush(&self) {
        let Pending { users, rooms } = self.with(std::mem::take);
        let changes: Vec<UserPresence> =
            net(users).into_iter().map(|(username, online)| UserPresence { username, online }).collect();
        if !changes.is_empty() {
            if let Err(err) = self.layer.group_send(group::PRESENCE, Delivery::Presence(changes.into())) {
                tracing::warn!(%err, "presence changes not sent");
            }
        }
        for (room, members) in rooms {
            let changes = net(members);
            if !changes.is_empty() {
                self.announce_room(&room, changes).await;
            }
        }
    }

    async fn announce_room(&self, room: &str, changes: Vec<(String, bool)>) {
        let busy = changes.len() > self.rule.detail_max_changes;
        let count = if busy { None } else { self.presence.room_count(room).await.ok() };
        let itemise = !busy && count.is_some_and(|n| n <= self.rule.detail_max_members);
        let mut events = Vec::new();
        if itemise {
            for (username, present) in changes {
                let user = RoomUser { room: room.to_owned(), username };
                events.push(if present { Notification::UserJoined(user) } else { Notification::UserLeft(user) });
            }
        } else {
            let online = match count {
                Some(n) => n,
                None => self.presence.room_count(room).await.unwrap_or_default(),
            };
            events.push(Notification::RoomOnlineChanged(RoomOnline { room: room.to_owned(), online }));
        }
        for event in events {
            broadcast_room(self.layer.as_ref(), room, &event, Class::Droppable);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_net_changes_survive_a_tick() {
        let mut map = HashMap::new();
        record(&mut map, "flap", true);
        record(&mut map, "flap", false);
        record(&mut map, "came", true);
        record(&mut map, "went", false);
        record(&mut map, "went", true);
        record(&mut map, "went", false);
        assert_eq!(net(map), vec![("came".to_owned(), true), ("went".to_owned(), false)]);
    }
}
