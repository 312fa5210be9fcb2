//! The method table: every client request with its params and result type.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::rest::wire;
use crate::moderation::{
    BanParams, ConfigureParams, KickParams, ModerationResult, MuteParams, ReportAccepted, ReportParams, RoomRole, RoomSettings, SetRoleParams,
    UnbanParams, UnmuteParams,
};
use crate::{DirectMessage, Job, Message, RoomSummary, RoomsPage, Timestamp, UserPresence, UsersPage};

/// A params type that names its method and its result: `call(params)` is typed end to end.
pub trait Method: Serialize + DeserializeOwned {
    /// The JSON-RPC method name.
    const NAME: &'static str;
    /// What a successful call returns.
    type Result: Serialize + DeserializeOwned;
    /// Wraps the params as a [`Request`].
    fn into_request(self) -> Request;
}

/// Why a request's method or params could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// No method of that name (-32601).
    UnknownMethod(String),
    /// Params missing, of the wrong shape or wrong type (-32602); `field` names the param.
    InvalidParams { field: Option<String>, message: String },
}

macro_rules! methods {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal ($params:ident) -> $result:ty; )*) => {
        /// A decoded client request: the method and its typed params.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "method", content = "params")]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        pub enum Request {
            $( $(#[doc = $doc])* #[serde(rename = $name)] $variant($params), )*
        }

        impl Request {
            /// Every method name, in table order.
            pub const METHODS: &'static [&'static str] = &[$($name),*];

            /// The JSON-RPC method name.
            pub fn method(&self) -> &'static str {
                match self { $(Self::$variant(_) => $name,)* }
            }

            /// Decodes a method name and its (optional, by-name) params.
            pub fn decode(method: &str, params: Option<&RawValue>) -> Result<Self, DecodeError> {
                match method {
                    $($name => decode_params(params).map(Self::$variant),)*
                    other => Err(DecodeError::UnknownMethod(other.to_owned())),
                }
            }
        }

        $(
            impl Method for $params {
                const NAME: &'static str = $name;
                type Result = $result;
                fn into_request(self) -> Request { Request::$variant(self) }
            }
        )*

        /// The method table: name, doc, params and result schemas of each.
        #[cfg(feature = "openapi")]
        pub fn table() -> Vec<crate::schema::MethodSchema> {
            use crate::schema::WireSchema;
            vec![$(crate::schema::MethodSchema {
                name: $name,
                doc: crate::schema::doc_text(&[$($doc),*]),
                params: <$params as WireSchema>::reference(),
                params_type: <$params as WireSchema>::display(),
                result: <$result as WireSchema>::reference(),
                result_type: <$result as WireSchema>::display(),
            },)*]
        }

        /// Adds the schema of every method's params and result (and what they refer to).
        #[cfg(feature = "openapi")]
        pub fn collect_schemas(into: &mut crate::schema::Schemas) {
            use crate::schema::WireSchema;
            $(<$params as WireSchema>::collect(into); <$result as WireSchema>::collect(into);)*
        }

        /// The method table as `(name, params type, result type, doc)` in TypeScript terms.
        #[cfg(feature = "ts")]
        pub fn table_ts() -> Vec<(&'static str, String, String, &'static str)> {
            use ts_rs::TS;
            let cfg = ts_rs::Config::default();
            vec![$(($name, <$params as TS>::name(&cfg), <$result as TS>::name(&cfg), concat!($($doc),*)),)*]
        }

        /// Visits every method's params and result type, so the bindings export each one (and
        /// what it refers to) whether or not another exported type mentions it.
        #[cfg(feature = "ts")]
        pub fn visit_types(visitor: &mut impl ts_rs::TypeVisitor) {
            $(visitor.visit::<$params>(); visitor.visit::<$result>();)*
        }
    };
}

