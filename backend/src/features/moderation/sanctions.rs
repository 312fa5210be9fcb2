//! What moderation forbids right now, in memory: bans, mutes, suspensions and slow mode.
//!
//! Every check on a hot path (a send, a reaction, a token check) reads this copy instead of
//! the database. The database stays the record: a decision is stored first, then applied
//! here on the instance that made it; the other instances reload the copy every presence
//! tick ([`Sanctions::reload`]) and act on what is new (closing a suspended account's
//! sockets, taking a banned user out of the room). Time limits are checked on read, so a
//! ban or mute ends on time without anyone reloading anything.
//!
//! Slow mode keeps each member's last send per room on this instance (a member on two
//! instances at once could send once on each within the interval).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::storage::moderation::{self as store, Kind};
use crate::storage::{Db, StorageResult, now_ms};

/// A ban, mute or suspension in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When it ends, in milliseconds (`None`: until lifted).
    pub until: Option<i64>,
    pub reason: Option<String>,
}

impl Entry {
    fn in_force(&self, now: i64) -> bool {
        self.until.is_none_or(|until| until > now)
    }
}

/// A room in slow mode: the interval, and who is exempt (its owner and moderators).
#[derive(Clone, Debug, Default)]
struct Slow {
    secs: u32,
    exempt: HashSet<i64>,
}

/// One copy of every decision in force.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// (room id, user id) → the ban, with the room's name (to take the user out of it).
    bans: HashMap<(i64, i64), (Arc<str>, Entry)>,
    mutes: HashMap<(i64, i64), Entry>,
    suspended: HashMap<i64, Entry>,
    slow: HashMap<i64, Slow>,
}

/// What a reload found that the previous copy did not have: what this instance must act on.
#[derive(Debug, Default)]
pub struct News {
    /// (room, user id) of bans this instance had not applied.
    pub banned: Vec<(Arc<str>, i64)>,
    /// Suspended users this instance had not applied, with the reason.
    pub suspended: Vec<(i64, Option<String>)>,
}

/// The in-memory copy (see the module doc).
#[derive(Debug, Default)]
pub struct Sanctions {
    /// Read on every send and token check, written on each decision and reload; never held
    /// across an `.await` (`std::sync`).
    now: RwLock<Snapshot>,
    /// When each member last sent to each room in slow mode, on this instance.
    last_sent: Mutex<HashMap<(i64, i64), Instant>>,
}

impl Sanctions {
    /// Reads every decision in force from the database.
    pub async fn load(db: &Db) -> StorageResult<Snapshot> {
        let now = now_ms();
        let mut snapshot = Snapshot::default();
        for row in store::sanctions_in_force(db, now).await? {
            let entry = Entry { until: row.ends_at, reason: row.reason.clone() };
            match row.kind() {
                Kind::Ban => {
                    snapshot.bans.insert((row.room_id, row.user_id), (row.room.as_str().into(), entry));
                }
                Kind::Mute => {
                    snapshot.mutes.insert((row.room_id, row.user_id), entry);
                }
            }
        }
        for row in store::suspensions_in_force(db, now).await? {
            snapshot.suspended.insert(row.user_id, Entry { until: row.ends_at, reason: row.reason });
        }
        let slow = store::slow_rooms(db).await?;
        if !slow.is_empty() {
            let ids: Vec<i64> = slow.keys().copied().collect();
            let exempt = store::exempt_of(db, &ids).await?;
            for (room_id, secs) in slow {
                snapshot.slow.insert(room_id, Slow { secs, exempt: exempt.get(&room_id).cloned().unwrap_or_default() });
            }
        }
        Ok(snapshot)
    }

    /// Replaces the copy with a fresh one; what is new in it.
    pub fn replace(&self, fresh: Snapshot) -> News {
        let now = now_ms();
        let mut news = News::default();
        let Ok(mut current) = self.now.write() else { return news };
        for (key, (room, entry)) in &fresh.bans {
            if entry.in_force(now) && !current.bans.get(key).is_some_and(|(_, old)| old.in_force(now)) {
                news.banned.push((room.clone(), key.1));
            }
        }
        for (user, entry) in &fresh.suspended {
            if entry.in_force(now) && !current.suspended.get(user).is_some_and(|old| old.in_force(now)) {
                news.suspended.push((*user, entry.reason.clone()));
            }
        }
        *current = fresh;
        news
    }

    fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        match self.now.read() {
            Ok(snapshot) => f(&snapshot),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn write(&self, f: impl FnOnce(&mut Snapshot)) {
        match self.now.write() {
            Ok(mut snapshot) => f(&mut snapshot),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The ban of `user_id` in `room_id`, if one is in force.
    pub fn ban(&self, room_id: i64, user_id: i64) -> Option<Entry> {
        let now = now_ms();
        self.read(|s| s.bans.get(&(room_id, user_id)).map(|(_, e)| e.clone()).filter(|e| e.in_force(now)))
    }

    /// The names of the rooms `user_id` is banned from now.
    pub fn banned_rooms(&self, user_id: i64) -> Vec<Arc<str>> {
        let now = now_ms();
        self.read(|s| s.bans.iter().filter(|((_, user), (_, e))| *user == user_id && e.in_force(now)).map(|(_, (room, _))| room.clone()).collect())
    }

    /// The mute of `user_id` in `room_id`, if one is in force.
    pub fn mute(&self, room_id: i64, user_id: i64) -> Option<Entry> {
        let now = now_ms();
        self.read(|s| s.mutes.get(&(room_id, user_id)).cloned().filter(|e| e.in_force(now)))
    }

    /// The suspension of `user_id`, if one is in force.
    pub fn suspension(&self, user_id: i64) -> Option<Entry> {
        let now = now_ms();
        self.read(|s| s.suspended.get(&user_id).cloned().filter(|e| e.in_force(now)))
    }

    /// Records a ban or mute decided here.
    pub fn set(&self, kind: Kind, room_id: i64, room: &str, user_id: i64, entry: Entry) {
        self.write(|s| match kind {
            Kind::Ban => {
                s.bans.insert((room_id, user_id), (room.into(), entry));
            }
            Kind::Mute => {
                s.mutes.insert((room_id, user_id), entry);
            }
        });
    }

    /// Records a ban or mute lifted here.
    pub fn lift(&self, kind: Kind, room_id: i64, user_id: i64) {
        self.write(|s| match kind {
            Kind::Ban => {
                s.bans.remove(&(room_id, user_id));
            }
            Kind::Mute => {
                s.mutes.remove(&(room_id, user_id));
            }
        });
    }

    /// Records a suspension decided (`Some`) or lifted (`None`) here.
    pub fn set_suspension(&self, user_id: i64, entry: Option<Entry>) {
        self.write(|s| match entry {
            Some(entry) => {
                s.suspended.insert(user_id, entry);
            }
            None => {
                s.suspended.remove(&user_id);
            }
        });
    }

    /// Records a room's slow mode (0: off) and who is exempt from it.
    pub fn set_slow_mode(&self, room_id: i64, secs: u32, exempt: HashSet<i64>) {
        self.write(|s| {
            if secs == 0 {
                s.slow.remove(&room_id);
            } else {
                s.slow.insert(room_id, Slow { secs, exempt });
            }
        });
    }

    /// Records a change of who is exempt from a room's slow mode (a role changed).
    pub fn set_exempt(&self, room_id: i64, user_id: i64, exempt: bool) {
        self.write(|s| {
            if let Some(slow) = s.slow.get_mut(&room_id) {
                if exempt {
                    slow.exempt.insert(user_id);
                } else {
                    slow.exempt.remove(&user_id);
                }
            }
        });
    }

    /// A send by `user_id` to `room_id` now: `Err(wait)` when slow mode says it comes too
    /// soon after their last one; otherwise it counts as their last send. `exempt` callers
    /// (admins) are never held back.
    pub fn slow_mode_send(&self, room_id: i64, user_id: i64, exempt: bool, now: Instant) -> Result<(), Duration> {
        let interval = self.read(|s| s.slow.get(&room_id).filter(|slow| !slow.exempt.contains(&user_id)).map(|slow| slow.secs));
        let Some(secs) = interval.filter(|_| !exempt) else { return Ok(()) };
        let interval = Duration::from_secs(u64::from(secs));
        let Ok(mut last) = self.last_sent.lock() else { return Ok(()) };
        if let Some(at) = last.get(&(room_id, user_id)) {
            let elapsed = now.saturating_duration_since(*at);
            if elapsed < interval {
                return Err(interval - elapsed);
            }
        }
        // Entries older than any slow mode are of no use: dropped now and then, so the map
        // holds the members who sent within the longest interval, not everyone ever.
        if last.len() >= 100_000 {
            let longest = Duration::from_secs(u64::from(confab_shared::moderation::MAX_SLOW_MODE_SECS));
            last.retain(|_, at| now.saturating_duration_since(*at) < longest);
        }
        last.insert((room_id, user_id), now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_ends_on_time_and_a_lifted_one_at_once() {
        let sanctions = Sanctions::default();
        let now = now_ms();
        sanctions.set(Kind::Mute, 1, "r", 7, Entry { until: Some(now + 60_000), reason: None });
        sanctions.set(Kind::Ban, 1, "r", 8, Entry { until: Some(now - 1), reason: None });
        assert!(sanctions.mute(1, 7).is_some());
        assert!(sanctions.mute(2, 7).is_none(), "another room");
        assert!(sanctions.ban(1, 8).is_none(), "ended");
        sanctions.lift(Kind::Mute, 1, 7);
        assert!(sanctions.mute(1, 7).is_none());
    }

    #[test]
    fn a_reload_reports_only_what_is_new() {
        let sanctions = Sanctions::default();
        let mut fresh = Snapshot::default();
        fresh.bans.insert((1, 7), ("r".into(), Entry { until: None, reason: None }));
        fresh.suspended.insert(9, Entry { until: None, reason: Some("spam".into()) });
        let news = sanctions.replace(fresh.clone());
        assert_eq!(news.banned, vec![(Arc::from("r"), 7)]);
        assert_eq!(news.suspended, vec![(9, Some("spam".to_owned()))]);
        let again = sanctions.replace(fresh);
        assert!(again.banned.is_empty() && again.suspended.is_empty());
    }

    #[test]
    fn slow_mode_holds_members_back_and_lets_the_exempt_through() {
        let sanctions = Sanctions::default();
        sanctions.set_slow_mode(1, 10, HashSet::from([5]));
        let t0 = Instant::now();
        assert_eq!(sanctions.slow_mode_send(1, 7, false, t0), Ok(()));
        let wait = sanctions.slow_mode_send(1, 7, false, t0 + Duration::from_secs(4));
        assert_eq!(wait, Err(Duration::from_secs(6)));
        assert_eq!(sanctions.slow_mode_send(1, 7, false, t0 + Duration::from_secs(10)), Ok(()));
        for n in 0..3 {
            assert_eq!(sanctions.slow_mode_send(1, 5, false, t0 + Duration::from_millis(n)), Ok(()), "a moderator");
            assert_eq!(sanctions.slow_mode_send(1, 6, true, t0 + Duration::from_millis(n)), Ok(()), "an admin");
            assert_eq!(sanctions.slow_mode_send(2, 7, false, t0 + Duration::from_millis(n)), Ok(()), "a room without slow mode");
        }
    }
}
