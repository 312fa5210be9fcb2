//! Persistence with sea-orm: SQLite (WAL) for one instance, PostgreSQL for many.
//!
//! # Layout
//! - [`entity`]: one sea-orm entity per table; [`migration`]: the schema, applied on start.
//! - [`users`], [`sessions`], [`rooms`], [`messages`], [`mentions`], [`dms`], [`jobs`], [`api_tokens`], [`webhooks`], [`moderation`]: the
//!   queries each feature needs, returning wire types where the caller only forwards them.
//! - [`webhook_queue`]: the hooks that enqueue webhook deliveries inside an event's own
//!   transaction, and the in-memory list of webhooks that makes them free when nobody
//!   subscribes (the delivery worker is `features::webhooks`).
//! - [`push`]: Web Push subscriptions and the outbox of pushes (the push worker is
//!   `features::push`).
//! - [`exports`]: finished export files, in chunks, readable from every instance.
//! - [`append`]: the hot path, appending batches of room messages on the drivers under
//!   sea-orm (a SQLite writer thread, one PostgreSQL statement per batch).
//!
//! Every time column holds milliseconds since the Unix epoch.

pub mod api_tokens;
pub mod append;
pub mod dms;
pub mod entity;
pub mod exports;
pub mod external_identities;
pub mod jobs;
pub mod mentions;
pub mod messages;
pub mod migration;
pub mod moderation;
pub mod push;
pub mod rooms;
pub mod sessions;
pub mod users;
pub mod webhook_queue;
pub mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, TransactionTrait, DatabaseConnection, DbBackend, DbErr, RuntimeErr, SqlxSqliteConnector};
use sea_orm_migration::MigratorTrait;

pub use self::migration::Migrator;

/// The PostgreSQL advisory lock key of schema migrations (any constant; "confab" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x636f_6e66_6162;

/// The cause behind a storage error, whichever driver reported it (logged, never shown).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database could not be reached (connection refused or lost, pool timed out, no
    /// answer in time).
    #[error("database unavailable: {0}")]
    Unavailable(Cause),
    /// The disk (or the database's space) is full: nothing more can be written.
    #[error("database full: {0}")]
    Full(Cause),
    /// A unique constraint rejected the write.
    #[error("unique constraint violated")]
    Duplicate,
    /// Any other database error.
    #[error("database error: {0}")]
    Db(Cause),
}

impl From<DbErr> for StorageError {
    fn from(err: DbErr) -> Self {
        if matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) {
            return Self::Duplicate;
        }
        let kind = match &err {
            DbErr::ConnectionAcquire(_) => Kind::Unavailable,
            DbErr::Conn(RuntimeErr::SqlxError(e)) => kind_of(e).max(Kind::Unavailable),
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => kind_of(e),
            _ => Kind::Other,
        };
        kind.wrap(Box::new(err))
    }
}

impl From<sea_orm::sqlx::Error> for StorageError {
    fn from(err: sea_orm::sqlx::Error) -> Self {
        kind_of(&err).wrap(Box::new(err))
    }
}

/// How a driver error is reported, most specific last (so `max` keeps the more telling one).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Other,
    Unavailable,
    Duplicate,
    Full,
}

impl Kind {
    fn wrap(self, cause: Cause) -> StorageError {
        match self {
            Self::Other => StorageError::Db(cause),
            Self::Unavailable => StorageError::Unavailable(cause),
            Self::Duplicate => StorageError::Duplicate,
            Self::Full => StorageError::Full(cause),
        }
    }
}

/// Opens the SQLite pool, trying again while another connection holds the lock that switching
/// a new file to WAL takes: SQLite answers that switch with SQLITE_BUSY at once rather than
/// waiting out the busy timeout, so processes (or a test's instances) opening one fresh file
/// together would otherwise fail at random. Gives up after the busy timeout's 10 s.
async fn open_sqlite_pool(options: SqliteConnectOptions) -> Result<sea_orm::sqlx::SqlitePool, sea_orm::sqlx::Error> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match SqlitePoolOptions::new().max_connections(8).connect_with(options.clone()).await {
            Err(err) if is_sqlite_busy(&err) && std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            opened => return opened,
        }
    }
}

/// SQLITE_BUSY, whatever its extended code.
fn is_sqlite_busy(err: &sea_orm::sqlx::Error) -> bool {
    let code = err.as_database_error().and_then(|e| e.code());
    code.and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| c & 0xff == 5)
}

fn kind_of(err: &sea_orm::sqlx::Error) -> Kind {
    use sea_orm::sqlx::Error;
    match err {
        Error::Database(e) if e.is_unique_violation() => Kind::Duplicate,
        Error::Database(e) => match e.code() {
            Some(code) if code.len() == 5 => sqlstate_kind(&code),
            // SQLite's (extended) result codes: the primary code is the low byte.
            Some(code) => match code.parse::<i32>().map(|c| c & 0xff) {
                Ok(13) => Kind::Full,
                // Busy, locked, I/O error, cannot open.
                Ok(5 | 6 | 10 | 14) => Kind::Unavailable,
                _ => Kind::Other,
            },
            None => Kind::Other,
        },
        Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::Tls(_) | Error::Protocol(_) | Error::WorkerCrashed => {
            Kind::Unavailable
        }
        _ => Kind::Other,
    }
}

