//! Presence shared by many instances through Redis, with heartbeats and expiry.
//!
//! Keys, all under the `{confab:p}` hash tag (on a Redis Cluster they live in one slot, so
//! every script may touch any of them):
//! - `…:u` and `…:r:<room>`: **the fleet's counts**, user → connections (in that room),
//!   summed over every instance, and `…:rooms`, the rooms with anyone present. A first
//!   arrival is the user's fleet count going 0 → 1 and a last departure 1 → 0: one O(1)
//!   script call decides it, per user across the fleet, whatever the number of instances,
//!   users or tabs. Who is online and who is in a room are read from these hashes alone.
//! - `…:i:<id>:u`, `…:i:<id>:r:<room>` and `…:i:<id>:rooms`: **each instance's share** of
//!   those counts, so that it can be taken out of the fleet's when the instance dies.
//! - `…:instances`: each instance's last heartbeat, on Redis's clock (instances' own clocks
//!   may disagree). An instance silent for [`DEAD_AFTER`] (SIGKILL, power loss) is reaped by
//!   the first survivor to notice: its share is subtracted from the fleet's counts and the
//!   users that leaves with no connection are announced as departed, once.
//!
//! A local mirror of this instance's counts keeps it answering while Redis does not. A
//! decision Redis could not make is never guessed from the mirror (that would be this
//! instance's first tab, not the user's): the call announces nothing and the instance turns
//! stale. Before its next decision, or at its next heartbeat, a stale instance writes its
//! share again from the mirror, in one script that announces exactly the fleet-wide
//! transitions the rewrite causes (the user who left everywhere during the outage leaves
//! once). A call that failed after Redis applied it leaves nothing for the rewrite to find:
//! its announcement is lost, never doubled.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};
use tokio::sync::{RwLock, RwLockReadGuard};
use tokio_util::sync::CancellationToken;

use super::memory::MemoryPresence;
use super::{PresenceError, PresenceResult, PresenceStore, Transitions};
use crate::redis_link::RedisConn;

const PREFIX: &str = "confab:{confab:p}";
/// How often an instance proves it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// An instance silent this long is dead; its users go offline on the others.
pub const DEAD_AFTER: Duration = Duration::from_secs(15);
/// Dead instances one survivor reaps per heartbeat (the rest wait for the next one).
const REAP_PER_ROUND: usize = 8;

/// Where the transitions a store finds on its own go (the presence batcher).
pub type Announce = Arc<dyn Fn(Transitions) + Send + Sync>;

pub struct RedisPresence {
    conn: RedisConn,
    instance: String,
    /// This instance's own counts: the source of truth for its share.
    local: MemoryPresence,
    /// Set when Redis may lack some of this instance's share: it is written again before
    /// the next decision.
    stale: AtomicBool,
    /// Set once this instance has taken its share out for good (shutdown): never written again.
    stopped: AtomicBool,
    /// Decisions hold it shared; a rewrite holds it alone, so the mirror it copies has every
    /// decision either applied in Redis or failed (and so covered by the rewrite), none half-way.
    gate: RwLock<()>,
    announce: OnceLock<Announce>,
    scripts: Scripts,
}

struct Scripts {
    arrive: Script,
    depart: Script,
    beat: Script,
    reap: Script,
    restore: Script,
    remove: Script,
}

fn err(e: redis::RedisError) -> PresenceError {
    PresenceError(e.to_string())
}

/// `[room, user, room, user, …]` as pairs.
fn pairs(flat: Vec<String>) -> Vec<(String, String)> {
    flat.chunks(2)
        .filter_map(|pair| match pair {
            [room, user] => Some((room.clone(), user.clone())),
            _ => None,
        })
        .collect()
}

impl RedisPresence {
    /// Connects and registers this instance; spawns its heartbeat and reaper until `shutdown`.
    pub async fn start(conn: RedisConn, instance: u32, shutdown: CancellationToken) -> anyhow::Result<Arc<Self>> {
        let presence = Arc::new(Self {
            conn,
            instance: format!("{instance:08x}"),
            local: MemoryPresence::default(),
            stale: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            gate: RwLock::new(()),
            announce: OnceLock::new(),
            scripts: Scripts {
                arrive: Script::new(ARRIVE),
                depart: Script::new(DEPART),
                beat: Script::new(BEAT),
                reap: Script::new(&format!("{TAKE_SHARE}{REAP}")),
                restore: Script::new(RESTORE),
                remove: Script::new(&format!("{TAKE_SHARE}{REMOVE}")),
            },
        });
        presence.heartbeat().await;
        tokio::spawn(presence.clone().maintain(shutdown));
        Ok(presence)
    }

