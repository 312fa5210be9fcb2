//! Presence by interest: which local connections watch which users (`presence.watch`).
//!
//! Two maps, kept in step: user → watching connections (read for every presence change, so
//! a change costs its watchers, not the instance's connections) and connection → watched
//! users (for `replace`, `unwatch` and the cleanup when the socket closes). Both are sharded;
//! an update takes the connection's entry first and then the users' entries, and a lookup
//! takes only one user's entry, so the two orders never cross.

use std::collections::HashSet;

use dashmap::DashMap;

use super::ConnId;

/// The watch sets of this instance's connections.
#[derive(Default)]
pub struct WatchIndex {
    by_user: DashMap<String, HashSet<ConnId>>,
    by_conn: DashMap<ConnId, HashSet<String>>,
}

/// A watch request that would make the set larger than allowed; nothing was changed.
#[derive(Debug, PartialEq, Eq)]
pub struct TooMany {
    /// The size the set would have had.
    pub would_be: usize,
}

impl WatchIndex {
    /// Adds `users` to the connection's set (or, with `replace`, makes them the set), unless
    /// the set would then hold more than `max`. Returns the set's new size.
    pub fn watch(&self, conn: ConnId, users: &[String], replace: bool, max: usize) -> Result<usize, TooMany> {
        let mut set = self.by_conn.entry(conn).or_default();
        let wanted: HashSet<&String> = users.iter().collect();
        let would_be = if replace { wanted.len() } else { set.len() + wanted.iter().filter(|u| !set.contains(**u)).count() };
        if would_be > max {
            return Err(TooMany { would_be });
        }
        if replace {
            let dropped: Vec<String> = set.iter().filter(|u| !wanted.contains(u)).cloned().collect();
            for user in dropped {
                set.remove(&user);
                self.drop_watcher(&user, conn);
            }
        }
        for user in wanted {
            if set.insert(user.clone()) {
                self.by_user.entry(user.clone()).or_default().insert(conn);
            }
        }
        let size = set.len();
        drop(set);
        if size == 0 {
            self.by_conn.remove_if(&conn, |_, s| s.is_empty());
        }
        Ok(size)
    }

    /// Removes `users` from the connection's set; returns the set's new size.
    pub fn unwatch(&self, conn: ConnId, users: &[String]) -> usize {
        let Some(mut set) = self.by_conn.get_mut(&conn) else { return 0 };
        for user in users {
            if set.remove(user) {
                self.drop_watcher(user, conn);
            }
        }
        let size = set.len();
        drop(set);
        if size == 0 {
            self.by_conn.remove_if(&conn, |_, s| s.is_empty());
        }
        size
    }

    /// Forgets a closing connection's set.
    pub fn forget(&self, conn: ConnId) {
        if let Some((_, set)) = self.by_conn.remove(&conn) {
            for user in set {
                self.drop_watcher(&user, conn);
            }
        }
    }

    /// The local connections watching `user`.
    pub fn watchers(&self, user: &str) -> Vec<ConnId> {
        self.by_user.get(user).map(|set| set.iter().copied().collect()).unwrap_or_default()
    }

    /// How many users the connection watches.
    pub fn watching(&self, conn: ConnId) -> usize {
        self.by_conn.get(&conn).map_or(0, |s| s.len())
    }

    fn drop_watcher(&self, user: &str, conn: ConnId) {
        if let Some(mut watchers) = self.by_user.get_mut(user) {
            watchers.remove(&conn);
            let empty = watchers.is_empty();
            drop(watchers);
            if empty {
                self.by_user.remove_if(user, |_, w| w.is_empty());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn watch_extends_or_replaces_and_keeps_both_directions_in_step() {
        let index = WatchIndex::default();
        assert_eq!(index.watch(1, &names(&["ann", "bob"]), false, 10), Ok(2));
        assert_eq!(index.watch(1, &names(&["bob", "cy"]), false, 10), Ok(3));
        assert_eq!(index.watch(2, &names(&["bob"]), false, 10), Ok(1));
        let mut bob = index.watchers("bob");
        bob.sort();
        assert_eq!(bob, vec![1, 2]);
        assert_eq!(index.watch(1, &names(&["cy"]), true, 10), Ok(1));
        assert!(index.watchers("ann").is_empty());
        assert_eq!(index.watchers("bob"), vec![2]);
        assert_eq!(index.unwatch(2, &names(&["bob", "nobody"])), 0);
        assert!(index.watchers("bob").is_empty());
        index.forget(1);
        assert!(index.watchers("cy").is_empty());
        assert_eq!(index.watching(1), 0);
    }

    #[test]
    fn a_set_over_the_limit_is_refused_whole() {
        let index = WatchIndex::default();
        assert_eq!(index.watch(1, &names(&["a", "b"]), false, 3), Ok(2));
        assert_eq!(index.watch(1, &names(&["c", "d"]), false, 3), Err(TooMany { would_be: 4 }));
        assert_eq!(index.watching(1), 2);
        assert!(index.watchers("c").is_empty());
        // Replacing may shrink below the limit again.
        assert_eq!(index.watch(1, &names(&["c", "d", "e"]), true, 3), Ok(3));
    }
}
