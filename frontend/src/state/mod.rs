//! The app's live state and the policy around the one socket.
//!
//! [`Chat`] holds what the pages show (presence, rooms, joined rooms, conversations) as
//! signals, applies server notifications to them, and implements the socket's [`Hooks`]:
//! which token to present, what to re-join and `sync` after a reconnect, how to answer
//! `session.expiring`. Pages call its methods and render its signals; they never touch
//! the socket's lifecycle themselves.
//!
//! # Layout
//! - [`room`]: one room's log, online users, typing indicator and pending sends.
//! - [`dm`]: conversations and the persisted unread index.
//! - [`presence`]: who is online among the users the tab shows, and its watch set.
//! - `members`: the paged member list of a joined room.

pub mod dm;
pub mod jobs;
mod members;
pub mod presence;
pub mod registry;
pub mod room;
pub mod tokens;
pub mod webhooks;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use confab_shared::rpc::methods::*;
use confab_shared::rpc::notify::ReadCursor;
use confab_shared::rpc::{ErrorObject, Notification, close};
use confab_shared::{DirectMessage, Message, RoomSummary, validate};
use futures::future::LocalBoxFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;

use self::dm::{Conversation, DmIndex};
use self::jobs::{Downloaded, Export};
use self::presence::Presence;
use self::room::{JoinStatus, PAGE, PendingSend, RoomState};
use self::tokens::ApiTokens;
use self::webhooks::Webhooks;
use crate::api::rest;
use crate::api::socket::{CONNECTION_LOST, Hooks, NOT_CONNECTED, Socket};
use crate::components::toasts::Toasts;
use crate::session::Session;
use crate::util::{describe, load_json, nonce, page_visible, save_json};

/// Messages fetched with `room.join` for a room we have nothing of.
const JOIN_HISTORY: u32 = 50;
/// Messages fetched when a conversation opens.
const DM_HISTORY: u32 = 50;
/// The access token is renewed when it has less than this left before a (re)connect.
pub(crate) const REFRESH_MARGIN_MS: f64 = 30_000.0;
/// Upper bound on `sync` round trips after one reconnect (500 items each).
const MAX_SYNC_PAGES: usize = 200;
/// Pages of 200 rooms the room list loads at most.
const ROOM_PAGES: usize = 5;

/// Whether an error only says the connection went away; the reconnect logic redoes that
/// work, so it is not worth a toast.
pub fn is_connection_error(err: &ErrorObject) -> bool {
    matches!(err.code, NOT_CONNECTED | CONNECTION_LOST)
}

/// The shared app state; a copyable handle provided through context.
#[derive(Clone, Copy)]
pub struct Chat {
    pub socket: Socket,
    pub session: Session,
    pub toasts: Toasts,
    /// Presence of the users the tab shows (watched on the server).
    pub presence: Presence,
    /// Bumped on every (re)connect, so lists on screen reload.
    pub connection_epoch: RwSignal<u64>,
    /// The room list as `rooms.list` last returned it.
    pub rooms: RwSignal<Vec<RoomSummary>>,
    pub rooms_loaded: RwSignal<bool>,
    /// The logged-in user's conversations and unread counts.
    pub dm_index: RwSignal<DmIndex>,
    /// The conversation on screen (lower-case peer), whose messages are read as they arrive.
    viewing_dm: RwSignal<Option<String>>,
    /// Rooms with a page open, by the name the page asked for and the server's spelling.
    joined: StoredValue<HashMap<String, RoomState>>,
    /// How many mounted pages hold each room (a route change mounts the next before unmounting the last).
    holds: StoredValue<HashMap<String, usize>>,
    conversations: StoredValue<HashMap<String, Conversation>>,
    /// The user the last opened connection was for (`Some(None)`: anonymous; `None`: none yet).
    /// A reconnect as the same user resumes with `sync`; a different user starts over.
    identity: StoredValue<Option<Option<i64>>>,
    /// The last read cursor sent per room, so it is only ever moved forward once.
    read_sent: StoredValue<HashMap<String, i64>>,
    /// Room exports started from this tab, newest last.
    pub exports: RwSignal<Vec<Export>>,
    /// The logged-in person's API tokens (Settings).
    pub tokens: ApiTokens,
    /// Webhooks, for admins (Settings).
    pub webhooks: Webhooks,
}

impl Chat {
    pub fn new(socket: Socket, session: Session, toasts: Toasts) -> Self {
        let dm_index = session.user_id_untracked().and_then(|id| load_json(&DmIndex::storage_key(id))).unwrap_or_default();
        Self {
            socket,
            session,
            toasts,
            presence: Presence::new(socket),
            connection_epoch: RwSignal::new(0),
            rooms: RwSignal::new(Vec::new()),
            rooms_loaded: RwSignal::new(false),
            dm_index: RwSignal::new(dm_index),
            viewing_dm: RwSignal::new(None),
            joined: StoredValue::new(HashMap::new()),
            holds: StoredValue::new(HashMap::new()),
            conversations: StoredValue::new(HashMap::new()),
            identity: StoredValue::new(None),
            read_sent: StoredValue::new(HashMap::new()),
            exports: RwSignal::new(Vec::new()),
            tokens: ApiTokens::new(session),
            webhooks: Webhooks::new(session),
        }
    }