    /// Sends the transitions found by reaping and rewriting to `announce` from now on.
    pub fn announce_with(&self, announce: Announce) {
        if self.announce.set(announce).is_err() {
            tracing::warn!("presence announcements already wired");
        }
    }

    fn announce(&self, found: Transitions) {
        if found.is_empty() {
            return;
        }
        match self.announce.get() {
            Some(announce) => announce(found),
            None => tracing::warn!(?found, "presence transitions found before announcements were wired"),
        }
    }

    /// A handle on this store's multiplexed connection, for other shared counters.
    pub fn connection(&self) -> RedisConn {
        self.conn.clone()
    }

    fn instances_key() -> String {
        format!("{PREFIX}:instances")
    }

    fn fleet_users_key() -> String {
        format!("{PREFIX}:u")
    }

    fn fleet_room_key(room: &str) -> String {
        format!("{PREFIX}:r:{room}")
    }

    fn fleet_rooms_key() -> String {
        format!("{PREFIX}:rooms")
    }

    fn users_key(&self) -> String {
        format!("{PREFIX}:i:{}:u", self.instance)
    }

    fn rooms_key(&self) -> String {
        format!("{PREFIX}:i:{}:rooms", self.instance)
    }

    fn room_key(&self, room: &str) -> String {
        format!("{PREFIX}:i:{}:r:{room}", self.instance)
    }

