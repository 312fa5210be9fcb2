//! The Redis channel layer: many instances behaving as one.
//!
//! Each instance holds a fixed number of Redis connections whatever its number of sockets
//! and rooms: on one server, one multiplexed connection that pipelines `PUBLISH`es and one
//! pub/sub connection on which it subscribes `confab:g:<group>` for every group with a local
//! member (plus its own `confab:i:<instance>` for single-connection sends); on a Redis
//! Cluster, sharded pub/sub ([`cluster`]). A delivery is encoded once per publish (a few
//! header bytes + the frame), and a receiving instance fans the same bytes out to its local
//! members. Local members also receive through Redis, so every instance sees one order per
//! group.
//!
//! Room messages carry their per-room sequence number; a receiver releases them in
//! sequence ([`reorder`]), so two instances committing to one room cannot be seen out of id
//! order.
//!
//! When Redis is unreachable the layer reports itself down (`/api/health` → 503) and
//! reconnects with backoff, resubscribing every local group. Meanwhile the instance keeps
//! serving: logins, joins, sends (persisted and answered with their receipts), typing and
//! presence between its own sockets, logout closes. What it holds back is the live fan-out
//! of persisted events (room messages, DMs, edits): delivering only the local ones would
//! leave holes *below* a client's last-seen id, which `sync` (by last-seen id) could never
//! fill. When Redis is back, the instance first closes its sockets with 1013; clients
//! reconnect, call `sync` from the last id they saw, and get exactly what they missed
//! ([`health`]).
//!
//! # Layout
//! - this file: [`RedisLayer`], the one type features see, over either transport, and the
//!   commands it sends its subscriber task.
//! - [`single`]: the transport on one Redis server (`PUBLISH`, `SUBSCRIBE`).
//! - [`cluster`]: the transport on a Redis Cluster (`SPUBLISH`, `SSUBSCRIBE` per shard).
//! - [`wire`]: channel names and the encoding of a delivery.
//! - [`health`]: up or down, the outage and the recovery (1013), local fallback delivery.
//! - [`reorder`]: received messages to local connections, room messages in sequence.

pub mod cluster;
pub mod health;
pub mod reorder;
pub mod single;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use self::health::Health;
use self::wire::{encode, group_channel, instance_channel};
use super::{ChannelLayer, ConnId, Delivery, Hub, LayerError};
use crate::redis_link::{self, manager_config};

pub use self::reorder::REORDER_WINDOW;

/// Publishes waiting for the pipeline before senders fall back to local delivery.
const PUBLISH_QUEUE: usize = 64 * 1024;
/// Most publishes written in one pipeline round trip.
pub const PUBLISH_BATCH: usize = 512;

/// What the layer asks of its subscriber task.
pub enum SubCommand {
    /// Subscribe a group's channel; answers whether it is subscribed.
    Subscribe(String, oneshot::Sender<bool>),
    /// Unsubscribe a group's channel, unless a member joined meanwhile.
    Unsubscribe(String),
}

/// What a transport's tasks receive from the layer they serve.
pub struct Wiring {
    pub hub: Arc<Hub>,
    pub health: Arc<Health>,
    /// `(channel, payload)` to publish, in order.
    pub publishes: mpsc::Receiver<(String, Bytes)>,
    pub commands: mpsc::UnboundedReceiver<SubCommand>,
    /// Sent once the first subscriptions are in place.
    pub ready: oneshot::Sender<()>,
}

pub struct RedisLayer {
    hub: Arc<Hub>,
    health: Arc<Health>,
    publish: mpsc::Sender<(String, Bytes)>,
    commands: mpsc::UnboundedSender<SubCommand>,
}