/// PostgreSQL's SQLSTATE: disk full (53100); connection exceptions (08), insufficient
/// resources (53), the server shutting down or ending our session (57), a database that
/// does not exist or does not accept connections now (3D000, 55000).
fn sqlstate_kind(code: &str) -> Kind {
    match code {
        "53100" => Kind::Full,
        "3D000" | "55000" => Kind::Unavailable,
        _ if code.starts_with("08") || code.starts_with("53") || code.starts_with("57") => Kind::Unavailable,
        _ => Kind::Other,
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// The connection pool, and the directory of user names in front of it; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pub conn: DatabaseConnection,
    pub(crate) names: std::sync::Arc<users::Names>,
}

impl Db {
    /// Connects (creating a SQLite file if needed) without migrating.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let conn = if url.starts_with("sqlite:") {
            // WAL lets readers proceed during the writer's transaction; NORMAL sync is safe
            // with WAL (a power cut loses at most the last transactions, never corrupts).
            let options = SqliteConnectOptions::from_str(url)?;
            // Created owner-only here, not by SQLite with the umask (see `files`).
            let file = options.get_filename();
            if file != Path::new(":memory:") && !url.contains("mode=memory") {
                crate::files::prepare_sqlite(file).with_context(|| format!("preparing {}", file.display()))?;
            }
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(false);
            SqlxSqliteConnector::from_sqlx_sqlite_pool(open_sqlite_pool(options).await?)
        } else {
            let mut options = ConnectOptions::new(url.to_owned());
            options
                .max_connections(32)
                .min_connections(2)
                .connect_timeout(Duration::from_secs(5))
                .acquire_timeout(Duration::from_secs(5))
                .sqlx_logging(false);
            Database::connect(options).await?
        };
        Ok(Self { conn, names: Default::default() })
    }

    /// Applies pending migrations under a database-wide lock, so any number of instances
    /// can start together on a fresh or an old database: the first migrates, the others
    /// wait, then find nothing left to do.
    ///
    /// PostgreSQL: a transaction-scoped advisory lock (released by the commit or by a dead
    /// connection), with the migrations in that transaction. SQLite: one dedicated
    /// connection holding `BEGIN EXCLUSIVE` (other processes wait on the busy timeout).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend() {
            DbBackend::Postgres => {
                let txn = self.conn.begin().await?;
                txn.execute(sea_orm::Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"),
                ))
                .await?;
                Migrator::up(&txn, None).await?;
                txn.commit().await?;
            }
            DbBackend::Sqlite => {
                // Statements on the shared pool could land on any connection; the lock
                // must hold on the one that migrates.
                let options = (*self.conn.get_sqlite_connection_pool().connect_options()).clone();
                let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
                let single = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
                single.execute_unprepared("BEGIN EXCLUSIVE").await?;
                let migrated = Migrator::up(&single, None).await;
                let end = if migrated.is_ok() { "COMMIT" } else { "ROLLBACK" };
                single.execute_unprepared(end).await?;
                migrated?;
                single.close().await?;
            }
            DbBackend::MySql => Migrator::up(&self.conn, None).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// A trivial query, for `/api/health`.
    pub async fn ping(&self) -> bool {
        self.conn.ping().await.is_ok()
    }
}

/// Milliseconds since the Unix epoch, the unit of every time column.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A raw statement written with `?` placeholders, numbered `$1, $2, …` for PostgreSQL.
pub(crate) fn statement(db: &Db, sql: &str, values: Vec<sea_orm::Value>) -> sea_orm::Statement {
    statement_on(db.backend(), sql, values)
}

/// `COLLATE "C"` on PostgreSQL (nothing on SQLite, whose default is already byte order): name
/// lists page by keyset, and a prefix range `name >= p AND name < p'` is only the names
/// starting with `p` in byte order, not in a locale's collation, which ignores punctuation.
pub(crate) fn byte_order(db: &Db) -> &'static str {
    if db.backend() == DbBackend::Postgres { " COLLATE \"C\"" } else { "" }
}

/// The smallest string above every string starting with `prefix` (names are ASCII below `~`).
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_owned();
    match end.pop() {
        Some(last) => end.push(char::from(last as u8 + 1)),
        None => end.push('\u{7f}'),
    }
    end
}

/// [`statement`] for a connection that is not a [`Db`] (a transaction).
pub(crate) fn statement_on(backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> sea_orm::Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_owned()
    };
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn instances_migrating_one_fresh_sqlite_file_together_all_succeed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("fleet.db").display());
        let mut starts = Vec::new();
        for _ in 0..4 {
            let url = url.clone();
            starts.push(tokio::spawn(async move {
                let db = Db::connect(&url).await?;
                db.migrate().await?;
                anyhow::Ok(db)
            }));
        }
        for start in starts {
            let db = start.await.expect("task").expect("every instance migrates");
            let applied = db
                .conn
                .query_one(sea_orm::Statement::from_string(DbBackend::Sqlite, "SELECT COUNT(*) AS n FROM seaql_migrations"))
                .await
                .expect("query")
                .and_then(|row| row.try_get::<i64>("", "n").ok());
            assert_eq!(applied, Some(Migrator::migrations().len() as i64));
        }
    }
}
