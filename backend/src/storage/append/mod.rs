//! The hot path of room messages: appending a whole batch in one go.
//!
//! sea-orm builds every other query; this one is written against the drivers underneath,
//! because here the batch is the unit of work and the fixed cost of each statement, each
//! transaction and each hop to a driver thread is most of what a small batch costs.
//!
//! Both backends give the same contract: the rows of a batch commit together or not at all;
//! within a room their sequence numbers follow the batch order without gaps; a nonce its
//! author already used is not inserted again but reported as [`Appended::Repeat`] (found
//! by the unique index, not by a lookup per message); nothing is read back to build the
//! wire form, which the caller already has.
//!
//! A batch also carries its `room.message` webhook deliveries ([`Subscribed`]s, from
//! [`super::webhook_queue::WebhookQueue::room_message_subscriptions`]): for each message some
//! webhook wants, the appender builds the message's wire JSON as soon as its id is known,
//! wraps it in the webhook body and inserts one `webhook_deliveries` row per webhook, in the
//! batch's own transaction: an acknowledged message always has its deliveries, and a batch
//! whose deliveries cannot be written stores no message. The JSON is handed back
//! ([`Written::json`]) so the broadcast and the sender's answer reuse it. With none
//! (no webhook wants `room.message`) nothing of this runs.
//!
//! # Layout
//! - [`sqlite`]: a thread owning one SQLite connection with cached prepared statements and
//!   the rooms' counters in memory (checked against the database on every commit).
//! - [`checkpoint`]: the SQLite log's checkpoints, off the writer's thread, and its rewinds.
//! - [`postgres`]: one statement per batch (`UNNEST` arrays): rooms locked in id order,
//!   counters moved, rows inserted, in a single round trip, so instances sharing the
//!   database stay correct; with subscribed messages, that statement and one `UNNEST` insert of the
//!   deliveries in one transaction.

mod checkpoint;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use confab_shared::webhooks::WebhookEvent;
use confab_shared::Timestamp;

use super::messages::NewMessage;
use super::webhooks as deliveries;
use super::{Db, StorageResult};

/// What became of one message of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored now with this id and per-room sequence number.
    New { id: i64, seq: i64 },
    /// Its author already stored a message with this nonce: nothing was written.
    Repeat,
}

/// A message of a batch that webhooks want (`room.message`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribed {
    /// Its position in the batch.
    pub index: usize,
    /// Its room's name (the wire message and the ordering key carry it).
    pub room: String,
    /// The webhooks that get a delivery of it.
    pub webhooks: Vec<i64>,
}

/// What a batch wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// What became of each message, in batch order.
    pub results: Vec<Appended>,
    /// The wire JSON of each subscribed message stored now, by batch position, ascending: what
    /// its deliveries carry, built once (the broadcast and the answer reuse it).
    pub json: Vec<(usize, Arc<str>)>,
    /// Whether any delivery was written (then the delivery worker is to be woken).
    pub enqueued: bool,
}

impl Written {
    /// Each message's outcome in batch order, with the wire JSON built for it if it was
    /// subscribed and stored now: the batch positions of [`Written::json`] are resolved here.
    pub fn per_message(self) -> impl Iterator<Item = (Appended, Option<Arc<str>>)> {
        let mut json = self.json.into_iter().peekable();
        self.results.into_iter().enumerate().map(move |(index, appended)| (appended, json.next_if(|(i, _)| *i == index).map(|(_, json)| json)))
    }
}

/// The wire form of a message stored now, as JSON: what the `room.message` notification and
/// the `room.send` result carry.
pub fn fresh_json(m: &NewMessage, room: &str, id: i64, now: i64) -> Arc<str> {
    let message = super::messages::fresh_wire(id, room.to_owned(), m.author.clone(), m.text.clone(), m.mentions.clone(), now);
    // Strings, numbers and a string-keyed map: serializing cannot fail.
    serde_json::to_string(&message).unwrap_or_default().into()
}

/// One delivery row of a subscribed message, ready to insert.
struct Outgoing {
    webhook_id: i64,
    event_id: String,
    ordering_key: String,
    body: String,
}

