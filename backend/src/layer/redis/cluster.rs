//! The Redis layer on a Redis Cluster: sharded pub/sub, each group through its slot's shard.
//!
//! The same [`super::RedisLayer`] (the same wire encoding, hold-back of persisted events and
//! 1013-on-recovery), with cluster transports underneath:
//! - **Publishing**: `SPUBLISH confab:g:<group>` on a [`ClusterConnection`], which routes by
//!   slot, follows `MOVED`/`ASK` and refreshes its slot map after a failover. A batch becomes
//!   one pipeline per slot (a pipeline must not cross slots), sent concurrently, so one
//!   group's deliveries keep their order.
//! - **Subscribing**: one RESP3 connection per shard master, on which the instance
//!   `SSUBSCRIBE`s the channel of every group with a local member that the shard owns (plus
//!   its own instance channel, on that channel's shard). The number of connections per
//!   instance is therefore fixed: one per master for subscriptions, plus the cluster
//!   connection's one per node for commands — whatever the number of sockets and groups.
//!
//! Any sign that the topology moved (a shard connection lost or silent, a `MOVED` answer
//! to `SSUBSCRIBE`, a server-initiated `sunsubscribe` because a slot changed owner) drops
//! every shard connection and rebuilds them from a fresh `CLUSTER SLOTS`. Meanwhile the
//! layer reports itself down; once rebuilt, the sockets are closed with 1013 and their
//! clients `sync` what they missed, exactly as after a single server's outage.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, Msg, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::health::{Health, MAX_BACKOFF, deliver_local};
use super::reorder::{self, Reorder};
use super::wire::{group_channel, instance_channel};
use super::{PUBLISH_BATCH, SubCommand, Wiring, drain_while_down};
use crate::layer::Hub;
use crate::redis_link::{self, slot};

/// How often each shard connection is pinged; a shard silent for one more interval is lost.
const SHARD_PING: Duration = Duration::from_secs(2);

/// Starts the publisher and the shard subscribers on `conn`; `base` is the first configured
/// node's connection info (credentials and protocol settings for every shard).
pub fn spawn(conn: ClusterConnection, base: ConnectionInfo, wiring: Wiring) {
    let Wiring { hub, health, publishes, commands, ready } = wiring;
    tokio::spawn(publish_loop(conn.clone(), publishes, hub.clone(), health.clone()));
    tokio::spawn(Subscriber { base, conn, hub, health }.supervise(commands, ready));
}

/// Pipelines `SPUBLISH`es per slot; on failure reports the layer down (delivering what may
/// be delivered locally) until the failed slot has a master again.
async fn publish_loop(conn: ClusterConnection, mut rx: mpsc::Receiver<(String, Bytes)>, hub: Arc<Hub>, health: Arc<Health>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while rx.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut by_slot: HashMap<u16, Vec<usize>> = HashMap::new();
        for (i, (channel, _)) in batch.iter().enumerate() {
            by_slot.entry(slot(channel.as_bytes())).or_default().push(i);
        }
        let sends = by_slot.values().map(|indices| {
            let mut pipe = redis::pipe();
            for &i in indices {
                let (channel, payload) = &batch[i];
                pipe.cmd("SPUBLISH").arg(channel).arg(payload.as_ref()).ignore();
            }
            let mut conn = conn.clone();
            async move { (indices, pipe.query_async::<()>(&mut conn).await) }
        });
        let results = futures_util::future::join_all(sends).await;
        let mut failed_channel = None;
        for (indices, result) in results {
            if let Err(err) = result {
                tracing::warn!(%err, "redis cluster publish failed");
                for &i in indices {
                    let (channel, payload) = &batch[i];
                    deliver_local(&hub, channel, payload);
                    failed_channel.get_or_insert_with(|| channel.clone());
                }
            }
        }
        if let Some(channel) = failed_channel {
            // A keyed command on the failed slot succeeds once the shard has a (new) master.
            let probe = || {
                let mut conn = conn.clone();
                let exists = redis::cmd("EXISTS").arg(&channel).clone();
                async move { exists.query_async::<i64>(&mut conn).await.is_ok() }
            };
            health.recover_publishing(&hub, probe, "redis cluster").await;
        }
        batch.clear();
    }
}

/// What the shard connections report to the supervisor, tagged with the generation of
/// connections they belong to (older generations are ignored).
enum Event {
    Push(u64, PushInfo),
    /// A shard did not answer its ping.
    Silent(u64, String),
}

/// One slot range and the address of the master serving it.
struct Range {
    start: u16,
    end: u16,
    master: String,
}

/// The subscription side: shard connections, rebuilt from the slot map whenever it moves.
struct Subscriber {
    /// The first node's connection info: credentials and protocol settings for every shard.
    base: ConnectionInfo,
    conn: ClusterConnection,
    hub: Arc<Hub>,
    health: Arc<Health>,
}

/// The live shard connections of one generation.
struct Shards {
    generation: u64,
    ranges: Vec<Range>,
    conns: HashMap<String, MultiplexedConnection>,
    watchdogs: Vec<JoinHandle<()>>,
    /// Channels subscribed (and wanted): a server `sunsubscribe` of one of them means its
    /// slot moved.
    channels: HashSet<String>,
}

