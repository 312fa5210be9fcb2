//! The socket itself: the handshake (tokens, subprotocols, Origin), close codes, token expiry
//! and `auth.refresh`, JSON-RPC framing (errors, notifications, batches), rate limiting and
//! graceful shutdown.

use std::time::{Duration, Instant};

use confab_shared::TokenPair;
use confab_shared::rpc::notify::SessionExpiring;
use confab_shared::rpc::{AuthRefreshParams, DmReadParams, EchoParams, SyncParams, SyncResult};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::helpers::{
    TestApp, WsClient, assert_code, assert_invalid_param, body, claims_of, dm, history, join, send, sign, spawn_app, spawn_app_with, unique,
};

fn echo(text: &str) -> EchoParams {
    EchoParams { text: text.to_owned() }
}

fn with_protocols(app: &TestApp, protocols: &str) -> tokio_tungstenite::tungstenite::http::Request<()> {
    let mut request = app.ws_request();
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_str(protocols).expect("a header value"));
    request
}

fn with_origin(app: &TestApp, origin: &str) -> tokio_tungstenite::tungstenite::http::Request<()> {
    let mut request = app.ws_request();
    request.headers_mut().insert("origin", HeaderValue::from_str(origin).expect("a header value"));
    request
}

/// Whether the socket speaks for `user`: a message it sends is authored by them.
async fn assert_speaks_for(ws: &mut WsClient, user: &str) {
    let room = unique("whoami");
    ws.ok(join(&room)).await;
    let message = ws.ok(send(&room, "it is me")).await;
    assert_eq!(message.author, user);
}

// --- handshake --------------------------------------------------------------------------------

#[tokio::test]
async fn a_bearer_header_authenticates_the_socket() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;

    let mut ws = app.ws(&ann.access_token).await;

    assert_eq!(ws.protocol, None, "nothing offered, nothing selected");
    assert_speaks_for(&mut ws, &ann.user.username).await;
}

#[tokio::test]
async fn a_bearer_subprotocol_authenticates_and_only_confab_v1_is_selected() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let request = with_protocols(&app, &format!("confab.v1, bearer.{}", ann.access_token));

    let mut ws = WsClient::connect(app.addr, request).await.expect("the upgrade succeeds");

    assert_eq!(ws.protocol.as_deref(), Some("confab.v1"), "the token is never echoed");
    assert_speaks_for(&mut ws, &ann.user.username).await;
}

#[tokio::test]
async fn without_a_token_the_socket_is_anonymous() {
    let app = spawn_app().await;
    let bob = app.signup_and_login(&unique("bob")).await;

    let mut ws = WsClient::connect(app.addr, with_protocols(&app, "confab.v1")).await.expect("the upgrade succeeds");

    assert_eq!(ws.protocol.as_deref(), Some("confab.v1"));
    assert_code(&ws.fail(dm(&bob.user.username, "hi")).await, -32001);
}

#[tokio::test]
async fn a_token_in_the_url_is_ignored() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;

    for param in ["access_token", "token", "bearer"] {
        let url = format!("ws://{}/ws?{param}={}", app.addr, ann.access_token);
        let request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).expect("a URL");
        let mut ws = WsClient::connect(app.addr, request).await.expect("the upgrade succeeds");
        assert_code(&ws.fail(dm(&bob.user.username, "hi")).await, -32001);
    }
}

