//! What people with no connection hear by Web Push: a private message to them, a mention of
//! them in a room they do not keep quiet. The features that store those hand them over
//! ([`Alerts`](crate::storage::push::Alerts)) and move on (the sender never waits for this);
//! one task per instance ([`run`]) takes them in order and queues the pushes in the outbox,
//! where the [`worker`](super::worker) delivers them.
//!
//! What one message can cost is bounded: the mentioned are looked up in chunks of
//! [`CHUNK`] ids, one query each, which keeps only those with a push subscription (and, for
//! a mention, not keeping the room quiet); presence is asked once, for at most
//! [`MAX_RECIPIENTS`] of them, and never when nobody is left. An `@room` in a bigger room
//! pushes to the first [`MAX_RECIPIENTS`] subscribed members; the others still see the mention
//! counted in their sidebar. When [`MAX_WAITING_ALERTS`](crate::storage::push::MAX_WAITING_ALERTS)
//! messages wait, a new one gets no push (logged): pushes are best effort, the message itself
//! is stored already.
//!
//! Handling them in one task, in order, is also what keeps coalescing exact on an instance:
//! the outbox is asked "was this conversation pushed lately?" by one writer at a time.

use confab_shared::push::PushKind;

use crate::state::AppState;
use crate::storage::push::{self as store, Alert};

/// Most people one message pushes to.
pub const MAX_RECIPIENTS: usize = 100;
/// Mentioned user ids looked up per query.
pub const CHUNK: usize = 500;

/// Queues the pushes of what is handed over, until shutdown (or at once, when another task
/// took the receiving end).
pub async fn run(state: AppState) {
    let Some(mut alerts) = state.push_alerts.take() else { return };
    loop {
        tokio::select! {
            alert = alerts.recv() => match alert {
                Some(alert) => queue(&state, alert).await,
                None => return,
            },
            () = state.shutdown.cancelled() => return,
        }
    }
}

/// Queues `alert`'s push for each of its people who has a subscription, does not keep the
/// room quiet and has no connection on any instance, at most one per conversation per
/// `CONFAB_PUSH_COALESCE_SECS`.
async fn queue(state: &AppState, alert: Alert) {
    let mut reached: Vec<(i64, String)> = Vec::new();
    for chunk in alert.to.chunks(CHUNK) {
        if reached.len() >= MAX_RECIPIENTS {
            break;
        }
        match store::reachable(&state.db, chunk, alert.room_id).await {
            Ok(found) => reached.extend(found),
            Err(err) => return tracing::warn!(%err, "push recipients unknown; no push"),
        }
    }
    reached.truncate(MAX_RECIPIENTS);
    if reached.is_empty() {
        return;
    }
    let names: Vec<String> = reached.iter().map(|(_, name)| name.clone()).collect();
    let online = match state.presence.online_among(&names).await {
        Ok(online) => online,
        Err(err) => return tracing::warn!(%err, "presence unknown; no push"),
    };
    let kind = match alert.message.kind {
        PushKind::Dm => "dm",
        PushKind::Mention => "room",
    };
    let topic = format!("{kind}:{}", alert.message.conversation);
    // Plain strings: serializing cannot fail.
    let body = serde_json::to_string(&alert.message).unwrap_or_default();
    let window_ms = i64::try_from(state.config.push_coalesce_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut woken = false;
    for ((user_id, name), online) in reached.iter().zip(online) {
        if online {
            continue;
        }
        match store::enqueue(&state.db, *user_id, &topic, &body, window_ms).await {
            Ok(0) => {}
            Ok(queued) => {
                tracing::debug!(user = %name, queued, %topic, "push queued");
                woken = true;
            }
            Err(err) => tracing::warn!(%err, user = %name, "push not queued"),
        }
    }
    if woken {
        state.push_queue.wake();
    }
}
