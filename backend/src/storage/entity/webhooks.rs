//! Webhooks: an admin's URL, the events it wants, and its signing secret.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub url: String,
    /// Comma-separated event names (`room.message,dm.message`).
    pub events: String,
    /// Comma-separated room names the room events are limited to; `None`: every room.
    pub rooms: Option<String>,
    /// `whsec_…`; kept as is, since signing needs it.
    pub secret: String,
    pub created_by: i64,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    /// Failed attempts since the last success; at the configured limit the webhook is disabled.
    pub consecutive_failures: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
