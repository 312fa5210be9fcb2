//! Room messages: send, edit, delete, react.

pub mod mentions;
pub mod pipeline;

use confab_shared::hooks::{HookName, HookRequest};
use confab_shared::rpc::notify::{MessageRef, ReactionChange};
use confab_shared::rpc::{Ack, DeleteParams, EditParams, Notification, ReactParams, SendParams};
use confab_shared::moderation::ModerationAction;
use confab_shared::{Message, validate};

use super::{hooks, moderation};
use super::rooms::broadcast;
use crate::error::{AppError, AppResult};
use crate::layer::Class;
use crate::state::AppState;
use crate::storage::entity::messages as message_entity;
use crate::storage::messages::{self, NewMessage, Reacted};
use crate::storage::{rooms, users};
use crate::ws::Conn;

/// `room.send`: authenticated and joined; persisted, then broadcast, then answered.
pub async fn send(state: &AppState, conn: &Conn, p: SendParams) -> AppResult<Message> {
    Ok(submit(state, conn, p).await?.wait().await?.message)
}

/// `room.send` up to the commit queue: checks and queues the message without waiting for
/// its commit (the session pipelines consecutive sends of one connection this way).
pub async fn submit(state: &AppState, conn: &Conn, p: SendParams) -> AppResult<pipeline::Receipt> {
    let me = conn.user()?;
    super::rooms::room_param(&p.room)?;
    let Some(&room_id) = conn.rooms.get(&p.room) else {
        return Err(AppError::Forbidden("join the room first"));
    };
    let text = validate::message_text(&p.text).map_err(|m| AppError::invalid("text", m))?;
    // Last of the checks, since a send that passes slow mode counts as the member's last.
    moderation::enforce::may_send(state, room_id, me)?;
    let nonce = p.nonce.as_deref().map(validate::nonce).transpose().map_err(|m| AppError::invalid("nonce", m))?;
    let mut message = NewMessage {
        room_id,
        author_id: me.user_id,
        author: me.username.clone(),
        text: text.to_owned(),
        nonce: nonce.map(str::to_owned),
        mentions: Default::default(),
    };
    if state.hooks.is_on(HookName::RoomSend) {
        // A retry of a stored message is answered with it, without asking again (the hook may
        // have replaced its text): matched by nonce and room.
        let stored = match nonce {
            Some(nonce) => messages::by_nonce(&state.db, me.user_id, nonce).await?,
            None => None,
        };
        match stored {
            Some(first) if first.room_id == room_id => message.text = first.text,
            Some(_) => {}
            None => {
                let params = SendParams { room: p.room.clone(), text: message.text.clone(), nonce: message.nonce.clone() };
                if let Some(text) = state.hooks.allowed(&HookRequest::RoomSend { user: hooks::user(me), params }).await?.text {
                    message.text = text;
                }
            }
        }
    }
    // Read from the text that is stored: the hook may have replaced it.
    message.mentions = mentions::resolve(state, me, room_id, &message.text).await?;
    state.pipeline.submit(message, p.room).await
}

/// Loads a message and its room name, or -32004.
async fn load(state: &AppState, id: i64) -> AppResult<(message_entity::Model, String)> {
    let row = messages::by_id(&state.db, id).await?.ok_or(AppError::NotFound("message"))?;
    let room = rooms::by_id(&state.db, row.room_id).await?.ok_or(AppError::NotFound("room"))?;
    Ok((row, room.name))
}

async fn reload(state: &AppState, id: i64) -> AppResult<Message> {
    let row = messages::by_id(&state.db, id).await?.ok_or(AppError::NotFound("message"))?;
    messages::to_wire(&state.db, vec![row]).await?.pop().ok_or(AppError::NotFound("message"))
}

