//! Accounts.

use confab_shared::{Timestamp, User};
use confab_shared::webhooks::WebhookEvent;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait};

use crate::features::webhooks::Outbox;

use super::entity::users;
use super::{Db, StorageError, StorageResult, now_ms};

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
