//! The app's live state and the policy around the one socket.
//!
//! [`Chat`] ties the parts together: it owns nothing of its own but the connection's
//! identity, installs the socket's [`Hooks`] (which token to present, what to re-join and
//! `sync` after a reconnect, how to answer `session.expiring`), and hands each server
//! notification to the part it concerns. Pages call the parts and render their signals;
//! they never touch the socket's lifecycle themselves.
//!
//! # Layout
//! - [`presence`]: who is online among the users the tab shows, and its watch set.
//! - [`rooms`]: the room list and the rooms pages hold open; [`room_state`]: one joined
//!   room's state.
//! - [`dms`]: private messages: sending, reading, the conversations pages hold open;
//!   [`dm_index`]: the list of conversations (persisted); [`dm_conversation`]: one
//!   conversation's state.
//! - [`log`]: the one shape of a conversation (a room's or a private one): messages,
//!   paging back, the unsent messages; [`conversation`]: either kind, for the shared page parts.
//! - [`jobs`]: room exports started from this tab.
//! - [`moderation`]: ranks in a room, what holds the composer back, and what a
//!   `moderation.applied` about us means for a room on screen.
//! - [`tokens`], [`webhooks`] (on [`registry`]): the Settings page's REST-managed lists.

pub mod conversation;
pub mod dm_conversation;
pub mod dm_index;
pub mod dms;
pub mod jobs;
pub mod log;
pub mod moderation;
pub mod presence;
pub mod registry;
pub mod room_state;
pub mod rooms;
pub mod tokens;
pub mod webhooks;

use std::collections::BTreeMap;
use std::rc::Rc;

use confab_shared::rpc::methods::*;
use confab_shared::rpc::notify::ReadCursor;
use confab_shared::rpc::{ErrorObject, Notification, close};
use futures::future::LocalBoxFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;

use self::conversation::Target;
use self::dms::Dms;
use self::jobs::Jobs;
use self::log::PendingSend;
use self::presence::Presence;
use self::rooms::Rooms;
use self::tokens::ApiTokens;
use self::webhooks::Webhooks;
use crate::api::rest;
use crate::api::socket::{CONNECTION_LOST, Hooks, NOT_CONNECTED, Socket};
use crate::components::toasts::Toasts;
use crate::session::Session;
use crate::util::{describe, page_visible};

/// The access token is renewed when it has less than this left before a (re)connect or a REST call.
pub(crate) const REFRESH_MARGIN_MS: f64 = 30_000.0;
/// Upper bound on `sync` round trips after one reconnect (500 items each).
const MAX_SYNC_PAGES: usize = 200;

/// Whether an error only says the connection went away; the reconnect logic redoes that
/// work, so it is not worth a toast.
pub fn is_connection_error(err: &ErrorObject) -> bool {
    matches!(err.code, NOT_CONNECTED | CONNECTION_LOST)
}

/// Shows an error unless it is only the connection going away.
pub fn report(toasts: Toasts, err: &ErrorObject) {
    if !is_connection_error(err) {
        toasts.error(describe(err));
    }
}

/// The value under `key`, inserted with `make` first if there is none.
fn held_entry<V: Clone + Send + Sync + 'static>(
    store: StoredValue<std::collections::HashMap<String, V>>,
    key: String,
    make: impl FnOnce() -> V,
) -> V {
    if let Some(existing) = store.with_value(|all| all.get(&key).cloned()) {
        return existing;
    }
    let value = make();
    store.update_value(|all| {
        all.insert(key, value.clone());
    });
    value
}

/// The shared app state; a copyable handle provided through context.
#[derive(Clone, Copy)]
pub struct Chat {
    pub socket: Socket,
    pub session: Session,
    pub toasts: Toasts,
    /// Presence of the users the tab shows (watched on the server).
    pub presence: Presence,
    pub rooms: Rooms,
    pub dms: Dms,
    /// Room exports started from this tab.
    pub jobs: Jobs,
    /// The logged-in person's API tokens (Settings).
    pub tokens: ApiTokens,
    /// Webhooks, for admins (Settings).
    pub webhooks: Webhooks,
    /// Bumped on every (re)connect, so lists on screen reload.
    pub connection_epoch: RwSignal<u64>,
    /// The user the last opened connection was for (`Some(None)`: anonymous; `None`: none yet).
    /// A reconnect as the same user resumes with `sync`; a different user starts over.
    identity: StoredValue<Option<Option<i64>>>,
}

