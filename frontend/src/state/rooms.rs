//! Rooms: the room list, the rooms a page holds open, and everything done in one.
//!
//! A room is joined while at least one mounted page holds it (a route change mounts the
//! next page before unmounting the last, so holds are counted) and left when the last one
//! lets go. After a reconnect every held room is joined again; see [`Rooms::rejoin`].

use std::collections::{BTreeMap, HashMap};

use confab_shared::moderation::{
    ConfigureParams, ModerationAction, ModerationApplied, RoomRole, RoomSettings, Sanction, SetRoleParams, UnbanParams, UnmuteParams,
};
use confab_shared::rpc::ErrorObject;
use confab_shared::rpc::methods::*;
use confab_shared::{Message, RoomSummary};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::is_connection_error;
use super::log::{PAGE, PendingSend, may_have_older};
use super::REFRESH_MARGIN_MS;
use super::moderation::{Rank, Restriction, removal};
use super::room_state::{JoinStatus, MsgItem, RoomState};
use crate::api::rest;
use crate::api::socket::Socket;
use crate::components::toasts::Toasts;
use crate::session::Session;
use crate::util::describe;

/// Messages fetched with `room.join` for a room we have nothing of.
pub const JOIN_HISTORY: u32 = 50;
/// Pages of 200 rooms the room list loads at most.
const ROOM_PAGES: usize = 5;
/// Joined rooms the sidebar lists at most (the room list pages through the rest).
const MINE_LIMIT: u32 = 200;
/// Room members fetched per page in the member panel.
const MEMBERS_PAGE: u32 = 100;

/// The rooms of this tab; a copyable handle.
#[derive(Clone, Copy)]
pub struct Rooms {
    socket: Socket,
    session: Session,
    toasts: Toasts,
    /// The room list as `rooms.list` last returned it.
    pub list: RwSignal<Vec<RoomSummary>>,
    pub loaded: RwSignal<bool>,
    /// The rooms this user has joined (the sidebar), by name: `rooms.list` with `member`.
    pub mine: RwSignal<Vec<RoomSummary>>,
    /// Rooms with a page open, by the name the page asked for and the server's spelling.
    joined: StoredValue<HashMap<String, RoomState>>,
    /// How many mounted pages hold each room.
    holds: StoredValue<HashMap<String, usize>>,
    /// The last read cursor sent per room, so it is only ever moved forward once.
    read_sent: StoredValue<HashMap<String, i64>>,
}

impl Rooms {
    pub fn new(socket: Socket, session: Session, toasts: Toasts) -> Self {
        Self {
            socket,
            session,
            toasts,
            list: RwSignal::new(Vec::new()),
            loaded: RwSignal::new(false),
            mine: RwSignal::new(Vec::new()),
            joined: StoredValue::new(HashMap::new()),
            holds: StoredValue::new(HashMap::new()),
            read_sent: StoredValue::new(HashMap::new()),
        }
    }

    fn report(&self, err: &ErrorObject) {
        super::report(self.toasts, err);
    }

    // ----- the list ------------------------------------------------------------------

