//! The retention sweep: in a room whose owner set `retention_days` (or, without one, when the
//! server has a default, `CONFAB_RETENTION_DAYS`), messages older than that are deleted as `message.delete` deletes them (text and reactions go, the ids stay, so
//! history, `sync` and exports skip them), with an audit row by `system` per batch.
//!
//! Deleting takes the database's one write lock, which the message writer needs for every
//! message: batches are small ([`BATCH`]) and each is followed by a pause at least as long as
//! it took ([`PAUSE`]), so chat traffic never waits behind a sweep of a large backlog.
//!
//! Every instance sweeps every [`SWEEP_EVERY`]; each deletion is conditional on the message
//! not being deleted yet, so two instances never both delete (or both record) one message.
//! A sweep walks each room's messages oldest first and stops at the first one still within
//! the retention, so it reads what it deletes plus one batch; where it stopped is kept in
//! memory, so a restart reads the room's deleted prefix once more. Nobody is notified: the
//! messages are old history, which clients that still show them drop on their next reload.

use std::collections::HashMap;
use std::time::Duration;

use confab_shared::moderation::ModerationAction;

use crate::state::AppState;
use crate::storage::moderation::{self as store, Audit};
use crate::storage::now_ms;

/// How often each instance sweeps.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Messages read (and at most deleted) per transaction: a millisecond or two of the
/// database's one write lock.
const BATCH: u64 = 25;

/// The least pause after a batch that deleted something; the pause is at least as long as
/// the batch took, so the sweep holds the write lock at most half the time (the message
/// writer retries every 250 µs while it is held: `storage::append::sqlite`). About 4 000
/// messages a second: a backlog of millions takes minutes, in the background.
const PAUSE: Duration = Duration::from_millis(10);

const DAY_MS: i64 = 86_400_000;

/// Where each room's sweep has got to: the highest message id known to be gone.
pub type Progress = HashMap<i64, i64>;

/// Sweeps until the server stops.
pub async fn sweep_periodically(state: AppState) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut progress = Progress::new();
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = every.tick() => { sweep(&state, now_ms(), &mut progress).await; }
        }
    }
}

/// One sweep as of `now` (ms since the epoch; the sweeper passes the clock, tests a time of
/// their choosing); returns how many messages it deleted. A database error ends the sweep
/// (logged); the next one starts where this one stopped.
pub async fn sweep(state: &AppState, now: i64, progress: &mut Progress) -> u64 {
    match sweep_rooms(state, now, progress).await {
        Ok(deleted) => deleted,
        Err(err) => {
            tracing::warn!(error = %err, "retention sweep stopped");
            0
        }
    }
}

async fn sweep_rooms(state: &AppState, now: i64, progress: &mut Progress) -> crate::storage::StorageResult<u64> {
    let mut deleted = 0;
    let default_days = state.config.retention_days;
    for room in store::rooms_with_retention(&state.db, default_days).await? {
        let days = room.retention_days.and_then(|d| u32::try_from(d).ok()).unwrap_or(default_days);
        let before = now.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
        let mut after = progress.get(&room.id).copied().unwrap_or(0);
        // First one message: in a room with nothing to delete, that is the whole sweep.
        let oldest = store::messages_after(&state.db, room.id, after, 1).await?;
        if !oldest.first().is_some_and(|m| m.sent_at < before) {
            continue;
        }
        loop {
            let rows = store::messages_after(&state.db, room.id, after, BATCH).await?;
            let expired: Vec<_> = rows.iter().take_while(|m| m.sent_at < before).collect();
            let Some(last) = expired.last() else { break };
            let ids: Vec<i64> = expired.iter().filter(|m| !m.deleted).map(|m| m.id).collect();
            let audit = |n: u64| Some(Audit {
                actor_id: None,
                actor: "system".to_owned(),
                action: ModerationAction::Retention,
                target: None,
                room: Some(room.name.clone()),
                reason: None,
                detail: Some(format!("{n} {} older than {days} {}", plural(n, "message"), plural(u64::from(days), "day"))),
                instance: super::audit::instance(state),
            });
            let started = std::time::Instant::now();
            let n = store::delete_messages(&state.db, &ids, audit).await?;
            if n > 0 {
                tracing::info!(room = %room.name, messages = n, days, "retention deleted old messages");
            }
            deleted += n;
            after = last.id;
            progress.insert(room.id, after);
            if expired.len() < rows.len() || (rows.len() as u64) < BATCH {
                break;
            }
            if n > 0 {
                tokio::time::sleep(started.elapsed().max(PAUSE)).await;
            }
        }
    }
    Ok(deleted)
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 { word.to_owned() } else { format!("{word}s") }
}
