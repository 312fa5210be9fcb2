//! PostgreSQL: a batch is one statement, one round trip, one implicit transaction.
//!
//! Several instances may share the database, so the rooms' counters cannot live in memory
//! here: the statement locks the batch's rooms in id order (`FOR UPDATE`, so instances
//! committing over the same rooms never deadlock), moves each room's counter once with
//! `UPDATE … RETURNING`, numbers the rows from there and inserts them, all in the one
//! statement the batch costs. Messages whose nonce their author already used are left out
//! by the unique index's own lookup (`NOT EXISTS` over it, in the same statement) and come
//! back as [`Appended::Repeat`], so within a room the numbers stay gap-free. Two instances
//! racing the same nonce make the later statement fail on the index; it is then run again
//! and the repeat is found.

use std::time::Duration;

use sea_orm::sqlx::{self, PgPool};

use super::{Appended, results_in_order};
use crate::storage::messages::NewMessage;
use crate::storage::{Db, StorageError, StorageResult};

/// How long a batch may take before its senders are told the database is unavailable (a
/// database that stops answering must not hang them; what it may still commit is
/// unacknowledged, and a retry with the same nonce finds it).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// `$1…$5`: the batch as arrays (`ord` is the position, from 1); `$6`: the time.
///
/// `gate` makes the counter update wait for every lock: the update's rows come out of a
/// join with that one-row count, which cannot produce a row before `locked` is complete.
const APPEND: &str = "\
WITH input AS (
    SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[])
        WITH ORDINALITY AS t(room_id, author_id, author, text, nonce, ord)
), fresh AS (
    SELECT i.* FROM input i
    WHERE i.nonce IS NULL
       OR NOT EXISTS (SELECT 1 FROM messages m WHERE m.author_id = i.author_id AND m.nonce = i.nonce)
), counts AS (
    SELECT room_id, count(*)::int8 AS n FROM fresh GROUP BY room_id
), locked AS (
    SELECT id FROM rooms WHERE id IN (SELECT room_id FROM counts) ORDER BY id FOR UPDATE
), gate AS (
    SELECT count(*) AS c FROM locked
), bumped AS (
    UPDATE rooms r SET last_seq = r.last_seq + c.n, last_message_at = $6
    FROM counts c, gate g
    WHERE r.id = c.room_id AND g.c >= 0
    RETURNING r.id, r.last_seq - c.n AS base
), numbered AS (
    SELECT f.*, b.base + row_number() OVER (PARTITION BY f.room_id ORDER BY f.ord) AS seq
    FROM fresh f JOIN bumped b ON b.id = f.room_id
), inserted AS (
    INSERT INTO messages (room_id, seq, author_id, author, text, sent_at, edited_at, deleted, nonce)
    SELECT room_id, seq, author_id, author, text, $6, NULL, FALSE, nonce FROM numbered ORDER BY ord
    RETURNING id, room_id, seq
)
SELECT n.ord, i.id, i.seq FROM inserted i JOIN numbered n ON n.room_id = i.room_id AND n.seq = i.seq";

/// Most attempts at a batch that keeps meeting a nonce another instance is inserting.
const ATTEMPTS: usize = 3;

/// The sqlx pool under sea-orm's connection; cheap to clone.
#[derive(Clone)]
pub struct PgAppender {
    pool: PgPool,
}

impl PgAppender {
    pub fn new(db: &Db) -> StorageResult<Self> {
        if db.backend() != sea_orm::DbBackend::Postgres {
            return Err(StorageError::Db("not a PostgreSQL connection".into()));
        }
        Ok(Self { pool: db.conn.get_postgres_connection_pool().clone() })
    }

    /// Writes a batch in one statement; results in batch order.
    pub async fn append(&self, batch: &[NewMessage], now: i64) -> StorageResult<Vec<Appended>> {
        let mut room_ids = Vec::with_capacity(batch.len());
        let mut author_ids = Vec::with_capacity(batch.len());
        let mut authors = Vec::with_capacity(batch.len());
        let mut texts = Vec::with_capacity(batch.len());
        let mut nonces = Vec::with_capacity(batch.len());
        for m in batch {
            room_ids.push(m.room_id);
            author_ids.push(m.author_id);
            authors.push(m.author.as_str());
            texts.push(m.text.as_str());
            nonces.push(m.nonce.as_deref());
        }
        let mut attempt = 0;
        let rows: Vec<(i64, i64, i64)> = loop {
            attempt += 1;
            let query = sqlx::query_as(APPEND)
                .bind(&room_ids)
                .bind(&author_ids)
                .bind(&authors)
                .bind(&texts)
                .bind(&nonces)
                .bind(now)
                .fetch_all(&self.pool);
            match tokio::time::timeout(STATEMENT_TIMEOUT, query).await {
                Err(_) => return Err(StorageError::Unavailable("the message batch timed out".into())),
                Ok(Ok(rows)) => break rows,
                Ok(Err(err)) => match StorageError::from(err) {
                    StorageError::Duplicate if attempt < ATTEMPTS => continue,
                    err => return Err(err),
                },
            }
        };
        let stored = rows.into_iter().map(|(ord, id, seq)| (usize::try_from(ord - 1).unwrap_or(usize::MAX), id, seq));
        let out = results_in_order(batch.len(), stored);
        // Only a nonce can keep a message out; without one, its room must have vanished.
        if out.iter().zip(batch).any(|(a, m)| *a == Appended::Repeat && m.nonce.is_none()) {
            return Err(StorageError::Db("a message's room does not exist".into()));
        }
        Ok(out)
    }
}
