//! The Redis channel layer: many instances behaving as one.
//!
//! Each instance holds exactly two Redis connections whatever its number of sockets and
//! rooms: one multiplexed connection that pipelines `PUBLISH`es, and one pub/sub connection
//! on which it subscribes `confab:g:<group>` for every group with a local member (plus its
//! own `confab:i:<instance>` for single-connection sends). A delivery is encoded once per
//! publish (a few header bytes + the frame), and a receiving instance fans the same bytes
//! out to its local members. Local members also receive through Redis, so every instance
//! sees one order per group.
//!
//! Room messages carry their per-room sequence number; a receiver releases them in
//! sequence, holding a gap open for [`REORDER_WINDOW`] at most, so two instances committing
//! to one room cannot be seen out of id order.
//!
//! When Redis is unreachable the layer reports itself down (`/api/health` → 503) and
//! reconnects with backoff, resubscribing every local group. Meanwhile the instance keeps
//! serving: logins, joins, sends (persisted and answered with their receipts), typing and
//! presence between its own sockets, logout closes. What it holds back is the live fan-out
//! of persisted events (room messages, DMs, edits): delivering only the local ones would
//! leave holes *below* a client's last-seen id, which `sync` (by last-seen id) could never
//! fill. When Redis is back, the instance first closes its sockets with 1013; clients
//! reconnect, call `sync` from the last id they saw, and get exactly what they missed.
//!
//! On a Redis Cluster the same layer runs on sharded pub/sub ([`cluster`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{ChannelLayer, Class, ConnId, Delivery, Except, Hub, LayerError};

pub mod cluster;

const GROUP_PREFIX: &str = "confab:g:";
const INSTANCE_PREFIX: &str = "confab:i:";
/// Publishes waiting for the pipeline before senders fall back to local delivery.
const PUBLISH_QUEUE: usize = 64 * 1024;
/// Most publishes written in one pipeline round trip.
const PUBLISH_BATCH: usize = 512;
/// How long a receiver waits for a missing room message before releasing later ones.
pub const REORDER_WINDOW: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

enum SubCommand {
    Subscribe(String, oneshot::Sender<bool>),
    Unsubscribe(String),
}

pub struct RedisLayer {
    hub: Arc<Hub>,
    /// The pub/sub connection is up and subscribed.
    subscribed: Arc<AtomicBool>,
    /// The last pipeline of publishes succeeded.
    publishing: Arc<AtomicBool>,
    /// Set while Redis is (or was, since the last recovery) unreachable.
    outage: Arc<Outage>,
    publish: mpsc::Sender<(String, Bytes)>,
    commands: mpsc::UnboundedSender<SubCommand>,
}

/// How every command connection of an instance talks to Redis: short timeouts and quick
/// retries, so a dead Redis turns into a prompt error (and the local fallback) instead of a
/// request that hangs while the connection manager backs off.
pub fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(Duration::from_secs(2))
        .set_number_of_retries(1)
        .set_max_delay(1000)
}

impl RedisLayer {
    /// Connects both connections and starts the publisher and the subscriber supervisor.
    pub async fn start(client: redis::Client) -> anyhow::Result<Self> {
        let hub = Arc::new(Hub::default());
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config()).await?;
        let (publish, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let layer = Self {
            hub: hub.clone(),
            subscribed: Arc::new(AtomicBool::new(false)),
            publishing: Arc::new(AtomicBool::new(true)),
            outage: Arc::new(Outage::default()),
            publish,
            commands,
        };
        let publisher = Publisher { hub: hub.clone(), publishing: layer.publishing.clone(), subscribed: layer.subscribed.clone(), outage: layer.outage.clone() };
        tokio::spawn(publish_loop(conn, publish_rx, publisher));
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(supervise(client, hub, layer.subscribed.clone(), layer.publishing.clone(), layer.outage.clone(), commands_rx, Some(ready_tx)));
        // Wait for the first subscription so the instance starts fully connected.
        let _ = tokio::time::timeout(Duration::from_secs(5), ready_rx).await;
        Ok(layer)
    }

    fn instance_channel(instance: u32) -> String {
        format!("{INSTANCE_PREFIX}{instance:08x}")
    }