#[tokio::test]
async fn invalid_expired_and_foreign_tokens_are_refused_with_401_before_the_upgrade() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let claims = claims_of(&ann.access_token);
    let now = chrono::Utc::now().timestamp();
    // The forging itself is sound: the same claims re-signed are accepted.
    let resigned = sign(&app, &claims);
    app.ws(&resigned).await.ok(echo("ok")).await;

    let mut expired = claims.clone();
    expired["exp"] = json!(now - 60);
    expired["iat"] = json!(now - 960);
    expired["nbf"] = json!(now - 960);
    let mut not_yet = claims.clone();
    not_yet["nbf"] = json!(now + 600);
    let mut other_audience = claims.clone();
    other_audience["aud"] = json!("someone-else");
    let mut other_issuer = claims.clone();
    other_issuer["iss"] = json!("someone-else");
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(
            std::fs::read_to_string(app.data_dir.join("jwt_secret")).expect("secret").trim().as_bytes(),
        ),
    )
    .expect("signing works");
    let other_secret = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"another secret entirely, 32 bytes"))
        .expect("signing works");

    let refused = [
        ("garbage", "garbage".to_owned()),
        ("expired", sign(&app, &expired)),
        ("not yet valid", sign(&app, &not_yet)),
        ("another audience", sign(&app, &other_audience)),
        ("another issuer", sign(&app, &other_issuer)),
        ("another algorithm", hs512),
        ("another secret", other_secret),
        ("a refresh token", ann.refresh_token.clone()),
    ];
    for (what, token) in refused {
        let (status, _) = app.ws_refused(app.ws_bearer_request(&token)).await;
        assert_eq!(status, 401, "{what} in the header");
        let (status, _) = app.ws_refused(with_protocols(&app, &format!("confab.v1, bearer.{token}"))).await;
        assert_eq!(status, 401, "{what} in the subprotocol");
    }
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;

    let (status, _) = app.ws_refused(with_origin(&app, "https://evil.example")).await;
    assert_eq!(status, 403);
    let mut authed = app.ws_bearer_request(&ann.access_token);
    authed.headers_mut().insert("origin", HeaderValue::from_static("http://127.0.0.1:1"));
    let (status, _) = app.ws_refused(authed).await;
    assert_eq!(status, 403, "a different port is a different origin");
}

#[tokio::test]
async fn the_servers_own_origin_and_requests_without_origin_pass() {
    let app = spawn_app().await;

    let mut own = WsClient::connect(app.addr, with_origin(&app, &format!("http://{}", app.addr))).await.expect("own origin");
    own.ok(echo("same host")).await;
    let mut program = app.ws_anonymous().await;
    program.ok(echo("no origin")).await;
}

#[tokio::test]
async fn configured_origins_are_allowed() {
    let app = spawn_app_with(|c| c.allowed_origins = vec!["https://chat.example.com".into()]).await;

    let mut ws = WsClient::connect(app.addr, with_origin(&app, "https://chat.example.com")).await.expect("allowed");
    ws.ok(echo("hello")).await;
    let (status, _) = app.ws_refused(with_origin(&app, "https://other.example.com")).await;
    assert_eq!(status, 403);
}

// --- close codes ------------------------------------------------------------------------------

#[tokio::test]
async fn a_binary_frame_closes_the_socket_with_1003() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;

    ws.send_binary(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}".to_vec()).await;

    assert_eq!(ws.expect_close().await, 1003);
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_the_socket_with_1009() {
    let app = spawn_app_with(|c| c.max_frame_bytes = 2048).await;
    let mut ws = app.ws_anonymous().await;
    let envelope = json!({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"text": ""}}).to_string().len();
    let frame_of = |len: usize| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"text": "x".repeat(len - envelope)}}).to_string()
    };
    let at_limit = frame_of(2048);
    assert_eq!(at_limit.len(), 2048);

    let answer = ws.call_raw(&at_limit).await;
    assert_eq!(answer["result"]["text"].as_str().map(str::len), Some(2048 - envelope), "a frame at the limit is fine");
    ws.send_text(frame_of(2049)).await;

    assert_eq!(ws.expect_close().await, 1009);
}

#[tokio::test]
async fn a_client_close_is_answered_with_1000() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;
    ws.ok(echo("bye soon")).await;

    ws.close().await;

    assert_eq!(ws.expect_close().await, 1000);
}

