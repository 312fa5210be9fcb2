//! The webhook delivery queue: the calls that enqueue events for webhooks, inside the
//! event's own transaction (the rows live in `webhook_deliveries`).
//!
//! [`WebhookQueue`] keeps the enabled webhooks in memory, so each of those calls first asks "does any
//! webhook want this event?" with one atomic load: with no webhook configured (or none for
//! that event) such a call does no work at all, not even a query. Otherwise it builds the
//! event's body once (the same typed payload as the socket notification) and inserts one
//! delivery row per subscribed webhook on the transaction it was given, so the event and
//! its deliveries commit together or not at all. It returns whether it enqueued
//! anything; if so, the caller calls [`WebhookQueue::wake`] after the commit.
//!
//! Room messages are the exception in form, not in guarantee: they are written in batches
//! by the appender ([`super::append`]) outside sea-orm, so
//! [`WebhookQueue::room_message_subscriptions`] only says which webhooks want which message of a batch,
//! and the appender inserts those deliveries in the batch's own transaction (the body built
//! from the message's wire JSON, the one the socket notification carries).
//!
//! The in-memory list is reloaded when this instance changes a webhook and every
//! [`RELOAD_EVERY`], so another instance's changes apply here within that interval.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use confab_shared::rpc::notify::MessageRef;
use confab_shared::webhooks::WebhookEvent;
use confab_shared::{DirectMessage, Timestamp, User};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use tokio::sync::Notify;

use super::append::Subscribed;
use super::entity::{direct_messages, messages, reactions, rooms, users};
use super::webhooks::{self as store, NewDelivery, room_key};
use super::{Db, StorageResult, now_ms};

/// How often the list of webhooks is re-read, to pick up other instances' changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(10);

fn bit(event: WebhookEvent) -> u8 {
    1 << (event as u8)
}

/// One enabled webhook, as the enqueuing calls need it.
struct Subscriber {
    id: i64,
    events: u8,
    /// Room events only from these rooms; `None`: every room.
    rooms: Option<HashSet<String>>,
}

/// The handle the write paths and the worker share; cheap to clone.
#[derive(Clone, Default)]
pub struct WebhookQueue {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    // Swapped whole on reload; never held across an `.await`.
    subscribers: RwLock<Arc<Vec<Subscriber>>>,
    /// The union of the subscribers' events: the enqueuing calls' one-load fast path.
    wanted: AtomicU8,
    wake: Notify,
}

impl WebhookQueue {
    /// Re-reads the enabled webhooks.
    pub async fn reload(&self, db: &Db) -> StorageResult<()> {
        let rows = store::all(db).await?;
        let subscribers: Vec<Subscriber> = rows
            .into_iter()
            .filter(|w| w.disabled_at.is_none())
            .map(|w| Subscriber {
                id: w.id,
                events: w.events.split(',').filter_map(WebhookEvent::parse).fold(0, |bits, e| bits | bit(e)),
                rooms: w.rooms.map(|list| list.split(',').map(str::to_owned).collect()),
            })
            .collect();
        let wanted = subscribers.iter().fold(0, |bits, s| bits | s.events);
        if let Ok(mut current) = self.inner.subscribers.write() {
            *current = Arc::new(subscribers);
        }
        self.inner.wanted.store(wanted, Ordering::Release);
        Ok(())
    }

    /// Whether any enabled webhook subscribes to `event`.
    pub fn wants(&self, event: WebhookEvent) -> bool {
        self.inner.wanted.load(Ordering::Acquire) & bit(event) != 0
    }

    fn targets(&self, event: WebhookEvent, room: Option<&str>) -> Vec<i64> {
        let Ok(subscribers) = self.inner.subscribers.read().map(|s| Arc::clone(&s)) else { return Vec::new() };
        subscribers
            .iter()
            .filter(|s| s.events & bit(event) != 0)
            .filter(|s| match (&s.rooms, room) {
                (Some(rooms), Some(room)) if event.is_room_event() => rooms.contains(room),
                _ => true,
            })
            .map(|s| s.id)
            .collect()
    }

