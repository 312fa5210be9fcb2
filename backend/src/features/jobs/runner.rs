//! Where jobs run: tokio tasks on the instance that accepted them, tracked so a shutdown
//! can mark every one it interrupts as failed, plus the sweeper that fails the jobs of
//! instances that died without saying so.
//!
//! A running job writes a heartbeat to its row (with its progress, at most every
//! [`SAVE_EVERY`]). The sweeper on every instance fails queued or running jobs whose
//! heartbeat is older than [`STALE_AFTER`], so a job whose instance was killed is failed
//! by a surviving one, and never by an instance that merely restarted while another one
//! is still running it. With the in-process layer there is only one instance, so on start
//! every unfinished job is one this instance was running before it stopped.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_shared::rpc::Notification;
use confab_shared::rpc::notify::JobProgress;
use confab_shared::Job;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::export::{self, ExportError};
use crate::layer::{ChannelLayer, Class, Delivery, group};
use crate::storage::entity::jobs as job_entity;
use crate::storage::{Db, jobs, now_ms};

/// The error a job interrupted by a shutdown (this instance's, or a dead one's) ends with.
pub const INTERRUPTED: &str = "interrupted by server shutdown";
/// What the owner reads when an export fails for an internal reason (logged in full).
const FAILED: &str = "export failed; the cause is in the server log";
/// Progress notifications at most this often, unless the percentage jumped by [`NOTIFY_STEP`].
const NOTIFY_EVERY: Duration = Duration::from_millis(250);
const NOTIFY_STEP: u8 = 5;
/// Progress and heartbeat writes to the job's row at most this often.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);
/// A heartbeat older than this means the instance running the job is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// How often each instance looks for stale jobs.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// How long a shutdown waits for interrupted jobs to record themselves as failed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// This instance's running jobs. Cheap to clone; one per `AppState` (which holds it, so
/// it takes the database and the layer as arguments rather than the state).
#[derive(Clone)]
pub struct JobRunner {
    tracker: TaskTracker,
    /// Ids of the jobs running here, so a shutdown can fail those whose task did not get to
    /// it. A std mutex: it is never held across an `.await`.
    in_flight: Arc<Mutex<HashSet<i64>>>,
    /// Cancelled when the server stops; every job task watches it.
    stop: CancellationToken,
}

impl JobRunner {
    pub fn new(stop: CancellationToken) -> Self {
        Self { tracker: TaskTracker::new(), in_flight: Arc::default(), stop }
    }

    /// Runs a queued job in the background. It outlives the request and any socket: the
    /// owner learns its fate from `job.finished`, `GET /api/jobs/{id}` or the download.
    pub fn spawn(&self, db: Db, layer: Arc<dyn ChannelLayer>, job: job_entity::Model) {
        let id = job.id;
        if let Ok(mut ids) = self.in_flight.lock() {
            ids.insert(id);
        }
        let runner = self.clone();
        self.tracker.spawn(async move {
            let started = Instant::now();
            let outcome = if job.kind == jobs::PURGE {
                super::purge::run(&db, layer.as_ref(), &job, &runner.stop).await
            } else {
                export::run(&db, layer.as_ref(), &job, &runner.stop).await
            };
            let ended = match outcome {
                Ok(file) => match jobs::finish(&db, id, &file).await {
                    Ok(Some(done)) => {
                        tracing::info!(job = id, room = %job.room, elapsed_ms = started.elapsed().as_millis() as u64, "export finished");
                        Ok(Some(done))
                    }
                    // Failed behind our back (a sweeper thought us dead): the file is an orphan.
                    Ok(None) => {
                        export::discard(&db, id).await;
                        Ok(None)
                    }
                    Err(err) => Err(err),
                },
                Err(ExportError::Interrupted) => {
                    tracing::info!(job = id, "export interrupted by shutdown");
                    jobs::fail(&db, id, INTERRUPTED).await
                }
                Err(ExportError::Gone) => Ok(None),
                Err(ExportError::Failed(cause)) => {
                    tracing::error!(job = id, error = ?cause, "export failed");
                    jobs::fail(&db, id, FAILED).await
                }
            };
            match ended {
                Ok(Some(job)) => notify_finished(layer.as_ref(), &job),
                Ok(None) => {}
                // Left running in the database: the sweeper of a later start fails it.
                Err(err) => tracing::error!(job = id, error = %err, "could not record the end of a job"),
            }
            if let Ok(mut ids) = runner.in_flight.lock() {
                ids.remove(&id);
            }
        });
    }

