//! Direct (one-to-one) messages and their read cursors.

use confab_shared::{DirectMessage, Timestamp};
use sea_orm::sea_query::{Condition, Expr, OnConflict};
use confab_shared::webhooks::WebhookEvent;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait};

use crate::features::webhooks::Outbox;

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

/// Persists a DM; with a nonce already used by the sender, returns the first one and `false`.
/// The webhook outbox gets `dm.message` in the same transaction when a webhook wants it.
pub async fn insert(db: &Db, p: Parties<'_>, text: &str, nonce: Option<&str>, outbox: &Outbox) -> StorageResult<(dm::Model, bool)> {
    if let Some(nonce) = nonce
        && let Some(existing) = by_nonce(db, p.from_id, nonce).await?
    {
        return Ok((existing, false));
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
    let inserted = if outbox.wants(WebhookEvent::DmMessage) {
        insert_announced(db, row, outbox).await
    } else {
        row.insert(&db.conn).await.map_err(StorageError::from)
    };
    match inserted {
        Ok(model) => Ok((model, true)),
        // A concurrent send with the same nonce won the race.
        Err(StorageError::Duplicate) if nonce.is_some() => {
            let nonce = nonce.unwrap_or_default();
            by_nonce(db, p.from_id, nonce).await?.map(|m| (m, false)).ok_or(StorageError::Duplicate)
        }
        Err(other) => Err(other),
    }
}

async fn insert_announced(db: &Db, row: dm::ActiveModel, outbox: &Outbox) -> StorageResult<dm::Model> {
    let txn = db.conn.begin().await?;
    let model = row.insert(&txn).await?;
    let enqueued = outbox.direct_message(&txn, &model).await?;
    txn.commit().await?;
    if enqueued {
        outbox.wake();
    }
    Ok(model)
}

async fn by_nonce(db: &Db, from_id: i64, nonce: &str) -> StorageResult<Option<dm::Model>> {
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

/// Moves the user's cursor in the conversation with `peer_id` forward; `true` when it moved.
pub async fn mark_read(db: &Db, user_id: i64, peer_id: i64, id: i64) -> StorageResult<bool> {
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
    Ok(moved > 0)
}
