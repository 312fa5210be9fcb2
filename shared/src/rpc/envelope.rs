//! JSON-RPC 2.0 envelopes and the frame decoder that assigns every failure its exact code.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::methods::{DecodeError, Request};
use super::notify::Notification;

/// A request id: a number or a string, echoed back unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum RequestId {
    Number(i64),
    String(String),
}

/// Declares the error codes once: the enum, its numbers, short messages and descriptions,
/// so responses, the TypeScript constants and the protocol reference cannot disagree.
macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $code:literal, $message:literal; )*) => {
        /// JSON-RPC and Confab error codes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(i32)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant = $code, )*
        }

        impl ErrorCode {
            /// Every code, standard ones first.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant),*];

            /// The numeric code.
            pub fn code(self) -> i32 {
                self as i32
            }

            /// The standard short message.
            pub fn message(self) -> &'static str {
                match self { $(Self::$variant => $message,)* }
            }

            /// The variant name, e.g. `InvalidParams`.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => stringify!($variant),)* }
            }

            /// When the server answers with this code (the variant's doc line).
            pub fn description(self) -> &'static str {
                match self { $(Self::$variant => concat!($($doc),*).trim_ascii(),)* }
            }
        }
    };
}

error_codes! {
    /// The frame is not JSON.
    ParseError = -32700, "parse error";
    /// Not a JSON-RPC 2.0 request object, or a batch that is empty or too long.
    InvalidRequest = -32600, "invalid request";
    /// No such method.
    MethodNotFound = -32601, "method not found";
    /// Params of the wrong shape or type, or out of range; `data.field` names the param.
    InvalidParams = -32602, "invalid params";
    /// Something failed on the server; details are in its log, not here.
    Internal = -32603, "internal error";
    /// The method needs an authenticated connection.
    Unauthenticated = -32001, "unauthenticated";
    /// Not allowed: not joined, not the author, not an admin, outside the API token's scopes
    /// (then `data.scope` names the missing scope), or refused by the application's backend
    /// (a hook: then `data.reason` is its reason, shown to the user, and `data.hook` the hook),
    /// or a moderation decision: then `data.reason` is `muted`, `banned` or `suspended` (no
    /// `data.hook`) and `data.until` when it ends. `message` says which in words.
    Forbidden = -32003, "forbidden";
    /// No such room, message, user or job.
    NotFound = -32004, "not found";
    /// Conflicts with the current state, or a `nonce` already used for a different message
    /// (then `data.field = "nonce"`).
    Conflict = -32009, "conflict";
    /// Too many calls; `data.retry_after_ms` says when to try again. Every call counts,
    /// malformed and rejected ones included. Also a call of a batch whose earlier answers left
    /// too little of the frame's 1 MiB for its answer: it was not run; send it again
    /// (`retry_after_ms` is 0). A room's slow mode adds `data.reason = "slow_mode"`.
    RateLimited = -32029, "rate limited";
}

/// The `error` member of an error response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorObject {
    pub code: i32,
    pub message: String,
    /// `{field}` for -32602 (and for -32009 when one param is at fault), `{retry_after_ms}` for
    /// -32029, `{scope}` for -32003 when an API token lacks a scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional, type = "unknown"))]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error with the code's standard message and no data.
    pub fn new(code: ErrorCode) -> Self {
        Self { code: code.code(), message: code.message().to_owned(), data: None }
    }

    /// An error with a specific message.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code: code.code(), message: message.into(), data: None }
    }

    /// -32602 naming the offending param.
    pub fn invalid_param(field: &str, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidParams.code(),
            message: message.into(),
            data: Some(serde_json::json!({ "field": field })),
        }
    }

    /// -32009 blaming one param (a nonce already used for a different message).
    pub fn conflict_on(field: &str, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Conflict.code(),
            message: message.into(),
            data: Some(serde_json::json!({ "field": field })),
        }
    }

    /// -32003 for a call outside the API token's scopes, naming the scope it needs.
    pub fn missing_scope(scope: crate::Scope) -> Self {
        Self {
            code: ErrorCode::Forbidden.code(),
            message: format!("this API token lacks the `{}` scope", scope.as_str()),
            data: Some(serde_json::json!({ "scope": scope.as_str() })),
        }
    }

    /// -32003 for a call the application's backend refused (a hook's deny), with its reason
    /// and the hook that was asked.
    pub fn denied(hook: crate::hooks::HookName, reason: &str) -> Self {
        Self {
            code: ErrorCode::Forbidden.code(),
            message: format!("refused by the application: {reason}"),
            data: Some(serde_json::json!({ "reason": reason, "hook": hook.as_str() })),
        }
    }

    /// -32003 for a call a moderation decision refuses (`muted`, `banned`, `suspended`), with
    /// `data.until` when it ends on its own.
    pub fn sanctioned(reason: crate::moderation::Sanction, until: Option<crate::Timestamp>, message: impl Into<String>) -> Self {
        let mut data = serde_json::json!({ "reason": reason.as_str() });
        if let Some(until) = until {
            data["until"] = serde_json::json!(until);
        }
        Self { code: ErrorCode::Forbidden.code(), message: message.into(), data: Some(data) }
    }

    /// -32029 for a message sent too soon after the last one in a room in slow mode.
    pub fn slow_mode(retry_after_ms: u64) -> Self {
        Self {
            code: ErrorCode::RateLimited.code(),
            message: "the room is in slow mode: wait before sending again".to_owned(),
            data: Some(serde_json::json!({ "retry_after_ms": retry_after_ms, "reason": "slow_mode" })),
        }
    }

    /// -32029 with the wait before a retry can succeed.
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        Self {
            code: ErrorCode::RateLimited.code(),
            message: ErrorCode::RateLimited.message().to_owned(),
            data: Some(serde_json::json!({ "retry_after_ms": retry_after_ms })),
        }
    }
}

