//! The REST surface besides accounts: users, rooms, history pages, problem documents, health,
//! metrics and the OpenAPI document.

use confab_shared::{CreateRoom, Health, Message, RoomSummary, Status, UserPresence};
use serde_json::json;

use crate::helpers::{TestApp, body, join, problem, send, spawn_app, text, unique};

fn create(name: &str, admin_only: bool) -> CreateRoom {
    CreateRoom { name: name.to_owned(), admin_only }
}

/// Sends `n` messages to `room` as the owner of `token`; returns them.
async fn post_messages(app: &TestApp, token: &str, room: &str, n: usize) -> Vec<Message> {
    let mut ws = app.ws(token).await;
    ws.ok(join(room)).await;
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        sent.push(ws.ok(send(room, &format!("message {i}"))).await);
    }
    sent
}

fn ids(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.id).collect()
}

#[tokio::test]
async fn users_are_listed_with_their_presence() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let mut tab = app.ws(&ann.access_token).await;
    // A round trip: the connection is counted before its first call is answered.
    tab.ok(confab_shared::rpc::EchoParams { text: "hi".into() }).await;

    let page: confab_shared::UsersPage = body(app.get("/api/users", None).await).await;
    let users = page.users;
    assert_eq!((page.total, page.online), (2, 1));

    let find = |name: &str| users.iter().find(|u| u.username == name).cloned();
    assert_eq!(find(&ann.user.username), Some(UserPresence { username: ann.user.username.clone(), online: true }));
    assert_eq!(find(&bob.user.username), Some(UserPresence { username: bob.user.username.clone(), online: false }));
    let mut sorted = users.iter().map(|u| u.username.to_lowercase()).collect::<Vec<_>>();
    sorted.sort();
    assert_eq!(users.iter().map(|u| u.username.to_lowercase()).collect::<Vec<_>>(), sorted, "alphabetical");
    // An optional bearer must still be a valid one.
    problem(app.get("/api/users", Some("garbage")).await, 401).await;
    body::<confab_shared::UsersPage>(app.get("/api/users", Some(&bob.access_token)).await).await;
}

#[tokio::test]
async fn a_logged_in_user_creates_a_room() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let name = unique("general");

    let response = app.post_json("/api/rooms", &create(&name, false), Some(&ann.access_token)).await;

    assert_eq!(response.status().as_u16(), 201);
    let room: RoomSummary = body(response).await;
    assert_eq!(
        room,
        RoomSummary {
            name: name.clone(),
            online: 0,
            admin_only: false,
            last_message_at: None,
            unread: Some(0),
            mentions: Some(0),
            owner: Some(ann.user.username.clone()),
            moderators: Vec::new(),
            slow_mode_secs: 0,
            retention_days: None,
            quiet: false,
        },
        "its creator owns it"
    );
    let listed: confab_shared::RoomsPage = body(app.get("/api/rooms", None).await).await;
    assert!(listed.rooms.iter().any(|r| r.name == name && r.unread.is_none()), "anonymous callers get unread: null");
}

#[tokio::test]
async fn creating_a_room_reports_conflicts_permissions_and_invalid_names() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let token = Some(ann.access_token.as_str());
    let name = unique("dup");
    assert_eq!(app.post_json("/api/rooms", &create(&name, false), token).await.status().as_u16(), 201);

    assert_eq!(problem(app.post_json("/api/rooms", &create(&name, false), token).await, 409).await.kind, "/problems/conflict");
    let forbidden = problem(app.post_json("/api/rooms", &create(&unique("staff"), true), token).await, 403).await;
    assert_eq!(forbidden.kind, "/problems/forbidden");
    problem(app.post_json("/api/rooms", &create(&unique("anon"), false), None).await, 401).await;
    for bad in ["", "has space", "dots.are.out", &"r".repeat(65)] {
        let p = problem(app.post_json("/api/rooms", &create(bad, false), token).await, 422).await;
        assert_eq!(p.field.as_deref(), Some("name"), "for {bad:?}");
    }
    let missing = problem(app.post_json("/api/rooms", &json!({"admin_only": false}), token).await, 422).await;
    assert_eq!(missing.field.as_deref(), Some("name"));
    let mistyped = problem(app.post_json("/api/rooms", &json!({"name": "x", "admin_only": "yes"}), token).await, 422).await;
    assert_eq!(mistyped.field.as_deref(), Some("admin_only"));
}

