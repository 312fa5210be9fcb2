//! API tokens (`cfb_…`): created once and listed without the secret, accepted wherever an
//! access token is, limited to their scopes on every socket method and REST route (both
//! tables walked in full), refused when expired or malformed (401, never 500), revoked with
//! their sockets closed, and never written to the logs.

use confab_shared::rpc::{EchoParams, Request};
use confab_shared::tokens::{METHOD_SCOPES, method_scope};
use confab_shared::{ApiToken, ApiTokenCreated, Scope, TokenPair};
use confab::auth::scopes::{Need, REST_ROUTES};
use sea_orm::ConnectionTrait as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::helpers::{TestApp, WsClient, body, join, problem, send, spawn_app, text, unique, within};

/// `POST /api/tokens` as `login`, expecting 201.
async fn create(app: &TestApp, login: &TokenPair, scopes: &[Scope], days: Option<u32>) -> ApiTokenCreated {
    let request = json!({ "name": unique("bot"), "scopes": scopes, "expires_in_days": days });
    let response = app.post_json("/api/tokens", &request, Some(&login.access_token)).await;
    assert_eq!(response.status().as_u16(), 201, "token creation");
    body(response).await
}

async fn list(app: &TestApp, login: &TokenPair) -> (Vec<ApiToken>, String) {
    let raw = text(app.get("/api/tokens", Some(&login.access_token)).await).await;
    (serde_json::from_str(&raw).expect("a token list"), raw)
}

/// The raw response to one call of `method` with `params`.
async fn call(ws: &mut WsClient, method: &str, params: &Value) -> Value {
    ws.call_raw(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string()).await
}

/// The scope a -32003 names, if the response is that error.
fn missing_scope(response: &Value) -> Option<String> {
    let error = response.get("error")?;
    (error["code"] == -32003).then(|| error["data"]["scope"].as_str().map(str::to_owned)).flatten()
}

#[tokio::test]
async fn a_token_is_shown_once_listed_without_its_secret_and_works_on_rest_and_the_socket() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;

    let created = create(&app, &ann, &[Scope::Read, Scope::Write], Some(90)).await;

    assert!(created.token.starts_with("cfb_") && created.token.len() == 47, "{}", created.token);
    assert_eq!(created.scopes, vec![Scope::Read, Scope::Write]);
    assert!(created.expires_at.is_some() && created.last_used_at.is_none());
    let (tokens, raw) = list(&app, &ann).await;
    assert_eq!(tokens.iter().map(|t| t.id).collect::<Vec<_>>(), vec![created.id]);
    assert!(!raw.contains(&created.token[4..]) && !raw.contains("\"token\""), "the listing shows no secret: {raw}");

    let me: confab_shared::User = body(app.get("/api/me", Some(&created.token)).await).await;
    assert_eq!(me.username, ann.user.username);
    let (tokens, _) = list(&app, &ann).await;
    assert!(tokens[0].last_used_at.is_some(), "the use is recorded");

    // On the socket: the header, and the subprotocol browsers use.
    let room = unique("bots");
    let mut by_header = app.ws(&created.token).await;
    let mut request = app.ws_request();
    let protocols = format!("confab.v1, bearer.{}", created.token);
    request.headers_mut().insert("sec-websocket-protocol", protocols.parse().expect("a header value"));
    let mut by_protocol = WsClient::connect(app.addr, request).await.expect("the upgrade succeeds");
    assert_eq!(by_protocol.protocol.as_deref(), Some("confab.v1"), "the token is never echoed");
    by_header.ok(join(&room)).await;
    by_protocol.ok(join(&room)).await;
    let sent = by_header.ok(send(&room, "beep")).await;
    assert_eq!(sent.author, ann.user.username);
    assert_eq!(by_protocol.next::<confab_shared::Message>("room.message").await.id, sent.id);
}

#[tokio::test]
async fn an_unknown_scope_is_named_by_its_place_in_the_list() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;

    for (scopes, field) in [(json!(["nope"]), "scopes[0]"), (json!(["read", "write", 7]), "scopes[2]")] {
        let request = json!({ "name": unique("bot"), "scopes": scopes });
        let refused = problem(app.post_json("/api/tokens", &request, Some(&ann.access_token)).await, 422).await;
        assert_eq!(refused.field.as_deref(), Some(field), "{refused:?}");
        assert!(refused.detail.starts_with(&format!("{field}: ")), "{refused:?}");
    }
    assert!(list(&app, &ann).await.0.is_empty(), "no token was made");
}

