//! Whether the Redis layer is up, and what an outage changes.
//!
//! The layer is up while its subscriptions are in place and its last pipeline of publishes
//! went through. While it is not, the instance serves its own sockets (ephemeral frames and
//! closes are delivered locally) and holds back the live fan-out of persisted events, which
//! a local-only delivery would leave with holes below a client's last-seen id. When both
//! sides work again, every socket that lived through the outage is closed with 1013, so its
//! client reconnects and `sync`s exactly what it missed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::wire::{GROUP_PREFIX, decode};
use crate::layer::Hub;

/// The longest wait between two attempts to reach Redis again.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The layer's two halves and the outage they add up to; shared by the layer and its tasks.
pub struct Health {
    /// The pub/sub side is connected and every local group subscribed.
    subscribed: AtomicBool,
    /// The last pipeline of publishes succeeded.
    publishing: AtomicBool,
    /// Set while Redis is (or was, since the last recovery) unreachable.
    outage: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self { subscribed: AtomicBool::new(false), publishing: AtomicBool::new(true), outage: AtomicBool::new(false) }
    }
}

impl Health {
    /// Whether cross-instance delivery works.
    pub fn is_up(&self) -> bool {
        self.subscribed.load(Ordering::Acquire) && self.publishing.load(Ordering::Acquire)
    }

    /// Whether the pub/sub side is in place (new groups are then subscribed at once).
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Notes that Redis could not be reached (logged once per outage).
    pub fn begin_outage(&self) {
        if !self.outage.swap(true, Ordering::AcqRel) {
            tracing::warn!("redis unreachable: holding persisted events, serving local traffic");
        }
    }

    /// Called once both halves work again: sockets that lived through the outage may have
    /// missed persisted events, so they reconnect (1013) and `sync`.
    fn end_outage(&self, hub: &Hub) {
        if self.outage.swap(false, Ordering::AcqRel) {
            tracing::info!(sockets = hub.len(), "redis is back: asking sockets to reconnect and sync");
            hub.close_all(confab_shared::rpc::close::TRY_AGAIN_LATER);
        }
    }

    /// The subscriptions are in place again (or for the first time).
    pub fn subscribed(&self, hub: &Hub) {
        if self.publishing.load(Ordering::Acquire) {
            self.end_outage(hub);
        }
        self.subscribed.store(true, Ordering::Release);
    }

    /// The subscriptions are lost.
    pub fn unsubscribed(&self) {
        self.subscribed.store(false, Ordering::Release);
        self.begin_outage();
    }

    /// After a failed publish: reports the layer down, retries `probe` with backoff until it
    /// answers, then reports publishing back (and the layer up, if subscriptions are too).
    pub async fn recover_publishing<F, Fut>(&self, hub: &Hub, mut probe: F, what: &'static str)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.publishing.store(false, Ordering::Release);
        self.begin_outage();
        let mut wait = Duration::from_millis(100);
        while !probe().await {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
        self.publishing.store(true, Ordering::Release);
        if self.subscribed.load(Ordering::Acquire) {
            self.end_outage(hub);
        }
        tracing::info!("{what} publishing restored");
    }
}

/// Local delivery of a publish that did not reach Redis: ephemeral frames and closes only.
pub fn deliver_local(hub: &Hub, channel: &str, payload: &[u8]) {
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
    Conn(crate::layer::ConnId),
}
