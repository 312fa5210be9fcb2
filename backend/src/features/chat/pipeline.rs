//! Group commit for room messages: each `room.send` is one [`Pending`] from the queue to its
//! answer.
//!
//! Every `room.send` on this instance goes through one queue to one owner of the message
//! writes, which takes whatever has queued up (up to [`MAX_BATCH`]), appends it in a single
//! transaction, and only then broadcasts each message, in id order, before answering the
//! senders. Under light load a batch is one message; under heavy load the per-commit cost
//! is shared by the whole batch.
//!
//! The owner is one task; the database work of a batch is one call to the
//! [`Appender`] (on SQLite a hop to the thread that holds the write connection, on
//! PostgreSQL one statement, see [`crate::storage::append`]). What follows a commit runs in
//! the task ([`deliver`]): each message is built in memory from what the sender gave and
//! what the commit returned, serialized once, and that JSON is both the `room.message`
//! broadcast and the `result` of the sender's response.
//!
//! The people a message mentions get a `mention` notification on their connections, and
//! those with none are handed over for a push ([`Alerts`]) (which never makes the batch wait).
//!
//! `room.message` webhooks ride along: before the append the batch asks the [`WebhookQueue`]
//! which webhooks want which message (one atomic load when none does), and the appender
//! writes those deliveries in the batch's own transaction, so an acknowledged message always
//! has them, even across a crash. A subscribed message's JSON is serialized there, once, and
//! reused here; after the commit the delivery worker is woken.
//!
//! A nonce identifies one message of its author: a message repeating a nonce with the same
//! room and text is a retry and gets the first message as its answer (whether that one is in
//! the same batch or was stored before); a nonce reused for a different message is refused
//! with -32009 and stores nothing (the unique index keeps it out in either case).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use confab_shared::Message;
use confab_shared::push::{PushKind, PushMessage};
use tokio::sync::{mpsc, oneshot};

use crate::error::{AppError, AppResult};
use crate::storage::push::Alerts;
use crate::storage::webhook_queue::WebhookQueue;
use crate::layer::{ChannelLayer, Class, Delivery, Except, group};
use crate::metrics::METRICS;
use crate::storage::append::{Appended, Appender, Written};
use crate::storage::messages::{self, NewMessage};
use crate::storage::{Db, StorageError, StorageResult, now_ms};

/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 512;

/// A committed message, serialized once.
#[derive(Clone, Debug)]
pub struct Committed {
    pub message: Message,
    /// `message` as JSON: the params of its `room.message` and the result of its `room.send`.
    pub json: Arc<str>,
    /// The ids of the users it mentions (each got a `mention` notification, and those with no
    /// connection a push).
    pub mentioned: Arc<[i64]>,
}

impl Committed {
    fn new(message: Message) -> Self {
        // A message holds strings, numbers and a string-keyed map: serializing cannot fail.
        let json = serde_json::to_string(&message).unwrap_or_default().into();
        Self { message, json, mentioned: Arc::new([]) }
    }
}

/// Where the outcome of one `room.send` goes.
type Reply = oneshot::Sender<AppResult<Committed>>;

/// One `room.send` on its way through the pipeline: what the sender gave, where the answer
/// goes, and the later sends of the same batch that reuse its nonce (they are answered from
/// its outcome, never written).
struct Pending {
    message: NewMessage,
    room: String,
    reply: Reply,
    repeats: Vec<Pending>,
}

/// A [`Pending`] without its row, which is with the appender while the batch commits.
struct Addressee {
    room: String,
    reply: Reply,
    repeats: Vec<Pending>,
}

impl Pending {
    fn split(self) -> (NewMessage, Addressee) {
        let Self { message, room, reply, repeats } = self;
        (message, Addressee { room, reply, repeats })
    }
}

/// What became of one message of a committed batch.
enum Settled {
    /// Stored by this batch (and broadcast).
    Stored { committed: Committed, reply: Reply, repeats: Vec<Pending> },
    /// Its nonce was stored before: answered from the database, off the pipeline's path.
    Earlier { message: NewMessage, to: Addressee },
}

/// The handle features use; cheap to clone.
#[derive(Clone)]
pub struct MessagePipeline {
    tx: mpsc::Sender<Pending>,
}