/// The deliveries of a subscribed message stored now with `id`: its JSON and one row per webhook.
fn outgoing(m: &NewMessage, sub: &Subscribed, id: i64, now: i64) -> (Arc<str>, Vec<Outgoing>) {
    let json = fresh_json(m, &sub.room, id, now);
    let body = deliveries::body(WebhookEvent::RoomMessage, Timestamp::from_millis(now), &json);
    let event_id = deliveries::new_event_id();
    let ordering_key = deliveries::room_key(&sub.room);
    let rows = sub
        .webhooks
        .iter()
        .map(|&webhook_id| Outgoing { webhook_id, event_id: event_id.clone(), ordering_key: ordering_key.clone(), body: body.clone() })
        .collect();
    (json, rows)
}

/// One owner of the message writes, whichever database is underneath.
pub enum Appender {
    Sqlite(sqlite::SqliteAppendThread),
    Postgres(postgres::PgAppender),
}

impl Appender {
    /// The appender for `db` (opened on `url`, the URL `db` was connected with).
    pub fn open(db: &Db, url: &str) -> StorageResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(sqlite::SqliteAppendThread::start(url)?))
        } else {
            Ok(Self::Postgres(postgres::PgAppender::new(db)?))
        }
    }

    /// Writes a batch and the deliveries of its `subscribed` (ascending by index) in one
    /// transaction; hands the batch back with what was written.
    pub async fn append(&self, batch: Vec<NewMessage>, subscribed: Vec<Subscribed>, now: i64) -> (Vec<NewMessage>, StorageResult<Written>) {
        match self {
            Self::Sqlite(writer) => writer.append(batch, subscribed, now).await,
            Self::Postgres(pg) => {
                let outcome = pg.append(&batch, &subscribed, now).await;
                (batch, outcome)
            }
        }
    }
}

/// A batch's results from the `(index, id, seq)` of its stored rows: the others are repeats.
fn results_in_order(len: usize, stored: impl IntoIterator<Item = (usize, i64, i64)>) -> Vec<Appended> {
    let mut out = vec![Appended::Repeat; len];
    for (index, id, seq) in stored {
        if let Some(slot) = out.get_mut(index) {
            *slot = Appended::New { id, seq };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hooked_message_is_delivered_as_its_wire_json_inside_the_webhook_body() {
        let m = NewMessage { room_id: 1, author_id: 2, author: "ann".into(), text: "hi \"you\"".into(), nonce: None, mentions: Default::default() };
        let sub = Subscribed { index: 0, room: "lobby".into(), webhooks: vec![4, 9] };
        let (json, rows) = outgoing(&m, &sub, 17, 1_700_000_000_000);
        let wire: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!((wire["id"].clone(), wire["room"].clone(), wire["text"].clone()), (17.into(), "lobby".into(), "hi \"you\"".into()));
        assert_eq!(rows.iter().map(|r| r.webhook_id).collect::<Vec<_>>(), vec![4, 9]);
        assert!(rows.iter().all(|r| r.event_id == rows[0].event_id && r.ordering_key == "room:lobby"), "one event, one room");
        let body: serde_json::Value = serde_json::from_str(&rows[0].body).expect("valid JSON");
        assert_eq!((body["type"].as_str(), &body["data"]), (Some("room.message"), &wire));
    }

    #[test]
    fn each_message_gets_the_json_built_for_it_and_only_its_own() {
        let written = Written {
            results: vec![Appended::New { id: 1, seq: 1 }, Appended::Repeat, Appended::New { id: 2, seq: 2 }, Appended::New { id: 3, seq: 3 }],
            json: vec![(2, "two".into()), (3, "three".into())],
            enqueued: true,
        };
        let got: Vec<(Appended, Option<String>)> = written.per_message().map(|(a, json)| (a, json.map(|j| j.to_string()))).collect();
        assert_eq!(
            got,
            [
                (Appended::New { id: 1, seq: 1 }, None),
                (Appended::Repeat, None),
                (Appended::New { id: 2, seq: 2 }, Some("two".into())),
                (Appended::New { id: 3, seq: 3 }, Some("three".into())),
            ]
        );
    }

    #[test]
    fn messages_missing_from_the_stored_rows_are_repeats() {
        let out = results_in_order(3, [(0, 10, 1), (2, 11, 2)]);
        assert_eq!(out, vec![Appended::New { id: 10, seq: 1 }, Appended::Repeat, Appended::New { id: 11, seq: 2 }]);
    }
}