#[tokio::test]
async fn stopping_the_server_closes_every_socket_with_1001() {
    let mut app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let mut authed = app.ws(&ann.access_token).await;
    let mut anonymous = app.ws_anonymous().await;
    authed.ok(join("lobby")).await;
    anonymous.ok(echo("here")).await;
    let addr = app.addr;

    app.stop().await;

    assert_eq!(authed.expect_close().await, 1001);
    assert_eq!(anonymous.expect_close().await, 1001);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is gone");
}

// --- keep-alive -----------------------------------------------------------------------------

#[tokio::test]
async fn a_quiet_client_that_answers_pings_stays_connected() {
    let app = spawn_app_with(|c| c.ping_secs = 1).await;
    let mut ws = app.ws_anonymous().await;

    // Three ping intervals of silence from the client, but its pongs flow.
    ws.read_for(Duration::from_millis(4500)).await;

    assert_eq!(ws.ok(echo("still here")).await.text, "still here");
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped() {
    let app = spawn_app_with(|c| c.ping_secs = 1).await;
    // Accounts first: with 1 s pings, a socket left unread through slow password hashing
    // would itself be dropped.
    let ann = app.signup_and_login(&unique("ann")).await;
    let watcher_tokens = app.signup_and_login(&unique("watcher")).await;
    let mut watcher = app.ws(&watcher_tokens.access_token).await;
    watcher.ok(confab_shared::rpc::PresenceWatchParams { users: vec![ann.user.username.clone()], replace: false }).await;
    watcher.clear_backlog();
    let mut silent = app.ws(&ann.access_token).await;
    silent.ok(echo("then silence")).await;
    let online: confab_shared::UserPresence = watcher.next("presence.changed").await;
    assert!(online.online);

    // `silent` reads nothing from now on, so it answers no ping.
    let offline: confab_shared::UserPresence = watcher.next("presence.changed").await;
    assert_eq!((offline.username.as_str(), offline.online), (ann.user.username.as_str(), false));
    drop(silent);
}

// --- expiry and auth.refresh ------------------------------------------------------------------

async fn short_lived_app() -> TestApp {
    spawn_app_with(|c| {
        c.access_ttl_secs = 4;
        c.expiry_warning_secs = 2;
    })
    .await
}

#[tokio::test]
async fn an_expiring_token_is_announced_and_the_socket_closes_with_4001_without_a_refresh() {
    let app = short_lived_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let exp = claims_of(&ann.access_token)["exp"].as_i64().expect("exp");
    let mut ws = app.ws(&ann.access_token).await;

    let warning: SessionExpiring = ws.next("session.expiring").await;
    let warned = Instant::now();

    assert_eq!(warning.expires_at.millis(), exp * 1000);
    assert_eq!(ws.expect_close().await, 4001);
    let lead = warned.elapsed();
    assert!(lead >= Duration::from_millis(1000), "warned {lead:?} before the close; 2 s were configured");
    let closed_at = chrono::Utc::now().timestamp_millis();
    assert!(closed_at >= exp * 1000 - 200, "closed {} ms before expiry", exp * 1000 - closed_at);
}

#[tokio::test]
async fn auth_refresh_keeps_the_socket_open_past_the_old_expiry() {
    let app = short_lived_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let first_exp = claims_of(&ann.access_token)["exp"].as_i64().expect("exp");
    let mut ws = app.ws(&ann.access_token).await;
    let _: SessionExpiring = ws.next("session.expiring").await;

    let fresh: TokenPair = body(app.refresh(&ann.refresh_token).await).await;
    let answer = ws.ok(AuthRefreshParams { access_token: fresh.access_token.clone() }).await;

    let fresh_exp = claims_of(&fresh.access_token)["exp"].as_i64().expect("exp");
    assert_eq!(answer.expires_at.millis(), fresh_exp * 1000);
    // Sleep past the first token's expiry; the socket must still answer.
    let wait = (first_exp * 1000 + 800 - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    assert_eq!(ws.ok(echo("alive")).await.text, "alive");
    // The new token is announced in its turn.
    let again: SessionExpiring = ws.next("session.expiring").await;
    assert_eq!(again.expires_at.millis(), fresh_exp * 1000);
    assert_eq!(ws.expect_close().await, 4001);
}

#[tokio::test]
async fn auth_refresh_accepts_only_a_valid_token_of_the_same_user() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let mut ws = app.ws(&ann.access_token).await;
    let mut anonymous = app.ws_anonymous().await;

    assert_code(&ws.fail(AuthRefreshParams { access_token: bob.access_token.clone() }).await, -32003);
    assert_invalid_param(&ws.fail(AuthRefreshParams { access_token: "garbage".into() }).await, "access_token");
    assert_code(&anonymous.fail(AuthRefreshParams { access_token: ann.access_token.clone() }).await, -32001);
    // A token of another session of the same user is fine, and the socket still speaks for ann.
    let other_session = app.login_ok(&ann.user.username).await;
    ws.ok(AuthRefreshParams { access_token: other_session.access_token }).await;
    assert_speaks_for(&mut ws, &ann.user.username).await;
}

#[tokio::test]
async fn after_auth_refresh_the_socket_follows_the_new_session_on_logout() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let other = app.login_ok(&ann.user.username).await;
    let mut ws = app.ws(&ann.access_token).await;
    ws.ok(AuthRefreshParams { access_token: other.access_token.clone() }).await;

    // Logging the first session out no longer concerns this socket ...
    app.post_json("/api/auth/logout", &json!({}), Some(&ann.access_token)).await;
    ws.ok(echo("still open")).await;
    // ... logging the adopted one out does.
    app.post_json("/api/auth/logout", &json!({}), Some(&other.access_token)).await;
    assert_eq!(ws.expect_close().await, 4003);
}