    /// Enqueues one event for every webhook that wants it.
    async fn add(&self, conn: &impl ConnectionTrait, event: WebhookEvent, room: Option<&str>, key: String, data: serde_json::Value) -> StorageResult<bool> {
        let targets = self.targets(event, room);
        if targets.is_empty() {
            return Ok(false);
        }
        // Plain data without non-string map keys: serializing cannot fail.
        let data = serde_json::to_string(&data).unwrap_or_default();
        let body = store::body(event, Timestamp::from_millis(now_ms()), &data);
        let event_id = store::new_event_id();
        let rows = targets
            .into_iter()
            .map(|webhook_id| NewDelivery {
                webhook_id,
                event_id: event_id.clone(),
                event_type: event.as_str(),
                ordering_key: key.clone(),
                body: body.clone(),
            })
            .collect();
        store::enqueue(conn, rows).await?;
        Ok(true)
    }

    /// The `room.message` deliveries of a batch whose messages go to `rooms` (in batch
    /// order): one [`Subscribed`] per message some webhook wants, for the appender to write in the
    /// batch's transaction. With no webhook for `room.message`, one atomic load and nothing
    /// else.
    pub fn room_message_subscriptions<'a>(&self, rooms: impl IntoIterator<Item = &'a str>) -> Vec<Subscribed> {
        if !self.wants(WebhookEvent::RoomMessage) {
            return Vec::new();
        }
        let mut by_room: HashMap<&str, Vec<i64>> = HashMap::new();
        let mut subscribed = Vec::new();
        for (index, room) in rooms.into_iter().enumerate() {
            let webhooks = by_room.entry(room).or_insert_with(|| self.targets(WebhookEvent::RoomMessage, Some(room)));
            if !webhooks.is_empty() {
                subscribed.push(Subscribed { index, room: room.to_owned(), webhooks: webhooks.clone() });
            }
        }
        subscribed
    }

    /// Enqueues for an edit: message `id` was just updated on `txn`.
    pub async fn message_edited(&self, txn: &impl ConnectionTrait, id: i64) -> StorageResult<bool> {
        if !self.wants(WebhookEvent::MessageEdited) {
            return Ok(false);
        }
        let Some(row) = messages::Entity::find_by_id(id).one(txn).await? else { return Ok(false) };
        let room = room_names(txn, vec![row.room_id]).await?.remove(&row.room_id).unwrap_or_default();
        let mut by_emoji: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let found = reactions::Entity::find()
            .filter(reactions::Column::MessageId.eq(id))
            .order_by_asc(reactions::Column::CreatedAt)
            .all(txn)
            .await?;
        for r in found {
            by_emoji.entry(r.emoji).or_default().push(r.username);
        }
        let wire = super::messages::wire(row, room.clone(), by_emoji);
        self.add(txn, WebhookEvent::MessageEdited, Some(&room), room_key(&room), json(&wire)).await
    }

    /// Enqueues for a delete: message `id` was just deleted on `txn`.
    pub async fn message_deleted(&self, txn: &impl ConnectionTrait, id: i64) -> StorageResult<bool> {
        if !self.wants(WebhookEvent::MessageDeleted) {
            return Ok(false);
        }
        let Some(row) = messages::Entity::find_by_id(id).one(txn).await? else { return Ok(false) };
        let room = room_names(txn, vec![row.room_id]).await?.remove(&row.room_id).unwrap_or_default();
        let data = json(&MessageRef { id, room: room.clone() });
        self.add(txn, WebhookEvent::MessageDeleted, Some(&room), room_key(&room), data).await
    }

    /// Enqueues for a private message: `row` was just inserted on `txn`.
    pub async fn direct_message(&self, txn: &impl ConnectionTrait, row: &direct_messages::Model) -> StorageResult<bool> {
        let (low, high) = (row.from_id.min(row.to_id), row.from_id.max(row.to_id));
        self.add(txn, WebhookEvent::DmMessage, None, format!("dm:{low}:{high}"), json(&DirectMessage::from(row.clone()))).await
    }

    /// Enqueues for a signup: `row` was just inserted on `txn`.
    pub async fn user_signed_up(&self, txn: &impl ConnectionTrait, row: &users::Model) -> StorageResult<bool> {
        self.add(txn, WebhookEvent::UserSignedUp, None, format!("user:{}", row.id), json(&User::from(row.clone()))).await
    }

    /// Wakes the delivery worker: after committing a transaction something was enqueued on, or
    /// after scheduling a retry.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Resolves at the next [`wake`](Self::wake) (or at once, if one came while no one waited).
    pub async fn woken(&self) {
        self.inner.wake.notified().await;
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

async fn room_names(conn: &impl ConnectionTrait, mut ids: Vec<i64>) -> StorageResult<std::collections::HashMap<i64, String>> {
    ids.sort_unstable();
    ids.dedup();
    Ok(rooms::Entity::find()
        .filter(rooms::Column::Id.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect())
}