#[tokio::test]
async fn admin_only_rooms_are_created_by_admins_and_listed_only_to_admins() {
    let app = spawn_app().await;
    let boss = app.admin(&unique("boss")).await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let staff = unique("staff");
    let public = unique("public");

    let created: RoomSummary = body(app.post_json("/api/rooms", &create(&staff, true), Some(&boss.access_token)).await).await;
    app.post_json("/api/rooms", &create(&public, false), Some(&ann.access_token)).await;

    assert!(created.admin_only);
    let names = |page: confab_shared::RoomsPage| page.rooms.into_iter().map(|r| r.name).collect::<Vec<_>>();
    let for_admin = names(body(app.get("/api/rooms", Some(&boss.access_token)).await).await);
    let for_user = names(body(app.get("/api/rooms", Some(&ann.access_token)).await).await);
    let for_anonymous = names(body(app.get("/api/rooms", None).await).await);
    assert!(for_admin.contains(&staff) && for_admin.contains(&public));
    assert!(!for_user.contains(&staff) && for_user.contains(&public));
    assert!(!for_anonymous.contains(&staff) && for_anonymous.contains(&public));
}

#[tokio::test]
async fn room_history_pages_backwards_oldest_first() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let room = unique("history");
    let sent = post_messages(&app, &ann.access_token, &room, 25).await;
    let all = ids(&sent);

    let latest: Vec<Message> = body(app.get(&format!("/api/rooms/{room}/messages?limit=10"), None).await).await;
    assert_eq!(ids(&latest), all[15..]);
    assert_eq!(latest, sent[15..], "the page holds the messages as they were sent");
    let before = latest[0].id;
    let older: Vec<Message> = body(app.get(&format!("/api/rooms/{room}/messages?before={before}&limit=10"), None).await).await;
    assert_eq!(ids(&older), all[5..15]);
    let oldest: Vec<Message> =
        body(app.get(&format!("/api/rooms/{room}/messages?before={}&limit=10", older[0].id), None).await).await;
    assert_eq!(ids(&oldest), all[..5]);
    let default: Vec<Message> = body(app.get(&format!("/api/rooms/{room}/messages"), Some(&ann.access_token)).await).await;
    assert_eq!(ids(&default), all, "up to 50 by default");
}

#[tokio::test]
async fn room_history_validates_its_query_and_the_room() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let boss = app.admin(&unique("boss")).await;
    let room = unique("q");
    post_messages(&app, &ann.access_token, &room, 1).await;
    let staff = unique("staff");
    app.post_json("/api/rooms", &create(&staff, true), Some(&boss.access_token)).await;

    for query in ["limit=0", "limit=101", "limit=ten", "limit=-1"] {
        let p = problem(app.get(&format!("/api/rooms/{room}/messages?{query}"), None).await, 422).await;
        assert_eq!(p.field.as_deref(), Some("limit"), "for {query}");
    }
    let p = problem(app.get(&format!("/api/rooms/{room}/messages?before=yesterday"), None).await, 422).await;
    assert_eq!(p.field.as_deref(), Some("before"));
    body::<Vec<Message>>(app.get(&format!("/api/rooms/{room}/messages?limit=100"), None).await).await;
    body::<Vec<Message>>(app.get(&format!("/api/rooms/{room}/messages?limit=1"), None).await).await;

    let bad_name = problem(app.get("/api/rooms/no.dots/messages", None).await, 422).await;
    assert_eq!(bad_name.field.as_deref(), Some("room"));
    let unknown = problem(app.get(&format!("/api/rooms/{}/messages", unique("nowhere")), None).await, 404).await;
    assert_eq!(unknown.kind, "/problems/not-found");
    problem(app.get(&format!("/api/rooms/{staff}/messages"), None).await, 403).await;
    problem(app.get(&format!("/api/rooms/{staff}/messages"), Some(&ann.access_token)).await, 403).await;
    body::<Vec<Message>>(app.get(&format!("/api/rooms/{staff}/messages"), Some(&boss.access_token)).await).await;
}