impl MessagePipeline {
    /// Starts the owner of the message writes for `db` (connected with `url`); it ends when
    /// every handle is dropped. Call from within the runtime. `webhooks` says which webhooks
    /// want each batch's messages (their deliveries commit with the batch); `pushes` hears of
    /// each mention.
    pub fn spawn(db: Db, url: &str, layer: Arc<dyn ChannelLayer>, webhooks: WebhookQueue, pushes: Alerts) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(MAX_BATCH * 8);
        let appender = Appender::open(&db, url)?;
        tokio::spawn(run(rx, appender, Sinks { db, layer, pushes }, webhooks));
        Ok(Self { tx })
    }

    /// Persists and broadcasts a message; resolves after the commit and the broadcast.
    pub async fn send(&self, message: NewMessage, room: String) -> AppResult<Committed> {
        self.submit(message, room).await?.wait().await
    }

    /// Queues a message for the next commit and returns without waiting for it. Messages
    /// submitted one after another commit in that order (the queue is FIFO), so a connection
    /// may keep several in flight and still see its ids increase.
    pub async fn submit(&self, message: NewMessage, room: String) -> AppResult<Receipt> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { message, room, reply, repeats: Vec::new() })
            .await
            .map_err(|_| AppError::Unavailable("message writer"))?;
        Ok(Receipt(answer))
    }
}

/// A submitted message's outcome, available once its batch has committed and been broadcast.
pub struct Receipt(oneshot::Receiver<AppResult<Committed>>);

impl Receipt {
    pub async fn wait(self) -> AppResult<Committed> {
        self.0.await.map_err(|_| AppError::Unavailable("message writer"))?
    }
}

/// Where a committed batch goes: the database (for repeated nonces), the channel layer, and
/// the pushes of its mentions.
struct Sinks {
    db: Db,
    layer: Arc<dyn ChannelLayer>,
    pushes: Alerts,
}

async fn run(mut rx: mpsc::Receiver<Pending>, appender: Appender, sinks: Sinks, webhooks: WebhookQueue) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (rows, addressees): (Vec<NewMessage>, Vec<Addressee>) = nest_repeats(std::mem::take(&mut batch)).into_iter().map(Pending::split).unzip();
        let subscribed = webhooks.room_message_subscriptions(addressees.iter().map(|a| a.room.as_str()));
        let now = now_ms();
        let (rows, outcome) = appender.append(rows, subscribed, now).await;
        if outcome.as_ref().is_ok_and(|w| w.enqueued) {
            webhooks.wake();
        }
        deliver(&sinks, rows, addressees, now, outcome);
    }
}

/// Puts each send that repeats the nonce of an earlier send of the same batch under that
/// one, so only the first is written. Whether a repeat is a retry or a conflict is decided
/// once the first is settled ([`answer_repeat`]): the first may itself turn out to repeat a
/// stored message.
fn nest_repeats(batch: Vec<Pending>) -> Vec<Pending> {
    let mut fresh: Vec<Pending> = Vec::with_capacity(batch.len());
    let mut seen: HashMap<(i64, String), usize> = HashMap::new();
    for pending in batch {
        if let Some(nonce) = &pending.message.nonce {
            let key = (pending.message.author_id, nonce.clone());
            if let Some(&first) = seen.get(&key) {
                fresh[first].repeats.push(pending);
                continue;
            }
            seen.insert(key, fresh.len());
        }
        fresh.push(pending);
    }
    fresh
}

/// After a commit: broadcast every new message in batch (= id) order, then answer.
fn deliver(sinks: &Sinks, rows: Vec<NewMessage>, addressees: Vec<Addressee>, now: i64, outcome: StorageResult<Written>) {
    let (db, layer) = (&sinks.db, sinks.layer.as_ref());
    let written = match outcome {
        Ok(w) if w.results.len() == addressees.len() && rows.len() == addressees.len() => w,
        Ok(_) => return fail_all(addressees, &StorageError::Db("the batch returned a different number of rows".into())),
        Err(err) => return fail_all(addressees, &err),
    };
    let stored = written.results.iter().filter(|a| matches!(a, Appended::New { .. })).count();
    METRICS.messages_persisted.fetch_add(stored as u64, Ordering::Relaxed);
    METRICS.write_batches.fetch_add(1, Ordering::Relaxed);

    let mut settled = Vec::with_capacity(addressees.len());
    for ((message, to), (appended, json)) in rows.into_iter().zip(addressees).zip(written.per_message()) {
        let Appended::New { id, seq } = appended else {
            settled.push(Settled::Earlier { message, to });
            continue;
        };
        let mut message = message;
        let room_id = message.room_id;
        let mentioned: Arc<[i64]> = std::mem::take(&mut message.mentions.users).into();
        let message = message.into_wire(to.room, id, now);
        let committed = match json {
            // Serialized already by the appender, for the message's webhook deliveries.
            Some(json) => Committed { message, json, mentioned },
            None => Committed { mentioned, ..Committed::new(message) },
        };
        let text = frame("room.message", &committed.json).into();
        if let Err(err) = layer.group_send(&group::room(&committed.message.room), Delivery::Ordered { text, seq }) {
            // Persisted all the same: clients catch up with `sync` once the layer is back.
            tracing::warn!(%err, id, "room.message not broadcast");
        }
        if !committed.mentioned.is_empty() {
            notify_mentioned(layer, &committed.mentioned, &frame("mention", &committed.json));
            sinks.pushes.mention(room_id, committed.mentioned.clone(), mention_push(&committed.message));
        }
        settled.push(Settled::Stored { committed, reply: to.reply, repeats: to.repeats });
    }
    for outcome in settled {
        match outcome {
            Settled::Stored { committed, reply, repeats } => {
                for repeat in repeats {
                    let _ = repeat.reply.send(answer_repeat(&committed, &repeat.room, &repeat.message));
                }
                let _ = reply.send(Ok(committed));
            }
            // A nonce stored before: answer with that message as it is now, or refuse a
            // different message reusing it (rare; off the pipeline's path).
            Settled::Earlier { message, to } => {
                let repeats = to.repeats.into_iter().map(|p| (p.message, p.reply));
                for (message, reply) in std::iter::once((message, to.reply)).chain(repeats) {
                    let db = db.clone();
                    tokio::spawn(async move {
                        let _ = reply.send(stored_repeat(&db, &message).await);
                    });
                }
            }
        }
    }
}

