//! This instance's connections and group memberships, and each connection's queue.
//!
//! Both maps are sharded (`DashMap`), so joining a room or fanning out a message never takes
//! a global lock; a fan-out holds one shard's read lock while it pushes shared bytes into
//! each member's bounded queue, which never blocks.
//!
//! # A connection's queue and its byte budget
//! Everything written to a socket passes through its [`Outbox`], and the queue keeps one
//! account of it in bytes (a frame costs its length plus [`FRAME_OVERHEAD`]): what is queued
//! in all, and the notifications' share of that. The two kinds of traffic are bounded apart,
//! because their remedies differ:
//! - **Notifications** (fan-out: chat, presence, typing) come from other people. When they
//!   alone would pass the budget (`CONFAB_OUTBOX_MAX_BYTES`), the connection is a slow
//!   consumer: a reliable frame evicts it (1013; it recovers with `sync`), a droppable one is
//!   dropped.
//! - **Answers** to the connection's own calls are never refused. They are bounded by the
//!   reader instead: while the queue is [`Outbox::congested`] (more than half the budget, or
//!   half its frames), the session reads no further requests, so TCP slows a pipelining
//!   client down, as HTTP/2 flow control would, and its own answers can never get it evicted.
//!
//! So one connection holds at most the budget plus half of it plus one answer
//! (`MAX_ANSWER_BYTES`), however it behaves.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};

use axum::extract::ws::Utf8Bytes;
use confab_shared::rpc::close as crate_close;
use dashmap::DashMap;
use tokio::sync::{Notify, mpsc};

use super::watch::WatchIndex;
use super::{Class, Delivery, Except, group};
use crate::metrics::METRICS;

/// A connection id, unique across instances: the instance's random prefix in the high bits.
pub type ConnId = u64;

/// What a queued frame costs beyond its bytes: its queue slot and the shared buffer's header.
/// Counting it makes the byte budget bound a flood of tiny frames too.
pub const FRAME_OVERHEAD: usize = 64;

/// The close "code" of a writer that failed: never sent (RFC 6455 reserves 1006 for a
/// connection that ended without a close frame), it tells the session to end at once.
pub const WRITE_FAILED: u16 = 1006;

/// How much one connection's queue may hold.
#[derive(Clone, Copy, Debug)]
pub struct QueueLimits {
    /// Frames queued at most.
    pub frames: usize,
    /// Bytes of notifications queued at most (see the module doc).
    pub bytes: usize,
}

#[cfg(test)]
impl QueueLimits {
    /// Limits of `frames` frames and a byte budget that never binds (unit tests).
    pub fn frames(frames: usize) -> Self {
        Self { frames, bytes: usize::MAX / 4 }
    }
}

/// The sending half of a connection's outbound queue.
#[derive(Clone, Debug)]
pub struct Outbox {
    conn: ConnId,
    user_id: Option<i64>,
    tx: mpsc::Sender<Queued>,
    control: Arc<Control>,
}

/// A frame in the queue, and which account it is charged to.
#[derive(Debug)]
struct Queued {
    text: Utf8Bytes,
    notification: bool,
}

fn cost(text: &str) -> usize {
    text.len() + FRAME_OVERHEAD
}

/// What a connection's reader, writer and every sender share: the close request, the byte
/// account, and the wake-ups between them.
#[derive(Debug)]
pub struct Control {
    /// The close code requested (0: none). The first request wins.
    close: AtomicU16,
    notify: Notify,
    /// "Write what you hold now": an answer to the connection's own call was queued, or the
    /// queue is half full. A writer holding notifications for its fan-out window waits on
    /// this and the window's end only, not on every frame queued meanwhile.
    flush: Notify,
    /// Bytes queued and not yet taken by the writer, answers and notifications.
    queued: AtomicUsize,
    /// The notifications' share of `queued`.
    notified: AtomicUsize,
    /// The notification budget, in bytes.
    budget: usize,
    /// The frame limit, for [`Outbox::congested`].
    frames: usize,
    /// Set while the session's reader waits for the queue to drain; the writer then wakes it
    /// through `drained` after each write.
    reader_waiting: AtomicBool,
    drained: Notify,
    /// When the client last sent a frame, in milliseconds of [`clock_ms`]: a client that
    /// just asked for something is waiting for what follows, and the writer never holds it.
    heard_ms: AtomicU64,
    /// The close frame's reason when it is not the code's usual phrase (a suspension's).
    close_reason: std::sync::OnceLock<String>,
    /// Rooms a moderator took this connection out of, for the session's reader to leave
    /// (`std::sync::Mutex`: held for a push or a take, never across an `.await`).
    evictions: std::sync::Mutex<Vec<Arc<str>>>,
    evicted: Notify,
}

