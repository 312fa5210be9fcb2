//! Backend hooks: the team's own backend decides before a connect, a join or a send goes
//! through.
//!
//! With `CONFAB_HOOK_URL` set, each hook named in `CONFAB_HOOKS` is a synchronous `POST` of
//! a [`HookRequest`] to that URL, signed like a webhook delivery (the `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` headers of [`crate::webhooks`], keyed with
//! `CONFAB_HOOK_SECRET`), answered with a [`HookAnswer`]. Nothing is stored or fanned out
//! before the answer; a deny reaches the caller as 403 at the upgrade or -32003 with
//! `data.reason`.

use serde::{Deserialize, Serialize};

use crate::rest::wire;
use crate::rpc::{DmSendParams, EditParams, JoinParams, SendParams};

/// Longest `reason` a hook may give; a longer one is cut here (it is shown to the caller).
pub const MAX_HOOK_REASON_CHARS: usize = 500;
/// Most rooms a `connect` hook's answer may name.
pub const MAX_HOOK_ROOMS: usize = 100;
/// Largest hook answer read, in bytes; a longer body counts as a failed hook.
pub const MAX_HOOK_ANSWER_BYTES: usize = 64 * 1024;

wire! {
    /// A hook: the step of a call that asks the backend first.
    #[derive(Copy, Eq, Hash, PartialOrd, Ord)]
    pub enum HookName {
        /// A socket is about to be accepted (after its token was verified).
        #[serde(rename = "connect")]
        Connect,
        /// `room.join`, before the room is entered (or created).
        #[serde(rename = "room.join")]
        RoomJoin,
        /// `room.send`, before the message is stored.
        #[serde(rename = "room.send")]
        RoomSend,
        /// `dm.send`, before the message is stored.
        #[serde(rename = "dm.send")]
        DmSend,
        /// `message.edit`, before the new text is stored.
        #[serde(rename = "message.edit")]
        MessageEdit,
    }

    /// Who is calling, as the hook sees them.
    pub struct HookUser {
        /// The Confab username.
        pub username: String,
        /// A Confab admin (for a trusted issuer's token: by its admin claim).
        pub admin: bool,
        /// The trusted issuer whose token the caller used (its `name` in the issuers file);
        /// `null` for Confab's own logins and API tokens.
        pub issuer: Option<String>,
    }

    /// The params of the `connect` hook.
    pub struct ConnectHookParams {
        /// The rooms the socket is about to join: those of the token's rooms claim.
        pub rooms: Vec<String>,
    }

    /// The body of a hook's `POST`: which hook, who, and the call's params (the method's own
    /// typed params; for `room.send` and `dm.send`, `text` as it would be stored: trimmed).
    #[serde(tag = "hook")]
    pub enum HookRequest {
        /// Before a socket is accepted; `user` is `null` for an anonymous socket.
        #[serde(rename = "connect")]
        Connect { user: Option<HookUser>, params: ConnectHookParams },
        /// Before `room.join`; `user` is `null` for an anonymous socket.
        #[serde(rename = "room.join")]
        RoomJoin { user: Option<HookUser>, params: JoinParams },
        /// Before `room.send` stores the message.
        #[serde(rename = "room.send")]
        RoomSend { user: HookUser, params: SendParams },
        /// Before `dm.send` stores the message.
        #[serde(rename = "dm.send")]
        DmSend { user: HookUser, params: DmSendParams },
        /// Before `message.edit` stores the new text; `room` is the message's room.
        #[serde(rename = "message.edit")]
        MessageEdit { user: HookUser, room: String, params: EditParams },
    }

    /// The backend's decision.
    #[derive(Copy, Eq)]
    pub enum HookResult {
        #[serde(rename = "allow")]
        Allow,
        #[serde(rename = "deny")]
        Deny,
    }

    /// What the backend answers (status 2xx, `application/json`, at most
    /// [`MAX_HOOK_ANSWER_BYTES`]); unknown fields are ignored.
    pub struct HookAnswer {
        pub result: HookResult,
        /// Why it denied, shown to the caller (at most [`MAX_HOOK_REASON_CHARS`] characters
        /// are kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub reason: Option<String>,
        /// `room.send`, `dm.send` and `message.edit` only: the text stored and delivered
        /// instead of the sender's (the message rules apply: 1 to 4000 characters after trimming).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub text: Option<String>,
        /// `connect` only: more rooms the socket joins at once (at most [`MAX_HOOK_ROOMS`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub rooms: Option<Vec<String>>,
    }
}

impl HookName {
    /// Every hook, in the order metrics list them.
    pub const ALL: [HookName; 5] = [Self::Connect, Self::RoomJoin, Self::RoomSend, Self::DmSend, Self::MessageEdit];

    /// The name used in `CONFAB_HOOKS`, the request's `hook` and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::RoomJoin => "room.join",
            Self::RoomSend => "room.send",
            Self::DmSend => "dm.send",
            Self::MessageEdit => "message.edit",
        }
    }

    /// The hook named `name` (as in `CONFAB_HOOKS`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|hook| hook.as_str() == name)
    }
}

impl HookRequest {
    pub fn name(&self) -> HookName {
        match self {
            Self::Connect { .. } => HookName::Connect,
            Self::RoomJoin { .. } => HookName::RoomJoin,
            Self::RoomSend { .. } => HookName::RoomSend,
            Self::DmSend { .. } => HookName::DmSend,
            Self::MessageEdit { .. } => HookName::MessageEdit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_its_hook_beside_the_user_and_the_params() {
        let request = HookRequest::RoomSend {
            user: HookUser { username: "ann".into(), admin: false, issuer: Some("django".into()) },
            params: SendParams { room: "lobby".into(), text: "hi".into(), nonce: None },
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"hook": "room.send", "user": {"username": "ann", "admin": false, "issuer": "django"},
                "params": {"room": "lobby", "text": "hi"}})
        );
        assert_eq!(request.name().as_str(), "room.send");
        let anonymous = HookRequest::Connect { user: None, params: ConnectHookParams { rooms: vec![] } };
        assert_eq!(serde_json::to_value(&anonymous).unwrap()["user"], serde_json::Value::Null);
    }

    #[test]
    fn answers_parse_with_only_a_result_and_ignore_unknown_fields() {
        let answer: HookAnswer = serde_json::from_str(r#"{"result": "deny", "reason": "no", "extra": 1}"#).unwrap();
        assert_eq!((answer.result, answer.reason.as_deref(), answer.text), (HookResult::Deny, Some("no"), None));
        assert!(serde_json::from_str::<HookAnswer>(r#"{"result": "maybe"}"#).is_err());
        assert!(serde_json::from_str::<HookAnswer>(r#"{}"#).is_err());
    }

    #[test]
    fn hook_names_parse_as_they_are_written() {
        for hook in HookName::ALL {
            assert_eq!(HookName::parse(hook.as_str()), Some(hook));
            assert_eq!(serde_json::to_value(hook).unwrap(), hook.as_str());
        }
        assert_eq!(HookName::parse("room.leave"), None);
    }
}
