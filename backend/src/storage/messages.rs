//! Room messages and reactions.

use std::collections::{BTreeMap, HashMap};

use confab_shared::validate::{MAX_DISTINCT_REACTIONS, MAX_REACTIONS};
use confab_shared::{MentionAll, Message, Timestamp};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use super::entity::{messages, reactions, rooms};
use super::webhook_queue::WebhookQueue;
use confab_shared::webhooks::WebhookEvent;
use super::{Db, StorageResult, byte_order, now_ms, statement};

/// A message to persist (see [`super::append`] for how batches of them are written).
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub room_id: i64,
    pub author_id: i64,
    pub author: String,
    pub text: String,
    pub nonce: Option<String>,
    /// Whom it mentions, resolved before it is queued.
    pub mentions: MentionTargets,
}

/// Whom a message mentions, once resolved against the users and the room: what its row and
/// its wire form show, and who gets a mention row and a `mention` notification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MentionTargets {
    /// The wire's `mentions`: the named users, spelled as they spell their names.
    pub names: Vec<String>,
    /// The wire's `mention_all`, when `@room` / `@here` counted.
    pub all: Option<MentionAll>,
    /// Everyone mentioned (the named users and, for `@room` / `@here`, the members), by id,
    /// distinct, never the author.
    pub users: Vec<i64>,
}

impl MentionTargets {
    /// The `mentions` column: the names separated by spaces (no username holds one).
    pub fn names_column(&self) -> Option<String> {
        (!self.names.is_empty()).then(|| self.names.join(" "))
    }

    /// The `mention_all` column.
    pub fn all_column(&self) -> Option<&'static str> {
        self.all.map(|all| match all {
            MentionAll::Room => "room",
            MentionAll::Here => "here",
        })
    }
}

/// The wire's `mentions` and `mention_all` from a row's columns.
fn mentions_of(m: &messages::Model) -> (Vec<String>, Option<MentionAll>) {
    if m.deleted {
        return (Vec::new(), None);
    }
    let names = m.mentions.as_deref().map(|n| n.split(' ').filter(|n| !n.is_empty()).map(str::to_owned).collect()).unwrap_or_default();
    let all = match m.mention_all.as_deref() {
        Some("room") => Some(MentionAll::Room),
        Some("here") => Some(MentionAll::Here),
        _ => None,
    };
    (names, all)
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
        fresh_wire(id, room, self.author, self.text, self.mentions, now)
    }
}