#[tokio::test]
async fn every_socket_method_needs_the_scope_of_its_table_row() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let room = unique("scoped");
    let mut login_ws = app.ws(&ann.access_token).await;
    login_ws.ok(join(&room)).await;
    let message = login_ws.ok(send(&room, "to react to")).await;
    let sample = |method: &str| -> Value {
        match method {
            "echo" => json!({"text": "x"}),
            "users.list" | "rooms.list" => json!({}),
            "room.join" | "room.leave" | "room.history" | "room.typing" | "room.members" => json!({"room": room}),
            "room.send" => json!({"room": room, "text": "hi"}),
            "message.edit" => json!({"id": message.id, "text": "edited"}),
            "message.delete" => json!({"id": message.id}),
            "message.react" => json!({"id": message.id, "emoji": "+1", "on": true}),
            "dm.send" => json!({"to": bob.user.username, "text": "psst"}),
            "dm.history" => json!({"with": bob.user.username}),
            "room.read" => json!({"room": room, "id": message.id}),
            "room.set_quiet" => json!({"room": room, "quiet": true}),
            "dm.read" => json!({"with": bob.user.username, "id": 1}),
            "sync" => json!({"rooms": {}}),
            "job.subscribe" => json!({"job_id": 1}),
            "auth.refresh" => json!({"access_token": ann.access_token}),
            "presence.watch" | "presence.unwatch" => json!({"users": [bob.user.username]}),
            "room.kick" | "room.unban" | "room.unmute" => json!({"room": room, "user": bob.user.username}),
            "room.ban" | "room.mute" => json!({"room": room, "user": bob.user.username, "duration_secs": 60}),
            "room.set_role" => json!({"room": room, "user": bob.user.username, "role": "moderator"}),
            "room.configure" => json!({"room": room, "slow_mode_secs": 0}),
            "message.report" => json!({"id": message.id, "reason": "a sample"}),
            other => panic!("no sample params for {other}: add them here"),
        }
    };
    let read = create(&app, &ann, &[Scope::Read], None).await;
    let write = create(&app, &ann, &[Scope::Write], None).await;
    let mut read_ws = app.ws(&read.token).await;
    let mut write_ws = app.ws(&write.token).await;

    for method in Request::METHODS {
        let needed = method_scope(method).unwrap_or_else(|| panic!("{method} has no row in METHOD_SCOPES"));
        let params = sample(method);
        let (on_read, on_write) = (call(&mut read_ws, method, &params).await, call(&mut write_ws, method, &params).await);
        match needed {
            None => {
                assert_eq!(missing_scope(&on_read), None, "{method} with read: {on_read}");
                assert_eq!(missing_scope(&on_write), None, "{method} with write: {on_write}");
            }
            Some(Scope::Read) => {
                assert_eq!(missing_scope(&on_write).as_deref(), Some("read"), "{method} with write: {on_write}");
                assert_eq!(missing_scope(&on_read), None, "{method} with read: {on_read}");
            }
            Some(Scope::Write) => {
                assert_eq!(missing_scope(&on_read).as_deref(), Some("write"), "{method} with read: {on_read}");
                assert_eq!(missing_scope(&on_write), None, "{method} with write: {on_write}");
            }
            Some(Scope::Publish) => panic!("{method}: no socket method needs publish"),
        }
    }
    // Inside a batch too, where `room.send` is not pipelined.
    let batch = json!([{ "jsonrpc": "2.0", "id": 7, "method": "room.send", "params": {"room": room, "text": "x"} }]).to_string();
    let answer = read_ws.call_raw(&batch).await;
    assert_eq!(missing_scope(&answer[0]).as_deref(), Some("write"), "{answer}");
    assert!(METHOD_SCOPES.len() >= Request::METHODS.len());
}

#[tokio::test]
async fn a_token_without_read_receives_no_events() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let (bob, _bob_ws) = app.user_online("bob").await;
    let write = create(&app, &ann, &[Scope::Write], None).await;
    let mut writer = app.ws(&write.token).await;
    writer.ok(EchoParams { text: "subscribed".into() }).await;

    let mut bob_ws = app.ws(&bob.access_token).await;
    bob_ws.ok(crate::helpers::dm(&ann.user.username, "hello ann")).await;

    writer.assert_no("dm.message").await;
    writer.assert_no("presence.changed").await;
    // Sending still works: it is what the token is for.
    let sent = writer.ok(crate::helpers::dm(&bob.user.username, "hi bob")).await;
    assert_eq!(sent.from, ann.user.username);
}

