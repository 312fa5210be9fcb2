//! Private messages: `dm.send` (the result is the delivery receipt), `dm.history`, `dm.read`.
//! A recipient with no connection anywhere gets a Web Push instead ([`super::push`]).

use confab_shared::hooks::{HookName, HookRequest};
use confab_shared::rpc::{Ack, DmHistoryParams, DmReadParams, DmSendParams, Notification};
use confab_shared::push::{PushKind, PushMessage};
use confab_shared::rpc::notify::ReadCursor;
use confab_shared::{DirectMessage, validate};

use super::hooks;
use super::{Budget, page_limit};
use crate::error::{AppError, AppResult};
use crate::layer::{Class, Delivery, Except, group};
use crate::state::AppState;
use crate::storage::entity::users as user_entity;
use crate::storage::{dms, users};
use crate::ws::Conn;

async fn peer(state: &AppState, field: &'static str, name: &str) -> AppResult<user_entity::Model> {
    validate::username(name).map_err(|m| AppError::invalid(field, m))?;
    users::by_name(&state.db, name).await?.ok_or(AppError::NotFound("user"))
}

/// `dm.send`: persisted whether or not the recipient is online, then pushed to every
/// connection of the recipient and to the sender's other connections, or, when the
/// recipient has none, to their browsers by Web Push.
pub async fn send(state: &AppState, conn: &Conn, p: DmSendParams) -> AppResult<DirectMessage> {
    let me = conn.user()?;
    let text = validate::message_text(&p.text).map_err(|m| AppError::invalid("text", m))?;
    let nonce = p.nonce.as_deref().map(validate::nonce).transpose().map_err(|m| AppError::invalid("nonce", m))?;
    let to = peer(state, "to", &p.to).await?;
    if to.id == me.user_id {
        return Err(AppError::invalid("to", "cannot send a private message to yourself"));
    }
    let mut replaced = None;
    if state.hooks.is_on(HookName::DmSend) {
        // A retry of a stored message is answered with it, without asking again (the hook may
        // have replaced its text): matched by nonce and recipient.
        let stored = match nonce {
            Some(nonce) => dms::by_nonce(&state.db, me.user_id, nonce).await?,
            None => None,
        };
        replaced = match stored {
            Some(first) if first.to_id == to.id => Some(first.text),
            Some(_) => None,
            None => {
                let params = DmSendParams { to: to.username.clone(), text: text.to_owned(), nonce: nonce.map(str::to_owned) };
                state.hooks.allowed(&HookRequest::DmSend { user: hooks::user(me), params }).await?.text
            }
        };
    }
    let text = replaced.as_deref().unwrap_or(text);
    let parties = dms::Parties { from_id: me.user_id, from: &me.username, to_id: to.id, to: &to.username };
    let (row, fresh) = match dms::insert(&state.db, parties, text, nonce, &state.webhooks).await? {
        dms::Inserted::New(row) => (row, true),
        dms::Inserted::Repeat(first) => (first, false),
        dms::Inserted::NonceReused => return Err(AppError::nonce_reused()),
    };
    let message = DirectMessage::from(row);
    if fresh {
        let frame: axum::extract::ws::Utf8Bytes = Notification::DmMessage(message.clone()).to_frame().into();
        let to_recipient = Delivery::Frame { text: frame.clone(), class: Class::Reliable, except: Except::Nobody };
        let to_my_tabs = Delivery::Frame { text: frame, class: Class::Reliable, except: Except::Conn(conn.id) };
        for (group, delivery) in [(group::user(to.id), to_recipient), (group::user(me.user_id), to_my_tabs)] {
            if let Err(err) = state.layer.group_send(&group, delivery) {
                tracing::warn!(%err, id = message.id, "dm.message not pushed; the recipient gets it from history or sync");
            }
        }
        let push = PushMessage {
            kind: PushKind::Dm,
            conversation: me.username.clone(),
            from: me.username.clone(),
            preview: confab_shared::push::preview(&message.text),
            url: format!("/dm/{}", me.username),
        };
        state.push_alerts.dm(to.id, push);
    }
    Ok(message)
}

/// `dm.history`: the conversation with one user, oldest first: the newest `limit` messages
/// before `before` that fit in the answer's budget.
pub async fn history(state: &AppState, conn: &Conn, p: DmHistoryParams) -> AppResult<Vec<DirectMessage>> {
    let me = conn.user()?;
    let limit = page_limit(p.limit)?;
    let other = peer(state, "with", &p.with).await?;
    let page = dms::history(&state.db, me.user_id, other.id, p.before, limit).await?;
    Ok(Budget::array(conn.answer_budget).newest(page))
}

/// `dm.read`: moves the cursor forward (at most to the conversation's newest message) and
/// tells the reader's other connections where it is now.
pub async fn read(state: &AppState, conn: &Conn, p: DmReadParams) -> AppResult<Ack> {
    let me = conn.user()?;
    let other = peer(state, "with", &p.with).await?;
    if let Some(id) = dms::mark_read(&state.db, me.user_id, other.id, p.id).await? {
        let event = Notification::ReadMoved(ReadCursor::Dm { with: other.username, id });
        let delivery = Delivery::Frame { text: event.to_frame().into(), class: Class::Reliable, except: Except::Conn(conn.id) };
        state.layer.group_send(&group::user(me.user_id), delivery).map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(Ack {})
}
