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
//!
//! A batch with messages webhooks want, or that mention users, runs that statement and one
//! `UNNEST` insert of its deliveries (and one of its mention rows) in a transaction (the
//! rooms stay locked until the deliveries are in, so another instance's batch over the same
//! room numbers its deliveries after these); a batch without any stays the single
//! implicit-transaction statement.

use std::time::Duration;

use confab_shared::webhooks::WebhookEvent;
use sea_orm::sqlx::{self, PgConnection, PgPool};

use super::{Appended, Subscribed, Written, outgoing, results_in_order};
use crate::storage::messages::NewMessage;
use crate::storage::webhooks::PENDING;
use crate::storage::{Db, StorageError, StorageResult};

/// How long a batch may take before its senders are told the database is unavailable (a
/// database that stops answering must not hang them; what it may still commit is
/// unacknowledged, and a retry with the same nonce finds it).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// `$1…$5`, `$7`, `$8`: the batch as arrays (`ord` is the position, from 1); `$6`: the time.
///
/// `gate` makes the counter update wait for every lock: the update's rows come out of a
/// join with that one-row count, which cannot produce a row before `locked` is complete.
const APPEND: &str = "\
WITH input AS (
    SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $7::text[], $8::text[])
        WITH ORDINALITY AS t(room_id, author_id, author, text, nonce, mentions, mention_all, ord)
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
    INSERT INTO messages (room_id, seq, author_id, author, text, sent_at, edited_at, deleted, nonce, mentions, mention_all)
    SELECT room_id, seq, author_id, author, text, $6, NULL, FALSE, nonce, mentions, mention_all FROM numbered ORDER BY ord
    RETURNING id, room_id, seq
)
SELECT n.ord, i.id, i.seq FROM inserted i JOIN numbered n ON n.room_id = i.room_id AND n.seq = i.seq";

/// `$1…$4`: the deliveries as arrays, in the order their ids must follow; `$5`: the event
/// type, `$6`: the status, `$7`: the time.
const ENQUEUE: &str = "\
INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, ordering_key, body, status, attempts, next_attempt_at, created_at)
SELECT webhook_id, event_id, $5, ordering_key, body, $6, 0, $7, $7
FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(webhook_id, event_id, ordering_key, body, ord)
ORDER BY ord";

/// `$1…$3`: the mention rows of a batch as arrays.
const MENTION: &str = "\
INSERT INTO mentions (user_id, message_id, room_id)
SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[]) ON CONFLICT DO NOTHING";

/// The batch as the statement's arrays.
struct Arrays<'a> {
    room_ids: Vec<i64>,
    author_ids: Vec<i64>,
    authors: Vec<&'a str>,
    texts: Vec<&'a str>,
    nonces: Vec<Option<&'a str>>,
    mentions: Vec<Option<String>>,
    mention_all: Vec<Option<&'static str>>,
}

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

    /// Writes a batch (with its webhook deliveries, in the same transaction); results in
    /// batch order.
    pub async fn append(&self, batch: &[NewMessage], subscribed: &[Subscribed], now: i64) -> StorageResult<Written> {
        let mut arrays = Arrays {
            room_ids: Vec::with_capacity(batch.len()),
            author_ids: Vec::with_capacity(batch.len()),
            authors: Vec::with_capacity(batch.len()),
            texts: Vec::with_capacity(batch.len()),
            nonces: Vec::with_capacity(batch.len()),
            mentions: Vec::with_capacity(batch.len()),
            mention_all: Vec::with_capacity(batch.len()),
        };
        for m in batch {
            arrays.room_ids.push(m.room_id);
            arrays.author_ids.push(m.author_id);
            arrays.authors.push(m.author.as_str());
            arrays.texts.push(m.text.as_str());
            arrays.nonces.push(m.nonce.as_deref());
            arrays.mentions.push(m.mentions.names_column());
            arrays.mention_all.push(m.mentions.all_column());
        }
        let mentioning = batch.iter().any(|m| !m.mentions.users.is_empty());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let written = async {
                if subscribed.is_empty() && !mentioning {
                    let rows = self.insert(&arrays, now, &self.pool).await?;
                    let results = checked(batch, rows)?;
                    Ok(Written { results, ..Written::default() })
                } else {
                    let mut tx = self.pool.begin().await?;
                    let rows = self.insert(&arrays, now, &mut *tx).await?;
                    let results = checked(batch, rows)?;
                    if mentioning {
                        mention(&mut tx, batch, &results).await?;
                    }
                    let (json, enqueued) = enqueue(&mut tx, batch, subscribed, &results, now).await?;
                    tx.commit().await?;
                    Ok(Written { results, json, enqueued })
                }
            };
            match tokio::time::timeout(STATEMENT_TIMEOUT, written).await {
                Err(_) => return Err(StorageError::Unavailable("the message batch timed out".into())),
                Ok(Ok(written)) => return Ok(written),
                Ok(Err(StorageError::Duplicate)) if attempt < ATTEMPTS => continue,
                Ok(Err(err)) => return Err(err),
            }
        }
    }

    /// The append statement on `executor`: `(ord, id, seq)` of the stored rows.
    async fn insert<'e, E>(&self, a: &Arrays<'_>, now: i64, executor: E) -> StorageResult<Vec<(i64, i64, i64)>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Postgres>,
    {
        Ok(sqlx::query_as(APPEND)
            .bind(&a.room_ids)
            .bind(&a.author_ids)
            .bind(&a.authors)
            .bind(&a.texts)
            .bind(&a.nonces)
            .bind(now)
            .bind(&a.mentions)
            .bind(&a.mention_all)
            .fetch_all(executor)
            .await?)
    }
}

