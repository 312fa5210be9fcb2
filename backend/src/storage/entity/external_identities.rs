//! Accounts of trusted issuers: `(issuer, subject)` → `user_id`, written once, never changed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "external_identities")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The issuer's configured `name` (not its `iss`, which an operator may change).
    pub issuer: String,
    /// The user claim's value, as a string (integers in decimal).
    pub subject: String,
    #[sea_orm(unique)]
    pub user_id: i64,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
