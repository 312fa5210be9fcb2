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
                match checkpoint(&conn, "PASSIVE") {
                    Ok(log_frames) if log_frames > REWIND_AFTER_FRAMES => {
                        if let Err(err) = checkpoint(&conn, "RESTART") {
                            tracing::warn!(%err, "WAL rewind failed");
                        }
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(%err, "WAL checkpoint failed"),
                }
            }
        })
        .map_err(|e| StorageError::Db(Box::new(e)))?;
    Ok(stop)
}

/// Runs one checkpoint; the number of frames in the log. A checkpoint that could not finish
/// because of a reader or the writer is not an error (SQLite reports it as `busy`).
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| row.get::<_, i64>(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_under_steady_writes_is_rewound_and_stays_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).expect("open");
        let mode: String = writer.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).expect("WAL");
        assert_eq!(mode, "wal");
        writer.pragma_update(None, "wal_autocheckpoint", 0).expect("no auto checkpoints");
        writer.pragma_update(None, "journal_size_limit", LOG_LIMIT_BYTES).expect("limit");
        writer.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)").expect("table");
        let _stop = spawn(Connection::open(&path).expect("second connection")).expect("checkpointer");
        let body = vec![7u8; 3000];
        let wal = dir.path().join("t.db-wal");
        let mut largest = 0;
        // About 32 MB of log without rewinds (a page per row, plus the table's pages); a
        // rewind comes after 16 MB.
        for _ in 0..40 {
            for _ in 0..40 {
                let tx = writer.unchecked_transaction().expect("begin");
                for _ in 0..5 {
                    tx.execute("INSERT INTO t (body) VALUES (?1)", [&body]).expect("insert");
                }
                tx.commit().expect("commit");
            }
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(5));
        }
        let rows: i64 = writer.query_row("SELECT count(*) FROM t", [], |row| row.get(0)).expect("count");
        assert_eq!(rows, 8_000);
        assert!(largest < 24 * 1024 * 1024, "the log was never rewound: it grew to {largest} bytes");
    }
}
