//! SQLite: one connection, owned by one thread, does every message insert.
//!
//! SQLite has a single writer anyway; giving it one owner removes the pool's hand-offs (a
//! hop to a driver thread for every statement) and lets the statements stay prepared. A
//! batch is one hop to the thread and back, and one `BEGIN IMMEDIATE … COMMIT` there: an
//! insert per message (a few µs each, cached statement), then one counter update per room.
//! A message some webhook wants gets its delivery rows right after its insert, in the same
//! transaction (another cached statement); a batch without any never prepares it. A message
//! that mentions users gets their mention rows the same way.
//! Only the database work happens on the thread: the broadcast that follows runs on the
//! runtime, where waking a thousand connection tasks is a local queue push each.
//!
//! The rooms' counters live here in memory, the database staying the source of truth: a
//! commit moves a room's counter only from the value cached here (`… WHERE last_seq = ?`),
//! so if anything else ever moved it, the transaction is rolled back, the cache dropped and
//! the batch written again with the database's numbers.
//!
//! WAL checkpoints are left to a thread of their own ([`super::checkpoint`]), which keeps
//! the log small without holding up commits.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use sea_orm::sqlx::sqlite::SqliteConnectOptions;
use tokio::sync::oneshot;

use confab_shared::webhooks::WebhookEvent;

use super::{Appended, Subscribed, Written, outgoing};
use crate::storage::messages::NewMessage;
use crate::storage::webhooks::PENDING;
use crate::storage::{StorageError, StorageResult};

/// `OR IGNORE` rather than `ON CONFLICT (author_id, nonce) DO NOTHING`: the same here (that
/// unique index is the table's only constraint a row of ours can break: every `NOT NULL`
/// column is bound, the id is the database's), and a statement that cannot abort needs no
/// statement journal, which copies every page the insert touches first.
const INSERT: &str = "INSERT OR IGNORE INTO messages (room_id, seq, author_id, author, text, sent_at, edited_at, deleted, nonce, mentions, mention_all) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, FALSE, ?7, ?8, ?9)";
/// One mentioned user of a message stored now (the users are distinct; `OR IGNORE` for the
/// same reason as [`INSERT`]).
const MENTION: &str = "INSERT OR IGNORE INTO mentions (user_id, message_id, room_id) VALUES (?1, ?2, ?3)";
const LOAD_SEQ: &str = "SELECT last_seq FROM rooms WHERE id = ?1";
const MOVE_SEQ: &str = "UPDATE rooms SET last_seq = ?1, last_message_at = ?2 WHERE id = ?3 AND last_seq = ?4";
const ENQUEUE: &str = "INSERT INTO webhook_deliveries \
     (webhook_id, event_id, event_type, ordering_key, body, status, attempts, next_attempt_at, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7)";

/// Same as the pool's: a reader never blocks us in WAL mode, but a pool connection writing
/// an edit or a reaction holds the write lock for a moment.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the writer sleeps between tries while another connection (the retention sweep, a
/// purge, an admin's change) holds the write lock.
const BUSY_STEP: Duration = Duration::from_micros(250);

/// The writer's busy handler: retry every [`BUSY_STEP`] for up to [`BUSY_TIMEOUT`]. SQLite's
/// own handler sleeps in growing steps (1, 2, 5, 10, … up to 100 ms), so a message batch that
/// met a lock held for a few milliseconds would wait tens of them: a chat's p99.
fn retry_soon(attempt: i32) -> bool {
    if BUSY_STEP * u32::try_from(attempt).unwrap_or(0) >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(BUSY_STEP);
    true
}

/// The handle of the thread that owns the write connection and runs every append (named
/// `sqlite-writer`); the thread ends when it is dropped.
pub struct SqliteAppendThread {
    jobs: mpsc::Sender<Job>,
}

struct Job {
    batch: Vec<NewMessage>,
    subscribed: Vec<Subscribed>,
    now: i64,
    done: oneshot::Sender<(Vec<NewMessage>, StorageResult<Written>)>,
}