impl ErrorObject {
    /// -32029 for a call of a batch that was not run: the answers before it left too little of
    /// the frame's [`MAX_ANSWER_BYTES`](super::MAX_ANSWER_BYTES) for the largest answer it
    /// could give. Nothing happened; the call may be sent again at once.
    pub fn answer_budget_spent() -> Self {
        Self {
            code: ErrorCode::RateLimited.code(),
            message: "the answers before this call in its batch leave too little of the 1 MiB answer budget for its answer; \
                      it was not run: send it again"
                .to_owned(),
            data: Some(serde_json::json!({ "retry_after_ms": 0 })),
        }
    }
}

/// The most characters of an unknown method's name that its -32601 message repeats: enough
/// to recognise a typo, not a way to make the server echo a whole frame back.
pub const MAX_ECHOED_METHOD_CHARS: usize = 64;

impl From<DecodeError> for ErrorObject {
    fn from(err: DecodeError) -> Self {
        match err {
            DecodeError::UnknownMethod(name) => {
                let shown = excerpt(&name, MAX_ECHOED_METHOD_CHARS);
                Self::with_message(ErrorCode::MethodNotFound, format!("method not found: {shown}"))
            }
            DecodeError::InvalidParams { field: Some(field), message } => Self::invalid_param(&field, message),
            DecodeError::InvalidParams { field: None, message } => Self::with_message(ErrorCode::InvalidParams, message),
        }
    }
}

/// The first `max` characters of `text` (never splitting one), with `…` when something was cut.
fn excerpt(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

/// A response: exactly one of `result` and `error`, with the request's id (null when unknown).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Response {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    pub id: Option<RequestId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional, type = "unknown"))]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub error: Option<ErrorObject>,
}

impl Response {
    /// A success.
    pub fn ok(id: Option<RequestId>, result: Value) -> Self {
        Self { jsonrpc: "2.0".to_owned(), id, result: Some(result), error: None }
    }

    /// A failure.
    pub fn err(id: Option<RequestId>, error: ErrorObject) -> Self {
        Self { jsonrpc: "2.0".to_owned(), id, result: None, error: Some(error) }
    }
}

/// One call of a frame, decoded as far as it could be.
#[derive(Debug, PartialEq)]
pub struct Incoming {
    /// `None` for a notification (no `id` member): it gets no response, not even an error.
    pub id: Option<Option<RequestId>>,
    /// The request, or the error to answer with.
    pub request: Result<Request, ErrorObject>,
}

impl Incoming {
    /// Whether the sender expects a response.
    pub fn wants_response(&self) -> bool {
        self.id.is_some()
    }

    fn invalid(id: Option<Option<RequestId>>, message: &str) -> Self {
        // An invalid request is always answered, with a null id when it had none we could read.
        Self { id: Some(id.flatten()), request: Err(ErrorObject::with_message(ErrorCode::InvalidRequest, message)) }
    }
}

/// A decoded text frame.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// One call.
    Single(Incoming),
    /// A batch of 1..=20 calls, answered as one array.
    Batch(Vec<Incoming>),
    /// The whole frame is unusable: answer this single error (parse error, bad batch).
    Reject(Response),
}

