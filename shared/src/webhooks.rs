//! Webhooks: events POSTed to an admin's URL, signed per the Standard Webhooks specification.
//!
//! Each delivery is `POST <url>` with the body [`WebhookBody`] (`{"type", "timestamp",
//! "data"}`, `data` being the same typed payload as the socket notification of that name,
//! or a [`crate::User`] for `user.signed_up`) and the headers `webhook-id` (the event's id,
//! the same on every retry), `webhook-timestamp` (Unix seconds of the attempt) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the
//! base64-decoded part of the secret after `whsec_`.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::rest::wire;

/// The prefix of every webhook secret; the rest is base64 of 32 random bytes.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// Longest webhook URL, in characters.
pub const MAX_WEBHOOK_URL_CHARS: usize = 2000;

/// Exactly the webhook URLs the server accepts (ECMA-262, Python and Rust regex syntax
/// alike; the server matches it with the `regex` crate): `http://` or `https://`, optional
/// `user:password@`, a host that is a DNS name (letters, digits, `-`, `_`; labels of at most
/// 63; the last label starts with a letter, so no name reads as a number), a dotted-quad
/// IPv4 address without leading zeros, or a bracketed IPv6 address (RFC 4291 text forms),
/// an optional port 0–65535, then path, query and fragment in RFC 3986 characters (anything
/// else percent-encoded). A name in its ASCII form (`xn--…`) must be valid punycode.
///
/// Generated from the RFC 3986 grammar, restricted so that every string it matches is also
/// a URL the WHATWG parser accepts unchanged in meaning (no octal or hex IPv4 forms).
pub const WEBHOOK_URL_PATTERN: &str = r#"^https?://(?:(?:[A-Za-z0-9._~!$&'()*+,;=:-]|%[0-9A-Fa-f]{2})*@)?(?:(?:[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|\[(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|::(?:(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4})?|[0-9A-Fa-f]{1,4}::(?:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4})?|(?:[0-9A-Fa-f]{1,4}:){1}[0-9A-Fa-f]{1,4}::(?:(?:[0-9A-Fa-f]{1,4}:){0,4}[0-9A-Fa-f]{1,4})?|(?:[0-9A-Fa-f]{1,4}:){2}[0-9A-Fa-f]{1,4}::(?:(?:[0-9A-Fa-f]{1,4}:){0,3}[0-9A-Fa-f]{1,4})?|(?:[0-9A-Fa-f]{1,4}:){3}[0-9A-Fa-f]{1,4}::(?:(?:[0-9A-Fa-f]{1,4}:){0,2}[0-9A-Fa-f]{1,4})?|(?:[0-9A-Fa-f]{1,4}:){4}[0-9A-Fa-f]{1,4}::(?:(?:[0-9A-Fa-f]{1,4}:){0,1}[0-9A-Fa-f]{1,4})?|(?:[0-9A-Fa-f]{1,4}:){5}[0-9A-Fa-f]{1,4}::(?:[0-9A-Fa-f]{1,4})?|(?:[0-9A-Fa-f]{1,4}:){6}[0-9A-Fa-f]{1,4}::|(?:[0-9A-Fa-f]{1,4}:){6}(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|::(?:[0-9A-Fa-f]{1,4}:){0,5}(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|[0-9A-Fa-f]{1,4}::(?:[0-9A-Fa-f]{1,4}:){0,4}(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|(?:[0-9A-Fa-f]{1,4}:){1}[0-9A-Fa-f]{1,4}::(?:[0-9A-Fa-f]{1,4}:){0,3}(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|(?:[0-9A-Fa-f]{1,4}:){2}[0-9A-Fa-f]{1,4}::(?:[0-9A-Fa-f]{1,4}:){0,2}(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|(?:[0-9A-Fa-f]{1,4}:){3}[0-9A-Fa-f]{1,4}::(?:[0-9A-Fa-f]{1,4}:){0,1}(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|(?:[0-9A-Fa-f]{1,4}:){4}[0-9A-Fa-f]{1,4}::(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))\])(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0))?(?:/(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})*)*(?:\?(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?(?:#(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$"#;

/// The headers of a delivery.
pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

