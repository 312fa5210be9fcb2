//! Keeping this instance's copy of the decisions current, and acting on what is new in it.
//!
//! With several instances (a Redis channel layer), each reloads the copy every presence
//! tick: a ban, mute, suspension or slow mode decided elsewhere then holds here within a
//! tick, and the sockets it concerns are dealt with (a suspended account's closed, a banned
//! user taken out of the room) even if the decision's own broadcast was lost. One instance
//! alone decides everything itself and only loads the copy at start.

use std::sync::Arc;

use confab_shared::rpc::close;

use super::accounts::close_reason;
use super::sanctions::Sanctions;
use crate::layer::{ChannelLayer, Delivery, group};
use crate::storage::Db;

/// Reloads `sanctions` from the database every `tick` until `stop`, applying what is new to
/// this instance's sockets. A failed reload keeps the copy it has and tries again next tick.
pub async fn run(db: Db, sanctions: Arc<Sanctions>, layer: Arc<dyn ChannelLayer>, tick: std::time::Duration, stop: tokio_util::sync::CancellationToken) {
    let mut interval = tokio::time::interval(tick.max(std::time::Duration::from_millis(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.cancelled() => return,
        }
        match Sanctions::load(&db).await {
            Ok(fresh) => apply(&sanctions, layer.as_ref(), fresh),
            Err(err) => tracing::debug!(%err, "moderation decisions not reloaded"),
        }
    }
}

/// Replaces the copy and acts on this instance's sockets for what is new.
pub fn apply(sanctions: &Sanctions, layer: &dyn ChannelLayer, fresh: super::sanctions::Snapshot) {
    let news = sanctions.replace(fresh);
    let hub = layer.hub();
    for (room, user_id) in news.banned {
        hub.deliver_group(&group::room(&room), &Delivery::Evict { user_id, room: room.clone() });
    }
    for (user_id, reason) in news.suspended {
        hub.close_user(user_id, close::LOGGED_OUT, &close_reason(reason.as_deref()));
    }
}
