//! Accounts.

use confab_shared::{Timestamp, User};
use confab_shared::webhooks::WebhookEvent;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait};

use super::webhook_queue::WebhookQueue;

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

/// [`create`] for a signup: `user.signed_up` goes to the webhook queue in the same
/// transaction when a webhook wants it.
pub async fn sign_up(db: &Db, username: &str, password_hash: &str, queue: &WebhookQueue) -> StorageResult<users::Model> {
    if !queue.wants(WebhookEvent::UserSignedUp) {
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
    let enqueued = queue.user_signed_up(&txn, &row).await?;
    txn.commit().await?;
    if enqueued {
        queue.wake();
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

/// The names among `names` that belong to accounts, spelled as the accounts spell them, in
/// the order given, without repeats (names match case-insensitively). Every watch asks
/// this for up to its whole set, so names already seen are answered from [`Names`] and only
/// the others are looked up: names are never renamed or removed, so a name once found
/// stays right on every instance.
pub async fn existing(db: &Db, names: &[String]) -> StorageResult<Vec<String>> {
    let keys: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let unknown: Vec<String> = keys.iter().filter(|k| !db.names.known.contains_key(k.as_str())).cloned().collect();
    if !unknown.is_empty() {
        let found: Vec<String> = users::Entity::find()
            .select_only()
            .column(users::Column::Username)
            .filter(users::Column::UsernameKey.is_in(unknown))
            .into_tuple()
            .all(&db.conn)
            .await?;
        for name in found {
            db.names.learn(name);
        }
    }
    let mut seen = std::collections::HashSet::new();
    Ok(keys
        .iter()
        .filter_map(|k| db.names.known.get(k.as_str()).map(|n| n.value().clone()))
        .filter(|n| seen.insert(n.clone()))
        .collect())
}

/// User names seen in the database, by their lower-cased key: the directory
/// [`existing`] answers from. Bounded: past [`Names::MAX`] entries it stops learning
/// (and those names are looked up each time, as before).
#[derive(Debug, Default)]
pub struct Names {
    known: dashmap::DashMap<String, String>,
}

impl Names {
    /// About 120 bytes a name: 24 MB at most.
    const MAX: usize = 200_000;

    /// Fills the directory with the first [`Names::MAX`] accounts (at start: a restart's
    /// reconnecting watchers then find their names without a query each).
    pub async fn load(db: &Db) -> StorageResult<usize> {
        let names: Vec<String> = users::Entity::find()
            .select_only()
            .column(users::Column::Username)
            .order_by_asc(users::Column::Id)
            .limit(Self::MAX as u64)
            .into_tuple()
            .all(&db.conn)
            .await?;
        let loaded = names.len();
        for name in names {
            db.names.learn(name);
        }
        Ok(loaded)
    }

    fn learn(&self, name: String) {
        if self.known.len() < Self::MAX {
            self.known.insert(name.to_ascii_lowercase(), name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db(dir: &tempfile::TempDir) -> Db {
        let db = Db::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("users.db").display())).await.expect("connect");
        db.migrate().await.expect("migrate");
        db
    }

    #[tokio::test]
    async fn existing_names_come_back_as_spelled_and_a_name_unknown_once_is_found_once_it_signs_up() {
        let dir = tempfile::tempdir().expect("temp dir");
        let here = db(&dir).await;
        // A second instance on the same database: its directory does not see our sign-ups.
        let there = db(&dir).await;
        create(&here, "Alice", "hash", false).await.expect("alice");
        let asked = ["alice", "bob", "ALICE", "carol"].map(String::from);
        assert_eq!(existing(&here, &asked).await.expect("existing"), ["Alice"]);
        assert_eq!(existing(&there, &asked).await.expect("existing"), ["Alice"]);

        create(&there, "Bob", "hash", false).await.expect("bob");
        // Loaded at start, a third instance knows both without asking.
        let third = db(&dir).await;
        assert_eq!(Names::load(&third).await.expect("load"), 2);
        third.conn.clone().close().await.expect("close");
        assert_eq!(existing(&third, &["bob".to_owned(), "alice".to_owned()]).await.expect("from the directory"), ["Bob", "Alice"]);
        // `here` asked for bob before he existed: not knowing a name is never remembered.
        assert_eq!(existing(&here, &asked).await.expect("existing"), ["Alice", "Bob"]);
        assert_eq!(existing(&here, &[]).await.expect("existing"), Vec::<String>::new());

        // Names seen once are answered without the database, which `here` no longer has.
        here.conn.clone().close().await.expect("close");
        assert_eq!(existing(&here, &["BOB".to_owned(), "alice".to_owned()]).await.expect("from the directory"), ["Bob", "Alice"]);
        assert!(existing(&here, &["dave".to_owned()]).await.is_err(), "an unknown name needs the database");
    }
}