    /// Reloads the room list (online counts and unread counts change without notifications):
    /// the first pages, up to [`ROOM_PAGES`] of them.
    pub async fn refresh(self) {
        let mut all = Vec::new();
        let mut cursor = None;
        for _ in 0..ROOM_PAGES {
            match self.socket.call(RoomsListParams { cursor, limit: Some(200), prefix: None, member: None }).await {
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
        self.list.set(all);
        self.loaded.set(true);
    }

    /// Reloads the rooms this user has joined: one page of [`MINE_LIMIT`], by name. Nothing
    /// for anonymous tabs (they are members of nothing).
    pub async fn refresh_mine(self) {
        if !self.session.is_logged_in_untracked() {
            self.mine.set(Vec::new());
            return;
        }
        let params = RoomsListParams { cursor: None, limit: Some(MINE_LIMIT), prefix: None, member: Some(true) };
        match self.socket.call(params).await {
            Ok(page) => self.mine.set(page.rooms),
            Err(err) if is_connection_error(&err) => {}
            Err(err) => self.report(&err),
        }
    }

    fn upsert_summary(&self, summary: RoomSummary) {
        let upsert = |rooms: &mut Vec<RoomSummary>, summary: RoomSummary| match rooms.iter_mut().find(|r| r.name == summary.name) {
            Some(existing) => *existing = summary,
            None => rooms.push(summary),
        };
        // Joining makes a logged-in user a member: the sidebar lists the room from now on.
        if self.session.is_logged_in_untracked() {
            self.mine.update(|rooms| {
                upsert(rooms, summary.clone());
                rooms.sort_by(|a, b| a.name.cmp(&b.name));
            });
        }
        self.list.update(|rooms| upsert(rooms, summary));
    }

    fn clear_unread(&self, name: &str) {
        let clear = |rooms: &mut Vec<RoomSummary>| {
            if let Some(summary) = rooms.iter_mut().find(|r| r.name == name) {
                summary.unread = summary.unread.map(|_| 0);
                summary.mentions = summary.mentions.map(|_| 0);
            }
        };
        self.list.update(clear);
        self.mine.update(clear);
    }

    /// A `mention` of the reader: one more on the room's count, unless a page has the room
    /// open (opening a room reads it).
    pub fn mentioned(&self, room: &str) {
        if self.holds.with_value(|holds| holds.get(room).is_some_and(|n| *n > 0)) {
            return;
        }
        self.list.update(|rooms| {
            if let Some(summary) = rooms.iter_mut().find(|r| r.name == room) {
                summary.mentions = Some(summary.mentions.unwrap_or(0) + 1);
            }
        });
    }

    /// Unread mentions in all the listed rooms.
    pub fn total_mentions(&self) -> i64 {
        self.list.with(|rooms| rooms.iter().filter_map(|r| r.mentions).sum())
    }

    // ----- holding rooms open --------------------------------------------------------

    /// Opens a room for a page: joins it now if connected (otherwise the next `opened` does).
    pub fn enter(&self, name: &str) -> RoomState {
        let mut fresh = false;
        self.holds.update_value(|holds| {
            let count = holds.entry(name.to_owned()).or_insert(0);
            *count += 1;
            fresh = *count == 1;
        });
        let state = super::held_entry(self.joined, name.to_owned(), || RoomState::new(name));
        if fresh && self.socket.is_open() {
            let this = *self;
            let joining = state.clone();
            spawn_local(async move {
                this.join(&joining, JOIN_HISTORY).await;
            });
        }
        // Opening a room reads it.
        self.clear_unread(name);
        state
    }

    /// The page of a room unmounted: leave it once no page holds it.
    pub fn exit(&self, name: &str) {
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

    /// A held room by either spelling.
    pub fn get(&self, wire_name: &str) -> Option<RoomState> {
        self.joined.with_value(|rooms| rooms.get(wire_name).cloned())
    }

    /// Every held room once.
    pub fn held(&self) -> Vec<RoomState> {
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
                state.role.set(joined.role);
                // A mute decided while this page was away is known before the first keystroke.
                match &joined.muted {
                    Some(mute) => state.restrict(Restriction::muted(mute)),
                    None => state.lift(Sanction::Muted),
                }
                state.online.set(joined.online.into_iter().collect());
                state.online_total.set(joined.room.online);
                state.members_cursor.set(joined.online_next_cursor);
                state.insert(joined.history);
                if was_empty && history > 0 {
                    state.log.has_more.set(joined.history_more);
                }
                state.status.set(JoinStatus::Joined);
                self.upsert_summary(joined.room);
                let admin = self.session.tokens_untracked().is_some_and(|t| t.user.is_admin);
                if Rank::of(joined.role, admin).moderates() {
                    spawn_local(self.load_mutes(state.clone()));
                }
                true
            }
            Err(err) if is_connection_error(&err) => false,
            Err(err) if Restriction::banned(&err) => {
                let rejoin_at = Restriction::until(&err).map(|t| t.millis() as f64);
                state.status.set(JoinStatus::Removed { why: Restriction::ban_text(&err), rejoin_at });
                false
            }
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

    /// After a (re)connect: joins every held room again. Returns the newest id held per
    /// room that `sync` must catch up from (`resume` as a logged-in user); an anonymous
    /// observer is brought up to date here by [`Rooms::backfill`] instead.
    pub async fn rejoin(self, resume: bool, logged_in: bool) -> BTreeMap<String, i64> {
        if !resume {
            self.read_sent.update_value(HashMap::clear);
        }
        let mut last_seen = BTreeMap::new();
        for state in self.held() {
            match state.last_id() {
                Some(last) if resume && logged_in => {
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
        last_seen
    }

    /// Brings an anonymous observer's log up to date after a reconnect (`sync` needs a login):
    /// the newest page, then older pages until they meet what we already had.
    async fn backfill(self, state: &RoomState, last_seen: i64) {
        if !self.join(state, PAGE).await {
            return;
        }
        let mut before = state.log.messages.with_untracked(|m| {
            let at = m.partition_point(|i| i.id <= last_seen);
            m.get(at).map(|i| i.id)
        });
        for _ in 0..10 {
            let Some(cursor) = before else { return };
            let params = HistoryParams { room: state.wire_name(), before: Some(cursor), limit: Some(PAGE) };
            let Ok(page) = self.socket.call(params).await else { return };
            let done = !may_have_older(&page, PAGE, Message::MAX_JSON_BYTES) || page.first().is_none_or(|m| m.id <= last_seen);
            before = page.first().map(|m| m.id);
            state.insert(page);
            if done {
                return;
            }
        }
    }

    /// Files what `sync` brought, by room.
    pub fn synced(&self, messages: Vec<Message>) {
        let mut by_room: HashMap<String, Vec<Message>> = HashMap::new();
        for message in messages {
            by_room.entry(message.room.clone()).or_default().push(message);
        }
        for (room, messages) in by_room {
            if let Some(state) = self.get(&room) {
                state.insert(messages);
            }
        }
    }

    // ----- in a room -----------------------------------------------------------------

    /// Reveals older messages of a room.
    pub async fn load_earlier(self, state: RoomState) {
        let room = state.wire_name();
        let socket = self.socket;
        let fetched = state
            .log
            .load_earlier(move |before| async move {
                let page = socket.call(HistoryParams { room, before: Some(before), limit: Some(PAGE) }).await?;
                let more = may_have_older(&page, PAGE, Message::MAX_JSON_BYTES);
                Ok((page.into_iter().map(MsgItem::new).collect(), more))
            })
            .await;
        if let Err(err) = fetched {
            self.report(&err);
        }
    }

    /// One attempt at sending a queued room message.
    pub async fn deliver(self, state: RoomState, pending: PendingSend) {
        let params =
            SendParams { room: state.wire_name(), text: pending.text.clone(), nonce: Some(pending.nonce.clone()) };
        let call = self.socket.call(params);
        // A mute or slow mode refusal also holds the composer back, saying why and until when.
        let explained = async {
            let result = call.await;
            if let Err(err) = &result
                && let Some(restriction) = Restriction::from_error(err)
            {
                state.restrict(restriction);
            }
            result
        };
        let sent = state.log.attempt(&pending.nonce, self.toasts, "Message", explained).await;
        if let Some(message) = sent {
            state.insert([message]);
        }
    }

    /// Tells the room we are typing; the server allows one per 2 s, the composer throttles.
    pub fn typing(&self, state: &RoomState) {
        if self.session.is_logged_in_untracked() {
            self.socket.notify(TypingParams { room: state.wire_name() });
        }
    }

    /// Moves the room's read cursor to the newest message on screen.
    pub fn mark_read(&self, state: &RoomState) {
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

    /// Another tab (or this one) read a room up to `id`.
    pub fn read_moved(&self, room: String, id: i64) {
        self.read_sent.update_value(|sent| {
            let cursor = sent.entry(room.clone()).or_insert(0);
            *cursor = (*cursor).max(id);
        });
        self.clear_unread(&room);
    }

    /// Reads every held room (the tab came back to the front).
    pub fn mark_all_read(&self) {
        for state in self.held() {
            self.mark_read(&state);
        }
    }

    /// Edits one of our messages.
    pub async fn edit(self, state: RoomState, id: i64, raw: String) -> bool {
        let text = match confab_shared::validate::message_text(&raw) {
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
    pub async fn delete(self, state: RoomState, id: i64) {
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

    // ----- moderation ------------------------------------------------------------------

    /// A decision about us in a held room: a mute holds the composer back, a kick or a ban
    /// ends the room view with the reason (and a way back once there is one), a new role
    /// changes the actions offered.
    pub fn moderated(&self, applied: &ModerationApplied) {
        let Some(state) = applied.room.as_deref().and_then(|room| self.get(room)) else { return };
        match applied.action {
            ModerationAction::Mute => state.restrict(Restriction::muted(applied)),
            ModerationAction::Unmute => state.lift(Sanction::Muted),
            ModerationAction::Kick | ModerationAction::Ban => {
                if let Some(why) = removal(applied) {
                    let rejoin_at = match applied.action {
                        ModerationAction::Kick => Some(0.0),
                        _ => applied.until.map(|t| t.millis() as f64),
                    };
                    state.status.set(JoinStatus::Removed { why, rejoin_at });
                }
            }
            // Kept out by a ban that was just lifted: the way back opens at once.
            ModerationAction::Unban if matches!(state.status.get_untracked(), JoinStatus::Removed { .. }) => {
                let room = applied.room.as_deref().unwrap_or("this room");
                let why = format!("{} lifted your ban from #{room}. You may join it again.", applied.by);
                state.status.set(JoinStatus::Removed { why, rejoin_at: Some(0.0) });
            }
            ModerationAction::SetRole => {
                let role = applied.role.unwrap_or(RoomRole::Member);
                state.role.set(role);
                if let Some(me) = self.session.username() {
                    state.summary.update(|s| {
                        if let Some(s) = s {
                            set_listed_role(s, &me, role);
                        }
                    });
                }
            }
            _ => {}
        }
    }

    /// Who is muted in the room, for the member menu of those who run it (the first 200;
    /// the settings panel pages the rest).
    async fn load_mutes(self, state: RoomState) {
        let room = state.wire_name();
        let page = async { rest::room_sanctions(&self.session.access_token(REFRESH_MARGIN_MS).await?, &room, "mutes", "", "200").await }.await;
        // Unknown (the request failed), the menu offers "Mute"; the settings panel still lifts.
        if let Ok(page) = page {
            state.muted_members.set(page.sanctions.iter().map(|s| s.user.to_ascii_lowercase()).collect());
        }
    }

    /// Joins a room again after a kick, or after a ban ended.
    pub fn join_again(&self, state: RoomState) {
        let this = *self;
        spawn_local(async move {
            this.join(&state, JOIN_HISTORY).await;
        });
    }

    /// Lifts `user`'s ban (`Sanction::Banned`) or mute in the room.
    pub async fn lift(self, state: RoomState, kind: Sanction, user: String) -> Result<(), ErrorObject> {
        let room = state.wire_name();
        if kind == Sanction::Banned {
            self.socket.call(UnbanParams { room, user }).await?;
        } else {
            self.socket.call(UnmuteParams { room, user: user.clone() }).await?;
            state.set_muted(&user, false);
        }
        Ok(())
    }

    /// Appoints or removes a moderator (or, for an admin, hands the room over).
    pub async fn set_role(self, state: RoomState, user: String, role: RoomRole) -> Result<(), ErrorObject> {
        let result = self.socket.call(SetRoleParams { room: state.wire_name(), user: user.clone(), role }).await?;
        state.summary.update(|s| {
            if let Some(s) = s {
                set_listed_role(s, &result.user, role);
            }
        });
        Ok(())
    }

    /// Changes slow mode and (for the owner or an admin) retention.
    pub async fn configure(self, state: RoomState, slow_mode_secs: Option<u32>, retention_days: Option<u32>) -> Result<RoomSettings, ErrorObject> {
        let settings = self.socket.call(ConfigureParams { room: state.wire_name(), slow_mode_secs, retention_days }).await?;
        state.summary.update(|s| {
            if let Some(s) = s {
                s.slow_mode_secs = settings.slow_mode_secs;
                s.retention_days = settings.retention_days;
            }
        });
        Ok(settings)
    }

    // ----- the member panel: `room.join` gives the first page, "more" asks `room.members`
    // for the next, and a `room.online_changed` (a busy tick in a big room) reloads the
    // first page, since the itemised joins and leaves were not sent.

    /// The member panel's next page of a joined room's present users.
    pub async fn more_members(self, state: RoomState) {
        let Some(cursor) = state.members_cursor.get_untracked() else { return };
        self.members_page(state, Some(cursor)).await;
    }

    async fn members_page(self, state: RoomState, cursor: Option<String>) {
        let first = cursor.is_none();
        let params = RoomMembersParams { room: state.wire_name(), cursor, limit: Some(MEMBERS_PAGE) };
        match self.socket.call(params).await {
            Ok(page) => {
                if first {
                    state.online.set(page.members.into_iter().collect());
                } else {
                    state.online.update(|o| o.extend(page.members));
                }
                state.online_total.set(page.total as u32);
                state.members_cursor.set(page.next_cursor);
            }
            Err(err) => self.report(&err),
        }
    }

    /// Many came and went at once: the count is new and the names on screen are stale.
    pub fn online_changed(&self, room: &str, online: u32) {
        if let Some(state) = self.get(room) {
            state.online_total.set(online);
            spawn_local(self.members_page(state, None));
        }
    }

    /// Someone (maybe we, from another tab) joined a held room.
    pub fn user_joined(&self, room: &str, username: String) {
        let Some(state) = self.get(room) else { return };
        if self.session.is_me_untracked(&username) {
            // Our own join (this tab's or another's): we know; no line for it.
            state.online.update(|o| {
                o.insert(username);
            });
            return;
        }
        let added = state.online.try_update(|o| o.insert(username.clone())).unwrap_or(false);
        if added {
            state.online_total.update(|n| *n += 1);
            state.add_event(format!("{username} joined"));
        }
    }

    /// Someone left a held room.
    pub fn user_left(&self, room: &str, username: &str) {
        let Some(state) = self.get(room) else { return };
        state.online_total.update(|n| *n = n.saturating_sub(1));
        state.online.update(|o| o.retain(|n| !n.eq_ignore_ascii_case(username)));
        state.typing.update(|t| t.retain(|(n, _)| !n.eq_ignore_ascii_case(username)));
        state.add_event(format!("{username} left"));
    }

    /// Someone else is typing in a held room.
    pub fn user_typing(&self, room: &str, username: &str) {
        if let Some(state) = self.get(room)
            && !self.session.is_me_untracked(username)
        {
            state.typing_started(username);
        }
    }

    /// The connection dropped: nobody is typing any more, as far as we can tell.
    pub fn clear_typing(&self) {
        for state in self.held() {
            state.typing.set(Vec::new());
        }
    }

    // ----- quiet rooms ---------------------------------------------------------------

    /// Whether the reader keeps `room` quiet (no notification for a mention there).
    pub fn is_quiet(&self, room: &str) -> bool {
        let quiet = |rooms: &Vec<RoomSummary>| rooms.iter().any(|r| r.name == room && r.quiet);
        self.mine.with_untracked(quiet) || self.list.with_untracked(quiet)
    }

    /// `room.set_quiet`: the room's summary comes back with the reader's choice.
    pub async fn set_quiet(self, state: RoomState, quiet: bool) -> Result<(), ErrorObject> {
        let summary = self.socket.call(SetQuietParams { room: state.wire_name(), quiet }).await?;
        state.summary.set(Some(summary.clone()));
        self.upsert_summary(summary);
        Ok(())
    }
}

/// Puts `user` in the summary's owner or moderators as `role` says.
fn set_listed_role(summary: &mut RoomSummary, user: &str, role: RoomRole) {
    summary.moderators.retain(|m| !m.eq_ignore_ascii_case(user));
    match role {
        RoomRole::Moderator => summary.moderators.push(user.to_owned()),
        RoomRole::Owner => summary.owner = Some(user.to_owned()),
        RoomRole::Member => {
            if summary.owner.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(user)) {
                summary.owner = None;
            }
        }
    }
}