    /// On shutdown (the stop token is already cancelled): waits briefly for the jobs to mark
    /// themselves failed, then marks those that did not.
    pub async fn shutdown(&self, db: &Db) {
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait()).await.is_ok() {
            return;
        }
        let left: Vec<i64> = self.in_flight.lock().map(|ids| ids.iter().copied().collect()).unwrap_or_default();
        tracing::warn!(jobs = left.len(), "some jobs did not stop in time; marking them failed");
        for id in left {
            if let Err(err) = jobs::fail(db, id, INTERRUPTED).await {
                tracing::error!(job = id, error = %err, "could not mark an interrupted job failed");
            }
        }
    }
}

/// Fails the jobs a previous run of this instance (or a dead instance) left unfinished:
/// all of them with the in-process layer, those with a stale heartbeat with Redis.
pub async fn sweep(db: &Db, layer: &dyn ChannelLayer, single_instance: bool) {
    let before = if single_instance { i64::MAX } else { now_ms() - STALE_AFTER.as_millis() as i64 };
    match jobs::fail_stale(db, before, INTERRUPTED).await {
        Ok(failed) => {
            for job in &failed {
                tracing::warn!(job = job.id, "marked an interrupted job failed");
                notify_finished(layer, job);
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not sweep interrupted jobs"),
    }
}

/// `job.finished` to the owner's connections, wherever they are (never dropped).
fn notify_finished(layer: &dyn ChannelLayer, job: &job_entity::Model) {
    let frame = Notification::JobFinished(Job::from(job)).to_frame();
    if let Err(err) = layer.group_send(&group::user(job.owner_id), Delivery::frame(frame, Class::Reliable)) {
        tracing::warn!(job = job.id, %err, "could not announce a finished job");
    }
}

/// Paces a job's progress: notifications to the owner (droppable, at most every
/// [`NOTIFY_EVERY`] unless the percentage jumped by [`NOTIFY_STEP`]) and heartbeats to the row.
pub struct Progress {
    job_id: i64,
    owner_id: i64,
    total: u64,
    done: u64,
    notified: u8,
    notified_at: Instant,
    saved_at: Instant,
}

impl Progress {
    pub fn new(job_id: i64, owner_id: i64, total: u64) -> Self {
        let now = Instant::now();
        Self { job_id, owner_id, total, done: 0, notified: 0, notified_at: now, saved_at: now }
    }

    pub fn percent(&self) -> u8 {
        // An empty room is complete from the start.
        (self.done.min(self.total) * 100).checked_div(self.total).map_or(100, |p| p as u8)
    }

    /// Counts `rows` more; notifies and saves when due. [`ExportError::Gone`] when the job
    /// is no longer running in the database.
    pub async fn advance(&mut self, db: &Db, layer: &dyn ChannelLayer, rows: u64) -> Result<(), ExportError> {
        self.done += rows;
        let percent = self.percent();
        let now = Instant::now();
        let due = now.duration_since(self.notified_at) >= NOTIFY_EVERY || percent >= self.notified.saturating_add(NOTIFY_STEP);
        if percent > self.notified && due {
            self.notified = percent;
            self.notified_at = now;
            let event = Notification::JobProgress(JobProgress {
                job_id: self.job_id,
                percent,
                detail: Some(format!("{} of {} messages", self.done, self.total)),
            });
            let delivery = Delivery::frame(event.to_frame(), Class::Droppable);
            if let Err(err) = layer.group_send(&group::user(self.owner_id), delivery) {
                tracing::debug!(job = self.job_id, %err, "progress not sent");
            }
        }
        if now.duration_since(self.saved_at) >= SAVE_EVERY {
            self.saved_at = now;
            if !jobs::progress(db, self.job_id, percent).await.map_err(|e| ExportError::Failed(e.into()))? {
                return Err(ExportError::Gone);
            }
        }
        Ok(())
    }
}
