//! The push worker: one task per instance that takes due pushes from the outbox, encrypts
//! each for its subscription (RFC 8291), signs it (VAPID, RFC 8292), POSTs it to the push
//! service (RFC 8030), and records what happened.
//!
//! Like webhook deliveries, an attempt first takes a lease on its row (instances never
//! attempt the same push together), and a failure (no answer, 429, 5xx) schedules the next
//! attempt after the same exponential backoff with jitter (`CONFAB_WEBHOOK_RETRY_BASE_MS`),
//! until [`MAX_ATTEMPTS`] or the push's [`TTL`] runs out. 404 and 410 say the subscription
//! is gone: it is removed with its pending pushes. Any other 4xx is a push this service will
//! never take: dropped and logged. Each attempt encrypts afresh (new salt, new ephemeral
//! key), and states as `TTL` what is left of the push's day.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::join_all;
use sha2::{Digest as _, Sha256};

use super::super::webhooks::{destination, worker::{backoff, describe}};
use crate::state::AppState;
use crate::storage::entity::push_deliveries;
use crate::storage::now_ms;
use crate::storage::push::{self as store, DELIVERED, FAILED, Outcome, PENDING};
use crate::webpush;

/// Pushes attempted at once.
const BATCH: u64 = 16;
/// How long a lease keeps other instances off a push: more than one attempt can take.
const LEASE: Duration = Duration::from_secs(30);
/// Longest sleep between looks at the outbox (other instances' pushes, missed wake-ups).
const POLL: Duration = Duration::from_secs(5);
/// How long a push is worth delivering: the push service keeps it this long for a browser
/// that is offline, and retries stop when it has passed.
pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// Attempts before a push is given up.
pub const MAX_ATTEMPTS: u32 = 10;
/// How often settled pushes older than the coalescing window are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Bytes of a response read (then the connection is dropped): enough for an error line.
const MAX_RESPONSE_BYTES: usize = 1024;

/// Runs until shutdown.
pub async fn run(state: AppState) {
    let client = match destination::client(state.config.webhook_allow_private, state.config.webhook_ca_file.as_deref()) {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "Web Push disabled: no HTTP client");
            return;
        }
    };
    let mut pruned: Option<tokio::time::Instant> = None;
    while !state.shutdown.is_cancelled() {
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned = Some(tokio::time::Instant::now());
            let keep = Duration::from_secs(state.config.push_coalesce_secs).max(TTL);
            if let Err(err) = store::prune(&state.db, now_ms() - keep.as_millis() as i64).await {
                tracing::warn!(%err, "settled pushes not pruned");
            }
        }
        match store::due(&state.db, now_ms(), BATCH).await {
            Ok(due) if !due.is_empty() => attempt_all(&state, &client, due).await,
            Ok(_) => idle(&state).await,
            Err(err) => {
                tracing::warn!(%err, "push outbox unreadable; retrying");
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    () = state.shutdown.cancelled() => {}
                }
            }
        }
    }
}

/// Sleeps until the next push is due, a wake-up, or [`POLL`].
async fn idle(state: &AppState) {
    let wait = match store::next_due(&state.db).await {
        Ok(Some(at)) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(POLL),
        _ => POLL,
    };
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = state.push_queue.woken() => {}
        () = state.shutdown.cancelled() => {}
    }
}

