//! The client-side state of one joined room: its message [`Log`], the "joined" / "left"
//! lines among the messages, who is here, who is typing, the caller's role and what keeps
//! them from writing.
//!
//! Each message sits in its own signal so an edit or a reaction re-renders one row, not
//! the list.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use confab_shared::moderation::{RoomRole, Sanction};
use confab_shared::rpc::notify::ReactionChange;
use confab_shared::{Message, Timestamp};
use leptos::prelude::*;

use super::log::{Entry, Log};
use super::moderation::{Rank, Restriction};
use crate::util::now_ms;
/// Past this many messages beyond the window, the oldest are dropped from memory.
const TRIM_SLACK: usize = 2_000;
/// How long "… is typing" stays up after the last `room.typing`.
const TYPING_TTL_MS: f64 = 4_000.0;

/// One message row.
#[derive(Clone)]
pub struct MsgItem {
    pub id: i64,
    pub msg: ArcRwSignal<Message>,
}

impl MsgItem {
    pub fn new(message: Message) -> Self {
        Self { id: message.id, msg: ArcRwSignal::new(message) }
    }
}

impl Entry for MsgItem {
    fn id(&self) -> i64 {
        self.id
    }
}

/// A "joined" / "left" line, placed after the message that was last when it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct EventLine {
    pub seq: u64,
    pub after_id: i64,
    pub text: String,
    pub at: Timestamp,
}

/// What the log renders, in order.
#[derive(Clone)]
pub enum Row {
    Msg(MsgItem),
    Event(EventLine),
}

/// A stable key per row for the keyed list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowKey {
    Msg(i64),
    Event(u64),
}

impl Row {
    pub fn key(&self) -> RowKey {
        match self {
            Self::Msg(item) => RowKey::Msg(item.id),
            Self::Event(line) => RowKey::Event(line.seq),
        }
    }
}

/// Where joining stands.
#[derive(Clone, Debug, PartialEq)]
pub enum JoinStatus {
    Joining,
    Joined,
    /// Joining was refused; the reason is shown in place of the log.
    Failed(String),
    /// Taken out of the room (a kick or a ban) or kept out of it (a ban): why, in place of
    /// the log, and from when joining again may succeed (ms since the epoch; `0.0` at once,
    /// after a kick; `None`: a ban until a moderator lifts it).
    Removed { why: String, rejoin_at: Option<f64> },
}

/// The state of one room, cheap to clone (every field is a shared signal).
#[derive(Clone)]
pub struct RoomState {
    /// The name as requested by the page (the server's spelling is in `summary`).
    pub name: String,
    pub status: ArcRwSignal<JoinStatus>,
    pub summary: ArcRwSignal<Option<confab_shared::RoomSummary>>,
    pub log: Log<MsgItem>,
    pub events: ArcRwSignal<Vec<EventLine>>,
    /// The present users loaded so far (the first page, joins since, and "more" pages).
    pub online: ArcRwSignal<BTreeSet<String>>,
    /// How many users are present in all.
    pub online_total: ArcRwSignal<u32>,
    /// Where the member panel's next page starts (`None`: all loaded).
    pub members_cursor: ArcRwSignal<Option<String>>,
    /// Typists and when their indicator lapses (ms since the epoch).
    pub typing: ArcRwSignal<Vec<(String, f64)>>,
    /// The caller's role, as `room.join` (or a later `moderation.applied`) said.
    pub role: ArcRwSignal<RoomRole>,
    /// A mute or slow mode wait the server told us about; cleared when it ends.
    pub restriction: ArcRwSignal<Option<Restriction>>,
    /// For those who run the room: the members muted here (lowercase), as the room's mutes
    /// list said at join and the caller's own mutes and unmutes since; it decides whether
    /// the member menu offers "Mute" or "Unmute".
    pub muted_members: ArcRwSignal<BTreeSet<String>>,
    next_event: Arc<AtomicU64>,
}

impl RoomState {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: ArcRwSignal::new(JoinStatus::Joining),
            summary: ArcRwSignal::new(None),
            log: Log::new(),
            events: ArcRwSignal::new(Vec::new()),
            online: ArcRwSignal::new(BTreeSet::new()),
            online_total: ArcRwSignal::new(0),
            members_cursor: ArcRwSignal::new(None),
            typing: ArcRwSignal::new(Vec::new()),
            role: ArcRwSignal::new(RoomRole::Member),
            restriction: ArcRwSignal::new(None),
            muted_members: ArcRwSignal::new(BTreeSet::new()),
            next_event: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The room's name as the server spells it, once known.
    pub fn wire_name(&self) -> String {
        self.summary.with_untracked(|s| s.as_ref().map(|s| s.name.clone())).unwrap_or_else(|| self.name.clone())
    }

    /// The newest message id we hold.
    pub fn last_id(&self) -> Option<i64> {
        self.log.last_id()
    }

    /// Merges messages in (a duplicate carries nothing new: edits and reactions come as
    /// their own notifications); whoever just posted has stopped typing.
    pub fn insert(&self, batch: impl IntoIterator<Item = Message>) {
        let batch: Vec<MsgItem> = batch.into_iter().map(MsgItem::new).collect();
        if batch.is_empty() {
            return;
        }
        let authors: Vec<String> = batch.iter().map(|i| i.msg.with_untracked(|m| m.author.clone())).collect();
        self.log.merge(batch);
        self.typing.update(|typing| typing.retain(|(name, _)| !authors.iter().any(|a| a.eq_ignore_ascii_case(name))));
        self.trim();
    }

