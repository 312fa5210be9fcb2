//! Contract fuzzing of the socket session (decode → dispatch → reply) over a real socket:
//! arbitrary text, arbitrary JSON, mutated valid requests (wrong types, missing members, huge
//! numbers, nested junk) and batches, on an authenticated and an anonymous connection.
//!
//! For every frame the server must answer as `confab_shared::fuzz` says the contract demands
//! (valid JSON-RPC 2.0, the request's own id, documented error codes, nothing for a
//! notification, one array for a batch), must never panic and must never close the socket:
//! after each frame an `echo` on the same socket still gets its answer. No input may cause an
//! internal error (-32603) either, and a panic on any of the fuzzed server's threads fails the
//! test even when it did not take the socket down (a panic hook counts them).
//!
//! `CONFAB_FUZZ_CASES` sets the number of generated frames per connection (default 256).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use confab_shared::fuzz::{self, FuzzFrame};
use confab_shared::rpc::methods::table;
use confab_shared::schema::rpc_schemas;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use confab_shared::rpc::{DmSendParams, EditParams, ReactParams, SendParams};

use crate::helpers::{TestApp, WsClient, assert_invalid_param, join, send, spawn_app, spawn_app_with, unique, within};

/// One fuzzed connection, reopened if a case kills it so the next case starts healthy.
struct Target {
    token: Option<String>,
    ws: WsClient,
    /// Sentinel ids look like nothing the generators produce (`#` is outside their alphabet).
    sentinels: u64,
}

impl Target {
    async fn open(app: &TestApp, token: Option<String>) -> Self {
        let mut ws = match &token {
            Some(token) => app.ws(token).await,
            None => app.ws_anonymous().await,
        };
        if token.is_some() {
            // Joined to the room the generators favour, with messages in it, so fuzzed sends,
            // edits, reactions, reads and deletes reach their handlers instead of stopping
            // at "not joined" or "no such message".
            let room = fuzz::ROOM;
            for call in [
                json!({"jsonrpc": "2.0", "id": "prime-join", "method": "room.join", "params": {"room": room}}),
                json!({"jsonrpc": "2.0", "id": "prime-send", "method": "room.send", "params": {"room": room, "text": "first"}}),
                json!({"jsonrpc": "2.0", "id": "prime-again", "method": "room.send", "params": {"room": room, "text": "second"}}),
            ] {
                let reply = within("priming the fuzzed connection", ws.call_raw(&call.to_string())).await;
                assert!(reply.get("result").is_some(), "priming failed: {reply}");
            }
            ws.clear_backlog();
        }
        Self { token, ws, sentinels: 0 }
    }

    async fn reopen(&mut self, app: &TestApp) {
        *self = Self::open(app, self.token.take()).await;
    }

    /// Sends `text`, then an `echo` sentinel; returns every response that came before the
    /// sentinel's (notifications are dropped). Panics if the socket closes or goes quiet.
    async fn exchange(&mut self, text: &str) -> Vec<Value> {
        self.ws.send_text(text).await;
        self.sentinels += 1;
        let sentinel = format!("sentinel#{}", self.sentinels);
        let echo = json!({"jsonrpc": "2.0", "id": sentinel, "method": "echo", "params": {"text": "still open"}});
        self.ws.send_text(echo.to_string()).await;
        let mut replies = Vec::new();
        loop {
            let reply = self.ws.next_response().await;
            if reply.get("id") == Some(&json!(sentinel)) {
                assert_eq!(reply["result"]["text"], "still open", "the sentinel echo failed: {reply}");
                break;
            }
            replies.push(reply);
        }
        self.ws.clear_backlog();
        replies
    }
}

/// The name of the fuzzed servers' runtime threads, so the panic hook can tell their panics
/// from the test's own (which run on the test thread).
const SERVER_THREAD: &str = "confab-fuzz-server";

