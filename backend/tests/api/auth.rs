//! Accounts and tokens: signup, login (and its throttling), refresh rotation with reuse
//! detection, logout, `/api/me`, and the shape of the access token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confab_shared::rpc::EchoParams;
use confab_shared::{TokenPair, User};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, body, problem, spawn_app, spawn_app_with, unique};

fn echo() -> EchoParams {
    EchoParams { text: "still here".into() }
}

#[tokio::test]
async fn signup_creates_an_account_and_returns_the_user() {
    let app = spawn_app().await;
    let name = unique("Ann");

    let response = app.signup(&name, PASSWORD).await;

    assert_eq!(response.status().as_u16(), 201);
    let user: User = body(response).await;
    assert_eq!(user.username, name, "the username keeps its case");
    assert!(!user.is_admin);
    assert!(user.id > 0);
    let age = chrono::Utc::now().signed_duration_since(user.created_at.0);
    assert!(age.num_seconds().abs() < 60, "created_at is now: {}", user.created_at);
}

#[tokio::test]
async fn a_username_is_taken_regardless_of_case() {
    let app = spawn_app().await;
    let name = unique("Bob");
    assert_eq!(app.signup(&name, PASSWORD).await.status().as_u16(), 201);

    let again = problem(app.signup(&name.to_uppercase(), PASSWORD).await, 409).await;

    assert_eq!(again.kind, "/problems/conflict");
    assert_eq!(again.field, None);
}

#[tokio::test]
async fn signup_rejects_invalid_usernames_and_passwords_naming_the_field() {
    let app = spawn_app().await;
    let (long_name, long_password) = ("x".repeat(33), "p".repeat(129));
    let cases = [
        ("ab", PASSWORD, "username"),
        ("with space", PASSWORD, "username"),
        ("émile", PASSWORD, "username"),
        (long_name.as_str(), PASSWORD, "username"),
        ("valid_name", "short", "password"),
        ("valid_name", long_password.as_str(), "password"),
    ];
    for (username, password, field) in cases {
        let p = problem(app.signup(username, password).await, 422).await;
        assert_eq!(p.kind, "/problems/validation");
        assert_eq!(p.field.as_deref(), Some(field), "for {username:?} / {} chars", password.len());
    }
    // Boundaries that are allowed: 3 and 32 characters, 8 and 128 characters.
    assert_eq!(app.signup("abc", &"p".repeat(8)).await.status().as_u16(), 201);
    assert_eq!(app.signup(&"y".repeat(32), &"p".repeat(128)).await.status().as_u16(), 201);
}

#[tokio::test]
async fn signup_reports_missing_and_mistyped_members_and_malformed_json() {
    let app = spawn_app().await;

    let missing = problem(app.post_json("/api/auth/signup", &json!({"username": "carla"}), None).await, 422).await;
    assert_eq!(missing.field.as_deref(), Some("password"));

    let mistyped = problem(app.post_json("/api/auth/signup", &json!({"username": 5, "password": PASSWORD}), None).await, 422).await;
    assert_eq!(mistyped.field.as_deref(), Some("username"));

    let malformed = problem(app.post_raw("/api/auth/signup", "application/json", "{\"username\": ").await, 400).await;
    assert_eq!(malformed.kind, "/problems/bad-request");

    let not_json = problem(app.post_raw("/api/auth/signup", "text/plain", "username=carla").await, 400).await;
    assert_eq!(not_json.kind, "/problems/bad-request");
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused_even_when_it_fits_by_position() {
    let app = spawn_app().await;
    let name = unique("eve");
    let by_position = json!([name, PASSWORD]).to_string();

    for path in ["/api/auth/signup", "/api/auth/login"] {
        for body in [by_position.as_str(), "\"eve\"", "[]", "42"] {
            let refused = problem(app.post_raw(path, "application/json", body).await, 422).await;
            assert_eq!((refused.field.as_deref(), refused.detail.as_str()), (Some("body"), "body: must be a JSON object"), "{path} {body}");
        }
    }
    // Nothing was created: the name is still free.
    assert_eq!(app.signup(&name, PASSWORD).await.status().as_u16(), 201);
}

#[tokio::test]
async fn login_returns_a_token_pair_for_the_user() {
    let app = spawn_app().await;
    let name = unique("dora");
    app.signup(&name, PASSWORD).await;

    let pair: TokenPair = body(app.login(&name.to_uppercase(), PASSWORD).await).await;

    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 900);
    assert_eq!(pair.user.username, name, "login is case-insensitive and answers with the stored name");
    assert_ne!(pair.refresh_token, pair.access_token);
    assert!(!pair.refresh_token.contains('.'), "the refresh token is opaque, never a JWT");
}