impl Drop for Shards {
    fn drop(&mut self) {
        for watchdog in &self.watchdogs {
            watchdog.abort();
        }
    }
}

impl Shards {
    fn master_of(&self, channel: &str) -> Option<&str> {
        let slot = slot(channel.as_bytes());
        self.ranges.iter().find(|r| r.start <= slot && slot <= r.end).map(|r| r.master.as_str())
    }

    /// `SSUBSCRIBE`s one channel on its shard (one channel per command: the connection
    /// matches one reply per request).
    async fn subscribe(&mut self, channel: String) -> redis::RedisResult<()> {
        if self.channels.contains(&channel) {
            return Ok(());
        }
        let master = self.master_of(&channel).map(str::to_owned).ok_or_else(|| redis::RedisError::from((redis::ErrorKind::ClusterDown, "no master for the channel's slot")))?;
        let conn = self.conns.get_mut(&master).ok_or_else(|| redis::RedisError::from((redis::ErrorKind::ClusterDown, "no connection to the slot's master")))?;
        redis::cmd("SSUBSCRIBE").arg(&channel).exec_async(conn).await?;
        self.channels.insert(channel);
        Ok(())
    }

    async fn unsubscribe(&mut self, channel: &str) {
        if !self.channels.remove(channel) {
            return;
        }
        let Some(master) = self.master_of(channel).map(str::to_owned) else { return };
        if let Some(conn) = self.conns.get_mut(&master) {
            let _ = redis::cmd("SUNSUBSCRIBE").arg(channel).exec_async(conn).await;
        }
    }
}

impl Subscriber {
    async fn supervise(self, mut commands: mpsc::UnboundedReceiver<SubCommand>, ready: oneshot::Sender<()>) {
        let mut ready = Some(ready);
        let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
        let instance_channel = instance_channel(self.hub.instance());
        let mut backoff = Duration::from_millis(100);
        let mut generation = 0u64;
        loop {
            generation += 1;
            let mut shards = match self.connect(generation, &events_tx).await {
                Ok(shards) => shards,
                Err(err) => {
                    tracing::warn!(%err, ?backoff, "redis cluster subscribers not connected; retrying");
                    drain_while_down(&mut commands, backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            let mut wanted = vec![instance_channel.clone()];
            wanted.extend(self.hub.group_names().iter().map(|g| group_channel(g)));
            let mut failed = None;
            for channel in wanted {
                if let Err(err) = shards.subscribe(channel).await {
                    failed = Some(err);
                    break;
                }
            }
            if let Some(err) = failed {
                tracing::warn!(%err, ?backoff, "redis cluster resubscription failed; retrying");
                drop(shards);
                drain_while_down(&mut commands, backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            self.health.subscribed(&self.hub);
            backoff = Duration::from_millis(100);
            tracing::info!(shards = shards.conns.len(), channels = shards.channels.len(), "redis cluster channel layer subscribed");
            if let Some(ready) = ready.take() {
                let _ = ready.send(());
            }
            if !self.serve(&mut shards, &mut commands, &mut events).await {
                return;
            }
            drop(shards);
            self.health.unsubscribed();
            tracing::warn!("redis cluster topology changed or a shard was lost; resubscribing");
        }
    }

    /// Serves (un)subscribe commands and delivers messages until the shards need rebuilding
    /// (`true`) or the layer is dropped (`false`).
    async fn serve(&self, shards: &mut Shards, commands: &mut mpsc::UnboundedReceiver<SubCommand>, events: &mut mpsc::UnboundedReceiver<Event>) -> bool {
        let mut reorder = Reorder::default();
        loop {
            let deadline = reorder.deadline();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(SubCommand::Subscribe(group, reply)) => {
                        match shards.subscribe(group_channel(&group)).await {
                            Ok(()) => { let _ = reply.send(true); }
                            Err(err) => {
                                tracing::warn!(%err, %group, "SSUBSCRIBE failed");
                                let _ = reply.send(false);
                                return true;
                            }
                        }
                    }
                    Some(SubCommand::Unsubscribe(group)) => {
                        // A member may have joined since the command was queued.
                        if !self.hub.has_group(&group) {
                            shards.unsubscribe(&group_channel(&group)).await;
                        }
                    }
                    None => return false,
                },
                event = events.recv() => match event {
                    Some(Event::Push(generation, push)) if generation == shards.generation => {
                        if !self.on_push(shards, &mut reorder, push) {
                            return true;
                        }
                    }
                    Some(Event::Silent(generation, node)) if generation == shards.generation => {
                        tracing::warn!(%node, "redis cluster shard stopped answering");
                        return true;
                    }
                    Some(_) => {}
                    None => return false,
                },
                () = reorder::until(deadline), if deadline.is_some() => {
                    reorder.expire(&self.hub);
                }
            }
        }
    }

    /// Delivers a sharded message; `false` when the push says the shard set must be rebuilt.
    fn on_push(&self, shards: &Shards, reorder: &mut Reorder, push: PushInfo) -> bool {
        match push.kind {
            PushKind::SMessage => {
                let Some(message) = Msg::from_push_info(push) else { return true };
                reorder.receive(&self.hub, message.get_channel_name(), message.get_payload_bytes());
                true
            }
            PushKind::Disconnection => false,
            PushKind::SUnsubscribe => {
                // Our own SUNSUBSCRIBEs removed the channel first; any other means the slot moved.
                let channel = push.data.first().and_then(|v| redis::from_redis_value::<String>(v).ok());
                !channel.is_some_and(|c| shards.channels.contains(&c))
            }
            _ => true,
        }
    }

    /// Reads the slot map and opens one RESP3 connection per master, each with a watchdog.
    async fn connect(&self, generation: u64, events: &mpsc::UnboundedSender<Event>) -> anyhow::Result<Shards> {
        let slots: Value = tokio::time::timeout(Duration::from_secs(3), redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut self.conn.clone()))
            .await
            .map_err(|_| anyhow::anyhow!("CLUSTER SLOTS timed out"))??;
        let ranges = parse_slots(&slots, &self.base)?;
        anyhow::ensure!(!ranges.is_empty(), "the cluster serves no slots");
        let mut shards = Shards { generation, ranges, conns: HashMap::new(), watchdogs: Vec::new(), channels: HashSet::new() };
        let masters: HashSet<String> = shards.ranges.iter().map(|r| r.master.clone()).collect();
        for master in masters {
            let (host, port) = master.rsplit_once(':').and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?))).ok_or_else(|| anyhow::anyhow!("bad node address {master}"))?;
            let mut info = redis_link::with_address(&self.base, host, port);
            info.redis.protocol = ProtocolVersion::RESP3;
            let pushes = events.clone();
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Duration::from_secs(1))
                .set_response_timeout(SHARD_PING)
                .set_push_sender(move |push: PushInfo| pushes.send(Event::Push(generation, push)).map_err(|_| ()));
            let conn = redis::Client::open(info)?.get_multiplexed_async_connection_with_config(&config).await?;
            shards.watchdogs.push(tokio::spawn(watchdog(conn.clone(), master.clone(), generation, events.clone())));
            shards.conns.insert(master, conn);
        }
        Ok(shards)
    }
}

