//! Web Push subscriptions and the push outbox: a person's subscriptions (one row per
//! endpoint, at most a fixed number per person), the pushes queued for them (coalesced per
//! conversation), and the push worker's queue (take the due pushes, lease one, record what
//! happened), in the webhook queue's manner (`super::webhooks`). In memory: the [`Alerts`]
//! handed over for pushes before they are queued, and the worker's wake-up.

use std::sync::{Arc, Mutex};

use confab_shared::push::PushMessage;
use sea_orm::sea_query::Expr;
use tokio::sync::mpsc;
use sea_orm::{ActiveModelTrait, FromQueryResult as _, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait};

use super::entity::{push_deliveries as deliveries, push_subscriptions as subscriptions};
use super::{Db, StorageResult, now_ms};

pub use super::webhooks::{DELIVERED, FAILED, PENDING};

/// The push worker's wake-up, shared by whoever queues pushes; cheap to clone.
#[derive(Clone, Default)]
pub struct PushQueue {
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl PushQueue {
    /// Wakes the push worker: something was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves at the next [`wake`](Self::wake) (or at once, if one came while no one waited).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// Most messages waiting for their pushes ([`Alerts`]); past this, new ones get none.
pub const MAX_WAITING_ALERTS: usize = 4096;

/// Something stored that people with no connection should hear about by Web Push.
pub struct Alert {
    /// Who may hear of it (before the subscription, quiet and presence filters).
    pub to: Arc<[i64]>,
    /// The room of a mention, whose quiet members are skipped; `None` for a private message.
    pub room_id: Option<i64>,
    pub message: PushMessage,
}

/// The queue from the features that store messages to the task that turns them into
/// pushes (`features::push::offline`): handing over never waits; cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    tx: mpsc::Sender<Alert>,
    /// The receiving end, until that task takes it. Locked only to take it, never across
    /// an await.
    rx: Arc<Mutex<Option<mpsc::Receiver<Alert>>>>,
}

impl Default for Alerts {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(MAX_WAITING_ALERTS);
        Self { tx, rx: Arc::new(Mutex::new(Some(rx))) }
    }
}

impl Alerts {
    /// A private message to `to`.
    pub fn dm(&self, to: i64, message: PushMessage) {
        self.hand_over(Alert { to: Arc::new([to]), room_id: None, message });
    }

    /// A room message (or an edit) mentioning `to` in the room `room_id`.
    pub fn mention(&self, room_id: i64, to: Arc<[i64]>, message: PushMessage) {
        if !to.is_empty() {
            self.hand_over(Alert { to, room_id: Some(room_id), message });
        }
    }

    fn hand_over(&self, alert: Alert) {
        match self.tx.try_send(alert) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(alert)) => {
                tracing::warn!(conversation = %alert.message.conversation, "too many pushes waiting; this message gets none");
            }
            // Shutting down.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// The receiving end, for the one task that queues the pushes; `None` once taken.
    pub fn take(&self) -> Option<mpsc::Receiver<Alert>> {
        self.rx.lock().map(|mut rx| rx.take()).unwrap_or(None)
    }
}

/// A subscription to store.
pub struct NewSubscription<'a> {
    pub user_id: i64,
    pub endpoint: &'a str,
    pub p256dh: &'a str,
    pub auth: &'a str,
    pub device: Option<&'a str>,
}

/// What [`subscribe`] did.
pub enum Saved {
    /// Stored (new, or the caller's own endpoint again with fresh keys).
    Stored(subscriptions::Model),
    /// The person already has `max` subscriptions.
    Full,
}