/// The stored rows in batch order; an error when a message without a nonce is missing.
fn checked(batch: &[NewMessage], rows: Vec<(i64, i64, i64)>) -> StorageResult<Vec<Appended>> {
    let stored = rows.into_iter().map(|(ord, id, seq)| (usize::try_from(ord - 1).unwrap_or(usize::MAX), id, seq));
    let out = results_in_order(batch.len(), stored);
    // Only a nonce can keep a message out; without one, its room must have vanished.
    if out.iter().zip(batch).any(|(a, m)| *a == Appended::Repeat && m.nonce.is_none()) {
        return Err(StorageError::Db("a message's room does not exist".into()));
    }
    Ok(out)
}

/// Inserts the mention rows of the messages stored now, in one statement on `conn`.
async fn mention(conn: &mut PgConnection, batch: &[NewMessage], results: &[Appended]) -> StorageResult<()> {
    let (mut users, mut messages, mut rooms) = (Vec::new(), Vec::new(), Vec::new());
    for (m, appended) in batch.iter().zip(results) {
        if let Appended::New { id, .. } = appended {
            for &user in &m.mentions.users {
                users.push(user);
                messages.push(*id);
                rooms.push(m.room_id);
            }
        }
    }
    if !users.is_empty() {
        sqlx::query(MENTION).bind(&users).bind(&messages).bind(&rooms).execute(conn).await?;
    }
    Ok(())
}

/// Inserts the deliveries of the subscribed messages stored now, in one statement on `conn`;
/// their wire JSON, and whether there was any.
async fn enqueue(
    conn: &mut PgConnection,
    batch: &[NewMessage],
    subscribed: &[Subscribed],
    results: &[Appended],
    now: i64,
) -> StorageResult<(Vec<(usize, std::sync::Arc<str>)>, bool)> {
    let (mut webhook_ids, mut event_ids, mut keys, mut bodies) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut json = Vec::with_capacity(subscribed.len());
    for sub in subscribed {
        let (Some(m), Some(Appended::New { id, .. })) = (batch.get(sub.index), results.get(sub.index)) else { continue };
        let (wire, rows) = outgoing(m, sub, *id, now);
        for d in rows {
            webhook_ids.push(d.webhook_id);
            event_ids.push(d.event_id);
            keys.push(d.ordering_key);
            bodies.push(d.body);
        }
        json.push((sub.index, wire));
    }
    if webhook_ids.is_empty() {
        return Ok((json, false));
    }
    sqlx::query(ENQUEUE)
        .bind(&webhook_ids)
        .bind(&event_ids)
        .bind(&keys)
        .bind(&bodies)
        .bind(WebhookEvent::RoomMessage.as_str())
        .bind(PENDING)
        .bind(now)
        .execute(conn)
        .await?;
    Ok((json, true))
}
