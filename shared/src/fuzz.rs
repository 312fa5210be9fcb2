//! Property testing of the socket contract: generators of hostile JSON-RPC frames, and the
//! contract's model of how the server must answer each one.
//!
//! Used by this crate's tests (against [`decode_frame`](crate::rpc::decode_frame)) and by the
//! backend's socket fuzz test (against a real server), so both hold the decoder to the same
//! rules: a reply is valid JSON-RPC 2.0, a request with a readable `id` is answered with that
//! `id`, a notification with a valid envelope is never answered, batches are answered in one
//! array in order, and every error carries a documented code.
//!
//! Feature `fuzz` (proptest); compiled for this crate's own tests as well.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::rpc::{ErrorCode, MAX_BATCH, Request};

/// A frame to send, and whether [`expected`] can predict its answer exactly.
#[derive(Clone, Debug)]
pub struct FuzzFrame {
    pub text: String,
    /// False for text-level mangling (cut-off JSON, duplicate keys, …): only the general
    /// rules hold there (at most one reply, valid JSON-RPC, documented codes).
    pub predictable: bool,
}

/// Frames of every kind: arbitrary text, arbitrary JSON, mutated valid requests, batches, and
/// mangled request text.
pub fn frames() -> impl Strategy<Value = FuzzFrame> {
    prop_oneof![
        2 => arbitrary_text().prop_map(|text| FuzzFrame { text, predictable: true }),
        2 => json_value().prop_map(|v| FuzzFrame { text: v.to_string(), predictable: true }),
        6 => call().prop_map(|v| FuzzFrame { text: v.to_string(), predictable: true }),
        3 => batch().prop_map(|v| FuzzFrame { text: v.to_string(), predictable: true }),
        2 => mangled().prop_map(|text| FuzzFrame { text, predictable: false }),
    ]
}

/// Text that is mostly not JSON at all (or only just).
fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,64}",
        "[\\[\\]{}\":,0-9a-z \\\\-]{0,64}",
        Just(String::new()),
        Just(" ".to_owned()),
        Just("\u{feff}{}".to_owned()),
        Just("null".to_owned()),
        Just("[]".to_owned()),
        Just("[[]]".to_owned()),
        Just("{}".to_owned()),
        Just("\"jsonrpc\"".to_owned()),
        (1usize..2000).prop_map(|n| "[".repeat(n)),
        (1usize..300).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        (1usize..300).prop_map(|n| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))),
    ]
}

/// Keys a request object may (wrongly) hold.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "jsonrpc", "id", "method", "params", "room", "text", "nonce", "history", "before", "limit", "to",
            "with", "emoji", "on", "rooms", "dm_after", "job_id", "access_token", "result", "error", "",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z_]{1,12}",
        1 => ".{0,8}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-5i64..5).prop_map(Value::from),
        prop::sample::select(vec![
            json!(0),
            json!(-1),
            json!(1),
            json!(100),
            json!(101),
            json!(4_294_967_295u64),
            json!(4_294_967_296u64),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(0.5),
            json!(-0.0),
            json!(1e300),
        ]),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
    ]
}

fn string() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => ".{0,24}".prop_map(Value::from),
        2 => "[A-Za-z0-9_-]{1,70}".prop_map(Value::from),
        1 => prop::sample::select(Request::METHODS.to_vec()).prop_map(Value::from),
        1 => prop::sample::select(vec!["2.0", "1.0", "2", " 2.0", "lobby", "\u{0}", "💬", "   "]).prop_map(Value::from),
        1 => (4000usize..4100).prop_map(|n| Value::from("x".repeat(n))),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), string()]
}