    async fn maintain(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => {
                    self.deregister().await;
                    return;
                }
            }
            self.heartbeat().await;
            for _ in 0..REAP_PER_ROUND {
                match self.reap_one().await {
                    Ok(Some(found)) => self.announce(found),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "presence reaper skipped a round");
                        break;
                    }
                }
            }
        }
    }

    /// Refreshes this instance's liveness; when Redis lacks its share (an outage, a reaping
    /// while it could not reach Redis, lost data), writes it again.
    async fn heartbeat(&self) {
        let mut conn = self.conn.clone();
        let added: redis::RedisResult<i64> =
            self.scripts.beat.key(Self::instances_key()).arg(&self.instance).invoke_async(&mut conn).await;
        match added {
            Err(e) => {
                self.stale.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "presence heartbeat failed");
                return;
            }
            // Absent from the live set although it was written: reaped, or Redis lost it.
            Ok(1) if !self.stale.swap(true, Ordering::Relaxed) => {
                tracing::warn!("this instance was missing from the live set; writing its presence again");
            }
            Ok(_) => {}
        }
        self.restore_if_stale().await;
    }

    /// The shared side of the gate, after writing this instance's share again if needed.
    async fn decision_gate(&self) -> RwLockReadGuard<'_, ()> {
        self.restore_if_stale().await;
        self.gate.read().await
    }

    /// Replaces this instance's share with the mirror's counts and announces the fleet-wide
    /// transitions that makes.
    async fn restore_if_stale(&self) {
        if !self.stale.load(Ordering::Relaxed) || self.stopped.load(Ordering::Relaxed) {
            return;
        }
        let _alone = self.gate.write().await;
        if !self.stale.load(Ordering::Relaxed) || self.stopped.load(Ordering::Relaxed) {
            return;
        }
        let users = self.local.counts_users();
        let rooms = self.local.counts_rooms();
        let mut invocation = self.scripts.restore.key(Self::instances_key());
        invocation.arg(PREFIX).arg(&self.instance).arg(users.len());
        for (user, n) in &users {
            invocation.arg(user).arg(n);
        }
        for (room, members) in &rooms {
            invocation.arg(room).arg(members.len());
            for (user, n) in members {
                invocation.arg(user).arg(n);
            }
        }
        let mut conn = self.conn.clone();
        let written: redis::RedisResult<(Vec<String>, Vec<String>, Vec<String>, Vec<String>)> =
            invocation.invoke_async(&mut conn).await;
        match written {
            Ok((online, offline, joined, left)) => {
                self.stale.store(false, Ordering::Relaxed);
                tracing::info!("presence state written to redis");
                self.announce(Transitions { online, offline, joined: pairs(joined), left: pairs(left) });
            }
            Err(e) => tracing::warn!(error = %e, "presence state not restored yet"),
        }
    }

    /// Takes this instance's share out (shutdown) and announces the departures that makes;
    /// sockets closing after this find nothing left to take.
    async fn deregister(&self) {
        let _alone = self.gate.write().await;
        self.stopped.store(true, Ordering::Relaxed);
        let mut conn = self.conn.clone();
        let removed: redis::RedisResult<(Vec<String>, Vec<String>)> =
            self.scripts.remove.key(Self::instances_key()).arg(PREFIX).arg(&self.instance).invoke_async(&mut conn).await;
        match removed {
            Ok((offline, left)) => self.announce(Transitions { offline, left: pairs(left), ..Transitions::default() }),
            Err(e) => tracing::warn!(error = %e, "presence not taken out at shutdown; the survivors will reap it"),
        }
    }

    /// Reaps one instance whose heartbeat stopped, if any: its departures.
    async fn reap_one(&self) -> PresenceResult<Option<Transitions>> {
        let mut conn = self.conn.clone();
        let reaped: Vec<redis::Value> = self
            .scripts
            .reap
            .key(Self::instances_key())
            .arg(PREFIX)
            .arg(&self.instance)
            .arg(DEAD_AFTER.as_millis() as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        let [instance, offline, left] = reaped.as_slice() else { return Ok(None) };
        let parse = |v: &redis::Value| redis::from_redis_value::<Vec<String>>(v).map_err(err);
        let instance: String = redis::from_redis_value(instance).map_err(err)?;
        let (offline, left) = (parse(offline)?, pairs(parse(left)?));
        tracing::warn!(%instance, users = offline.len(), "reaped a dead instance");
        Ok(Some(Transitions { offline, left, ..Transitions::default() }))
    }

    /// Runs an arrive/depart script on this instance's `mine` hash and the fleet's `fleet`.
    /// When Redis fails, announces nothing: the next rewrite finds the transition if any.
    async fn decide(&self, script: &Script, mine: String, fleet: String, user: &str, room: &str) -> bool {
        let mut conn = self.conn.clone();
        let result: redis::RedisResult<i64> = script
            .key(mine)
            .key(fleet)
            .key(self.rooms_key())
            .key(Self::fleet_rooms_key())
            .arg(user)
            .arg(room)
            .invoke_async(&mut conn)
            .await;
        match result {
            Ok(decision) => decision == 1,
            Err(e) => {
                self.stale.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "presence update kept locally until redis is back");
                false
            }
        }
    }

    /// The users (fields) of one of the fleet's hashes.
    async fn fleet_fields(&self, key: String) -> PresenceResult<Vec<String>> {
        let mut conn = self.conn.clone();
        conn.hkeys(key).await.map_err(err)
    }

    /// The number of users present in each of `rooms` (rooms with nobody left out).
    async fn fleet_counts(&self, rooms: &[String]) -> PresenceResult<HashMap<String, u32>> {
        let mut pipe = redis::pipe();
        for room in rooms {
            pipe.hlen(Self::fleet_room_key(room));
        }
        let mut conn = self.conn.clone();
        let counts: Vec<u32> = pipe.query_async(&mut conn).await.map_err(err)?;
        Ok(rooms.iter().cloned().zip(counts).filter(|(_, n)| *n > 0).collect())
    }
}

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn connect(&self, user: &str) -> PresenceResult<bool> {
        let _gate = self.decision_gate().await;
        self.local.connect(user).await?;
        Ok(self.decide(&self.scripts.arrive, self.users_key(), Self::fleet_users_key(), user, "").await)
    }

    async fn disconnect(&self, user: &str) -> PresenceResult<bool> {
        let _gate = self.decision_gate().await;
        self.local.disconnect(user).await?;
        Ok(self.decide(&self.scripts.depart, self.users_key(), Self::fleet_users_key(), user, "").await)
    }

    async fn enter(&self, room: &str, user: &str) -> PresenceResult<bool> {
        let _gate = self.decision_gate().await;
        self.local.enter(room, user).await?;
        Ok(self.decide(&self.scripts.arrive, self.room_key(room), Self::fleet_room_key(room), user, room).await)
    }

    async fn exit(&self, room: &str, user: &str) -> PresenceResult<bool> {
        let _gate = self.decision_gate().await;
        self.local.exit(room, user).await?;
        Ok(self.decide(&self.scripts.depart, self.room_key(room), Self::fleet_room_key(room), user, room).await)
    }

    async fn online_users(&self) -> PresenceResult<HashSet<String>> {
        match self.fleet_fields(Self::fleet_users_key()).await {
            Ok(users) => Ok(users.into_iter().collect()),
            Err(e) => {
                tracing::warn!(error = %e.0, "online users from this instance only");
                self.local.online_users().await
            }
        }
    }

    async fn room_members(&self, room: &str) -> PresenceResult<Vec<String>> {
        match self.fleet_fields(Self::fleet_room_key(room)).await {
            Ok(mut users) => {
                users.sort();
                Ok(users)
            }
            Err(e) => {
                tracing::warn!(error = %e.0, "room members from this instance only");
                self.local.room_members(room).await
            }
        }
    }

    async fn room_counts(&self) -> PresenceResult<HashMap<String, u32>> {
        let fetch = async {
            let mut conn = self.conn.clone();
            let rooms: Vec<String> = conn.smembers(Self::fleet_rooms_key()).await.map_err(err)?;
            self.fleet_counts(&rooms).await
        };
        match fetch.await {
            Ok(counts) => Ok(counts),
            Err(e) => {
                tracing::warn!(error = %e.0, "room counts from this instance only");
                self.local.room_counts().await
            }
        }
    }

    async fn online_among(&self, users: &[String]) -> PresenceResult<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let fetched: redis::RedisResult<Vec<Option<i64>>> =
            redis::cmd("HMGET").arg(Self::fleet_users_key()).arg(users).query_async(&mut conn).await;
        match fetched {
            Ok(counts) => Ok(counts.into_iter().map(|n| n.is_some_and(|n| n > 0)).collect()),
            Err(e) => {
                tracing::warn!(error = %e, "presence of watched users from this instance only");
                self.local.online_among(users).await
            }
        }
    }

    async fn room_count(&self, room: &str) -> PresenceResult<u32> {
        let mut conn = self.conn.clone();
        let fetched: redis::RedisResult<u32> = conn.hlen(Self::fleet_room_key(room)).await;
        match fetched {
            Ok(n) => Ok(n),
            Err(e) => {
                tracing::warn!(error = %e, "room count from this instance only");
                self.local.room_count(room).await
            }
        }
    }

    async fn room_counts_of(&self, rooms: &[String]) -> PresenceResult<HashMap<String, u32>> {
        if rooms.is_empty() {
            return Ok(HashMap::new());
        }
        match self.fleet_counts(rooms).await {
            Ok(counts) => Ok(counts),
            Err(e) => {
                tracing::warn!(error = %e.0, "room counts from this instance only");
                self.local.room_counts_of(rooms).await
            }
        }
    }
}

