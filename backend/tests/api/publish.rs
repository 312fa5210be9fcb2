//! `POST /api/publish` and `confab publish`: a `notice` reaches exactly the targeted
//! connections, only admins may send one, and the CLI says how many received it.

use confab_shared::{PublishAccepted, PublishRequest, PublishTarget};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, WsClient, body, join, problem, spawn_app, unique, within};

fn to_room(room: &str, payload: Value) -> PublishRequest {
    PublishRequest { target: PublishTarget::Room(room.to_owned()), payload }
}

async fn publish(app: &TestApp, token: &str, request: &PublishRequest) -> reqwest::Response {
    app.post_json("/api/publish", request, Some(token)).await
}

/// Publishes and expects 202; returns `delivered_locally`.
async fn publish_ok(app: &TestApp, token: &str, request: &PublishRequest) -> u64 {
    let response = publish(app, token, request).await;
    assert_eq!(response.status().as_u16(), 202, "publish answered {}", response.status());
    body::<PublishAccepted>(response).await.delivered_locally
}

/// A round trip: once answered, the connection has joined its standing groups.
async fn ready(ws: &mut WsClient) {
    ws.ok(confab_shared::rpc::EchoParams { text: "ready".into() }).await;
}

/// The payload of the next `notice` on `ws`.
async fn notice(ws: &mut WsClient) -> Value {
    ws.next_notification("notice").await["payload"].clone()
}

#[tokio::test]
async fn a_notice_to_a_room_reaches_the_connections_in_it_and_no_others() {
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let room = unique("news");
    let (ann, mut ann_in) = app.user_online("ann").await;
    // Ann's second tab has not joined the room: a room notice is for connections in the room.
    let mut ann_elsewhere = app.ws(&ann.access_token).await;
    let (_bob, mut bob_in) = app.user_online("bob").await;
    let (_cat, mut cat_out) = app.user_online("cat").await;
    let mut anonymous_in = app.ws_anonymous().await;
    ann_in.ok(join(&room)).await;
    bob_in.ok(join(&room)).await;
    anonymous_in.ok(join(&room)).await;
    cat_out.ok(join(&unique("other"))).await;

    let delivered = publish_ok(&app, &admin.access_token, &to_room(&room, json!({"text": "maintenance at 10"}))).await;

    assert_eq!(delivered, 3);
    for ws in [&mut ann_in, &mut bob_in, &mut anonymous_in] {
        assert_eq!(notice(ws).await, json!({"text": "maintenance at 10"}));
    }
    ann_elsewhere.assert_no("notice").await;
    cat_out.assert_no("notice").await;
    // Exactly once each.
    ann_in.assert_no("notice").await;
}

#[tokio::test]
async fn a_notice_to_a_user_reaches_every_tab_of_that_user_only() {
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let (ann, mut ann_tab1) = app.user_online("ann").await;
    let mut ann_tab2 = app.ws(&ann.access_token).await;
    let (_bob, mut bob) = app.user_online("bob").await;
    let mut anonymous = app.ws_anonymous().await;
    for ws in [&mut ann_tab1, &mut ann_tab2, &mut bob, &mut anonymous] {
        ready(ws).await;
    }
    // Usernames are case-insensitive.
    let target = PublishTarget::User(ann.user.username.to_uppercase());

    let delivered = publish_ok(&app, &admin.access_token, &PublishRequest { target, payload: json!("hi ann") }).await;

    assert_eq!(delivered, 2);
    assert_eq!(notice(&mut ann_tab1).await, json!("hi ann"));
    assert_eq!(notice(&mut ann_tab2).await, json!("hi ann"));
    bob.assert_no("notice").await;
    anonymous.assert_no("notice").await;
}

#[tokio::test]
async fn a_notice_to_all_reaches_every_connection_including_anonymous_ones() {
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let (_ann, mut ann) = app.user_online("ann").await;
    let (_bob, mut bob) = app.user_online("bob").await;
    let mut anonymous = app.ws_anonymous().await;
    for ws in [&mut ann, &mut bob, &mut anonymous] {
        ready(ws).await;
    }
    let request = PublishRequest { target: PublishTarget::All(true), payload: json!({"level": "info", "n": [1, 2]}) };

    let delivered = publish_ok(&app, &admin.access_token, &request).await;

    assert_eq!(delivered, 3);
    for ws in [&mut ann, &mut bob, &mut anonymous] {
        assert_eq!(notice(ws).await, json!({"level": "info", "n": [1, 2]}));
        ws.assert_no("notice").await;
    }
}

#[tokio::test]
async fn only_admins_may_publish() {
    let app = spawn_app().await;
    let (user, mut listener) = app.user_online("ann").await;
    let room = unique("news");
    listener.ok(join(&room)).await;

    let forbidden = problem(publish(&app, &user.access_token, &to_room(&room, json!("hi"))).await, 403).await;
    let anonymous = app.post_json("/api/publish", &to_room(&room, json!("hi")), None).await;

    assert_eq!(forbidden.kind, "/problems/forbidden");
    problem(anonymous, 401).await;
    listener.assert_no("notice").await;
}

