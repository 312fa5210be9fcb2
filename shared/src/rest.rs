//! REST bodies (`/api/...`) and the payload types the WebSocket API reuses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Declares wire types with the derives every one of them carries: serde both ways,
/// TypeScript under `ts`, an OpenAPI schema under `openapi`.
macro_rules! wire {
    ($($(#[$meta:meta])* pub $kind:ident $name:ident $body:tt $(;)?)*) => {$(
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        $(#[$meta])*
        pub $kind $name $body

        #[cfg(feature = "openapi")]
        $crate::schema::named_schema!($name);
    )*};
}
pub(crate) use wire;

wire! {
    /// An account as the API shows it.
    pub struct User {
        pub id: i64,
        pub username: String,
        pub is_admin: bool,
        pub created_at: Timestamp,
    }

    /// A user and whether they have at least one open connection on any instance.
    pub struct UserPresence {
        pub username: String,
        pub online: bool,
    }

    /// Username and password, for both signup (password 8–128 chars) and login.
    pub struct Credentials {
        /// 3 to 32 letters, digits, `_`, `.` or `-`; unique regardless of case.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32))]
        pub username: String,
        /// 8 to 128 characters.
        #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
        pub password: String,
    }

    /// The body of `POST /api/auth/refresh`.
    pub struct RefreshRequest {
        pub refresh_token: String,
    }

    /// Tokens issued by login and refresh.
    pub struct TokenPair {
        /// A JWT (HS256) to send as `Authorization: Bearer …` or as the `bearer.<token>` subprotocol.
        pub access_token: String,
        /// Always `"Bearer"`.
        pub token_type: String,
        /// Lifetime of the access token in seconds.
        pub expires_in: i64,
        /// An opaque single-use token for `POST /api/auth/refresh`; rotated on every use.
        pub refresh_token: String,
        pub user: User,
    }

    /// What the web app's log-in and refresh (`POST /api/auth/session`, `…/session/refresh`)
    /// return: a [`TokenPair`] whose refresh token is not in the body but in an `HttpOnly`
    /// cookie, out of reach of the page's scripts.
    pub struct SessionTokens {
        /// A JWT (HS256) to send as `Authorization: Bearer …` or as the `bearer.<token>` subprotocol.
        pub access_token: String,
        /// Always `"Bearer"`.
        pub token_type: String,
        /// Lifetime of the access token in seconds.
        pub expires_in: i64,
        pub user: User,
    }

    /// An identity provider offered on the login page (`GET /api/auth/providers`): what the
    /// web app needs to send the browser there (OpenID Connect authorization code flow with
    /// PKCE, `S256`).
    pub struct LoginProvider {
        /// The issuer's `name` in the issuers file: the `{issuer}` of
        /// `POST /api/auth/oidc/{issuer}`.
        pub name: String,
        /// What the button says after "Log in with".
        pub label: String,
        /// The provider's authorization endpoint, from its discovery document.
        pub authorization_endpoint: String,
        pub client_id: String,
        /// The scopes to ask for, space-separated (`openid profile`).
        pub scope: String,
    }

    /// The body of `POST /api/auth/oidc/{issuer}` (and `/api/auth/session/oidc/{issuer}`):
    /// what the provider's redirect brought back, and what the web app kept for it.
    pub struct OidcLogin {
        /// The authorization code of the provider's redirect.
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 2048))]
        pub code: String,
        /// The PKCE verifier whose `S256` challenge went to the provider: 43 to 128 of
        /// `[A-Za-z0-9-._~]` (RFC 7636).
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._~-]{43,128}$", min_length = 43, max_length = 128))]
        pub code_verifier: String,
        /// The `redirect_uri` the authorization request named; the provider checks they match.
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 2048))]
        pub redirect_uri: String,
        /// The `nonce` the authorization request carried; the ID token must carry the same.
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
        pub nonce: String,
    }

    /// A room as the room list shows it.
    pub struct RoomSummary {
        pub name: String,
        /// Distinct users with a connection in the room, across instances.
        pub online: u32,
        pub admin_only: bool,
        pub last_message_at: Option<Timestamp>,
        /// Messages after the caller's read cursor; `null` for anonymous callers.
        pub unread: Option<i64>,
        /// Unread messages that mention the caller (by name, `@room` or `@here`); `room.read`
        /// clears them with the rest; `null` for anonymous callers.
        #[serde(default)]
        pub mentions: Option<i64>,
        /// The room's owner; `null`: admins only (a room created before owners existed, or
        /// whose owner's account is gone).
        #[serde(default)]
        pub owner: Option<String>,
        /// The room's moderators, by name.
        #[serde(default)]
        pub moderators: Vec<String>,
        /// Slow mode: at most one message per this many seconds per member; 0: off.
        #[serde(default)]
        pub slow_mode_secs: u32,
        /// Messages older than this many days are deleted; `null`: the server's default.
        #[serde(default)]
        pub retention_days: Option<u32>,
        /// The caller keeps the room quiet (`room.set_quiet`): no notification, no Web Push
        /// for a mention; `false` for anonymous callers.
        #[serde(default)]
        pub quiet: bool,
    }

    /// The body of `POST /api/rooms`.
    pub struct CreateRoom {
        /// 1 to 64 letters, digits, `_` or `-`.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub name: String,
        #[serde(default)]
        pub admin_only: bool,
    }

    /// The body of `PUT /api/rooms/{room}/quiet` (`room.set_quiet` over REST).
    pub struct QuietRequest {
        /// `true`: hear nothing of the room (no notification, no Web Push for a mention);
        /// `false`: hear of it again.
        pub quiet: bool,
    }

    /// A persisted room message. A deleted message keeps its id, with `text: ""`.
    pub struct Message {
        pub id: i64,
        pub room: String,
        pub author: String,
        pub text: String,
        pub sent_at: Timestamp,
        pub edited_at: Option<Timestamp>,
        pub deleted: bool,
        /// Emoji to the usernames that reacted with it, in reaction order: at most 20 emoji and
        /// 1 000 reactions in all.
        pub reactions: BTreeMap<String, Vec<String>>,
        /// Users the text mentions with `@name` who exist and may read the room, spelled as
        /// they spell their names; never the author; at most 20 (see Mentions).
        #[serde(default)]
        pub mentions: Vec<String>,
        /// `room` or `here` when the room's owner, a moderator or an admin wrote `@room` or
        /// `@here`; `null` otherwise (from anyone else those are plain text).
        #[serde(default)]
        pub mention_all: Option<MentionAll>,
    }

    /// Whom `@room` and `@here` mention.
    #[derive(Copy, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum MentionAll {
        /// `@room`: every member of the room.
        Room,
        /// `@here`: the members present in the room when it was sent.
        Here,
    }

    /// A persisted one-to-one message; as the result of `dm.send` it is the delivery receipt.
    pub struct DirectMessage {
        pub id: i64,
        pub from: String,
        pub to: String,
        pub text: String,
        pub sent_at: Timestamp,
    }

    /// The body of `POST /api/publish`.
    pub struct PublishRequest {
        pub target: PublishTarget,
        /// Any JSON value of at most 16 KiB; delivered as `notice {payload}`.
        #[cfg_attr(feature = "ts", ts(type = "unknown"))]
        pub payload: serde_json::Value,
    }

    /// The answer of `POST /api/publish`.
    pub struct PublishAccepted {
        /// Connections on this instance that received it (other instances do not report back).
        pub delivered_locally: u64,
    }

    /// What a background job does.
    #[serde(rename_all = "snake_case")]
    pub enum JobKind {
        ExportRoom,
        /// Deleting a user's messages (`POST /api/users/{username}/purge`); it has no file.
        PurgeMessages,
        /// The audit log, or the part of it matching filters (`POST /api/audit/export`).
        ExportAudit,
    }

    /// File format of an export.
    #[serde(rename_all = "snake_case")]
    pub enum ExportFormat {
        Json,
        Csv,
    }

    /// What `POST /api/jobs` starts (a purge starts from `POST /api/users/{username}/purge`).
    #[serde(rename_all = "snake_case")]
    pub enum CreateJobKind {
        ExportRoom,
    }

    /// The body of `POST /api/jobs`.
    pub struct CreateJob {
        pub kind: CreateJobKind,
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        pub format: ExportFormat,
    }

    /// The answer of `POST /api/jobs`.
    pub struct JobAccepted {
        pub job_id: i64,
    }

    /// Lifecycle of a job.
    #[serde(rename_all = "snake_case")]
    pub enum JobState {
        Queued,
        Running,
        Done,
        Failed,
        /// Done, and its file was deleted after the server's export lifetime
        /// (`CONFAB_EXPORT_TTL_HOURS`); the download answers 410. Start a new export.
        Expired,
    }

    /// A background job and how far it got.
    pub struct Job {
        pub id: i64,
        pub kind: JobKind,
        pub state: JobState,
        pub percent: u8,
        pub error: Option<String>,
        pub created_at: Timestamp,
        pub finished_at: Option<Timestamp>,
    }

    /// State of one dependency in `/api/health`.
    #[serde(rename_all = "snake_case")]
    pub enum Status {
        Up,
        Down,
    }

    /// The body of `GET /api/health`.
    pub struct Health {
        /// `"ok"` when every dependency is up, `"degraded"` otherwise (HTTP 503).
        pub status: String,
        pub db: Status,
        /// `"up"` for the in-process layer and a reachable Redis.
        pub channel_layer: Status,
    }

    /// An RFC 9457 problem document (`application/problem+json`).
    pub struct Problem {
        /// A URI reference naming the problem type, e.g. `/problems/validation`.
        #[serde(rename = "type")]
        #[cfg_attr(feature = "ts", ts(rename = "type"))]
        pub kind: String,
        pub title: String,
        pub status: u16,
        pub detail: String,
        /// For 422: the offending body or query field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub field: Option<String>,
        /// For a 403 caused by a moderation decision: `suspended`, `banned` or `muted`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub reason: Option<crate::moderation::Sanction>,
        /// With `reason`: when the decision ends; absent: until lifted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub until: Option<Timestamp>,
    }

    /// A page of `users.list` / `GET /api/users`.
    pub struct UsersPage {
        /// Users, alphabetical (case-insensitive), with their presence.
        pub users: Vec<UserPresence>,
        /// Pass as `cursor` for the next page; `null` on the last page.
        pub next_cursor: Option<String>,
        /// Accounts matching the prefix (all accounts without one), online or not.
        pub total: u64,
        /// Of those, how many are online now.
        pub online: u64,
    }

    /// A page of `rooms.list` / `GET /api/rooms`.
    pub struct RoomsPage {
        /// Rooms by name.
        pub rooms: Vec<RoomSummary>,
        /// Pass as `cursor` for the next page; `null` on the last page.
        pub next_cursor: Option<String>,
        /// Rooms visible to the caller that match the prefix.
        pub total: u64,
    }

    /// Query of `GET /api/users` (the params of `users.list`).
    #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
    #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
    pub struct UsersQuery {
        /// `next_cursor` of the previous page: opaque base64url (empty: the first page).
        #[cfg_attr(feature = "openapi", schema(pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$", max_length = 100))]
        #[cfg_attr(feature = "openapi", param(pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$", max_length = 100))]
        pub cursor: Option<String>,
        /// 1 to 200, default 50.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 200))]
        #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
        pub limit: Option<u32>,
        /// Only usernames starting with this (case-insensitive); empty: every user.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{0,32}$", max_length = 32))]
        #[cfg_attr(feature = "openapi", param(pattern = "^[A-Za-z0-9_.-]{0,32}$", max_length = 32))]
        pub prefix: Option<String>,
        /// `true`: only users online now.
        pub online: Option<bool>,
    }

    /// Query of `GET /api/rooms` (the params of `rooms.list`).
    #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
    #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
    pub struct RoomsQuery {
        /// `next_cursor` of the previous page: opaque base64url (empty: the first page).
        #[cfg_attr(feature = "openapi", schema(pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$", max_length = 100))]
        #[cfg_attr(feature = "openapi", param(pattern = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$", max_length = 100))]
        pub cursor: Option<String>,
        /// 1 to 200, default 50.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 200))]
        #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
        pub limit: Option<u32>,
        /// Only rooms whose name starts with this; empty: every room.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{0,64}$", max_length = 64))]
        #[cfg_attr(feature = "openapi", param(pattern = "^[A-Za-z0-9_-]{0,64}$", max_length = 64))]
        pub prefix: Option<String>,
        /// `true`: only rooms the caller has joined; needs a bearer.
        pub member: Option<bool>,
    }

    /// Query of `GET /api/rooms/{room}/messages`.
    #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
    #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
    pub struct HistoryQuery {
        /// Only messages with a smaller id.
        pub before: Option<i64>,
        /// 1 to 100, default 50.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
        #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
        pub limit: Option<u32>,
    }
}

