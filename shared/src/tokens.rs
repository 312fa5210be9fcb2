//! API tokens: long-lived, scoped credentials for programs (bots, backends, CI jobs).
//!
//! A token is `cfb_` followed by 43 URL-safe base64 characters (256 random bits). It is
//! accepted wherever an access token is: `Authorization: Bearer cfb_…` on REST and on the
//! socket upgrade, or the `bearer.cfb_…` subprotocol. It is shown once, when created
//! (`POST /api/tokens`), and stored only as a hash.
//!
//! What a token may do is its scopes: every socket method and every REST route needs one
//! scope (or none, or is closed to tokens altogether); [`METHOD_SCOPES`] is the socket half
//! of that table. A call outside the token's scopes is refused with -32003 and
//! `data.scope` naming the missing scope (REST: 403 problem+json of type
//! `/problems/insufficient-scope`). A token can never create tokens, list or revoke them,
//! manage webhooks, or log out a session: those need a login.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::rest::wire;

/// The prefix of every API token; anything else in a bearer header is an access token (JWT).
pub const API_TOKEN_PREFIX: &str = "cfb_";

/// The rules of API tokens as the protocol reference states them.
pub const RULES: &str = "Programs may authenticate with an API token instead of logging in: `cfb_` followed by 43 \
URL-safe base64 characters, created with `POST /api/tokens` (or `confab token create`) and shown only then. Send it \
exactly like an access token: `Authorization: Bearer cfb_…` on the upgrade, or the `bearer.cfb_…` subprotocol. It \
does not expire unless created with `expires_in_days` (then the socket closes with 4001 at expiry, and \
`session.expiring` comes first); it cannot be used with `auth.refresh` (-32003). Each method needs the scope below; \
outside the token's scopes the call gets -32003 with `data.scope` naming the missing scope. A connection without \
`read` receives no events (presence, private messages, read cursors, job progress). Revoking the token \
(`DELETE /api/tokens/{id}`) closes every socket opened with it with 4003, on every instance.";

/// Longest token name, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 64;

/// Longest lifetime `expires_in_days` may ask for (ten years).
pub const MAX_TOKEN_DAYS: u32 = 3650;

wire! {
    /// What an API token may do.
    #[derive(Copy, Eq, Hash, PartialOrd, Ord)]
    #[serde(rename_all = "snake_case")]
    pub enum Scope {
        /// Lists, history, joining rooms that exist, `sync`, following and downloading one's exports, and receiving events on the socket.
        Read,
        /// Sending, editing, deleting, reacting, typing, private messages, read cursors, creating rooms (`POST /api/rooms`, or `room.join` of a new name), starting exports (`POST /api/jobs`, `POST /api/audit/export`).
        Write,
        /// `POST /api/publish`; only an admin's token can have it.
        Publish,
    }

    /// The body of `POST /api/tokens`.
    pub struct CreateApiToken {
        /// A label to recognise the token by: 1 to 64 characters, not all blank, without
        /// control characters (stored trimmed).
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"))]
        pub name: String,
        /// At least one scope; `publish` only for admins.
        #[cfg_attr(feature = "openapi", schema(min_items = 1))]
        pub scopes: Vec<Scope>,
        /// Days until the token stops working, 1 to 3650; absent means it never expires.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3650))]
        #[serde(default, with = "crate::whole", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional, type = "number"))]
        pub expires_in_days: Option<u32>,
    }

    /// An API token as `GET /api/tokens` lists it: never with its secret.
    pub struct ApiToken {
        pub id: i64,
        pub name: String,
        pub scopes: Vec<Scope>,
        pub created_at: Timestamp,
        /// `null`: it never expires.
        pub expires_at: Option<Timestamp>,
        /// When it was last used (kept to within a minute); `null` if never.
        pub last_used_at: Option<Timestamp>,
    }

    /// The answer of `POST /api/tokens`: the only time the secret is shown.
    pub struct ApiTokenCreated {
        pub id: i64,
        pub name: String,
        pub scopes: Vec<Scope>,
        /// The secret, `cfb_…`: send it as `Authorization: Bearer cfb_…`. Store it now; it is not shown again.
        pub token: String,
        pub created_at: Timestamp,
        pub expires_at: Option<Timestamp>,
        pub last_used_at: Option<Timestamp>,
    }
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Publish];

    /// The scope's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Publish => "publish",
        }
    }

    /// A scope by its wire name.
    pub fn parse(name: &str) -> Option<Scope> {
        Self::ALL.into_iter().find(|s| s.as_str() == name.trim())
    }

    /// What the scope allows, in words (the doc line of its variant).
    pub fn description(self) -> &'static str {
        match self {
            Scope::Read => "Lists, history, joining rooms that exist, `sync`, following and downloading one's exports, and receiving events on the socket.",
            Scope::Write => "Sending, editing, deleting, reacting, typing, private messages, read cursors, creating rooms (`POST /api/rooms`, or `room.join` of a new name), starting exports (`POST /api/jobs`, `POST /api/audit/export`).",
            Scope::Publish => "`POST /api/publish`; only an admin's token can have it.",
        }
    }
}

