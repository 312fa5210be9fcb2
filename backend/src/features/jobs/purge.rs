//! `purge_messages`: deleting one user's messages, in one room or everywhere, in batches.
//!
//! Each batch is one short transaction (so the message writer never waits long behind it),
//! then `message.deleted` to each message's room, then progress. A purge has no file; it
//! ends `done` like an export.

use std::collections::HashMap;

use confab_shared::rpc::Notification;
use confab_shared::rpc::notify::MessageRef;
use tokio_util::sync::CancellationToken;

use super::export::ExportError;
use super::runner::Progress;
use crate::layer::{ChannelLayer, Class};
use crate::storage::entity::jobs as job_entity;
use crate::storage::{Db, jobs, moderation, rooms};

/// Messages deleted per transaction.
const BATCH: u64 = 200;

/// Runs a queued purge to its end; the "file" it leaves is empty.
pub async fn run(db: &Db, layer: &dyn ChannelLayer, job: &job_entity::Model, stop: &CancellationToken) -> Result<String, ExportError> {
    if !jobs::start(db, job.id).await? {
        return Err(ExportError::Gone);
    }
    let target = job.target_id.ok_or_else(|| ExportError::Failed(anyhow::anyhow!("purge job {} names no user", job.id)))?;
    let room_id = match job.room.as_str() {
        "" => None,
        name => Some(rooms::by_name(db, name).await?.ok_or_else(|| ExportError::Failed(anyhow::anyhow!("room {name} is gone")))?.id),
    };
    let total = moderation::purge_total(db, target, room_id).await?;
    let mut progress = Progress::new(job.id, job.owner_id, total);
    let mut names: HashMap<i64, String> = HashMap::new();
    let mut after = 0;
    loop {
        if stop.is_cancelled() {
            return Err(ExportError::Interrupted);
        }
        let batch = moderation::purge_batch(db, target, room_id, after, BATCH).await?;
        let Some(&(last, _)) = batch.last() else { break };
        after = last;
        let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        moderation::delete_messages(db, &ids, |_| None).await?;
        for (id, room) in &batch {
            if !names.contains_key(room) {
                let name = rooms::by_id(db, *room).await?.map(|r| r.name).unwrap_or_default();
                names.insert(*room, name);
            }
            let room = names.get(room).cloned().unwrap_or_default();
            let event = Notification::MessageDeleted(MessageRef { id: *id, room: room.clone() });
            crate::layer::broadcast_room(layer, &room, &event, Class::Reliable);
        }
        progress.advance(db, layer, ids.len() as u64).await?;
    }
    Ok(String::new())
}