impl SqliteAppendThread {
    /// Opens the connection and starts its thread.
    pub fn start(url: &str) -> StorageResult<Self> {
        let mut appender = SqliteAppender::open(url)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                for job in queue {
                    let outcome = appender.append(&job.batch, &job.subscribed, job.now);
                    let _ = job.done.send((job.batch, outcome));
                }
            })
            .map_err(|e| StorageError::Db(Box::new(e)))?;
        Ok(Self { jobs })
    }

    /// Writes a batch (and its webhook deliveries) on the thread; hands the batch back with
    /// what was written.
    pub async fn append(&self, batch: Vec<NewMessage>, subscribed: Vec<Subscribed>, now: i64) -> (Vec<NewMessage>, StorageResult<Written>) {
        let (done, outcome) = oneshot::channel();
        let stopped = || StorageError::Unavailable("the SQLite writer thread stopped".into());
        if let Err(mpsc::SendError(job)) = self.jobs.send(Job { batch, subscribed, now, done }) {
            return (job.batch, Err(stopped()));
        }
        outcome.await.unwrap_or_else(|_| (Vec::new(), Err(stopped())))
    }
}

/// The write connection and the rooms' counters; used from one thread.
pub struct SqliteAppender {
    conn: Connection,
    /// Each room's `last_seq` as of our last commit.
    last_seq: HashMap<i64, i64>,
    /// Dropping it stops the checkpointer thread.
    _checkpointer: mpsc::Sender<()>,
}

/// Why one attempt at a batch did not commit.
enum Attempt {
    /// A room's counter was not what the cache said: reload and write again.
    Stale,
    Failed(StorageError),
}

impl From<rusqlite::Error> for Attempt {
    fn from(err: rusqlite::Error) -> Self {
        Self::Failed(err.into())
    }
}

impl SqliteAppender {
    /// Opens the file behind a `sqlite:` URL (already created and migrated by the pool).
    pub fn open(url: &str) -> StorageResult<Self> {
        let options = SqliteConnectOptions::from_str(url).map_err(|e| StorageError::Db(Box::new(e)))?;
        let path = options.get_filename();
        let in_memory = url.contains(":memory:") || url.contains("mode=memory") || path.to_string_lossy().contains("in-memory");
        if path.as_os_str().is_empty() || in_memory {
            return Err(StorageError::Db("the message writer needs a database file, not an in-memory database".into()));
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_handler(Some(retry_soon))?;
        // WAL is a property of the file (the pool set it); NORMAL is per connection. With WAL,
        // NORMAL syncs at checkpoints: a killed process loses nothing, a power cut at most
        // the last transactions, and the file never corrupts.
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StorageError::Db(format!("SQLite refused WAL mode ({mode})").into()));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", super::checkpoint::LOG_LIMIT_BYTES)?;
        let checkpointer = super::checkpoint::spawn(Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?)?;
        Ok(Self { conn, last_seq: HashMap::new(), _checkpointer: checkpointer })
    }

    /// Writes a batch and its webhook deliveries in one transaction; results in batch order.
    pub fn append(&mut self, batch: &[NewMessage], subscribed: &[Subscribed], now: i64) -> StorageResult<Written> {
        for _ in 0..3 {
            match self.try_append(batch, subscribed, now) {
                Ok(out) => return Ok(out),
                Err(Attempt::Stale) => self.last_seq.clear(),
                Err(Attempt::Failed(err)) => {
                    self.last_seq.clear();
                    return Err(err);
                }
            }
        }
        Err(StorageError::Db("room counters kept moving under the message writer".into()))
    }

    fn try_append(&mut self, batch: &[NewMessage], subscribed: &[Subscribed], now: i64) -> Result<Written, Attempt> {
        let tx = Immediate::begin(&self.conn)?;
        // Per room: the counter at the start of the batch and where the batch has taken it.
        let mut moved: HashMap<i64, (i64, i64)> = HashMap::new();
        let mut out = Vec::with_capacity(batch.len());
        let mut json = Vec::new();
        {
            let mut insert = self.conn.prepare_cached(INSERT)?;
            let mut load = self.conn.prepare_cached(LOAD_SEQ)?;
            let mut enqueue = if subscribed.is_empty() { None } else { Some(self.conn.prepare_cached(ENQUEUE)?) };
            let mut subscribed = subscribed.iter().peekable();
            for (index, m) in batch.iter().enumerate() {
                let sub = subscribed.next_if(|h| h.index == index);
                let counter = match moved.entry(m.room_id) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        let from = match self.last_seq.get(&m.room_id) {
                            Some(&seq) => seq,
                            None => load
                                .query_row([m.room_id], |row| row.get(0))
                                .optional()?
                                .ok_or_else(|| Attempt::Failed(StorageError::Db(format!("room {} does not exist", m.room_id).into())))?,
                        };
                        e.insert((from, from))
                    }
                };
                let seq = counter.1 + 1;
                let mentions = (m.mentions.names_column(), m.mentions.all_column());
                let stored = insert.execute(params![m.room_id, seq, m.author_id, m.author, m.text, now, m.nonce, mentions.0, mentions.1])? == 1;
                match stored.then(|| self.conn.last_insert_rowid()) {
                    Some(id) => {
                        counter.1 = seq;
                        out.push(Appended::New { id, seq });
                        if !m.mentions.users.is_empty() {
                            let mut mention = self.conn.prepare_cached(MENTION)?;
                            for user in &m.mentions.users {
                                mention.execute(params![user, id, m.room_id])?;
                            }
                        }
                        if let (Some(sub), Some(enqueue)) = (sub, enqueue.as_mut()) {
                            let (wire, rows) = outgoing(m, sub, id, now);
                            for d in rows {
                                let event = WebhookEvent::RoomMessage.as_str();
                                enqueue.execute(params![d.webhook_id, d.event_id, event, d.ordering_key, d.body, PENDING, now])?;
                            }
                            json.push((index, wire));
                        }
                    }
                    // The unique index on (author, nonce) skipped it.
                    None => out.push(Appended::Repeat),
                }
            }
            let mut update = self.conn.prepare_cached(MOVE_SEQ)?;
            for (&room, &(from, to)) in &moved {
                if to > from && update.execute(params![to, now, room, from])? != 1 {
                    return Err(Attempt::Stale);
                }
            }
        }
        tx.commit()?;
        for (room, (_, to)) in moved {
            self.last_seq.insert(room, to);
        }
        let enqueued = !json.is_empty();
        Ok(Written { results: out, json, enqueued })
    }
}

