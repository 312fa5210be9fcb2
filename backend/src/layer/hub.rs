//! This instance's connections and group memberships.
//!
//! Both maps are sharded (`DashMap`), so joining a room or fanning out a message never takes
//! a global lock; a fan-out holds one shard's read lock while it pushes shared bytes into
//! each member's bounded queue, which never blocks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use axum::extract::ws::Utf8Bytes;
use confab_shared::rpc::close as crate_close;
use dashmap::DashMap;
use tokio::sync::{Notify, mpsc};

use super::watch::WatchIndex;
use super::{Class, Delivery, Except, group};
use crate::metrics::METRICS;

/// A connection id, unique across instances: the instance's random prefix in the high bits.
pub type ConnId = u64;

/// The sending half of a connection's outbound queue.
#[derive(Clone, Debug)]
pub struct Outbox {
    conn: ConnId,
    user_id: Option<i64>,
    tx: mpsc::Sender<Utf8Bytes>,
    control: Arc<Control>,
}

/// Out-of-band instructions to a connection's writer.
#[derive(Debug, Default)]
pub struct Control {
    /// The close code requested (0: none). The first request wins.
    close: AtomicU16,
    notify: Notify,
    /// "Write what you hold now": an answer to the connection's own call was queued, or the
    /// queue is half full. A writer holding notifications for its fan-out window waits on
    /// this and the window's end only, not on every frame queued meanwhile.
    flush: Notify,
}

impl Control {
    /// The close code requested so far, if any.
    pub fn close_code(&self) -> Option<u16> {
        match self.close.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// Waits until a write is asked for (see `flush`); a request made while nobody waited is
    /// kept for the next wait.
    pub async fn flush_requested(&self) {
        self.flush.notified().await;
    }

    /// Waits until a close is requested, returning its code.
    pub async fn closed(&self) -> u16 {
        loop {
            let notified = self.notify.notified();
            if let Some(code) = self.close_code() {
                return code;
            }
            notified.await;
        }
    }
}

/// The receiving half, owned by the connection's writer task.
pub struct Inbox {
    pub rx: mpsc::Receiver<Utf8Bytes>,
    pub control: Arc<Control>,
}

impl Outbox {
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    pub fn user_id(&self) -> Option<i64> {
        self.user_id
    }

    /// Queues the answer to one of the connection's own calls and has it written at once:
    /// answers never wait for the fan-out window.
    pub fn answer(&self, text: &Utf8Bytes) -> bool {
        let queued = self.push(text, Class::Reliable);
        self.control.flush.notify_one();
        queued
    }