methods! {
    /// Echo the text back; any connection.
    Echo = "echo" (EchoParams) -> EchoParams;
    /// A page of users (alphabetical, case-insensitive) with their presence, the community's
    /// total and online counts; by name prefix, online only. Any connection.
    UsersList = "users.list" (UsersListParams) -> UsersPage;
    /// A page of the rooms visible to the caller (by name), with online counts; any connection.
    RoomsList = "rooms.list" (RoomsListParams) -> RoomsPage;
    /// Join (and for authenticated users, create) a room; returns the first page of its online
    /// users and its last messages, as many as fit in the answer (`history_more` says whether
    /// older ones exist). Anonymous connections may join existing public rooms only (-32004
    /// otherwise); admin-only rooms need an admin (-32003).
    RoomJoin = "room.join" (JoinParams) -> JoinResult;
    /// A page of the users present in a joined room (alphabetical); -32003 before `room.join`.
    RoomMembers = "room.members" (RoomMembersParams) -> RoomMembersPage;
    /// Watch users' presence: their `presence.changed` reach this connection from now on. The
    /// result has their current state. `replace: true` replaces the watch set; at most 1 000
    /// users (server setting) per connection, more is -32602 with `data.field = "users"`.
    PresenceWatch = "presence.watch" (PresenceWatchParams) -> PresenceWatchResult;
    /// Stop watching users (names not watched are ignored).
    PresenceUnwatch = "presence.unwatch" (PresenceUnwatchParams) -> PresenceUnwatchResult;
    /// Leave a room (idempotent).
    RoomLeave = "room.leave" (LeaveParams) -> Ack;
    /// Send a message to a joined room; persisted before it is broadcast as `room.message`.
    /// Authenticated (-32001) and joined (-32003) only. A repeat of a `nonce` with the same room
    /// and text returns the first message instead of a duplicate; the nonce reused for another
    /// room or text is -32009 with `data.field = "nonce"`, and nothing is stored.
    RoomSend = "room.send" (SendParams) -> Message;
    /// Page back through a room's history, oldest first: the `limit` messages before `before`,
    /// or the newest of them that fit in 1 MiB (`MAX_ANSWER_BYTES`). A page shorter than
    /// `limit` is therefore not the start; an empty page is.
    RoomHistory = "room.history" (HistoryParams) -> Vec<Message>;
    /// Tell the room you are typing; may be sent as a notification. At most once per 2 s per
    /// room: over the limit -32029 (silence for a notification).
    RoomTyping = "room.typing" (TypingParams) -> Ack;
    /// Edit your own message (-32003 for someone else's, -32009 once deleted).
    MessageEdit = "message.edit" (EditParams) -> Message;
    /// Delete a message (its author, an admin, or the owner or a moderator of its room).
    MessageDelete = "message.delete" (DeleteParams) -> Ack;
    /// Add or remove a reaction; for users joined to the message's room. A message holds at most
    /// 20 distinct emoji and 1 000 reactions: a reaction past either is -32009 with
    /// `data.field = "emoji"`. The room gets `message.reacted` with the change only.
    MessageReact = "message.react" (ReactParams) -> Message;
    /// Send a private message; persisted, delivered as `dm.message`, works when the recipient
    /// is offline. The result is the delivery receipt. Authenticated only. A repeat of a `nonce`
    /// with the same recipient and text returns the first message; the nonce reused for another
    /// recipient or text is -32009 with `data.field = "nonce"`, and nothing is stored.
    DmSend = "dm.send" (DmSendParams) -> DirectMessage;
    /// Page back through a private conversation, oldest first, cut to 1 MiB like `room.history`
    /// (an empty page is the start).
    DmHistory = "dm.history" (DmHistoryParams) -> Vec<DirectMessage>;
    /// Move the read cursor of a room forward (never back, never past the room's newest
    /// message); the caller's other connections get `read.moved` with the cursor's new place.
    RoomRead = "room.read" (RoomReadParams) -> Ack;
    /// Move the read cursor of a conversation forward (never back, never past its newest
    /// message); the caller's other connections get `read.moved` with the cursor's new place.
    DmRead = "dm.read" (DmReadParams) -> Ack;
    /// Keep a room quiet for the caller (`quiet: true`: no notification, no Web Push for a
    /// mention there; unread counts go on) or hear of it again; the result is the room as
    /// `rooms.list` shows it to the caller. Authenticated only (-32001); not moderation
    /// (`room.mute` silences a member for everyone).
    RoomSetQuiet = "room.set_quiet" (SetQuietParams) -> RoomSummary;
    /// Catch up after a reconnect: everything newer than the given ids, at most 500 items
    /// (messages and DMs together) and 1 MiB; `complete: false` means call again with the newer
    /// ids. At most 5000 rooms per call (-32602 with `data.field = "rooms"` beyond).
    Sync = "sync" (SyncParams) -> SyncResult;
    /// Follow a background job's progress (`job.progress`, `job.finished`); its owner only.
    JobSubscribe = "job.subscribe" (JobSubscribeParams) -> Job;
    /// Replace the connection's access token before it expires (answer to `session.expiring`);
    /// the new token must belong to the same user.
    AuthRefresh = "auth.refresh" (AuthRefreshParams) -> AuthRefreshResult;
    /// Take a user's sockets out of a room now, on every instance (they may rejoin); the
    /// room's owner, its moderators or an admin. The user gets `moderation.applied`, the room
    /// `room.user_left`.
    RoomKick = "room.kick" (KickParams) -> ModerationResult;
    /// Kick a user and keep them out until `room.unban` or `duration_secs` ends: `room.join`,
    /// `room.history` and `room.read` answer -32003 with `data.reason = "banned"`.
    RoomBan = "room.ban" (BanParams) -> ModerationResult;
    /// Lift a ban (idempotent).
    RoomUnban = "room.unban" (UnbanParams) -> ModerationResult;
    /// Silence a user in a room until `room.unmute` or `duration_secs` ends: `room.send`,
    /// `message.react`, `room.typing` and `message.edit` answer -32003 with `data.reason = "muted"`.
    RoomMute = "room.mute" (MuteParams) -> ModerationResult;
    /// Lift a mute (idempotent).
    RoomUnmute = "room.unmute" (UnmuteParams) -> ModerationResult;
    /// Appoint or remove a moderator (the room's owner or an admin), or hand the room to a
    /// new owner (an admin).
    RoomSetRole = "room.set_role" (SetRoleParams) -> ModerationResult;
    /// Change a room's slow mode or retention (its owner, moderators for slow mode, or an admin).
    RoomConfigure = "room.configure" (ConfigureParams) -> RoomSettings;
    /// Report a message to the room's moderators and the admins (once per user per message:
    /// again is -32009).
    MessageReport = "message.report" (ReportParams) -> ReportAccepted;
}

