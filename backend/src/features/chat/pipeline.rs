//! Group commit for room messages.
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
//! `room.message` webhooks ride along: before the append the batch asks the [`WebhookQueue`]
//! which webhooks want which message (one atomic load when none does), and the appender
//! writes those deliveries in the batch's own transaction, so an acknowledged message always
//! has them, even across a crash. A hooked message's JSON is serialized there, once, and
//! reused here; after the commit the delivery worker is woken.
//!
//! A nonce identifies one message of its author: a message repeating a nonce with the same
//! room and text is a retry and gets the first message as its answer (whether that one is in
//! the same batch or was stored before); a nonce reused for a different message is refused
//! with -32009 and stores nothing (the unique index keeps it out in either case).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use confab_shared::{Message, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::error::{AppError, AppResult};
use crate::storage::webhook_queue::WebhookQueue;
use crate::layer::{ChannelLayer, Delivery, group};
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
}

impl Committed {
    fn new(message: Message) -> Self {
        // A message holds strings, numbers and a string-keyed map: serializing cannot fail.
        let json = serde_json::to_string(&message).unwrap_or_default().into();
        Self { message, json }
    }
}

struct Pending {
    message: NewMessage,
    room: String,
    reply: oneshot::Sender<AppResult<Committed>>,
}

/// The handle features use; cheap to clone.
#[derive(Clone)]
pub struct MessagePipeline {
    tx: mpsc::Sender<Pending>,
}

/// A message of the batch being written, without its row (which went to the appender).
struct Waiting {
    room: String,
    reply: oneshot::Sender<AppResult<Committed>>,
}

impl MessagePipeline {
    /// Starts the owner of the message writes for `db` (connected with `url`); it ends when
    /// every handle is dropped. Call from within the runtime. `webhooks` says which webhooks
    /// want each batch's messages (their deliveries commit with the batch).
    pub fn spawn(db: Db, url: &str, layer: Arc<dyn ChannelLayer>, webhooks: WebhookQueue) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(MAX_BATCH * 8);
        let appender = Appender::open(&db, url)?;
        tokio::spawn(run(rx, appender, db, layer, webhooks));
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
            .send(Pending { message, room, reply })
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

async fn run(mut rx: mpsc::Receiver<Pending>, appender: Appender, db: Db, layer: Arc<dyn ChannelLayer>, webhooks: WebhookQueue) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (fresh, repeats) = split_repeats(std::mem::take(&mut batch));
        let (rows, waiting): (Vec<NewMessage>, Vec<Waiting>) =
            fresh.into_iter().map(|p| (p.message, Waiting { room: p.room, reply: p.reply })).unzip();
        let hooks = webhooks.room_message_hooks(waiting.iter().map(|w| w.room.as_str()));
        let now = now_ms();
        let (rows, outcome) = appender.append(rows, hooks, now).await;
        if outcome.as_ref().is_ok_and(|w| w.enqueued) {
            webhooks.wake();
        }
        deliver(&db, layer.as_ref(), rows, waiting, repeats, now, outcome);
    }
}

/// Separates the messages repeating a nonce of an earlier message of the same batch from
/// those to write. Whether a repeat is a retry or a conflict is decided once the first is
/// written ([`answer_repeat`]): the first may itself turn out to repeat a stored message.
fn split_repeats(batch: Vec<Pending>) -> (Vec<Pending>, Vec<(usize, Pending)>) {
    let mut fresh: Vec<Pending> = Vec::with_capacity(batch.len());
    let mut repeats = Vec::new();
    let mut seen: HashMap<(i64, String), usize> = HashMap::new();
    for pending in batch {
        if let Some(nonce) = &pending.message.nonce {
            let key = (pending.message.author_id, nonce.clone());
            if let Some(&index) = seen.get(&key) {
                repeats.push((index, pending));
                continue;
            }
            seen.insert(key, fresh.len());
        }
        fresh.push(pending);
    }
    (fresh, repeats)
}