    /// Queues a frame without waiting. A reliable frame that does not fit evicts the
    /// connection (1013): it will recover what it missed with `sync`.
    pub fn push(&self, text: &Utf8Bytes, class: Class) -> bool {
        match self.tx.try_send(text.clone()) {
            Ok(()) => {
                // A writer holding its window must not let the queue fill up.
                if self.tx.capacity() * 2 < self.tx.max_capacity() {
                    self.control.flush.notify_one();
                }
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                match class {
                    Class::Reliable => {
                        METRICS.evictions.fetch_add(1, Ordering::Relaxed);
                        self.close(crate_close::TRY_AGAIN_LATER);
                    }
                    Class::Droppable => {
                        METRICS.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Asks the writer to close the socket with `code` (the first request wins).
    pub fn close(&self, code: u16) {
        if self.control.close.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // Both the session's reader and its writer wait in `closed()`: wake every waiter
            // (`notify_one` would wake only one, and a socket closed from outside, by logout
            // or eviction, could then end without its close frame). `closed()` creates its
            // `Notified` before checking the code, so no wake-up is lost.
            self.control.notify.notify_waiters();
        }
    }

    fn deliver(&self, delivery: &Delivery) -> bool {
        match delivery {
            Delivery::Frame { text, class, except } => {
                let skip = match *except {
                    Except::Nobody => false,
                    Except::User(user) => self.user_id == Some(user),
                    Except::Conn(conn) => self.conn == conn,
                };
                !skip && self.push(text, *class)
            }
            Delivery::Ordered { text, .. } => self.push(text, Class::Reliable),
            Delivery::Close { code } => {
                self.close(*code);
                true
            }
            // Expanded by the hub through its watch index, never addressed to one connection.
            Delivery::Presence(_) => false,
        }
    }
}


/// Local connections and the groups they are in.
pub struct Hub {
    prefix: u64,
    next: AtomicU64,
    conns: DashMap<ConnId, Outbox>,
    groups: DashMap<String, HashMap<ConnId, Outbox>>,
    /// Which groups each connection is in, so a disconnect leaves them all.
    memberships: DashMap<ConnId, Vec<String>>,
    /// Whose presence each local connection watches, and the reverse.
    watches: WatchIndex,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(rand::random::<u32>())
    }
}

impl Hub {
    /// A hub whose connection ids carry `instance` in their high 32 bits.
    pub fn new(instance: u32) -> Self {
        Self {
            prefix: u64::from(instance) << 32,
            next: AtomicU64::new(1),
            conns: DashMap::new(),
            groups: DashMap::new(),
            memberships: DashMap::new(),
            watches: WatchIndex::default(),
        }
    }

    /// The presence watch sets of this instance's connections.
    pub fn watches(&self) -> &WatchIndex {
        &self.watches
    }

    /// The instance part of connection ids made here.
    pub fn instance(&self) -> u32 {
        (self.prefix >> 32) as u32
    }

    /// The instance a connection id was made on.
    pub fn instance_of(conn: ConnId) -> u32 {
        (conn >> 32) as u32
    }

    /// Registers a new connection with a queue of `capacity` frames.
    pub fn register(&self, user_id: Option<i64>, capacity: usize) -> (Outbox, Inbox) {
        let conn = self.prefix | (self.next.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF);
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let control = Arc::new(Control::default());
        let outbox = Outbox { conn, user_id, tx, control: control.clone() };
        self.conns.insert(conn, outbox.clone());
        (outbox, Inbox { rx, control })
    }

    /// Forgets a connection and takes it out of every group; returns the groups that became
    /// empty on this instance.
    pub fn unregister(&self, conn: ConnId) -> Vec<String> {
        self.conns.remove(&conn);
        self.watches.forget(conn);
        let groups = self.memberships.remove(&conn).map(|(_, g)| g).unwrap_or_default();
        groups.into_iter().filter(|g| self.remove_member(g, conn)).collect()
    }

    /// Adds a connection to a group; `true` when it is the group's first local member.
    pub fn group_add(&self, group: &str, conn: ConnId) -> bool {
        let Some(outbox) = self.conns.get(&conn).map(|o| o.clone()) else {
            return false;
        };
        let mut members = self.groups.entry(group.to_owned()).or_default();
        let first = members.is_empty();
        if members.insert(conn, outbox).is_none() {
            self.memberships.entry(conn).or_default().push(group.to_owned());
        }
        first
    }

    /// Removes a connection from a group; `true` when the group has no local member left.
    pub fn group_discard(&self, group: &str, conn: ConnId) -> bool {
        if let Some(mut groups) = self.memberships.get_mut(&conn) {
            groups.retain(|g| g != group);
        }
        self.remove_member(group, conn)
    }

    fn remove_member(&self, group: &str, conn: ConnId) -> bool {
        let emptied = match self.groups.get_mut(group) {
            Some(mut members) => {
                members.remove(&conn);
                members.is_empty()
            }
            None => return false,
        };
        if emptied {
            // Re-check under the write lock: someone may have joined in between.
            self.groups.remove_if(group, |_, members| members.is_empty());
        }
        emptied
    }

    /// Every group with a local member, and [`group::PRESENCE`], which every instance hears.
    pub fn group_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.groups.iter().filter(|g| !g.is_empty()).map(|g| g.key().clone()).collect();
        names.push(group::PRESENCE.to_owned());
        names
    }

    /// Whether any local connection is in the group ([`group::PRESENCE`]: always).
    pub fn has_group(&self, group: &str) -> bool {
        group == group::PRESENCE || self.groups.get(group).is_some_and(|m| !m.is_empty())
    }

    /// How many local connections are in the group.
    pub fn group_len(&self, group: &str) -> usize {
        self.groups.get(group).map_or(0, |m| m.len())
    }

    /// Delivers to the group's local members; returns how many took it. A presence batch goes
    /// to the local watchers of each user in it instead.
    pub fn deliver_group(&self, group: &str, delivery: &Delivery) -> usize {
        if let Delivery::Presence(changes) = delivery {
            return self.deliver_presence(changes);
        }
        let Some(members) = self.groups.get(group) else {
            return 0;
        };
        let delivered = members.values().filter(|outbox| outbox.deliver(delivery)).count();
        METRICS.frames_queued.fetch_add(delivered as u64, Ordering::Relaxed);
        delivered
    }

    /// Each change, serialized once, to the local connections watching that user.
    fn deliver_presence(&self, changes: &[confab_shared::UserPresence]) -> usize {
        let mut delivered = 0;
        for change in changes {
            let watchers = self.watches.watchers(&change.username);
            if watchers.is_empty() {
                continue;
            }
            let frame: Utf8Bytes = confab_shared::rpc::Notification::PresenceChanged(change.clone()).to_frame().into();
            for conn in watchers {
                if self.conns.get(&conn).is_some_and(|outbox| outbox.push(&frame, Class::Droppable)) {
                    delivered += 1;
                }
            }
        }
        METRICS.frames_queued.fetch_add(delivered as u64, Ordering::Relaxed);
        delivered
    }

    /// Delivers to one local connection.
    pub fn deliver_conn(&self, conn: ConnId, delivery: &Delivery) -> bool {
        self.conns.get(&conn).is_some_and(|outbox| outbox.deliver(delivery))
    }

    /// Closes every local connection with `code` (shutdown: 1001).
    pub fn close_all(&self, code: u16) {
        for outbox in self.conns.iter() {
            outbox.close(code);
        }
    }

    /// Open local connections.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_send_reaches_members_only_and_respects_except() {
        let hub = Hub::new(7);
        let (a, mut a_in) = hub.register(Some(1), 8);
        let (b, mut b_in) = hub.register(Some(2), 8);
        let (_c, mut c_in) = hub.register(Some(3), 8);
        assert!(hub.group_add("room:x", a.conn()));
        assert!(!hub.group_add("room:x", b.conn()));
        let delivery = Delivery::Frame { text: "hi".into(), class: Class::Reliable, except: Except::User(2) };
        assert_eq!(hub.deliver_group("room:x", &delivery), 1);
        assert_eq!(a_in.rx.try_recv().ok().as_deref(), Some("hi"));
        assert!(b_in.rx.try_recv().is_err());
        assert!(c_in.rx.try_recv().is_err());
        assert_eq!(Hub::instance_of(a.conn()), 7);
    }

    #[test]
    fn a_full_queue_evicts_on_reliable_and_drops_on_droppable() {
        let hub = Hub::new(1);
        let (a, inbox) = hub.register(None, 1);
        assert!(a.push(&"1".into(), Class::Droppable));
        assert!(!a.push(&"2".into(), Class::Droppable));
        assert_eq!(inbox.control.close_code(), None);
        assert!(!a.push(&"3".into(), Class::Reliable));
        assert_eq!(inbox.control.close_code(), Some(crate_close::TRY_AGAIN_LATER));
    }

    #[tokio::test]
    async fn a_close_wakes_the_reader_and_the_writer() {
        let hub = Hub::new(1);
        let (a, inbox) = hub.register(None, 1);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let control = inbox.control.clone();
                tokio::spawn(async move { control.closed().await })
            })
            .collect();
        tokio::task::yield_now().await;
        a.close(crate_close::LOGGED_OUT);
        for waiter in waiters {
            let code = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await;
            assert_eq!(code.ok().and_then(Result::ok), Some(crate_close::LOGGED_OUT));
        }
    }

    #[test]
    fn unregister_leaves_every_group() {
        let hub = Hub::new(1);
        let (a, _in) = hub.register(None, 1);
        hub.group_add("g1", a.conn());
        hub.group_add("g2", a.conn());
        let mut emptied = hub.unregister(a.conn());
        emptied.sort();
        assert_eq!(emptied, vec!["g1".to_owned(), "g2".to_owned()]);
        assert!(!hub.has_group("g1"));
    }
}
