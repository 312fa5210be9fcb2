//! The delivery worker: one task per instance that takes due deliveries from the queue,
//! POSTs them, and records what happened.
//!
//! Only the oldest pending delivery of each (webhook, ordering key) is ever due, so the
//! events of one room reach a webhook in order, one at a time, while other rooms and other
//! webhooks proceed. An attempt first takes a lease on its row (instances never attempt the
//! same delivery together); a failure schedules the next attempt after an exponential
//! backoff with jitter; a 410 disables the webhook at once, and
//! `CONFAB_WEBHOOK_MAX_FAILURES` failures in a row disable it too, telling every admin with
//! a `notice`. A delivery is done only once a 2xx was recorded: at least once, even across
//! a restart (on shutdown, attempts in flight give their lease back untried).

use std::collections::HashMap;
use std::time::Duration;

use confab_shared::rpc::Notification;
use confab_shared::rpc::notify::Notice;
use confab_shared::webhooks::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use futures_util::future::join_all;
use rand::Rng as _;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::destination;
use crate::signing;
use crate::layer::{Class, Delivery, group};
use crate::state::AppState;
use crate::storage::entity::{users, webhook_deliveries, webhooks};
use crate::storage::webhooks::{self as store, DELIVERED, FAILED, Outcome, PENDING};
use crate::storage::now_ms;

/// Deliveries attempted at once.
const BATCH: u64 = 16;
/// How long a lease keeps other instances off a delivery: more than one attempt can take.
const LEASE: Duration = Duration::from_secs(30);
/// Longest sleep between looks at the delivery queue (other instances' events, missed wake-ups).
const POLL: Duration = Duration::from_secs(5);
/// Longest delay between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// Bytes of a response read (then the connection is dropped): enough for an error line.
const MAX_RESPONSE_BYTES: usize = 1024;

/// Runs until shutdown.
pub async fn run(state: AppState) {
    let client = match destination::client(state.config.webhook_allow_private, state.config.webhook_ca_file.as_deref()) {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "webhook deliveries disabled: no HTTP client");
            return;
        }
    };
    let mut reloaded = tokio::time::Instant::now();
    while !state.shutdown.is_cancelled() {
        if reloaded.elapsed() >= crate::storage::webhook_queue::RELOAD_EVERY {
            reloaded = tokio::time::Instant::now();
            if let Err(err) = state.webhooks.reload(&state.db).await {
                tracing::warn!(%err, "webhook list not reloaded");
            }
        }
        match store::due(&state.db, now_ms(), BATCH).await {
            Ok(due) if !due.is_empty() => attempt_all(&state, &client, due).await,
            Ok(_) => idle(&state).await,
            Err(err) => {
                tracing::warn!(%err, "webhook delivery queue unreadable; retrying");
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    () = state.shutdown.cancelled() => {}
                }
            }
        }
    }
}

/// Sleeps until the next delivery is due, a wake-up, or [`POLL`].
async fn idle(state: &AppState) {
    let wait = match store::next_due(&state.db).await {
        Ok(Some(at)) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(POLL),
        _ => POLL,
    };
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = state.webhooks.woken() => {}
        () = state.shutdown.cancelled() => {}
    }
}

async fn attempt_all(state: &AppState, client: &reqwest::Client, due: Vec<webhook_deliveries::Model>) {
    let mut ids: Vec<i64> = due.iter().map(|d| d.webhook_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let hooks: HashMap<i64, webhooks::Model> =
        match webhooks::Entity::find().filter(webhooks::Column::Id.is_in(ids)).all(&state.db.conn).await {
            Ok(rows) => rows.into_iter().map(|w| (w.id, w)).collect(),
            Err(err) => return tracing::warn!(%err, "webhooks unreadable"),
        };
    let now = now_ms();
    let mut claimed = Vec::new();
    for delivery in due {
        match store::claim(&state.db, delivery.id, now, now + LEASE.as_millis() as i64).await {
            Ok(true) => claimed.push(delivery),
            Ok(false) => {}
            Err(err) => tracing::warn!(%err, "delivery not claimed"),
        }
    }
    let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    let attempts = join_all(claimed.into_iter().filter_map(|d| {
        let hook = hooks.get(&d.webhook_id)?.clone();
        Some(async move {
            let result = post(client, state.config.webhook_allow_private, &hook, &d).await;
            (hook, d, result)
        })
    }));
    let results = tokio::select! {
        results = attempts => results,
        () = state.shutdown.cancelled() => {
            // Not attempted as far as we know: give them back for the next start.
            for id in ids {
                let _ = store::release(&state.db, id).await;
            }
            return;
        }
    };
    for (hook, delivery, result) in results {
        if let Err(err) = settle(state, &hook, &delivery, result).await {
            tracing::warn!(%err, delivery = delivery.id, "delivery outcome not recorded; it will be attempted again");
        }
    }
}

/// An attempt's answer: the HTTP status, or why there was none.
type Attempt = Result<u16, String>;

async fn post(client: &reqwest::Client, allow_private: bool, hook: &webhooks::Model, d: &webhook_deliveries::Model) -> Attempt {
    let url = destination::parse_stored(&hook.url, allow_private).map_err(|why| format!("url {why}"))?;
    let timestamp = chrono::Utc::now().timestamp();
    let signature = signing::signature(&hook.secret, &d.event_id, timestamp, &d.body).ok_or("unusable secret")?;
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_ID, &d.event_id)
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_SIGNATURE, signature)
        .body(d.body.clone())
        .send()
        .await;
    let mut response = sent.map_err(describe)?;
    let status = response.status().as_u16();
    // Read a little of the answer, then drop the connection: nothing more is needed from it.
    let mut read = 0;
    while read < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    Ok(status)
}

