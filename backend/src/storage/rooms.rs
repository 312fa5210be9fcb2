//! Rooms, memberships and read cursors.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, Set,
};

use super::entity::{memberships, rooms};
use super::{Db, StorageError, StorageResult, byte_order, now_ms, prefix_end, statement};

pub async fn by_name(db: &Db, name: &str) -> StorageResult<Option<rooms::Model>> {
    Ok(rooms::Entity::find().filter(rooms::Column::Name.eq(name)).one(&db.conn).await?)
}

pub async fn by_id(db: &Db, id: i64) -> StorageResult<Option<rooms::Model>> {
    Ok(rooms::Entity::find_by_id(id).one(&db.conn).await?)
}

/// Creates a room; [`StorageError::Duplicate`] when it exists.
pub async fn create(db: &Db, name: &str, admin_only: bool, created_by: Option<i64>) -> StorageResult<rooms::Model> {
    rooms::ActiveModel {
        name: Set(name.to_owned()),
        admin_only: Set(admin_only),
        created_by: Set(created_by),
        owner_id: Set(created_by),
        created_at: Set(now_ms()),
        last_message_at: Set(None),
        last_seq: Set(0),
        ..Default::default()
    }
    .insert(&db.conn)
    .await
    .map_err(StorageError::from)
}

/// The room, created as a public room when it does not exist yet.
pub async fn get_or_create(db: &Db, name: &str, created_by: i64) -> StorageResult<rooms::Model> {
    if let Some(room) = by_name(db, name).await? {
        return Ok(room);
    }
    match create(db, name, false, Some(created_by)).await {
        // Someone (maybe on another instance) created it between our read and our insert.
        Err(StorageError::Duplicate) => by_name(db, name).await?.ok_or(StorageError::Duplicate),
        other => other,
    }
}

/// Rooms, most recently active first; admin-only rooms only when asked.
pub async fn list(db: &Db, include_admin_only: bool) -> StorageResult<Vec<rooms::Model>> {
    let mut query = rooms::Entity::find();
    if !include_admin_only {
        query = query.filter(rooms::Column::AdminOnly.eq(false));
    }
    let mut rooms = query.order_by_asc(rooms::Column::Name).all(&db.conn).await?;
    rooms.sort_by_key(|r| std::cmp::Reverse(r.last_message_at));
    Ok(rooms)
}

/// Which rooms [`page`] and [`count`] list.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoomQuery<'a> {
    /// Admin-only rooms too.
    pub include_admin_only: bool,
    /// Only names starting with this (empty: every name).
    pub prefix: &'a str,
    /// Only rooms this user is a member of (has joined once).
    pub member: Option<i64>,
}

/// The rooms `query` selects whose name sorts after `after`, by name (byte order), at most
/// `limit`. A keyset page: inserts never shift it.
pub async fn page(db: &Db, query: RoomQuery<'_>, after: Option<&str>, limit: u64) -> StorageResult<Vec<rooms::Model>> {
    let c = byte_order(db);
    let (filter, mut values) = room_filter(c, query);
    let mut sql = format!("SELECT * FROM rooms WHERE {filter}");
    if let Some(after) = after {
        sql.push_str(&format!(" AND name{c} > ?"));
        values.push(after.into());
    }
    sql.push_str(&format!(" ORDER BY name{c} LIMIT ?"));
    values.push((limit as i64).into());
    Ok(rooms::Entity::find().from_raw_sql(statement(db, &sql, values)).all(&db.conn).await?)
}

/// Rooms [`page`] would list, in all.
pub async fn count(db: &Db, query: RoomQuery<'_>) -> StorageResult<u64> {
    #[derive(FromQueryResult)]
    struct Row {
        n: i64,
    }
    let (filter, values) = room_filter(byte_order(db), query);
    let sql = format!("SELECT COUNT(*) AS n FROM rooms WHERE {filter}");
    let row = Row::find_by_statement(statement(db, &sql, values)).one(&db.conn).await?;
    Ok(row.map_or(0, |r| r.n.max(0) as u64))
}

fn room_filter(c: &str, query: RoomQuery<'_>) -> (String, Vec<sea_orm::Value>) {
    let mut filter = format!("name{c} >= ? AND name{c} < ?");
    let mut values: Vec<sea_orm::Value> = vec![query.prefix.into(), prefix_end(query.prefix).into()];
    if !query.include_admin_only {
        filter.push_str(" AND admin_only = ?");
        values.push(false.into());
    }
    if let Some(user_id) = query.member {
        filter.push_str(" AND id IN (SELECT room_id FROM memberships WHERE user_id = ?)");
        values.push(user_id.into());
    }
    (filter, values)
}