#[tokio::test]
async fn unknown_api_routes_are_404_problems() {
    let app = spawn_app().await;

    for path in ["/api/nope", "/api", "/api/rooms/x/y/z"] {
        let p = problem(app.get(path, None).await, 404).await;
        assert_eq!(p.kind, "/problems/not-found", "for {path}");
    }
    problem(app.post_json("/api/nope", &json!({}), None).await, 404).await;
}

#[tokio::test]
async fn health_reports_every_dependency_up() {
    let app = spawn_app().await;

    let health: Health = body(app.get("/api/health", None).await).await;

    assert_eq!(health, Health { status: "ok".into(), db: Status::Up, channel_layer: Status::Up });
}

#[tokio::test]
async fn health_is_503_when_the_database_is_down() {
    let app = spawn_app().await;
    // The pool is shared by every handle: closing a clone closes the server's.
    let _ = app.state().db.conn.clone().close().await;

    let response = app.get("/api/health", None).await;

    assert_eq!(response.status().as_u16(), 503);
    let health: Health = serde_json::from_str(&text(response).await).expect("a health body");
    assert_eq!(health, Health { status: "degraded".into(), db: Status::Down, channel_layer: Status::Up });
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_open_connection_gauge() {
    let app = spawn_app().await;
    let _a = app.ws_anonymous().await.ok(confab_shared::rpc::EchoParams { text: "x".into() }).await;
    let mut open = app.ws_anonymous().await;
    open.ok(confab_shared::rpc::EchoParams { text: "x".into() }).await;

    let response = app.get("/metrics", None).await;

    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(content_type.starts_with("text/plain"), "content type {content_type}");
    let metrics = text(response).await;
    for line in [
        "# TYPE confab_connections gauge",
        "# TYPE confab_messages_persisted_total counter",
        "# TYPE confab_evictions_total counter",
        "confab_channel_layer_up 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line:?} in:\n{metrics}");
    }
    // The gauge is this instance's: exactly the one socket still open (the first was dropped,
    // so allow the server a moment to notice).
    let gauge = |m: &str| m.lines().find_map(|l| l.strip_prefix("confab_connections ")).map(str::to_owned);
    let mut value = gauge(&metrics);
    for _ in 0..50 {
        if value.as_deref() == Some("1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        value = gauge(&text(app.get("/metrics", None).await).await);
    }
    assert_eq!(value.as_deref(), Some("1"));
}

#[tokio::test]
async fn the_openapi_document_served_is_the_committed_one() {
    let app = spawn_app().await;
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let committed = std::fs::read_to_string(committed_path).expect("openapi/openapi.json is committed");

    let response = app.get("/api/openapi.json", None).await;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let served = text(response).await;
    assert!(served == committed, "GET /api/openapi.json differs from openapi/openapi.json");
    let doc: serde_json::Value = serde_json::from_str(&served).expect("JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "OpenAPI 3.1");
    for path in ["/api/auth/signup", "/api/auth/login", "/api/auth/refresh", "/api/auth/logout", "/api/me", "/api/rooms", "/api/health"] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
}

#[tokio::test]
async fn the_asyncapi_document_served_is_the_committed_one() {
    let app = spawn_app().await;
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/asyncapi.json");
    let committed = std::fs::read_to_string(committed_path).expect("openapi/asyncapi.json is committed");

    let response = app.get("/api/asyncapi.json", None).await;

    assert_eq!(response.status().as_u16(), 200);
    let served = text(response).await;
    assert!(served == committed, "GET /api/asyncapi.json differs from openapi/asyncapi.json");
    let doc: serde_json::Value = serde_json::from_str(&served).expect("JSON");
    assert!(doc["asyncapi"].as_str().is_some_and(|v| v.starts_with("3.")), "AsyncAPI 3.x");
}
