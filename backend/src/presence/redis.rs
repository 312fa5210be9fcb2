//! Presence shared by many instances through Redis, with heartbeats and expiry.
//!
//! Each instance writes only its own counts: `…:i:<id>:u` (user → connections here) and
//! `…:i:<id>:r:<room>` (user → connections in that room here), listed in `…:i:<id>:rooms`.
//! Whether a user is online is derived: some *live* instance has them. Liveness is a
//! heartbeat score in the `…:instances` sorted set; an instance silent for [`DEAD_AFTER`]
//! (SIGKILL, power loss) is reaped by whichever survivor removes it from the set first, and
//! its users' departures are announced as if their sockets had closed.
//!
//! The first-arrival / last-departure decisions run as Lua scripts, so two instances
//! cannot both miss a user's last departure. All keys share the `{confab:p}` hash tag: on
//! Redis Cluster they live in one slot and the scripts stay valid.
//!
//! A local mirror of this instance's counts makes Redis outages survivable: calls still
//! answer from local knowledge, and once Redis is back the instance rewrites its keys.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::memory::MemoryPresence;
use super::{PresenceError, PresenceResult, PresenceStore};
use crate::redis_link::RedisConn;

const PREFIX: &str = "confab:{confab:p}";
/// How often an instance proves it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// An instance silent this long is dead; its users go offline on the others.
pub const DEAD_AFTER: Duration = Duration::from_secs(15);

/// Departures found by reaping a dead instance, to be announced by the caller.
#[derive(Debug, Default)]
pub struct Reaped {
    pub offline: Vec<String>,
    /// (room, user) pairs that left.
    pub left: Vec<(String, String)>,
}

pub struct RedisPresence {
    conn: RedisConn,
    instance: String,
    /// This instance's own counts: the source of truth for its keys.
    local: MemoryPresence,
    /// Set after a Redis error: the next heartbeat rewrites this instance's keys.
    stale: AtomicBool,
    scripts: Scripts,
}

struct Scripts {
    arrive: Script,
    depart: Script,
    reap: Script,
}