wire! {
    /// An event a webhook can subscribe to.
    #[derive(Copy, Eq, Hash, PartialOrd, Ord)]
    pub enum WebhookEvent {
        /// A message was sent to a room; `data` is a [`crate::Message`].
        #[serde(rename = "room.message")]
        RoomMessage,
        /// A private message was sent; `data` is a [`crate::DirectMessage`].
        #[serde(rename = "dm.message")]
        DmMessage,
        /// A room message was edited; `data` is the edited [`crate::Message`].
        #[serde(rename = "message.edited")]
        MessageEdited,
        /// A room message was deleted; `data` is `{id, room}`.
        #[serde(rename = "message.deleted")]
        MessageDeleted,
        /// Someone signed up (`POST /api/auth/signup`); `data` is the new [`crate::User`].
        #[serde(rename = "user.signed_up")]
        UserSignedUp,
    }

    /// The body of `POST /api/webhooks`.
    pub struct CreateWebhook {
        /// Where to POST: an `http://` or `https://` URL of at most 2000 characters, matching
        /// [`WEBHOOK_URL_PATTERN`]. Loopback, private and other special-purpose destinations
        /// are refused unless the server allows them (`CONFAB_WEBHOOK_ALLOW_PRIVATE`).
        #[cfg_attr(feature = "openapi", schema(schema_with = url_schema))]
        pub url: String,
        /// At least one event.
        pub events: Vec<WebhookEvent>,
        /// Only room events of these rooms (other events are unaffected); absent means every room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub rooms: Option<Vec<String>>,
    }

    /// A webhook as `GET /api/webhooks` lists it (without its secret).
    pub struct Webhook {
        pub id: i64,
        pub url: String,
        pub events: Vec<WebhookEvent>,
        pub rooms: Option<Vec<String>>,
        pub created_at: Timestamp,
        /// Set when deliveries stopped: a 410 answer, or too many failures in a row.
        pub disabled_at: Option<Timestamp>,
        /// Why it was disabled.
        pub disabled_reason: Option<String>,
    }

    /// The answer of `POST /api/webhooks`: the only time the secret is shown.
    pub struct WebhookCreated {
        pub id: i64,
        pub url: String,
        pub events: Vec<WebhookEvent>,
        pub rooms: Option<Vec<String>>,
        /// `whsec_` + base64 of 32 random bytes: the key (base64-decoded) of the signatures.
        pub secret: String,
        pub created_at: Timestamp,
    }

    /// Where a delivery stands.
    #[serde(rename_all = "snake_case")]
    pub enum DeliveryStatus {
        /// Not yet delivered: waiting for its first attempt or its next retry.
        Pending,
        /// Answered with a 2xx.
        Delivered,
        /// Given up: the endpoint answered 410 or the webhook was disabled by this failure.
        Failed,
    }

    /// One event's delivery to one webhook, as `GET /api/webhooks/{id}/deliveries` lists it.
    pub struct WebhookDelivery {
        /// The delivery's id (for the retry endpoint).
        pub id: i64,
        /// The event's id, sent as `webhook-id` (the same on every retry).
        pub event_id: String,
        #[serde(rename = "type")]
        #[cfg_attr(feature = "ts", ts(rename = "type"))]
        pub event_type: WebhookEvent,
        pub status: DeliveryStatus,
        /// The HTTP status of the last attempt; `null` before one, or when it got no answer.
        pub http_status: Option<u16>,
        /// Attempts made so far.
        pub attempts: u32,
        /// When the next attempt is due; `null` once delivered or failed.
        pub next_attempt_at: Option<Timestamp>,
        pub created_at: Timestamp,
        pub delivered_at: Option<Timestamp>,
        /// What went wrong on the last attempt, in words.
        pub error: Option<String>,
    }

    /// The body of every webhook POST.
    pub struct WebhookBody {
        /// The event, e.g. `room.message`.
        #[serde(rename = "type")]
        #[cfg_attr(feature = "ts", ts(rename = "type"))]
        pub event_type: WebhookEvent,
        /// When the event happened.
        pub timestamp: Timestamp,
        /// The event's payload: the params of the socket notification of the same name.
        #[cfg_attr(feature = "ts", ts(type = "unknown"))]
        pub data: serde_json::Value,
    }
}

impl WebhookEvent {
    /// Every event, in order.
    pub const ALL: [WebhookEvent; 5] = [
        WebhookEvent::RoomMessage,
        WebhookEvent::DmMessage,
        WebhookEvent::MessageEdited,
        WebhookEvent::MessageDeleted,
        WebhookEvent::UserSignedUp,
    ];

    /// The event's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::RoomMessage => "room.message",
            WebhookEvent::DmMessage => "dm.message",
            WebhookEvent::MessageEdited => "message.edited",
            WebhookEvent::MessageDeleted => "message.deleted",
            WebhookEvent::UserSignedUp => "user.signed_up",
        }
    }

    /// An event by its wire name.
    pub fn parse(name: &str) -> Option<WebhookEvent> {
        Self::ALL.into_iter().find(|e| e.as_str() == name.trim())
    }

    /// Whether the event happens in a room (the `rooms` filter applies to it).
    pub fn is_room_event(self) -> bool {
        matches!(self, WebhookEvent::RoomMessage | WebhookEvent::MessageEdited | WebhookEvent::MessageDeleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_by_name() {
        for event in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(event.as_str()), Some(event));
            assert_eq!(serde_json::to_value(event).unwrap(), serde_json::json!(event.as_str()));
        }
    }
}

/// The schema of [`CreateWebhook::url`]: what the server checks, stated in full.
#[cfg(feature = "openapi")]
fn url_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        // utoipa names `uri` only with its `url` feature (another dependency): same output.
        .format(Some(SchemaFormat::Custom("uri".to_owned())))
        .max_length(Some(MAX_WEBHOOK_URL_CHARS))
        .pattern(Some(WEBHOOK_URL_PATTERN))
        .description(Some(
            "Where to POST: an `http://` or `https://` URL with a DNS name, a dotted-quad IPv4 address or a \
             bracketed IPv6 address as its host, non-ASCII characters percent-encoded (names in punycode, which \
             must be valid), at most 2000 characters. Loopback, private and other special-purpose destinations \
             are refused with 422 unless the server allows them (`CONFAB_WEBHOOK_ALLOW_PRIVATE`).",
        ))
        .build()
}
