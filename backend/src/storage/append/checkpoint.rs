//! WAL checkpoints for the SQLite writer: keeping the log small without stalling commits.
//!
//! The writer's connection never checkpoints by itself (`wal_autocheckpoint = 0`): the
//! checkpoint would otherwise run inside whichever commit crosses the log's size limit,
//! holding up that batch and every sender waiting on it. A thread of its own does it
//! instead, on its own connection, in two steps:
//!
//! - Every [`EVERY`], a `PASSIVE` checkpoint copies into the database whatever no reader
//!   still needs. It never waits for, or blocks, the writer.
//! - Passive checkpoints alone never let the log start over while writes continue: SQLite
//!   rewinds the log only when a write transaction begins with every frame already copied
//!   back, and a busy writer always has frames the last pass did not reach. Under a steady
//!   load the log then grows for as long as the load lasts — 600 MB in ten seconds of
//!   flat-out sends was measured — and every commit appends to a growing file (new blocks,
//!   new page-cache pages) instead of overwriting pages already cached. So once the log
//!   holds more than [`REWIND_AFTER_FRAMES`], the thread asks for a `RESTART` checkpoint:
//!   it waits at most [`REWIND_WAIT`] for the writer's commit in progress and for readers
//!   of older snapshots (else it gives up and tries at the next pass), copies the little the
//!   passive passes left, and the next commit writes from the start of the file again.
//!   [`LOG_LIMIT_BYTES`] (`journal_size_limit`) trims a log that grew past it back down
//!   when it rewinds.

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

use crate::storage::{StorageError, StorageResult};

/// How often the checkpointer copies the log into the database.
const EVERY: Duration = Duration::from_millis(200);
/// Log frames (one page each, 4 KiB by default) after which the log is rewound.
const REWIND_AFTER_FRAMES: i64 = 4096;
/// How long a rewind may hold up the writer (and wait for readers) before it gives up.
const REWIND_WAIT: Duration = Duration::from_millis(100);
/// The size a rewound log is trimmed to, if it grew beyond it.
pub const LOG_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// Starts the checkpointer on `conn` (a second connection to the writer's file); it stops
/// when the returned sender is dropped.
pub fn spawn(conn: Connection) -> StorageResult<mpsc::Sender<()>> {
    conn.busy_timeout(REWIND_WAIT)?;
    conn.pragma_update(None, "journal_size_limit", LOG_LIMIT_BYTES)?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                if let Err(err) = pass(&conn) {
                    tracing::warn!(%err, "WAL checkpoint failed");
                }
            }
        })
        .map_err(|e| StorageError::Db(Box::new(e)))?;
    Ok(stop)
}

/// One pass of the checkpointer: a passive checkpoint, then a rewind if the log has grown
/// past [`REWIND_AFTER_FRAMES`]. A rewind that gives up (busy) is tried again next pass.
fn pass(conn: &Connection) -> rusqlite::Result<()> {
    if checkpoint(conn, "PASSIVE")? > REWIND_AFTER_FRAMES {
        checkpoint(conn, "RESTART")?;
    }
    Ok(())
}

/// Runs one checkpoint; the number of frames in the log. A checkpoint that could not finish
/// because of a reader or the writer is not an error (SQLite reports it as `busy`).
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| row.get::<_, i64>(1))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Instant;

    use super::*;

    /// A writer set up as the appender sets up its own: WAL, no automatic checkpoints.
    fn writer(path: &Path) -> Connection {
        let writer = Connection::open(path).expect("open");
        let mode: String = writer.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).expect("WAL");
        assert_eq!(mode, "wal");
        writer.pragma_update(None, "wal_autocheckpoint", 0).expect("no auto checkpoints");
        writer.pragma_update(None, "journal_size_limit", LOG_LIMIT_BYTES).expect("limit");
        writer.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)").expect("table");
        writer
    }

    /// Writes `batches` transactions of five rows of 3 000 bytes (a log page each).
    fn write(writer: &Connection, batches: usize) {
        let body = vec![7u8; 3000];
        for _ in 0..batches {
            let tx = writer.unchecked_transaction().expect("begin");
            for _ in 0..5 {
                tx.execute("INSERT INTO t (body) VALUES (?1)", [&body]).expect("insert");
            }
            tx.commit().expect("commit");
        }
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    /// Writes about 32 MB of log in 40 steps, running `between` after each step; the largest
    /// size the log file reached.
    fn largest_log(dir: &Path, between: impl Fn()) -> u64 {
        let writer = writer(&dir.join("t.db"));
        let mut largest = 0;
        for _ in 0..40 {
            write(&writer, 40);
            largest = largest.max(size(&dir.join("t.db-wal")));
            between();
        }
        let rows: i64 = writer.query_row("SELECT count(*) FROM t", [], |row| row.get(0)).expect("count");
        assert_eq!(rows, 8_000);
        largest
    }

    #[test]
    fn passes_between_writes_rewind_the_log_which_otherwise_grows_with_every_write() {
        let unchecked = tempfile::tempdir().expect("temp dir");
        let grown = largest_log(unchecked.path(), || {});
        assert!(grown > 30 * 1024 * 1024, "without checkpoints the log holds every write: {grown} bytes");

        let checked = tempfile::tempdir().expect("temp dir");
        let checker = Connection::open(checked.path().join("t.db")).expect("checker");
        let rewound = largest_log(checked.path(), || pass(&checker).expect("pass"));
        // A pass rewinds once the log holds 16 MB; the next write then starts at its head.
        assert!(rewound < 20 * 1024 * 1024, "the log was never rewound: it grew to {rewound} bytes");
    }

    #[test]
    fn the_thread_copies_the_log_into_the_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let writer = writer(&path);
        let _stop = spawn(Connection::open(&path).expect("second connection")).expect("checkpointer");
        write(&writer, 200);
        // In WAL mode only a checkpoint writes the database file: 1 000 rows of a page each.
        let copied = 1000 * 3000;
        let deadline = Instant::now() + Duration::from_secs(60);
        while size(&path) < copied {
            assert!(Instant::now() < deadline, "nothing was checkpointed: the database holds {} bytes", size(&path));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