    /// Wires the socket to this state and opens it.
    pub fn start(self) {
        self.socket.set_hooks(Rc::new(self));
        // Another tab logged in, out, or rotated the tokens.
        let listener = window_event_listener(leptos::ev::storage, move |event| {
            if event.key().as_deref() == Some(crate::session::STORAGE_KEY) && self.session.reload() {
                self.socket.connect();
            }
        });
        // Coming back to the tab reads what arrived while it was hidden.
        let visibility = window_event_listener_untyped("visibilitychange", move |_| {
            if !page_visible() {
                return;
            }
            for state in self.joined_rooms() {
                self.mark_room_read(&state);
            }
            let viewing = self.viewing_dm.get_untracked().and_then(|key| self.conversation_if_open(&key));
            if let Some(convo) = viewing {
                self.mark_dm_read(&convo);
            }
        });
        // Both live as long as the page.
        std::mem::forget(listener);
        std::mem::forget(visibility);
        self.watch_dm_peers();
        self.socket.connect();
    }

    /// Shows an error unless it is only the connection going away.
    pub fn report(&self, err: &ErrorObject) {
        if !is_connection_error(err) {
            self.toasts.error(describe(err));
        }
    }

    // ----- session -------------------------------------------------------------------

    /// Logs in with a fresh token pair: the socket reconnects as that user.
    pub fn logged_in(&self, pair: confab_shared::TokenPair) {
        self.session.store(pair);
        self.socket.connect();
    }

    /// Logs out: forgets the session here, reconnects anonymously, revokes it on the server.
    pub async fn logout(self) {
        let tokens = self.session.tokens_untracked();
        // Forget and reconnect first: the server closes the session's sockets with 4003,
        // and the old socket is already replaced by then, so that is not reported as an
        // unexpected logout.
        self.session.clear();
        self.socket.connect();
        if let Some(tokens) = tokens {
            // A failure (already revoked, server down) changes nothing for this tab.
            let _ = rest::logout(&tokens.access_token).await;
        }
        self.toasts.info("You are logged out.");
    }

    fn end_session(&self, why: &str) {
        if self.session.tokens_untracked().is_some() {
            self.session.clear();
            self.toasts.error(why.to_owned());
        }
    }

    async fn renew_token(self) {
        match self.session.refresh().await {
            Ok(access_token) => {
                if let Err(err) = self.socket.call(AuthRefreshParams { access_token }).await
                    && !is_connection_error(&err)
                {
                    self.toasts.error(format!("Could not renew your session: {}", describe(&err)));
                }
            }
            Err(err) if err.is_transient() => {
                // The server will close with 4001 at expiry; the reconnect refreshes again.
                leptos::logging::warn!("confab: token refresh failed: {err}");
            }
            Err(_) => {
                self.end_session("Your session has ended. Please log in again.");
                self.socket.connect();
            }
        }
    }

    // ----- lists ---------------------------------------------------------------------

    /// Reloads the room list (online counts and unread counts change without notifications):
    /// the first pages, up to [`ROOM_PAGES`] of them.
    pub async fn refresh_rooms(self) {
        let mut all = Vec::new();
        let mut cursor = None;
        for _ in 0..ROOM_PAGES {
            match self.socket.call(RoomsListParams { cursor, limit: Some(200), prefix: None }).await {
                Ok(page) => {
                    all.extend(page.rooms);
                    cursor = page.next_cursor;
                }
                Err(err) => return self.report(&err),
            }
            if cursor.is_none() {
                break;
            }
        }
        self.rooms.set(all);
        self.rooms_loaded.set(true);
    }

    fn upsert_room_summary(&self, summary: RoomSummary) {
        self.rooms.update(|rooms| match rooms.iter_mut().find(|r| r.name == summary.name) {
            Some(existing) => *existing = summary,
            None => rooms.push(summary),
        });
    }

    // ----- rooms ---------------------------------------------------------------------

    /// Opens a room for a page: joins it now if connected (otherwise the next `opened` does).
    pub fn enter_room(&self, name: &str) -> RoomState {
        let mut fresh = false;
        self.holds.update_value(|holds| {
            let count = holds.entry(name.to_owned()).or_insert(0);
            *count += 1;
            fresh = *count == 1;
        });
        let existing = self.joined.with_value(|rooms| rooms.get(name).cloned());
        let state = match existing {
            Some(state) => state,
            None => {
                let state = RoomState::new(name);
                self.joined.update_value(|rooms| {
                    rooms.insert(name.to_owned(), state.clone());
                });
                state
            }
        };
        if fresh && self.socket.is_open() {
            let this = *self;
            let joining = state.clone();
            spawn_local(async move {
                this.join(&joining, JOIN_HISTORY).await;
            });
        }
        // Opening a room reads it.
        self.rooms.update(|rooms| {
            if let Some(summary) = rooms.iter_mut().find(|r| r.name == name) {
                summary.unread = summary.unread.map(|_| 0);
            }
        });
        state
    }

