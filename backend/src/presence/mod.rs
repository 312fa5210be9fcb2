//! Who is online, and who is in which room, counted in connections.
//!
//! Presence counts sessions (connections) per user and per (room, user); only the first
//! arrival and the last departure are announced, so a user with three tabs appears once
//! and goes offline only when the last tab closes. The store is behind a trait: in memory
//! for one instance, in Redis (with heartbeats and expiry) for many.
//!
//! Announcing is separate: [`batch`] collects the first arrivals and last departures of a
//! tick and delivers their net changes to the connections watching those users (and the
//! room changes to the room's members, summarised for big rooms).

pub mod batch;
pub mod memory;
pub mod redis;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

/// A presence store failure (Redis down); callers degrade to local knowledge.
#[derive(Debug, thiserror::Error)]
#[error("presence store unavailable: {0}")]
pub struct PresenceError(pub String);

pub type PresenceResult<T> = Result<T, PresenceError>;

/// Fleet-wide arrivals and departures a store found on its own rather than in a
/// connection's call (a dead instance reaped, counts written again after an outage), to be
/// announced like the calls' own.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Transitions {
    /// Users whose first connection anywhere this was.
    pub online: Vec<String>,
    /// Users left with no connection anywhere.
    pub offline: Vec<String>,
    /// (room, user): first arrivals in a room.
    pub joined: Vec<(String, String)>,
    /// (room, user): last departures from a room.
    pub left: Vec<(String, String)>,
}

impl Transitions {
    pub fn is_empty(&self) -> bool {
        self.online.is_empty() && self.offline.is_empty() && self.joined.is_empty() && self.left.is_empty()
    }
}

#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Counts a new connection of `user`; `true` when it is the user's first anywhere (across
    /// every instance, not only this one). A store that cannot tell now answers `false` and
    /// reports the transition later as [`Transitions`].
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

    /// Whether each of `users` is online, in order.
    async fn online_among(&self, users: &[String]) -> PresenceResult<Vec<bool>> {
        let online = self.online_users().await?;
        Ok(users.iter().map(|u| online.contains(u)).collect())
    }

    /// Distinct users present in one room.
    async fn room_count(&self, room: &str) -> PresenceResult<u32> {
        Ok(self.room_members(room).await?.len() as u32)
    }

    /// Distinct users present in each of `rooms` (absent: nobody).
    async fn room_counts_of(&self, rooms: &[String]) -> PresenceResult<HashMap<String, u32>> {
        let mut all = self.room_counts().await?;
        all.retain(|room, _| rooms.contains(room));
        Ok(all)
    }

    /// Online users whose lowercase name starts with `prefix` and sorts after `after`, in
    /// lowercase order, at most `limit`; and how many match the prefix in all.
    async fn online_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> PresenceResult<(Vec<String>, u64)> {
        let mut matching: Vec<(String, String)> = self
            .online_users()
            .await?
            .into_iter()
            .map(|u| (u.to_ascii_lowercase(), u))
            .filter(|(key, _)| key.starts_with(prefix))
            .collect();
        let total = matching.len() as u64;
        matching.sort_unstable();
        let page = matching
            .into_iter()
            .filter(|(key, _)| after.is_none_or(|a| key.as_str() > a))
            .take(limit)
            .map(|(_, name)| name)
            .collect();
        Ok((page, total))
    }
}
