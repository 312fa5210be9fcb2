//! Who a message mentions: looking the named users up, the members `@room` / `@here` reach,
//! the mention rows an edit changes, and unread mentions per room.
//!
//! A message's rows are written with the message itself (see [`super::append`]); this
//! module reads them and keeps them in step with edits and deletes.

use std::collections::{HashMap, HashSet};

use sea_orm::{ConnectionTrait, FromQueryResult, TransactionTrait};

use super::messages::MentionTargets;
use super::{Db, StorageResult, statement, statement_on};

/// A user a message may mention.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct Candidate {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
}

/// Most names one lookup binds (far under SQLite's and PostgreSQL's limits on parameters).
const CHUNK: usize = 500;

/// The users with these names, regardless of case; one query per [`CHUNK`] names (a message
/// names at most `MAX_MENTIONS`, so one query).
pub async fn by_names(db: &Db, names: &[&str]) -> StorageResult<Vec<Candidate>> {
    let mut out = Vec::new();
    for chunk in names.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("SELECT id, username, is_admin FROM users WHERE username_key IN ({marks})");
        let values = chunk.iter().map(|n| n.to_ascii_lowercase().into()).collect();
        out.extend(Candidate::find_by_statement(statement(db, &sql, values)).all(&db.conn).await?);
    }
    Ok(out)
}

/// Everyone who has joined the room: whom `@room` reaches.
pub async fn members(db: &Db, room_id: i64) -> StorageResult<Vec<Candidate>> {
    let sql = "SELECT u.id AS id, u.username AS username, u.is_admin AS is_admin FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.room_id = ?";
    Ok(Candidate::find_by_statement(statement(db, sql, vec![room_id.into()])).all(&db.conn).await?)
}

/// After an edit: the message's `mentions` columns and rows become `targets`, in one
/// transaction; the users mentioned now who were not before (they are the ones to tell).
pub async fn replace(db: &Db, message_id: i64, room_id: i64, targets: &MentionTargets) -> StorageResult<Vec<i64>> {
    #[derive(FromQueryResult)]
    struct Row {
        user_id: i64,
    }
    let txn = db.conn.begin().await?;
    let backend = txn.get_database_backend();
    // The write first: on SQLite a transaction that reads first and writes later fails at
    // once (SQLITE_BUSY, no busy wait) when another connection committed in between; one
    // that writes first waits for the lock and then reads what is current.
    let set = "UPDATE messages SET mentions = ?, mention_all = ? WHERE id = ?";
    txn.execute(statement_on(backend, set, vec![targets.names_column().into(), targets.all_column().map(str::to_owned).into(), message_id.into()])).await?;
    let before: HashSet<i64> = Row::find_by_statement(statement_on(backend, "SELECT user_id FROM mentions WHERE message_id = ?", vec![message_id.into()]))
        .all(&txn)
        .await?
        .into_iter()
        .map(|r| r.user_id)
        .collect();
    let now: HashSet<i64> = targets.users.iter().copied().collect();
    let gone: Vec<i64> = before.difference(&now).copied().collect();
    for chunk in gone.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut values: Vec<sea_orm::Value> = vec![message_id.into()];
        values.extend(chunk.iter().map(|&u| u.into()));
        txn.execute(statement_on(backend, &format!("DELETE FROM mentions WHERE message_id = ? AND user_id IN ({marks})"), values)).await?;
    }
    let added: Vec<i64> = targets.users.iter().copied().filter(|u| !before.contains(u)).collect();
    for chunk in added.chunks(CHUNK) {
        let rows = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let values = chunk.iter().flat_map(|&u| [sea_orm::Value::from(u), message_id.into(), room_id.into()]).collect();
        txn.execute(statement_on(backend, &format!("INSERT INTO mentions (user_id, message_id, room_id) VALUES {rows}"), values)).await?;
    }
    txn.commit().await?;
    Ok(added)
}

/// Forgets the mention rows of deleted messages (their counts already ignore them).
pub async fn forget(conn: &impl ConnectionTrait, message_ids: &[i64]) -> StorageResult<()> {
    for chunk in message_ids.chunks(CHUNK) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let values = chunk.iter().map(|&id| id.into()).collect();
        conn.execute(statement_on(conn.get_database_backend(), &format!("DELETE FROM mentions WHERE message_id IN ({marks})"), values)).await?;
    }
    Ok(())
}

/// Unread mentions per room for a user: mentions of them in messages after their read
/// cursor (all of them in a room they never joined), deleted messages left out.
pub async fn unread_counts(db: &Db, user_id: i64) -> StorageResult<HashMap<i64, i64>> {
    #[derive(FromQueryResult)]
    struct Row {
        room_id: i64,
        n: i64,
    }
    let rows = Row::find_by_statement(statement(
        db,
        "SELECT x.room_id AS room_id, COUNT(*) AS n FROM mentions x \
         JOIN messages msg ON msg.id = x.message_id AND msg.deleted = ? \
         LEFT JOIN memberships m ON m.user_id = x.user_id AND m.room_id = x.room_id \
         WHERE x.user_id = ? AND (m.last_read_id IS NULL OR x.message_id > m.last_read_id) GROUP BY x.room_id",
        vec![false.into(), user_id.into()],
    ))
    .all(&db.conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.room_id, r.n)).collect())
}
