//! Background jobs: exports (of a room, of the audit log) and purges.
//!
//! Every state change is a conditional update (`… WHERE state = 'running'`), so a job that
//! was marked failed (its instance stopped, or the sweeper declared it dead) never flips
//! back to running or done; the runner learns from the `false` it gets and stops.

use confab_shared::{ExportFormat, Job, JobKind, JobState, Timestamp};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};

use super::entity::jobs;
use super::moderation::AuditFilter;
use super::{Db, StorageError, StorageResult, now_ms};

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
/// Done, and its file deleted after the export lifetime.
pub const EXPIRED: &str = "expired";
/// The `kind` of a room export.
pub const EXPORT_ROOM: &str = "export_room";
/// The `kind` of an audit log export.
pub const EXPORT_AUDIT: &str = "export_audit";
/// The `kind` of a purge.
pub const PURGE: &str = "purge_messages";

/// What an export writes.
pub enum Export<'a> {
    /// A room's whole history.
    Room(&'a str),
    /// The audit rows matching a filter.
    Audit(&'a AuditFilter),
}

impl From<&jobs::Model> for Job {
    fn from(m: &jobs::Model) -> Self {
        Job {
            id: m.id,
            kind: match m.kind.as_str() {
                PURGE => JobKind::PurgeMessages,
                EXPORT_AUDIT => JobKind::ExportAudit,
                _ => JobKind::ExportRoom,
            },
            state: match m.state.as_str() {
                QUEUED => JobState::Queued,
                RUNNING => JobState::Running,
                DONE => JobState::Done,
                EXPIRED => JobState::Expired,
                _ => JobState::Failed,
            },
            percent: m.percent.clamp(0, 100) as u8,
            error: m.error.clone(),
            created_at: Timestamp::from_millis(m.created_at),
            finished_at: m.finished_at.map(Timestamp::from_millis),
        }
    }
}

/// The `format` column's spelling of an export format.
pub fn format_name(format: &ExportFormat) -> &'static str {
    match format {
        ExportFormat::Json => "json",
        ExportFormat::Csv => "csv",
    }
}

/// The export format a row names (`csv`, anything else is JSON).
pub fn format_of(m: &jobs::Model) -> ExportFormat {
    if m.format == "csv" { ExportFormat::Csv } else { ExportFormat::Json }
}

pub async fn by_id(db: &Db, id: i64) -> StorageResult<Option<jobs::Model>> {
    Ok(jobs::Entity::find_by_id(id).one(&db.conn).await?)
}

/// Records a new queued export.
pub async fn create_export(db: &Db, owner_id: i64, what: Export<'_>, format: &ExportFormat) -> StorageResult<jobs::Model> {
    let now = now_ms();
    let (kind, room, filter) = match what {
        Export::Room(room) => (EXPORT_ROOM, room.to_owned(), None),
        Export::Audit(filter) => {
            let json = serde_json::to_string(filter).map_err(|e| StorageError::Db(Box::new(e)))?;
            (EXPORT_AUDIT, filter.room.clone().unwrap_or_default(), Some(json))
        }
    };
    jobs::ActiveModel {
        owner_id: Set(owner_id),
        kind: Set(kind.to_owned()),
        room: Set(room),
        format: Set(format_name(format).to_owned()),
        state: Set(QUEUED.to_owned()),
        percent: Set(0),
        error: Set(None),
        file: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
        heartbeat_at: Set(Some(now)),
        filter: Set(filter),
        ..Default::default()
    }
    .insert(&db.conn)
    .await
    .map_err(StorageError::from)
}

/// What an audit export selects; a job without a filter exports the whole log.
pub fn audit_filter_of(m: &jobs::Model) -> StorageResult<AuditFilter> {
    match m.filter.as_deref() {
        None => Ok(AuditFilter::default()),
        Some(json) => serde_json::from_str(json).map_err(|e| StorageError::Db(Box::new(e))),
    }
}

