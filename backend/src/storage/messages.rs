//! Room messages and reactions.

use std::collections::{BTreeMap, HashMap};

use confab_shared::{Message, Timestamp};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait};

use super::entity::{messages, reactions, rooms};
use super::webhook_queue::WebhookQueue;
use confab_shared::webhooks::WebhookEvent;
use super::{Db, StorageResult, now_ms, statement};

/// A message to persist (see [`super::append`] for how batches of them are written).
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub room_id: i64,
    pub author_id: i64,
    pub author: String,
    pub text: String,
    pub nonce: Option<String>,
}

impl NewMessage {
    /// Whether this is a retry of `first`, the message its author already stored under the
    /// same nonce: the same room and the same text. Once `first` has been edited or deleted
    /// its stored text is no longer what was sent, so then only the room is compared.
    pub fn is_retry_of(&self, first: &messages::Model) -> bool {
        first.room_id == self.room_id && (first.text == self.text || first.edited_at.is_some() || first.deleted)
    }

    /// Its wire form once stored now with `id` in `room` (by name).
    pub fn into_wire(self, room: String, id: i64, now: i64) -> Message {
        fresh_wire(id, room, self.author, self.text, now)
    }
}

/// The wire form of a message stored now: the one place it is built from what the sender
/// gave and what the commit returned (nothing is read back).
pub fn fresh_wire(id: i64, room: String, author: String, text: String, now: i64) -> Message {
    Message { id, room, author, text, sent_at: Timestamp::from_millis(now), edited_at: None, deleted: false, reactions: BTreeMap::new() }
}

/// The message an author already sent with this nonce.
pub async fn by_nonce(db: &Db, author_id: i64, nonce: &str) -> StorageResult<Option<messages::Model>> {
    Ok(messages::Entity::find()
        .filter(messages::Column::AuthorId.eq(author_id))
        .filter(messages::Column::Nonce.eq(nonce))
        .one(&db.conn)
        .await?)
}

pub async fn by_id(db: &Db, id: i64) -> StorageResult<Option<messages::Model>> {
    Ok(messages::Entity::find_by_id(id).one(&db.conn).await?)
}

/// Up to `limit` messages before `before` (or the newest), oldest first.
pub async fn history(db: &Db, room_id: i64, before: Option<i64>, limit: u64) -> StorageResult<Vec<messages::Model>> {
    let mut query = messages::Entity::find().filter(messages::Column::RoomId.eq(room_id));
    if let Some(before) = before {
        query = query.filter(messages::Column::Id.lt(before));
    }
    let mut rows = query.order_by_desc(messages::Column::Id).limit(limit).all(&db.conn).await?;
    rows.reverse();
    Ok(rows)
}

/// Up to `limit` messages after `after`, oldest first.
pub async fn after(db: &Db, room_id: i64, after: i64, limit: u64) -> StorageResult<Vec<messages::Model>> {
    Ok(messages::Entity::find()
        .filter(messages::Column::RoomId.eq(room_id))
        .filter(messages::Column::Id.gt(after))
        .order_by_asc(messages::Column::Id)
        .limit(limit)
        .all(&db.conn)
        .await?)
}

/// How many messages a room holds and the newest id (0 for an empty room): the extent of
/// an export, fixed when it starts so later messages do not move its goalposts.
pub async fn extent(db: &Db, room_id: i64) -> StorageResult<(u64, i64)> {
    #[derive(FromQueryResult)]
    struct Extent {
        n: i64,
        last: Option<i64>,
    }
    let row = Extent::find_by_statement(statement(
        db,
        "SELECT COUNT(*) AS n, MAX(id) AS last FROM messages WHERE room_id = ?",
        vec![room_id.into()],
    ))
    .one(&db.conn)
    .await?;
    Ok(row.map_or((0, 0), |r| (u64::try_from(r.n).unwrap_or(0), r.last.unwrap_or(0))))
}

/// Up to `limit` messages with `after < id <= through`, oldest first: one keyset page of an export.
pub async fn page_through(db: &Db, room_id: i64, after: i64, through: i64, limit: u64) -> StorageResult<Vec<messages::Model>> {
    Ok(messages::Entity::find()
        .filter(messages::Column::RoomId.eq(room_id))
        .filter(messages::Column::Id.gt(after))
        .filter(messages::Column::Id.lte(through))
        .order_by_asc(messages::Column::Id)
        .limit(limit)
        .all(&db.conn)
        .await?)
}