/// Panics seen on [`SERVER_THREAD`]s since the hook was installed.
static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics on the fuzzed servers' threads, then reports them as before.
fn count_server_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(SERVER_THREAD) {
                SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// Fails on a -32603 anywhere in the replies: hostile input is the caller's fault, never an
/// internal error.
fn no_internal_error(replies: &[Value]) -> Result<(), String> {
    let internal = |r: &Value| r.get("error").and_then(|e| e.get("code")).and_then(Value::as_i64) == Some(-32603);
    let found = replies.iter().any(|reply| match reply {
        Value::Array(items) => items.iter().any(internal),
        single => internal(single),
    });
    if found { Err(format!("an internal error answered hostile input: {replies:?}")) } else { Ok(()) }
}

/// The methods of the calls in `text` that got a result (not an error), for the coverage
/// floor; calls are matched to batch answers by their (non-null) id.
fn succeeded_calls(text: &str, replies: &[Value]) -> Vec<String> {
    let ([reply], Ok(sent)) = (replies, serde_json::from_str::<Value>(text)) else { return Vec::new() };
    let method_of = |call: &Value| call.get("method").and_then(Value::as_str).map(str::to_owned);
    match (&sent, reply) {
        (Value::Array(calls), Value::Array(answers)) => answers
            .iter()
            .filter(|answer| answer.get("result").is_some() && !answer["id"].is_null())
            .filter_map(|answer| calls.iter().find(|call| call.get("id") == answer.get("id")).and_then(method_of))
            .collect(),
        (Value::Object(_), Value::Object(_)) if reply.get("result").is_some() => method_of(&sent).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn cases() -> u32 {
    std::env::var("CONFAB_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
}

/// Runs the generated frames against one connection on its own runtime (proptest's runner is
/// synchronous).
fn fuzz_connection(authenticated: bool) {
    count_server_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .expect("a runtime");
    let (app, target) = runtime.block_on(async {
        // Calls are not rate-limited here: -32029 would hide what the frames themselves do.
        let app = spawn_app_with(|c| { c.rate_per_sec = 1_000_000; c.write_bytes_per_sec = u32::MAX }).await;
        // The user the generated `dm.send` calls mostly address, and the room they mostly use
        // (created here so that anonymous joins and history reads can succeed too).
        let peer = app.signup_and_login(fuzz::PEER).await;
        let created = app.post_json("/api/rooms", &json!({"name": fuzz::ROOM, "admin_only": false}), Some(&peer.access_token)).await;
        assert_eq!(created.status().as_u16(), 201, "creating {}", fuzz::ROOM);
        let token = if authenticated {
            Some(app.signup_and_login(&unique("fuzz")).await.access_token)
        } else {
            None
        };
        let target = Target::open(&app, token).await;
        (app, target)
    });
    let target = RefCell::new(target);
    let config = Config { cases: cases(), failure_persistence: None, max_shrink_iters: 512, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let succeeded = RefCell::new(BTreeSet::new());
    let outcome = runner.run(&fuzz::frames(), |frame: FuzzFrame| {
        let exchanged = std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(target.borrow_mut().exchange(&frame.text))));
        match exchanged {
            Ok(replies) => {
                succeeded.borrow_mut().extend(succeeded_calls(&frame.text, &replies));
                fuzz::check_answer(&frame, &replies)
                .and_then(|()| no_internal_error(&replies))
                .map_err(TestCaseError::fail)
            }
            Err(_) => {
                runtime.block_on(target.borrow_mut().reopen(&app));
                Err(TestCaseError::fail("the socket closed or stopped answering (see the panic above)"))
            }
        }
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    assert_eq!(SERVER_PANICS.load(Ordering::SeqCst), 0, "a fuzzed server panicked (see its message above)");
    // The frames must get past decoding into the handlers, or the run proves little.
    let succeeded = succeeded.into_inner();
    let floor = if authenticated { 10 } else { 5 };
    assert!(
        cases() < 256 || succeeded.len() >= floor,
        "only {} methods ever succeeded ({succeeded:?}): the generated frames do not reach the handlers",
        succeeded.len()
    );
    runtime.block_on(async {
        let health = app.get("/api/health", None).await;
        assert_eq!(health.status().as_u16(), 200, "the server is still healthy after the fuzzing");
    });
}

#[test]
fn arbitrary_frames_on_an_authenticated_socket_get_contract_answers_and_never_close_it() {
    fuzz_connection(true);
}

#[test]
fn arbitrary_frames_on_an_anonymous_socket_get_contract_answers_and_never_close_it() {
    fuzz_connection(false);
}

// ---------------------------------------------------------------------------------------------
// Systematic sweeps
// ---------------------------------------------------------------------------------------------

/// A value of the schema's JSON type (the first non-null one), for a valid-looking base.
fn plausible(schema: &Value, schemas: &confab_shared::schema::Schemas) -> Value {
    // A named type (an enum such as a room role): its first allowed value, or what its own
    // schema makes plausible.
    if let Some(name) = schema.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next()) {
        if let Some(named) = schemas.get(name).and_then(|s| serde_json::to_value(s).ok()) {
            return match named.get("enum").and_then(|e| e.get(0)) {
                Some(first) => first.clone(),
                None => plausible(&named, schemas),
            };
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
        _ => "object",
    };
    match ty {
        "string" => json!("fuzz"),
        "integer" => json!(1),
        "boolean" => json!(true),
        "array" => json!([]),
        _ => json!({}),
    }
}

/// Values of the wrong JSON type for `schema` (null only where the schema does not allow it).
fn wrong_values(schema: &Value) -> Vec<Value> {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).collect(),
        _ => vec!["object"],
    };
    let mut wrong = vec![json!("text"), json!(true), json!(1.5), json!([1, [2]]), json!({"nested": {"junk": []}}), json!(u64::MAX)];
    if !types.contains(&"null") {
        wrong.push(Value::Null);
    }
    let fits = |value: &Value| match value {
        Value::Null => types.contains(&"null"),
        Value::String(_) => types.contains(&"string"),
        Value::Bool(_) => types.contains(&"boolean"),
        Value::Number(n) => types.contains(&"number") || (types.contains(&"integer") && n.is_i64()),
        Value::Array(_) => types.contains(&"array"),
        Value::Object(_) => types.contains(&"object"),
    };
    wrong.retain(|value| !fits(value));
    wrong
}

#[tokio::test]
async fn every_param_of_every_method_given_the_wrong_type_or_left_out_is_named_in_the_error() {
    let app = spawn_app_with(|c| { c.rate_per_sec = 1_000_000; c.write_bytes_per_sec = u32::MAX }).await;
    let (_, mut ws) = app.user_online("sweep").await;
    let schemas = rpc_schemas();
    let mut checked = 0;
    for method in table() {
        let Some(schema) = schemas.get(&method.params_type).and_then(|s| serde_json::to_value(s).ok()) else { continue };
        let properties = schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        let required: Vec<String> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let base: Map<String, Value> = properties.iter().map(|(name, p)| (name.clone(), plausible(p, &schemas))).collect();
        for (name, property) in &properties {
            let mut variants: Vec<(String, Map<String, Value>)> = wrong_values(property)
                .into_iter()
                .map(|wrong| {
                    let mut params = base.clone();
                    params.insert(name.clone(), wrong.clone());
                    (format!("{name} = {wrong}"), params)
                })
                .collect();
            if required.contains(name) {
                let mut params = base.clone();
                params.remove(name);
                variants.push((format!("without {name}"), params));
            }
            for (what, params) in variants {
                let request = json!({"jsonrpc": "2.0", "id": 77, "method": method.name, "params": params});
                let reply = within("a reply", ws.call_raw(&request.to_string())).await;
                fuzz::check_response(&reply).unwrap_or_else(|why| panic!("{} with {what}: {why}", method.name));
                assert_eq!(reply["id"], 77, "{} with {what}: {reply}", method.name);
                assert_eq!(reply["error"]["code"], -32602, "{} with {what}: {reply}", method.name);
                let field = reply["error"]["data"]["field"].as_str().unwrap_or_default();
                assert!(field == name || field.starts_with(&format!("{name}.")), "{} with {what} named {field:?}: {reply}", method.name);
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} variants were checked");
}

#[tokio::test]
async fn batches_are_answered_in_one_array_in_order_and_bad_ones_get_one_error() {
    let app = spawn_app_with(|c| { c.rate_per_sec = 1_000_000; c.write_bytes_per_sec = u32::MAX }).await;
    let (_, mut ws) = app.user_online("batch").await;
    let mut calls = Vec::new();
    let mut expected_ids = Vec::new();
    for i in 0..20 {
        let call = match i % 5 {
            0 => json!({"jsonrpc": "2.0", "id": i, "method": "echo", "params": {"text": format!("{i}")}}),
            1 => json!({"jsonrpc": "2.0", "id": format!("s{i}"), "method": "no.such.method"}),
            2 => json!({"jsonrpc": "2.0", "method": "echo", "params": {"text": "a notification"}}),
            3 => json!({"jsonrpc": "2.0", "id": i, "method": "room.send", "params": {"room": 5}}),
            _ => json!(["not", "a", "call"]),
        };
        match i % 5 {
            2 => {}
            1 => expected_ids.push(json!(format!("s{i}"))),
            4 => expected_ids.push(Value::Null),
            _ => expected_ids.push(json!(i)),
        }
        calls.push(call);
    }
    let reply = ws.call_raw(&Value::Array(calls.clone()).to_string()).await;
    let items = reply.as_array().unwrap_or_else(|| panic!("a batch is answered with an array: {reply}"));
    let ids: Vec<Value> = items.iter().map(|item| item["id"].clone()).collect();
    assert_eq!(ids, expected_ids);
    for item in items {
        fuzz::check_response(item).unwrap_or_else(|why| panic!("{why}"));
    }

    calls.push(json!({"jsonrpc": "2.0", "id": 99, "method": "echo", "params": {"text": "one too many"}}));
    for too_big_or_empty in [Value::Array(calls), json!([])] {
        let reply = ws.call_raw(&too_big_or_empty.to_string()).await;
        assert_eq!((reply["id"].clone(), reply["error"]["code"].clone()), (Value::Null, json!(-32600)), "{reply}");
    }
    let echo = ws.call_raw(r#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"open"}}"#).await;
    assert_eq!(echo["result"]["text"], "open");
}

#[tokio::test]
async fn deeply_nested_or_malformed_frames_get_a_parse_error_and_the_socket_stays_open() {
    let app = spawn_app_with(|c| { c.rate_per_sec = 1_000_000; c.write_bytes_per_sec = u32::MAX }).await;
    let mut ws = app.ws_anonymous().await;
    let nested = "[".repeat(60_000);
    let nested_objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    for text in [nested.as_str(), nested_objects.as_str(), "{\"jsonrpc\":\"2.0\",\"id\":1,", "\u{0}", "1e999999", "\"\\ud800\""] {
        let reply = ws.call_raw(text).await;
        fuzz::check_response(&reply).unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(reply["id"], Value::Null, "{reply}");
        let code = reply["error"]["code"].as_i64().unwrap_or_default();
        assert!(code == -32700 || code == -32600, "{}: {reply}", &text[..text.len().min(40)]);
    }
    let echo = ws.call_raw(r#"{"jsonrpc":"2.0","id":2,"method":"echo","params":{"text":"open"}}"#).await;
    assert_eq!(echo["result"]["text"], "open");
}

/// Found by the fuzzing above on PostgreSQL, which cannot store U+0000 in text: the call
/// failed with -32603. Every stored text now refuses it up front, on every database.
#[tokio::test]
async fn text_with_a_nul_character_is_invalid_params_not_an_internal_error() {
    let app = spawn_app_with(|c| { c.rate_per_sec = 1_000_000; c.write_bytes_per_sec = u32::MAX }).await;
    let (_, mut ann) = app.user_online("nul").await;
    let bob = unique("nulpeer");
    app.signup_and_login(&bob).await;
    let room = unique("nul");
    ann.ok(join(&room)).await;
    let sent = ann.ok(send(&room, "clean")).await;

    assert_invalid_param(&ann.fail(send(&room, "a\0b")).await, "text");
    assert_invalid_param(&ann.fail(SendParams { room: room.clone(), text: "ok".into(), nonce: Some("n\0".into()) }).await, "nonce");
    assert_invalid_param(&ann.fail(EditParams { id: sent.id, text: "\0".into() }).await, "text");
    assert_invalid_param(&ann.fail(ReactParams { id: sent.id, emoji: "\0".into(), on: true }).await, "emoji");
    assert_invalid_param(&ann.fail(DmSendParams { to: bob, text: "x\0".into(), nonce: None }).await, "text");
    // Other control characters are ordinary text.
    let bell = ann.ok(send(&room, "ding\u{7}")).await;
    assert_eq!(bell.text, "ding\u{7}");
}

/// Found by schemathesis on PostgreSQL: a login whose username held U+0000 reached the
/// database, which refused it, and the server answered 500. A name that cannot exist is now
/// an unknown user: 401, like any other.
#[tokio::test]
async fn a_login_with_an_impossible_username_is_401_not_500() {
    let app = spawn_app().await;
    for username in ["a\0b", "\0", "no spaces allowed", ""] {
        let response = app.login(username, "long enough password").await;
        assert_eq!(response.status().as_u16(), 401, "login as {username:?}");
    }
}