/// `BEGIN IMMEDIATE … COMMIT` from cached statements (rusqlite's `Transaction` parses both
/// on every use); rolled back if dropped before its commit.
struct Immediate<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Immediate<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Self> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Self { conn, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Immediate<'_> {
    fn drop(&mut self) {
        // A failed COMMIT leaves the transaction open (busy) or already rolled back (I/O
        // error, full disk); either way nothing of it may stay.
        if self.open && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::Full(Box::new(err)),
            Some(ErrorCode::ConstraintViolation)
                if matches!(&err, rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE) =>
            {
                Self::Duplicate
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure) => {
                Self::Unavailable(Box::new(err))
            }
            _ => Self::Db(Box::new(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::ConnectionTrait;

    use super::*;
    use crate::storage::{Db, rooms};

    /// A migrated database file with rooms `a` and `b`; the URL and the rooms' ids.
    async fn database() -> (tempfile::TempDir, Db, String, i64, i64) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Db::connect(&url).await.expect("connect");
        db.migrate().await.expect("migrate");
        let a = rooms::create(&db, "a", false, None).await.expect("room a").id;
        let b = rooms::create(&db, "b", false, None).await.expect("room b").id;
        (dir, db, url, a, b)
    }

    fn message(room_id: i64, text: &str, nonce: Option<&str>) -> NewMessage {
        NewMessage { room_id, author_id: 1, author: "ann".into(), text: text.into(), nonce: nonce.map(str::to_owned), mentions: Default::default() }
    }

    async fn last_seq(db: &Db, room: i64) -> i64 {
        rooms::by_id(db, room).await.expect("query").expect("the room").last_seq
    }

    #[tokio::test]
    async fn a_batch_numbers_each_room_in_order_and_a_used_nonce_takes_no_number() {
        let (_dir, db, url, a, b) = database().await;
        let mut appender = SqliteAppender::open(&url).expect("open");
        let batch = [message(a, "1", Some("x")), message(b, "2", None), message(a, "3", Some("x")), message(a, "4", None)];
        let out = appender.append(&batch, &[], 5).expect("append").results;
        let seqs: Vec<Option<i64>> = out.iter().map(|r| if let Appended::New { seq, .. } = r { Some(*seq) } else { None }).collect();
        assert_eq!(seqs, vec![Some(1), Some(1), None, Some(2)]);
        let ids: Vec<i64> = out.iter().filter_map(|r| if let Appended::New { id, .. } = r { Some(*id) } else { None }).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids follow the batch order: {ids:?}");
        // A later batch: the nonce is still taken, the counter goes on from the database's.
        let out = appender.append(&[message(a, "5", Some("x")), message(a, "6", None)], &[], 6).expect("append").results;
        assert!(matches!(out[..], [Appended::Repeat, Appended::New { seq: 3, .. }]), "{out:?}");
        assert_eq!((last_seq(&db, a).await, last_seq(&db, b).await), (3, 1));
    }

    #[tokio::test]
    async fn a_counter_moved_behind_the_writers_back_is_reloaded_not_overwritten() {
        let (_dir, db, url, a, _) = database().await;
        let mut appender = SqliteAppender::open(&url).expect("open");
        appender.append(&[message(a, "1", None)], &[], 1).expect("append");
        db.conn.execute_unprepared(&format!("UPDATE rooms SET last_seq = 10 WHERE id = {a}")).await.expect("update");
        let out = appender.append(&[message(a, "2", None)], &[], 2).expect("append").results;
        assert!(matches!(out[..], [Appended::New { seq: 11, .. }]), "{out:?}");
        assert_eq!(last_seq(&db, a).await, 11);
    }

    #[tokio::test]
    async fn a_full_database_fails_the_whole_batch_as_full() {
        let (_dir, db, url, a, _) = database().await;
        let mut appender = SqliteAppender::open(&url).expect("open");
        let pages: i64 = appender.conn.query_row("PRAGMA page_count", [], |row| row.get(0)).expect("page count");
        appender.conn.pragma_update(None, "max_page_count", pages + 4).expect("cap the file");
        let big = "x".repeat(3000);
        let mut stored = 0;
        let err = loop {
            match appender.append(&[message(a, &big, None), message(a, &big, None)], &[], 1) {
                Ok(out) => stored += out.results.len(),
                Err(err) => break err,
            }
            assert!(stored < 1000, "the capped file never filled up");
        };
        assert!(matches!(err, StorageError::Full(_)), "{err:?}");
        // Nothing of the failed batch is half there, and the counter matches the rows.
        let count: i64 = appender.conn.query_row("SELECT COUNT(*) FROM messages", [], |row| row.get(0)).expect("count");
        assert_eq!(count as usize, stored);
        assert_eq!(last_seq(&db, a).await, stored as i64);
    }

    fn sub(index: usize, room: &str, webhooks: &[i64]) -> Subscribed {
        Subscribed { index, room: room.into(), webhooks: webhooks.to_vec() }
    }

    fn count(appender: &SqliteAppender, table: &str) -> i64 {
        appender.conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0)).expect("count")
    }