// --- JSON-RPC framing -------------------------------------------------------------------------

#[tokio::test]
async fn a_frame_that_is_not_json_gets_a_parse_error_with_a_null_id() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;

    for garbage in ["{not json", "", "[{\"jsonrpc\":", "\u{1F600}"] {
        let answer = ws.call_raw(garbage).await;
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer.get("id"), Some(&Value::Null), "the id is present and null: {answer}");
        assert_eq!(answer["error"]["code"], -32700, "for {garbage:?}: {answer}");
        assert!(answer.get("result").is_none());
    }
    assert_eq!(ws.ok(echo("the socket survives")).await.text, "the socket survives");
}

#[tokio::test]
async fn malformed_requests_get_invalid_request_echoing_a_readable_id() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;
    let cases = [
        (r#"{"jsonrpc":"1.0","id":7,"method":"echo","params":{"text":"x"}}"#, json!(7)),
        (r#"{"id":"eight","method":"echo","params":{"text":"x"}}"#, json!("eight")),
        (r#"{"jsonrpc":"2.0","id":9,"method":5}"#, json!(9)),
        (r#"{"jsonrpc":"2.0","id":10}"#, json!(10)),
        (r#"{"jsonrpc":"2.0","id":{"a":1},"method":"echo"}"#, Value::Null),
        (r#"{"jsonrpc":"2.0","id":1.5,"method":"echo"}"#, Value::Null),
        ("42", Value::Null),
        ("{}", Value::Null),
        (r#""echo""#, Value::Null),
    ];

    for (frame, id) in cases {
        let answer = ws.call_raw(frame).await;
        assert_eq!(answer["error"]["code"], -32600, "for {frame}: {answer}");
        assert_eq!(answer.get("id"), Some(&id), "for {frame}: {answer}");
    }
    ws.ok(echo("still open")).await;
}

#[tokio::test]
async fn an_unknown_method_gets_method_not_found() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;

    let answer = ws.call_raw(r#"{"jsonrpc":"2.0","id":"x1","method":"room.explode","params":{}}"#).await;

    assert_eq!(answer["id"], "x1", "string ids are echoed");
    assert_eq!(answer["error"]["code"], -32601);
}

#[tokio::test]
async fn wrong_params_get_invalid_params_naming_the_field() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let mut ws = app.ws(&ann.access_token).await;
    let cases = [
        (r#"{"jsonrpc":"2.0","id":1,"method":"room.send","params":{"room":"lobby","text":5}}"#, Some("text")),
        (r#"{"jsonrpc":"2.0","id":2,"method":"room.send","params":{"room":"lobby"}}"#, Some("text")),
        (r#"{"jsonrpc":"2.0","id":3,"method":"room.join","params":{"room":["lobby"]}}"#, Some("room")),
        (r#"{"jsonrpc":"2.0","id":4,"method":"message.edit","params":{"id":"seven","text":"x"}}"#, Some("id")),
        (r#"{"jsonrpc":"2.0","id":5,"method":"message.react","params":{"id":1,"emoji":"x","on":"yes"}}"#, Some("on")),
        (r#"{"jsonrpc":"2.0","id":6,"method":"room.join","params":{"room":"lobby","history":-1}}"#, Some("history")),
        (r#"{"jsonrpc":"2.0","id":7,"method":"echo"}"#, Some("text")),
        (r#"{"jsonrpc":"2.0","id":8,"method":"room.leave","params":["lobby"]}"#, None),
        (r#"{"jsonrpc":"2.0","id":9,"method":"echo","params":"text"}"#, None),
    ];

    for (frame, field) in cases {
        let answer = ws.call_raw(frame).await;
        assert_eq!(answer["error"]["code"], -32602, "for {frame}: {answer}");
        if let Some(field) = field {
            assert_eq!(answer["error"]["data"]["field"], field, "for {frame}: {answer}");
        }
    }
    // Semantic validation names the param too.
    assert_invalid_param(&ws.fail(join("not a room name")).await, "room");
    ws.ok(join("lobby")).await;
    assert_invalid_param(&ws.fail(send("lobby", "   ")).await, "text");
    assert_invalid_param(&ws.fail(send("lobby", &"x".repeat(4001))).await, "text");
    ws.ok(send("lobby", &"é".repeat(4000))).await;
}

#[tokio::test]
async fn notifications_get_no_response_not_even_an_error() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;

    ws.send_text(r#"{"jsonrpc":"2.0","method":"echo","params":{"text":"quiet"}}"#).await;
    ws.send_text(r#"{"jsonrpc":"2.0","method":"no.such.method"}"#).await;
    ws.send_text(r#"{"jsonrpc":"2.0","method":"echo","params":{"text":5}}"#).await;
    ws.send_text(r#"{"jsonrpc":"2.0","method":"room.send","params":{"room":"lobby","text":"anonymous"}}"#).await;

    ws.assert_silent().await;
    let answer = ws.call_raw(r#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"loud"}}"#).await;
    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": 1, "result": {"text": "loud"}}));
}

#[tokio::test]
async fn a_request_with_a_null_id_is_answered_with_a_null_id() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;

    let answer = ws.call_raw(r#"{"jsonrpc":"2.0","id":null,"method":"echo","params":{"text":"n"}}"#).await;

    assert_eq!(answer, json!({"jsonrpc": "2.0", "id": null, "result": {"text": "n"}}));
}

#[tokio::test]
async fn a_batch_is_answered_with_one_array_in_order_leaving_out_notifications() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"text": "one"}},
        {"jsonrpc": "2.0", "method": "echo", "params": {"text": "notification"}},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"},
        1,
        {"jsonrpc": "2.0", "id": "four", "method": "echo", "params": {"text": 4}},
        {"jsonrpc": "2.0", "id": 5, "method": "users.list"},
    ]);

    let answer = ws.call_raw(&batch.to_string()).await;

    let items = answer.as_array().unwrap_or_else(|| panic!("a batch is answered with an array: {answer}"));
    assert_eq!(items.len(), 5, "{answer}");
    assert_eq!(items[0], json!({"jsonrpc": "2.0", "id": 1, "result": {"text": "one"}}));
    assert_eq!((&items[1]["id"], &items[1]["error"]["code"]), (&json!(3), &json!(-32601)));
    assert_eq!((&items[2]["id"], &items[2]["error"]["code"]), (&Value::Null, &json!(-32600)));
    assert_eq!((&items[3]["id"], &items[3]["error"]["code"]), (&json!("four"), &json!(-32602)));
    assert_eq!(items[3]["error"]["data"]["field"], "text");
    assert_eq!(items[4]["id"], 5);
    assert!(items[4]["result"]["users"].is_array());
    ws.assert_silent().await;
}

#[tokio::test]
async fn a_batch_of_notifications_gets_no_response() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;

    let batch = json!([
        {"jsonrpc": "2.0", "method": "echo", "params": {"text": "a"}},
        {"jsonrpc": "2.0", "method": "echo", "params": {"text": "b"}},
    ]);
    ws.send_text(batch.to_string()).await;

    ws.assert_silent().await;
}

#[tokio::test]
async fn batches_hold_one_to_twenty_calls() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;
    let batch = |n: usize| {
        let calls: Vec<Value> =
            (0..n).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "echo", "params": {"text": i.to_string()}})).collect();
        Value::Array(calls).to_string()
    };

    let twenty = ws.call_raw(&batch(20)).await;
    let ids: Vec<i64> = twenty.as_array().expect("an array").iter().map(|r| r["id"].as_i64().expect("an id")).collect();
    assert_eq!(ids, (0..20).collect::<Vec<_>>());

    for frame in [batch(21), "[]".to_owned()] {
        let answer = ws.call_raw(&frame).await;
        assert!(answer.is_object(), "a rejected batch gets a single response, not an array: {answer}");
        assert_eq!(answer["error"]["code"], -32600);
        assert_eq!(answer.get("id"), Some(&Value::Null));
    }
    ws.assert_silent().await;
}

#[tokio::test]
async fn every_request_gets_exactly_one_response_with_its_id() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;

    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(ws.request(echo(&format!("n{i}"))).await);
    }

    for (i, id) in ids.into_iter().enumerate() {
        let answer = ws.next_response().await;
        assert_eq!(answer["id"], id, "responses leave in request order");
        assert_eq!(answer["result"]["text"], format!("n{i}"));
    }
    ws.assert_silent().await;
}

#[tokio::test]
async fn calls_over_the_rate_are_refused_with_a_retry_delay() {
    let app = spawn_app_with(|c| c.rate_per_sec = 2).await;
    let mut ws = app.ws_anonymous().await;

    // The burst is twice the rate; pipelined, so the bucket has no time to refill.
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(ws.request(echo(&i.to_string())).await);
    }
    for &id in &ids[..4] {
        ws.outcome::<EchoParams>(id).await.expect("within the burst");
    }
    let refused = ws.outcome::<EchoParams>(ids[4]).await.expect_err("over the rate");

    assert_code(&refused, -32029);
    let retry = refused.data.as_ref().and_then(|d| d["retry_after_ms"].as_u64()).expect("data.retry_after_ms");
    assert!((1..=500).contains(&retry), "retry_after_ms {retry}");
    tokio::time::sleep(Duration::from_millis(retry + 20)).await;
    ws.ok(echo("patient")).await;
}

#[tokio::test]
async fn the_rate_limit_counts_each_call_of_a_batch() {
    let app = spawn_app_with(|c| c.rate_per_sec = 2).await;
    let mut ws = app.ws_anonymous().await;
    let calls: Vec<Value> =
        (0..6).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "echo", "params": {"text": "x"}})).collect();

    let answer = ws.call_raw(&Value::Array(calls).to_string()).await;

    let codes: Vec<Value> = answer.as_array().expect("an array").iter().map(|r| r["error"]["code"].clone()).collect();
    assert_eq!(codes, [Value::Null, Value::Null, Value::Null, Value::Null, json!(-32029), json!(-32029)]);
}

#[tokio::test]
async fn malformed_frames_and_calls_cost_as_much_as_good_ones() {
    let app = spawn_app_with(|c| c.rate_per_sec = 2).await;
    let mut ws = app.ws_anonymous().await;
    // One of each reject the decoder makes, pipelined: the burst (4) is spent on the first four.
    let frames = [
        "{not json",
        r#"{"id":1,"method":"echo"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"no.such.method"}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"echo","params":{"text":5}}"#,
        "{not json",
        r#"{"jsonrpc":"2.0","id":4,"method":"no.such.method"}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"echo","params":{"text":5}}"#,
        "[]",
    ];
    for frame in frames {
        ws.send_text(frame).await;
    }
    let mut answers = Vec::new();
    for _ in frames {
        let answer = ws.next_response().await;
        answers.push((answer["id"].clone(), answer["error"]["code"].clone()));
    }

    let limited = json!(-32029);
    assert_eq!(
        answers,
        [
            (Value::Null, json!(-32700)),
            (json!(1), json!(-32600)),
            (json!(2), json!(-32601)),
            (json!(3), json!(-32602)),
            (Value::Null, limited.clone()),
            (json!(4), limited.clone()),
            (json!(5), limited.clone()),
            (Value::Null, limited),
        ]
    );
}

#[tokio::test]
async fn a_flood_of_garbage_is_rate_limited() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;

    for i in 0..300 {
        let frame = match i % 3 {
            0 => "garbage".to_owned(),
            1 => format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"no.such.method"}}"#),
            _ => format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"echo","params":{{}}}}"#),
        };
        ws.send_text(frame).await;
    }
    let mut limited = 0;
    for _ in 0..300 {
        if ws.next_response().await["error"]["code"] == -32029 {
            limited += 1;
        }
    }

    // Burst 100 at 50 a second: most of 300 frames sent at once are over the limit.
    assert!(limited >= 100, "only {limited} of 300 garbage frames were rate limited");
}