/// Records a new queued purge of `target_id`'s messages (in `room`, or everywhere), with
/// its audit row in the same transaction.
pub async fn create_purge(db: &Db, owner_id: i64, target_id: i64, room: Option<&str>, audit: &super::moderation::Audit) -> StorageResult<jobs::Model> {
    use sea_orm::TransactionTrait as _;
    let now = now_ms();
    let txn = db.conn.begin().await?;
    let job = jobs::ActiveModel {
        owner_id: Set(owner_id),
        kind: Set(PURGE.to_owned()),
        room: Set(room.unwrap_or_default().to_owned()),
        format: Set(String::new()),
        state: Set(QUEUED.to_owned()),
        percent: Set(0),
        error: Set(None),
        file: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
        heartbeat_at: Set(Some(now)),
        target_id: Set(Some(target_id)),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut audit = audit.clone();
    audit.detail = Some(format!("job {}", job.id));
    super::moderation::record_on(&txn, &audit).await?;
    txn.commit().await?;
    Ok(job)
}

/// Forgets a job that was never started (admission refused it).
pub async fn delete(db: &Db, id: i64) -> StorageResult<()> {
    jobs::Entity::delete_by_id(id).exec(&db.conn).await?;
    Ok(())
}

/// The owner's jobs that are queued or running, on any instance.
pub async fn active_count(db: &Db, owner_id: i64) -> StorageResult<u64> {
    Ok(jobs::Entity::find()
        .filter(jobs::Column::OwnerId.eq(owner_id))
        .filter(jobs::Column::State.is_in([QUEUED, RUNNING]))
        .count(&db.conn)
        .await?)
}

/// queued → running; `false` when the job is no longer queued.
pub async fn start(db: &Db, id: i64) -> StorageResult<bool> {
    let result = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(RUNNING))
        .col_expr(jobs::Column::HeartbeatAt, Expr::value(now_ms()))
        .filter(jobs::Column::Id.eq(id))
        .filter(jobs::Column::State.eq(QUEUED))
        .exec(&db.conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Records progress and a heartbeat; `false` when the job is no longer running.
pub async fn progress(db: &Db, id: i64, percent: u8) -> StorageResult<bool> {
    let result = jobs::Entity::update_many()
        .col_expr(jobs::Column::Percent, Expr::value(i32::from(percent)))
        .col_expr(jobs::Column::HeartbeatAt, Expr::value(now_ms()))
        .filter(jobs::Column::Id.eq(id))
        .filter(jobs::Column::State.eq(RUNNING))
        .exec(&db.conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// running → done with its file (relative to the data dir); `None` when it was no longer running.
pub async fn finish(db: &Db, id: i64, file: &str) -> StorageResult<Option<jobs::Model>> {
    let now = now_ms();
    let result = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(DONE))
        .col_expr(jobs::Column::Percent, Expr::value(100))
        .col_expr(jobs::Column::File, Expr::value(file))
        .col_expr(jobs::Column::FinishedAt, Expr::value(now))
        .col_expr(jobs::Column::HeartbeatAt, Expr::value(now))
        .filter(jobs::Column::Id.eq(id))
        .filter(jobs::Column::State.eq(RUNNING))
        .exec(&db.conn)
        .await?;
    if result.rows_affected != 1 {
        return Ok(None);
    }
    by_id(db, id).await
}

/// queued/running → failed with `error`; `None` when it had already ended.
pub async fn fail(db: &Db, id: i64, error: &str) -> StorageResult<Option<jobs::Model>> {
    let result = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(FAILED))
        .col_expr(jobs::Column::Error, Expr::value(error))
        .col_expr(jobs::Column::FinishedAt, Expr::value(now_ms()))
        .filter(jobs::Column::Id.eq(id))
        .filter(jobs::Column::State.is_in([QUEUED, RUNNING]))
        .exec(&db.conn)
        .await?;
    if result.rows_affected != 1 {
        return Ok(None);
    }
    // Whatever a dead or stopped runner stored will never be downloaded.
    super::exports::discard(db, id).await?;
    by_id(db, id).await
}

/// Marks failed every queued or running job whose last heartbeat is before `before`
/// (`i64::MAX`: all of them), returning the jobs it failed.
pub async fn fail_stale(db: &Db, before: i64, error: &str) -> StorageResult<Vec<jobs::Model>> {
    let stale = jobs::Entity::find()
        .filter(jobs::Column::State.is_in([QUEUED, RUNNING]))
        .filter(Expr::expr(Expr::col(jobs::Column::HeartbeatAt).if_null(Expr::col(jobs::Column::CreatedAt))).lt(before))
        .order_by_asc(jobs::Column::Id)
        .all(&db.conn)
        .await?;
    let mut failed = Vec::with_capacity(stale.len());
    for job in stale {
        // One conditional update each: a job that finished in between stays finished.
        if let Some(job) = fail(db, job.id, error).await? {
            failed.push(job);
        }
    }
    Ok(failed)
}

/// done → expired for every job that finished before `finished_before` (ms since the
/// epoch), its stored file deleted. Returns the rows as they were (their `file` names a
/// file in the data dir for exports of older versions, which the caller removes).
pub async fn expire_done(db: &Db, finished_before: i64) -> StorageResult<Vec<jobs::Model>> {
    let due = jobs::Entity::find()
        .filter(jobs::Column::State.eq(DONE))
        .filter(jobs::Column::FinishedAt.lt(finished_before))
        .order_by_asc(jobs::Column::Id)
        .all(&db.conn)
        .await?;
    let mut expired = Vec::with_capacity(due.len());
    for job in due {
        // Marked first, then deleted: a download that starts in between is refused (410),
        // and one already streaming ends short rather than reading half a file silently.
        let result = jobs::Entity::update_many()
            .col_expr(jobs::Column::State, Expr::value(EXPIRED))
            .col_expr(jobs::Column::File, Expr::value(Option::<String>::None))
            .filter(jobs::Column::Id.eq(job.id))
            .filter(jobs::Column::State.eq(DONE))
            .exec(&db.conn)
            .await?;
        if result.rows_affected == 1 {
            super::exports::discard(db, job.id).await?;
            expired.push(job);
        }
    }
    Ok(expired)
}
