//! Login sessions and their rotating refresh tokens.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set, TransactionTrait};

use super::entity::{refresh_tokens, sessions};
use super::{Db, StorageResult, now_ms};

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Rotation {
    /// A fresh token replaced the presented one.
    Rotated { session_id: String, user_id: i64 },
    /// The token had been used before: the session is now revoked.
    Reused { session_id: String },
    /// Unknown, expired, or its session is revoked.
    Invalid,
}

/// Opens a session with its first refresh token (stored hashed).
pub async fn open(db: &Db, session_id: &str, user_id: i64, token_hash: &str, ttl_ms: i64) -> StorageResult<()> {
    let now = now_ms();
    let txn = db.conn.begin().await?;
    sessions::ActiveModel {
        id: Set(session_id.to_owned()),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(now + ttl_ms),
        revoked_at: Set(None),
    }
    .insert(&txn)
    .await?;
    insert_token(&txn, session_id, token_hash, now, now + ttl_ms).await?;
    txn.commit().await?;
    Ok(())
}

async fn insert_token(
    conn: &impl sea_orm::ConnectionTrait,
    session_id: &str,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> StorageResult<()> {
    refresh_tokens::ActiveModel {
        token_hash: Set(token_hash.to_owned()),
        session_id: Set(session_id.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Exchanges a refresh token for `new_hash`, detecting reuse.
pub async fn rotate(db: &Db, old_hash: &str, new_hash: &str, ttl_ms: i64) -> StorageResult<Rotation> {
    let now = now_ms();
    let txn = db.conn.begin().await?;
    // Claim the token with a conditional update first: a write takes the lock up front (no
    // read-to-write upgrade on SQLite), and two racing refreshes cannot both succeed.
    let claimed = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::UsedAt, Expr::value(now))
        .filter(refresh_tokens::Column::TokenHash.eq(old_hash))
        .filter(refresh_tokens::Column::UsedAt.is_null())
        .filter(refresh_tokens::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    let Some(token) = refresh_tokens::Entity::find_by_id(old_hash.to_owned()).one(&txn).await? else {
        return Ok(Rotation::Invalid);
    };
    let session = sessions::Entity::find_by_id(token.session_id.clone()).one(&txn).await?;
    let Some(session) = session.filter(|s| s.revoked_at.is_none() && s.expires_at > now) else {
        txn.commit().await?;
        return Ok(Rotation::Invalid);
    };
    if !claimed {
        if token.expires_at <= now {
            txn.commit().await?;
            return Ok(Rotation::Invalid);
        }
        revoke_in(&txn, &session.id, now).await?;
        txn.commit().await?;
        return Ok(Rotation::Reused { session_id: session.id });
    }
    insert_token(&txn, &session.id, new_hash, now, session.expires_at.min(now + ttl_ms)).await?;
    txn.commit().await?;
    Ok(Rotation::Rotated { session_id: session.id, user_id: session.user_id })
}

async fn revoke_in(conn: &impl sea_orm::ConnectionTrait, session_id: &str, now: i64) -> StorageResult<()> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .filter(sessions::Column::Id.eq(session_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Revokes a session (logout).
pub async fn revoke(db: &Db, session_id: &str) -> StorageResult<()> {
    revoke_in(&db.conn, session_id, now_ms()).await
}

/// The session a refresh token (stored hash) belongs to, used or not: logging out by the
/// web app's cookie, which may hold a token a racing tab already rotated.
pub async fn of_token(db: &Db, token_hash: &str) -> StorageResult<Option<String>> {
    Ok(refresh_tokens::Entity::find_by_id(token_hash.to_owned()).one(&db.conn).await?.map(|token| token.session_id))
}

/// The user a session belongs to, if it exists, is not revoked and has not expired.
pub async fn active_owner(db: &Db, session_id: &str) -> StorageResult<Option<i64>> {
    // Every socket asks at its upgrade: only the three columns it needs.
    let now = now_ms();
    let row: Option<(i64, Option<i64>, i64)> = sessions::Entity::find_by_id(session_id.to_owned())
        .select_only()
        .columns([sessions::Column::UserId, sessions::Column::RevokedAt, sessions::Column::ExpiresAt])
        .into_tuple()
        .one(&db.conn)
        .await?;
    Ok(row.filter(|(_, revoked_at, expires_at)| revoked_at.is_none() && *expires_at > now).map(|(user_id, _, _)| user_id))
}

/// A session for [`open_many`]: its id, its user and the hash of its first refresh token.
pub struct NewSession {
    pub session_id: String,
    pub user_id: i64,
    pub token_hash: String,
}

/// Opens many sessions in multi-row statements inside one transaction (`confab user import
/// --sessions`).
pub async fn open_many(db: &Db, rows: &[NewSession], ttl_ms: i64) -> StorageResult<()> {
    let now = now_ms();
    let txn = db.conn.begin().await?;
    for batch in rows.chunks(super::users::BATCH) {
        let sessions = batch.iter().map(|row| sessions::ActiveModel {
            id: Set(row.session_id.clone()),
            user_id: Set(row.user_id),
            created_at: Set(now),
            expires_at: Set(now + ttl_ms),
            revoked_at: Set(None),
        });
        sessions::Entity::insert_many(sessions).exec_without_returning(&txn).await?;
        let tokens = batch.iter().map(|row| refresh_tokens::ActiveModel {
            token_hash: Set(row.token_hash.clone()),
            session_id: Set(row.session_id.clone()),
            created_at: Set(now),
            expires_at: Set(now + ttl_ms),
            used_at: Set(None),
        });
        refresh_tokens::Entity::insert_many(tokens).exec_without_returning(&txn).await?;
    }
    txn.commit().await?;
    Ok(())
}