/// Where a publish from outside goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum PublishTarget {
    /// Every connection joined to the room.
    Room(String),
    /// Every connection of the user.
    User(String),
    /// Every connection (the value must be `true`).
    All(bool),
}

/// Written by hand: serde reads an externally tagged enum from an object with exactly one
/// member, which the derived schema does not say (it allows extra members).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for PublishTarget {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let variant = |name: &str, description: &str, value: ObjectBuilder| {
            ObjectBuilder::new()
                .description(Some(description))
                .property(name, value)
                .required(name)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        let string = |pattern: &str| ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern));
        OneOfBuilder::new()
            .description(Some("Where a publish from outside goes: exactly one of `room`, `user` and `all`."))
            .item(variant("room", "Every connection joined to the room.", string("^[A-Za-z0-9_-]{1,64}$")))
            .item(variant("user", "Every connection of the user.", string("^[A-Za-z0-9_.-]{3,32}$")))
            .item(variant(
                "all",
                "Every connection (the value must be `true`).",
                ObjectBuilder::new().schema_type(Type::Boolean).enum_values(Some([true])),
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for PublishTarget {}

#[cfg(feature = "openapi")]
crate::schema::named_schema!(PublishTarget);

/// Bytes the JSON of a message takes besides its text, names and reactions: the member names,
/// punctuation, an id of 20 digits and two timestamps, with room to spare.
const MESSAGE_FRAME_BYTES: usize = 256;
/// The most bytes one character of text takes in JSON: a control character is `\u001f`.
const ESCAPED_CHAR_BYTES: usize = 6;

impl Message {
    /// The most bytes a message takes as JSON: the longest text with every character escaped,
    /// the longest room and author names, and the most reactions with the longest emoji and
    /// usernames. Every answer and notification that carries messages is sized from it.
    pub const MAX_JSON_BYTES: usize = MESSAGE_FRAME_BYTES
        + 64
        + 32
        + ESCAPED_CHAR_BYTES * crate::validate::MAX_TEXT_CHARS
        // `"emoji":[],`, the emoji escaped as the worst text is.
        + crate::validate::MAX_DISTINCT_REACTIONS * (ESCAPED_CHAR_BYTES * crate::validate::MAX_EMOJI_CHARS + 6)
        // `"username",`.
        + crate::validate::MAX_REACTIONS * (32 + 3)
        // `"username",` per mention.
        + crate::mention::MAX_MENTIONS * (32 + 3);
}

impl DirectMessage {
    /// The most bytes a direct message takes as JSON (see [`Message::MAX_JSON_BYTES`]).
    pub const MAX_JSON_BYTES: usize = MESSAGE_FRAME_BYTES + 32 + 32 + ESCAPED_CHAR_BYTES * crate::validate::MAX_TEXT_CHARS;
}

impl TokenPair {
    /// The value of `token_type`.
    pub const BEARER: &'static str = "Bearer";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{MAX_DISTINCT_REACTIONS, MAX_EMOJI_CHARS, MAX_REACTIONS, MAX_TEXT_CHARS};

    /// The latest millisecond a timestamp can stand for, with the longest text.
    fn late() -> Timestamp {
        Timestamp::from_millis(253_402_300_799_999)
    }

    #[test]
    fn the_largest_message_fits_its_stated_bound() {
        let user = |i: usize| format!("{i:0>32}");
        let reactions = (0..MAX_DISTINCT_REACTIONS)
            .map(|e| {
                let emoji: String = std::iter::repeat_n('\u{1}', MAX_EMOJI_CHARS - 1).chain([char::from(b'a' + e as u8)]).collect();
                let per_emoji = MAX_REACTIONS / MAX_DISTINCT_REACTIONS;
                (emoji, (0..per_emoji).map(|u| user(e * per_emoji + u)).collect())
            })
            .collect();
        let message = Message {
            id: i64::MIN,
            room: "r".repeat(64),
            author: "a".repeat(32),
            text: "\u{1}".repeat(MAX_TEXT_CHARS),
            sent_at: late(),
            edited_at: Some(late()),
            deleted: false,
            reactions,
            mentions: (0..crate::mention::MAX_MENTIONS).map(|i| user(2000 + i)).collect(),
            mention_all: Some(MentionAll::Room),
        };
        let bytes = serde_json::to_string(&message).map(|json| json.len()).unwrap_or(usize::MAX);
        assert!(bytes <= Message::MAX_JSON_BYTES, "{bytes} > {}", Message::MAX_JSON_BYTES);
        assert!(Message::MAX_JSON_BYTES * 8 < crate::rpc::MAX_ANSWER_BYTES, "a page holds several of the largest messages");

        let direct = DirectMessage { id: i64::MIN, from: user(1), to: user(2), text: "\u{1}".repeat(MAX_TEXT_CHARS), sent_at: late() };
        let bytes = serde_json::to_string(&direct).map(|json| json.len()).unwrap_or(usize::MAX);
        assert!(bytes <= DirectMessage::MAX_JSON_BYTES, "{bytes} > {}", DirectMessage::MAX_JSON_BYTES);
    }
}
