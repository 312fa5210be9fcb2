//! Notifications the server pushes (JSON-RPC requests without an `id`).

use serde::{Deserialize, Serialize};

use crate::rest::wire;
use crate::{DirectMessage, Job, Message, Timestamp, UserPresence};

/// Declares the notifications once: the enum, the method names and (feature `openapi`) the
/// table the AsyncAPI document and the protocol reference are generated from.
macro_rules! notifications {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal ($params:ty); )*) => {
        /// A server-pushed notification: `{"jsonrpc":"2.0","method":…,"params":…}`.
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(tag = "method", content = "params")]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        pub enum Notification {
            $( $(#[doc = $doc])* #[serde(rename = $name)] $variant($params), )*
        }

        /// Read by method name, then the params as that method's type. serde's derive for an
        /// adjacently tagged enum buffers the params and decodes each type through a third
        /// deserializer of its own; this one needs only the `Value` one, which the web app's
        /// WASM holds anyway (a smaller download for the same frames).
        impl<'de> Deserialize<'de> for Notification {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::Error;
                #[derive(Deserialize)]
                struct Frame {
                    method: String,
                    #[serde(default)]
                    params: serde_json::Value,
                }
                let Frame { method, params } = Frame::deserialize(deserializer)?;
                match method.as_str() {
                    $( $name => serde_json::from_value(params).map(Self::$variant).map_err(D::Error::custom), )*
                    other => Err(D::Error::unknown_variant(other, Self::METHODS)),
                }
            }
        }

        impl Notification {
            /// Every notification method name, in table order.
            pub const METHODS: &'static [&'static str] = &[$($name),*];

            /// The method name.
            pub fn method(&self) -> &'static str {
                match self { $(Self::$variant(_) => $name,)* }
            }
        }

        /// The notification table: name, doc and params schema of each.
        #[cfg(feature = "openapi")]
        pub fn table() -> Vec<crate::schema::NotificationSchema> {
            use crate::schema::WireSchema;
            vec![$(crate::schema::NotificationSchema {
                name: $name,
                doc: crate::schema::doc_text(&[$($doc),*]),
                params: <$params as WireSchema>::reference(),
                params_type: <$params as WireSchema>::display(),
            },)*]
        }

        /// Adds the schema of every notification's params (and what they refer to).
        #[cfg(feature = "openapi")]
        pub fn collect_schemas(into: &mut crate::schema::Schemas) {
            use crate::schema::WireSchema;
            $(<$params as WireSchema>::collect(into);)*
        }
    };
}

notifications! {
    /// A watched user's first connection opened or last one closed, on any instance; only to
    /// connections that `presence.watch` the user, at most once per user per tick (net change).
    PresenceChanged = "presence.changed" (UserPresence);
    /// A new message in a room the connection joined (the sender's connection included).
    RoomMessage = "room.message" (Message);
    /// A user's first connection joined the room (net per tick; see Presence for big rooms).
    UserJoined = "room.user_joined" (RoomUser);
    /// A user's last connection left the room (net per tick; see Presence for big rooms).
    UserLeft = "room.user_left" (RoomUser);
    /// Instead of the joins and leaves of one tick in a big or busy room: its new online count.
    RoomOnlineChanged = "room.online_changed" (RoomOnline);
    /// Someone else is typing in the room.
    Typing = "room.typing" (RoomUser);
    /// A message was edited.
    MessageEdited = "message.edited" (Message);
    /// One reaction was added or removed: what changed, never the whole list (apply it to the
    /// message you hold; `count` is that emoji's count after the change).
    MessageReacted = "message.reacted" (ReactionChange);
    /// A message was deleted.
    MessageDeleted = "message.deleted" (MessageRef);
    /// A private message to or from this user.
    DmMessage = "dm.message" (DirectMessage);
    /// A room message that mentions this user (by name, `@room` or `@here`), to every
    /// connection of theirs, whether or not it joined the room; an edit that adds the
    /// mention sends it then. Never for one's own messages.
    Mention = "mention" (Message);
    /// A job of this user made progress.
    JobProgress = "job.progress" (JobProgress);
    /// A job of this user finished or failed.
    JobFinished = "job.finished" (Job);
    /// A message published from outside (`POST /api/publish`).
    Notice = "notice" (Notice);
    /// The connection's access token expires soon: answer with `auth.refresh`.
    SessionExpiring = "session.expiring" (SessionExpiring);
    /// Another connection of this user moved a read cursor.
    ReadMoved = "read.moved" (ReadCursor);
    /// A moderation decision about this user: kicked, banned, muted (and lifted), a role
    /// changed, in a room; or the account suspended (the socket then closes with 4003).
    ModerationApplied = "moderation.applied" (crate::moderation::ModerationApplied);
    /// HTTP streaming only: the stream's first event, naming the session its calls are posted to.
    StreamOpened = "stream.opened" (StreamOpened);
    /// HTTP streaming only: the stream's last event, with the close code a socket would have closed with.
    StreamClosed = "stream.closed" (StreamClosed);
}