async fn attempt_all(state: &AppState, client: &reqwest::Client, due: Vec<push_deliveries::Model>) {
    let now = now_ms();
    let mut claimed = Vec::new();
    for push in due {
        match store::claim(&state.db, push.id, now, now + LEASE.as_millis() as i64).await {
            Ok(true) => claimed.push(push),
            Ok(false) => {}
            Err(err) => tracing::warn!(%err, "push not claimed"),
        }
    }
    let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    let attempts = join_all(claimed.into_iter().map(|d| async move {
        let result = post(state, client, &d).await;
        (d, result)
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
    for (push, result) in results {
        if let Err(err) = settle(state, &push, result).await {
            tracing::warn!(%err, push = push.id, "push outcome not recorded; it will be attempted again");
        }
    }
}

/// An attempt's answer: the HTTP status, or why there was none.
enum Attempt {
    Answered(u16),
    /// No answer (connect failure, timeout): worth another try.
    Failed(String),
    /// Never worth another try: the subscription is gone or unusable, or the push expired.
    Dropped(String),
}

async fn post(state: &AppState, client: &reqwest::Client, d: &push_deliveries::Model) -> Attempt {
    let subscription = match store::by_id(&state.db, d.subscription_id).await {
        Ok(Some(s)) => s,
        Ok(None) => return Attempt::Dropped("the subscription was removed".to_owned()),
        Err(err) => return Attempt::Failed(format!("subscription unreadable: {err}")),
    };
    let left = d.created_at + TTL.as_millis() as i64 - now_ms();
    if left <= 0 {
        return Attempt::Dropped("expired before it could be delivered".to_owned());
    }
    let url = match destination::parse_stored(&subscription.endpoint, state.config.webhook_allow_private) {
        Ok(url) => url,
        Err(why) => return Attempt::Dropped(format!("endpoint {why}")),
    };
    let keys = webpush::decode_key(&subscription.p256dh, webpush::PUBLIC_KEY_BYTES).zip(webpush::decode_key(&subscription.auth, webpush::AUTH_BYTES));
    let Some((p256dh, auth)) = keys else { return Attempt::Dropped("unusable subscription keys".to_owned()) };
    let body = match webpush::encrypt(&p256dh, &auth, d.body.as_bytes()) {
        Ok(body) => body,
        Err(err) => return Attempt::Dropped(err.to_string()),
    };
    let authorization = match state.vapid.authorization(&url, chrono::Utc::now().timestamp()) {
        Ok(header) => header,
        Err(err) => return Attempt::Failed(format!("VAPID signature: {err}")),
    };
    let sent = client
        .post(url)
        .header(reqwest::header::AUTHORIZATION, authorization)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .header(reqwest::header::CONTENT_ENCODING, "aes128gcm")
        .header("ttl", (left / 1000).max(1).to_string())
        .header("urgency", "high")
        .header("topic", topic(&d.topic))
        .body(body)
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(err) => return Attempt::Failed(describe(err)),
    };
    let status = response.status().as_u16();
    let mut read = 0;
    while read < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    Attempt::Answered(status)
}

/// The `Topic` header of a conversation: at most 32 characters of the base64url alphabet
/// (RFC 8030 §5.4), so 24 bytes of its hash; the push service keeps only the newest push
/// of a topic for a browser that is offline.
pub fn topic(conversation: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(conversation.as_bytes())[..24])
}

async fn settle(state: &AppState, d: &push_deliveries::Model, result: Attempt) -> crate::storage::StorageResult<()> {
    let db = &state.db;
    let attempts = u32::try_from(d.attempts).unwrap_or(0) + 1;
    match result {
        Attempt::Answered(code @ 200..=299) => {
            store::record(db, d, Outcome { status: DELIVERED, http_status: Some(code), error: None, next_attempt_at: None }).await?;
            tracing::debug!(push = d.id, subscription = d.subscription_id, code, "push delivered");
        }
        Attempt::Answered(code @ (404 | 410)) => {
            store::unsubscribe(db, d.subscription_id, None).await?;
            tracing::info!(push = d.id, subscription = d.subscription_id, code, "push subscription gone; removed");
        }
        Attempt::Answered(code @ 400..=499) if code != 408 && code != 429 => {
            let error = format!("the push service answered {code}");
            store::record(db, d, Outcome { status: FAILED, http_status: Some(code), error: Some(&error), next_attempt_at: None }).await?;
            tracing::warn!(push = d.id, subscription = d.subscription_id, code, "push refused; dropped");
        }
        Attempt::Dropped(why) => {
            store::record(db, d, Outcome { status: FAILED, http_status: None, error: Some(&why), next_attempt_at: None }).await?;
            tracing::info!(push = d.id, subscription = d.subscription_id, %why, "push dropped");
        }
        failed => {
            let (http_status, error) = match failed {
                Attempt::Answered(code) => (Some(code), format!("the push service answered {code}")),
                Attempt::Failed(why) | Attempt::Dropped(why) => (None, why),
            };
            if attempts >= MAX_ATTEMPTS {
                store::record(db, d, Outcome { status: FAILED, http_status, error: Some(&error), next_attempt_at: None }).await?;
                tracing::warn!(push = d.id, attempts, %error, "push given up");
            } else {
                let delay = backoff(Duration::from_millis(state.config.webhook_retry_base_ms), attempts);
                let next = now_ms() + delay.as_millis() as i64;
                store::record(db, d, Outcome { status: PENDING, http_status, error: Some(&error), next_attempt_at: Some(next) }).await?;
                tracing::info!(push = d.id, attempts, retry_in_ms = delay.as_millis() as u64, %error, "push failed; retrying");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_is_32_characters_of_base64url_and_differs_per_conversation() {
        let a = topic("dm:alice");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, topic("dm:bob"));
        assert_eq!(a, topic("dm:alice"));
    }
}