#[tokio::test]
async fn the_access_token_is_a_jwt_with_the_documented_claims() {
    let app = spawn_app().await;
    let pair = app.signup_and_login(&unique("eve")).await;

    let parts: Vec<&str> = pair.access_token.split('.').collect();
    assert_eq!(parts.len(), 3, "header.payload.signature");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("base64url")).expect("JSON");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url")).expect("JSON");

    assert_eq!(header["alg"], "HS256");
    assert_eq!(claims["iss"], "confab");
    assert_eq!(claims["aud"], "confab");
    assert_eq!(claims["sub"], json!(pair.user.id.to_string()), "sub is the user id as a decimal string");
    assert_eq!(claims["name"], json!(pair.user.username));
    assert_eq!(claims["adm"], json!(false));
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(claims["jti"].as_str().is_some_and(|s| !s.is_empty()));
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(claims["nbf"].as_i64(), Some(iat));
    assert_eq!(claims["exp"].as_i64(), Some(iat + 900), "15 minutes by default");
}

#[tokio::test]
async fn login_gives_the_same_answer_for_an_unknown_user_and_a_wrong_password() {
    let app = spawn_app().await;
    let name = unique("fay");
    app.signup(&name, PASSWORD).await;

    let wrong = problem(app.login(&name, "wrong password").await, 401).await;
    let unknown = problem(app.login(&unique("nobody"), PASSWORD).await, 401).await;

    assert_eq!(wrong, unknown);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_username() {
    let app = spawn_app_with(|c| c.login_attempts = 3).await;
    let name = unique("gus");
    let other = unique("hal");
    app.signup(&name, PASSWORD).await;
    app.signup(&other, PASSWORD).await;

    for _ in 0..3 {
        assert_eq!(app.login(&name, "wrong password").await.status().as_u16(), 401);
    }
    let throttled = app.login(&name.to_uppercase(), PASSWORD).await;

    assert_eq!(throttled.status().as_u16(), 429, "even the right password waits");
    let retry_after: u64 = throttled
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!((1..=300).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(problem(throttled, 429).await.kind, "/problems/rate-limited");
    assert_eq!(app.login(&other, PASSWORD).await.status().as_u16(), 200, "other usernames are not affected");
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address_across_usernames() {
    // Two per username, so eight per address.
    let app = spawn_app_with(|c| c.login_attempts = 2).await;
    let fresh = unique("ivy");
    app.signup(&fresh, PASSWORD).await;

    for _ in 0..8 {
        // A different username each time: no username reaches its own limit.
        assert_eq!(app.login(&unique("ghost"), "wrong password").await.status().as_u16(), 401);
    }

    problem(app.login(&fresh, PASSWORD).await, 429).await;
}

#[tokio::test]
async fn me_returns_the_caller_and_needs_a_valid_bearer() {
    let app = spawn_app().await;
    let pair = app.signup_and_login(&unique("jon")).await;

    let me: User = body(app.get("/api/me", Some(&pair.access_token)).await).await;
    assert_eq!(me, pair.user);

    let missing = problem(app.get("/api/me", None).await, 401).await;
    assert_eq!(missing.kind, "/problems/unauthenticated");
    problem(app.get("/api/me", Some("not-a-token")).await, 401).await;
    problem(app.get("/api/me", Some(&pair.refresh_token)).await, 401).await;
}

#[tokio::test]
async fn refresh_rotates_the_pair_and_the_old_refresh_token_stops_working() {
    let app = spawn_app().await;
    let first = app.signup_and_login(&unique("kim")).await;

    let second: TokenPair = body(app.refresh(&first.refresh_token).await).await;

    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.user, first.user);
    let me: User = body(app.get("/api/me", Some(&second.access_token)).await).await;
    assert_eq!(me.id, first.user.id);
    let third: TokenPair = body(app.refresh(&second.refresh_token).await).await;
    assert_ne!(third.refresh_token, second.refresh_token);
}

#[tokio::test]
async fn refresh_rejects_unknown_tokens_and_access_tokens() {
    let app = spawn_app().await;
    let pair = app.signup_and_login(&unique("lea")).await;

    problem(app.refresh("no-such-token").await, 401).await;
    problem(app.refresh(&pair.access_token).await, 401).await;
    let missing = problem(app.post_json("/api/auth/refresh", &json!({}), None).await, 422).await;
    assert_eq!(missing.field.as_deref(), Some("refresh_token"));
    // None of that harmed the session.
    body::<TokenPair>(app.refresh(&pair.refresh_token).await).await;
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_the_whole_session_and_closes_its_sockets() {
    let app = spawn_app().await;
    let first = app.signup_and_login(&unique("max")).await;
    let second: TokenPair = body(app.refresh(&first.refresh_token).await).await;
    let mut old_socket = app.ws(&first.access_token).await;
    let mut new_socket = app.ws(&second.access_token).await;
    old_socket.ok(echo()).await;
    new_socket.ok(echo()).await;
    // Another session of the same user must survive.
    let elsewhere = app.login_ok(&first.user.username).await;
    let mut other_session = app.ws(&elsewhere.access_token).await;

    problem(app.refresh(&first.refresh_token).await, 401).await;

    assert_eq!(old_socket.expect_close().await, 4003);
    assert_eq!(new_socket.expect_close().await, 4003);
    problem(app.get("/api/me", Some(&first.access_token)).await, 401).await;
    problem(app.get("/api/me", Some(&second.access_token)).await, 401).await;
    problem(app.refresh(&second.refresh_token).await, 401).await;
    let (status, _) = app.ws_refused(app.ws_bearer_request(&second.access_token)).await;
    assert_eq!(status, 401);

    other_session.ok(echo()).await;
    body::<User>(app.get("/api/me", Some(&elsewhere.access_token)).await).await;
}

#[tokio::test]
async fn logout_revokes_the_session_and_closes_its_sockets_with_4003() {
    let app = spawn_app().await;
    let pair = app.signup_and_login(&unique("ned")).await;
    let mut tab1 = app.ws(&pair.access_token).await;
    let mut tab2 = app.ws(&pair.access_token).await;
    let elsewhere = app.login_ok(&pair.user.username).await;
    let mut other_device = app.ws(&elsewhere.access_token).await;

    let response = app.post_json("/api/auth/logout", &json!({}), Some(&pair.access_token)).await;

    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(tab1.expect_close().await, 4003);
    assert_eq!(tab2.expect_close().await, 4003);
    problem(app.get("/api/me", Some(&pair.access_token)).await, 401).await;
    problem(app.refresh(&pair.refresh_token).await, 401).await;
    let (status, _) = app.ws_refused(app.ws_bearer_request(&pair.access_token)).await;
    assert_eq!(status, 401);
    // Only that session ended.
    other_device.ok(echo()).await;
}

#[tokio::test]
async fn logout_needs_a_valid_bearer() {
    let app = spawn_app().await;

    problem(app.post_json("/api/auth/logout", &json!({}), None).await, 401).await;
    problem(app.post_json("/api/auth/logout", &json!({}), Some("garbage")).await, 401).await;
}