/// Milliseconds since this process first asked, from 1 (0 means "never" in `heard_ms`): a
/// clock cheap enough to read per frame.
pub fn clock_ms() -> u64 {
    static START: std::sync::LazyLock<std::time::Instant> = std::sync::LazyLock::new(std::time::Instant::now);
    START.elapsed().as_millis() as u64 + 1
}

impl Control {
    fn new(limits: QueueLimits) -> Self {
        Self {
            close: AtomicU16::new(0),
            notify: Notify::new(),
            flush: Notify::new(),
            queued: AtomicUsize::new(0),
            notified: AtomicUsize::new(0),
            budget: limits.bytes.max(1),
            frames: limits.frames.max(1),
            reader_waiting: AtomicBool::new(false),
            drained: Notify::new(),
            heard_ms: AtomicU64::new(0),
            close_reason: std::sync::OnceLock::new(),
            evictions: std::sync::Mutex::new(Vec::new()),
            evicted: Notify::new(),
        }
    }

    /// Asks for a close with `code` and a reason of its own (the first request wins: a
    /// connection already closing keeps its code and reason).
    pub fn close_because(&self, code: u16, reason: &str) -> bool {
        if self.close_code().is_some() {
            return false;
        }
        let _ = self.close_reason.set(reason.to_owned());
        self.close(code)
    }

    /// The close frame's reason, when one was given with the close.
    pub fn close_reason(&self) -> Option<&str> {
        self.close_reason.get().map(String::as_str)
    }

    /// Asks the session to leave `room` (a kick or a ban).
    fn evict(&self, room: Arc<str>) {
        if let Ok(mut rooms) = self.evictions.lock() {
            rooms.push(room);
        }
        self.evicted.notify_one();
    }

    /// Waits until a room is to be left; a request made while nobody waited is kept.
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// The rooms to leave, taken.
    pub fn take_evictions(&self) -> Vec<Arc<str>> {
        self.evictions.lock().map(|mut rooms| std::mem::take(&mut *rooms)).unwrap_or_default()
    }