#[tokio::test]
async fn every_rest_route_needs_what_its_table_row_says() {
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let room = unique("rest");
    let created = app.post_json("/api/rooms", &json!({"name": room}), Some(&admin.access_token)).await;
    assert_eq!(created.status().as_u16(), 201);
    let only = |scope: Scope| scope;
    let mut exactly = std::collections::HashMap::new();
    let mut all_but = std::collections::HashMap::new();
    for scope in Scope::ALL {
        exactly.insert(scope, create(&app, &admin, &[only(scope)], None).await.token);
        let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != scope).collect();
        all_but.insert(scope, create(&app, &admin, &others, None).await.token);
    }
    let every = create(&app, &admin, &Scope::ALL, None).await.token;

    for (method, path, need) in REST_ROUTES {
        let path = path
            .replace("{room}", &room)
            .replace("{id}", "1")
            .replace("{delivery_id}", "1")
            .replace('*', "/x");
        let method = if *method == "*" { "GET" } else { method };
        let request = |token: &str| {
            // The header the web app's cookie routes need (every other route ignores it).
            let builder = app.http.request(method.parse().expect("an HTTP method"), app.url(&path)).bearer_auth(token).header("Confab-CSRF", "1");
            if method == "POST" { builder.json(&json!({})) } else { builder }
        };
        let status_and_kind = |response: reqwest::Response| async move {
            let status = response.status().as_u16();
            let raw = text(response).await;
            let kind = serde_json::from_str::<Value>(&raw).ok().and_then(|v| v["type"].as_str().map(str::to_owned));
            (status, kind)
        };
        match need {
            Need::Open | Need::Scope(_) => {
                let token = match need {
                    Need::Scope(scope) => &exactly[scope],
                    _ => &every,
                };
                let (status, kind) = status_and_kind(within(&path, request(token).send()).await.expect("an answer")).await;
                // The web app's cookie routes answer 401 for a missing cookie, token or not.
                let refused = status == 401 && !path.starts_with("/api/auth/session");
                assert!(!refused && status != 500 && kind.as_deref() != Some("/problems/insufficient-scope"), "{method} {path} with its scope: {status} {kind:?}");
                assert!(kind.as_deref() != Some("/problems/forbidden"), "{method} {path}: {status} {kind:?}");
                if let Need::Scope(scope) = need {
                    let (status, kind) = status_and_kind(within(&path, request(&all_but[scope]).send()).await.expect("an answer")).await;
                    assert_eq!((status, kind.as_deref()), (403, Some("/problems/insufficient-scope")), "{method} {path} without {scope:?}");
                }
            }
            Need::Login => {
                let (status, kind) = status_and_kind(within(&path, request(&every).send()).await.expect("an answer")).await;
                assert_eq!((status, kind.as_deref()), (403, Some("/problems/forbidden")), "{method} {path} with a token");
            }
        }
    }
}

#[tokio::test]
async fn publish_is_for_admins_tokens_only() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let admin = app.admin(&unique("root")).await;
    let request = json!({ "name": "announcer", "scopes": ["publish"] });

    let refused = app.post_json("/api/tokens", &request, Some(&ann.access_token)).await;
    assert_eq!(problem(refused, 403).await.kind, "/problems/forbidden");

    let publisher = create(&app, &admin, &[Scope::Publish], None).await;
    let notice = json!({ "target": {"all": true}, "payload": "hello" });
    assert_eq!(app.post_json("/api/publish", &notice, Some(&publisher.token)).await.status().as_u16(), 202);
    let reader = create(&app, &admin, &[Scope::Read], None).await;
    let refused = app.post_json("/api/publish", &notice, Some(&reader.token)).await;
    assert_eq!(problem(refused, 403).await.detail, "this API token lacks the `publish` scope");
}