    fn publish_or_hold(&self, channel: String, payload: Bytes, delivery: &Delivery, local: impl FnOnce()) {
        if !self.is_up() {
            self.outage.begin();
            if !delivery.is_persisted_event() {
                local();
            }
            return;
        }
        if let Err(err) = self.publish.try_send((channel, payload)) {
            tracing::warn!(%err, "publish queue full; treating redis as down");
            self.outage.begin();
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
        if !self.subscribed.load(Ordering::Acquire) {
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
        self.publish_or_hold(format!("{GROUP_PREFIX}{group}"), payload, &delivery, || {
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
            .try_send((Self::instance_channel(instance), encode(&delivery, Some(conn))))
            .map_err(|e| LayerError::Unavailable(e.to_string()))
    }

    fn hub(&self) -> &Hub {
        &self.hub
    }

    fn is_up(&self) -> bool {
        self.subscribed.load(Ordering::Acquire) && self.publishing.load(Ordering::Acquire)
    }
}

/// Tracks an outage so that recovery can tell the clients to resynchronise.
#[derive(Default)]
struct Outage {
    active: AtomicBool,
}

impl Outage {
    fn begin(&self) {
        if !self.active.swap(true, Ordering::AcqRel) {
            tracing::warn!("redis unreachable: holding persisted events, serving local traffic");
        }
    }

    /// Called once both connections work again: sockets that lived through the outage
    /// may have missed persisted events, so they reconnect (1013) and `sync`.
    fn end(&self, hub: &Hub) {
        if self.active.swap(false, Ordering::AcqRel) {
            tracing::info!(sockets = hub.len(), "redis is back: asking sockets to reconnect and sync");
            hub.close_all(confab_shared::rpc::close::TRY_AGAIN_LATER);
        }
    }
}

struct Publisher {
    hub: Arc<Hub>,
    publishing: Arc<AtomicBool>,
    subscribed: Arc<AtomicBool>,
    outage: Arc<Outage>,
}

impl Publisher {
    /// After a failed publish: reports the layer down, retries `probe` with backoff until it
    /// answers, then reports publishing back (and the layer up, if subscriptions are too).
    async fn recover<F, Fut>(&self, mut probe: F, what: &'static str)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.publishing.store(false, Ordering::Release);
        self.outage.begin();
        let mut wait = Duration::from_millis(100);
        while !probe().await {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
        self.publishing.store(true, Ordering::Release);
        if self.subscribed.load(Ordering::Acquire) {
            self.outage.end(&self.hub);
        }
        tracing::info!("{what} publishing restored");
    }
}

/// Pipelines publishes; on failure reports the layer down (delivering what may be delivered
/// locally) until a probe succeeds.
async fn publish_loop(mut conn: ConnectionManager, mut rx: mpsc::Receiver<(String, Bytes)>, p: Publisher) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while rx.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for (channel, payload) in &batch {
            pipe.publish(channel, payload.as_ref()).ignore();
        }
        if let Err(err) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(%err, "redis publish failed");
            for (channel, payload) in &batch {
                deliver_local(&p.hub, channel, payload);
            }
            // ConnectionManager reconnects in the background; probe until it answers.
            let probe = || {
                let mut conn = conn.clone();
                async move { conn.send_packed_command(&redis::cmd("PING")).await.is_ok() }
            };
            p.recover(probe, "redis").await;
        }
        batch.clear();
    }
}

/// Local delivery of a publish that did not reach Redis: ephemeral frames and closes only.
fn deliver_local(hub: &Hub, channel: &str, payload: &[u8]) {
    let decoded = match channel.strip_prefix(GROUP_PREFIX) {
        Some(group) => decode(payload, false).map(|(d, _)| (d, Target::Group(group))),
        None => decode(payload, true).and_then(|(d, conn)| conn.map(|c| (d, Target::Conn(c)))),
    };
    let Some((delivery, target)) = decoded else { return };
    if delivery.is_persisted_event() {
        return;
    }
    match target {
        Target::Group(group) => {
            hub.deliver_group(group, &delivery);
        }
        Target::Conn(conn) => {
            hub.deliver_conn(conn, &delivery);
        }
    }
}

enum Target<'a> {
    Group(&'a str),
    Conn(ConnId),
}

/// Keeps the pub/sub connection alive: connect, subscribe every local group, serve
/// (un)subscribe commands and receive; on loss, mark down and retry with backoff.
async fn supervise(
    client: redis::Client,
    hub: Arc<Hub>,
    subscribed: Arc<AtomicBool>,
    publishing: Arc<AtomicBool>,
    outage: Arc<Outage>,
    mut commands: mpsc::UnboundedReceiver<SubCommand>,
    mut ready: Option<oneshot::Sender<()>>,
) {
    let mut backoff = Duration::from_millis(100);
    let instance_channel = RedisLayer::instance_channel(hub.instance());
    loop {
        let connected = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub()).await;
        let pubsub = match connected {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(err)) => {
                tracing::warn!(%err, ?backoff, "redis pub/sub connect failed; retrying");
                drain_while_down(&mut commands, backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err(_) => {
                tracing::warn!(?backoff, "redis pub/sub connect timed out; retrying");
                drain_while_down(&mut commands, backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let (mut sink, stream) = pubsub.split();
        let mut channels: HashSet<String> = HashSet::new();
        let mut ok = sink.subscribe(&instance_channel).await.is_ok();
        for group in hub.group_names() {
            if !ok {
                break;
            }
            ok = sink.subscribe(format!("{GROUP_PREFIX}{group}")).await.is_ok();
            channels.insert(group);
        }
        if !ok {
            drain_while_down(&mut commands, backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        }
        if publishing.load(Ordering::Acquire) {
            outage.end(&hub);
        }
        subscribed.store(true, Ordering::Release);
        backoff = Duration::from_millis(100);
        tracing::info!(groups = channels.len(), "redis channel layer subscribed");
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        let mut receiver = tokio::spawn(receive(stream, hub.clone()));
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(SubCommand::Subscribe(group, reply)) => {
                        if channels.contains(&group) {
                            let _ = reply.send(true);
                        } else if sink.subscribe(format!("{GROUP_PREFIX}{group}")).await.is_ok() {
                            channels.insert(group);
                            let _ = reply.send(true);
                        } else {
                            let _ = reply.send(false);
                            break;
                        }
                    }
                    Some(SubCommand::Unsubscribe(group)) => {
                        // A member may have joined since the command was queued.
                        if !hub.has_group(&group) && channels.remove(&group) {
                            let _ = sink.unsubscribe(format!("{GROUP_PREFIX}{group}")).await;
                        }
                    }
                    None => {
                        receiver.abort();
                        return;
                    }
                },
                _ = &mut receiver => break,
            }
        }
        receiver.abort();
        subscribed.store(false, Ordering::Release);
        outage.begin();
        tracing::warn!("redis pub/sub connection lost; local delivery only until it is back");
    }
}

/// While disconnected, answer subscribe requests at once (the hub remembers the groups
/// and they are resubscribed on reconnect) so sockets never wait on Redis.
async fn drain_while_down(commands: &mut mpsc::UnboundedReceiver<SubCommand>, wait: Duration) {
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

/// A room's first message's sequence number (the counter starts at 1).
const FIRST_SEQ: i64 = 1;

/// Per-group hold-back queue that releases room messages in sequence.
#[derive(Default)]
struct Reorder {
    next: HashMap<String, i64>,
    held: HashMap<String, (Instant, BTreeMap<i64, Delivery>)>,
}

impl Reorder {
    fn accept(&mut self, hub: &Hub, group: &str, seq: i64, delivery: Delivery) {
        let expected = self.next.get(group).copied();
        // The first message of a group this instance sees may have overtaken earlier ones
        // published by other instances (each publishes after its own commit): unless it is
        // the room's first message, it is held like a gap until they arrive or the window
        // ends. Its cost: a room's first message after an instance starts may wait that long.
        let hold = match expected {
            Some(next) => seq > next,
            None => seq > FIRST_SEQ,
        };
        if hold {
            let (_, queue) = self.held.entry(group.to_owned()).or_insert_with(|| (Instant::now() + REORDER_WINDOW, BTreeMap::new()));
            queue.insert(seq, delivery);
            return;
        }
        hub.deliver_group(group, &delivery);
        if expected.is_none_or(|next| seq >= next) {
            self.next.insert(group.to_owned(), seq + 1);
        }
        self.release(hub, group, false);
    }

    /// Delivers held messages that are now in sequence (or all of them when `force`).
    fn release(&mut self, hub: &Hub, group: &str, force: bool) {
        let Some((_, queue)) = self.held.get_mut(group) else { return };
        let mut next = self.next.get(group).copied().unwrap_or(i64::MIN);
        while let Some(entry) = queue.first_entry() {
            if !force && *entry.key() != next {
                break;
            }
            let seq = *entry.key();
            hub.deliver_group(group, &entry.remove());
            next = seq + 1;
        }
        self.next.insert(group.to_owned(), next);
        if queue.is_empty() {
            self.held.remove(group);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.held.values().map(|(deadline, _)| *deadline).min()
    }

    fn expire(&mut self, hub: &Hub) {
        let now = Instant::now();
        let due: Vec<String> = self.held.iter().filter(|(_, (d, _))| *d <= now).map(|(g, _)| g.clone()).collect();
        for group in due {
            tracing::debug!(%group, "released room messages after a gap");
            self.release(hub, &group, true);
        }
    }
}

async fn receive(mut stream: PubSubStream, hub: Arc<Hub>) {
    let mut reorder = Reorder::default();
    loop {
        let deadline = reorder.deadline();
        let message = tokio::select! {
            message = stream.next() => message,
            () = tokio::time::sleep_until(deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))), if deadline.is_some() => {
                reorder.expire(&hub);
                continue;
            }
        };
        let Some(message) = message else { return };
        let channel = message.get_channel_name();
        let payload = message.get_payload_bytes();
        if let Some(group) = channel.strip_prefix(GROUP_PREFIX) {
            match decode(payload, false) {
                Some((delivery, _)) => match delivery {
                    Delivery::Ordered { seq, .. } => reorder.accept(&hub, group, seq, delivery),
                    other => {
                        hub.deliver_group(group, &other);
                    }
                },
                None => tracing::warn!(%channel, "undecodable layer message"),
            }
        } else if let Some((delivery, Some(conn))) = decode(payload, true) {
            hub.deliver_conn(conn, &delivery);
        }
    }
}

/// Publishes one delivery to a group from a process that is not an instance (`confab
/// publish` with `REDIS_URL`). Returns how many instances received it: each instance
/// subscribes a group's channel while it has a member, so 0 means no connection anywhere.
/// On a Redis Cluster the count is of the instances subscribed on the group's shard, which
/// are all of them (sharded pub/sub).
pub async fn publish_once(conn: &mut crate::redis_link::RedisConn, group: &str, delivery: &Delivery) -> redis::RedisResult<usize> {
    let command = if conn.is_cluster() { "SPUBLISH" } else { "PUBLISH" };
    redis::cmd(command).arg(format!("{GROUP_PREFIX}{group}")).arg(encode(delivery, None).as_ref()).query_async(conn).await
}

/// `[conn u64]` (instance channel only), then one of:
/// `F class except text` · `O seq text` · `X code` · `P [UserPresence…] as JSON`.
fn encode(delivery: &Delivery, conn: Option<ConnId>) -> Bytes {
    let text_len = match delivery {
        Delivery::Frame { text, .. } | Delivery::Ordered { text, .. } => text.len(),
        Delivery::Close { .. } => 0,
        Delivery::Presence(changes) => changes.len() * 40,
    };
    let mut out = Vec::with_capacity(text_len + 20);
    if let Some(conn) = conn {
        out.extend_from_slice(&conn.to_be_bytes());
    }
    match delivery {
        Delivery::Frame { text, class, except } => {
            out.push(b'F');
            out.push(if *class == Class::Reliable { b'R' } else { b'D' });
            match except {
                Except::Nobody => out.push(b'N'),
                Except::User(id) => {
                    out.push(b'U');
                    out.extend_from_slice(&id.to_be_bytes());
                }
                Except::Conn(id) => {
                    out.push(b'C');
                    out.extend_from_slice(&id.to_be_bytes());
                }
            }
            out.extend_from_slice(text.as_bytes());
        }
        Delivery::Ordered { text, seq } => {
            out.push(b'O');
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Delivery::Close { code } => {
            out.push(b'X');
            out.extend_from_slice(&code.to_be_bytes());
        }
        Delivery::Presence(changes) => {
            out.push(b'P');
            // Plain data with string keys: serializing cannot fail.
            let _ = serde_json::to_writer(&mut out, &**changes);
        }
    }
    Bytes::from(out)
}

fn decode(payload: &[u8], with_conn: bool) -> Option<(Delivery, Option<ConnId>)> {
    let (conn, rest) = if with_conn {
        let (head, rest) = payload.split_first_chunk::<8>()?;
        (Some(u64::from_be_bytes(*head)), rest)
    } else {
        (None, payload)
    };
    let (&tag, rest) = rest.split_first()?;
    let text = |bytes: &[u8]| Utf8Bytes::try_from(Bytes::copy_from_slice(bytes)).ok();
    let delivery = match tag {
        b'F' => {
            let (&class, rest) = rest.split_first()?;
            let class = if class == b'R' { Class::Reliable } else { Class::Droppable };
            let (&except, rest) = rest.split_first()?;
            let (except, rest) = match except {
                b'N' => (Except::Nobody, rest),
                b'U' => {
                    let (id, rest) = rest.split_first_chunk::<8>()?;
                    (Except::User(i64::from_be_bytes(*id)), rest)
                }
                b'C' => {
                    let (id, rest) = rest.split_first_chunk::<8>()?;
                    (Except::Conn(u64::from_be_bytes(*id)), rest)
                }
                _ => return None,
            };
            Delivery::Frame { text: text(rest)?, class, except }
        }
        b'O' => {
            let (seq, rest) = rest.split_first_chunk::<8>()?;
            Delivery::Ordered { text: text(rest)?, seq: i64::from_be_bytes(*seq) }
        }
        b'X' => {
            let (code, _) = rest.split_first_chunk::<2>()?;
            Delivery::Close { code: u16::from_be_bytes(*code) }
        }
        b'P' => Delivery::Presence(serde_json::from_slice::<Vec<confab_shared::UserPresence>>(rest).ok()?.into()),
        _ => return None,
    };
    Some((delivery, conn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_survive_the_wire_encoding() {
        let cases = [
            Delivery::Frame { text: "hello".into(), class: Class::Droppable, except: Except::User(-7) },
            Delivery::Frame { text: "x".into(), class: Class::Reliable, except: Except::Conn(1 << 40) },
            Delivery::Ordered { text: "{\"m\":1}".into(), seq: 42 },
            Delivery::Close { code: 4003 },
            Delivery::Presence(vec![confab_shared::UserPresence { username: "ann".into(), online: true }].into()),
        ];
        for case in cases {
            let (back, conn) = decode(&encode(&case, Some(9)), true).unwrap();
            assert_eq!(conn, Some(9));
            assert_eq!(format!("{back:?}"), format!("{case:?}"));
        }
        assert!(decode(b"Zjunk", false).is_none());
        assert!(decode(b"", false).is_none());
    }

    #[test]
    fn room_messages_are_released_in_sequence() {
        let hub = Hub::new(1);
        let (a, mut inbox) = hub.register(None, crate::layer::hub::QueueLimits::frames(16));
        hub.group_add("room:r", a.conn());
        let mut reorder = Reorder::default();
        let msg = |seq: i64| Delivery::Ordered { text: seq.to_string().into(), seq };
        reorder.accept(&hub, "room:r", 1, msg(1));
        reorder.accept(&hub, "room:r", 3, msg(3));
        reorder.accept(&hub, "room:r", 4, msg(4));
        reorder.accept(&hub, "room:r", 2, msg(2));
        let got: Vec<String> = std::iter::from_fn(|| inbox.try_recv()).map(|t| t.to_string()).collect();
        assert_eq!(got, ["1", "2", "3", "4"]);
        // A gap that never fills is released when forced (the window expired).
        reorder.accept(&hub, "room:r", 6, msg(6));
        assert!(inbox.try_recv().is_none());
        reorder.release(&hub, "room:r", true);
        assert_eq!(inbox.try_recv().map(|t| t.to_string()).as_deref(), Some("6"));
    }

    #[test]
    fn the_first_messages_seen_of_a_room_wait_for_earlier_ones_from_other_instances() {
        let hub = Hub::new(1);
        let (a, mut inbox) = hub.register(None, crate::layer::hub::QueueLimits::frames(16));
        hub.group_add("room:r", a.conn());
        let mut reorder = Reorder::default();
        let msg = |seq: i64| Delivery::Ordered { text: seq.to_string().into(), seq };
        // Seq 3 overtook 1 and 2: nothing is known of the room yet, so it waits.
        reorder.accept(&hub, "room:r", 3, msg(3));
        assert!(inbox.try_recv().is_none());
        reorder.accept(&hub, "room:r", 1, msg(1));
        reorder.accept(&hub, "room:r", 2, msg(2));
        let got: Vec<String> = std::iter::from_fn(|| inbox.try_recv()).map(|t| t.to_string()).collect();
        assert_eq!(got, ["1", "2", "3"]);
        // Joining a busy room: its first message seen here is released when the window ends,
        // in order with whatever arrived meanwhile.
        hub.group_add("room:busy", a.conn());
        reorder.accept(&hub, "room:busy", 501, msg(501));
        reorder.accept(&hub, "room:busy", 500, msg(500));
        assert!(inbox.try_recv().is_none());
        reorder.release(&hub, "room:busy", true);
        let got: Vec<String> = std::iter::from_fn(|| inbox.try_recv()).map(|t| t.to_string()).collect();
        assert_eq!(got, ["500", "501"]);
        reorder.accept(&hub, "room:busy", 502, msg(502));
        assert_eq!(inbox.try_recv().map(|t| t.to_string()).as_deref(), Some("502"));
    }
}
