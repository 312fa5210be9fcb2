//! Open sockets per client address and per user, capped on this instance.
//!
//! Each socket holds a [`Slot`] per count it is in, taken at the upgrade and freed when the
//! slot is dropped: when the session's future ends (however it ends: a close, a reset, an
//! eviction, a panic, shutdown) or when the upgrade never completes. A count that falls to
//! zero is removed, so the maps hold only addresses and users with sockets open.
//!
//! Counted per instance, like nginx's `limit_conn`: a fleet behind a load balancer allows
//! up to the cap on each instance, and no Redis round trip is added to the handshake.

use std::hash::Hash;
use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::client_ip::IpBucket;

/// Why a socket was refused: which cap it met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Address,
    User,
}

/// The socket counts of this instance and their caps (0: not counted).
pub struct SocketCaps {
    per_address: usize,
    per_user: usize,
    by_address: Counts<IpBucket>,
    by_user: Counts<i64>,
}

impl SocketCaps {
    pub fn new(per_address: usize, per_user: usize) -> Self {
        Self { per_address, per_user, by_address: Counts::default(), by_user: Counts::default() }
    }

    /// A slot for one more socket from `address`, or `Refused::Address` at the cap.
    pub fn admit_address(&self, address: IpBucket) -> Result<Option<Slot<IpBucket>>, Refused> {
        self.by_address.take(address, self.per_address).ok_or(Refused::Address)
    }

    /// A slot for one more socket of user `user_id`, or `Refused::User` at the cap.
    pub fn admit_user(&self, user_id: i64) -> Result<Option<Slot<i64>>, Refused> {
        self.by_user.take(user_id, self.per_user).ok_or(Refused::User)
    }

    /// Sockets open from `address` (counted only while its cap is on).
    pub fn open_from(&self, address: IpBucket) -> usize {
        self.by_address.get(&address)
    }

    /// Sockets open for `user_id` (counted only while its cap is on).
    pub fn open_for(&self, user_id: i64) -> usize {
        self.by_user.get(&user_id)
    }
}

/// Open sockets per key; shared with the slots that decrement them.
struct Counts<K: Eq + Hash>(Arc<DashMap<K, usize>>);

impl<K: Eq + Hash> Default for Counts<K> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<K: Eq + Hash + Clone> Counts<K> {
    /// `Some(None)` when there is no cap, `Some(slot)` under it, `None` at it.
    fn take(&self, key: K, cap: usize) -> Option<Option<Slot<K>>> {
        if cap == 0 {
            return Some(None);
        }
        // The entry's lock makes the check and the increment one step.
        let mut count = self.0.entry(key.clone()).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Some(Slot { counts: self.0.clone(), key }))
    }

    fn get(&self, key: &K) -> usize {
        self.0.get(key).map_or(0, |count| *count)
    }
}

/// One counted socket; dropping it frees the place.
pub struct Slot<K: Eq + Hash + Clone> {
    counts: Arc<DashMap<K, usize>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        // The entry's lock makes the decrement and the removal at zero one step.
        if let Entry::Occupied(mut count) = self.counts.entry(self.key.clone()) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn bucket(s: &str) -> IpBucket {
        IpBucket::of(s.parse::<IpAddr>().unwrap())
    }

    #[test]
    fn an_address_gets_its_cap_and_a_dropped_slot_frees_a_place() {
        let caps = SocketCaps::new(2, 0);
        let a = bucket("192.0.2.1");
        let first = caps.admit_address(a).unwrap();
        let _second = caps.admit_address(a).unwrap();
        assert_eq!(caps.admit_address(a).err(), Some(Refused::Address));
        assert!(caps.admit_address(bucket("192.0.2.2")).is_ok(), "another address has its own count");
        drop(first);
        assert_eq!(caps.open_from(a), 1);
        assert!(caps.admit_address(a).is_ok());
    }

    #[test]
    fn an_ipv6_64_shares_one_count() {
        let caps = SocketCaps::new(1, 0);
        let _held = caps.admit_address(bucket("2001:db8:5:6::1")).unwrap();
        assert!(caps.admit_address(bucket("2001:db8:5:6:ffff::9")).is_err());
        assert!(caps.admit_address(bucket("2001:db8:5:7::1")).is_ok());
    }

    #[test]
    fn counts_at_zero_are_removed_and_a_zero_cap_counts_nothing() {
        let caps = SocketCaps::new(0, 1);
        let a = bucket("192.0.2.1");
        let slots: Vec<_> = (0..1000).map(|_| caps.admit_address(a).unwrap()).collect();
        assert!(slots.iter().all(Option::is_none), "no cap, no counting");
        assert_eq!(caps.open_from(a), 0);

        let held = caps.admit_user(7).unwrap();
        assert_eq!(caps.admit_user(7).err(), Some(Refused::User));
        assert_eq!(caps.open_for(7), 1);
        drop(held);
        assert_eq!(caps.open_for(7), 0);
        assert!(caps.by_user.0.is_empty(), "an empty count is removed");
    }
}