    #[tokio::test]
    async fn hooked_messages_get_one_delivery_per_webhook_in_the_batch_and_repeats_none() {
        let (_dir, _db, url, a, b) = database().await;
        let mut appender = SqliteAppender::open(&url).expect("open");
        let batch = [message(a, "1", Some("x")), message(b, "2", None), message(a, "3", Some("x"))];
        let subscribed = [sub(0, "a", &[7, 8]), sub(2, "a", &[7, 8])];
        let written = appender.append(&batch, &subscribed, 5).expect("append");
        assert!(written.enqueued);
        let Appended::New { id, .. } = written.results[0] else { panic!("stored: {:?}", written.results) };
        assert_eq!(written.json.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0], "the repeat stored nothing");
        let mut rows = appender.conn.prepare("SELECT webhook_id, event_type, ordering_key, body, status FROM webhook_deliveries ORDER BY id").expect("query");
        let rows: Vec<(i64, String, String, String, String)> = rows
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![7, 8]);
        for (_, event, key, body, status) in &rows {
            assert_eq!((event.as_str(), key.as_str(), status.as_str()), ("room.message", "room:a", "pending"));
            let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
            let wire: serde_json::Value = serde_json::from_str(&written.json[0].1).expect("JSON");
            assert_eq!((&body["data"], &body["data"]["id"]), (&wire, &serde_json::json!(id)));
        }
    }

    #[tokio::test]
    async fn a_batch_whose_deliveries_cannot_be_written_stores_no_message() {
        let (_dir, db, url, a, _) = database().await;
        let mut appender = SqliteAppender::open(&url).expect("open");
        appender.append(&[message(a, "before", None)], &[], 1).expect("append");
        appender
            .conn
            .execute_batch("CREATE TRIGGER refuse BEFORE INSERT ON webhook_deliveries BEGIN SELECT RAISE(ABORT, 'outbox refused'); END;")
            .expect("trigger");
        let err = appender.append(&[message(a, "plain", None), message(a, "subscribed", None)], &[sub(1, "a", &[3])], 2).expect_err("refused");
        assert!(err.to_string().contains("outbox refused"), "{err}");
        assert_eq!((count(&appender, "messages"), count(&appender, "webhook_deliveries")), (1, 0));
        assert_eq!(last_seq(&db, a).await, 1, "the counter did not move either");
        // Without webhook subscriptions the same batch goes through, numbered on from the database.
        let out = appender.append(&[message(a, "plain", None)], &[], 3).expect("append").results;
        assert!(matches!(out[..], [Appended::New { seq: 2, .. }]), "{out:?}");
    }
}