impl RedisLayer {
    /// Starts the layer on one Redis server, with connections of its own from `client`.
    pub async fn start(client: redis::Client) -> anyhow::Result<Self> {
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config()).await?;
        Ok(Self::assemble(|wiring| single::spawn(conn, client, wiring)).await)
    }

    /// Starts the layer on a Redis Cluster, with a connection of its own from `client`
    /// ([`redis_link::cluster_client`]). `url` lists one or more nodes; the others are found
    /// from the slot map.
    pub async fn start_cluster(client: &redis::cluster::ClusterClient, url: &str) -> anyhow::Result<Self> {
        let conn = client.get_async_connection().await?;
        let first = redis_link::nodes(url).into_iter().next().ok_or_else(|| anyhow::anyhow!("REDIS_URL is empty"))?;
        let base: redis::ConnectionInfo = first.parse()?;
        Ok(Self::assemble(|wiring| cluster::spawn(conn, base, wiring)).await)
    }

    /// The layer, with its transport's tasks started by `spawn`; returns once the first
    /// subscriptions are in place (or after 5 s), so the instance starts fully connected.
    async fn assemble(spawn: impl FnOnce(Wiring)) -> Self {
        let hub = Arc::new(Hub::default());
        let health = Arc::new(Health::default());
        let (publish, publishes) = mpsc::channel(PUBLISH_QUEUE);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (ready, ready_rx) = oneshot::channel();
        spawn(Wiring { hub: hub.clone(), health: health.clone(), publishes, commands: commands_rx, ready });
        let _ = tokio::time::timeout(Duration::from_secs(5), ready_rx).await;
        Self { hub, health, publish, commands }
    }

    fn publish_or_hold(&self, channel: String, payload: Bytes, delivery: &Delivery, local: impl FnOnce()) {
        if !self.is_up() {
            self.health.begin_outage();
            if !delivery.is_persisted_event() {
                local();
            }
            return;
        }
        if let Err(err) = self.publish.try_send((channel, payload)) {
            tracing::warn!(%err, "publish queue full; treating redis as down");
            self.health.begin_outage();
            if !delivery.is_persisted_event() {
                local();
            }
        }
    }
}

#[async_trait]
impl ChannelLayer for RedisLayer {
    async fn group_add(&self, group: &str, conn: ConnId) -> Result<(), LayerError> {
        self.hub.group_add(group, conn);
        if !self.health.is_subscribed() {
            // Resubscribed from the hub's groups when the connection comes back.
            return Ok(());
        }
        let (reply, confirmed) = oneshot::channel();
        self.commands
            .send(SubCommand::Subscribe(group.to_owned(), reply))
            .map_err(|_| LayerError::Unavailable("subscriber stopped".into()))?;
        match tokio::time::timeout(Duration::from_secs(2), confirmed).await {
            Ok(Ok(true)) => Ok(()),
            _ => Err(LayerError::Unavailable(format!("subscribing {group} did not complete"))),
        }
    }

    fn group_discard(&self, group: &str, conn: ConnId) {
        if self.hub.group_discard(group, conn) {
            let _ = self.commands.send(SubCommand::Unsubscribe(group.to_owned()));
        }
    }

    fn leave_all(&self, conn: ConnId) {
        for group in self.hub.unregister(conn) {
            let _ = self.commands.send(SubCommand::Unsubscribe(group));
        }
    }

    fn group_send(&self, group: &str, delivery: Delivery) -> Result<(), LayerError> {
        let payload = encode(&delivery, None);
        let hub = &self.hub;
        self.publish_or_hold(group_channel(group), payload, &delivery, || {
            hub.deliver_group(group, &delivery);
        });
        Ok(())
    }

    fn send(&self, conn: ConnId, delivery: Delivery) -> Result<(), LayerError> {
        let instance = Hub::instance_of(conn);
        if instance == self.hub.instance() {
            self.hub.deliver_conn(conn, &delivery);
            return Ok(());
        }
        if !self.is_up() {
            return Err(LayerError::Unavailable("redis is down".into()));
        }
        self.publish
            .try_send((instance_channel(instance), encode(&delivery, Some(conn))))
            .map_err(|e| LayerError::Unavailable(e.to_string()))
    }

    fn hub(&self) -> &Hub {
        &self.hub
    }

    fn is_up(&self) -> bool {
        self.health.is_up()
    }
}

/// While disconnected, answer subscribe requests at once (the hub remembers the groups
/// and they are resubscribed on reconnect) so sockets never wait on Redis.
pub async fn drain_while_down(commands: &mut mpsc::UnboundedReceiver<SubCommand>, wait: Duration) {
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return,
            command = commands.recv() => match command {
                Some(SubCommand::Subscribe(_, reply)) => { let _ = reply.send(true); }
                Some(SubCommand::Unsubscribe(_)) => {}
                None => return,
            },
        }
    }
}

/// Publishes one delivery to a group from a process that is not an instance (`confab
/// publish` with `REDIS_URL`). Returns how many instances received it: each instance
/// subscribes a group's channel while it has a member, so 0 means no connection anywhere.
/// On a Redis Cluster the count is of the instances subscribed on the group's shard, which
/// are all of them (sharded pub/sub).
pub async fn publish_once(conn: &mut redis_link::RedisConn, group: &str, delivery: &Delivery) -> redis::RedisResult<usize> {
    let command = if conn.is_cluster() { "SPUBLISH" } else { "PUBLISH" };
    redis::cmd(command).arg(group_channel(group)).arg(encode(delivery, None).as_ref()).query_async(conn).await
}