/// Any JSON value, nested a few levels.
pub fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Plausible params for any method: the right names with mostly the right kinds of value.
fn params() -> impl Strategy<Value = Map<String, Value>> {
    let field = prop_oneof![
        ("room", "[A-Za-z0-9_-]{1,12}".prop_map(Value::from)),
        ("room", Just(Value::from("fuzz-room"))),
        ("text", ".{0,16}".prop_map(Value::from)),
        ("nonce", "[a-z0-9]{1,8}".prop_map(Value::from)),
        ("history", (0i64..120).prop_map(Value::from)),
        ("before", number()),
        ("limit", (0i64..120).prop_map(Value::from)),
        ("id", number()),
        ("to", "[a-z0-9_]{3,12}".prop_map(Value::from)),
        ("with", "[a-z0-9_]{3,12}".prop_map(Value::from)),
        ("emoji", ".{0,20}".prop_map(Value::from)),
        ("on", any::<bool>().prop_map(Value::Bool)),
        ("rooms", btree_map("[a-z0-9-]{1,8}", number(), 0..4).prop_map(|m| json!(m))),
        ("dm_after", number()),
        ("job_id", number()),
        ("access_token", "[A-Za-z0-9._-]{0,40}".prop_map(Value::from)),
    ];
    vec((field, any::<bool>()), 0..6).prop_flat_map(|fields| {
        let mut map = Map::new();
        for ((name, value), _) in fields {
            map.insert(name.to_owned(), value);
        }
        Just(map)
    })
}

/// The room the generators aim valid calls at; a fuzz target joins it and fills it first.
pub const ROOM: &str = "fuzz-room";
/// The user the generators send direct messages to; a fuzz target creates it first.
pub const PEER: &str = "fuzz-peer";

