//! The webhook delivery queue: one row per event per subscribed webhook, written in the event's own
//! transaction, then delivered (and retried) by the delivery worker.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub webhook_id: i64,
    /// `msg_…`, sent as `webhook-id`; one event shares it across webhooks and retries.
    pub event_id: String,
    pub event_type: String,
    /// Deliveries with the same key (a room, a conversation) go out one at a time, in id order.
    pub ordering_key: String,
    /// The exact JSON body, fixed when the event happened so every retry sends the same bytes.
    pub body: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub next_attempt_at: Option<i64>,
    /// Set while an instance is attempting the delivery; another instance waits for it to pass.
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