    /// The client sent a frame now.
    pub fn heard(&self, now_ms: u64) {
        self.heard_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Whether the client sent a frame within the last `window`.
    pub fn heard_within(&self, window: std::time::Duration) -> bool {
        let heard = self.heard_ms.load(Ordering::Relaxed);
        heard != 0 && clock_ms().saturating_sub(heard) < window.as_millis() as u64
    }

    /// The close code requested so far, if any.
    pub fn close_code(&self) -> Option<u16> {
        match self.close.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    /// Asks the writer to close the socket with `code`. The first request wins; `true` when
    /// this one was it.
    pub fn close(&self, code: u16) -> bool {
        let first = self.close.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire).is_ok();
        if first {
            // Both the session's reader and its writer wait in `closed()`: wake every waiter
            // (`notify_one` would wake only one, and a socket closed from outside, by logout
            // or eviction, could then end without its close frame). `closed()` creates its
            // `Notified` before checking the code, so no wake-up is lost.
            self.notify.notify_waiters();
        }
        first
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

    /// Bytes queued now (answers and notifications).
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Waits until the writer has taken frames from the queue (the reader calls this while
    /// the queue is congested). A wake-up may be spurious: check again.
    pub async fn drained(&self) {
        let notified = self.drained.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        self.reader_waiting.store(true, Ordering::SeqCst);
        notified.await;
        self.reader_waiting.store(false, Ordering::SeqCst);
    }

    /// The writer took `cost` bytes of one account off the queue.
    fn taken(&self, cost: usize, notification: bool) {
        self.queued.fetch_sub(cost, Ordering::AcqRel);
        if notification {
            self.notified.fetch_sub(cost, Ordering::AcqRel);
        }
    }

    /// Called by the writer after each write: wakes a reader waiting for room.
    pub fn wrote(&self) {
        if self.reader_waiting.load(Ordering::SeqCst) {
            self.drained.notify_one();
        }
    }
}

/// The receiving half, owned by the connection's writer task.
pub struct Inbox {
    rx: mpsc::Receiver<Queued>,
    pub control: Arc<Control>,
}

impl Inbox {
    /// The next frame, waiting for one; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Utf8Bytes> {
        let queued = self.rx.recv().await?;
        Some(self.took(queued))
    }

    /// The next frame if one is queued now.
    pub fn try_recv(&mut self) -> Option<Utf8Bytes> {
        let queued = self.rx.try_recv().ok()?;
        Some(self.took(queued))
    }

    fn took(&self, queued: Queued) -> Utf8Bytes {
        self.control.taken(cost(&queued.text), queued.notification);
        queued.text
    }
}

impl Drop for Inbox {
    /// A writer that stops (a failed socket included) ends its session: nobody would ever
    /// write that socket's frames again, and a session left open would be a silent one.
    fn drop(&mut self) {
        self.control.close(WRITE_FAILED);
    }
}

impl Outbox {
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    pub fn user_id(&self) -> Option<i64> {
        self.user_id
    }

    /// Queues the answer to one of the connection's own calls and has it written at once:
    /// answers never wait for the fan-out window, and are never refused for their size (the
    /// session bounds them by not reading while the queue is [`congested`](Self::congested)).
    pub fn answer(&self, text: &Utf8Bytes) -> bool {
        let queued = self.enqueue(text, false, Class::Reliable);
        self.control.flush.notify_one();
        queued
    }

    /// Queues a notification without waiting. One that would take the notifications queued
    /// for this connection past its byte budget, or that finds the queue full, is refused:
    /// a reliable one evicts the connection (1013: it will recover what it missed with
    /// `sync`), a droppable one is dropped.
    pub fn push(&self, text: &Utf8Bytes, class: Class) -> bool {
        self.enqueue(text, true, class)
    }

    /// More than half of the byte budget or of the frame limit is queued: the session reads
    /// no further requests until the writer has caught up.
    pub fn congested(&self) -> bool {
        let c = &self.control;
        c.queued.load(Ordering::Acquire) > c.budget / 2 || self.tx.max_capacity() - self.tx.capacity() > c.frames / 2
    }

    fn enqueue(&self, text: &Utf8Bytes, notification: bool, class: Class) -> bool {
        let c = &self.control;
        let cost = cost(text);
        if notification && c.notified.fetch_add(cost, Ordering::AcqRel) + cost > c.budget {
            c.notified.fetch_sub(cost, Ordering::AcqRel);
            self.refuse(class);
            return false;
        }
        c.queued.fetch_add(cost, Ordering::AcqRel);
        match self.tx.try_send(Queued { text: text.clone(), notification }) {
            Ok(()) => {
                // A writer holding its window must not let the queue fill up.
                if self.congested() {
                    c.flush.notify_one();
                }
                true
            }
            Err(err) => {
                c.taken(cost, notification);
                if let mpsc::error::TrySendError::Full(_) = err {
                    self.refuse(class);
                }
                false
            }
        }
    }

    /// A frame that did not fit: evict for a reliable one, drop a droppable one.
    fn refuse(&self, class: Class) {
        match class {
            // Counted once per connection: the frames refused after the close was asked
            // for are part of the same eviction.
            Class::Reliable => {
                if self.control.close(crate_close::TRY_AGAIN_LATER) {
                    METRICS.evictions.fetch_add(1, Ordering::Relaxed);
                }
            }
            Class::Droppable => {
                METRICS.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Asks the writer to close the socket with `code` (the first request wins).
    pub fn close(&self, code: u16) {
        self.control.close(code);
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
            Delivery::Evict { user_id, room } => {
                let mine = self.user_id == Some(*user_id);
                if mine {
                    self.control.evict(room.clone());
                }
                mine
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

    /// Registers a new connection with a queue bounded by `limits`.
    pub fn register(&self, user_id: Option<i64>, limits: QueueLimits) -> (Outbox, Inbox) {
        let conn = self.prefix | (self.next.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF);
        let (tx, rx) = mpsc::channel(limits.frames.max(1));
        let control = Arc::new(Control::new(limits));
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

    /// Closes every local connection of `user_id` with `code` and `reason`; how many.
    pub fn close_user(&self, user_id: i64, code: u16, reason: &str) -> usize {
        self.conns.iter().filter(|outbox| outbox.user_id == Some(user_id)).filter(|outbox| outbox.control.close_because(code, reason)).count()
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
        let (a, mut a_in) = hub.register(Some(1), QueueLimits::frames(8));
        let (b, mut b_in) = hub.register(Some(2), QueueLimits::frames(8));
        let (_c, mut c_in) = hub.register(Some(3), QueueLimits::frames(8));
        assert!(hub.group_add("room:x", a.conn()));
        assert!(!hub.group_add("room:x", b.conn()));
        let delivery = Delivery::Frame { text: "hi".into(), class: Class::Reliable, except: Except::User(2) };
        assert_eq!(hub.deliver_group("room:x", &delivery), 1);
        assert_eq!(a_in.try_recv().as_deref(), Some("hi"));
        assert!(b_in.try_recv().is_none());
        assert!(c_in.try_recv().is_none());
        assert_eq!(Hub::instance_of(a.conn()), 7);
    }

    #[test]
    fn a_full_queue_evicts_on_reliable_and_drops_on_droppable() {
        let hub = Hub::new(1);
        let (a, inbox) = hub.register(None, QueueLimits::frames(1));
        assert!(a.push(&"1".into(), Class::Droppable));
        assert!(!a.push(&"2".into(), Class::Droppable));
        assert_eq!(inbox.control.close_code(), None);
        assert!(!a.push(&"3".into(), Class::Reliable));
        assert_eq!(inbox.control.close_code(), Some(crate_close::TRY_AGAIN_LATER));
    }

    #[test]
    fn notifications_past_the_byte_budget_evict_or_drop_but_answers_are_never_refused() {
        let hub = Hub::new(1);
        let (a, inbox) = hub.register(None, QueueLimits { frames: 1000, bytes: 1000 });
        let big: Utf8Bytes = "x".repeat(400).into();
        assert!(a.push(&big, Class::Reliable));
        assert!(a.push(&big, Class::Reliable));
        assert!(!a.push(&big, Class::Droppable), "a third would pass the budget: dropped");
        assert_eq!(inbox.control.close_code(), None);
        assert!(a.answer(&big) && a.answer(&big), "answers are bounded by the reader, not refused");
        assert!(a.congested());
        assert_eq!(inbox.control.queued_bytes(), 4 * (400 + FRAME_OVERHEAD));
        assert!(!a.push(&big, Class::Reliable));
        assert_eq!(inbox.control.close_code(), Some(crate_close::TRY_AGAIN_LATER));
    }

    #[test]
    fn frames_the_writer_takes_free_their_bytes_and_end_the_congestion() {
        let hub = Hub::new(1);
        let (a, mut inbox) = hub.register(None, QueueLimits { frames: 1000, bytes: 1000 });
        let big: Utf8Bytes = "x".repeat(400).into();
        assert!(a.push(&big, Class::Reliable) && a.answer(&big));
        assert!(a.congested());
        assert!(inbox.try_recv().is_some() && inbox.try_recv().is_some());
        assert!(!a.congested());
        assert_eq!(inbox.control.queued_bytes(), 0);
        // The notification budget is free again.
        assert!(a.push(&big, Class::Reliable) && a.push(&big, Class::Reliable));
    }

    #[test]
    fn half_the_frame_limit_is_congestion_too() {
        let hub = Hub::new(1);
        let (a, _inbox) = hub.register(None, QueueLimits { frames: 4, bytes: 1 << 20 });
        assert!(a.answer(&"1".into()) && a.answer(&"2".into()));
        assert!(!a.congested());
        assert!(a.answer(&"3".into()));
        assert!(a.congested());
    }

    #[test]
    fn a_writer_that_stops_ends_its_session() {
        let hub = Hub::new(1);
        let (a, inbox) = hub.register(None, QueueLimits::frames(4));
        let control = inbox.control.clone();
        drop(inbox);
        assert_eq!(control.close_code(), Some(WRITE_FAILED));
        assert!(!a.push(&"late".into(), Class::Reliable), "nobody would write it");
        assert_eq!(control.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn a_close_wakes_the_reader_and_the_writer() {
        let hub = Hub::new(1);
        let (a, inbox) = hub.register(None, QueueLimits::frames(1));
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
        let (a, _in) = hub.register(None, QueueLimits::frames(1));
        hub.group_add("g1", a.conn());
        hub.group_add("g2", a.conn());
        let mut emptied = hub.unregister(a.conn());
        emptied.sort();
        assert_eq!(emptied, vec!["g1".to_owned(), "g2".to_owned()]);
        assert!(!hub.has_group("g1"));
    }
}