/// Params that are valid for `method`: the right names, kinds and ranges, aimed mostly at
/// [`ROOM`], [`PEER`] and small message ids, so that well-formed calls get past decoding and
/// validation into the handlers (where [`params`] alone would almost never land).
pub fn valid_params(method: &str) -> BoxedStrategy<Map<String, Value>> {
    let room = || prop_oneof![3 => Just(Value::from(ROOM)), 1 => "[A-Za-z0-9_-]{1,64}".prop_map(Value::from)].boxed();
    let user = || prop_oneof![3 => Just(Value::from(PEER)), 1 => "[a-z0-9_]{3,12}".prop_map(Value::from)].boxed();
    // Mostly plain text, sometimes with control characters (U+0000 included): content that
    // is the right kind of value but that a database may choke on.
    let text = || {
        prop_oneof![4 => "[a-zA-Z0-9 .!?]{0,24}[a-z]", 1 => "[a-z]{0,4}\\x00[a-z]{1,4}", 1 => "[a-z]{0,4}[\\x01-\\x1f\\x7f][a-z]{1,4}"]
            .prop_map(Value::from)
            .boxed()
    };
    let id = || (1i64..8).prop_map(Value::from).boxed();
    let nonce = || "[a-z0-9]{1,8}".prop_map(Value::from).boxed();
    let limit = || (1i64..=100).prop_map(Value::from).boxed();
    let history = || (0i64..=100).prop_map(Value::from).boxed();
    let emoji = || prop::sample::select(vec!["👍", "🎉", "ok", "+1"]).prop_map(Value::from).boxed();
    let required = |name: &'static str, value: BoxedStrategy<Value>| value.prop_map(move |v| Some((name.to_owned(), v))).boxed();
    let optional =
        |name: &'static str, value: BoxedStrategy<Value>| prop::option::of(value).prop_map(move |v| v.map(|v| (name.to_owned(), v))).boxed();
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = match method {
        "echo" => vec![required("text", text())],
        "room.join" => vec![required("room", room()), optional("history", history())],
        "room.leave" | "room.typing" => vec![required("room", room())],
        "room.send" => vec![required("room", room()), required("text", text()), optional("nonce", nonce())],
        "room.history" => vec![required("room", room()), optional("before", id()), optional("limit", limit())],
        "message.edit" => vec![required("id", id()), required("text", text())],
        "message.delete" => vec![required("id", id())],
        "message.react" => vec![required("id", id()), required("emoji", emoji()), required("on", any::<bool>().prop_map(Value::Bool).boxed())],
        "dm.send" => vec![required("to", user()), required("text", text()), optional("nonce", nonce())],
        "dm.history" => vec![required("with", user()), optional("before", id()), optional("limit", limit())],
        "room.read" => vec![required("room", room()), required("id", id())],
        "dm.read" => vec![required("with", user()), required("id", id())],
        "room.set_quiet" => vec![required("room", room()), required("quiet", any::<bool>().prop_map(Value::Bool).boxed())],
        "sync" => vec![
            required("rooms", btree_map(prop_oneof![Just(ROOM.to_owned()), "[a-z0-9-]{1,8}"], 0i64..8, 0..3).prop_map(|m| json!(m)).boxed()),
            optional("dm_after", (0i64..8).prop_map(Value::from).boxed()),
        ],
        "job.subscribe" => vec![required("job_id", id())],
        "room.members" => vec![required("room", room()), optional("limit", limit())],
        "presence.watch" => vec![
            required("users", vec(user(), 0..4).prop_map(Value::from).boxed()),
            optional("replace", any::<bool>().prop_map(Value::Bool).boxed()),
        ],
        "presence.unwatch" => vec![required("users", vec(user(), 0..4).prop_map(Value::from).boxed())],
        "users.list" => vec![optional("limit", limit()), optional("prefix", "[a-z]{1,3}".prop_map(Value::from).boxed())],
        "rooms.list" => vec![optional("limit", limit()), optional("prefix", "[a-z]{1,3}".prop_map(Value::from).boxed())],
        "auth.refresh" => vec![required("access_token", "[A-Za-z0-9._-]{0,40}".prop_map(Value::from).boxed())],
        "room.kick" => vec![required("room", room()), required("user", user()), optional("reason", text())],
        "room.ban" | "room.mute" => vec![
            required("room", room()),
            required("user", user()),
            optional("reason", text()),
            optional("duration_secs", (1i64..120).prop_map(Value::from).boxed()),
        ],
        "room.unban" | "room.unmute" => vec![required("room", room()), required("user", user())],
        "room.set_role" => vec![
            required("room", room()),
            required("user", user()),
            required("role", prop::sample::select(vec!["owner", "moderator", "member"]).prop_map(Value::from).boxed()),
        ],
        "room.configure" => vec![
            required("room", room()),
            optional("slow_mode_secs", (0i64..3).prop_map(Value::from).boxed()),
            optional("retention_days", (0i64..3).prop_map(Value::from).boxed()),
        ],
        "message.report" => vec![required("id", id()), required("reason", text())],
        // users.list, rooms.list, and any method added later (the test below names it).
        _ => vec![],
    };
    fields.prop_map(|fields| fields.into_iter().flatten().collect()).boxed()
}

/// What a mutation does to a request object.
#[derive(Clone, Debug)]
enum Mutation {
    Remove(String),
    Set(String, Value),
    SetParam(String, Value),
    RemoveParam(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        key().prop_map(Mutation::Remove),
        (key(), json_value()).prop_map(|(k, v)| Mutation::Set(k, v)),
        (key(), json_value()).prop_map(|(k, v)| Mutation::SetParam(k, v)),
        key().prop_map(Mutation::RemoveParam),
    ]
}

/// A request (a random method with valid or merely plausible params), then 0 to 3 mutations.
pub fn call() -> impl Strategy<Value = Value> {
    let id = prop_oneof![
        4 => (1i64..1_000_000).prop_map(Value::from),
        1 => "[a-z0-9-]{0,12}".prop_map(Value::from),
        1 => Just(Value::Null),
    ];
    let method_and_params = prop::sample::select(Request::METHODS.to_vec())
        .prop_flat_map(|method| (Just(method), prop_oneof![2 => valid_params(method), 1 => params().boxed()]));
    (method_and_params, id, any::<bool>(), vec(mutation(), 0..4)).prop_map(
        |((method, params), id, with_id, mutations)| {
            let mut call = json!({"jsonrpc": "2.0", "method": method, "params": params});
            if with_id {
                call["id"] = id;
            }
            for mutation in mutations {
                apply(&mut call, mutation);
            }
            call
        },
    )
}