impl From<ApiTokenCreated> for ApiToken {
    fn from(t: ApiTokenCreated) -> Self {
        ApiToken { id: t.id, name: t.name, scopes: t.scopes, created_at: t.created_at, expires_at: t.expires_at, last_used_at: t.last_used_at }
    }
}

/// The scope each socket method needs on a connection opened with an API token (`None`:
/// any token may call it). A connection without `read` is not subscribed to any events
/// (presence, private messages, read cursors) either. A method missing from this table is
/// refused to tokens; a test keeps it complete. Connections opened with an access token
/// (a login) have every scope.
pub const METHOD_SCOPES: &[(&str, Option<Scope>)] = &[
    ("echo", None),
    ("users.list", Some(Scope::Read)),
    ("rooms.list", Some(Scope::Read)),
    ("room.join", Some(Scope::Read)),
    ("room.leave", Some(Scope::Read)),
    ("room.send", Some(Scope::Write)),
    ("room.history", Some(Scope::Read)),
    ("room.typing", Some(Scope::Write)),
    ("message.edit", Some(Scope::Write)),
    ("message.delete", Some(Scope::Write)),
    ("message.react", Some(Scope::Write)),
    ("dm.send", Some(Scope::Write)),
    ("dm.history", Some(Scope::Read)),
    ("room.read", Some(Scope::Write)),
    ("dm.read", Some(Scope::Write)),
    ("room.set_quiet", Some(Scope::Write)),
    ("sync", Some(Scope::Read)),
    ("job.subscribe", Some(Scope::Read)),
    // A token connection keeps its token: `auth.refresh` answers it with -32003 itself.
    ("auth.refresh", None),
    // Agreed in PROTOCOL-PLAN.md (presence helper); listed ahead so they are never refused.
    ("presence.watch", Some(Scope::Read)),
    ("presence.unwatch", Some(Scope::Read)),
    ("room.members", Some(Scope::Read)),
    // Moderation changes what others may do: writing.
    ("room.kick", Some(Scope::Write)),
    ("room.ban", Some(Scope::Write)),
    ("room.unban", Some(Scope::Write)),
    ("room.mute", Some(Scope::Write)),
    ("room.unmute", Some(Scope::Write)),
    ("room.set_role", Some(Scope::Write)),
    ("room.configure", Some(Scope::Write)),
    ("message.report", Some(Scope::Write)),
];

/// The scope creating a room needs, however it is created (`POST /api/rooms`, or `room.join`
/// of a name that does not exist yet, which then needs it on top of `read`): joining a room
/// reads it, adding one to the server writes.
pub const CREATE_ROOM_SCOPE: Scope = Scope::Write;

/// What a method needs beyond its row in [`METHOD_SCOPES`], in words, for the reference.
pub const METHOD_SCOPE_NOTES: &[(&str, &str)] = &[("room.join", "and `write` when the room does not exist yet (joining creates it)")];

/// The scope a socket method needs: `Some(None)` for none, `None` for a method tokens may
/// not call (unknown to the table).
pub fn method_scope(method: &str) -> Option<Option<Scope>> {
    METHOD_SCOPES.iter().find(|(name, _)| *name == method).map(|(_, scope)| *scope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::Request;

    #[test]
    fn every_socket_method_has_a_scope_entry() {
        for method in Request::METHODS {
            assert!(method_scope(method).is_some(), "{method} is missing from METHOD_SCOPES");
        }
    }

    #[test]
    fn every_scope_note_is_about_a_method_in_the_table() {
        for (method, _) in METHOD_SCOPE_NOTES {
            assert!(method_scope(method).is_some(), "{method} has a note but no row");
        }
    }

    #[test]
    fn scopes_round_trip_by_name() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert_eq!(serde_json::to_value(scope).unwrap(), serde_json::json!(scope.as_str()));
        }
        assert_eq!(Scope::parse("admin"), None);
    }

    #[test]
    fn expires_in_days_takes_whole_numbers_written_either_way() {
        let days = |json: &str| serde_json::from_str::<CreateApiToken>(&format!(r#"{{"name":"n","scopes":["read"],"expires_in_days":{json}}}"#)).map(|t| t.expires_in_days);
        assert_eq!(days("90").ok(), Some(Some(90)));
        assert_eq!(days("687.0").ok(), Some(Some(687)));
        assert_eq!(days("null").ok(), Some(None));
        for bad in ["1.5", "-1", "\"90\"", "1e300"] {
            assert!(days(bad).is_err(), "{bad}");
        }
        let absent: CreateApiToken = serde_json::from_str(r#"{"name":"n","scopes":["read"]}"#).expect("no lifetime");
        assert_eq!(absent.expires_in_days, None);
    }
}