wire! {
    /// Params and result of `echo`.
    pub struct EchoParams {
        /// Any text; the result carries it back unchanged.
        pub text: String,
    }

    /// Params of `users.list` (all optional; `{}` is the first page of everyone).
    #[derive(Default)]
    pub struct UsersListParams {
        /// `next_cursor` of the previous page: opaque base64url (empty: the first page).
        #[cfg_attr(feature = "openapi", schema(pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$", max_length = 100))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub cursor: Option<String>,
        /// 1 to 200, default 50.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 200))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub limit: Option<u32>,
        /// Only usernames starting with this (case-insensitive), up to 32 username characters;
        /// empty: every user.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{0,32}$", max_length = 32))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub prefix: Option<String>,
        /// `true`: only users online now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub online: Option<bool>,
    }

    /// Params of `rooms.list` (all optional).
    #[derive(Default)]
    pub struct RoomsListParams {
        /// `next_cursor` of the previous page: opaque base64url (empty: the first page).
        #[cfg_attr(feature = "openapi", schema(pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$", max_length = 100))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub cursor: Option<String>,
        /// 1 to 200, default 50.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 200))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub limit: Option<u32>,
        /// Only rooms whose name starts with this, up to 64 room-name characters; empty: every room.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{0,64}$", max_length = 64))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub prefix: Option<String>,
        /// `true`: only rooms the caller has joined (its sidebar); needs a logged-in caller.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub member: Option<bool>,
    }

    /// Params of `room.members`.
    pub struct RoomMembersParams {
        /// The room's name (joined on this connection).
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// `next_cursor` of the previous page (or `online_next_cursor` of `room.join`): opaque
        /// base64url (empty: the first page).
        #[cfg_attr(feature = "openapi", schema(pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$", max_length = 100))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub cursor: Option<String>,
        /// 1 to 200, default 100.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 200))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub limit: Option<u32>,
    }

    /// Result of `room.members`.
    pub struct RoomMembersPage {
        /// Usernames present in the room, alphabetical.
        pub members: Vec<String>,
        /// Pass as `cursor` for the next page; `null` on the last page.
        pub next_cursor: Option<String>,
        /// Users present in the room now.
        pub total: u64,
    }

    /// Params of `presence.watch`.
    pub struct PresenceWatchParams {
        /// Usernames to watch (unknown ones are ignored); the whole set at most 1 000 by default.
        pub users: Vec<String>,
        /// `true`: the set becomes exactly `users`; `false` (default): `users` are added.
        #[serde(default)]
        pub replace: bool,
    }

    /// Result of `presence.watch`.
    pub struct PresenceWatchResult {
        /// Users this connection watches now.
        pub watching: u32,
        /// The current presence of the existing users just named, as the server spells them.
        pub users: Vec<UserPresence>,
    }

    /// Params of `presence.unwatch`.
    pub struct PresenceUnwatchParams {
        /// Usernames to stop watching.
        pub users: Vec<String>,
    }

    /// Result of `presence.unwatch`.
    pub struct PresenceUnwatchResult {
        /// Users this connection still watches.
        pub watching: u32,
    }

    /// An empty result, `{}`.
    pub struct Ack {}

    /// Params of `room.join`.
    pub struct JoinParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// How many recent messages to return, 0 to 100 (default 10).
        #[cfg_attr(feature = "openapi", schema(maximum = 100))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub history: Option<u32>,
    }

    /// Result of `room.join`.
    pub struct JoinResult {
        /// The room, with its online count (and the caller's unread count).
        pub room: RoomSummary,
        /// The first page (100) of the usernames present, alphabetical; `room.online` is the total.
        pub online: Vec<String>,
        /// Pass to `room.members` as `cursor` for the rest; `null` when `online` is complete.
        #[serde(default)]
        pub online_next_cursor: Option<String>,
        /// The last messages, oldest first: `history` of them, or fewer when more would take
        /// the answer past 1 MiB.
        pub history: Vec<Message>,
        /// `true` when the room has older messages than those in `history`: page them with
        /// `room.history` (`before` = the oldest id here, or none when `history` is empty).
        #[serde(default)]
        pub history_more: bool,
        /// The caller's role in the room (`member` for anonymous callers).
        #[serde(default = "member")]
        pub role: RoomRole,
        /// The caller's mute in this room, as `moderation.applied` announced it (`action: "mute"`);
        /// absent when the caller may write.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub muted: Option<crate::moderation::ModerationApplied>,
    }

    /// Params of `room.leave`.
    pub struct LeaveParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
    }

    /// Params of `room.send`.
    pub struct SendParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// 1 to 4000 characters after trimming, without U+0000 (NUL).
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4000))]
        pub text: String,
        /// Client-chosen de-duplication key (1 to 64 characters, no NUL), one per message: a
        /// retry with the same room and text returns the first message; the same nonce with
        /// another room or text is -32009 (`data.field = "nonce"`). Once the first message is
        /// edited or deleted, only its room is compared.
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub nonce: Option<String>,
    }

    /// Params of `room.history`.
    pub struct HistoryParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// Only messages with a smaller id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub before: Option<i64>,
        /// 1 to 100, default 50.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub limit: Option<u32>,
    }

    /// Params of `room.typing`.
    pub struct TypingParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
    }

    /// Params of `message.edit`.
    pub struct EditParams {
        /// The message to edit.
        pub id: i64,
        /// 1 to 4000 characters after trimming, without U+0000 (NUL).
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4000))]
        pub text: String,
    }

    /// Params of `message.delete`.
    pub struct DeleteParams {
        /// The message to delete.
        pub id: i64,
    }

    /// Params of `message.react`.
    pub struct ReactParams {
        /// The message to react to.
        pub id: i64,
        /// 1 to 16 visible characters: no whitespace, control or invisible formatting characters
        /// (the zero-width joiner inside an emoji sequence is fine).
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 16))]
        pub emoji: String,
        /// `true` to add the reaction, `false` to remove it.
        pub on: bool,
    }

    /// Params of `dm.send`.
    pub struct DmSendParams {
        /// The recipient's username.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32))]
        pub to: String,
        /// 1 to 4000 characters after trimming, without U+0000 (NUL).
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4000))]
        pub text: String,
        /// Client-chosen de-duplication key (1 to 64 characters, no NUL), one per message: a
        /// retry with the same recipient and text returns the first message; the same nonce
        /// with another recipient or text is -32009 (`data.field = "nonce"`).
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub nonce: Option<String>,
    }

    /// Params of `dm.history`.
    pub struct DmHistoryParams {
        /// The other user's username.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32))]
        pub with: String,
        /// Only messages with a smaller id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub before: Option<i64>,
        /// 1 to 100, default 50.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub limit: Option<u32>,
    }

    /// Params of `room.read`.
    pub struct RoomReadParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// The newest message id read; the cursor never moves back. An id past the room's
        /// newest message moves it to that message (later messages stay unread).
        pub id: i64,
    }

    /// Params of `room.set_quiet`.
    pub struct SetQuietParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// `true`: hear nothing of the room; `false`: hear of it again.
        pub quiet: bool,
    }

    /// Params of `dm.read`.
    pub struct DmReadParams {
        /// The other user's username.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32))]
        pub with: String,
        /// The newest direct message id read; the cursor never moves back. An id past the
        /// conversation's newest message moves it to that message (later ones stay unread).
        pub id: i64,
    }

    /// Params of `sync`.
    pub struct SyncParams {
        /// Room name to the last message id the client saw there; at most 5000 rooms (more is
        /// -32602 with `data.field = "rooms"`: split them over several calls).
        #[serde(default)]
        pub rooms: BTreeMap<String, i64>,
        /// The last direct message id the client saw.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub dm_after: Option<i64>,
    }

    /// Result of `sync`: at most 500 items and 1 MiB; `complete: false` means call again.
    pub struct SyncResult {
        /// Room messages newer than the given ids, in id order within each room.
        pub messages: Vec<Message>,
        /// Direct messages newer than `dm_after` (none when it was not given), in id order.
        pub dms: Vec<DirectMessage>,
        /// `false` when more may be left: call again with the newest ids received.
        pub complete: bool,
    }

    /// Params of `job.subscribe`.
    pub struct JobSubscribeParams {
        /// The job's id, from `POST /api/jobs`.
        pub job_id: i64,
    }

    /// Params of `auth.refresh`.
    pub struct AuthRefreshParams {
        /// A freshly refreshed access token (`POST /api/auth/refresh`) of the connection's user.
        pub access_token: String,
    }

    /// Result of `auth.refresh`.
    pub struct AuthRefreshResult {
        /// When the new access token expires; the next `session.expiring` comes before that.
        pub expires_at: Timestamp,
    }
}

