//! Webhooks and their delivery queue: CRUD, enqueueing inside an event's transaction, the form of
//! an event's body and id, and the delivery worker's queue (claim the oldest pending
//! delivery per ordering key, record the outcome). The room-message appender
//! ([`super::append`]) writes its deliveries itself, in its batch's transaction, with the
//! [`body`], [`new_event_id`] and [`room_key`] defined here.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};

use confab_shared::Timestamp;
use confab_shared::webhooks::WebhookEvent;

use super::entity::{webhook_deliveries as deliveries, webhooks};
use super::{Db, StorageResult, now_ms, statement};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// A webhook to store.
pub struct NewWebhook<'a> {
    pub url: &'a str,
    pub events: &'a str,
    pub rooms: Option<&'a str>,
    pub secret: &'a str,
    pub created_by: i64,
}

/// Stores a new webhook, with its audit row in the same transaction.
pub async fn create(db: &Db, w: NewWebhook<'_>, audit: &super::moderation::Audit) -> StorageResult<webhooks::Model> {
    let row = webhooks::ActiveModel {
        url: Set(w.url.to_owned()),
        events: Set(w.events.to_owned()),
        rooms: Set(w.rooms.map(str::to_owned)),
        secret: Set(w.secret.to_owned()),
        created_by: Set(w.created_by),
        created_at: Set(now_ms()),
        disabled_at: Set(None),
        disabled_reason: Set(None),
        consecutive_failures: Set(0),
        ..Default::default()
    };
    let txn = db.conn.begin().await?;
    let row = row.insert(&txn).await?;
    let mut audit = audit.clone();
    audit.target = Some(format!("webhook {}", row.id));
    super::moderation::record_on(&txn, &audit).await?;
    txn.commit().await?;
    Ok(row)
}

pub async fn all(db: &Db) -> StorageResult<Vec<webhooks::Model>> {
    Ok(webhooks::Entity::find().order_by_asc(webhooks::Column::Id).all(&db.conn).await?)
}

pub async fn by_id(db: &Db, id: i64) -> StorageResult<Option<webhooks::Model>> {
    Ok(webhooks::Entity::find_by_id(id).one(&db.conn).await?)
}

/// Deletes a webhook and its queued deliveries, with its audit row, in one transaction;
/// `false` when there was none.
pub async fn delete(db: &Db, id: i64, audit: &super::moderation::Audit) -> StorageResult<bool> {
    let txn = db.conn.begin().await?;
    let gone = webhooks::Entity::delete_by_id(id).exec(&txn).await?.rows_affected == 1;
    deliveries::Entity::delete_many().filter(deliveries::Column::WebhookId.eq(id)).exec(&txn).await?;
    if gone {
        super::moderation::record_on(&txn, audit).await?;
    }
    txn.commit().await?;
    Ok(gone)
}

/// Stops deliveries to a webhook, saying why; `false` if it was already disabled.
pub async fn disable(db: &Db, id: i64, reason: &str) -> StorageResult<bool> {
    let changed = webhooks::Entity::update_many()
        .col_expr(webhooks::Column::DisabledAt, Expr::value(now_ms()))
        .col_expr(webhooks::Column::DisabledReason, Expr::value(reason))
        .filter(webhooks::Column::Id.eq(id))
        .filter(webhooks::Column::DisabledAt.is_null())
        .exec(&db.conn)
        .await?;
    Ok(changed.rows_affected == 1)
}

