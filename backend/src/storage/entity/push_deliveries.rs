//! The Web Push outbox: one row per push per subscription, delivered (and retried) by the
//! push worker, kept a while after it settles so coalescing can see it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub subscription_id: i64,
    /// The recipient, for coalescing per person and conversation.
    pub user_id: i64,
    /// The conversation (`dm:<username>`, `room:<name>`): the coalescing key, and the push's
    /// `Topic` (hashed), so the push service keeps only the newest one of a conversation.
    pub topic: String,
    /// The plaintext JSON (a `PushMessage`), encrypted afresh at each attempt.
    pub body: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub next_attempt_at: Option<i64>,
    /// Set while an instance is attempting the push; another instance waits for it to pass.
    pub lease_until: Option<i64>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
