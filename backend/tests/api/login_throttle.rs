//! Logins and sign-ups under attack: attempts are counted before hashing (concurrent guesses
//! cannot outrun the limit), a flood of sign-ups for a taken name hashes nothing, malformed
//! names are refused first and never logged, and the per-address counts follow the same
//! client address as the socket caps.

use std::io::Write;
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use reqwest::header::HeaderValue;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, problem, spawn_app_with, text, unique};

/// `confab_password_hashes_total` of this server: the argon2 runs its hashing threads did.
async fn hashes(app: &TestApp) -> u64 {
    let metrics = text(app.get("/metrics", None).await).await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("confab_password_hashes_total "))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no confab_password_hashes_total in:\n{metrics}"))
}

fn statuses(responses: &[reqwest::Response]) -> Vec<u16> {
    responses.iter().map(|r| r.status().as_u16()).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn thirty_concurrent_wrong_passwords_reach_the_hasher_only_up_to_the_limit_and_the_rest_get_429() {
    // One hashing thread and a queue that admits every guess: only the throttle stands between
    // the guesses and argon2.
    let app = spawn_app_with(|c| {
        c.login_attempts = 5;
        c.hash_threads = 1;
        c.hash_queue = 64;
    })
    .await;
    let name = unique("target");
    assert_eq!(app.signup(&name, PASSWORD).await.status().as_u16(), 201);
    let before = hashes(&app).await;

    let passwords: Vec<String> = (0..30).map(|i| format!("wrong guess {i}")).collect();
    let guesses = join_all(passwords.iter().map(|password| app.login(&name, password))).await;

    let got = statuses(&guesses);
    assert_eq!(hashes(&app).await - before, 5, "hash runs for 30 concurrent guesses under a limit of 5: {got:?}");
    assert_eq!((count(&got, 401), count(&got, 429)), (5, 25), "{got:?}");
    for refused in guesses.into_iter().filter(|r| r.status().as_u16() == 429) {
        assert!(refused.headers().get("retry-after").is_some(), "a 429 without Retry-After");
    }
    assert_eq!(app.login(&name, PASSWORD).await.status().as_u16(), 429, "the right password waits too");
}

#[tokio::test]
async fn a_sign_up_flood_for_a_taken_name_hashes_nothing_while_real_logins_succeed() {
    // A queue so short that a few hashes for the flood would already turn logins away.
    let app = spawn_app_with(|c| {
        c.hash_threads = 1;
        c.hash_queue = 2;
        c.signups_per_ip = 20;
    })
    .await;
    let taken = unique("taken");
    assert_eq!(app.signup(&taken, PASSWORD).await.status().as_u16(), 201);
    let users = [unique("ann"), unique("bob"), unique("cy")];
    for user in &users {
        assert_eq!(app.signup(user, PASSWORD).await.status().as_u16(), 201);
    }
    let before = hashes(&app).await;

    let flood = join_all((0..60).map(|_| app.signup(&taken, "a guessable password")));
    let logins = join_all(users.iter().map(|user| app.login(user, PASSWORD)));
    let (flood, logins) = tokio::join!(flood, logins);

    assert_eq!(statuses(&logins), [200, 200, 200], "real logins during the flood");
    let flood = statuses(&flood);
    // 4 accounts were signed up from this address before the flood: 16 more sign-ups fit.
    assert_eq!((count(&flood, 409), count(&flood, 429)), (16, 44), "{flood:?}");
    assert_eq!(hashes(&app).await - before, 3, "only the three logins hashed");
}

#[tokio::test]
async fn sign_ups_are_throttled_per_address_even_for_free_names() {
    let app = spawn_app_with(|c| c.signups_per_ip = 3).await;
    for _ in 0..3 {
        assert_eq!(app.signup(&unique("new"), PASSWORD).await.status().as_u16(), 201);
    }
    let refused = app.signup(&unique("new"), PASSWORD).await;
    let retry_after = refused.headers().get("retry-after").cloned();
    assert_eq!(problem(refused, 429).await.kind, "/problems/rate-limited");
    assert!(retry_after.is_some(), "a 429 without Retry-After");
    // Logging in is a separate count.
    let pair = app.login(&unique("nobody"), PASSWORD).await;
    assert_eq!(pair.status().as_u16(), 401);
}

/// A log sink for the server of one test: a current-thread test runs the server's tasks on
/// its own thread, where this subscriber is the default.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("the log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("the log buffer")).into_owned()
    }
}