fn err(e: redis::RedisError) -> PresenceError {
    PresenceError(e.to_string())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl RedisPresence {
    /// Connects and registers this instance; spawns its heartbeat and reaper, which send
    /// the departures of dead instances to `reaped` until `shutdown`.
    pub async fn start(
        conn: RedisConn,
        instance: u32,
        reaped: mpsc::UnboundedSender<Reaped>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Self>> {
        let presence = Arc::new(Self {
            conn,
            instance: format!("{instance:08x}"),
            local: MemoryPresence::default(),
            stale: AtomicBool::new(true),
            scripts: Scripts { arrive: Script::new(ARRIVE), depart: Script::new(DEPART), reap: Script::new(REAP) },
        });
        presence.heartbeat().await;
        tokio::spawn(presence.clone().maintain(reaped, shutdown));
        Ok(presence)
    }

    /// A handle on this store's multiplexed connection, for other shared counters.
    pub fn connection(&self) -> RedisConn {
        self.conn.clone()
    }

    fn instances_key() -> String {
        format!("{PREFIX}:instances")
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

    fn live_since() -> i64 {
        now_ms() - DEAD_AFTER.as_millis() as i64
    }

    async fn maintain(self: Arc<Self>, reaped: mpsc::UnboundedSender<Reaped>, shutdown: CancellationToken) {
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
            match self.reap().await {
                Ok(found) => {
                    for r in found {
                        let _ = reaped.send(r);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "presence reaper skipped a round"),
            }
        }
    }

    /// Refreshes this instance's liveness; after an outage, rewrites its keys from the mirror.
    async fn heartbeat(&self) {
        let mut conn = self.conn.clone();
        let result: redis::RedisResult<()> = conn.zadd(Self::instances_key(), &self.instance, now_ms()).await;
        if let Err(e) = result {
            self.stale.store(true, Ordering::Relaxed);
            tracing::warn!(error = %e, "presence heartbeat failed");
            return;
        }
        if self.stale.swap(false, Ordering::Relaxed) {
            if let Err(e) = self.rewrite().await {
                self.stale.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "presence state not restored yet");
            } else {
                tracing::info!("presence state written to redis");
            }
        }
    }

    /// Replaces this instance's keys with the local mirror's counts.
    async fn rewrite(&self) -> PresenceResult<()> {
        let users = self.local.counts_users();
        let rooms = self.local.counts_rooms();
        let mut conn = self.conn.clone();
        let old_rooms: Vec<String> = conn.smembers(self.rooms_key()).await.map_err(err)?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.del(self.users_key()).ignore();
        for room in &old_rooms {
            pipe.del(self.room_key(room)).ignore();
        }
        pipe.del(self.rooms_key()).ignore();
        if !users.is_empty() {
            pipe.hset_multiple(self.users_key(), &users).ignore();
        }
        for (room, members) in &rooms {
            pipe.sadd(self.rooms_key(), room).ignore();
            pipe.hset_multiple(self.room_key(room), members).ignore();
        }
        pipe.query_async::<()>(&mut conn).await.map_err(err)
    }

    async fn deregister(&self) {
        let mut conn = self.conn.clone();
        let _: redis::RedisResult<()> = conn.zrem(Self::instances_key(), &self.instance).await;
        let _ = self.rewrite_empty().await;
    }

    async fn rewrite_empty(&self) -> PresenceResult<()> {
        let mut conn = self.conn.clone();
        let rooms: Vec<String> = conn.smembers(self.rooms_key()).await.map_err(err)?;
        let mut keys = vec![self.users_key(), self.rooms_key()];
        keys.extend(rooms.iter().map(|r| self.room_key(r)));
        conn.del::<_, ()>(keys).await.map_err(err)
    }

    /// Removes instances whose heartbeat stopped, returning their users' departures.
    async fn reap(&self) -> PresenceResult<Vec<Reaped>> {
        let mut conn = self.conn.clone();
        let dead: Vec<String> = conn
            .zrangebyscore(Self::instances_key(), "-inf", format!("({}", Self::live_since()))
            .await
            .map_err(err)?;
        let mut found = Vec::new();
        for instance in dead.into_iter().filter(|i| *i != self.instance) {
            let (offline, left): (Vec<String>, Vec<String>) = self
                .scripts
                .reap
                .key(Self::instances_key())
                .arg(PREFIX)
                .arg(&instance)
                .arg(Self::live_since())
                .invoke_async(&mut conn)
                .await
                .map_err(err)?;
            let left = left
                .chunks(2)
                .filter_map(|pair| match pair {
                    [room, user] => Some((room.clone(), user.clone())),
                    _ => None,
                })
                .collect();
            tracing::warn!(%instance, users = offline.len(), "reaped a dead instance");
            found.push(Reaped { offline, left });
        }
        Ok(found)
    }

    /// Runs an arrive/depart script, falling back to the local answer when Redis is down.
    async fn decide(&self, script: &Script, key: String, field: &str, scope: &str, local: bool) -> PresenceResult<bool> {
        let mut conn = self.conn.clone();
        let result: redis::RedisResult<i64> = script
            .key(key)
            .key(Self::instances_key())
            .key(self.rooms_key())
            .arg(field)
            .arg(Self::live_since())
            .arg(PREFIX)
            .arg(&self.instance)
            .arg(scope)
            .invoke_async(&mut conn)
            .await;
        match result {
            Ok(decision) => Ok(decision == 1),
            Err(e) => {
                self.stale.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "presence update kept locally until redis is back");
                Ok(local)
            }
        }
    }

    /// Every live instance's key for `suffix` (e.g. `u` or `r:<room>`).
    async fn live_keys(&self, suffix: &str) -> PresenceResult<Vec<String>> {
        let mut conn = self.conn.clone();
        let live: Vec<String> =
            conn.zrangebyscore(Self::instances_key(), Self::live_since(), "+inf").await.map_err(err)?;
        let mut keys: Vec<String> = live.into_iter().map(|i| format!("{PREFIX}:i:{i}:{suffix}")).collect();
        let own = format!("{PREFIX}:i:{}:{suffix}", self.instance);
        if !keys.contains(&own) {
            keys.push(own);
        }
        Ok(keys)
    }

    async fn union_fields(&self, suffix: &str) -> PresenceResult<HashSet<String>> {
        let keys = self.live_keys(suffix).await?;
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.hkeys(key);
        }
        let mut conn = self.conn.clone();
        let lists: Vec<Vec<String>> = pipe.query_async(&mut conn).await.map_err(err)?;
        Ok(lists.into_iter().flatten().collect())
    }
}