    /// The page of a room unmounted: leave it once no page holds it.
    pub fn exit_room(&self, name: &str) {
        let mut last = false;
        self.holds.update_value(|holds| {
            if let Some(count) = holds.get_mut(name) {
                *count = count.saturating_sub(1);
                last = *count == 0;
                if last {
                    holds.remove(name);
                }
            }
        });
        if !last {
            return;
        }
        let Some(state) = self.joined.with_value(|rooms| rooms.get(name).cloned()) else { return };
        let wire = state.wire_name();
        self.joined.update_value(|rooms| rooms.retain(|_, s| s.name != name));
        if self.socket.is_open() {
            let socket = self.socket;
            spawn_local(async move {
                let _ = socket.call(LeaveParams { room: wire }).await;
            });
        }
    }

    fn room(&self, wire_name: &str) -> Option<RoomState> {
        self.joined.with_value(|rooms| rooms.get(wire_name).cloned())
    }

    fn joined_rooms(&self) -> Vec<RoomState> {
        self.joined.with_value(|rooms| {
            let mut seen = Vec::<RoomState>::new();
            for state in rooms.values() {
                if !seen.iter().any(|s| s.name == state.name) {
                    seen.push(state.clone());
                }
            }
            seen
        })
    }

    async fn join(self, state: &RoomState, history: u32) -> bool {
        if state.status.get_untracked() != JoinStatus::Joined {
            state.status.set(JoinStatus::Joining);
        }
        let params = JoinParams { room: state.name.clone(), history: Some(history) };
        match self.socket.call(params).await {
            Ok(joined) => {
                let was_empty = state.last_id().is_none();
                if joined.room.name != state.name {
                    // The server spells the room differently; notifications use its spelling.
                    let alias = state.clone();
                    self.joined.update_value(|rooms| {
                        rooms.insert(joined.room.name.clone(), alias);
                    });
                }
                state.summary.set(Some(joined.room.clone()));
                state.online.set(joined.online.into_iter().collect());
                state.online_total.set(joined.room.online);
                state.members_cursor.set(joined.online_next_cursor);
                let fetched = joined.history.len();
                state.insert(joined.history);
                if was_empty && history > 0 {
                    state.has_more.set(fetched as u32 >= history);
                }
                state.status.set(JoinStatus::Joined);
                self.upsert_room_summary(joined.room);
                true
            }
            Err(err) if is_connection_error(&err) => false,
            Err(err) => {
                state.status.set(JoinStatus::Failed(self.join_refusal(&err)));
                false
            }
        }
    }

    fn join_refusal(&self, err: &ErrorObject) -> String {
        match err.code {
            -32004 if !self.session.is_logged_in_untracked() => {
                "This room does not exist yet. Log in to create it.".into()
            }
            -32003 => format!("You cannot enter this room: {}", describe(err)),
            _ => describe(err),
        }
    }

    /// Brings an anonymous observer's log up to date after a reconnect (`sync` needs a login):
    /// the newest page, then older pages until they meet what we already had.
    async fn backfill(self, state: &RoomState, last_seen: i64) {
        if !self.join(state, PAGE).await {
            return;
        }
        let mut before = state.messages.with_untracked(|m| {
            let at = m.partition_point(|i| i.id <= last_seen);
            m.get(at).map(|i| i.id)
        });
        for _ in 0..10 {
            let Some(cursor) = before else { return };
            let params = HistoryParams { room: state.wire_name(), before: Some(cursor), limit: Some(PAGE) };
            let Ok(page) = self.socket.call(params).await else { return };
            let done = page.len() < PAGE as usize || page.first().is_none_or(|m| m.id <= last_seen);
            before = page.first().map(|m| m.id);
            state.insert(page);
            if done {
                return;
            }
        }
    }

    /// Reveals older messages: first those already in memory, then a page from the server.
    pub async fn load_earlier(self, state: RoomState) {
        let len = state.messages.with_untracked(Vec::len);
        let window = state.window.get_untracked();
        if len > window {
            state.window.set(window + PAGE as usize);
            return;
        }
        let Some(before) = state.first_id() else { return };
        state.loading_earlier.set(true);
        let params = HistoryParams { room: state.wire_name(), before: Some(before), limit: Some(PAGE) };
        match self.socket.call(params).await {
            Ok(page) => {
                let fetched = page.len();
                state.has_more.set(fetched >= PAGE as usize);
                state.insert(page);
                state.window.set(window + fetched);
            }
            Err(err) => self.report(&err),
        }
        state.loading_earlier.set(false);
    }

    /// Sends a message typed into a room (or a `/pm` shortcut). Returns `false` when the
    /// text was refused before sending, so the composer keeps it.
    pub fn send_to_room(&self, state: &RoomState, raw: &str) -> bool {
        if let Some(command) = parse_pm(raw) {
            return match command {
                Ok((to, text)) => self.send_pm_shortcut(to, text),
                Err(usage) => {
                    self.toasts.error(usage);
                    false
                }
            };
        }
        let text = match validate::message_text(raw) {
            Ok(text) => text.to_owned(),
            Err(why) => {
                self.toasts.error(format!("Message {why}."));
                return false;
            }
        };
        let pending = PendingSend { nonce: nonce(), text, failed: None };
        state.pending.update(|p| p.push(pending.clone()));
        let this = *self;
        let state = state.clone();
        spawn_local(async move { this.deliver_room(state, pending).await });
        true
    }