#[tokio::test]
async fn a_token_cannot_mint_tokens_log_out_or_refresh_a_socket() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let token = create(&app, &ann, &Scope::ALL[..2], None).await.token;

    let mint = app.post_json("/api/tokens", &json!({"name": "child", "scopes": ["read"]}), Some(&token)).await;
    assert_eq!(problem(mint, 403).await.kind, "/problems/forbidden");
    assert_eq!(problem(app.post_json("/api/auth/logout", &json!({}), Some(&token)).await, 403).await.kind, "/problems/forbidden");
    assert_eq!(app.get("/api/me", Some(&ann.access_token)).await.status().as_u16(), 200, "the session is still live");

    let mut ws = app.ws(&token).await;
    let err = ws.fail(confab_shared::rpc::AuthRefreshParams { access_token: ann.access_token.clone() }).await;
    assert_eq!(err.code, -32003);
    let mut login_ws = app.ws(&ann.access_token).await;
    let err = login_ws.fail(confab_shared::rpc::AuthRefreshParams { access_token: token.clone() }).await;
    assert_eq!(err.code, -32602, "an API token cannot replace an access token: {err:?}");
}

#[tokio::test]
async fn revoking_a_token_closes_its_sockets_with_4003_and_refuses_it_from_then_on() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let doomed = create(&app, &ann, &[Scope::Read], None).await;
    let spared = create(&app, &ann, &[Scope::Read], None).await;
    let mut first = app.ws(&doomed.token).await;
    let mut second = app.ws(&doomed.token).await;
    let mut other_token = app.ws(&spared.token).await;
    let mut login = app.ws(&ann.access_token).await;
    for ws in [&mut first, &mut second, &mut other_token, &mut login] {
        ws.ok(EchoParams { text: "ready".into() }).await;
    }

    let path = format!("/api/tokens/{}", doomed.id);
    assert_eq!(problem(app.request::<()>(reqwest::Method::DELETE, &path, Some(&bob.access_token), None).await, 404).await.kind, "/problems/not-found", "only its owner");
    assert_eq!(app.request::<()>(reqwest::Method::DELETE, &path, Some(&ann.access_token), None).await.status().as_u16(), 204);

    assert_eq!(first.expect_close().await, 4003);
    assert_eq!(second.expect_close().await, 4003);
    other_token.ok(EchoParams { text: "still here".into() }).await;
    login.ok(EchoParams { text: "still here".into() }).await;
    assert_eq!(problem(app.get("/api/rooms", Some(&doomed.token)).await, 401).await.kind, "/problems/unauthenticated");
    let (status, _) = app.ws_refused(app.ws_bearer_request(&doomed.token)).await;
    assert_eq!(status, 401);
    let (tokens, _) = list(&app, &ann).await;
    assert_eq!(tokens.iter().map(|t| t.id).collect::<Vec<_>>(), vec![spared.id]);
    assert_eq!(problem(app.request::<()>(reqwest::Method::DELETE, &path, Some(&ann.access_token), None).await, 404).await.status, 404, "revoking twice");
}

#[tokio::test]
async fn expired_and_malformed_tokens_get_401_never_500() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let expiring = create(&app, &ann, &[Scope::Read], Some(1)).await;
    assert_eq!(app.get("/api/rooms", Some(&expiring.token)).await.status().as_u16(), 200);
    app.execute_sql(&format!("UPDATE api_tokens SET expires_at = 1000 WHERE id = {}", expiring.id)).await;

    let unknown = format!("cfb_{}", "A".repeat(43));
    let long = format!("cfb_{}", "x".repeat(5000));
    let mut bad = vec![expiring.token.clone(), unknown, long, "cfb_".to_owned(), "cfb_short".to_owned()];
    bad.push(format!("cfb_{}", "!".repeat(43)));
    bad.push(format!("{}x", &expiring.token));
    bad.push(expiring.token.to_uppercase());
    for token in &bad {
        for path in ["/api/rooms", "/api/me", "/api/rooms/lobby/messages"] {
            let got = app.get(path, Some(token)).await;
            assert_eq!(problem(got, 401).await.kind, "/problems/unauthenticated", "{path} with {token:.20}");
        }
        let (status, _) = app.ws_refused(app.ws_bearer_request(token)).await;
        assert_eq!(status, 401, "upgrade with {token:.20}");
    }
    let mut request = app.ws_request();
    request.headers_mut().insert("sec-websocket-protocol", "confab.v1, bearer.cfb_nope".parse().expect("a header value"));
    assert_eq!(app.ws_refused(request).await.0, 401);
    // Not a token at all: a byte that is not visible ASCII.
    let odd = app.http.get(app.url("/api/me")).header("authorization", reqwest::header::HeaderValue::from_bytes(b"Bearer cfb_\xff").expect("a raw header"));
    assert_eq!(within("GET", odd.send()).await.expect("an answer").status().as_u16(), 401);
}