/// Decodes one text frame into calls, assigning every failure its JSON-RPC code.
pub fn decode_frame(text: &str) -> Frame {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> = match serde_json::from_str(trimmed) {
            Ok(items) => items,
            Err(err) => return Frame::Reject(parse_error(&err)),
        };
        if items.is_empty() || items.len() > super::MAX_BATCH {
            let message = format!("a batch holds 1 to {} calls", super::MAX_BATCH);
            return Frame::Reject(Response::err(None, ErrorObject::with_message(ErrorCode::InvalidRequest, message)));
        }
        return Frame::Batch(items.into_iter().map(decode_call).collect());
    }
    match serde_json::from_str::<&RawValue>(trimmed) {
        Ok(raw) => Frame::Single(decode_call(raw)),
        Err(err) => Frame::Reject(parse_error(&err)),
    }
}

fn parse_error(err: &serde_json::Error) -> Response {
    let message = format!("parse error: {}", crate::json_error::describe_at(err));
    Response::err(None, ErrorObject::with_message(ErrorCode::ParseError, message))
}

/// The members of a call, each kept loose so a wrong type becomes -32600, not a parse error.
#[derive(Deserialize)]
struct RawCall<'a> {
    /// Raw, so that `"jsonrpc": 2` is an invalid request answered with the call's own id
    /// rather than an unreadable call answered with a null id.
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    /// Outer `None`: no `id` member (a notification). Inner: the raw id, possibly `null`.
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// Why an object could not be read as a call: the envelope's members are kept loose, so
/// what fails is a member given twice (which one would count is anybody's guess) or an id
/// that is not valid text.
fn unreadable_call(err: &serde_json::Error) -> String {
    let message = crate::json_error::describe(err);
    match message.strip_prefix("duplicate field ") {
        Some(member) => format!("a call must not repeat a member: {member} appears more than once"),
        None => format!("a call must be a JSON-RPC 2.0 request object: {message}"),
    }
}

fn present<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(de).map(Some)
}

fn decode_call(raw: &RawValue) -> Incoming {
    // serde would also read a struct from an array (`[null, 7, "echo"]` by position); a call
    // must be an object.
    if !raw.get().starts_with('{') {
        return Incoming::invalid(None, "a call must be a JSON-RPC 2.0 request object");
    }
    let call = match serde_json::from_str::<RawCall<'_>>(raw.get()) {
        Ok(call) => call,
        Err(err) => return Incoming::invalid(None, &unreadable_call(&err)),
    };
    let id = match call.id {
        None => None,
        Some(Value::Null) => Some(None),
        Some(value) => match serde_json::from_value::<RequestId>(value) {
            Ok(id) => Some(Some(id)),
            Err(_) => return Incoming::invalid(None, "id must be an integer or a string"),
        },
    };
    let version = call.jsonrpc.and_then(|v| serde_json::from_str::<Cow<'_, str>>(v.get()).ok());
    if version.as_deref() != Some("2.0") {
        return Incoming::invalid(id, "jsonrpc must be \"2.0\"");
    }
    let method = match call.method.map(|m| (m, serde_json::from_str::<Cow<'_, str>>(m.get()))) {
        Some((_, Ok(method))) => method,
        // A string serde cannot read as text (a lone surrogate escape): say what is wrong with it.
        Some((raw, Err(err))) if raw.get().starts_with('"') => {
            return Incoming::invalid(id, &format!("method: {}", crate::json_error::describe(&err)));
        }
        _ => return Incoming::invalid(id, "method must be a string"),
    };
    let params = call.params.filter(|p| p.get() != "null");
    Incoming { id, request: Request::decode(&method, params).map_err(ErrorObject::from) }
}

/// What a client receives: a response to one of its calls or a notification.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    Response(Response),
    Notification(Notification),
}

