//! Moderation as the web app sees it: who may act on whom in a room, what the caller is
//! held back by (a mute, slow mode) and the decisions the server tells it about.
//!
//! The server decides; the app only offers the actions the caller's role allows
//! (`room.join`'s `role`, the room's `owner` and `moderators`) and explains refusals
//! (-32003 / -32029 with `data.reason` and `data.until`) in place of a failing composer.

use confab_shared::Timestamp;
use confab_shared::moderation::{ModerationAction, ModerationApplied, RoomRole, Sanction};
use confab_shared::rpc::ErrorObject;

use crate::util::{now_ms, short_time};

/// A rank in one room: who may act on whom (an equal or higher rank is out of reach).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    Member,
    Moderator,
    Owner,
    Admin,
}

impl Rank {
    /// The caller's rank from `room.join`'s `role` and the session's admin flag.
    pub fn of(role: RoomRole, admin: bool) -> Self {
        match (admin, role) {
            (true, _) => Self::Admin,
            (false, RoomRole::Owner) => Self::Owner,
            (false, RoomRole::Moderator) => Self::Moderator,
            (false, RoomRole::Member) => Self::Member,
        }
    }

    /// Someone else's rank as the room summary lists it (an admin shows as a member: the
    /// server refuses acting on one, and the dialog says so).
    pub fn in_room(summary: Option<&confab_shared::RoomSummary>, username: &str) -> Self {
        let Some(room) = summary else { return Self::Member };
        if room.owner.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(username)) {
            Self::Owner
        } else if room.moderators.iter().any(|m| m.eq_ignore_ascii_case(username)) {
            Self::Moderator
        } else {
            Self::Member
        }
    }

    /// Kicks, bans, mutes and deletes others' messages.
    pub fn moderates(self) -> bool {
        self >= Self::Moderator
    }

    /// Appoints and removes moderators, sets retention.
    pub fn owns(self) -> bool {
        self >= Self::Owner
    }

    /// Whether this rank may kick, ban or mute someone of rank `other`.
    pub fn may_act_on(self, other: Rank) -> bool {
        self.moderates() && self > other
    }
}

/// What keeps the caller from writing in a room for now.
#[derive(Clone, Debug, PartialEq)]
pub struct Restriction {
    /// `Muted` or `SlowMode` (a ban takes the user out of the room view instead).
    pub kind: Sanction,
    /// When it ends, in ms since the epoch; `None`: until lifted.
    pub until: Option<f64>,
    pub reason: Option<String>,
    /// Who decided it, when the server said.
    pub by: Option<String>,
}

impl Restriction {
    /// Reads a refusal of a send: a mute (-32003 `muted`) or slow mode (-32029 `slow_mode`).
    pub fn from_error(err: &ErrorObject) -> Option<Self> {
        let data = err.data.as_ref()?;
        let reason = data.get("reason").and_then(serde_json::Value::as_str)?;
        match (err.code, reason) {
            (-32003, "muted") => {
                let until = data.get("until").cloned().and_then(|t| serde_json::from_value::<Timestamp>(t).ok());
                // The message reads "you are muted in this room: <why>".
                let why = err.message.split_once(": ").map(|(_, why)| why.to_owned());
                Some(Self { kind: Sanction::Muted, until: until.map(|t| t.millis() as f64), reason: why, by: None })
            }
            (-32029, "slow_mode") => {
                let wait = data.get("retry_after_ms").and_then(serde_json::Value::as_u64).unwrap_or(1000);
                Some(Self { kind: Sanction::SlowMode, until: Some(now_ms() + wait as f64), reason: None, by: None })
            }
            _ => None,
        }
    }

    /// Whether a refusal says the caller is banned from the room.
    pub fn banned(err: &ErrorObject) -> bool {
        err.code == -32003 && err.data.as_ref().and_then(|d| d.get("reason")).and_then(serde_json::Value::as_str) == Some("banned")
    }

    /// When the decision behind a refusal ends (`data.until`); `None`: until lifted.
    pub fn until(err: &ErrorObject) -> Option<Timestamp> {
        err.data.as_ref().and_then(|d| d.get("until")).cloned().and_then(|t| serde_json::from_value::<Timestamp>(t).ok())
    }

    /// What a banned user reads in place of the room: why (the server's words) and until when.
    pub fn ban_text(err: &ErrorObject) -> String {
        let until = Self::until(err);
        let why = crate::util::describe(err);
        let why = why.trim_end_matches('.');
        match until {
            Some(at) => format!("{why}. The ban ends {}.", short_time(at)),
            None => format!("{why}. The ban lasts until a moderator lifts it."),
        }
    }

    /// A mute the server announced with `moderation.applied`.
    pub fn muted(applied: &ModerationApplied) -> Self {
        Self {
            kind: Sanction::Muted,
            until: applied.until.map(|t| t.millis() as f64),
            reason: applied.reason.clone(),
            by: Some(applied.by.clone()),
        }
    }

    /// What the composer says instead of letting the caller type.
    pub fn explain(&self) -> String {
        let until = self.until.map(|ms| Timestamp::from_millis(ms as i64));
        match self.kind {
            Sanction::SlowMode => {
                let secs = self.until.map_or(1.0, |ms| ((ms - now_ms()) / 1000.0).ceil().max(1.0));
                format!("Slow mode is on in this room: you can send your next message in {secs} s.")
            }
            _ => {
                let mut text = match until {
                    Some(at) => format!("You are muted in this room until {}", short_time(at)),
                    None => "You are muted in this room until a moderator lifts it".to_owned(),
                };
                if let Some(by) = &self.by {
                    text.push_str(&format!(" (by {by})"));
                }
                if let Some(why) = self.reason.as_deref().filter(|r| !r.is_empty()) {
                    text.push_str(&format!(": {why}"));
                }
                text.push_str(". You can read the room but not write in it.");
                text
            }
        }
    }
}

/// Why a user's view of a room ended, from `moderation.applied`: `None` when it did not.
pub fn removal(applied: &ModerationApplied) -> Option<String> {
    let room = applied.room.as_deref().unwrap_or("this room");
    let by = format!(" by {}", applied.by);
    let why = applied.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    match applied.action {
        ModerationAction::Kick => Some(format!("You were removed from #{room}{by}{why}. You may join it again.")),
        ModerationAction::Ban => {
            let until = match applied.until {
                Some(at) => format!(" until {}", short_time(at)),
                None => String::new(),
            };
            Some(format!("You are banned from #{room}{until}{by}{why}."))
        }
        _ => None,
    }
}

/// How long a ban, mute or suspension lasts, as the dialogs offer it (`None`: until lifted).
pub const DURATIONS: [(&str, Option<u64>); 6] = [
    ("10 minutes", Some(600)),
    ("1 hour", Some(3600)),
    ("1 day", Some(86_400)),
    ("1 week", Some(604_800)),
    ("30 days", Some(2_592_000)),
    ("Until lifted", None),
];