#[async_trait]
impl PresenceStore for RedisPresence {
    async fn connect(&self, user: &str) -> PresenceResult<bool> {
        let local = self.local.connect(user).await?;
        self.decide(&self.scripts.arrive, self.users_key(), user, "", local).await
    }

    async fn disconnect(&self, user: &str) -> PresenceResult<bool> {
        let local = self.local.disconnect(user).await?;
        self.decide(&self.scripts.depart, self.users_key(), user, "", local).await
    }

    async fn enter(&self, room: &str, user: &str) -> PresenceResult<bool> {
        let local = self.local.enter(room, user).await?;
        self.decide(&self.scripts.arrive, self.room_key(room), user, room, local).await
    }

    async fn exit(&self, room: &str, user: &str) -> PresenceResult<bool> {
        let local = self.local.exit(room, user).await?;
        self.decide(&self.scripts.depart, self.room_key(room), user, room, local).await
    }

    async fn online_users(&self) -> PresenceResult<HashSet<String>> {
        match self.union_fields("u").await {
            Ok(users) => Ok(users),
            Err(e) => {
                tracing::warn!(error = %e.0, "online users from this instance only");
                self.local.online_users().await
            }
        }
    }

    async fn room_members(&self, room: &str) -> PresenceResult<Vec<String>> {
        match self.union_fields(&format!("r:{room}")).await {
            Ok(users) => {
                let mut users: Vec<String> = users.into_iter().collect();
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
            let live: Vec<String> =
                conn.zrangebyscore(Self::instances_key(), Self::live_since(), "+inf").await.map_err(err)?;
            let (prefixes, rooms): (Vec<String>, Vec<Vec<String>>) = {
                let mut pipe = redis::pipe();
                let prefixes: Vec<String> = live.iter().map(|i| format!("{PREFIX}:i:{i}")).collect();
                for p in &prefixes {
                    pipe.smembers(format!("{p}:rooms"));
                }
                let rooms: Vec<Vec<String>> = pipe.query_async(&mut conn).await.map_err(err)?;
                (prefixes, rooms)
            };
            let mut pipe = redis::pipe();
            let mut order = Vec::new();
            for (p, rooms) in prefixes.iter().zip(&rooms) {
                for room in rooms {
                    pipe.hkeys(format!("{p}:r:{room}"));
                    order.push(room.clone());
                }
            }
            let members: Vec<Vec<String>> = pipe.query_async(&mut conn).await.map_err(err)?;
            let mut by_room: HashMap<String, HashSet<String>> = HashMap::new();
            for (room, users) in order.into_iter().zip(members) {
                by_room.entry(room).or_default().extend(users);
            }
            Ok::<_, PresenceError>(
                by_room.into_iter().filter(|(_, u)| !u.is_empty()).map(|(r, u)| (r, u.len() as u32)).collect(),
            )
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
        let fetch = async {
            let keys = self.live_keys("u").await?;
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.cmd("HMGET").arg(key).arg(users);
            }
            let mut conn = self.conn.clone();
            let rows: Vec<Vec<Option<i64>>> = pipe.query_async(&mut conn).await.map_err(err)?;
            Ok::<_, PresenceError>(
                (0..users.len()).map(|i| rows.iter().any(|row| row.get(i).is_some_and(|c| c.is_some_and(|n| n > 0)))).collect(),
            )
        };
        match fetch.await {
            Ok(online) => Ok(online),
            Err(e) => {
                tracing::warn!(error = %e.0, "presence of watched users from this instance only");
                self.local.online_among(users).await
            }
        }
    }

    async fn room_counts_of(&self, rooms: &[String]) -> PresenceResult<HashMap<String, u32>> {
        if rooms.is_empty() {
            return Ok(HashMap::new());
        }
        let fetch = async {
            let mut conn = self.conn.clone();
            let live: Vec<String> =
                conn.zrangebyscore(Self::instances_key(), Self::live_since(), "+inf").await.map_err(err)?;
            let mut pipe = redis::pipe();
            let mut order = Vec::new();
            for instance in &live {
                for room in rooms {
                    pipe.hkeys(format!("{PREFIX}:i:{instance}:r:{room}"));
                    order.push(room);
                }
            }
            let members: Vec<Vec<String>> = pipe.query_async(&mut conn).await.map_err(err)?;
            let mut by_room: HashMap<&String, HashSet<String>> = HashMap::new();
            for (room, users) in order.into_iter().zip(members) {
                by_room.entry(room).or_default().extend(users);
            }
            Ok::<_, PresenceError>(
                by_room.into_iter().filter(|(_, u)| !u.is_empty()).map(|(r, u)| (r.clone(), u.len() as u32)).collect(),
            )
        };
        match fetch.await {
            Ok(counts) => Ok(counts),
            Err(e) => {
                tracing::warn!(error = %e.0, "room counts from this instance only");
                self.local.room_counts_of(rooms).await
            }
        }
    }
}

/// KEYS: counts hash, instances zset, this instance's room set.
/// ARGV: field, live-since score, key prefix, this instance, room ("" for user presence).
/// Increments; returns 1 when no other live instance has the field (first arrival).
const ARRIVE: &str = r#"
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if ARGV[5] ~= '' then redis.call('SADD', KEYS[3], ARGV[5]) end
if c > 1 then return 0 end
local suffix = (ARGV[5] == '') and ':u' or (':r:' .. ARGV[5])
for _, inst in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[2], '+inf')) do
  if inst ~= ARGV[4] and redis.call('HEXISTS', ARGV[3] .. ':i:' .. inst .. suffix, ARGV[1]) == 1 then return 0 end