/// Decodes a server frame (a single object or a batch response array), for clients.
pub fn parse_server_frame(text: &str) -> Result<Vec<ServerMessage>, serde_json::Error> {
    let value: Value = serde_json::from_str(text)?;
    let items = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    items
        .into_iter()
        .map(|item| {
            if item.get("method").is_some() {
                serde_json::from_value(item).map(ServerMessage::Notification)
            } else {
                serde_json::from_value(item).map(ServerMessage::Response)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::methods::EchoParams;

    fn single(text: &str) -> Incoming {
        match decode_frame(text) {
            Frame::Single(call) => call,
            other => panic!("expected a single call, got {other:?}"),
        }
    }

    fn code(call: &Incoming) -> i32 {
        call.request.as_ref().err().map_or(0, |e| e.code)
    }

    #[test]
    fn a_well_formed_request_decodes() {
        let call = single(r#"{"jsonrpc":"2.0","id":7,"method":"echo","params":{"text":"hi"}}"#);
        assert_eq!(call.id, Some(Some(RequestId::Number(7))));
        assert_eq!(call.request, Ok(Request::Echo(EchoParams { text: "hi".into() })));
    }

    #[test]
    fn garbage_is_a_parse_error_with_null_id() {
        match decode_frame("{not json") {
            Frame::Reject(resp) => {
                assert_eq!(resp.id, None);
                assert_eq!(resp.error.map(|e| e.code), Some(-32700));
            }
            other => panic!("expected a reject, got {other:?}"),
        }
    }

    #[test]
    fn wrong_envelopes_are_invalid_requests() {
        assert_eq!(code(&single(r#"{"id":1,"method":"echo"}"#)), -32600);
        assert_eq!(code(&single(r#"{"jsonrpc":"1.0","id":1,"method":"echo"}"#)), -32600);
        assert_eq!(code(&single(r#"{"jsonrpc":"2.0","id":1,"method":5}"#)), -32600);
        assert_eq!(code(&single(r#"{"jsonrpc":"2.0","id":{},"method":"echo"}"#)), -32600);
        assert_eq!(code(&single("42")), -32600);
        assert!(single("42").wants_response());
    }

    #[test]
    fn a_wrong_jsonrpc_member_keeps_the_calls_id() {
        let call = single(r#"{"jsonrpc":2,"id":5,"method":"echo"}"#);
        assert_eq!((call.id, code(&single(r#"{"jsonrpc":2,"id":5,"method":"echo"}"#))), (Some(Some(RequestId::Number(5))), -32600));
    }

    #[test]
    fn a_call_given_as_an_array_is_not_read_by_position() {
        match decode_frame(r#"[[null, 7, "echo"]]"#) {
            Frame::Batch(calls) => {
                assert_eq!(calls[0].id, Some(None));
                assert_eq!(code(&calls[0]), -32600);
            }
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    fn message(call: &Incoming) -> &str {
        call.request.as_ref().err().map_or("", |e| e.message.as_str())
    }

    #[test]
    fn an_unknown_method_is_echoed_at_most_64_characters_long() {
        let long = "é".repeat(100);
        let call = single(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{long}"}}"#));
        assert_eq!((code(&call), message(&call)), (-32601, format!("method not found: {}…", "é".repeat(64)).as_str()));
        let call = single(r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#);
        assert_eq!(message(&call), "method not found: nope");
        let exactly = "m".repeat(MAX_ECHOED_METHOD_CHARS);
        let call = single(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{exactly}"}}"#));
        assert_eq!(message(&call), format!("method not found: {exactly}"));
    }

    #[test]
    fn a_repeated_envelope_member_is_named() {
        for (text, member) in [
            (r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"echo"}"#, "`id`"),
            (r#"{"jsonrpc":"2.0","id":1,"method":"echo","method":"echo"}"#, "`method`"),
        ] {
            let call = single(text);
            assert_eq!(code(&call), -32600, "{text}");
            assert_eq!(message(&call), format!("a call must not repeat a member: {member} appears more than once"));
        }
    }

    #[test]
    fn a_lone_surrogate_is_reported_as_one() {
        use crate::json_error::LONE_SURROGATE;
        let call = single(r#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"\ud800"}}"#);
        assert_eq!(call.id, Some(Some(RequestId::Number(1))));
        let error = call.request.expect_err("invalid params");
        assert_eq!((error.code, error.message.as_str()), (-32602, LONE_SURROGATE));
        assert_eq!(error.data, Some(serde_json::json!({"field": "text"})));
        let call = single(r#"{"jsonrpc":"2.0","id":1,"method":"\udc00"}"#);
        assert_eq!((code(&call), message(&call)), (-32600, format!("method: {LONE_SURROGATE}").as_str()));
    }

    #[test]
    fn notifications_are_recognised_by_a_missing_id() {
        let call = single(r#"{"jsonrpc":"2.0","method":"room.typing","params":{"room":"a"}}"#);
        assert!(!call.wants_response());
        let call = single(r#"{"jsonrpc":"2.0","id":null,"method":"echo","params":{"text":""}}"#);
        assert_eq!(call.id, Some(None));
    }

    #[test]
    fn batches_are_bounded() {
        assert!(matches!(decode_frame("[]"), Frame::Reject(_)));
        let one = r#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"x"}}"#;
        let ok = format!("[{}]", vec![one; 20].join(","));
        assert!(matches!(decode_frame(&ok), Frame::Batch(calls) if calls.len() == 20));
        let too_long = format!("[{}]", vec![one; 21].join(","));
        assert!(matches!(decode_frame(&too_long), Frame::Reject(_)));
    }

    #[test]
    fn server_frames_parse_into_responses_and_notifications() {
        let frames = parse_server_frame(
            r#"[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"room.typing","params":{"room":"a","username":"b"}}]"#,
        )
        .unwrap();
        assert!(matches!(frames[0], ServerMessage::Response(_)));
        assert!(matches!(frames[1], ServerMessage::Notification(Notification::Typing(_))));
    }
}
