//! Web Push: the browser subscriptions a person keeps on the server, and the message the
//! server pushes to them when a private message arrives while they have no connection.
//!
//! A subscription is what the browser's `PushSubscription.toJSON()` gives (an endpoint of the
//! browser's push service and the two keys the message is encrypted for, RFC 8291), POSTed
//! to `/api/push/subscriptions` after the person turned notifications on. The server signs
//! every push with its VAPID key (RFC 8292), whose public half `GET /api/push/key` gives to
//! the web app for `pushManager.subscribe({applicationServerKey})`. What arrives in the
//! service worker's `push` event is a [`PushMessage`] as JSON.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::rest::wire;

/// Most push subscriptions one account keeps (devices and browsers); one more is refused
/// with 422 `endpoint` until one is removed.
pub const MAX_PUSH_SUBSCRIPTIONS: usize = 20;

/// Longest push endpoint, in characters.
pub const MAX_PUSH_ENDPOINT_CHARS: usize = 2000;

/// Longest device name, in characters.
pub const MAX_PUSH_DEVICE_CHARS: usize = 64;

/// Longest preview a [`PushMessage`] carries, in characters (then `…`).
pub const MAX_PUSH_PREVIEW_CHARS: usize = 140;

wire! {
    /// The answer of `GET /api/push/key`.
    pub struct PushKey {
        /// The server's VAPID public key: the uncompressed P-256 point (65 bytes) in base64url
        /// without padding, the `applicationServerKey` of `pushManager.subscribe`.
        pub public_key: String,
    }

    /// The keys of a push subscription, base64url (padding tolerated).
    pub struct PushSubscriptionKeys {
        /// The browser's P-256 public key: an uncompressed point, 65 bytes.
        #[cfg_attr(feature = "openapi", schema(pattern = "^B[A-P][A-Za-z0-9_-]{84}[AEIMQUYcgkosw048]=?$"))]
        pub p256dh: String,
        /// The browser's authentication secret: 16 bytes.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{21}[AQgw](==)?$"))]
        pub auth: String,
    }

    /// The body of `POST /api/push/subscriptions`: the browser's `PushSubscription.toJSON()`,
    /// plus a name for the device. Posting an endpoint again replaces its keys and device.
    pub struct CreatePushSubscription {
        /// The push service's URL for this browser: `https://`, at most 2000 characters
        /// (`http://` and private addresses only where the server allows them for webhooks,
        /// `CONFAB_WEBHOOK_ALLOW_PRIVATE`).
        #[cfg_attr(feature = "openapi", schema(schema_with = endpoint_schema))]
        pub endpoint: String,
        /// What the push messages are encrypted for.
        pub keys: PushSubscriptionKeys,
        /// A name for the device, shown in the list (e.g. `Firefox on Linux`); at most 64
        /// characters, none of them control characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$", max_length = 64))]
        pub device: Option<String>,
    }

    /// One of the caller's push subscriptions, as `GET /api/push/subscriptions` lists it.
    pub struct PushSubscription {
        /// The subscription's id (for `DELETE /api/push/subscriptions/{id}`).
        pub id: i64,
        /// The push service's origin (`https://host`), not the whole endpoint: enough to tell
        /// devices apart, and the rest is the browser's secret.
        pub service: String,
        /// The device's name, when one was given.
        pub device: Option<String>,
        pub created_at: Timestamp,
        /// When a push last reached the push service for it; `null` before the first.
        pub last_push_at: Option<Timestamp>,
    }

    /// What a push is about.
    #[serde(rename_all = "snake_case")]
    pub enum PushKind {
        /// A private message.
        Dm,
        /// A mention in a room.
        Mention,
    }

    /// The decrypted payload of a push: small JSON the service worker turns into a notification.
    pub struct PushMessage {
        /// What happened.
        pub kind: PushKind,
        /// The conversation: the other person's username for a private message, the room's
        /// name for a mention. Notifications of one conversation replace each other.
        pub conversation: String,
        /// Who wrote.
        pub from: String,
        /// The start of the message, at most 140 characters (then `…`).
        pub preview: String,
        /// The web app's path that opens the conversation (e.g. `/dm/alice`).
        pub url: String,
    }
}

/// `text` cut to [`MAX_PUSH_PREVIEW_CHARS`] characters, with `…` when it was longer.
pub fn preview(text: &str) -> String {
    match text.char_indices().nth(MAX_PUSH_PREVIEW_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
    }
}

/// The schema of [`CreatePushSubscription::endpoint`]: the webhooks' URL rule, stated in full.
#[cfg(feature = "openapi")]
fn endpoint_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uri".to_owned())))
        .max_length(Some(2000))
        .pattern(Some(crate::webhooks::WEBHOOK_URL_PATTERN))
        .description(Some(
            "The push service's URL for this browser: `https://` with a DNS name, at most 2000 characters \
             (`http://` and private addresses only where the server allows them for webhooks, \
             `CONFAB_WEBHOOK_ALLOW_PRIVATE`).",
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_keeps_short_text_and_cuts_long_text_at_a_character() {
        assert_eq!(preview("hi"), "hi");
        let long = "é".repeat(MAX_PUSH_PREVIEW_CHARS + 5);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), MAX_PUSH_PREVIEW_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(preview(&"x".repeat(MAX_PUSH_PREVIEW_CHARS)), "x".repeat(MAX_PUSH_PREVIEW_CHARS));
    }
}
