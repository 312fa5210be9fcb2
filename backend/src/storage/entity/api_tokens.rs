//! API tokens: long-lived scoped credentials, stored as the SHA-256 of the secret.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// Comma-separated scope names (`read,write`).
    pub scopes: String,
    /// Hex SHA-256 of the whole token; the secret itself is never stored.
    #[sea_orm(unique)]
    pub token_hash: String,
    pub created_at: i64,
    /// `None`: never expires.
    pub expires_at: Option<i64>,
    /// Written in coalesced batches, not on every request.
    pub last_used_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
