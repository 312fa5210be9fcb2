//! Presence for a single instance.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{PresenceResult, PresenceStore};

/// Connection counts in process memory.
///
/// A `std::sync::Mutex` is right here: no lock is held across an `.await`, and each
/// critical section is a hash-map update.
#[derive(Default)]
pub struct MemoryPresence {
    inner: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    users: HashMap<String, u32>,
    /// room → user → connections.
    rooms: HashMap<String, HashMap<String, u32>>,
}

impl MemoryPresence {
    fn with<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R {
        // A poisoned lock only means another thread panicked mid-update of plain counters.
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl MemoryPresence {
    /// Connections per user, for writing this instance's state elsewhere.
    pub fn counts_users(&self) -> Vec<(String, u32)> {
        self.with(|c| c.users.iter().map(|(u, n)| (u.clone(), *n)).collect())
    }

    /// Connections per user per room.
    pub fn counts_rooms(&self) -> HashMap<String, Vec<(String, u32)>> {
        self.with(|c| {
            c.rooms.iter().map(|(room, m)| (room.clone(), m.iter().map(|(u, n)| (u.clone(), *n)).collect())).collect()
        })
    }
}

fn increment(map: &mut HashMap<String, u32>, key: &str) -> bool {
    let count = map.entry(key.to_owned()).or_insert(0);
    *count += 1;
    *count == 1
}

fn decrement(map: &mut HashMap<String, u32>, key: &str) -> bool {
    match map.get_mut(key) {
        Some(count) if *count > 1 => {
            *count -= 1;
            false
        }
        Some(_) => {
            map.remove(key);
            true
        }
        None => false,
    }
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    async fn connect(&self, user: &str) -> PresenceResult<bool> {
        Ok(self.with(|c| increment(&mut c.users, user)))
    }

    async fn disconnect(&self, user: &str) -> PresenceResult<bool> {
        Ok(self.with(|c| decrement(&mut c.users, user)))
    }

    async fn enter(&self, room: &str, user: &str) -> PresenceResult<bool> {
        Ok(self.with(|c| increment(c.rooms.entry(room.to_owned()).or_default(), user)))
    }

    async fn exit(&self, room: &str, user: &str) -> PresenceResult<bool> {
        Ok(self.with(|c| {
            let Some(members) = c.rooms.get_mut(room) else { return false };
            let last = decrement(members, user);
            if members.is_empty() {
                c.rooms.remove(room);
            }
            last
        }))
    }

    async fn online_users(&self) -> PresenceResult<HashSet<String>> {
        Ok(self.with(|c| c.users.keys().cloned().collect()))
    }

    async fn room_members(&self, room: &str) -> PresenceResult<Vec<String>> {
        Ok(self.with(|c| {
            let mut members: Vec<String> = c.rooms.get(room).map(|m| m.keys().cloned().collect()).unwrap_or_default();
            members.sort();
            members
        }))
    }

    async fn room_counts(&self) -> PresenceResult<HashMap<String, u32>> {
        Ok(self.with(|c| c.rooms.iter().map(|(room, m)| (room.clone(), m.len() as u32)).collect()))
    }

    async fn online_among(&self, users: &[String]) -> PresenceResult<Vec<bool>> {
        Ok(self.with(|c| users.iter().map(|u| c.users.contains_key(u)).collect()))
    }

    async fn room_count(&self, room: &str) -> PresenceResult<u32> {
        Ok(self.with(|c| c.rooms.get(room).map_or(0, |m| m.len() as u32)))
    }

    async fn room_counts_of(&self, rooms: &[String]) -> PresenceResult<HashMap<String, u32>> {
        Ok(self.with(|c| {
            rooms.iter().filter_map(|r| c.rooms.get(r).map(|m| (r.clone(), m.len() as u32))).collect()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_first_arrival_and_last_departure_count() {
        let p = MemoryPresence::default();
        assert!(p.connect("ann").await.unwrap());
        assert!(!p.connect("ann").await.unwrap());
        assert!(!p.disconnect("ann").await.unwrap());
        assert!(p.disconnect("ann").await.unwrap());
        assert!(!p.disconnect("ann").await.unwrap());
    }

    #[tokio::test]
    async fn rooms_count_distinct_users() {
        let p = MemoryPresence::default();
        assert!(p.enter("r", "ann").await.unwrap());
        assert!(!p.enter("r", "ann").await.unwrap());
        assert!(p.enter("r", "bob").await.unwrap());
        assert_eq!(p.room_counts().await.unwrap().get("r"), Some(&2));
        assert_eq!(p.room_members("r").await.unwrap(), vec!["ann", "bob"]);
        assert!(!p.exit("r", "ann").await.unwrap());
        assert!(p.exit("r", "ann").await.unwrap());
        assert_eq!(p.room_members("r").await.unwrap(), vec!["bob"]);
    }
}