    /// Tries a pending room message (again); the same nonce makes a retry safe.
    pub fn retry_room(&self, state: &RoomState, nonce: &str) {
        let Some(pending) = state.pending.with_untracked(|p| p.iter().find(|p| p.nonce == nonce).cloned()) else {
            return;
        };
        state.pending.update(|p| {
            if let Some(p) = p.iter_mut().find(|p| p.nonce == nonce) {
                p.failed = None;
            }
        });
        let this = *self;
        let state = state.clone();
        spawn_local(async move { this.deliver_room(state, pending).await });
    }

    async fn deliver_room(self, state: RoomState, pending: PendingSend) {
        let params = SendParams { room: state.wire_name(), text: pending.text.clone(), nonce: Some(pending.nonce.clone()) };
        match self.socket.call(params).await {
            Ok(message) => {
                state.pending.update(|p| p.retain(|p| p.nonce != pending.nonce));
                state.insert([message]);
            }
            Err(err) => {
                let why = describe(&err);
                state.pending.update(|p| {
                    if let Some(p) = p.iter_mut().find(|p| p.nonce == pending.nonce) {
                        p.failed = Some(why.clone());
                    }
                });
                self.toasts.error(format!("Message not sent: {why}"));
            }
        }
    }

    fn send_pm_shortcut(&self, to: String, text: String) -> bool {
        if let Err(why) = validate::message_text(&text) {
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
                    this.apply_dm(receipt, false);
                    this.toasts.info(format!("Private message delivered to {to}."));
                }
                Err(err) => this.toasts.error(format!("Private message to {to} not sent: {}", describe(&err))),
            }
        });
        true
    }

    /// Tells the room we are typing; the server allows one per 2 s, the composer throttles.
    pub fn typing(&self, state: &RoomState) {
        if self.session.is_logged_in_untracked() {
            self.socket.notify(TypingParams { room: state.wire_name() });
        }
    }

    /// Moves the room's read cursor to the newest message on screen.
    pub fn mark_room_read(&self, state: &RoomState) {
        let Some(last) = state.last_id() else { return };
        if !self.session.is_logged_in_untracked() || !self.socket.is_open() {
            return;
        }
        let room = state.wire_name();
        let already = self.read_sent.with_value(|sent| sent.get(&room).copied()).unwrap_or(0);
        if last <= already {
            return;
        }
        self.read_sent.update_value(|sent| {
            sent.insert(room.clone(), last);
        });
        let socket = self.socket;
        spawn_local(async move {
            // Purely bookkeeping: a failure only leaves the unread count a little high.
            if let Err(err) = socket.call(RoomReadParams { room, id: last }).await {
                leptos::logging::warn!("confab: room.read failed: {err:?}");
            }
        });
    }

    /// Edits one of our messages.
    pub async fn edit_message(self, state: RoomState, id: i64, raw: String) -> bool {
        let text = match validate::message_text(&raw) {
            Ok(text) => text.to_owned(),
            Err(why) => {
                self.toasts.error(format!("Message {why}."));
                return false;
            }
        };
        match self.socket.call(EditParams { id, text }).await {
            Ok(message) => {
                state.replace(message);
                true
            }
            Err(err) => {
                self.toasts.error(format!("Could not edit: {}", describe(&err)));
                false
            }
        }
    }

    /// Deletes a message (ours, or anyone's for an admin).
    pub async fn delete_message(self, state: RoomState, id: i64) {
        match self.socket.call(DeleteParams { id }).await {
            Ok(_) => state.mark_deleted(id),
            Err(err) => self.toasts.error(format!("Could not delete: {}", describe(&err))),
        }
    }

    /// Adds or removes our reaction.
    pub async fn react(self, state: RoomState, id: i64, emoji: String, on: bool) {
        match self.socket.call(ReactParams { id, emoji, on }).await {
            Ok(message) => state.replace(message),
            Err(err) => self.toasts.error(format!("Could not react: {}", describe(&err))),
        }
    }

    // ----- exports -------------------------------------------------------------------

    /// A usable access token for a REST call, refreshed first when it is about to expire.
    async fn access_token(self) -> Result<String, String> {
        self.session.access_token(REFRESH_MARGIN_MS).await.map_err(|e| e.message)
    }

    /// Starts exporting a room's history and follows its progress.
    pub async fn start_export(self, room: String, format: confab_shared::ExportFormat) {
        let body = confab_shared::CreateJob { kind: confab_shared::JobKind::ExportRoom, room: room.clone(), format: format.clone() };
        let token = match self.access_token().await {
            Ok(token) => token,
            Err(why) => return self.toasts.error(format!("Could not start the export: {why}")),
        };
        let accepted = match rest::create_export(&token, &body).await {
            Ok(accepted) => accepted,
            Err(err) => return self.toasts.error(format!("Could not start the export: {}", err.message)),
        };
        let job_id = accepted.job_id;
        self.exports.update(|all| all.push(Export::new(job_id, room, format)));
        self.subscribe_job(job_id).await;
    }

    /// `job.subscribe`: its answer is the job's state now, which may already be final.
    async fn subscribe_job(self, job_id: i64) {
        match self.socket.call(JobSubscribeParams { job_id }).await {
            Ok(job) => self.job_update(job),
            // The reconnect subscribes again.
            Err(err) if is_connection_error(&err) => {}
            Err(err) => {
                let why = describe(&err);
                self.exports.update(|all| {
                    if let Some(export) = all.iter_mut().find(|e| e.job_id == job_id) {
                        export.error = Some(why.clone());
                    }
                });
                self.toasts.error(format!("Cannot follow the export: {why}"));
            }
        }
    }

    async fn resubscribe_jobs(self) {
        let active: Vec<i64> = self.exports.with_untracked(|all| all.iter().filter(|e| e.is_active()).map(|e| e.job_id).collect());
        for job_id in active {
            self.subscribe_job(job_id).await;
        }
    }

    /// A job's state from `job.subscribe` or `job.finished`; a finished export is fetched.
    fn job_update(&self, job: confab_shared::Job) {
        let mut fetch = false;
        self.exports.update(|all| {
            if let Some(export) = all.iter_mut().find(|e| e.job_id == job.id) {
                export.apply_job(&job);
                if export.state == confab_shared::JobState::Done && export.file.is_none() && !export.fetching {
                    export.fetching = true;
                    fetch = true;
                }
            }
        });
        if fetch {
            spawn_local(self.fetch_export(job.id));
        }
    }

    /// Downloads a finished export with the bearer token and keeps it as a `blob:` URL.
    pub async fn fetch_export(self, job_id: i64) {
        let Some(export) = self.exports.with_untracked(|all| all.iter().find(|e| e.job_id == job_id).cloned()) else {
            return;
        };
        self.set_export(job_id, |e| {
            e.fetching = true;
            e.error = None;
        });
        let outcome = match self.access_token().await {
            Ok(token) => match rest::download_export(&token, job_id).await {
                Ok(file) => jobs::blob_url(&file).map(|url| Downloaded {
                    url,
                    filename: file.filename.clone().unwrap_or_else(|| export.fallback_filename()),
                    bytes: file.bytes.len(),
                }),
                Err(err) => Err(err.message),
            },
            Err(why) => Err(why),
        };
        match outcome {
            Ok(file) => self.set_export(job_id, |e| {
                e.fetching = false;
                e.file = Some(file);
            }),
            Err(why) => {
                self.set_export(job_id, |e| {
                    e.fetching = false;
                    e.error = Some(format!("Could not download the export: {why}"));
                });
            }
        }
    }

    fn set_export(&self, job_id: i64, change: impl FnOnce(&mut Export)) {
        self.exports.update(|all| {
            if let Some(export) = all.iter_mut().find(|e| e.job_id == job_id) {
                change(export);
            }
        });
    }

    /// Forgets every export (another user logged in); frees their files.
    fn clear_exports(&self) {
        let old = self.exports.try_update(std::mem::take).unwrap_or_default();
        for export in old {
            if let Some(file) = export.file {
                jobs::revoke(&file.url);
            }
        }
    }

    /// Removes one finished export from the list.
    pub fn dismiss_export(&self, job_id: i64) {
        let mut removed = None;
        self.exports.update(|all| {
            if let Some(at) = all.iter().position(|e| e.job_id == job_id) {
                removed = Some(all.remove(at));
            }
        });
        if let Some(file) = removed.and_then(|e| e.file) {
            jobs::revoke(&file.url);
        }
    }

    // ----- direct messages -----------------------------------------------------------

    fn me(&self) -> Option<String> {
        self.session.tokens_untracked().map(|t| t.user.username)
    }

    fn save_dm_index(&self) {
        if let Some(id) = self.session.user_id_untracked() {
            self.dm_index.with_untracked(|index| save_json(&DmIndex::storage_key(id), index));
        }
    }

    fn conversation_if_open(&self, peer: &str) -> Option<Conversation> {
        self.conversations.with_value(|c| c.get(&peer.to_lowercase()).cloned())
    }

    /// Opens a conversation for its page: loads history and reads it.
    pub fn open_conversation(&self, peer: &str) -> Conversation {
        let key = peer.to_lowercase();
        let convo = match self.conversation_if_open(peer) {
            Some(convo) => convo,
            None => {
                let convo = Conversation::new(peer);
                self.conversations.update_value(|c| {
                    c.insert(key.clone(), convo.clone());
                });
                convo
            }
        };
        self.viewing_dm.set(Some(key));
        if !convo.loaded.get_untracked() && self.socket.is_open() {
            let this = *self;
            let loading = convo.clone();
            spawn_local(async move { this.load_conversation(loading).await });
        }
        self.mark_dm_read(&convo);
        convo
    }

    /// The conversation's page unmounted.
    pub fn close_conversation(&self, peer: &str) {
        let key = peer.to_lowercase();
        if self.viewing_dm.get_untracked().as_deref() == Some(key.as_str()) {
            self.viewing_dm.set(None);
        }
    }

    async fn load_conversation(self, convo: Conversation) {
        let params = DmHistoryParams { with: convo.with.clone(), before: None, limit: Some(DM_HISTORY) };
        match self.socket.call(params).await {
            Ok(history) => {
                if !convo.loaded.get_untracked() {
                    convo.has_more.set(history.len() >= DM_HISTORY as usize);
                }
                convo.error.set(None);
                convo.insert(history);
                convo.loaded.set(true);
                self.mark_dm_read(&convo);
            }
            Err(err) if is_connection_error(&err) => {}
            Err(err) => convo.error.set(Some(describe(&err))),
        }
    }

    /// Reveals older messages of a conversation.
    pub async fn load_earlier_dms(self, convo: Conversation) {
        let len = convo.messages.with_untracked(Vec::len);
        let window = convo.window.get_untracked();
        if len > window {
            convo.window.set(window + PAGE as usize);
            return;
        }
        let Some(before) = convo.first_id() else { return };
        convo.loading_earlier.set(true);
        let params = DmHistoryParams { with: convo.with.clone(), before: Some(before), limit: Some(PAGE) };
        match self.socket.call(params).await {
            Ok(page) => {
                let fetched = page.len();
                convo.has_more.set(fetched >= PAGE as usize);
                convo.insert(page);
                convo.window.set(window + fetched);
            }
            Err(err) => self.report(&err),
        }
        convo.loading_earlier.set(false);
    }

    /// Sends a private message from a conversation page.
    pub fn send_dm(&self, convo: &Conversation, raw: &str) -> bool {
        let text = match validate::message_text(raw) {
            Ok(text) => text.to_owned(),
            Err(why) => {
                self.toasts.error(format!("Message {why}."));
                return false;
            }
        };
        let pending = PendingSend { nonce: nonce(), text, failed: None };
        convo.pending.update(|p| p.push(pending.clone()));
        let this = *self;
        let convo = convo.clone();
        spawn_local(async move { this.deliver_dm(convo, pending).await });
        true
    }

    /// Tries a pending private message again, with the same nonce.
    pub fn retry_dm(&self, convo: &Conversation, nonce: &str) {
        let Some(pending) = convo.pending.with_untracked(|p| p.iter().find(|p| p.nonce == nonce).cloned()) else {
            return;
        };
        convo.pending.update(|p| {
            if let Some(p) = p.iter_mut().find(|p| p.nonce == nonce) {
                p.failed = None;
            }
        });
        let this = *self;
        let convo = convo.clone();
        spawn_local(async move { this.deliver_dm(convo, pending).await });
    }

    async fn deliver_dm(self, convo: Conversation, pending: PendingSend) {
        let params = DmSendParams { to: convo.with.clone(), text: pending.text.clone(), nonce: Some(pending.nonce.clone()) };
        match self.socket.call(params).await {
            Ok(receipt) => {
                convo.pending.update(|p| p.retain(|p| p.nonce != pending.nonce));
                convo.insert([receipt.clone()]);
                self.apply_dm(receipt, false);
            }
            Err(err) => {
                let why = describe(&err);
                convo.pending.update(|p| {
                    if let Some(p) = p.iter_mut().find(|p| p.nonce == pending.nonce) {
                        p.failed = Some(why.clone());
                    }
                });
                self.toasts.error(format!("Private message not sent: {why}"));
            }
        }
    }

    /// Discards a pending message that failed.
    pub fn discard_pending(pending: &ArcRwSignal<Vec<PendingSend>>, nonce: &str) {
        pending.update(|p| p.retain(|p| p.nonce != nonce));
    }

    /// Moves the conversation's read cursor to the newest message from the peer.
    pub fn mark_dm_read(&self, convo: &Conversation) {
        let Some(me) = self.me() else { return };
        let Some(last) = convo.last_incoming_id(&me) else { return };
        let key = convo.with.to_lowercase();
        let cursor = self.dm_index.with_untracked(|i| i.read.get(&key).copied().unwrap_or(0));
        let unread = self.dm_index.with_untracked(|i| i.convos.get(&key).is_some_and(|c| c.unread > 0));
        if last <= cursor && !unread {
            return;
        }
        self.dm_index.update(|index| index.mark_read(&convo.with, last));
        self.save_dm_index();
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

    /// Files a DM under its conversation; `live` DMs from others also raise a notice.
    fn apply_dm(&self, dm: DirectMessage, live: bool) {
        let Some(me) = self.me() else { return };
        let from_me = dm.from.eq_ignore_ascii_case(&me);
        let peer = if from_me { dm.to.clone() } else { dm.from.clone() };
        let key = peer.to_lowercase();
        let viewing = self.viewing_dm.get_untracked().as_deref() == Some(key.as_str()) && page_visible();
        let convo = self.conversation_if_open(&peer);
        if let Some(convo) = &convo {
            convo.insert([dm.clone()]);
        }
        let mut unread = false;
        self.dm_index.update(|index| unread = index.record(&dm, &peer, from_me, viewing));
        self.save_dm_index();
        if viewing && let Some(convo) = &convo {
            self.mark_dm_read(convo);
        }
        if live && unread && self.viewing_dm.get_untracked().as_deref() != Some(key.as_str()) {
            self.toasts.info(format!("New private message from {peer}."));
        }
    }

    // ----- notifications and reconnects ----------------------------------------------

    fn apply(&self, notification: Notification) {
        match notification {
            Notification::PresenceChanged(presence) => self.presence.apply(presence),
            Notification::RoomOnlineChanged(count) => {
                if let Some(state) = self.room(&count.room) {
                    state.online_total.set(count.online);
                    // Many came and went: the names on screen are stale, reload the first page.
                    spawn_local(self.reload_members(state));
                }
            }
            Notification::RoomMessage(message) => {
                if let Some(state) = self.room(&message.room) {
                    state.insert([message]);
                }
            }
            Notification::UserJoined(user) => {
                if let Some(state) = self.room(&user.room) {
                    if self.session.is_me_untracked(&user.username) {
                        // Our own join (this tab's or another's): we know; no line for it.
                        state.online.update(|o| {
                            o.insert(user.username.clone());
                        });
                        return;
                    }
                    let added = state.online.try_update(|o| o.insert(user.username.clone())).unwrap_or(false);
                    if added {
                        state.online_total.update(|n| *n += 1);
                        state.add_event(format!("{} joined", user.username));
                    }
                }
            }
            Notification::UserLeft(user) => {
                if let Some(state) = self.room(&user.room) {
                    state.online_total.update(|n| *n = n.saturating_sub(1));
                    state.online.update(|o| o.retain(|n| !n.eq_ignore_ascii_case(&user.username)));
                    state.typing.update(|t| t.retain(|(n, _)| !n.eq_ignore_ascii_case(&user.username)));
                    state.add_event(format!("{} left", user.username));
                }
            }
            Notification::Typing(user) => {
                if let Some(state) = self.room(&user.room)
                    && !self.session.is_me_untracked(&user.username)
                {
                    state.typing_started(&user.username);
                }
            }
            Notification::MessageEdited(message) | Notification::MessageReacted(message) => {
                if let Some(state) = self.room(&message.room) {
                    state.replace(message);
                }
            }
            Notification::MessageDeleted(deleted) => {
                if let Some(state) = self.room(&deleted.room) {
                    state.mark_deleted(deleted.id);
                }
            }
            Notification::DmMessage(dm) => self.apply_dm(dm, true),
            Notification::Notice(notice) => self.toasts.info(notice_text(&notice.payload)),
            Notification::SessionExpiring(_) => spawn_local(self.renew_token()),
            Notification::ReadMoved(ReadCursor::Dm { with, id }) => {
                self.dm_index.update(|index| index.mark_read(&with, id));
                self.save_dm_index();
            }
            Notification::ReadMoved(ReadCursor::Room { room, id }) => {
                self.read_sent.update_value(|sent| {
                    let cursor = sent.entry(room.clone()).or_insert(0);
                    *cursor = (*cursor).max(id);
                });
                self.rooms.update(|rooms| {
                    if let Some(summary) = rooms.iter_mut().find(|r| r.name == room) {
                        summary.unread = summary.unread.map(|_| 0);
                    }
                });
            }
            // Jobs this tab did not start (another tab's) are not ours to show.
            Notification::JobProgress(progress) => {
                self.exports.update(|all| {
                    if let Some(export) = all.iter_mut().find(|e| e.job_id == progress.job_id) {
                        export.apply_progress(&progress);
                    }
                });
            }
            Notification::JobFinished(job) => self.job_update(job),
        }
    }

    async fn on_open(self) {
        let identity = self.session.user_id_untracked();
        let resume = self.identity.get_value() == Some(identity);
        self.identity.set_value(Some(identity));
        if !resume {
            // A different person (or the first connection): nothing private carries over.
            // The conversation on screen keeps its (emptied) state, which its page holds.
            let viewing = self.viewing_dm.get_untracked();
            self.conversations.update_value(|all| all.retain(|key, _| Some(key) == viewing.as_ref()));
            for convo in self.conversations.with_value(|all| all.values().cloned().collect::<Vec<_>>()) {
                convo.reset();
            }
            self.read_sent.update_value(HashMap::clear);
            let index = identity.and_then(|id| load_json(&DmIndex::storage_key(id))).unwrap_or_default();
            self.dm_index.set(index);
        }
        self.presence.rewatch();
        self.connection_epoch.update(|n| *n += 1);
        spawn_local(self.refresh_rooms());
        if resume {
            // A `job.finished` may have been sent while we were away.
            spawn_local(self.resubscribe_jobs());
        } else {
            self.clear_exports();
        }

        let mut last_seen = BTreeMap::new();
        for state in self.joined_rooms() {
            match state.last_id() {
                Some(last) if resume && identity.is_some() => {
                    if self.join(&state, 0).await {
                        last_seen.insert(state.wire_name(), last);
                    }
                }
                Some(last) if resume => self.backfill(&state, last).await,
                _ => {
                    self.join(&state, JOIN_HISTORY).await;
                }
            }
        }
        if identity.is_some() {
            self.sync(last_seen).await;
        }
        // A conversation on screen that never loaded (we were offline when it opened).
        let viewing = self.viewing_dm.get_untracked().and_then(|key| self.conversation_if_open(&key));
        if let Some(convo) = viewing {
            if convo.loaded.get_untracked() {
                self.mark_dm_read(&convo);
            } else {
                self.load_conversation(convo).await;
            }
        }
    }

    /// Catches up with everything newer than what we hold, page by page.
    async fn sync(self, mut rooms: BTreeMap<String, i64>) {
        for _ in 0..MAX_SYNC_PAGES {
            let dm_after = Some(self.dm_index.with_untracked(|i| i.after));
            let params = SyncParams { rooms: rooms.clone(), dm_after };
            let result = match self.socket.call(params).await {
                Ok(result) => result,
                Err(err) => return self.report(&err),
            };
            let progressed = !result.messages.is_empty() || !result.dms.is_empty();
            let mut by_room: HashMap<String, Vec<Message>> = HashMap::new();
            for message in result.messages {
                if let Some(last) = rooms.get_mut(&message.room) {
                    *last = (*last).max(message.id);
                }
                by_room.entry(message.room.clone()).or_default().push(message);
            }
            for (room, messages) in by_room {
                if let Some(state) = self.room(&room) {
                    state.insert(messages);
                }
            }
            for dm in result.dms {
                self.apply_dm(dm, false);
            }
            if result.complete || !progressed {
                return;
            }
        }
    }
}