/// KEYS: this instance's counts hash, the fleet's, this instance's room set, the fleet's.
/// ARGV: user, room ("" for user presence). Returns 1 on the user's first arrival anywhere.
const ARRIVE: &str = r#"
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if ARGV[2] ~= '' then
  redis.call('SADD', KEYS[3], ARGV[2])
  redis.call('SADD', KEYS[4], ARGV[2])
end
if redis.call('HINCRBY', KEYS[2], ARGV[1], 1) == 1 then return 1 end
return 0
"#;

/// Same keys and arguments; returns 1 on the user's last departure anywhere.
const DEPART: &str = r#"
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if c <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if ARGV[2] ~= '' and redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
end
-- Nothing of this instance's was counted (its share was reaped or taken out meanwhile):
-- the fleet's count no longer holds it.
if c < 0 then return 0 end
local f = redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
if f > 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[2] ~= '' and redis.call('HLEN', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[2]) end
if f == 0 then return 1 end
return 0
"#;

/// KEYS: instances zset. ARGV: this instance. A heartbeat on Redis's clock; 1 when the
/// instance was not in the set.
const BEAT: &str = r#"
local t = redis.call('TIME')
return redis.call('ZADD', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[1])
"#;

/// `take_share(prefix, instance)`: subtracts an instance's share from the fleet's counts,
/// deletes its keys, returns {users now offline everywhere, flat room,user pairs that left}.
const TAKE_SHARE: &str = r#"
local function take_share(p, instance)
  local base = p .. ':i:' .. instance
  local offline, left = {}, {}
  local users = redis.call('HGETALL', base .. ':u')
  for i = 1, #users, 2 do
    if redis.call('HINCRBY', p .. ':u', users[i], -tonumber(users[i + 1])) <= 0 then
      redis.call('HDEL', p .. ':u', users[i])
      table.insert(offline, users[i])
    end
  end
  for _, room in ipairs(redis.call('SMEMBERS', base .. ':rooms')) do
    local fleet = p .. ':r:' .. room
    local members = redis.call('HGETALL', base .. ':r:' .. room)
    for i = 1, #members, 2 do
      if redis.call('HINCRBY', fleet, members[i], -tonumber(members[i + 1])) <= 0 then
        redis.call('HDEL', fleet, members[i])
        table.insert(left, room)
        table.insert(left, members[i])
      end
    end
    if redis.call('HLEN', fleet) == 0 then redis.call('SREM', p .. ':rooms', room) end
    redis.call('DEL', base .. ':r:' .. room)
  end
  redis.call('DEL', base .. ':u', base .. ':rooms')
  return {offline, left}