    /// Keeps memory bounded in a room that runs for hours: far-off history is dropped and
    /// can be paged back in from the server.
    fn trim(&self) {
        let window = self.log.window.get_untracked();
        let len = self.log.messages.with_untracked(Vec::len);
        if len <= window + TRIM_SLACK {
            return;
        }
        let drop_count = len - window;
        let mut new_first = 0;
        self.log.messages.update(|list| {
            list.drain(..drop_count);
            new_first = list.first().map_or(0, |i| i.id);
        });
        self.events.update(|events| events.retain(|e| e.after_id >= new_first));
        self.log.has_more.set(true);
    }

    /// Replaces a message we hold (edit, reaction) with the server's new version.
    pub fn replace(&self, message: Message) {
        if let Some(item) = self.log.get(message.id) {
            item.msg.set(message);
        }
    }

    /// Applies one reaction added or removed to the message we hold (if we hold it).
    pub fn react(&self, change: &ReactionChange) {
        let Some(item) = self.log.get(change.id) else { return };
        item.msg.update(|m| change.apply_to(m));
    }

    /// Shows a message as deleted: it keeps its place, loses its text.
    pub fn mark_deleted(&self, id: i64) {
        if let Some(item) = self.log.get(id) {
            item.msg.update(|m| {
                m.deleted = true;
                m.text.clear();
                m.reactions.clear();
            });
        }
    }

    /// The caller's rank here (`admin` from the session).
    pub fn rank(&self, admin: bool) -> Rank {
        Rank::of(self.role.get(), admin)
    }

    /// Someone else's rank here, as the room summary lists owner and moderators.
    pub fn rank_of(&self, username: &str) -> Rank {
        self.summary.with(|s| Rank::in_room(s.as_ref(), username))
    }

    /// Holds the composer back until `restriction` ends (or is lifted); a timer lifts a
    /// timed one, unless another has replaced it by then.
    pub fn restrict(&self, restriction: Restriction) {
        let ends_in = restriction.until.map(|until| (until - now_ms()).max(0.0));
        self.restriction.set(Some(restriction.clone()));
        // Timers cannot wait longer than about 24 days; a longer mute is lifted by a reload.
        if let Some(ms) = ends_in.filter(|ms| *ms < 2_000_000_000.0) {
            let slot = self.restriction.clone();
            set_timeout(
                move || {
                    if slot.with_untracked(|r| r.as_ref() == Some(&restriction)) {
                        slot.set(None);
                    }
                },
                Duration::from_millis(ms as u64 + 50),
            );
        }
    }

    /// Whether `username` is muted here, as far as [`RoomState::muted_members`] knows.
    pub fn is_muted(&self, username: &str) -> bool {
        self.muted_members.with(|m| m.contains(&username.to_ascii_lowercase()))
    }

    /// Records that `username` was muted (`true`) or unmuted here.
    pub fn set_muted(&self, username: &str, muted: bool) {
        let key = username.to_ascii_lowercase();
        self.muted_members.update(|m| {
            if muted {
                m.insert(key);
            } else {
                m.remove(&key);
            }
        });
    }

    /// A restriction of `kind` was lifted.
    pub fn lift(&self, kind: Sanction) {
        if self.restriction.with_untracked(|r| r.as_ref().is_some_and(|r| r.kind == kind)) {
            self.restriction.set(None);
        }
    }

    /// Adds a "joined" / "left" line after the newest message.
    pub fn add_event(&self, text: String) {
        let seq = self.next_event.fetch_add(1, Ordering::Relaxed);
        let after_id = self.last_id().unwrap_or(0);
        self.events.update(|events| events.push(EventLine { seq, after_id, text, at: Timestamp::now() }));
    }

    /// Someone is typing; their indicator lapses on its own unless renewed.
    pub fn typing_started(&self, username: &str) {
        let until = now_ms() + TYPING_TTL_MS;
        self.typing.update(|typing| {
            typing.retain(|(name, _)| !name.eq_ignore_ascii_case(username));
            typing.push((username.to_owned(), until));
        });
        let typing = self.typing.clone();
        set_timeout(
            move || {
                let now = now_ms();
                if typing.with_untracked(|t| t.iter().any(|(_, until)| *until <= now)) {
                    typing.update(|t| t.retain(|(_, until)| *until > now));
                }
            },
            Duration::from_millis(TYPING_TTL_MS as u64 + 50),
        );
    }

    /// The rows to render: the newest `window` messages with the event lines among them.
    pub fn rows(&self) -> Vec<Row> {
        let window = self.log.window.get();
        let events = self.events.get();
        self.log.messages.with(|list| {
            let start = list.len().saturating_sub(window);
            let visible = &list[start..];
            let first_visible = visible.first().map_or(i64::MIN, |i| i.id);
            let mut events = events.into_iter().filter(|e| start == 0 || e.after_id >= first_visible).peekable();
            let mut rows = Vec::with_capacity(visible.len() + 8);
            for item in visible {
                while let Some(event) = events.next_if(|e| e.after_id < item.id) {
                    rows.push(Row::Event(event));
                }
                rows.push(Row::Msg(item.clone()));
            }
            rows.extend(events.map(Row::Event));
            rows
        })
    }
}