/// Re-enables a webhook with a clean failure count.
pub async fn enable(db: &Db, id: i64) -> StorageResult<()> {
    webhooks::Entity::update_many()
        .col_expr(webhooks::Column::DisabledAt, Expr::value(Option::<i64>::None))
        .col_expr(webhooks::Column::DisabledReason, Expr::value(Option::<String>::None))
        .col_expr(webhooks::Column::ConsecutiveFailures, Expr::value(0))
        .filter(webhooks::Column::Id.eq(id))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// Counts a failed attempt; returns the failures in a row now.
pub async fn count_failure(db: &Db, id: i64) -> StorageResult<i32> {
    webhooks::Entity::update_many()
        .col_expr(webhooks::Column::ConsecutiveFailures, Expr::col(webhooks::Column::ConsecutiveFailures).add(1))
        .filter(webhooks::Column::Id.eq(id))
        .exec(&db.conn)
        .await?;
    Ok(by_id(db, id).await?.map_or(0, |w| w.consecutive_failures))
}

pub async fn reset_failures(db: &Db, id: i64) -> StorageResult<()> {
    webhooks::Entity::update_many()
        .col_expr(webhooks::Column::ConsecutiveFailures, Expr::value(0))
        .filter(webhooks::Column::Id.eq(id))
        .filter(webhooks::Column::ConsecutiveFailures.ne(0))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// The body of an event's POST: `{"type", "timestamp", "data"}` (the shared `WebhookBody`),
/// around `data`, the payload already serialized (for `room.message`, the very JSON the
/// socket notification carries).
pub fn body(event: WebhookEvent, timestamp: Timestamp, data: &str) -> String {
    // A unit enum and a timestamp: serializing cannot fail.
    let event = serde_json::to_string(&event).unwrap_or_default();
    let timestamp = serde_json::to_string(&timestamp).unwrap_or_default();
    format!(r#"{{"type":{event},"timestamp":{timestamp},"data":{data}}}"#)
}

/// A fresh `webhook-id`: one per event, shared by its webhooks and kept across retries.
pub fn new_event_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

/// The ordering key of a room's events: one room, one order, per webhook.
pub fn room_key(room: &str) -> String {
    format!("room:{room}")
}

/// A delivery to enqueue.
pub struct NewDelivery {
    pub webhook_id: i64,
    pub event_id: String,
    pub event_type: &'static str,
    pub ordering_key: String,
    pub body: String,
}

/// Adds deliveries to the delivery queue on `conn`: the event's own transaction.
pub async fn enqueue(conn: &impl ConnectionTrait, rows: Vec<NewDelivery>) -> StorageResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let models = rows.into_iter().map(|d| deliveries::ActiveModel {
        webhook_id: Set(d.webhook_id),
        event_id: Set(d.event_id),
        event_type: Set(d.event_type.to_owned()),
        ordering_key: Set(d.ordering_key),
        body: Set(d.body),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        http_status: Set(None),
        error: Set(None),
        next_attempt_at: Set(Some(now)),
        lease_until: Set(None),
        created_at: Set(now),
        delivered_at: Set(None),
        ..Default::default()
    });
    deliveries::Entity::insert_many(models).exec_without_returning(conn).await?;
    Ok(())
}

/// The heads of the queue: of each (enabled webhook, ordering key), the oldest pending
/// delivery, when it is due and no instance holds it. Later deliveries of the same key wait
/// for it, which keeps each room's events in order per webhook.
const HEADS: &str = "FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
     WHERE d.status = 'pending' AND w.disabled_at IS NULL \
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
     AND e.ordering_key = d.ordering_key AND e.status = 'pending' AND e.id < d.id)";

/// Up to `limit` heads due at `now`, oldest first.
pub async fn due(db: &Db, now: i64, limit: u64) -> StorageResult<Vec<deliveries::Model>> {
    let sql = format!(
        "SELECT d.* {HEADS} AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until < ?) ORDER BY d.id LIMIT {limit}"
    );
    Ok(deliveries::Entity::find().from_raw_sql(statement(db, &sql, vec![now.into(), now.into()])).all(&db.conn).await?)
}

/// When the next head becomes due (or its lease runs out), if any.
pub async fn next_due(db: &Db) -> StorageResult<Option<i64>> {
    #[derive(FromQueryResult)]
    struct Next {
        at: Option<i64>,
    }
    let sql = format!(
        "SELECT MIN(CASE WHEN d.lease_until IS NOT NULL AND d.lease_until > d.next_attempt_at THEN d.lease_until ELSE d.next_attempt_at END) AS at {HEADS}"
    );
    Ok(Next::find_by_statement(statement(db, &sql, vec![])).one(&db.conn).await?.and_then(|n| n.at))
}

/// Takes a delivery for an attempt until `lease_until`; `false` when another instance has it.
pub async fn claim(db: &Db, id: i64, now: i64, lease_until: i64) -> StorageResult<bool> {
    let claimed = deliveries::Entity::update_many()
        .col_expr(deliveries::Column::LeaseUntil, Expr::value(lease_until))
        .filter(deliveries::Column::Id.eq(id))
        .filter(deliveries::Column::Status.eq(PENDING))
        .filter(deliveries::Column::LeaseUntil.is_null().or(deliveries::Column::LeaseUntil.lt(now)))
        .exec(&db.conn)
        .await?;
    Ok(claimed.rows_affected == 1)
}

/// Gives a claimed delivery back untried (shutdown in the middle of an attempt).
pub async fn release(db: &Db, id: i64) -> StorageResult<()> {
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::LeaseUntil, Expr::value(Option::<i64>::None))
        .filter(deliveries::Column::Id.eq(id))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// How an attempt ended.
pub struct Outcome<'a> {
    pub status: &'static str,
    pub http_status: Option<u16>,
    pub error: Option<&'a str>,
    /// For a pending delivery: when to try again.
    pub next_attempt_at: Option<i64>,
}