/// Stores a subscription, or replaces the row of the same endpoint (the browser subscribed
/// again, perhaps for another account on the same device: it now belongs to this one, and
/// its pending pushes for the other account are dropped).
pub async fn subscribe(db: &Db, s: NewSubscription<'_>, max: usize) -> StorageResult<Saved> {
    let txn = db.conn.begin().await?;
    let existing = subscriptions::Entity::find().filter(subscriptions::Column::Endpoint.eq(s.endpoint)).one(&txn).await?;
    let row = match existing {
        Some(row) => {
            if row.user_id != s.user_id {
                deliveries::Entity::delete_many().filter(deliveries::Column::SubscriptionId.eq(row.id)).exec(&txn).await?;
            }
            let mut active: subscriptions::ActiveModel = row.into();
            active.user_id = Set(s.user_id);
            active.p256dh = Set(s.p256dh.to_owned());
            active.auth = Set(s.auth.to_owned());
            active.device = Set(s.device.map(str::to_owned));
            active.update(&txn).await?
        }
        None => {
            let count = subscriptions::Entity::find().filter(subscriptions::Column::UserId.eq(s.user_id)).count(&txn).await?;
            if count >= max as u64 {
                return Ok(Saved::Full);
            }
            subscriptions::ActiveModel {
                user_id: Set(s.user_id),
                endpoint: Set(s.endpoint.to_owned()),
                p256dh: Set(s.p256dh.to_owned()),
                auth: Set(s.auth.to_owned()),
                device: Set(s.device.map(str::to_owned)),
                created_at: Set(now_ms()),
                last_push_at: Set(None),
                ..Default::default()
            }
            .insert(&txn)
            .await?
        }
    };
    txn.commit().await?;
    Ok(Saved::Stored(row))
}

/// A person's subscriptions, oldest first.
pub async fn of_user(db: &Db, user_id: i64) -> StorageResult<Vec<subscriptions::Model>> {
    Ok(subscriptions::Entity::find()
        .filter(subscriptions::Column::UserId.eq(user_id))
        .order_by_asc(subscriptions::Column::Id)
        .all(&db.conn)
        .await?)
}

pub async fn by_id(db: &Db, id: i64) -> StorageResult<Option<subscriptions::Model>> {
    Ok(subscriptions::Entity::find_by_id(id).one(&db.conn).await?)
}

/// Removes a subscription and its queued pushes; with `owner`, only if it is theirs.
/// `false` when there was none (or not theirs).
pub async fn unsubscribe(db: &Db, id: i64, owner: Option<i64>) -> StorageResult<bool> {
    let txn = db.conn.begin().await?;
    let mut delete = subscriptions::Entity::delete_many().filter(subscriptions::Column::Id.eq(id));
    if let Some(owner) = owner {
        delete = delete.filter(subscriptions::Column::UserId.eq(owner));
    }
    let gone = delete.exec(&txn).await?.rows_affected == 1;
    if gone {
        deliveries::Entity::delete_many().filter(deliveries::Column::SubscriptionId.eq(id)).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok(gone)
}

/// Of `user_ids`, those with at least one subscription, with their names; with `quiet_in`,
/// not those who keep that room quiet. One query: `user_ids` is bounded by the caller.
pub async fn reachable(db: &Db, user_ids: &[i64], quiet_in: Option<i64>) -> StorageResult<Vec<(i64, String)>> {
    #[derive(sea_orm::FromQueryResult)]
    struct Row {
        id: i64,
        username: String,
    }
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; user_ids.len()].join(",");
    let mut values: Vec<sea_orm::Value> = user_ids.iter().map(|&id| id.into()).collect();
    let mut sql = format!(
        "SELECT u.id AS id, u.username AS username FROM users u WHERE u.id IN ({marks}) \
         AND EXISTS (SELECT 1 FROM push_subscriptions s WHERE s.user_id = u.id)"
    );
    if let Some(room_id) = quiet_in {
        sql.push_str(" AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.room_id = ? AND m.quiet = ?)");
        values.push(room_id.into());
        values.push(true.into());
    }
    let rows = Row::find_by_statement(super::statement(db, &sql, values)).all(&db.conn).await?;
    Ok(rows.into_iter().map(|r| (r.id, r.username)).collect())
}