/// After a commit: broadcast every new message in batch (= id) order, then answer.
fn deliver(
    db: &Db,
    layer: &dyn ChannelLayer,
    rows: Vec<NewMessage>,
    waiting: Vec<Waiting>,
    repeats: Vec<(usize, Pending)>,
    now: i64,
    outcome: StorageResult<Written>,
) {
    let (appended, json) = match outcome {
        Ok(w) if w.results.len() == waiting.len() && rows.len() == waiting.len() => (w.results, w.json),
        Ok(_) => return fail_all(waiting, repeats, &StorageError::Db("the batch returned a different number of rows".into())),
        Err(err) => return fail_all(waiting, repeats, &err),
    };
    let stored = appended.iter().filter(|a| matches!(a, Appended::New { .. })).count();
    METRICS.messages_persisted.fetch_add(stored as u64, Ordering::Relaxed);
    METRICS.write_batches.fetch_add(1, Ordering::Relaxed);

    let mut done: Vec<Option<Committed>> = Vec::with_capacity(waiting.len());
    let mut later: Vec<(NewMessage, oneshot::Sender<AppResult<Committed>>)> = Vec::new();
    let mut replies: Vec<oneshot::Sender<AppResult<Committed>>> = Vec::with_capacity(waiting.len());
    // The JSON of the hooked messages, serialized by the appender for their deliveries.
    let mut json = json.into_iter().peekable();
    for (index, ((message, Waiting { room, reply }), appended)) in rows.into_iter().zip(waiting).zip(appended).enumerate() {
        let Appended::New { id, seq } = appended else {
            done.push(None);
            later.push((message, reply));
            continue;
        };
        let message = Message {
            id,
            room,
            author: message.author,
            text: message.text,
            sent_at: Timestamp::from_millis(now),
            edited_at: None,
            deleted: false,
            reactions: BTreeMap::new(),
        };
        let committed = match json.next_if(|(i, _)| *i == index) {
            Some((_, json)) => Committed { message, json },
            None => Committed::new(message),
        };
        let text = room_message_frame(&committed.json).into();
        if let Err(err) = layer.group_send(&group::room(&committed.message.room), Delivery::Ordered { text, seq }) {
            // Persisted all the same: clients catch up with `sync` once the layer is back.
            tracing::warn!(%err, id, "room.message not broadcast");
        }
        done.push(Some(committed));
        replies.push(reply);
    }
    for (index, pending) in repeats {
        match done.get(index) {
            Some(Some(first)) => {
                let answer = answer_repeat(first, &pending.room, &pending.message);
                let _ = pending.reply.send(answer);
            }
            _ => later.push((pending.message, pending.reply)),
        }
    }
    for (committed, reply) in done.into_iter().flatten().zip(replies) {
        let _ = reply.send(Ok(committed));
    }
    // A nonce stored before: answer with that message as it is now, or refuse a different
    // message reusing it (rare; off the pipeline's path).
    for (message, reply) in later {
        let db = db.clone();
        tokio::spawn(async move {
            let _ = reply.send(stored_repeat(&db, &message).await);
        });
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
fn fail_all(waiting: Vec<Waiting>, repeats: Vec<(usize, Pending)>, err: &StorageError) {
    tracing::error!(%err, messages = waiting.len() + repeats.len(), "message batch failed");
    for reply in waiting.into_iter().map(|w| w.reply).chain(repeats.into_iter().map(|(_, p)| p.reply)) {
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

/// The `room.message` notification around a message's JSON (what
/// `Notification::RoomMessage(m).to_frame()` makes, without serializing the message again).
fn room_message_frame(json: &str) -> String {
    const HEAD: &str = r#"{"jsonrpc":"2.0","method":"room.message","params":"#;
    let mut frame = String::with_capacity(HEAD.len() + json.len() + 1);
    frame.push_str(HEAD);
    frame.push_str(json);
    frame.push('}');
    frame
}

#[cfg(test)]
mod tests {
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
        };
        let committed = Committed::new(message.clone());
        let ours: serde_json::Value = serde_json::from_str(&room_message_frame(&committed.json)).expect("valid JSON");
        let theirs: serde_json::Value = serde_json::from_str(&Notification::RoomMessage(message).to_frame()).expect("valid JSON");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn the_json_the_appender_builds_for_webhooks_is_the_json_the_socket_gets() {
        let new = NewMessage { room_id: 1, author_id: 2, author: "ann".into(), text: "hi \"there\"\n".into(), nonce: None };
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
        };
        assert_eq!(crate::storage::append::fresh_json(&new, "lobby", 7, now), Committed::new(message).json);
    }

    fn pending(room_id: i64, text: &str, nonce: &str) -> (Pending, oneshot::Receiver<AppResult<Committed>>) {
        let (reply, answer) = oneshot::channel();
        let message = NewMessage { room_id, author_id: 2, author: "ann".into(), text: text.into(), nonce: Some(nonce.into()) };
        (Pending { message, room: format!("room{room_id}"), reply }, answer)
    }

    #[test]
    fn a_nonce_repeated_in_one_batch_is_written_once_whatever_the_repeats_say() {
        let (first, _) = pending(1, "hi", "n");
        let (retry, _) = pending(1, "hi", "n");
        let (other, _) = pending(2, "bye", "n");
        let (unrelated, _) = pending(1, "hi", "m");
        let (fresh, repeats) = split_repeats(vec![first, retry, other, unrelated]);
        assert_eq!(fresh.iter().map(|p| p.message.nonce.as_deref()).collect::<Vec<_>>(), vec![Some("n"), Some("m")]);
        assert_eq!(repeats.iter().map(|(i, p)| (*i, p.message.text.as_str())).collect::<Vec<_>>(), vec![(0, "hi"), (0, "bye")]);
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