#[tokio::test]
async fn last_used_at_survives_a_restart_without_a_write_per_request() {
    let mut app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let token = create(&app, &ann, &[Scope::Read], None).await;
    for _ in 0..5 {
        assert_eq!(app.get("/api/rooms", Some(&token.token)).await.status().as_u16(), 200);
    }
    // Not written yet: the uses wait for the coalesced flush.
    let row: Option<i64> = app.state().db.conn.query_one(sea_orm::Statement::from_string(
        app.state().db.backend(),
        format!("SELECT last_used_at FROM api_tokens WHERE id = {}", token.id),
    ))
    .await
    .expect("the query runs")
    .and_then(|r| r.try_get_by_index::<Option<i64>>(0).ok())
    .flatten();
    assert_eq!(row, None, "uses are coalesced, not written per request");

    app.restart().await;

    let login = app.login_ok(&ann.user.username).await;
    let (tokens, _) = list(&app, &login).await;
    assert!(tokens[0].last_used_at.is_some(), "flushed on shutdown");
}

/// Runs the real `confab` binary logging everything (`RUST_LOG=trace`) into a file, uses a
/// token every way there is, and reads the log back: a separate process, so what is
/// captured is exactly what the server writes.
#[tokio::test]
async fn token_secrets_never_reach_the_logs() {
    let dir = tempfile::tempdir().expect("a data dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port();
    let log_path = dir.path().join("confab.log");
    let log = std::fs::File::create(&log_path).expect("a log file");
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .arg("serve")
        .env("CONFAB_BIND", format!("127.0.0.1:{port}"))
        .env("CONFAB_DATA_DIR", dir.path())
        .env("RUST_LOG", "trace")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the confab binary runs");
    let base = format!("http://127.0.0.1:{port}");
    let http = confab::tls::client_builder().build().expect("an HTTP client");
    within("the server to come up", async {
        while !http.get(format!("{base}/api/health")).send().await.is_ok_and(|r| r.status().is_success()) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    let credentials = json!({"username": unique("ann"), "password": crate::helpers::PASSWORD});
    assert_eq!(http.post(format!("{base}/api/auth/signup")).json(&credentials).send().await.expect("signup").status().as_u16(), 201);
    let login: TokenPair = http.post(format!("{base}/api/auth/login")).json(&credentials).send().await.expect("login").json().await.expect("a pair");
    let created: ApiTokenCreated = http
        .post(format!("{base}/api/tokens"))
        .bearer_auth(&login.access_token)
        // `write` too: the socket below creates a room by joining it.
        .json(&json!({"name": "logged", "scopes": ["read", "write"]}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("a token");
    let token = created.token.clone();
    assert_eq!(http.get(format!("{base}/api/rooms")).bearer_auth(&token).send().await.expect("rooms").status().as_u16(), 200);
    let _ = http.post(format!("{base}/api/publish")).bearer_auth(&token).json(&json!({"target": {"all": true}, "payload": 1})).send().await;
    let _ = http.get(format!("{base}/api/me")).bearer_auth(format!("{token}x")).send().await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
    let mut request = format!("ws://127.0.0.1:{port}/ws").into_client_request().expect("a request");
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("a header"));
    let mut ws = WsClient::connect(addr, request).await.expect("the upgrade succeeds");
    ws.ok(join(&unique("quiet"))).await;
    let revoked = http.delete(format!("{base}/api/tokens/{}", created.id)).bearer_auth(&login.access_token).send().await.expect("revoke");
    assert_eq!(revoked.status().as_u16(), 204);
    assert_eq!(ws.expect_close().await, 4003);
    let _ = server.start_kill();
    let _ = within("the server to stop", server.wait()).await;

    let logs = std::fs::read_to_string(&log_path).expect("the log");
    assert!(logs.contains("API token created") && logs.contains("API token revoked"), "the log was written");
    assert!(!logs.contains(&token[4..]), "the secret was logged");
}