#[tokio::test]
async fn rejects_say_what_is_wrong_and_echo_little_of_the_input() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;

    let long = "x".repeat(10_000);
    let answer = ws.call_raw(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{long}"}}"#)).await;
    assert_eq!(answer["error"]["code"], -32601);
    assert_eq!(answer["error"]["message"], format!("method not found: {}…", "x".repeat(64)));

    let answer = ws.call_raw(r#"{"jsonrpc":"2.0","id":2,"id":3,"method":"echo","params":{"text":"x"}}"#).await;
    assert_eq!((&answer["id"], &answer["error"]["code"]), (&Value::Null, &json!(-32600)));
    assert_eq!(answer["error"]["message"], "a call must not repeat a member: `id` appears more than once");

    let answer = ws.call_raw(r#"{"jsonrpc":"2.0","id":4,"method":"echo","params":{"text":"\ud800"}}"#).await;
    assert_eq!((&answer["id"], &answer["error"]["code"]), (&json!(4), &json!(-32602)));
    assert_eq!(answer["error"]["data"]["field"], "text");
    assert_eq!(answer["error"]["message"], confab_shared::json_error::LONE_SURROGATE);
}

#[tokio::test]
async fn an_internal_failure_is_reported_without_details_and_the_socket_survives() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let mut ws = app.ws(&ann.access_token).await;
    let receipt = ws.ok(dm(&bob.user.username, "hello")).await;
    app.execute_sql("DROP TABLE dm_reads").await;

    let err = ws.fail(DmReadParams { with: bob.user.username.clone(), id: receipt.id }).await;

    assert_code(&err, -32603);
    let shown = format!("{err:?}").to_lowercase();
    assert!(!shown.contains("dm_reads") && !shown.contains("table") && !shown.contains("sql"), "leaks internals: {shown}");
    assert_eq!(ws.ok(echo("fine")).await.text, "fine");
}

#[tokio::test]
async fn the_default_frame_limit_is_64_kib() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;
    let envelope = json!({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"text": ""}}).to_string().len();
    let frame_of = |len: usize| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"text": "x".repeat(len - envelope)}}).to_string()
    };

    ws.ok(echo("warm-up")).await;
    let answer = ws.call_raw(&frame_of(64 * 1024)).await;
    assert!(answer["result"]["text"].is_string(), "64 KiB exactly is accepted");
    ws.send_text(frame_of(64 * 1024 + 1)).await;

    assert_eq!(ws.expect_close().await, 1009);
}