/// `message.edit`: the author only; a deleted message cannot be edited.
pub async fn edit(state: &AppState, conn: &Conn, p: EditParams) -> AppResult<Message> {
    let me = conn.user()?;
    let text = validate::message_text(&p.text).map_err(|m| AppError::invalid("text", m))?;
    let (row, room) = load(state, p.id).await?;
    if row.author_id != me.user_id {
        return Err(AppError::Forbidden("only the author can edit a message"));
    }
    if row.deleted {
        return Err(AppError::Conflict("the message was deleted"));
    }
    moderation::enforce::may_speak(state, row.room_id, me.user_id)?;
    let mut replaced = None;
    if state.hooks.is_on(HookName::MessageEdit) {
        let request = HookRequest::MessageEdit { user: hooks::user(me), room: room.clone(), params: EditParams { id: p.id, text: text.to_owned() } };
        replaced = state.hooks.allowed(&request).await?.text;
    }
    let text = replaced.as_deref().unwrap_or(text);
    let targets = mentions::resolve(state, me, row.room_id, text).await?;
    // Mentions first, so a `message.edited` webhook reading the row sees them with the text.
    let added = crate::storage::mentions::replace(&state.db, p.id, row.room_id, &targets).await?;
    messages::edit_with(&state.db, p.id, text, &state.webhooks).await?;
    let message = reload(state, p.id).await?;
    broadcast(state, &room, &Notification::MessageEdited(message.clone()), Class::Reliable);
    // Only those the edit mentions for the first time hear of it.
    pipeline::notify_mentioned(state.layer.as_ref(), &added, &Notification::Mention(message.clone()).to_frame());
    state.push_alerts.mention(row.room_id, added.into(), pipeline::mention_push(&message));
    Ok(message)
}

/// `message.delete`: the author, an admin, or the room's owner or a moderator (of a message
/// by someone of lower rank); deleting twice is harmless. A delete of someone else's
/// message is written to the audit log in the same transaction.
pub async fn delete(state: &AppState, conn: &Conn, p: DeleteParams) -> AppResult<Ack> {
    let me = conn.user()?;
    let (row, room) = load(state, p.id).await?;
    let mut audit = None;
    if row.author_id != me.user_id {
        let room_row = rooms::by_id(&state.db, row.room_id).await?.ok_or(AppError::NotFound("room"))?;
        if !me.is_admin {
            let actor = moderation::roles::rank(state, &room_row, me.user_id, false).await?;
            if actor < moderation::roles::Rank::Moderator {
                return Err(AppError::Forbidden("only the author, an admin, or the room's owner or moderators can delete a message"));
            }
            let author = users::by_id(&state.db, row.author_id).await?;
            let author_rank = moderation::roles::rank(state, &room_row, row.author_id, author.as_ref().is_some_and(|a| a.is_admin)).await?;
            moderation::roles::may_act_on(actor, author_rank, moderation::roles::Act::Remove)?;
        }
        let mut entry = moderation::audit::entry(state, me, ModerationAction::DeleteMessage);
        (entry.room, entry.detail) = (Some(room.clone()), Some(format!("message {}", p.id)));
        entry.target = users::by_id(&state.db, row.author_id).await?.map(|a| a.username);
        audit = Some(entry);
    }
    if !row.deleted {
        messages::delete_with(&state.db, p.id, &state.webhooks, audit.as_ref()).await?;
        broadcast(state, &room, &Notification::MessageDeleted(MessageRef { id: p.id, room: room.clone() }), Class::Reliable);
    }
    Ok(Ack {})
}

// The refusals of `message.react` name the caps in words.
const _: () = assert!(validate::MAX_DISTINCT_REACTIONS == 20 && validate::MAX_REACTIONS == 1000);

/// `message.react`: users joined to the message's room add or remove a reaction.
pub async fn react(state: &AppState, conn: &Conn, p: ReactParams) -> AppResult<Message> {
    let me = conn.user()?;
    let emoji = validate::emoji(&p.emoji).map_err(|m| AppError::invalid("emoji", m))?;
    let (row, room) = load(state, p.id).await?;
    if !conn.rooms.contains_key(&room) {
        return Err(AppError::Forbidden("join the room first"));
    }
    if row.deleted {
        return Err(AppError::Conflict("the message was deleted"));
    }
    moderation::enforce::may_speak(state, row.room_id, me.user_id)?;
    let count = match messages::react(&state.db, p.id, me.user_id, &me.username, emoji, p.on).await? {
        Reacted::TooManyEmoji => {
            return Err(AppError::ConflictOn { field: "emoji", message: "this message has 20 different emoji already; react with one of them" });
        }
        Reacted::TooManyReactions => {
            return Err(AppError::ConflictOn { field: "emoji", message: "this message has 1000 reactions already" });
        }
        Reacted::Unchanged { .. } => None,
        Reacted::Changed { count } => Some(count),
    };
    if let Some(count) = count {
        // The change only: re-sending the whole list would cost every member O(reactions)
        // bytes per reaction.
        let change = ReactionChange { id: p.id, room: room.clone(), emoji: emoji.to_owned(), user: me.username.clone(), added: p.on, count };
        broadcast(state, &room, &Notification::MessageReacted(change), Class::Reliable);
    }
    reload(state, p.id).await
}
