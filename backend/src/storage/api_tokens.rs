//! API tokens: create, look up by hash, list, delete, and record when they were last used.

use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set, TransactionTrait};

use super::entity::api_tokens;
use super::{Db, StorageResult, now_ms};

/// A token to store.
pub struct NewToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    /// Comma-separated scope names.
    pub scopes: &'a str,
    pub token_hash: &'a str,
    pub expires_at: Option<i64>,
}

/// Stores a new token, with `audit` (an admin's) in the same transaction.
pub async fn create(db: &Db, t: NewToken<'_>, audit: Option<&super::moderation::Audit>) -> StorageResult<api_tokens::Model> {
    let row = api_tokens::ActiveModel {
        user_id: Set(t.user_id),
        name: Set(t.name.to_owned()),
        scopes: Set(t.scopes.to_owned()),
        token_hash: Set(t.token_hash.to_owned()),
        created_at: Set(now_ms()),
        expires_at: Set(t.expires_at),
        last_used_at: Set(None),
        ..Default::default()
    };
    let txn = db.conn.begin().await?;
    let row = row.insert(&txn).await?;
    if let Some(audit) = audit {
        let mut audit = audit.clone();
        audit.target = Some(format!("token {}", row.id));
        super::moderation::record_on(&txn, &audit).await?;
    }
    txn.commit().await?;
    Ok(row)
}

/// The token whose secret hashes to `token_hash`, expired or not.
pub async fn by_hash(db: &Db, token_hash: &str) -> StorageResult<Option<api_tokens::Model>> {
    Ok(api_tokens::Entity::find().filter(api_tokens::Column::TokenHash.eq(token_hash)).one(&db.conn).await?)
}

/// A user's tokens, oldest first.
pub async fn of_user(db: &Db, user_id: i64) -> StorageResult<Vec<api_tokens::Model>> {
    Ok(api_tokens::Entity::find()
        .filter(api_tokens::Column::UserId.eq(user_id))
        .order_by_asc(api_tokens::Column::Id)
        .all(&db.conn)
        .await?)
}

pub async fn count_of_user(db: &Db, user_id: i64) -> StorageResult<u64> {
    Ok(api_tokens::Entity::find().filter(api_tokens::Column::UserId.eq(user_id)).count(&db.conn).await?)
}

/// Deletes one of `user_id`'s tokens, with `audit` (an admin's) in the same transaction;
/// `false` when there is no such token of theirs.
pub async fn delete(db: &Db, user_id: i64, id: i64, audit: Option<&super::moderation::Audit>) -> StorageResult<bool> {
    let txn = db.conn.begin().await?;
    let deleted = api_tokens::Entity::delete_many()
        .filter(api_tokens::Column::Id.eq(id))
        .filter(api_tokens::Column::UserId.eq(user_id))
        .exec(&txn)
        .await?;
    let gone = deleted.rows_affected == 1;
    if let Some(audit) = audit.filter(|_| gone) {
        super::moderation::record_on(&txn, audit).await?;
    }
    txn.commit().await?;
    Ok(gone)
}

/// Moves `last_used_at` forward (never back) for one token.
pub async fn touch(db: &Db, id: i64, used_at: i64) -> StorageResult<()> {
    api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::LastUsedAt, Expr::value(used_at))
        .filter(api_tokens::Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(api_tokens::Column::LastUsedAt.is_null())
                .add(api_tokens::Column::LastUsedAt.lt(used_at)),
        )
        .exec(&db.conn)
        .await?;
    Ok(())
}