#[tokio::test]
async fn a_malformed_username_is_refused_before_anything_else_and_never_reaches_the_log() {
    let log = Captured::default();
    let sink = log.clone();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).with_writer(move || sink.clone()).finish();
    let _scoped = tracing::subscriber::set_default(subscriber);
    // A second live dispatcher. With only one, tracing-core decides whether a callsite is
    // enabled by asking the default of whichever thread reaches it first, and a test running
    // beside this one on another thread (no subscriber) would switch the server's log lines
    // off for good; with two it asks every live one, this capture among them.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let app = spawn_app_with(|c| c.login_attempts = 1).await;
    let name = unique("real");
    assert_eq!(app.signup(&name, PASSWORD).await.status().as_u16(), 201);
    let marker = "INJECTED-LOG-LINE";
    let huge = format!("ann\n2031-01-01T00:00:00Z  INFO {marker} admin logged in\r\n{}", "A".repeat(60_000));
    let before = text(app.get("/metrics", None).await).await;

    for username in [huge.as_str(), "ann\nINJECTED-LOG-LINE", "x", "émile", "with space", &"y".repeat(33)] {
        // A sign-up is told which rule the name breaks; a login fails like any unknown name.
        for (path, status) in [("/api/auth/login", 401), ("/api/auth/signup", 422)] {
            let response = app.post_json(path, &json!({"username": username, "password": PASSWORD}), None).await;
            let refused = problem(response, status).await;
            if status == 422 {
                assert_eq!(refused.field.as_deref(), Some("username"), "{path}");
            }
            assert!(refused.detail.len() < 200, "{path}: the answer repeats the input: {} bytes", refused.detail.len());
        }
    }

    let after = text(app.get("/metrics", None).await).await;
    let hashed = |m: &str| m.lines().find_map(|l| l.strip_prefix("confab_password_hashes_total ")).map(str::to_owned);
    assert_eq!(hashed(&after), hashed(&before), "a malformed name reached a hashing thread");
    assert!(hashed(&after).is_some(), "no confab_password_hashes_total");
    // None of them counted against the address (4 per address with 1 per username).
    assert_eq!(app.login(&name, PASSWORD).await.status().as_u16(), 200, "malformed names were throttle keys");
    let logged = log.text();
    assert!(logged.contains("logged in"), "the capture works: {logged}");
    assert!(!logged.contains(marker) && !logged.contains("AAAAAAAAAAAAAAAA"), "a raw username was logged:\n{}", &logged[..logged.len().min(2000)]);
}

fn from(app: &TestApp, address: &str, name: &str, password: &str) -> reqwest::RequestBuilder {
    app.http
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", HeaderValue::from_str(address).expect("a header value"))
        .json(&json!({"username": name, "password": password}))
}

async fn status(request: reqwest::RequestBuilder) -> u16 {
    crate::helpers::within("a login", request.send()).await.expect("the server answers").status().as_u16()
}

#[tokio::test]
async fn failed_logins_count_per_forwarded_address_only_behind_a_trusted_proxy() {
    // One attempt per username, four per address.
    let trusting = spawn_app_with(|c| {
        c.login_attempts = 1;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().expect("a block")];
    })
    .await;
    let name = unique("dee");
    assert_eq!(trusting.signup(&name, PASSWORD).await.status().as_u16(), 201);
    for _ in 0..4 {
        assert_eq!(status(from(&trusting, "203.0.113.9", &unique("ghost"), "wrong password")).await, 401);
    }
    assert_eq!(status(from(&trusting, "203.0.113.9", &name, PASSWORD)).await, 429, "the forwarded address is spent");
    assert_eq!(status(from(&trusting, "203.0.113.10", &name, PASSWORD)).await, 200, "another forwarded address is not");
    // IPv6 by the /64: four guesses from four addresses of one /64 spend it.
    for i in 1..=4 {
        assert_eq!(status(from(&trusting, &format!("2001:db8:9:9::{i}"), &unique("ghost"), "wrong")).await, 401);
    }
    assert_eq!(status(from(&trusting, "2001:db8:9:9:ffff::1", &name, PASSWORD)).await, 429, "same /64");

    let untrusting = spawn_app_with(|c| c.login_attempts = 1).await;
    let name = unique("eve");
    assert_eq!(untrusting.signup(&name, PASSWORD).await.status().as_u16(), 201);
    for i in 0..4 {
        let spoofed = format!("198.51.100.{i}");
        assert_eq!(status(from(&untrusting, &spoofed, &unique("ghost"), "wrong password")).await, 401);
    }
    assert_eq!(status(from(&untrusting, "198.51.100.200", &name, PASSWORD)).await, 429, "spoofed addresses all count as the peer");
}