impl Chat {
    pub fn new(socket: Socket, session: Session, toasts: Toasts) -> Self {
        Self {
            socket,
            session,
            toasts,
            presence: Presence::new(socket),
            rooms: Rooms::new(socket, session, toasts),
            dms: Dms::new(socket, session, toasts),
            jobs: Jobs::new(socket, session, toasts),
            tokens: ApiTokens::new(session),
            webhooks: Webhooks::new(session),
            connection_epoch: RwSignal::new(0),
            identity: StoredValue::new(None),
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
            if page_visible() {
                self.rooms.mark_all_read();
                self.dms.mark_on_screen_read();
            }
        });
        // Both live as long as the page.
        std::mem::forget(listener);
        std::mem::forget(visibility);
        self.dms.watch_peers(self.presence);
        self.socket.connect();
    }

    /// Shows an error unless it is only the connection going away.
    pub fn report(&self, err: &ErrorObject) {
        report(self.toasts, err);
    }

    // ----- a conversation, whichever kind ----------------------------------------------

    /// Sends text typed into a conversation (in a room, `/pm <user> <text>` sends a private
    /// message instead). Returns `false` when it was refused before sending, so the
    /// composer keeps it.
    pub fn send(&self, target: &Target, raw: &str) -> bool {
        if matches!(target, Target::Room(_))
            && let Some(command) = parse_pm(raw)
        {
            return match command {
                Ok((to, text)) => self.dms.send_shortcut(to, text),
                Err(usage) => {
                    self.toasts.error(usage);
                    false
                }
            };
        }
        let Some(pending) = target.queue(raw, self.toasts) else { return false };
        self.deliver(target.clone(), pending);
        true
    }

    /// Tries a failed send again; the same nonce makes a retry safe.
    pub fn retry(&self, target: &Target, nonce: &str) {
        if let Some(pending) = target.retrying(nonce) {
            self.deliver(target.clone(), pending);
        }
    }

    fn deliver(&self, target: Target, pending: PendingSend) {
        match target {
            Target::Room(state) => spawn_local(self.rooms.deliver(state, pending)),
            Target::Dm(convo) => spawn_local(self.dms.deliver(convo, pending)),
        }
    }

    /// Moves the conversation's read cursor to the newest message on screen.
    pub fn mark_read(&self, target: &Target) {
        match target {
            Target::Room(state) => self.rooms.mark_read(state),
            Target::Dm(convo) => self.dms.mark_read(convo),
        }
    }

    /// Reveals older messages of a conversation.
    pub async fn load_earlier(self, target: Target) {
        match target {
            Target::Room(state) => self.rooms.load_earlier(state).await,
            Target::Dm(convo) => self.dms.load_earlier(convo).await,
        }
    }

    // ----- session -------------------------------------------------------------------

    /// Logs in with a fresh token pair: the socket reconnects as that user.
    pub fn logged_in(&self, pair: confab_shared::SessionTokens) {
        self.session.store(pair);
        self.socket.connect();
    }

    /// Logs out: forgets the session here (and everything of the user's this browser
    /// stored), reconnects anonymously, revokes it on the server.
    pub async fn logout(self) {
        // Forget and reconnect first: the server closes the session's sockets with 4003,
        // and the old socket is already replaced by then, so that is not reported as an
        // unexpected logout.
        self.session.clear();
        self.socket.connect();
        // A failure (already revoked, server down) changes nothing for this tab; the
        // cookie names the session, so an expired access token does not matter.
        let _ = rest::logout().await;
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

    // ----- notifications and reconnects ----------------------------------------------

    fn apply(&self, notification: Notification) {
        match notification {
            Notification::PresenceChanged(presence) => self.presence.apply(presence),
            Notification::RoomOnlineChanged(count) => self.rooms.online_changed(&count.room, count.online),
            Notification::RoomMessage(message) => {
                if let Some(state) = self.rooms.get(&message.room) {
                    state.insert([message]);
                }
            }
            Notification::UserJoined(user) => self.rooms.user_joined(&user.room, user.username),
            Notification::UserLeft(user) => self.rooms.user_left(&user.room, &user.username),
            Notification::Typing(user) => self.rooms.user_typing(&user.room, &user.username),
            Notification::MessageEdited(message) => {
                if let Some(state) = self.rooms.get(&message.room) {
                    state.replace(message);
                }
            }
            Notification::MessageReacted(change) => {
                if let Some(state) = self.rooms.get(&change.room) {
                    state.react(&change);
                }
            }
            Notification::MessageDeleted(deleted) => {
                if let Some(state) = self.rooms.get(&deleted.room) {
                    state.mark_deleted(deleted.id);
                }
            }
            Notification::DmMessage(dm) => {
                crate::notify::dm(&dm, self.session.is_me_untracked(&dm.from));
                self.dms.apply(dm, true);
            }
            Notification::Mention(message) => {
                crate::notify::mention(&message, self.rooms.is_quiet(&message.room));
                self.rooms.mentioned(&message.room);
            }
            Notification::Notice(notice) => self.toasts.info(notice_text(&notice.payload)),
            Notification::SessionExpiring(_) => spawn_local(self.renew_token()),
            Notification::ReadMoved(ReadCursor::Dm { with, id }) => self.dms.read_moved(&with, id),
            Notification::ReadMoved(ReadCursor::Room { room, id }) => self.rooms.read_moved(room, id),
            Notification::JobProgress(progress) => self.jobs.progress(&progress),
            Notification::JobFinished(job) => self.jobs.update(job),
            Notification::ModerationApplied(applied) => {
                self.rooms.moderated(&applied);
                self.toasts.info(moderation_text(&applied));
            }
            // The HTTP stream's own events; the web app speaks over the socket.
            Notification::StreamOpened(_) | Notification::StreamClosed(_) => {}
        }
    }

    async fn on_open(self) {
        let identity = self.session.user_id_untracked();
        let resume = self.identity.get_value() == Some(identity);
        self.identity.set_value(Some(identity));
        if !resume {
            self.dms.reset_for(identity);
        }
        self.presence.rewatch();
        self.connection_epoch.update(|n| *n += 1);
        spawn_local(self.rooms.refresh());
        if resume {
            spawn_local(self.jobs.resubscribe());
        } else {
            self.jobs.clear();
        }
        let last_seen = self.rooms.rejoin(resume, identity.is_some()).await;
        if identity.is_some() {
            self.sync(last_seen).await;
        }
        self.dms.resume_on_screen().await;
    }

    /// Catches up with everything newer than what we hold, page by page.
    async fn sync(self, mut rooms: BTreeMap<String, i64>) {
        for _ in 0..MAX_SYNC_PAGES {
            let dm_after = Some(self.dms.index.with_untracked(|i| i.after));
            let params = SyncParams { rooms: rooms.clone(), dm_after };
            let result = match self.socket.call(params).await {
                Ok(result) => result,
                Err(err) => return self.report(&err),
            };
            let progressed = !result.messages.is_empty() || !result.dms.is_empty();
            for message in &result.messages {
                if let Some(last) = rooms.get_mut(&message.room) {
                    *last = (*last).max(message.id);
                }
            }
            self.rooms.synced(result.messages);
            for dm in result.dms {
                self.dms.apply(dm, false);
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
        self.rooms.clear_typing();
    }

    fn notification(&self, notification: Notification) {
        self.apply(notification);
    }
}

/// What a moderation decision about the user means, in words: what, where, until when, why.
fn moderation_text(applied: &confab_shared::moderation::ModerationApplied) -> String {
    use confab_shared::moderation::ModerationAction as A;
    let place = applied.room.as_deref().map(|r| format!(" in #{r}")).unwrap_or_default();
    let what = match applied.action {
        A::Kick => format!("You were removed{place}; you may join again"),
        A::Ban => format!("You are banned{place}"),
        A::Unban => format!("You may join{place} again"),
        A::Mute => format!("You are muted{place}: you can read but not write"),
        A::Unmute => format!("You may write{place} again"),
        A::SetRole => format!("Your role{place} is now {}", applied.role.map_or("member", |r| r.as_str())),
        A::Suspend => "Your account is suspended".to_owned(),
        other => format!("A moderator acted on your account ({})", other.as_str()),
    };
    let until = applied.until.map(|t| format!(" until {}", crate::util::short_time(t))).unwrap_or_default();
    let why = applied.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    format!("{what}{until}{why} (by {})", applied.by)
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