/// Words for a failed request, without the URL (it may carry credentials in its query).
pub fn describe(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_redirect() {
        "redirects are not followed"
    } else {
        "request failed"
    };
    let mut cause: &dyn std::error::Error = &err.without_url();
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    format!("{kind}: {cause}")
}

/// The delay before attempt `attempt + 1`, with `attempt` failures so far: the base doubled
/// per failure, capped, then a random point in its upper half (jitter spreads retries).
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let doubled = base.saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(30))).min(MAX_BACKOFF);
    let half = doubled / 2;
    half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

async fn settle(state: &AppState, hook: &webhooks::Model, d: &webhook_deliveries::Model, result: Attempt) -> crate::storage::StorageResult<()> {
    let db = &state.db;
    let attempts = u32::try_from(d.attempts).unwrap_or(0) + 1;
    match result {
        Ok(code @ 200..=299) => {
            store::record(db, d.id, Outcome { status: DELIVERED, http_status: Some(code), error: None, next_attempt_at: None }).await?;
            store::reset_failures(db, hook.id).await?;
            tracing::debug!(webhook = hook.id, delivery = d.id, code, "webhook delivered");
        }
        Ok(410) => {
            let error = "the endpoint answered 410 Gone";
            store::record(db, d.id, Outcome { status: FAILED, http_status: Some(410), error: Some(error), next_attempt_at: None }).await?;
            disable(state, hook, error).await?;
        }
        failed => {
            let (http_status, error) = match &failed {
                Ok(code) => (Some(*code), format!("the endpoint answered {code}")),
                Err(why) => (None, why.clone()),
            };
            let in_a_row = store::count_failure(db, hook.id).await?;
            if in_a_row >= i32::try_from(state.config.webhook_max_failures.max(1)).unwrap_or(i32::MAX) {
                store::record(db, d.id, Outcome { status: FAILED, http_status, error: Some(error.as_str()), next_attempt_at: None }).await?;
                disable(state, hook, &format!("{in_a_row} failed deliveries in a row; last: {error}")).await?;
            } else {
                let delay = backoff(Duration::from_millis(state.config.webhook_retry_base_ms), attempts);
                let next = now_ms() + delay.as_millis() as i64;
                store::record(db, d.id, Outcome { status: PENDING, http_status, error: Some(error.as_str()), next_attempt_at: Some(next) }).await?;
                tracing::info!(webhook = hook.id, delivery = d.id, attempts, retry_in_ms = delay.as_millis() as u64, %error, "webhook delivery failed");
            }
        }
    }
    Ok(())
}

/// Stops a webhook's deliveries and tells every admin, on every instance.
async fn disable(state: &AppState, hook: &webhooks::Model, reason: &str) -> crate::storage::StorageResult<()> {
    if !store::disable(&state.db, hook.id, reason).await? {
        return Ok(());
    }
    tracing::warn!(webhook = hook.id, reason, "webhook disabled");
    if let Err(err) = state.webhooks.reload(&state.db).await {
        tracing::warn!(%err, "webhook list not reloaded");
    }
    let payload = serde_json::json!({ "kind": "webhook.disabled", "webhook_id": hook.id, "url": hook.url, "reason": reason });
    let frame = Notification::Notice(Notice { payload }).to_frame();
    let admins: Vec<i64> = users::Entity::find().filter(users::Column::IsAdmin.eq(true)).all(&state.db.conn).await?.into_iter().map(|u| u.id).collect();
    for admin in admins {
        if let Err(err) = state.layer.group_send(&group::user(admin), Delivery::frame(frame.clone(), Class::Reliable)) {
            tracing::warn!(%err, "admins not told about the disabled webhook");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_millis(1000);
        for _ in 0..50 {
            let first = backoff(base, 1);
            assert!(first >= Duration::from_millis(500) && first <= base, "{first:?}");
            let third = backoff(base, 3);
            assert!(third >= Duration::from_millis(2000) && third <= Duration::from_millis(4000), "{third:?}");
            assert!(backoff(base, 60) <= MAX_BACKOFF);
        }
    }
}