#[tokio::test]
async fn a_much_larger_frame_still_gets_its_close_code() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;
    ws.ok(echo("warm-up")).await;

    ws.send_text(json!({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"text": "x".repeat(256 << 10)}}).to_string())
        .await;

    assert_eq!(ws.expect_close().await, 1009);
}

#[tokio::test]
async fn a_sync_pays_one_call_more_for_every_hundred_rooms_it_names() {
    // A burst of 2 calls; a sync of 100 rooms costs 2.
    let app = spawn_app_with(|c| c.rate_per_sec = 1).await;
    let (_, mut ws) = app.user_online("syncpay").await;
    let rooms: std::collections::BTreeMap<String, i64> = (0..100).map(|k| (format!("nowhere-{k}"), 0)).collect();

    // Pipelined, so the bucket has no time to refill.
    let sync = ws.request(SyncParams { rooms, dm_after: None }).await;
    let after = ws.request(echo("after")).await;

    ws.outcome::<SyncResult>(sync).await.expect("a full bucket pays for it");
    let refused = ws.outcome::<EchoParams>(after).await.expect_err("the sync spent the burst");
    assert_code(&refused, -32029);
}

#[tokio::test]
async fn message_bytes_are_limited_per_user_across_all_of_their_sockets() {
    // 24 000 bytes a second, bursts of 96 000: four of the messages below, about.
    let app = spawn_app_with(|c| c.write_bytes_per_sec = 24_000).await;
    let (ann, mut first) = app.user_online("bytes").await;
    let mut second = app.ws(&ann.access_token).await;
    let (_, mut bob) = app.user_online("bytesbob").await;
    let room = unique("bytes");
    for ws in [&mut first, &mut second, &mut bob] {
        ws.ok(join(&room)).await;
    }
    // 4 000 control characters: 24 002 bytes as JSON carries them.
    let heavy = "\u{1}".repeat(4000);

    // Alternating sockets until one is refused: the budget is the user's, not the socket's.
    let started = Instant::now();
    let (mut sent, mut refused) = (0usize, None);
    for i in 0..40 {
        let ws = if i % 2 == 0 { &mut first } else { &mut second };
        match ws.call(send(&room, &heavy)).await {
            Ok(_) => sent += 1,
            Err(err) => {
                refused = Some(err);
                break;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let refused = refused.expect("40 messages of 24 KB in a row are more than the budget");
    assert_code(&refused, -32029);
    let retry = refused.data.as_ref().and_then(|d| d["retry_after_ms"].as_u64()).expect("data.retry_after_ms");
    assert!((1..=1001).contains(&retry), "retry_after_ms {retry}");
    let allowed = 96_000.0 + 24_000.0 * elapsed;
    assert!((sent * 24_002) as f64 <= allowed, "{sent} messages in {elapsed:.2} s: more than {allowed} bytes");
    assert!(sent >= 3, "the burst holds three of them, {sent} went through");

    // Nothing of the refused call happened, another user's budget is their own, and short
    // messages cost little.
    assert_eq!(app.state().write_budgets.len(), 2);
    bob.ok(send(&room, &heavy)).await;
    tokio::time::sleep(Duration::from_millis(retry + 20)).await;
    let after = first.ok(send(&room, &heavy)).await;
    let history = first.ok(history(&room, None, Some(100))).await;
    assert_eq!(history.iter().filter(|m| m.text == heavy).count(), sent + 2, "the refused message was stored");
    assert_eq!(history.last().map(|m| m.id), Some(after.id));
}
