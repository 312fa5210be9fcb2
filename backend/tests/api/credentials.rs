//! Credentials that must not work: a JWT secret too short to resist brute force (refused at
//! start), and an access token whose session belongs to another user.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use confab::config::Config;
use confab::startup::Application;
use serde_json::{Value, json};

use crate::helpers::{WAIT, body, claims_of, problem, sign, spawn_app, unique};

/// 31 bytes: one short of what RFC 7518 asks for HS256.
const SHORT_SECRET: &str = "not-long-enough-for-hs256-31-b!";

#[tokio::test]
async fn a_jwt_secret_under_32_bytes_is_refused_when_the_server_is_built() {
    assert_eq!(SHORT_SECRET.len(), 31);
    let dir = tempfile::tempdir().expect("a data dir");
    let mut config = Config::for_tests(dir.path().to_path_buf());
    config.jwt_secret = Some(SHORT_SECRET.to_owned());

    let refused = match Application::build(config.clone()).await {
        Ok(_) => panic!("a server was built with a 31-byte secret"),
        Err(err) => format!("{err:#}"),
    };
    assert!(refused.contains("CONFAB_JWT_SECRET") && refused.contains("at least 32"), "{refused}");
    assert!(!refused.contains(SHORT_SECRET), "the error repeats the secret: {refused}");

    config.jwt_secret = Some("x".repeat(32));
    assert!(Application::build(config).await.is_ok(), "32 bytes are enough");
}

#[tokio::test]
async fn confab_serve_with_a_short_jwt_secret_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("a data dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
        .arg("serve")
        .env("CONFAB_BIND", "127.0.0.1:0")
        .env("CONFAB_DATA_DIR", dir.path())
        .env("CONFAB_JWT_SECRET", SHORT_SECRET)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning confab");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("confab kept running with a 31-byte JWT secret");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr is text");
    assert!(!status.success(), "exit status {status}");
    assert!(stderr.contains("at least 32") && stderr.contains("RFC 7518"), "{stderr}");
    assert!(!stderr.contains(SHORT_SECRET), "the secret was printed: {stderr}");
}

#[tokio::test]
async fn an_access_token_whose_session_belongs_to_another_user_is_refused() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let ann_claims = claims_of(&ann.access_token);
    let mut bobs = claims_of(&bob.access_token);
    bobs["jti"] = json!(unique("jti"));
    // The same claims re-signed work: only the session differs below.
    let genuine = sign(&app, &bobs);
    body::<Value>(app.get("/api/me", Some(&genuine)).await).await;

    // Bob's identity riding on Ann's live session.
    bobs["sid"] = ann_claims["sid"].clone();
    let crossed = sign(&app, &bobs);

    assert_eq!(problem(app.get("/api/me", Some(&crossed)).await, 401).await.kind, "/problems/unauthenticated");
    let (status, _) = app.ws_refused(app.ws_bearer_request(&crossed)).await;
    assert_eq!(status, 401, "the socket upgrade");
    // Ann's own token, on her own session, is untouched.
    body::<Value>(app.get("/api/me", Some(&ann.access_token)).await).await;
}
