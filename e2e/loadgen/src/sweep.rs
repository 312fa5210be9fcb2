//! The retention sweep under load: (c) against a server whose rooms hold many messages
//! older than the retention, so the sweep deletes them while the load runs.
//!
//! The old messages are written once per benchmark run into a SQLite file whose schema the
//! server's own migrations made (a Confab instance is started on an empty data dir and
//! stopped), with the SQLite the server links (rusqlite): rooms named as the load names them, owned by one
//! archive account, and messages sent long ago spread over them in send order. Each run of
//! the scenario starts on a copy. The server sweeps when it starts and then once a minute, so
//! the sweep starts with the server and runs through the measurement window when there are
//! enough messages; what it did is read back afterwards from its audit rows (one per batch,
//! "N messages older than D days", by `system`, stamped when the batch committed).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::servers::{self, ConfabBacking, Env};

/// The retention the server runs with (`CONFAB_RETENTION_DAYS`).
pub const RETENTION_DAYS: u32 = 30;
/// How old the oldest seeded message is.
const SEEDED_AGE_DAYS: i64 = 400;
const DAY_MS: i64 = 86_400_000;

/// What the sweep did in one run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SweepResult {
    /// Old messages in the database when the server started.
    pub seeded: u64,
    /// Seconds it took to write them (once per benchmark run).
    pub seed_secs: f64,
    /// Messages the sweep deleted by the end of the run, and in how many batches.
    pub deleted: u64,
    pub batches: u64,
    /// From the server's start to its last batch.
    pub sweep_secs: f64,
    pub deleted_per_s: f64,
    /// Deleted by batches that committed within the measurement window.
    pub deleted_in_window: u64,
    pub deleted_per_s_in_window: f64,
    /// Whether the sweep still had old messages left at the end of the window: it ran
    /// through all of it.
    pub through_window: bool,
}

/// The seeded database of this benchmark run for `messages` messages in `rooms` rooms named
/// `<prefix><i>`: written on first use (removing earlier runs' seeds), reused by later runs of
/// the same process. Returns the file and the seconds writing it took (0 when reused).
pub async fn seed(env: &Env, rooms: usize, prefix: &str, messages: usize) -> anyhow::Result<(PathBuf, f64)> {
    let file = env.work_dir.join(format!("sweep-seed-{prefix}{rooms}-{messages}-{}.db", std::process::id()));
    if file.exists() {
        return Ok((file, 0.0));
    }
    // Earlier benchmark runs' seeds (a few hundred MB each) are of no further use.
    for entry in std::fs::read_dir(&env.work_dir)?.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("sweep-seed-") && name.to_string_lossy().ends_with(".db") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let started = Instant::now();
    let data = env.work_dir.join("sweep-seed-data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    // The server's migrations make the schema; a clean stop leaves one file.
    let port = servers::free_port()?;
    let (mut proc, _) = servers::confab_at(env, "sweep-seed", &ConfabBacking::default(), port, &data, &[]).await?;
    proc.terminate(Duration::from_secs(10));
    let db = data.join("confab.db");
    execute(&db, &seed_sql(rooms, prefix, messages, chrono::Utc::now().timestamp_millis()))?;
    execute(&db, "PRAGMA wal_checkpoint(TRUNCATE);")?;
    std::fs::rename(&db, &file).with_context(|| format!("move {} to {}", db.display(), file.display()))?;
    let _ = std::fs::remove_dir_all(&data);
    Ok((file, started.elapsed().as_secs_f64()))
}

/// A fresh data dir `data` holding a copy of the seeded database.
pub fn data_dir_from(seeded: &Path, data: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(data);
    std::fs::create_dir_all(data)?;
    std::fs::copy(seeded, data.join("confab.db")).with_context(|| format!("copy {}", seeded.display()))?;
    Ok(())
}

/// The statements that write the archive account, the rooms and the old messages: message
/// `i` goes to room `i % rooms`, sent `SEEDED_AGE_DAYS` ago plus `i` ms, so ids follow send
/// order as the server's own writes do; each room's counter is its last sequence number.
fn seed_sql(rooms: usize, prefix: &str, messages: usize, now_ms: i64) -> String {
    let old = now_ms - SEEDED_AGE_DAYS * DAY_MS;
    format!(
        "BEGIN;
INSERT INTO users (username, username_key, password_hash, is_admin, created_at) VALUES ('bench-archive', 'bench-archive', '!', 0, {old});
INSERT INTO rooms (name, admin_only, created_by, created_at, last_message_at, last_seq, owner_id, slow_mode_secs, retention_days)
  WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i + 1 < {rooms})
  SELECT '{prefix}' || i, 0, u.id, {old}, {old} + {messages}, 0, u.id, 0, NULL FROM r, users u WHERE u.username_key = 'bench-archive';
CREATE TEMP TABLE seeded_rooms AS SELECT id, CAST(substr(name, {from}) AS INTEGER) AS i FROM rooms WHERE name LIKE '{prefix}%';
INSERT INTO messages (room_id, seq, author_id, author, text, sent_at, deleted)
  WITH RECURSIVE m(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM m WHERE i + 1 < {messages})
  SELECT r.id, m.i / {rooms} + 1, u.id, 'bench-archive', 'an old message, number ' || m.i || ', kept until the retention sweep deletes it', {old} + m.i, 0
  FROM m JOIN seeded_rooms r ON r.i = m.i % {rooms}, users u WHERE u.username_key = 'bench-archive' ORDER BY m.i;
UPDATE rooms SET last_seq = (SELECT max(seq) FROM messages WHERE room_id = rooms.id) WHERE id IN (SELECT id FROM seeded_rooms);
COMMIT;
",
        from = prefix.len() + 1
    )
}

