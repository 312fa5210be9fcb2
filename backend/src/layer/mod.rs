//! The channel layer: how a frame reaches every connection in a group, on every instance.
//!
//! Django Channels' idea with Rust types: a connection joins named groups (`room:lobby`,
//! `user:42`, `session:…`, `token:7`, `all`), and anything sent to a group reaches its members. A
//! broadcast is serialized once, before it enters the layer; the layer moves shared bytes.
//!
//! # Layout
//! - [`hub`]: this instance's connections and groups, and the per-connection [`Outbox`].
//! - [`watch`]: which local connections watch whose presence (`presence.watch`).
//! - [`memory`]: the in-process layer (one instance).
//! - [`redis`]: the Redis layer (many instances), chosen by `REDIS_URL`.

pub mod hub;
pub mod memory;
pub mod redis;
pub mod watch;

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use confab_shared::UserPresence;
use confab_shared::rpc::Notification;

pub use hub::{ConnId, Hub, Outbox};

/// Group names, in one place so no feature spells them differently.
pub mod group {
    /// Every connection: publish-to-all.
    pub const ALL: &str = "all";

    /// Every instance (not a connection group): each tick's batch of presence changes,
    /// expanded by each instance through its own watch index.
    pub const PRESENCE: &str = "presence";

    pub fn room(name: &str) -> String {
        format!("room:{name}")
    }

    pub fn user(user_id: i64) -> String {
        format!("user:{user_id}")
    }

    pub fn session(session_id: &str) -> String {
        format!("session:{session_id}")
    }

    /// Every socket opened with one API token (closed with 4003 when it is revoked).
    pub fn token(token_id: i64) -> String {
        format!("token:{token_id}")
    }
}

/// How a frame may be treated when a connection's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Chat, DMs, edits, responses: never dropped; a connection that cannot take it is evicted (1013).
    Reliable,
    /// Typing, presence, progress: dropped for a slow connection.
    Droppable,
}

/// Recipients to leave out of a group send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Except {
    Nobody,
    /// Every connection of this user (typing indicators).
    User(i64),
    /// One connection (the sender's other tabs get DMs and read cursors).
    Conn(ConnId),
}

/// What travels through the layer.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// A complete text frame, shared by every recipient.
    Frame { text: Utf8Bytes, class: Class, except: Except },
    /// A room message: reliable, for every member, released in `seq` order (the room's
    /// per-room counter) by layers that could otherwise reorder across instances.
    Ordered { text: Utf8Bytes, seq: i64 },
    /// Close the recipients with this code (logout: 4003).
    Close { code: u16 },
    /// The user's connections among the recipients leave the room (a kick or a ban): sent
    /// to the room's group, so it reaches exactly the sockets that joined it, on every instance.
    Evict { user_id: i64, room: Arc<str> },
    /// One tick's net presence changes (group [`group::PRESENCE`]): each instance sends every
    /// change to the local connections watching that user, and to nobody else.
    Presence(Arc<[UserPresence]>),
}

impl Delivery {
    /// Room messages, DMs, edits: events a client can recover with `sync` and must never
    /// see with a hole below its last-seen id.
    pub fn is_persisted_event(&self) -> bool {
        matches!(self, Self::Ordered { .. } | Self::Frame { class: Class::Reliable, .. })
    }

    /// A frame for every member.
    pub fn frame(text: impl Into<Utf8Bytes>, class: Class) -> Self {
        Self::Frame { text: text.into(), class, except: Except::Nobody }
    }
}

/// Sends a notification to every connection in a room, logging (not returning) a refusal:
/// for broadcasts nobody waits on (typing, presence, the reaper's departures).
pub fn broadcast_room(layer: &dyn ChannelLayer, room: &str, event: &Notification, class: Class) {
    if let Err(err) = layer.group_send(&group::room(room), Delivery::frame(event.to_frame(), class)) {
        tracing::warn!(%err, room, method = event.method(), "room broadcast failed");
    }
}

/// Why the layer could not take a send.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("channel layer unavailable: {0}")]
    Unavailable(String),
}

/// The contract every layer implementation fulfils; features see only this.
#[async_trait]
pub trait ChannelLayer: Send + Sync + 'static {
    /// Adds a local connection to a group. When this returns, sends to the group from any
    /// instance reach the connection ("subscribe before announcing").
    async fn group_add(&self, group: &str, conn: ConnId) -> Result<(), LayerError>;

    /// Removes a local connection from a group.
    fn group_discard(&self, group: &str, conn: ConnId);

    /// Takes a closing connection out of every group and forgets it.
    fn leave_all(&self, conn: ConnId);

    /// Sends to every member of a group on every instance, in per-group order.
    fn group_send(&self, group: &str, delivery: Delivery) -> Result<(), LayerError>;

    /// Like [`group_send`](Self::group_send), and says how many connections on this instance
    /// took it (`POST /api/publish` reports that number; other instances do not report back).
    ///
    /// The default counts the local members before sending, which overstates only when a
    /// member's queue is full or closing; a layer that delivers to local members inline
    /// overrides it with the exact count, as [`memory::MemoryLayer`] does.
    fn group_send_counted(&self, group: &str, delivery: Delivery) -> Result<usize, LayerError> {
        let local = self.hub().group_len(group);
        self.group_send(group, delivery)?;
        Ok(local)
    }

    /// Sends to one connection, wherever it is.
    fn send(&self, conn: ConnId, delivery: Delivery) -> Result<(), LayerError>;

    /// This instance's registry of local connections.
    fn hub(&self) -> &Hub;

    /// Whether cross-instance delivery currently works (always for the in-process layer).
    fn is_up(&self) -> bool;
}