/// Replaces a message's text.
pub async fn edit(db: &Db, id: i64, text: &str) -> StorageResult<()> {
    edit_with(db, id, text, &WebhookQueue::default()).await
}

/// [`edit`], enqueueing `message.edited` for webhooks in the same transaction.
pub async fn edit_with(db: &Db, id: i64, text: &str, queue: &WebhookQueue) -> StorageResult<()> {
    let update = messages::Entity::update_many()
        .col_expr(messages::Column::Text, Expr::value(text))
        .col_expr(messages::Column::EditedAt, Expr::value(now_ms()))
        .filter(messages::Column::Id.eq(id));
    if !queue.wants(WebhookEvent::MessageEdited) {
        update.exec(&db.conn).await?;
        return Ok(());
    }
    let txn = db.conn.begin().await?;
    update.exec(&txn).await?;
    let enqueued = queue.message_edited(&txn, id).await?;
    txn.commit().await?;
    if enqueued {
        queue.wake();
    }
    Ok(())
}

/// Soft-deletes a message: the id stays, the text and reactions go.
pub async fn delete(db: &Db, id: i64) -> StorageResult<()> {
    delete_with(db, id, &WebhookQueue::default()).await
}

/// [`delete`], enqueueing `message.deleted` for webhooks in the same transaction.
pub async fn delete_with(db: &Db, id: i64, queue: &WebhookQueue) -> StorageResult<()> {
    let txn = db.conn.begin().await?;
    messages::Entity::update_many()
        .col_expr(messages::Column::Text, Expr::value(""))
        .col_expr(messages::Column::Deleted, Expr::value(true))
        .filter(messages::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    reactions::Entity::delete_many().filter(reactions::Column::MessageId.eq(id)).exec(&txn).await?;
    let enqueued = queue.message_deleted(&txn, id).await?;
    txn.commit().await?;
    if enqueued {
        queue.wake();
    }
    Ok(())
}

/// Adds or removes one user's reaction.
pub async fn react(db: &Db, message_id: i64, user_id: i64, username: &str, emoji: &str, on: bool) -> StorageResult<()> {
    if on {
        reactions::Entity::insert(reactions::ActiveModel {
            message_id: Set(message_id),
            user_id: Set(user_id),
            emoji: Set(emoji.to_owned()),
            username: Set(username.to_owned()),
            created_at: Set(now_ms()),
        })
        .on_conflict(
            OnConflict::columns([reactions::Column::MessageId, reactions::Column::UserId, reactions::Column::Emoji])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&db.conn)
        .await?;
    } else {
        reactions::Entity::delete_many()
            .filter(reactions::Column::MessageId.eq(message_id))
            .filter(reactions::Column::UserId.eq(user_id))
            .filter(reactions::Column::Emoji.eq(emoji))
            .exec(&db.conn)
            .await?;
    }
    Ok(())
}

/// Turns rows into wire messages, loading their reactions and room names in two queries.
pub async fn to_wire(db: &Db, rows: Vec<messages::Model>) -> StorageResult<Vec<Message>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|m| m.id).collect();
    let mut reactions_by_message: HashMap<i64, BTreeMap<String, Vec<String>>> = HashMap::new();
    let found = reactions::Entity::find()
        .filter(reactions::Column::MessageId.is_in(ids))
        .order_by_asc(reactions::Column::CreatedAt)
        .all(&db.conn)
        .await?;
    for r in found {
        reactions_by_message.entry(r.message_id).or_default().entry(r.emoji).or_default().push(r.username);
    }
    let mut room_ids: Vec<i64> = rows.iter().map(|m| m.room_id).collect();
    room_ids.sort_unstable();
    room_ids.dedup();
    let names: HashMap<i64, String> = rooms::Entity::find()
        .filter(rooms::Column::Id.is_in(room_ids))
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    Ok(rows
        .into_iter()
        .map(|m| {
            let room = names.get(&m.room_id).cloned().unwrap_or_default();
            let reactions = reactions_by_message.remove(&m.id).unwrap_or_default();
            wire(m, room, reactions)
        })
        .collect())
}

/// One row as a wire message, given its room name and reactions.
pub fn wire(m: messages::Model, room: String, reactions: BTreeMap<String, Vec<String>>) -> Message {
    Message {
        id: m.id,
        room,
        author: m.author,
        text: m.text,
        sent_at: Timestamp::from_millis(m.sent_at),
        edited_at: m.edited_at.map(Timestamp::from_millis),
        deleted: m.deleted,
        reactions,
    }
}