/// The answer to `m` (for `room`), which repeats the nonce of `first`, stored by this batch:
/// `first` for a retry (same room, same text), -32009 for a different message.
fn answer_repeat(first: &Committed, room: &str, m: &NewMessage) -> AppResult<Committed> {
    if first.message.room == room && first.message.text == m.text { Ok(first.clone()) } else { Err(AppError::nonce_reused()) }
}

async fn stored_repeat(db: &Db, message: &NewMessage) -> AppResult<Committed> {
    let nonce = message.nonce.as_deref().ok_or(AppError::Conflict("duplicate message"))?;
    let row = messages::by_nonce(db, message.author_id, nonce).await?.ok_or(AppError::Conflict("duplicate message"))?;
    if !message.is_retry_of(&row) {
        return Err(AppError::nonce_reused());
    }
    let wire = messages::to_wire(db, vec![row]).await?.pop().ok_or(AppError::NotFound("message"))?;
    Ok(Committed::new(wire))
}

/// Nothing of the batch was stored: every sender learns why (logged once, here).
fn fail_all(addressees: Vec<Addressee>, err: &StorageError) {
    let replies: Vec<Reply> = addressees.into_iter().flat_map(|a| std::iter::once(a.reply).chain(a.repeats.into_iter().map(|p| p.reply))).collect();
    tracing::error!(%err, messages = replies.len(), "message batch failed");
    for reply in replies {
        let _ = reply.send(Err(failure(err)));
    }
}

/// What a sender is told when its batch failed.
fn failure(err: &StorageError) -> AppError {
    match err {
        StorageError::Unavailable(_) => AppError::Unavailable("database"),
        StorageError::Full(_) => AppError::Unavailable("the database is full"),
        StorageError::Duplicate => AppError::Conflict("duplicate message"),
        StorageError::Db(_) => AppError::Internal(anyhow::anyhow!("could not store the message")),
    }
}

/// Sends a `mention` frame to every connection of each of `users`, on every instance (the
/// channel layer's per-user group, as a DM reaches its recipient).
pub fn notify_mentioned(layer: &dyn ChannelLayer, users: &[i64], frame: &str) {
    let text: axum::extract::ws::Utf8Bytes = frame.to_owned().into();
    for &user in users {
        let delivery = Delivery::Frame { text: text.clone(), class: Class::Reliable, except: Except::Nobody };
        if let Err(err) = layer.group_send(&group::user(user), delivery) {
            tracing::warn!(%err, user, "mention not pushed; the count in rooms.list still has it");
        }
    }
}

/// The push a mention in `message` sends to the mentioned who have no connection.
pub fn mention_push(message: &Message) -> PushMessage {
    PushMessage {
        kind: PushKind::Mention,
        conversation: message.room.clone(),
        from: message.author.clone(),
        preview: confab_shared::push::preview(&message.text),
        url: format!("/rooms/{}", message.room),
    }
}