end
"#;

/// KEYS: instances zset. ARGV: key prefix, this instance, dead-after in ms.
/// Reaps the oldest instance (not this one) silent that long on Redis's clock; returns
/// {instance, offline, left} or {} when none is dead.
const REAP: &str = r#"
local t = redis.call('TIME')
local cutoff = t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(ARGV[3])
for _, instance in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff, 'LIMIT', 0, 2)) do
  if instance ~= ARGV[2] then
    redis.call('ZREM', KEYS[1], instance)
    local taken = take_share(ARGV[1], instance)
    return {instance, taken[1], taken[2]}
  end
end
return {}
"#;

/// KEYS: instances zset. ARGV: key prefix, this instance. Takes this instance out for good.
const REMOVE: &str = r#"
redis.call('ZREM', KEYS[1], ARGV[2])
return take_share(ARGV[1], ARGV[2])
"#;

/// KEYS: instances zset. ARGV: key prefix, this instance, N, then N user,count pairs, then
/// per room: room, M, M user,count pairs. Makes this instance live and its share exactly
/// these counts, moving the fleet's counts by the difference; returns the fleet-wide
/// transitions {online, offline, joined pairs, left pairs}.
const RESTORE: &str = r#"
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[2])
local p = ARGV[1]
local base = p .. ':i:' .. ARGV[2]
local online, offline, joined, left = {}, {}, {}, {}
local function note(list, room, user)
  if room then table.insert(list, room) end
  table.insert(list, user)
end
local function move(mine, fleet, new, room, arrived, departed)
  local old = {}
  local flat = redis.call('HGETALL', mine)
  for i = 1, #flat, 2 do old[flat[i]] = tonumber(flat[i + 1]) end
  redis.call('DEL', mine)
  local function apply(user, delta)
    if delta == 0 then return end
    local before = tonumber(redis.call('HGET', fleet, user) or '0')
    local after = redis.call('HINCRBY', fleet, user, delta)
    if after <= 0 then redis.call('HDEL', fleet, user) end
    if before <= 0 and after > 0 then note(arrived, room, user) end
    if before > 0 and after <= 0 then note(departed, room, user) end
  end
  for user, n in pairs(new) do
    redis.call('HSET', mine, user, n)
    apply(user, n - (old[user] or 0))
    old[user] = nil
  end
  for user, n in pairs(old) do apply(user, -n) end
end
local i = 4
local users = {}
for _ = 1, tonumber(ARGV[3]) do
  users[ARGV[i]] = tonumber(ARGV[i + 1])
  i = i + 2
end
move(base .. ':u', p .. ':u', users, nil, online, offline)
local rooms = {}
while i <= #ARGV do
  local room, m = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  local members = {}
  for _ = 1, m do
    members[ARGV[i]] = tonumber(ARGV[i + 1])
    i = i + 2
  end
  rooms[room] = members
end
for _, room in ipairs(redis.call('SMEMBERS', base .. ':rooms')) do
  if not rooms[room] then rooms[room] = {} end
end
redis.call('DEL', base .. ':rooms')
for room, members in pairs(rooms) do
  local fleet = p .. ':r:' .. room
  move(base .. ':r:' .. room, fleet, members, room, joined, left)
  if next(members) ~= nil then redis.call('SADD', base .. ':rooms', room) end
  if redis.call('HLEN', fleet) == 0 then
    redis.call('SREM', p .. ':rooms', room)
  else
    redis.call('SADD', p .. ':rooms', room)
  end
end
return {online, offline, joined, left}
"#;