/// Records that a user joined a room; a new member starts with everything read.
pub async fn add_member(db: &Db, user_id: i64, room_id: i64) -> StorageResult<()> {
    join_at(db, user_id, room_id, latest_message_id(db, room_id).await?).await
}

/// Records a membership (if there is none yet) with its cursor at `latest`.
async fn join_at(db: &Db, user_id: i64, room_id: i64, latest: i64) -> StorageResult<()> {
    memberships::Entity::insert(memberships::ActiveModel {
        user_id: Set(user_id),
        room_id: Set(room_id),
        joined_at: Set(now_ms()),
        last_read_id: Set(latest),
        quiet: Set(false),
    })
    .on_conflict(OnConflict::columns([memberships::Column::UserId, memberships::Column::RoomId]).do_nothing().to_owned())
    .exec_without_returning(&db.conn)
    .await?;
    Ok(())
}

async fn latest_message_id(db: &Db, room_id: i64) -> StorageResult<i64> {
    #[derive(FromQueryResult)]
    struct Latest {
        id: Option<i64>,
    }
    let row = Latest::find_by_statement(statement(
        db,
        "SELECT MAX(id) AS id FROM messages WHERE room_id = ?",
        vec![room_id.into()],
    ))
    .one(&db.conn)
    .await?;
    Ok(row.and_then(|r| r.id).unwrap_or(0))
}

/// Moves the read cursor forward to `id` (never back), but never past the room's newest
/// message, so an id from the future cannot mark messages read before they exist; the
/// cursor's new place when it moved.
pub async fn mark_read(db: &Db, user_id: i64, room_id: i64, id: i64) -> StorageResult<Option<i64>> {
    let latest = latest_message_id(db, room_id).await?;
    join_at(db, user_id, room_id, latest).await?;
    let id = id.min(latest);
    let moved = memberships::Entity::update_many()
        .col_expr(memberships::Column::LastReadId, Expr::value(id))
        .filter(memberships::Column::UserId.eq(user_id))
        .filter(memberships::Column::RoomId.eq(room_id))
        .filter(memberships::Column::LastReadId.lt(id))
        .exec(&db.conn)
        .await?
        .rows_affected;
    Ok((moved > 0).then_some(id))
}

/// Unread messages per room for a user: others' messages after the read cursor.
pub async fn unread_counts(db: &Db, user_id: i64) -> StorageResult<HashMap<i64, i64>> {
    #[derive(FromQueryResult)]
    struct Row {
        room_id: i64,
        unread: i64,
    }
    let rows = Row::find_by_statement(statement(
        db,
        "SELECT m.room_id AS room_id, COUNT(msg.id) AS unread FROM memberships m \
         JOIN messages msg ON msg.room_id = m.room_id AND msg.id > m.last_read_id \
         AND msg.author_id <> m.user_id AND msg.deleted = ? \
         WHERE m.user_id = ? GROUP BY m.room_id",
        vec![false.into(), user_id.into()],
    ))
    .all(&db.conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.room_id, r.unread)).collect())
}

/// Makes the room quiet for a member (`true`) or not (`false`), joining them first if they
/// were not a member (as `room.read` does).
pub async fn set_quiet(db: &Db, user_id: i64, room_id: i64, quiet: bool) -> StorageResult<()> {
    join_at(db, user_id, room_id, latest_message_id(db, room_id).await?).await?;
    memberships::Entity::update_many()
        .col_expr(memberships::Column::Quiet, Expr::value(quiet))
        .filter(memberships::Column::UserId.eq(user_id))
        .filter(memberships::Column::RoomId.eq(room_id))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// The rooms a user keeps quiet.
pub async fn quiet_rooms(db: &Db, user_id: i64) -> StorageResult<std::collections::HashSet<i64>> {
    use sea_orm::QuerySelect;
    let ids: Vec<i64> = memberships::Entity::find()
        .select_only()
        .column(memberships::Column::RoomId)
        .filter(memberships::Column::UserId.eq(user_id))
        .filter(memberships::Column::Quiet.eq(true))
        .into_tuple()
        .all(&db.conn)
        .await?;
    Ok(ids.into_iter().collect())
}