/// Reads what the sweep did from the stopped server's database: its audit rows, against the
/// server's start and the measurement window (wall-clock ms).
pub fn read_back(db: &Path, seeded: u64, seed_secs: f64, started_ms: i64, window_ms: (i64, i64)) -> anyhow::Result<SweepResult> {
    let (from, to) = window_ms;
    let sql = format!(
        "SELECT count(*), coalesce(sum(CAST(detail AS INTEGER)), 0), coalesce(max(created_at), 0), \
         coalesce(sum(CASE WHEN created_at >= {from} AND created_at <= {to} THEN CAST(detail AS INTEGER) ELSE 0 END), 0) \
         FROM audit_log WHERE action = 'retention';"
    );
    let conn = rusqlite::Connection::open(db).with_context(|| format!("open {}", db.display()))?;
    let (batches, deleted, last_ms, in_window): (i64, i64, i64, i64) =
        conn.query_row(&sql, [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))).context("the sweep's audit rows")?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let sweep_secs = if batches > 0 { (last_ms - started_ms).max(0) as f64 / 1e3 } else { 0.0 };
    let window_secs = (to - from).max(1) as f64 / 1e3;
    let through_window = count(deleted) < seeded && last_ms >= to - 1_000;
    Ok(SweepResult {
        seeded,
        seed_secs,
        deleted: count(deleted),
        batches: count(batches),
        sweep_secs,
        deleted_per_s: if sweep_secs > 0.0 { deleted as f64 / sweep_secs } else { 0.0 },
        deleted_in_window: count(in_window),
        deleted_per_s_in_window: in_window as f64 / window_secs,
        through_window,
    })
}

/// Runs the statements of `sql` against `db`.
pub fn execute(db: &Path, sql: &str) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(db).with_context(|| format!("open {}", db.display()))?;
    conn.execute_batch(sql).with_context(|| format!("seeding {}", db.display()))
}

#[cfg(test)]
mod tests {
    use super::seed_sql;

    #[test]
    fn the_seed_names_the_rooms_as_the_load_does_and_sends_every_message_long_before_the_retention() {
        let sql = seed_sql(100, "bench-c-sweep-", 1000, 1_800_000_000_000);
        assert!(sql.contains("'bench-c-sweep-' || i"));
        assert!(sql.contains("substr(name, 15)"), "room numbers start after the prefix");
        let old = 1_800_000_000_000 - 400 * super::DAY_MS;
        assert!(old + 1000 < 1_800_000_000_000 - i64::from(super::RETENTION_DAYS) * super::DAY_MS);
        assert!(sql.contains(&format!("{old} + m.i")));
    }
}
