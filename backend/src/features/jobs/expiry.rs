//! The periodic sweep of every instance: jobs of instances that died (marked failed), and
//! finished exports past `CONFAB_EXPORT_TTL_HOURS` (their files deleted, their jobs marked
//! expired). Apart from the runner, which `AppState` holds and which therefore never sees
//! `AppState`.

use super::runner::{SWEEP_EVERY, sweep};
use crate::state::AppState;
use crate::storage::{jobs, now_ms};

/// Sweeps for the jobs of dead instances, and for exports past their lifetime, until the
/// server stops.
pub async fn sweep_periodically(state: AppState) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = every.tick() => {
                sweep(&state.db, state.layer.as_ref(), false).await;
                expire_exports(&state, now_ms()).await;
            }
        }
    }
}

/// Deletes the files of exports that finished more than `CONFAB_EXPORT_TTL_HOURS` before
/// `now` (ms since the epoch; the sweeper passes the clock, tests a time of their choosing)
/// and marks their jobs expired; returns how many. Every instance sweeps: each job's
/// change is conditional, so two sweepers never both expire one.
pub async fn expire_exports(state: &AppState, now: i64) -> usize {
    let Some(ttl) = state.config.export_ttl() else { return 0 };
    let before = now.saturating_sub(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let expired = match jobs::expire_done(&state.db, before).await {
        Ok(expired) => expired,
        Err(err) => {
            tracing::warn!(error = %err, "could not expire old exports");
            return 0;
        }
    };
    for job in &expired {
        // An export of an older version, kept as a file in the data dir of its instance.
        if let Some(file) = job.file.as_deref().filter(|f| *f != crate::storage::exports::IN_DATABASE) {
            let path = state.config.data_dir.join(file);
            if let Err(err) = std::fs::remove_file(&path)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(job = job.id, path = %path.display(), %err, "could not delete an expired export file");
            }
        }
        tracing::info!(job = job.id, "export expired; its file is deleted");
    }
    expired.len()
}
