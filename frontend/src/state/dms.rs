//! Private messages: the conversation index, the conversations a page has open, sending
//! and reading. The list of conversations is [`super::dm_index`], one conversation's state
//! [`super::dm_conversation`].

use std::collections::HashMap;

use confab_shared::DirectMessage;
use confab_shared::rpc::methods::*;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::dm_conversation::Conversation;
use super::dm_index::DmIndex;
use super::is_connection_error;
use super::log::{PAGE, PendingSend, may_have_older};
use super::presence::{DM_PEERS_WATCHED, Presence};
use crate::api::socket::Socket;
use crate::components::toasts::Toasts;
use crate::session::Session;
use crate::util::{describe, load_json, nonce, page_visible, save_json};

/// Messages fetched when a conversation opens.
const DM_HISTORY: u32 = 50;

/// The logged-in user's private messages; a copyable handle.
#[derive(Clone, Copy)]
pub struct Dms {
    socket: Socket,
    session: Session,
    toasts: Toasts,
    /// The logged-in user's conversations and unread counts.
    pub index: RwSignal<DmIndex>,
    /// The conversation on screen (lower-case peer), whose messages are read as they arrive.
    viewing: RwSignal<Option<String>>,
    conversations: StoredValue<HashMap<String, Conversation>>,
}

impl Dms {
    pub fn new(socket: Socket, session: Session, toasts: Toasts) -> Self {
        let index = session.user_id_untracked().and_then(|id| load_json(&DmIndex::storage_key(id))).unwrap_or_default();
        Self {
            socket,
            session,
            toasts,
            index: RwSignal::new(index),
            viewing: RwSignal::new(None),
            conversations: StoredValue::new(HashMap::new()),
        }
    }

    fn me(&self) -> Option<String> {
        self.session.tokens_untracked().map(|t| t.user.username)
    }

    fn save_index(&self) {
        if let Some(id) = self.session.user_id_untracked() {
            self.index.with_untracked(|index| save_json(&DmIndex::storage_key(id), index));
        }
    }

    fn if_open(&self, peer: &str) -> Option<Conversation> {
        self.conversations.with_value(|c| c.get(&peer.to_lowercase()).cloned())
    }

    fn on_screen(&self) -> Option<Conversation> {
        self.viewing.get_untracked().and_then(|key| self.if_open(&key))
    }

    /// Watches the conversation peers' presence: the most recent ones and the one on screen.
    pub fn watch_peers(self, presence: Presence) {
        Effect::new(move |_| {
            let mut peers: Vec<(confab_shared::Timestamp, String)> =
                self.index.with(|index| index.convos.values().map(|c| (c.last_at, c.with.clone())).collect());
            peers.sort_by_key(|p| std::cmp::Reverse(p.0));
            let mut names: Vec<String> = peers.into_iter().take(DM_PEERS_WATCHED).map(|(_, name)| name).collect();
            names.extend(self.viewing.get());
            presence.set_group("dm", names);
        });
    }

    /// Opens a conversation for its page: loads history and reads it.
    pub fn open(&self, peer: &str) -> Conversation {
        let key = peer.to_lowercase();
        let convo = super::held_entry(self.conversations, key.clone(), || Conversation::new(peer));
        self.viewing.set(Some(key));
        if !convo.loaded.get_untracked() && self.socket.is_open() {
            spawn_local(self.load(convo.clone()));
        }
        self.mark_read(&convo);
        convo
    }

    /// The conversation's page unmounted.
    pub fn close(&self, peer: &str) {
        let key = peer.to_lowercase();
        if self.viewing.get_untracked().as_deref() == Some(key.as_str()) {
            self.viewing.set(None);
        }
    }

    async fn load(self, convo: Conversation) {
        let params = DmHistoryParams { with: convo.with.clone(), before: None, limit: Some(DM_HISTORY) };
        match self.socket.call(params).await {
            Ok(history) => {
                if !convo.loaded.get_untracked() {
                    convo.log.has_more.set(may_have_older(&history, DM_HISTORY, DirectMessage::MAX_JSON_BYTES));
                }
                convo.error.set(None);
                convo.insert(history);
                convo.loaded.set(true);
                self.mark_read(&convo);
            }
            Err(err) if is_connection_error(&err) => {}
            Err(err) => convo.error.set(Some(describe(&err))),
        }
    }

    /// Reveals older messages of a conversation.
    pub async fn load_earlier(self, convo: Conversation) {
        let (with, socket) = (convo.with.clone(), self.socket);
        let fetched = convo
            .log
            .load_earlier(move |before| async move {
                let page = socket.call(DmHistoryParams { with, before: Some(before), limit: Some(PAGE) }).await?;
                let more = may_have_older(&page, PAGE, DirectMessage::MAX_JSON_BYTES);
                Ok((page, more))
            })
            .await;
        if let Err(err) = fetched {
            super::report(self.toasts, &err);
        }
    }

