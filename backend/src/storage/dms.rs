//! Direct (one-to-one) messages and their read cursors.

use confab_shared::{DirectMessage, Timestamp};
use sea_orm::sea_query::{Condition, Expr, OnConflict};
use confab_shared::webhooks::WebhookEvent;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait};

use super::webhook_queue::WebhookQueue;

use super::entity::{direct_messages as dm, dm_reads};
use super::{Db, StorageError, StorageResult, now_ms};

impl From<dm::Model> for DirectMessage {
    fn from(m: dm::Model) -> Self {
        DirectMessage { id: m.id, from: m.from_name, to: m.to_name, text: m.text, sent_at: Timestamp::from_millis(m.sent_at) }
    }
}

/// Who sends to whom.
pub struct Parties<'a> {
    pub from_id: i64,
    pub from: &'a str,
    pub to_id: i64,
    pub to: &'a str,
}

/// What [`insert`] did.
#[derive(Debug)]
pub enum Inserted {
    /// Stored now.
    New(dm::Model),
    /// A retry: the sender already stored this message (same recipient, same text) under the
    /// nonce; nothing was written, this is the first one.
    Repeat(dm::Model),
    /// The sender already used the nonce for a different message; nothing was written.
    NonceReused,
}

impl Inserted {
    /// What a send of `text` to `to_id` is when its nonce is already stored as `first`.
    fn repeat_of(first: dm::Model, to_id: i64, text: &str) -> Self {
        if first.to_id == to_id && first.text == text { Self::Repeat(first) } else { Self::NonceReused }
    }
}

/// Persists a DM, unless its nonce was used before (see [`Inserted`]). The webhook queue
/// gets `dm.message` in the same transaction when a webhook wants it.
pub async fn insert(db: &Db, p: Parties<'_>, text: &str, nonce: Option<&str>, queue: &WebhookQueue) -> StorageResult<Inserted> {
    if let Some(nonce) = nonce
        && let Some(existing) = by_nonce(db, p.from_id, nonce).await?
    {
        return Ok(Inserted::repeat_of(existing, p.to_id, text));
    }
    let row = dm::ActiveModel {
        from_id: Set(p.from_id),
        to_id: Set(p.to_id),
        from_name: Set(p.from.to_owned()),
        to_name: Set(p.to.to_owned()),
        text: Set(text.to_owned()),
        sent_at: Set(now_ms()),
        nonce: Set(nonce.map(str::to_owned)),
        ..Default::default()
    };
    let inserted = if queue.wants(WebhookEvent::DmMessage) {
        insert_announced(db, row, queue).await
    } else {
        row.insert(&db.conn).await.map_err(StorageError::from)
    };
    match (inserted, nonce) {
        (Ok(model), _) => Ok(Inserted::New(model)),
        // A concurrent send with the same nonce won the race.
        (Err(StorageError::Duplicate), Some(nonce)) => {
            let first = by_nonce(db, p.from_id, nonce).await?.ok_or(StorageError::Duplicate)?;
            Ok(Inserted::repeat_of(first, p.to_id, text))
        }
        (Err(other), _) => Err(other),
    }
}

async fn insert_announced(db: &Db, row: dm::ActiveModel, queue: &WebhookQueue) -> StorageResult<dm::Model> {
    let txn = db.conn.begin().await?;
    let model = row.insert(&txn).await?;
    let enqueued = queue.direct_message(&txn, &model).await?;
    txn.commit().await?;
    if enqueued {
        queue.wake();
    }
    Ok(model)
}

pub async fn by_nonce(db: &Db, from_id: i64, nonce: &str) -> StorageResult<Option<dm::Model>> {
    Ok(dm::Entity::find()
        .filter(dm::Column::FromId.eq(from_id))
        .filter(dm::Column::Nonce.eq(nonce))
        .one(&db.conn)
        .await?)
}

fn between(a: i64, b: i64) -> Condition {
    Condition::any()
        .add(Condition::all().add(dm::Column::FromId.eq(a)).add(dm::Column::ToId.eq(b)))
        .add(Condition::all().add(dm::Column::FromId.eq(b)).add(dm::Column::ToId.eq(a)))
}

/// The conversation of two users, up to `limit` before `before`, oldest first.
pub async fn history(db: &Db, a: i64, b: i64, before: Option<i64>, limit: u64) -> StorageResult<Vec<DirectMessage>> {
    let mut query = dm::Entity::find().filter(between(a, b));
    if let Some(before) = before {
        query = query.filter(dm::Column::Id.lt(before));
    }
    let mut rows = query.order_by_desc(dm::Column::Id).limit(limit).all(&db.conn).await?;
    rows.reverse();
    Ok(rows.into_iter().map(DirectMessage::from).collect())
}

/// DMs to or from a user with ids after `after`, oldest first.
pub async fn after(db: &Db, user_id: i64, after: i64, limit: u64) -> StorageResult<Vec<DirectMessage>> {
    Ok(dm::Entity::find()
        .filter(Condition::any().add(dm::Column::FromId.eq(user_id)).add(dm::Column::ToId.eq(user_id)))
        .filter(dm::Column::Id.gt(after))
        .order_by_asc(dm::Column::Id)
        .limit(limit)
        .all(&db.conn)
        .await?
        .into_iter()
        .map(DirectMessage::from)
        .collect())
}

/// The newest message id of the conversation of two users (0 when they have none).
async fn latest_between(db: &Db, a: i64, b: i64) -> StorageResult<i64> {
    let latest: Option<Option<i64>> = dm::Entity::find()
        .select_only()
        .column_as(dm::Column::Id.max(), "latest")
        .filter(between(a, b))
        .into_tuple()
        .one(&db.conn)
        .await?;
    Ok(latest.flatten().unwrap_or(0))
}

/// Moves the user's cursor in the conversation with `peer_id` forward to `id`, but never past
/// the conversation's newest message (so an id from the future cannot mark messages read
/// before they exist); the cursor's new place when it moved.
pub async fn mark_read(db: &Db, user_id: i64, peer_id: i64, id: i64) -> StorageResult<Option<i64>> {
    let id = id.min(latest_between(db, user_id, peer_id).await?);
    dm_reads::Entity::insert(dm_reads::ActiveModel { user_id: Set(user_id), peer_id: Set(peer_id), last_read_id: Set(0) })
        .on_conflict(OnConflict::columns([dm_reads::Column::UserId, dm_reads::Column::PeerId]).do_nothing().to_owned())
        .exec_without_returning(&db.conn)
        .await?;
    let moved = dm_reads::Entity::update_many()
        .col_expr(dm_reads::Column::LastReadId, Expr::value(id))
        .filter(dm_reads::Column::UserId.eq(user_id))
        .filter(dm_reads::Column::PeerId.eq(peer_id))
        .filter(dm_reads::Column::LastReadId.lt(id))
        .exec(&db.conn)
        .await?
        .rows_affected;
    Ok((moved > 0).then_some(id))
}
