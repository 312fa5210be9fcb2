//! Group commit for room messages.
//!
//! Every `room.send` on this instance goes through one task that takes whatever has queued
//! up (up to [`MAX_BATCH`]), writes it in a single transaction, and only then broadcasts
//! each message, in id order, before answering the senders. Under light load a batch is one
//! message and costs one transaction as before; under heavy load the per-commit cost (the
//! fsync on SQLite, the round trip on PostgreSQL) is shared by the whole batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use confab_shared::Message;
use confab_shared::rpc::Notification;
use tokio::sync::{mpsc, oneshot};

use crate::error::{AppError, AppResult};
use crate::features::webhooks::Outbox;
use crate::layer::{ChannelLayer, Delivery, group};
use crate::metrics::METRICS;
use crate::storage::messages::{self, NewMessage};
use crate::storage::{Db, StorageError};

/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 512;

struct Pending {
    message: NewMessage,
    room: String,
    reply: oneshot::Sender<AppResult<Message>>,
}

/// The handle features use; cheap to clone.
#[derive(Clone)]
pub struct MessageWriter {
    tx: mpsc::Sender<Pending>,
}

impl MessageWriter {
    /// Starts the writer task; it ends when every handle is dropped.
    /// `outbox` receives the webhook rows of each batch, inside its transaction.
    pub fn spawn(db: Db, layer: Arc<dyn ChannelLayer>, outbox: Outbox) -> Self {
        let (tx, rx) = mpsc::channel(MAX_BATCH * 8);
        tokio::spawn(run(rx, db, layer, outbox));
        Self { tx }
    }

    /// Persists and broadcasts a message; resolves after the commit and the broadcast.
    pub async fn send(&self, message: NewMessage, room: String) -> AppResult<Message> {
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
pub struct Receipt(oneshot::Receiver<AppResult<Message>>);

impl Receipt {
    pub async fn wait(self) -> AppResult<Message> {
        self.0.await.map_err(|_| AppError::Unavailable("message writer"))?
    }
}

async fn run(mut rx: mpsc::Receiver<Pending>, db: Db, layer: Arc<dyn ChannelLayer>, outbox: Outbox) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&db, layer.as_ref(), &outbox, std::mem::take(&mut batch)).await;
    }
}

async fn commit(db: &Db, layer: &dyn ChannelLayer, outbox: &Outbox, batch: Vec<Pending>) {
    // Nonce repeats are answered with the first message instead of inserting a duplicate:
    // those already in the database now, those repeated within this batch after the commit.
    let mut fresh: Vec<Pending> = Vec::with_capacity(batch.len());
    let mut repeats: Vec<(usize, Pending)> = Vec::new();
    let mut seen: HashMap<(i64, String), usize> = HashMap::new();
    for pending in batch {
        if let Some(nonce) = pending.message.nonce.clone() {
            let key = (pending.message.author_id, nonce);
            if let Some(&index) = seen.get(&key) {
                repeats.push((index, pending));
                continue;
            }
            match messages::by_nonce(db, key.0, &key.1).await {
                Ok(Some(existing)) => {
                    let wire = messages::to_wire(db, vec![existing]).await.map_err(AppError::from);
                    let _ = pending.reply.send(wire.and_then(|mut w| w.pop().ok_or(AppError::NotFound("message"))));
                    continue;
                }
                Ok(None) => {}
                Err(err) => {
                    let _ = pending.reply.send(Err(err.into()));
                    continue;
                }
            }
            seen.insert(key, fresh.len());
        }
        fresh.push(pending);
    }
    if fresh.is_empty() {
        return;
    }

    let rows: Vec<NewMessage> = fresh.iter().map(|p| p.message.clone()).collect();
    let inserted = match messages::insert_batch_with(db, &rows, outbox).await {
        Ok(inserted) if inserted.len() == fresh.len() => inserted,
        Ok(_) => return fail_all(fresh, repeats, || AppError::Internal(anyhow::anyhow!("batch insert returned a different row count"))),
        // A nonce raced in from another instance: retry one by one so only the repeat is affected.
        Err(StorageError::Duplicate) if fresh.len() > 1 => {
            for pending in fresh.into_iter().chain(repeats.into_iter().map(|(_, p)| p)) {
                Box::pin(commit(db, layer, outbox, vec![pending])).await;
            }
            return;
        }
        Err(StorageError::Duplicate) => {
            let pending = fresh.remove(0);
            let nonce = pending.message.nonce.clone().unwrap_or_default();
            let existing = messages::by_nonce(db, pending.message.author_id, &nonce).await.ok().flatten();
            let wire = match existing {
                Some(row) => messages::to_wire(db, vec![row]).await.map_err(AppError::from).and_then(|mut w| w.pop().ok_or(AppError::NotFound("message"))),
                None => Err(AppError::Conflict("duplicate message")),
            };
            let _ = pending.reply.send(wire);
            return;
        }
        Err(err) => {
            tracing::error!(%err, "message batch failed");
            let unavailable = matches!(err, StorageError::Unavailable(_));
            return fail_all(fresh, repeats, || if unavailable { AppError::Unavailable("database") } else { AppError::Internal(anyhow::anyhow!("could not store the message")) });
        }
    };
    METRICS.messages_persisted.fetch_add(inserted.len() as u64, Ordering::Relaxed);
    METRICS.write_batches.fetch_add(1, Ordering::Relaxed);

    // Committed. Rows are sorted by id and ids were drawn in batch order, so zipping pairs
    // each row with its request, and broadcasting in this order is id order.
    let seqs: Vec<i64> = inserted.iter().map(|row| row.seq).collect();
    let sent: Vec<Message> = inserted
        .into_iter()
        .zip(&fresh)
        .map(|(row, pending)| messages::wire(row, pending.room.clone(), BTreeMap::new()))
        .collect();
    for (wire, seq) in sent.iter().zip(seqs) {
        let text = Notification::RoomMessage(wire.clone()).to_frame().into();
        if let Err(err) = layer.group_send(&group::room(&wire.room), Delivery::Ordered { text, seq }) {
            // Persisted all the same: clients catch up with `sync` once the layer is back.
            tracing::warn!(%err, id = wire.id, "room.message not broadcast");
        }
    }
    for (pending, wire) in fresh.into_iter().zip(&sent) {
        let _ = pending.reply.send(Ok(wire.clone()));
    }
    for (index, pending) in repeats {
        let _ = pending.reply.send(sent.get(index).cloned().ok_or(AppError::NotFound("message")));
    }
}

fn fail_all(fresh: Vec<Pending>, repeats: Vec<(usize, Pending)>, err: impl Fn() -> AppError) {
    for pending in fresh.into_iter().chain(repeats.into_iter().map(|(_, p)| p)) {
        let _ = pending.reply.send(Err(err()));
    }
}