impl Notification {
    /// The complete text frame.
    pub fn to_frame(&self) -> String {
        #[derive(Serialize)]
        struct Frame<'a> {
            jsonrpc: &'static str,
            #[serde(flatten)]
            body: &'a Notification,
        }
        // Serializing these plain data types cannot fail: no maps with non-string keys.
        serde_json::to_string(&Frame { jsonrpc: "2.0", body: self }).unwrap_or_default()
    }
}

wire! {
    /// A user in a room.
    pub struct RoomUser {
        /// The room's name.
        pub room: String,
        /// The user who joined, left or is typing.
        pub username: String,
    }

    /// A room's online count after a tick of many joins and leaves.
    pub struct RoomOnline {
        /// The room's name.
        pub room: String,
        /// Distinct users present now; page `room.members` for who.
        pub online: u32,
    }

    /// Names a message that was deleted.
    pub struct MessageRef {
        /// The deleted message's id.
        pub id: i64,
        /// The room it was in.
        pub room: String,
    }

    /// One reaction added to or removed from a message.
    pub struct ReactionChange {
        /// The message's id.
        pub id: i64,
        /// The room it is in.
        pub room: String,
        /// The emoji.
        pub emoji: String,
        /// Who reacted or took the reaction back.
        pub user: String,
        /// `true`: `user` added `emoji`; `false`: removed it.
        pub added: bool,
        /// How many users have reacted with `emoji` after this change (0: the emoji is gone).
        pub count: u32,
    }

    /// Progress of a job.
    pub struct JobProgress {
        /// The job's id.
        pub job_id: i64,
        /// 0 to 100.
        pub percent: u8,
        /// What the job is doing, in words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub detail: Option<String>,
    }

    /// A published payload.
    pub struct Notice {
        /// The JSON the publisher sent, unchanged.
        #[cfg_attr(feature = "ts", ts(type = "unknown"))]
        pub payload: serde_json::Value,
    }

    /// An HTTP stream's session (`GET /api/stream`).
    pub struct StreamOpened {
        /// Where this stream's calls go: `POST /api/stream/{session}` (unguessable; dies with the stream).
        pub session: String,
    }

    /// Why an HTTP stream ended.
    pub struct StreamClosed {
        /// The close code a socket would have closed with (see Close codes).
        pub code: u16,
        /// Its reason phrase.
        pub reason: String,
    }

    /// When the connection's access token expires.
    pub struct SessionExpiring {
        /// When the access token expires; the socket closes with 4001 then unless `auth.refresh` came first.
        pub expires_at: Timestamp,
    }
}

impl ReactionChange {
    /// Applies the change to `message` (when it is the message changed): `user` added under
    /// `emoji`, after those already there, or removed, the emoji going with its last user.
    pub fn apply_to(&self, message: &mut Message) {
        if message.id != self.id {
            return;
        }
        let users = message.reactions.entry(self.emoji.clone()).or_default();
        if !self.added {
            users.retain(|u| u != &self.user);
        } else if !users.contains(&self.user) {
            users.push(self.user.clone());
        }
        if users.is_empty() {
            message.reactions.remove(&self.emoji);
        }
    }
}

/// A read cursor that moved: `{room, id}` or `{with, id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReadCursor {
    /// In a room.
    Room { room: String, id: i64 },
    /// In a conversation with another user.
    Dm { with: String, id: i64 },
}

#[cfg(feature = "openapi")]
crate::schema::named_schema!(ReadCursor);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reaction_change_applies_to_its_message_only() {
        let mut message = Message {
            id: 7,
            room: "r".into(),
            author: "ann".into(),
            text: "hi".into(),
            sent_at: Timestamp::from_millis(0),
            edited_at: None,
            deleted: false,
            reactions: Default::default(),
            mentions: Vec::new(),
            mention_all: None,
        };
        let change = |user: &str, emoji: &str, added: bool| ReactionChange {
            id: 7,
            room: "r".into(),
            emoji: emoji.into(),
            user: user.into(),
            added,
            count: 0,
        };
        change("bob", "👍", true).apply_to(&mut message);
        change("cy", "👍", true).apply_to(&mut message);
        change("bob", "👍", true).apply_to(&mut message);
        assert_eq!(message.reactions["👍"], ["bob", "cy"], "in reaction order; a repeat changes nothing");
        change("cy", "🎉", false).apply_to(&mut message);
        assert!(!message.reactions.contains_key("🎉"), "removing what is not there leaves no empty emoji");
        change("cy", "👍", false).apply_to(&mut message);
        change("bob", "👍", false).apply_to(&mut message);
        assert!(message.reactions.is_empty());
        ReactionChange { id: 8, ..change("bob", "👍", true) }.apply_to(&mut message);
        assert!(message.reactions.is_empty(), "another message's change is ignored");
    }

    #[test]
    fn frames_carry_jsonrpc_method_and_params() {
        let frame = Notification::UserJoined(RoomUser { room: "r".into(), username: "ann".into() }).to_frame();
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"jsonrpc": "2.0", "method": "room.user_joined", "params": {"room": "r", "username": "ann"}})
        );
        let back: Notification = serde_json::from_value(value).unwrap();
        assert_eq!(back.method(), "room.user_joined");
    }
}
