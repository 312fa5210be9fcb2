//! Web Push subscriptions: one row per browser endpoint, owned by the account that posted it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// The push service's URL for one browser; posting it again replaces the row.
    #[sea_orm(unique)]
    pub endpoint: String,
    /// The browser's P-256 public key (65 bytes), base64url.
    pub p256dh: String,
    /// The browser's authentication secret (16 bytes), base64url.
    pub auth: String,
    pub device: Option<String>,
    pub created_at: i64,
    /// When a push last reached the push service for it.
    pub last_push_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