fn member() -> RoomRole {
    RoomRole::Member
}

/// Decodes by-name params; absent params mean `{}`.
fn decode_params<T: DeserializeOwned>(params: Option<&RawValue>) -> Result<T, DecodeError> {
    let json = params.map_or("{}", RawValue::get).trim_start();
    if !json.starts_with('{') {
        return Err(DecodeError::InvalidParams {
            field: None,
            message: "params must be an object (by-name)".to_owned(),
        });
    }
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        // Without serde's position: it describes our buffer of the params, not the client's frame.
        let message = crate::json_error::describe(&err.into_inner());
        let field = if path == "." { missing_field(&message) } else { Some(path) };
        DecodeError::InvalidParams { field, message }
    })
}

/// serde reports a missing field only in its message: "missing field `text` at line …".
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next().map(str::to_owned)
}


#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn decodes_known_methods_with_params() {
        let params = raw(r#"{"room":"lobby","text":"hi"}"#);
        let request = Request::decode("room.send", Some(&params));
        assert_eq!(
            request,
            Ok(Request::RoomSend(SendParams { room: "lobby".into(), text: "hi".into(), nonce: None }))
        );
    }

    #[test]
    fn absent_params_mean_an_empty_object() {
        assert_eq!(Request::decode("users.list", None), Ok(Request::UsersList(UsersListParams::default())));
    }

    #[test]
    fn unknown_methods_are_named() {
        assert_eq!(Request::decode("nope", None), Err(DecodeError::UnknownMethod("nope".into())));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let params = raw(r#"{"room":"lobby","text":5}"#);
        match Request::decode("room.send", Some(&params)) {
            Err(DecodeError::InvalidParams { field, .. }) => assert_eq!(field.as_deref(), Some("text")),
            other => panic!("expected invalid params, got {other:?}"),
        }
    }

    #[test]
    fn missing_fields_are_named() {
        let params = raw(r#"{"room":"lobby"}"#);
        match Request::decode("room.send", Some(&params)) {
            Err(DecodeError::InvalidParams { field, .. }) => assert_eq!(field.as_deref(), Some("text")),
            other => panic!("expected invalid params, got {other:?}"),
        }
    }

    #[test]
    fn positional_params_are_rejected() {
        let params = raw(r#"["lobby"]"#);
        assert!(matches!(
            Request::decode("room.leave", Some(&params)),
            Err(DecodeError::InvalidParams { field: None, .. })
        ));
    }

    #[test]
    fn requests_serialize_as_method_and_params() {
        let json = serde_json::to_value(Request::RoomLeave(LeaveParams { room: "a".into() })).unwrap();
        assert_eq!(json, serde_json::json!({"method": "room.leave", "params": {"room": "a"}}));
    }
}