/// A message notification (`room.message`, `mention`) around a message's JSON (what
/// `Notification::RoomMessage(m).to_frame()` makes, without serializing the message again).
fn frame(method: &str, json: &str) -> String {
    let mut frame = String::with_capacity(48 + method.len() + json.len());
    frame.push_str(r#"{"jsonrpc":"2.0","method":""#);
    frame.push_str(method);
    frame.push_str(r#"","params":"#);
    frame.push_str(json);
    frame.push('}');
    frame
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use confab_shared::Timestamp;
    use confab_shared::rpc::Notification;

    use super::*;

    #[test]
    fn the_broadcast_frame_is_the_room_message_notification() {
        let message = Message {
            id: 7,
            room: "lobby".into(),
            author: "ann".into(),
            text: "hi \"there\"\n".into(),
            sent_at: Timestamp::from_millis(1_700_000_000_000),
            edited_at: None,
            deleted: false,
            reactions: BTreeMap::new(),
            mentions: Vec::new(),
            mention_all: None,
        };
        let committed = Committed::new(message.clone());
        let ours: serde_json::Value = serde_json::from_str(&frame("room.message", &committed.json)).expect("valid JSON");
        let theirs: serde_json::Value = serde_json::from_str(&Notification::RoomMessage(message.clone()).to_frame()).expect("valid JSON");
        assert_eq!(ours, theirs);
        let ours: serde_json::Value = serde_json::from_str(&frame("mention", &committed.json)).expect("valid JSON");
        let theirs: serde_json::Value = serde_json::from_str(&Notification::Mention(message).to_frame()).expect("valid JSON");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn the_json_the_appender_builds_for_webhooks_is_the_json_the_socket_gets() {
        let new = NewMessage { room_id: 1, author_id: 2, author: "ann".into(), text: "hi \"there\"\n".into(), nonce: None, mentions: Default::default() };
        let now = 1_700_000_000_000;
        let message = Message {
            id: 7,
            room: "lobby".into(),
            author: "ann".into(),
            text: new.text.clone(),
            sent_at: Timestamp::from_millis(now),
            edited_at: None,
            deleted: false,
            reactions: BTreeMap::new(),
            mentions: Vec::new(),
            mention_all: None,
        };
        assert_eq!(crate::storage::append::fresh_json(&new, "lobby", 7, now), Committed::new(message).json);
    }

    fn pending(room_id: i64, text: &str, nonce: &str) -> (Pending, oneshot::Receiver<AppResult<Committed>>) {
        let (reply, answer) = oneshot::channel();
        let message = NewMessage { room_id, author_id: 2, author: "ann".into(), text: text.into(), nonce: Some(nonce.into()), mentions: Default::default() };
        (Pending { message, room: format!("room{room_id}"), reply, repeats: Vec::new() }, answer)
    }

    #[test]
    fn a_nonce_repeated_in_one_batch_is_written_once_whatever_the_repeats_say() {
        let (first, _) = pending(1, "hi", "n");
        let (retry, _) = pending(1, "hi", "n");
        let (other, _) = pending(2, "bye", "n");
        let (unrelated, _) = pending(1, "hi", "m");
        let fresh = nest_repeats(vec![first, retry, other, unrelated]);
        assert_eq!(fresh.iter().map(|p| p.message.nonce.as_deref()).collect::<Vec<_>>(), vec![Some("n"), Some("m")]);
        let repeats: Vec<&str> = fresh[0].repeats.iter().map(|p| p.message.text.as_str()).collect();
        assert_eq!((repeats, fresh[1].repeats.len()), (vec!["hi", "bye"], 0));
    }

    #[test]
    fn a_repeat_of_a_message_of_its_batch_is_a_retry_only_for_the_same_room_and_text() {
        let message = Message {
            id: 7,
            room: "room1".into(),
            author: "ann".into(),
            text: "hi".into(),
            sent_at: Timestamp::from_millis(1),
            edited_at: None,
            deleted: false,
            reactions: BTreeMap::new(),
            mentions: Vec::new(),
            mention_all: None,
        };
        let first = Committed::new(message);
        let (retry, _) = pending(1, "hi", "n");
        assert_eq!(answer_repeat(&first, &retry.room, &retry.message).expect("a retry").message.id, 7);
        for (room, text) in [("room2", "hi"), ("room1", "bye")] {
            let (other, _) = pending(1, text, "n");
            let err = answer_repeat(&first, room, &other.message).expect_err("a different message");
            assert!(matches!(err, AppError::ConflictOn { field: "nonce", .. }), "{err:?}");
        }
    }

    #[test]
    fn a_full_or_missing_database_is_an_internal_error_that_says_why() {
        use confab_shared::rpc::{ErrorCode, ErrorObject};
        let full = ErrorObject::from(failure(&StorageError::Full("disk".into())));
        assert_eq!((full.code, full.message.as_str()), (ErrorCode::Internal.code(), "service unavailable: the database is full"));
        let gone = ErrorObject::from(failure(&StorageError::Unavailable("refused".into())));
        assert_eq!((gone.code, gone.message.as_str()), (ErrorCode::Internal.code(), "service unavailable: database"));
    }
}