/// Records an attempt and releases the lease.
pub async fn record(db: &Db, id: i64, outcome: Outcome<'_>) -> StorageResult<()> {
    let now = now_ms();
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Attempts, Expr::col(deliveries::Column::Attempts).add(1))
        .col_expr(deliveries::Column::Status, Expr::value(outcome.status))
        .col_expr(deliveries::Column::HttpStatus, Expr::value(outcome.http_status.map(i32::from)))
        .col_expr(deliveries::Column::Error, Expr::value(outcome.error.map(str::to_owned)))
        .col_expr(deliveries::Column::NextAttemptAt, Expr::value(outcome.next_attempt_at))
        .col_expr(deliveries::Column::LeaseUntil, Expr::value(Option::<i64>::None))
        .col_expr(deliveries::Column::DeliveredAt, Expr::value((outcome.status == DELIVERED).then_some(now)))
        .filter(deliveries::Column::Id.eq(id))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// A webhook's most recent deliveries, newest first.
pub async fn recent(db: &Db, webhook_id: i64, limit: u64) -> StorageResult<Vec<deliveries::Model>> {
    Ok(deliveries::Entity::find()
        .filter(deliveries::Column::WebhookId.eq(webhook_id))
        .order_by_desc(deliveries::Column::Id)
        .limit(limit)
        .all(&db.conn)
        .await?)
}

pub async fn delivery(db: &Db, webhook_id: i64, id: i64) -> StorageResult<Option<deliveries::Model>> {
    Ok(deliveries::Entity::find_by_id(id)
        .filter(deliveries::Column::WebhookId.eq(webhook_id))
        .one(&db.conn)
        .await?)
}

/// Makes a delivery pending and due now (the admin's retry), keeping its attempt count.
pub async fn reschedule(db: &Db, id: i64) -> StorageResult<()> {
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Status, Expr::value(PENDING))
        .col_expr(deliveries::Column::NextAttemptAt, Expr::value(now_ms()))
        .col_expr(deliveries::Column::DeliveredAt, Expr::value(Option::<i64>::None))
        .filter(deliveries::Column::Id.eq(id))
        .exec(&db.conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use confab_shared::webhooks::WebhookBody;

    use super::*;

    #[test]
    fn the_body_is_the_shared_webhook_body_around_the_given_payload() {
        let data = r#"{"id":7,"text":"hi \"there\""}"#;
        let at = Timestamp::from_millis(1_700_000_000_123);
        let ours: serde_json::Value = serde_json::from_str(&body(WebhookEvent::RoomMessage, at, data)).expect("valid JSON");
        let theirs = WebhookBody {
            event_type: WebhookEvent::RoomMessage,
            timestamp: at,
            data: serde_json::from_str(data).expect("valid JSON"),
        };
        assert_eq!(ours, serde_json::to_value(&theirs).expect("serializable"));
    }
}