    /// One attempt at sending a queued private message.
    pub async fn deliver(self, convo: Conversation, pending: PendingSend) {
        let params =
            DmSendParams { to: convo.with.clone(), text: pending.text.clone(), nonce: Some(pending.nonce.clone()) };
        let sent = convo.log.attempt(&pending.nonce, self.toasts, "Private message", self.socket.call(params)).await;
        if let Some(receipt) = sent {
            convo.insert([receipt.clone()]);
            self.apply(receipt, false);
        }
    }

    /// The `/pm <user> <text>` shortcut typed in a room; `false` when the text is refused.
    pub fn send_shortcut(&self, to: String, text: String) -> bool {
        if let Err(why) = confab_shared::validate::message_text(&text) {
            self.toasts.error(format!("Message {why}."));
            return false;
        }
        let this = *self;
        spawn_local(async move {
            let params = DmSendParams { to: to.clone(), text, nonce: Some(nonce()) };
            match this.socket.call(params).await {
                Ok(receipt) => {
                    let to = receipt.to.clone();
                    // Files it under the conversation too, so it shows there with its receipt.
                    this.apply(receipt, false);
                    this.toasts.info(format!("Private message delivered to {to}."));
                }
                Err(err) => this.toasts.error(format!("Private message to {to} not sent: {}", describe(&err))),
            }
        });
        true
    }

    /// Moves the conversation's read cursor to the newest message from the peer.
    pub fn mark_read(&self, convo: &Conversation) {
        let Some(me) = self.me() else { return };
        let Some(last) = convo.last_incoming_id(&me) else { return };
        let key = convo.with.to_lowercase();
        let cursor = self.index.with_untracked(|i| i.read.get(&key).copied().unwrap_or(0));
        let unread = self.index.with_untracked(|i| i.convos.get(&key).is_some_and(|c| c.unread > 0));
        if last <= cursor && !unread {
            return;
        }
        self.index.update(|index| index.mark_read(&convo.with, last));
        self.save_index();
        if self.socket.is_open() {
            let socket = self.socket;
            let with = convo.with.clone();
            spawn_local(async move {
                if let Err(err) = socket.call(DmReadParams { with, id: last }).await {
                    leptos::logging::warn!("confab: dm.read failed: {err:?}");
                }
            });
        }
    }

    /// Reads the conversation on screen (the tab came back to the front).
    pub fn mark_on_screen_read(&self) {
        if let Some(convo) = self.on_screen() {
            self.mark_read(&convo);
        }
    }

    /// Another tab read a conversation up to `id`.
    pub fn read_moved(&self, with: &str, id: i64) {
        self.index.update(|index| index.mark_read(with, id));
        self.save_index();
    }

    /// Files a DM under its conversation; `live` DMs from others also raise a notice.
    pub fn apply(&self, dm: DirectMessage, live: bool) {
        let Some(me) = self.me() else { return };
        let from_me = dm.from.eq_ignore_ascii_case(&me);
        let peer = if from_me { dm.to.clone() } else { dm.from.clone() };
        let key = peer.to_lowercase();
        let viewing = self.viewing.get_untracked().as_deref() == Some(key.as_str()) && page_visible();
        let convo = self.if_open(&peer);
        if let Some(convo) = &convo {
            convo.insert([dm.clone()]);
        }
        let mut unread = false;
        self.index.update(|index| unread = index.record(&dm, &peer, from_me, viewing));
        self.save_index();
        if viewing && let Some(convo) = &convo {
            self.mark_read(convo);
        }
        if live && unread && self.viewing.get_untracked().as_deref() != Some(key.as_str()) {
            self.toasts.info(format!("New private message from {peer}."));
        }
    }

    /// A different person (or the first connection): nothing private carries over. The
    /// conversation on screen keeps its (emptied) state, which its page holds.
    pub fn reset_for(&self, user_id: Option<i64>) {
        let viewing = self.viewing.get_untracked();
        self.conversations.update_value(|all| all.retain(|key, _| Some(key) == viewing.as_ref()));
        for convo in self.conversations.with_value(|all| all.values().cloned().collect::<Vec<_>>()) {
            convo.reset();
        }
        let index = user_id.and_then(|id| load_json(&DmIndex::storage_key(id))).unwrap_or_default();
        self.index.set(index);
    }

    /// After a (re)connect: a conversation on screen that never loaded (we were offline
    /// when it opened) loads now; one that did is read.
    pub async fn resume_on_screen(self) {
        if let Some(convo) = self.on_screen() {
            if convo.loaded.get_untracked() {
                self.mark_read(&convo);
            } else {
                self.load(convo).await;
            }
        }
    }
}