fn apply(call: &mut Value, mutation: Mutation) {
    let Some(object) = call.as_object_mut() else { return };
    match mutation {
        Mutation::Remove(key) => {
            object.remove(&key);
        }
        Mutation::Set(key, value) => {
            object.insert(key, value);
        }
        Mutation::SetParam(key, value) => {
            if let Some(Value::Object(params)) = object.get_mut("params") {
                params.insert(key, value);
            }
        }
        Mutation::RemoveParam(key) => {
            if let Some(Value::Object(params)) = object.get_mut("params") {
                params.remove(&key);
            }
        }
    }
}

/// A batch: mostly calls, some junk, sometimes empty or longer than allowed.
pub fn batch() -> impl Strategy<Value = Value> {
    let item = prop_oneof![5 => call(), 1 => json_value()];
    vec(item, 0..=MAX_BATCH + 3).prop_map(Value::Array)
}

/// Request text cut short, spliced or given duplicate members.
fn mangled() -> impl Strategy<Value = String> {
    (call(), any::<prop::sample::Index>(), ".{0,3}", 0u8..4).prop_map(|(call, at, insert, how)| {
        let text = call.to_string();
        let mut cut = at.index(text.len().max(1));
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        match how {
            0 => text[..cut].to_owned(),
            1 => format!("{}{insert}{}", &text[..cut], &text[cut..]),
            2 => text.replacen('{', "{\"id\":1,", 1),
            _ => format!("{text}{insert}"),
        }
    })
}

// -------------------------------------------------------------------------------------------
// The model

/// How the server must answer one call: the `id` of its response, and the error code when
/// the envelope alone decides it (`None`: a result or any documented error).
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    pub id: Value,
    pub code: Option<i32>,
}

/// How the server must answer a frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Nothing: a notification, or a batch of notifications.
    Silence,
    /// One response object.
    Single(Expected),
    /// One array of responses, in call order.
    Batch(Vec<Expected>),
}

/// The answer the contract demands for `text`, or `None` when the text is not JSON (the
/// answer is then one -32700 error with a null id, checked by [`check_answer`]).
pub fn expected(text: &str) -> Option<Answer> {
    let value: Value = serde_json::from_str(text.trim_start()).ok()?;
    Some(match value {
        Value::Array(items) if items.is_empty() || items.len() > MAX_BATCH => {
            Answer::Single(Expected { id: Value::Null, code: Some(ErrorCode::InvalidRequest.code()) })
        }
        Value::Array(items) => {
            let answers: Vec<Expected> = items.iter().filter_map(expect_call).collect();
            if answers.is_empty() { Answer::Silence } else { Answer::Batch(answers) }
        }
        single => expect_call(&single).map_or(Answer::Silence, Answer::Single),
    })
}

/// The answer to one call, `None` for a notification with a valid envelope.
fn expect_call(call: &Value) -> Option<Expected> {
    let invalid = |id: Value| Some(Expected { id, code: Some(ErrorCode::InvalidRequest.code()) });
    let Some(object) = call.as_object() else { return invalid(Value::Null) };
    let id = match object.get("id") {
        None => None,
        Some(Value::Null) => Some(Value::Null),
        Some(id @ Value::String(_)) => Some(id.clone()),
        Some(id @ Value::Number(n)) if n.is_i64() => Some(id.clone()),
        Some(_) => return invalid(Value::Null),
    };
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return invalid(id.unwrap_or(Value::Null));
    }
    let Some(method) = object.get("method").and_then(Value::as_str) else {
        return invalid(id.unwrap_or(Value::Null));
    };
    let id = id?;
    if !Request::METHODS.contains(&method) {
        return Some(Expected { id, code: Some(ErrorCode::MethodNotFound.code()) });
    }
    match object.get("params") {
        None | Some(Value::Null | Value::Object(_)) => Some(Expected { id, code: None }),
        Some(_) => Some(Expected { id, code: Some(ErrorCode::InvalidParams.code()) }),
    }
}