/// Queues `body` for each of `user_id`'s subscriptions, unless a push of `topic` was queued
/// for them within `window_ms` (coalescing); returns how many pushes were queued.
pub async fn enqueue(db: &Db, user_id: i64, topic: &str, body: &str, window_ms: i64) -> StorageResult<usize> {
    let now = now_ms();
    if window_ms > 0 {
        let recent = deliveries::Entity::find()
            .filter(deliveries::Column::UserId.eq(user_id))
            .filter(deliveries::Column::Topic.eq(topic))
            .filter(deliveries::Column::CreatedAt.gt(now - window_ms))
            .count(&db.conn)
            .await?;
        if recent > 0 {
            return Ok(0);
        }
    }
    let targets = of_user(db, user_id).await?;
    if targets.is_empty() {
        return Ok(0);
    }
    let rows = targets.iter().map(|s| deliveries::ActiveModel {
        subscription_id: Set(s.id),
        user_id: Set(user_id),
        topic: Set(topic.to_owned()),
        body: Set(body.to_owned()),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        http_status: Set(None),
        error: Set(None),
        next_attempt_at: Set(Some(now)),
        lease_until: Set(None),
        created_at: Set(now),
        ..Default::default()
    });
    deliveries::Entity::insert_many(rows).exec(&db.conn).await?;
    Ok(targets.len())
}

/// Up to `limit` pushes due at `now` and not leased, oldest first.
pub async fn due(db: &Db, now: i64, limit: u64) -> StorageResult<Vec<deliveries::Model>> {
    Ok(deliveries::Entity::find()
        .filter(deliveries::Column::Status.eq(PENDING))
        .filter(deliveries::Column::NextAttemptAt.lte(now))
        .filter(deliveries::Column::LeaseUntil.is_null().or(deliveries::Column::LeaseUntil.lt(now)))
        .order_by_asc(deliveries::Column::Id)
        .limit(limit)
        .all(&db.conn)
        .await?)
}

/// When the next pending push becomes due, if any (a leased one: when its lease runs out).
pub async fn next_due(db: &Db) -> StorageResult<Option<i64>> {
    let next = deliveries::Entity::find()
        .filter(deliveries::Column::Status.eq(PENDING))
        .order_by_asc(deliveries::Column::NextAttemptAt)
        .one(&db.conn)
        .await?;
    Ok(next.and_then(|d| match (d.next_attempt_at, d.lease_until) {
        (Some(at), Some(lease)) => Some(at.max(lease)),
        (at, _) => at,
    }))
}

/// Takes a push for an attempt until `lease_until`; `false` when another instance has it.
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

/// Gives a claimed push back untried (shutdown in the middle of an attempt).
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
    /// For a pending push: when to try again.
    pub next_attempt_at: Option<i64>,
}

/// Records an attempt and releases the lease; a delivered push stamps its subscription's
/// `last_push_at`.
pub async fn record(db: &Db, d: &deliveries::Model, outcome: Outcome<'_>) -> StorageResult<()> {
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Attempts, Expr::col(deliveries::Column::Attempts).add(1))
        .col_expr(deliveries::Column::Status, Expr::value(outcome.status))
        .col_expr(deliveries::Column::HttpStatus, Expr::value(outcome.http_status.map(i32::from)))
        .col_expr(deliveries::Column::Error, Expr::value(outcome.error.map(str::to_owned)))
        .col_expr(deliveries::Column::NextAttemptAt, Expr::value(outcome.next_attempt_at))
        .col_expr(deliveries::Column::LeaseUntil, Expr::value(Option::<i64>::None))
        .filter(deliveries::Column::Id.eq(d.id))
        .exec(&db.conn)
        .await?;
    if outcome.status == DELIVERED {
        subscriptions::Entity::update_many()
            .col_expr(subscriptions::Column::LastPushAt, Expr::value(now_ms()))
            .filter(subscriptions::Column::Id.eq(d.subscription_id))
            .exec(&db.conn)
            .await?;
    }
    Ok(())
}

/// Forgets settled pushes created before `before` (coalescing only looks at recent ones).
pub async fn prune(db: &Db, before: i64) -> StorageResult<u64> {
    Ok(deliveries::Entity::delete_many()
        .filter(deliveries::Column::Status.ne(PENDING))
        .filter(deliveries::Column::CreatedAt.lt(before))
        .exec(&db.conn)
        .await?
        .rows_affected)
}
