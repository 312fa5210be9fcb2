//! Notifications the server pushes (JSON-RPC requests without an `id`).

use serde::{Deserialize, Serialize};

use crate::rest::wire;
use crate::{DirectMessage, Job, Message, Timestamp, UserPresence};

/// A server-pushed notification: `{"jsonrpc":"2.0","method":…,"params":…}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "params")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Notification {
    /// A user's first connection opened or last one closed, on any instance.
    #[serde(rename = "presence.changed")]
    PresenceChanged(UserPresence),
    /// A new message in a room the connection joined (the sender's connection included).
    #[serde(rename = "room.message")]
    RoomMessage(Message),
    /// A user's first connection joined the room.
    #[serde(rename = "room.user_joined")]
    UserJoined(RoomUser),
    /// A user's last connection left the room.
    #[serde(rename = "room.user_left")]
    UserLeft(RoomUser),
    /// Someone else is typing in the room.
    #[serde(rename = "room.typing")]
    Typing(RoomUser),
    /// A message was edited.
    #[serde(rename = "message.edited")]
    MessageEdited(Message),
    /// A message's reactions changed.
    #[serde(rename = "message.reacted")]
    MessageReacted(Message),
    /// A message was deleted.
    #[serde(rename = "message.deleted")]
    MessageDeleted(MessageRef),
    /// A private message to or from this user.
    #[serde(rename = "dm.message")]
    DmMessage(DirectMessage),
    /// A job of this user made progress.
    #[serde(rename = "job.progress")]
    JobProgress(JobProgress),
    /// A job of this user finished or failed.
    #[serde(rename = "job.finished")]
    JobFinished(Job),
    /// A message published from outside (`POST /api/publish`).
    #[serde(rename = "notice")]
    Notice(Notice),
    /// The connection's access token expires soon: answer with `auth.refresh`.
    #[serde(rename = "session.expiring")]
    SessionExpiring(SessionExpiring),
    /// Another connection of this user moved a read cursor.
    #[serde(rename = "read.moved")]
    ReadMoved(ReadCursor),
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

    /// The method name.
    pub fn method(&self) -> &'static str {
        match self {
            Self::PresenceChanged(_) => "presence.changed",
            Self::RoomMessage(_) => "room.message",
            Self::UserJoined(_) => "room.user_joined",
            Self::UserLeft(_) => "room.user_left",
            Self::Typing(_) => "room.typing",
            Self::MessageEdited(_) => "message.edited",
            Self::MessageReacted(_) => "message.reacted",
            Self::MessageDeleted(_) => "message.deleted",
            Self::DmMessage(_) => "dm.message",
            Self::JobProgress(_) => "job.progress",
            Self::JobFinished(_) => "job.finished",
            Self::Notice(_) => "notice",
            Self::SessionExpiring(_) => "session.expiring",
            Self::ReadMoved(_) => "read.moved",
        }
    }
}

wire! {
    /// A user in a room.
    pub struct RoomUser { pub room: String, pub username: String }

    /// Names a message that was deleted.
    pub struct MessageRef { pub id: i64, pub room: String }

    /// Progress of a job.
    pub struct JobProgress {
        pub job_id: i64,
        pub percent: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub detail: Option<String>,
    }

    /// A published payload.
    pub struct Notice {
        #[cfg_attr(feature = "ts", ts(type = "unknown"))]
        pub payload: serde_json::Value,
    }

    /// When the connection's access token expires.
    pub struct SessionExpiring { pub expires_at: Timestamp }
}

/// A read cursor that moved: `{room, id}` or `{with, id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ReadCursor {
    /// In a room.
    Room { room: String, id: i64 },
    /// In a conversation with another user.
    Dm { with: String, id: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

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