/// Checks one response object: JSON-RPC 2.0, exactly one of `result` and `error`, and an
/// error with a documented code, a message and (if any) object `data`.
pub fn check_response(response: &Value) -> Result<(), String> {
    let object = response.as_object().ok_or_else(|| format!("a response must be an object: {response}"))?;
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(format!("jsonrpc must be \"2.0\": {response}"));
    }
    match object.get("id") {
        Some(Value::Null | Value::String(_)) => {}
        Some(Value::Number(n)) if n.is_i64() => {}
        _ => return Err(format!("id must be an integer, a string or null: {response}")),
    }
    match (object.get("result"), object.get("error")) {
        (Some(_), None) => Ok(()),
        (None, Some(error)) => {
            let code = error.get("code").and_then(Value::as_i64).ok_or_else(|| format!("error without a code: {response}"))?;
            if !ErrorCode::ALL.iter().any(|c| i64::from(c.code()) == code) {
                return Err(format!("undocumented error code {code}: {response}"));
            }
            if !error.get("message").is_some_and(Value::is_string) {
                return Err(format!("error without a message: {response}"));
            }
            if error.get("data").is_some_and(|d| !d.is_object()) {
                return Err(format!("error data must be an object: {response}"));
            }
            if code == i64::from(ErrorCode::InvalidParams.code())
                && error.get("data").and_then(|d| d.get("field")).is_some_and(|f| !f.is_string())
            {
                return Err(format!("data.field must name the param: {response}"));
            }
            Ok(())
        }
        _ => Err(format!("exactly one of result and error: {response}")),
    }
}

fn check_expected(response: &Value, expected: &Expected) -> Result<(), String> {
    check_response(response)?;
    if response.get("id") != Some(&expected.id) {
        return Err(format!("expected id {}, got {response}", expected.id));
    }
    if let Some(code) = expected.code {
        let got = response.get("error").and_then(|e| e.get("code")).and_then(Value::as_i64);
        if got != Some(i64::from(code)) {
            return Err(format!("expected error {code}, got {response}"));
        }
    }
    Ok(())
}