/// Pings a shard connection; reports it silent at the first ping without an answer.
async fn watchdog(mut conn: MultiplexedConnection, node: String, generation: u64, events: mpsc::UnboundedSender<Event>) {
    let mut tick = tokio::time::interval(SHARD_PING);
    tick.tick().await;
    loop {
        tick.tick().await;
        let answered: redis::RedisResult<Value> = redis::cmd("PING").query_async(&mut conn).await;
        if answered.is_err() {
            let _ = events.send(Event::Silent(generation, node));
            return;
        }
    }
}

/// `CLUSTER SLOTS` → slot ranges with their master's `host:port`. An empty host means
/// "the node you asked", which is the first configured node's host.
fn parse_slots(value: &Value, base: &ConnectionInfo) -> anyhow::Result<Vec<Range>> {
    let default_host = match &base.addr {
        ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let Value::Array(entries) = value else { anyhow::bail!("CLUSTER SLOTS did not answer an array") };
    let mut ranges = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(fields) = entry else { anyhow::bail!("a CLUSTER SLOTS entry is not an array") };
        let [start, end, master, ..] = fields.as_slice() else { anyhow::bail!("a CLUSTER SLOTS entry is too short") };
        let start: u16 = redis::from_redis_value(start)?;
        let end: u16 = redis::from_redis_value(end)?;
        let Value::Array(node) = master else { anyhow::bail!("a CLUSTER SLOTS master is not an array") };
        let [host, port, ..] = node.as_slice() else { anyhow::bail!("a CLUSTER SLOTS master is too short") };
        let host: String = redis::from_redis_value(host)?;
        let port: u16 = redis::from_redis_value(port)?;
        let host = if host.is_empty() || host == "?" { default_host.clone() } else { host };
        ranges.push(Range { start, end, master: format!("{host}:{port}") });
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_map_is_read_from_cluster_slots() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let node = |host: &str, port: i64| Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]);
        let answer = Value::Array(vec![
            Value::Array(vec![Value::Int(0), Value::Int(5460), node("127.0.0.1", 7001), node("127.0.0.1", 7004)]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("", 7002)]),
        ]);
        let base: ConnectionInfo = "redis://10.0.0.9:7001".parse().unwrap();
        let ranges = parse_slots(&answer, &base).unwrap();
        let got: Vec<(u16, u16, &str)> = ranges.iter().map(|r| (r.start, r.end, r.master.as_str())).collect();
        assert_eq!(got, [(0, 5460, "127.0.0.1:7001"), (5461, 16383, "10.0.0.9:7002")]);
        assert!(parse_slots(&Value::Int(1), &base).is_err());
        assert!(parse_slots(&Value::Array(vec![Value::Array(vec![Value::Int(0)])]), &base).is_err());
    }
}
