//! Persistence with sea-orm: SQLite (WAL) for one instance, PostgreSQL for many.
//!
//! # Layout
//! - [`entity`]: one sea-orm entity per table; [`migration`]: the schema, applied on start.
//! - [`users`], [`sessions`], [`rooms`], [`messages`], [`dms`], [`jobs`], [`api_tokens`], [`webhooks`]: the
//!   queries each feature needs, returning wire types where the caller only forwards them.
//!
//! Every time column holds milliseconds since the Unix epoch.

pub mod api_tokens;
pub mod dms;
pub mod entity;
pub mod jobs;
pub mod messages;
pub mod migration;
pub mod rooms;
pub mod sessions;
pub mod users;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr, SqlxSqliteConnector};
use sea_orm_migration::MigratorTrait;

pub use self::migration::Migrator;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database could not be reached (connection refused, pool timed out).
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    /// A unique constraint rejected the write.
    #[error("unique constraint violated")]
    Duplicate,
    /// Any other database error.
    #[error("database error: {0}")]
    Db(DbErr),
}

impl From<DbErr> for StorageError {
    fn from(err: DbErr) -> Self {
        if matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) {
            return Self::Duplicate;
        }
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(RuntimeErr::SqlxError(_)) => Self::Unavailable(err),
            _ => Self::Db(err),
        }
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// The connection pool; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pub conn: DatabaseConnection,
}

impl Db {
    /// Connects (creating a SQLite file if needed) without migrating.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let conn = if url.starts_with("sqlite:") {
            // WAL lets readers proceed during the writer's transaction; NORMAL sync is safe
            // with WAL (a power cut loses at most the last transactions, never corrupts).
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(false);
            let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
            SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
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
        Ok(Self { conn })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.conn, None).await?;
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