impl Hooks for Chat {
    fn credentials(&self, suspect: bool) -> LocalBoxFuture<'static, Option<String>> {
        let this = *self;
        Box::pin(async move {
            let tokens = this.session.tokens_untracked()?;
            let expiring = tokens.expires_within(REFRESH_MARGIN_MS);
            if !expiring && !suspect {
                return Some(tokens.access_token);
            }
            if !expiring {
                // The last upgrade with this token was refused before opening. Only a 401
                // here means the token is the problem; otherwise the server is, and the
                // backoff handles that.
                match rest::me(&tokens.access_token).await {
                    Err(err) if err.is_unauthorized() => {}
                    _ => return Some(tokens.access_token),
                }
            }
            match this.session.refresh().await {
                Ok(access_token) => Some(access_token),
                Err(err) if err.is_transient() => Some(tokens.access_token),
                Err(_) => {
                    this.end_session("Your session has expired. Please log in again.");
                    None
                }
            }
        })
    }

    fn opened(&self) {
        spawn_local(self.on_open());
    }

    fn closed(&self, code: u16, _was_open: bool) {
        if code == close::LOGGED_OUT {
            self.end_session("You were logged out: this session was ended on the server.");
        }
        for state in self.joined_rooms() {
            state.typing.set(Vec::new());
        }
    }

    fn notification(&self, notification: Notification) {
        self.apply(notification);
    }
}