/// Checks the replies (parsed text frames) the server sent for `frame`.
pub fn check_answer(frame: &FuzzFrame, replies: &[Value]) -> Result<(), String> {
    if replies.len() > 1 {
        return Err(format!("one frame got {} replies: {replies:?}", replies.len()));
    }
    for reply in replies {
        match reply {
            Value::Array(items) => items.iter().try_for_each(check_response)?,
            single => check_response(single)?,
        }
    }
    if !frame.predictable {
        return Ok(());
    }
    match expected(&frame.text) {
        None => {
            // Not JSON to serde_json::Value; the server's decoder must agree: one parse error,
            // or, for texts only Value rejects (numbers out of range), an invalid request.
            let [reply] = replies else { return Err(format!("{:?} got no reply", frame.text)) };
            let allowed = [ErrorCode::ParseError.code(), ErrorCode::InvalidRequest.code()].map(i64::from);
            let is_null_error = |r: &Value| {
                let code = r.get("error").and_then(|e| e.get("code")).and_then(Value::as_i64);
                code.is_some_and(|c| allowed.contains(&c)) && r.get("id") == Some(&Value::Null)
            };
            let ok = match reply {
                Value::Array(items) => !items.is_empty() && items.iter().all(is_null_error),
                single => is_null_error(single),
            };
            if ok { Ok(()) } else { Err(format!("expected a parse error with a null id, got {reply}")) }
        }
        Some(Answer::Silence) => match replies {
            [] => Ok(()),
            _ => Err(format!("a notification was answered: {replies:?}")),
        },
        Some(Answer::Single(expected)) => match replies {
            [reply] => check_expected(reply, &expected),
            _ => Err("expected one response, got none".to_owned()),
        },
        Some(Answer::Batch(expected)) => match replies {
            [Value::Array(items)] if items.len() == expected.len() => {
                items.iter().zip(&expected).try_for_each(|(item, want)| check_expected(item, want))
            }
            _ => Err(format!("expected a batch answer of {} responses, got {replies:?}", expected.len())),
        },
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;
    use crate::rpc::{Frame, Incoming, Response, decode_frame};

    /// What the server would send for `text` if every well-formed call succeeded with `{}`.
    fn replies(text: &str) -> Vec<Value> {
        let answer = |call: Incoming| -> Option<Value> {
            let wants = call.wants_response();
            let id = call.id.flatten();
            let response = match call.request {
                Ok(_) => Response::ok(id, json!({})),
                Err(error) => Response::err(id, error),
            };
            wants.then(|| serde_json::to_value(response).unwrap_or(Value::Null))
        };
        match decode_frame(text) {
            Frame::Reject(response) => vec![serde_json::to_value(response).unwrap_or(Value::Null)],
            Frame::Single(call) => answer(call).into_iter().collect(),
            Frame::Batch(calls) => {
                let items: Vec<Value> = calls.into_iter().filter_map(answer).collect();
                if items.is_empty() { vec![] } else { vec![Value::Array(items)] }
            }
        }
    }

    #[test]
    fn the_decoder_answers_every_frame_as_the_contract_says() {
        let mut runner = TestRunner::new(Config { cases: 4000, failure_persistence: None, ..Config::default() });
        let outcome = runner.run(&frames(), |frame| {
            let replies = replies(&frame.text);
            check_answer(&frame, &replies).map_err(|why| TestCaseError::fail(format!("{:?}: {why}", frame.text)))
        });
        if let Err(err) = outcome {
            panic!("{err}");
        }
    }

    #[test]
    fn valid_params_decode_for_every_method() {
        let mut runner = TestRunner::new(Config { cases: 50, failure_persistence: None, ..Config::default() });
        for method in Request::METHODS {
            let outcome = runner.run(&valid_params(method), |params| {
                let text = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
                match decode_frame(&text) {
                    Frame::Single(Incoming { request: Ok(request), .. }) if request.method() == *method => Ok(()),
                    _ => Err(TestCaseError::fail(format!("{text} does not decode"))),
                }
            });
            if let Err(err) = outcome {
                panic!("{method}: {err}");
            }
        }
    }

    #[test]
    fn valid_params_know_every_method_that_takes_params() {
        let mut runner = TestRunner::new(Config { cases: 1, failure_persistence: None, ..Config::default() });
        for method in Request::METHODS {
            // An empty object decodes only for methods without required params; for the others,
            // `valid_params` must know the method (the fallback is `{}`).
            let empty = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}).to_string();
            let needs_params = !matches!(decode_frame(&empty), Frame::Single(Incoming { request: Ok(_), .. }));
            let tree = valid_params(method).new_tree(&mut runner).map_err(|e| e.to_string());
            let generated = tree.map(|t| t.current()).unwrap_or_default();
            assert!(!needs_params || !generated.is_empty(), "valid_params does not know {method}");
        }
    }

    #[test]
    fn a_request_with_a_readable_id_is_answered_with_it_whatever_else_is_wrong() {
        for text in [
            r#"{"jsonrpc":2,"id":5,"method":"echo"}"#,
            r#"{"jsonrpc":null,"id":5,"method":"echo"}"#,
            r#"{"jsonrpc":["2.0"],"id":5,"method":"echo"}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":{"a":1}}"#,
            r#"{"jsonrpc":"2.0","id":5}"#,
        ] {
            let frame = FuzzFrame { text: text.to_owned(), predictable: true };
            assert_eq!(check_answer(&frame, &replies(text)), Ok(()), "{text}");
        }
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_stack_overflow() {
        for text in ["[".repeat(100_000), "{\"a\":".repeat(50_000), format!("{}{}", "[".repeat(5000), "]".repeat(5000))] {
            let replies = replies(&text);
            let frame = FuzzFrame { text, predictable: true };
            assert_eq!(check_answer(&frame, &replies), Ok(()));
        }
    }
}
