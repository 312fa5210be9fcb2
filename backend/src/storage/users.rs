//! Accounts.

use confab_shared::{Timestamp, User};
use confab_shared::webhooks::WebhookEvent;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait};

use crate::features::webhooks::Outbox;

use super::entity::users;
use super::{Db, StorageError, StorageResult, byte_order, now_ms, prefix_end, statement};

impl From<users::Model> for User {
    fn from(m: users::Model) -> Self {
        User { id: m.id, username: m.username, is_admin: m.is_admin, created_at: Timestamp::from_millis(m.created_at) }
    }
}

/// Creates an account; [`StorageError::Duplicate`] when the name is taken (case-insensitively).
pub async fn create(db: &Db, username: &str, password_hash: &str, is_admin: bool) -> StorageResult<users::Model> {
    let row = users::ActiveModel {
        username: Set(username.to_owned()),
        username_key: Set(username.to_ascii_lowercase()),
        password_hash: Set(password_hash.to_owned()),
        is_admin: Set(is_admin),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    row.insert(&db.conn).await.map_err(StorageError::from)
}

/// [`create`] for a signup: `user.signed_up` goes to the webhook outbox in the same
/// transaction when a webhook wants it.
pub async fn sign_up(db: &Db, username: &str, password_hash: &str, outbox: &Outbox) -> StorageResult<users::Model> {
    if !outbox.wants(WebhookEvent::UserSignedUp) {
        return create(db, username, password_hash, false).await;
    }
    let txn = db.conn.begin().await?;
    let row = users::ActiveModel {
        username: Set(username.to_owned()),
        username_key: Set(username.to_ascii_lowercase()),
        password_hash: Set(password_hash.to_owned()),
        is_admin: Set(false),
        created_at: Set(now_ms()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let enqueued = outbox.user_signed_up(&txn, &row).await?;
    txn.commit().await?;
    if enqueued {
        outbox.wake();
    }
    Ok(row)
}

/// Looks a user up by name, case-insensitively. A name that breaks the username rules cannot
/// belong to anyone, so it is not looked up at all: callers pass raw client input (login,
/// `dm.send`, publish targets), and PostgreSQL refuses text containing U+0000 outright.
pub async fn by_name(db: &Db, username: &str) -> StorageResult<Option<users::Model>> {
    if confab_shared::validate::username(username).is_err() {
        return Ok(None);
    }
    Ok(users::Entity::find()
        .filter(users::Column::UsernameKey.eq(username.to_ascii_lowercase()))
        .one(&db.conn)
        .await?)
}

pub async fn by_id(db: &Db, id: i64) -> StorageResult<Option<users::Model>> {
    Ok(users::Entity::find_by_id(id).one(&db.conn).await?)
}

/// Every username, alphabetically (case-insensitive).
pub async fn all_names(db: &Db) -> StorageResult<Vec<String>> {
    Ok(users::Entity::find()
        .select_only()
        .column(users::Column::Username)
        .order_by_asc(users::Column::UsernameKey)
        .into_tuple()
        .all(&db.conn)
        .await?)
}

/// A row for [`create_many`].
pub struct NewUser {
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
}

/// Rows per multi-row `INSERT`/`IN (…)`: well under SQLite's 32 766 and PostgreSQL's 65 535
/// bound parameters, large enough that 100 000 accounts take a hundred statements.
pub const BATCH: usize = 1000;

/// Inserts accounts in multi-row statements inside one transaction (all or nothing); a name
/// already taken (case-insensitively) is left as it is. Returns how many were inserted.
pub async fn create_many(db: &Db, rows: &[NewUser]) -> StorageResult<u64> {
    use sea_orm::TransactionTrait as _;
    use sea_orm::sea_query::OnConflict;
    let now = now_ms();
    let txn = db.conn.begin().await?;
    let mut inserted = 0;
    for batch in rows.chunks(BATCH) {
        let models = batch.iter().map(|row| users::ActiveModel {
            username: Set(row.username.clone()),
            username_key: Set(row.username.to_ascii_lowercase()),
            password_hash: Set(row.password_hash.clone()),
            is_admin: Set(row.is_admin),
            created_at: Set(now),
            ..Default::default()
        });
        let outcome = users::Entity::insert_many(models)
            .on_conflict(OnConflict::column(users::Column::UsernameKey).do_nothing().to_owned())
            .do_nothing()
            .exec_without_returning(&txn)
            .await?;
        if let sea_orm::TryInsertResult::Inserted(n) = outcome {
            inserted += n;
        }
    }
    txn.commit().await?;
    Ok(inserted)
}

/// The accounts among `keys` (lower-cased names) that exist, as `(key, id, name, is_admin)`.
pub async fn by_keys(db: &Db, keys: &[String]) -> StorageResult<Vec<(String, i64, String, bool)>> {
    let mut found = Vec::with_capacity(keys.len());
    for batch in keys.chunks(BATCH) {
        let rows: Vec<(String, i64, String, bool)> = users::Entity::find()
            .select_only()
            .column(users::Column::UsernameKey)
            .column(users::Column::Id)
            .column(users::Column::Username)
            .column(users::Column::IsAdmin)
            .filter(users::Column::UsernameKey.is_in(batch.iter().cloned()))
            .into_tuple()
            .all(&db.conn)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// Usernames whose lowercase key starts with `prefix` and sorts after `after`, in key order,
/// at most `limit`: a keyset page, so rows inserted meanwhile never shift it.
pub async fn page(db: &Db, prefix: &str, after: Option<&str>, limit: u64) -> StorageResult<Vec<String>> {
    #[derive(FromQueryResult)]
    struct Row {
        username: String,
    }
    let c = byte_order(db);
    let mut sql = format!("SELECT username FROM users WHERE username_key{c} >= ? AND username_key{c} < ?");
    let mut values: Vec<sea_orm::Value> = vec![prefix.into(), prefix_end(prefix).into()];
    if let Some(after) = after {
        sql.push_str(&format!(" AND username_key{c} > ?"));
        values.push(after.into());
    }
    sql.push_str(&format!(" ORDER BY username_key{c} LIMIT ?"));
    values.push((limit as i64).into());
    let rows = Row::find_by_statement(statement(db, &sql, values)).all(&db.conn).await?;
    Ok(rows.into_iter().map(|r| r.username).collect())
}

/// Accounts whose lowercase key starts with `prefix`.
pub async fn count(db: &Db, prefix: &str) -> StorageResult<u64> {
    #[derive(FromQueryResult)]
    struct Row {
        n: i64,
    }
    let c = byte_order(db);
    let sql = format!("SELECT COUNT(*) AS n FROM users WHERE username_key{c} >= ? AND username_key{c} < ?");
    let row = Row::find_by_statement(statement(db, &sql, vec![prefix.into(), prefix_end(prefix).into()])).one(&db.conn).await?;
    Ok(row.map_or(0, |r| r.n.max(0) as u64))
}

/// The existing accounts among `names` (any case), as they are spelled, in the order given.
pub async fn existing(db: &Db, names: &[String]) -> StorageResult<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let found: Vec<String> = users::Entity::find()
        .select_only()
        .column(users::Column::Username)
        .filter(users::Column::UsernameKey.is_in(keys.clone()))
        .into_tuple()
        .all(&db.conn)
        .await?;
    let by_key: std::collections::HashMap<String, String> = found.into_iter().map(|n| (n.to_ascii_lowercase(), n)).collect();
    let mut seen = std::collections::HashSet::new();
    Ok(keys.iter().filter_map(|k| by_key.get(k)).filter(|n| seen.insert((*n).clone())).cloned().collect())
}
