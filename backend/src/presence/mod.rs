//! Who is online, and who is in which room, counted in connections.
//!
//! Presence counts sessions (connections) per user and per (room, user); only the first
//! arrival and the last departure are announced, so a user with three tabs appears once
//! and goes offline only when the last tab closes. The store is behind a trait: in memory
//! for one instance, in Redis (with heartbeats and expiry) for many.

pub mod memory;
pub mod redis;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

/// A presence store failure (Redis down); callers degrade to local knowledge.
#[derive(Debug, thiserror::Error)]
#[error("presence store unavailable: {0}")]
pub struct PresenceError(pub String);

pub type PresenceResult<T> = Result<T, PresenceError>;

#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Counts a new connection of `user`; `true` when it is the user's first anywhere.
    async fn connect(&self, user: &str) -> PresenceResult<bool>;
    /// Uncounts a connection; `true` when it was the user's last anywhere.
    async fn disconnect(&self, user: &str) -> PresenceResult<bool>;
    /// Counts a connection of `user` in `room`; `true` when it is the user's first there.
    async fn enter(&self, room: &str, user: &str) -> PresenceResult<bool>;
    /// Uncounts it; `true` when it was the user's last connection in the room.
    async fn exit(&self, room: &str, user: &str) -> PresenceResult<bool>;
    /// Users with at least one connection.
    async fn online_users(&self) -> PresenceResult<HashSet<String>>;
    /// Users present in a room, sorted.
    async fn room_members(&self, room: &str) -> PresenceResult<Vec<String>>;
    /// Distinct users present per room (rooms with nobody are absent).
    async fn room_counts(&self) -> PresenceResult<HashMap<String, u32>>;
}