#[tokio::test]
async fn bad_targets_and_oversized_payloads_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let token = admin.access_token.as_str();
    let (_ann, mut ann) = app.user_online("ann").await;
    let room = unique("news");
    ann.ok(join(&room)).await;

    problem(publish(&app, token, &to_room(&unique("nowhere"), json!(1))).await, 404).await;
    let unknown_user = PublishRequest { target: PublishTarget::User(unique("ghost")), payload: json!(1) };
    problem(publish(&app, token, &unknown_user).await, 404).await;
    let not_all = PublishRequest { target: PublishTarget::All(false), payload: json!(1) };
    assert_eq!(problem(publish(&app, token, &not_all).await, 422).await.field.as_deref(), Some("target"));
    let bad_name = problem(publish(&app, token, &to_room("no spaces", json!(1))).await, 422).await;
    assert_eq!(bad_name.field.as_deref(), Some("target"));
    let shapeless = app.post_json("/api/publish", &json!({"target": {"planet": "mars"}, "payload": 1}), Some(token)).await;
    assert_eq!(problem(shapeless, 422).await.field.as_deref(), Some("target"));
    // 16 KiB of payload is fine, one byte more is not (a JSON string: 2 quotes + the text).
    let fits = json!("x".repeat(16 * 1024 - 2));
    assert_eq!(publish_ok(&app, token, &to_room(&room, fits.clone())).await, 1);
    assert_eq!(notice(&mut ann).await, fits);
    let over = json!("x".repeat(16 * 1024 - 1));
    assert_eq!(problem(publish(&app, token, &to_room(&room, over)).await, 413).await.kind, "/problems/too-large");
    ann.assert_no("notice").await;
}

// ---------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------

/// Runs `confab publish <args>` against `app` over HTTP; returns (success, stdout, stderr).
async fn cli(app: &TestApp, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_confab"));
    // The test's environment must not redirect the command (to Redis, or another server).
    command.arg("publish").args(args).arg("--url").arg(app.url("")).env_remove("REDIS_URL");
    run_cli(app, command, stdin).await
}

async fn run_cli(app: &TestApp, mut command: tokio::process::Command, stdin: Option<&str>) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt as _;
    command
        .env_remove("CONFAB_TOKEN")
        .env_remove("CONFAB_PASSWORD")
        .env_remove("CONFAB_URL")
        .env("RUST_LOG", "warn")
        .current_dir(&app.data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("the confab binary runs");
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), stdin) {
        pipe.write_all(input.as_bytes()).await.expect("stdin takes the password");
    }
    let output = within("confab publish", child.wait_with_output()).await.expect("confab publish finishes");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_publishes_through_the_api_and_says_who_received_it() {
    let app = spawn_app().await;
    let admin_name = unique("root");
    let admin = app.admin(&admin_name).await;
    let room = unique("news");
    let (_ann, mut ann) = app.user_online("ann").await;
    let (bob, mut bob_ws) = app.user_online("bob").await;
    ann.ok(join(&room)).await;
    ready(&mut bob_ws).await;

    // JSON payload, admin token.
    let (ok, out, err) = cli(&app, &["--room", &room, "--token", &admin.access_token, r#"{"text":"deploy done"}"#], None).await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), "delivered to 1 connection");
    assert_eq!(notice(&mut ann).await, json!({"text": "deploy done"}));

    // Text that is not JSON travels as a string; logging in with a password from stdin works.
    let (ok, out, err) = cli(&app, &["--user", &bob.user.username, "--username", &admin_name, "hello bob"], Some(PASSWORD)).await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), "delivered to 1 connection");
    assert_eq!(notice(&mut bob_ws).await, json!("hello bob"));
    ann.assert_no("notice").await;

    // Nobody in the room: said plainly.
    let empty_room = unique("empty");
    confab::storage::rooms::create(&app.state().db, &empty_room, false, None).await.expect("the room is created");
    let (ok, out, err) = cli(&app, &["--room", &empty_room, "--token", &admin.access_token, "anyone?"], None).await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.starts_with("no one received it"), "{out}");

    // A non-admin is refused with the server's reason and a failing exit status.
    let (ok, out, err) = cli(&app, &["--all", "--token", &bob.access_token, "hi"], None).await;
    assert!(!ok, "a non-admin publish succeeded: {out}");
    assert!(err.contains("403") && err.contains("admin"), "{err}");
    bob_ws.assert_no("notice").await;
}

#[tokio::test]
async fn the_cli_needs_a_target_and_credentials() {
    let app = spawn_app().await;
    let (ok, _, err) = cli(&app, &["hello"], None).await;
    assert!(!ok);
    assert!(err.contains("--room") && err.contains("--all"), "{err}");
    let (ok, _, err) = cli(&app, &["--all", "hello"], None).await;
    assert!(!ok);
    assert!(err.contains("--token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_the_cli_publishes_straight_into_the_layer() {
    let Ok(redis) = std::env::var("CONFAB_TEST_REDIS_URL") else {
        eprintln!("skipped: needs CONFAB_TEST_REDIS_URL (source /tmp/confab-services/env)");
        return;
    };
    let app = crate::helpers::spawn_app_with(|config| config.redis_url = Some(redis.clone())).await;
    let room = unique("news");
    let (_ann, mut ann) = app.user_online("ann").await;
    ann.ok(join(&room)).await;
    let empty = unique("empty");
    confab::storage::rooms::create(&app.state().db, &empty, false, None).await.expect("the room is created");
    // No --url and no token: REDIS_URL and the shared database are all it needs.
    let direct = |target: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_confab"));
        command
            .args(["publish", "--room", target, r#"{"via":"redis"}"#])
            .env("REDIS_URL", &redis)
            .env("DATABASE_URL", app.config.database_url());
        command
    };

    let (ok, out, err) = run_cli(&app, direct(&room), None).await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.trim(), format!("delivered to the connections in room:{room} on 1 instance"));
    assert_eq!(notice(&mut ann).await, json!({"via": "redis"}));

    let (ok, out, err) = run_cli(&app, direct(&empty), None).await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.starts_with("no one received it"), "{out}");
    ann.assert_no("notice").await;
}