/// The wire form of a message stored now: the one place it is built from what the sender
/// gave and what the commit returned (nothing is read back).
pub fn fresh_wire(id: i64, room: String, author: String, text: String, mentions: MentionTargets, now: i64) -> Message {
    Message {
        id,
        room,
        author,
        text,
        sent_at: Timestamp::from_millis(now),
        edited_at: None,
        deleted: false,
        reactions: BTreeMap::new(),
        mentions: mentions.names,
        mention_all: mentions.all,
    }
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

/// The messages with these ids (those that exist), in no particular order.
pub async fn by_ids(db: &Db, ids: &[i64]) -> StorageResult<Vec<messages::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(messages::Entity::find().filter(messages::Column::Id.is_in(ids.iter().copied())).all(&db.conn).await?)
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

/// Catching up on many rooms in one query: the messages after each named room's last-seen id,
/// for the rooms that exist and (`include_admin_only` false) are public, in room-name order
/// (byte order) then id order, at most `per_room` of one room and `limit` in all.
///
/// Each room contributes a prefix of what it has after its id, so a caller that stops anywhere
/// can resume from the newest id it got per room. The cost is bounded by the rooms named times
/// `per_room` index entries, whatever the rooms hold: each room's range ends at its
/// `per_room`-th new message (one index probe), and only the `limit` rows kept are read.
pub async fn after_in_rooms(
    db: &Db,
    wanted: &[(&str, i64)],
    include_admin_only: bool,
    per_room: u64,
    limit: u64,
) -> StorageResult<Vec<messages::Model>> {
    if wanted.is_empty() || per_room == 0 || limit == 0 {
        return Ok(Vec::new());
    }
    let c = byte_order(db);
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(wanted.len() * 2 + 4);
    let rows = vec!["(?, ?)"; wanted.len()].join(", ");
    for (name, after) in wanted {
        values.push((*name).into());
        values.push((*after).into());
    }
    // The values in the order of their placeholders: the pairs, the OFFSET, the admin filter,
    // the LIMIT.
    values.push((per_room as i64 - 1).into());
    let public_only = if include_admin_only { "" } else { " AND r.admin_only = ?" };
    if !include_admin_only {
        values.push(false.into());
    }
    values.push((limit as i64).into());
    // `bounds` is materialised so that each room's end is looked up once, not once per
    // message row the outer join considers (PostgreSQL would inline a plain CTE).
    let sql = format!(
        "WITH wanted(name, after_id) AS (VALUES {rows}), \
         bounds AS MATERIALIZED ( \
           SELECT r.id AS room_id, r.name AS name, w.after_id AS after_id, \
             (SELECT x.id FROM messages x WHERE x.room_id = r.id AND x.id > w.after_id ORDER BY x.id LIMIT 1 OFFSET ?) AS upto \
           FROM wanted w JOIN rooms r ON r.name = w.name{public_only}) \
         SELECT m.* FROM messages m JOIN rooms rr ON rr.id = m.room_id WHERE m.id IN ( \
           SELECT n.id FROM bounds b JOIN messages n ON n.room_id = b.room_id AND n.id > b.after_id \
             AND (b.upto IS NULL OR n.id <= b.upto) \
           ORDER BY b.name{c}, n.id LIMIT ?) \
         ORDER BY rr.name{c}, m.id"
    );
    Ok(messages::Entity::find().from_raw_sql(statement(db, &sql, values)).all(&db.conn).await?)
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
    delete_with(db, id, &WebhookQueue::default(), None).await
}

/// [`delete`], enqueueing `message.deleted` for webhooks and writing `audit` (a moderator's
/// delete) in the same transaction.
pub async fn delete_with(db: &Db, id: i64, queue: &WebhookQueue, audit: Option<&super::moderation::Audit>) -> StorageResult<()> {
    let txn = db.conn.begin().await?;
    messages::Entity::update_many()
        .col_expr(messages::Column::Text, Expr::value(""))
        .col_expr(messages::Column::Deleted, Expr::value(true))
        .filter(messages::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    reactions::Entity::delete_many().filter(reactions::Column::MessageId.eq(id)).exec(&txn).await?;
    super::mentions::forget(&txn, &[id]).await?;
    if let Some(audit) = audit {
        super::moderation::record_on(&txn, audit).await?;
    }
    let enqueued = queue.message_deleted(&txn, id).await?;
    txn.commit().await?;
    if enqueued {
        queue.wake();
    }
    Ok(())
}

/// What [`react`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reacted {
    /// The reaction was added or removed; `count` users have reacted with the emoji now.
    Changed { count: u32 },
    /// Nothing to do: the reaction was there already (or gone already).
    Unchanged { count: u32 },
    /// Refused: the message has [`MAX_DISTINCT_REACTIONS`] other emoji.
    TooManyEmoji,
    /// Refused: the message has [`MAX_REACTIONS`] reactions.
    TooManyReactions,
}

/// Adds a reaction only while the message stays within both caps: fewer than
/// [`MAX_REACTIONS`] reactions, and the emoji already there or fewer than
/// [`MAX_DISTINCT_REACTIONS`] distinct ones. One statement, so the check and the insert are
/// one step (SQLite runs one writer at a time; PostgreSQL also locks the message row first).
const REACT_WITHIN_CAPS: &str = "INSERT INTO reactions (message_id, user_id, emoji, username, created_at) \
     SELECT ?, ?, ?, ?, ? \
     WHERE (SELECT COUNT(*) FROM reactions WHERE message_id = ?) < ? \
       AND (EXISTS (SELECT 1 FROM reactions WHERE message_id = ? AND emoji = ?) \
            OR (SELECT COUNT(DISTINCT emoji) FROM reactions WHERE message_id = ?) < ?) \
     ON CONFLICT (message_id, user_id, emoji) DO NOTHING";

/// Adds or removes one user's reaction, within the caps of a message.
pub async fn react(db: &Db, message_id: i64, user_id: i64, username: &str, emoji: &str, on: bool) -> StorageResult<Reacted> {
    let changed = if on {
        let values: Vec<sea_orm::Value> = vec![
            message_id.into(),
            user_id.into(),
            emoji.into(),
            username.into(),
            now_ms().into(),
            message_id.into(),
            (MAX_REACTIONS as i64).into(),
            message_id.into(),
            emoji.into(),
            message_id.into(),
            (MAX_DISTINCT_REACTIONS as i64).into(),
        ];
        let insert = statement(db, REACT_WITHIN_CAPS, values);
        let added = if db.backend() == DbBackend::Postgres {
            // Two concurrent reactions would each count the other's absence and pass a cap.
            let txn = db.conn.begin().await?;
            txn.execute(statement(db, "SELECT id FROM messages WHERE id = ? FOR UPDATE", vec![message_id.into()])).await?;
            let added = txn.execute(insert).await?.rows_affected();
            txn.commit().await?;
            added
        } else {
            db.conn.execute(insert).await?.rows_affected()
        };
        if added == 0 && !has_reaction(db, message_id, user_id, emoji).await? {
            let (total, _) = reaction_counts(db, message_id, emoji).await?;
            return Ok(if total >= MAX_REACTIONS as u64 { Reacted::TooManyReactions } else { Reacted::TooManyEmoji });
        }
        added > 0
    } else {
        let removed = reactions::Entity::delete_many()
            .filter(reactions::Column::MessageId.eq(message_id))
            .filter(reactions::Column::UserId.eq(user_id))
            .filter(reactions::Column::Emoji.eq(emoji))
            .exec(&db.conn)
            .await?;
        removed.rows_affected > 0
    };
    let (_, of_emoji) = reaction_counts(db, message_id, emoji).await?;
    let count = u32::try_from(of_emoji).unwrap_or(u32::MAX);
    Ok(if changed { Reacted::Changed { count } } else { Reacted::Unchanged { count } })
}

async fn has_reaction(db: &Db, message_id: i64, user_id: i64, emoji: &str) -> StorageResult<bool> {
    Ok(reactions::Entity::find_by_id((message_id, user_id, emoji.to_owned())).one(&db.conn).await?.is_some())
}

/// A message's reactions in all, and those with `emoji`.
async fn reaction_counts(db: &Db, message_id: i64, emoji: &str) -> StorageResult<(u64, u64)> {
    #[derive(FromQueryResult)]
    struct Counts {
        total: i64,
        of_emoji: Option<i64>,
    }
    let row = Counts::find_by_statement(statement(
        db,
        "SELECT COUNT(*) AS total, SUM(CASE WHEN emoji = ? THEN 1 ELSE 0 END) AS of_emoji FROM reactions WHERE message_id = ?",
        vec![emoji.into(), message_id.into()],
    ))
    .one(&db.conn)
    .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(row.map_or((0, 0), |r| (count(r.total), count(r.of_emoji.unwrap_or(0)))))
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
    let mut counted: HashMap<i64, usize> = HashMap::new();
    for r in found {
        // The caps hold for whatever the table holds (reactions stored before there were any
        // caps included), so a message never outgrows `Message::MAX_JSON_BYTES`: the oldest
        // reactions are kept.
        let total = counted.entry(r.message_id).or_default();
        let emoji = reactions_by_message.entry(r.message_id).or_default();
        if *total >= MAX_REACTIONS || (emoji.len() >= MAX_DISTINCT_REACTIONS && !emoji.contains_key(&r.emoji)) {
            continue;
        }
        *total += 1;
        emoji.entry(r.emoji).or_default().push(r.username);
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
    let (mentions, mention_all) = mentions_of(&m);
    Message {
        id: m.id,
        room,
        author: m.author,
        text: m.text,
        sent_at: Timestamp::from_millis(m.sent_at),
        edited_at: m.edited_at.map(Timestamp::from_millis),
        deleted: m.deleted,
        reactions,
        mentions,
        mention_all,
    }
}
