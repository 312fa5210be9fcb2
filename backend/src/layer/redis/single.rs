//! The Redis layer's transport on one server: a pipelined `PUBLISH` connection and a
//! pub/sub connection that subscribes every group with a local member.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSubStream};
use tokio::sync::{mpsc, oneshot};

use super::health::{Health, MAX_BACKOFF, deliver_local};
use super::reorder::{self, Reorder};
use super::wire::{group_channel, instance_channel};
use super::{PUBLISH_BATCH, SubCommand, Wiring, drain_while_down};
use crate::layer::Hub;

/// Starts the publisher on `conn` and the subscriber on connections of its own from `client`.
pub fn spawn(conn: ConnectionManager, client: redis::Client, wiring: Wiring) {
    let Wiring { hub, health, publishes, commands, ready } = wiring;
    tokio::spawn(publish_loop(conn, publishes, hub.clone(), health.clone()));
    tokio::spawn(Subscriber { client, hub, health }.supervise(commands, ready));
}

/// Pipelines publishes; on failure reports the layer down (delivering what may be delivered
/// locally) until a probe succeeds.
async fn publish_loop(mut conn: ConnectionManager, mut rx: mpsc::Receiver<(String, Bytes)>, hub: Arc<Hub>, health: Arc<Health>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while rx.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for (channel, payload) in &batch {
            pipe.publish(channel, payload.as_ref()).ignore();
        }
        if let Err(err) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(%err, "redis publish failed");
            for (channel, payload) in &batch {
                deliver_local(&hub, channel, payload);
            }
            // ConnectionManager reconnects in the background; probe until it answers.
            let probe = || {
                let mut conn = conn.clone();
                async move { conn.send_packed_command(&redis::cmd("PING")).await.is_ok() }
            };
            health.recover_publishing(&hub, probe, "redis").await;
        }
        batch.clear();
    }
}

/// The subscription side: one pub/sub connection, re-established with backoff.
struct Subscriber {
    client: redis::Client,
    hub: Arc<Hub>,
    health: Arc<Health>,
}

impl Subscriber {
    /// Keeps the pub/sub connection alive: connect, subscribe every local group, serve
    /// (un)subscribe commands and receive; on loss, mark down and retry with backoff.
    async fn supervise(self, mut commands: mpsc::UnboundedReceiver<SubCommand>, ready: oneshot::Sender<()>) {
        let mut ready = Some(ready);
        let mut backoff = Duration::from_millis(100);
        let instance_channel = instance_channel(self.hub.instance());
        loop {
            let connected = tokio::time::timeout(Duration::from_secs(2), self.client.get_async_pubsub()).await;
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
            for group in self.hub.group_names() {
                if !ok {
                    break;
                }
                ok = sink.subscribe(group_channel(&group)).await.is_ok();
                channels.insert(group);
            }
            if !ok {
                drain_while_down(&mut commands, backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            self.health.subscribed(&self.hub);
            backoff = Duration::from_millis(100);
            tracing::info!(groups = channels.len(), "redis channel layer subscribed");
            if let Some(ready) = ready.take() {
                let _ = ready.send(());
            }
            let mut receiver = tokio::spawn(receive(stream, self.hub.clone()));
            loop {
                tokio::select! {
                    command = commands.recv() => match command {
                        Some(SubCommand::Subscribe(group, reply)) => {
                            if channels.contains(&group) {
                                let _ = reply.send(true);
                            } else if sink.subscribe(group_channel(&group)).await.is_ok() {
                                channels.insert(group);
                                let _ = reply.send(true);
                            } else {
                                let _ = reply.send(false);
                                break;
                            }
                        }
                        Some(SubCommand::Unsubscribe(group)) => {
                            // A member may have joined since the command was queued.
                            if !self.hub.has_group(&group) && channels.remove(&group) {
                                let _ = sink.unsubscribe(group_channel(&group)).await;
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
            self.health.unsubscribed();
            tracing::warn!("redis pub/sub connection lost; local delivery only until it is back");
        }
    }
}

/// Delivers what the pub/sub connection receives until it ends.
async fn receive(mut stream: PubSubStream, hub: Arc<Hub>) {
    let mut reorder = Reorder::default();
    loop {
        let deadline = reorder.deadline();
        let message = tokio::select! {
            message = stream.next() => message,
            () = reorder::until(deadline), if deadline.is_some() => {
                reorder.expire(&hub);
                continue;
            }
        };
        let Some(message) = message else { return };
        reorder.receive(&hub, message.get_channel_name(), message.get_payload_bytes());
    }
}