end
return 1
"#;

/// Same keys and arguments; decrements and returns 1 on the last departure anywhere.
const DEPART: &str = r#"
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if c > 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[5] ~= '' and redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[5]) end
if c < 0 then return 0 end
local suffix = (ARGV[5] == '') and ':u' or (':r:' .. ARGV[5])
for _, inst in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[2], '+inf')) do
  if inst ~= ARGV[4] and redis.call('HEXISTS', ARGV[3] .. ':i:' .. inst .. suffix, ARGV[1]) == 1 then return 0 end
end
return 1
"#;

/// KEYS: instances zset. ARGV: key prefix, dead instance, live-since score.
/// Removes the instance (only one reaper wins), deletes its keys and returns
/// {users now offline everywhere, flat list of room,user pairs that left}.
const REAP: &str = r#"
if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then return {{}, {}} end
local base = ARGV[1] .. ':i:' .. ARGV[2]
local live = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[3], '+inf')
local function elsewhere(suffix, field)
  for _, inst in ipairs(live) do
    if redis.call('HEXISTS', ARGV[1] .. ':i:' .. inst .. suffix, field) == 1 then return true end
  end
  return false
end
local offline = {}
for _, user in ipairs(redis.call('HKEYS', base .. ':u')) do
  if not elsewhere(':u', user) then table.insert(offline, user) end
end
local left = {}
for _, room in ipairs(redis.call('SMEMBERS', base .. ':rooms')) do
  for _, user in ipairs(redis.call('HKEYS', base .. ':r:' .. room)) do
    if not elsewhere(':r:' .. room, user) then
      table.insert(left, room)
      table.insert(left, user)
    end
  end
  redis.call('DEL', base .. ':r:' .. room)
end
redis.call('DEL', base .. ':u', base .. ':rooms')
return {offline, left}
"#;