/// Words for a `notice` payload: a string, an object's `text`/`message`, or compact JSON.
fn notice_text(payload: &serde_json::Value) -> String {
    let text = match payload {
        serde_json::Value::String(s) => s.clone(),
        other => ["text", "message"]
            .iter()
            .find_map(|k| other.get(k).and_then(|v| v.as_str()).map(str::to_owned))
            .unwrap_or_else(|| other.to_string()),
    };
    let short: String = text.chars().take(300).collect();
    format!("Notice: {short}")
}

/// Recognises the `/pm <user> <text>` shortcut: `None` when the text is not a command,
/// `Some(Err(usage))` when it is one without a user or text.
pub fn parse_pm(raw: &str) -> Option<Result<(String, String), &'static str>> {
    const USAGE: &str = "Usage: /pm <user> <text>";
    let rest = raw.trim_start().strip_prefix("/pm")?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None; // "/pmfoo" is just text
    }
    let rest = rest.trim_start();
    let (user, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let text = text.trim();
    if user.is_empty() || text.is_empty() {
        return Some(Err(USAGE));
    }
    Some(Ok((user.to_owned(), text.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::socket::TIMED_OUT;

    #[test]
    fn pm_shortcut_is_parsed() {
        assert_eq!(parse_pm("/pm bob hello there"), Some(Ok(("bob".into(), "hello there".into()))));
        assert_eq!(parse_pm("/pm bob"), Some(Err("Usage: /pm <user> <text>")));
        assert_eq!(parse_pm("/pm"), Some(Err("Usage: /pm <user> <text>")));
        assert_eq!(parse_pm("/pmx"), None);
        assert_eq!(parse_pm("hello /pm bob x"), None);
    }

    #[test]
    fn timeouts_are_not_connection_errors() {
        assert!(is_connection_error(&ErrorObject { code: CONNECTION_LOST, message: String::new(), data: None }));
        assert!(!is_connection_error(&ErrorObject { code: TIMED_OUT, message: String::new(), data: None }));
    }
}
