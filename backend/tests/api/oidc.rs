//! "Log in with <provider>" (OpenID Connect authorization code flow with PKCE) against a
//! provider played by the test: discovery, JWKS and a token endpoint that answers with an
//! RS256 ID token of the fixture key `rsa1`, or fails as told. The browser's part (the
//! redirect to the provider and back) is the e2e suite's (`e2e/suites/50-oidc.sh`, with a
//! real provider); here the code is whatever the test says it is.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use confab_shared::{LoginProvider, TokenPair};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::issuers::{app_trusting, jwk, now, signed};

const CLIENT: &str = "confab-web";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:8000/login/callback";

/// How the token endpoint answers.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    /// 200 with an ID token carrying the nonce the provider was given.
    IdToken,
    /// 400 `invalid_grant`, as for a used or unknown code.
    InvalidGrant,
    /// 500.
    Broken,
}

struct Provider {
    addr: OnceLock<SocketAddr>,
    answer: Mutex<Answer>,
    /// The nonce the provider puts into its ID tokens (what the browser sent it).
    nonce: Mutex<String>,
    /// The forms posted to the token endpoint.
    exchanges: Mutex<Vec<HashMap<String, String>>>,
}

impl Provider {
    fn url(&self) -> String {
        format!("http://{}", self.addr.get().expect("bound"))
    }
}

async fn discovery(State(p): State<Arc<Provider>>) -> axum::Json<Value> {
    let url = p.url();
    axum::Json(json!({
        "issuer": url,
        "jwks_uri": format!("{url}/jwks"),
        "authorization_endpoint": format!("{url}/auth"),
        "token_endpoint": format!("{url}/token"),
    }))
}

async fn jwks() -> axum::Json<Value> {
    axum::Json(json!({ "keys": [jwk("rsa1")] }))
}

async fn token(State(p): State<Arc<Provider>>, axum::Form(form): axum::Form<HashMap<String, String>>) -> axum::response::Response {
    let sub = form.get("code").cloned().unwrap_or_default();
    p.exchanges.lock().expect("not poisoned").push(form);
    match *p.answer.lock().expect("not poisoned") {
        Answer::Broken => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Answer::InvalidGrant => (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": "invalid_grant" }))).into_response(),
        Answer::IdToken => {
            // The code names the person, so each test logs in whom it likes.
            let claims = json!({
                "iss": p.url(), "aud": CLIENT, "sub": sub, "preferred_username": sub,
                "nonce": *p.nonce.lock().expect("not poisoned"), "iat": now(), "exp": now() + 600,
            });
            let id_token = signed(Algorithm::RS256, "rsa1", &claims);
            axum::Json(json!({ "access_token": "opaque", "token_type": "Bearer", "id_token": id_token })).into_response()
        }
    }
}

async fn provider() -> Arc<Provider> {
    let p = Arc::new(Provider {
        addr: OnceLock::new(),
        answer: Mutex::new(Answer::IdToken),
        nonce: Mutex::new("the-nonce".to_owned()),
        exchanges: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    p.addr.set(listener.local_addr().expect("an address")).expect("set once");
    let router = axum::Router::new()
        .route("/.well-known/openid-configuration", axum::routing::get(discovery))
        .route("/jwks", axum::routing::get(jwks))
        .route("/token", axum::routing::post(token))
        .with_state(p.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    p
}

/// A server trusting the provider for login (`sso`) and a shared-key issuer without login.
async fn app_with_login(idp: &Provider) -> TestApp {
    app_trusting(&format!(
        "[[issuer]]\nname = \"sso\"\nlabel = \"Example SSO\"\ndiscovery = \"{}\"\nalgorithms = [\"RS256\"]\nlogin = true\nclient_id = \"{CLIENT}\"\n\n\
         [[issuer]]\nname = \"django\"\nsecret = \"the-django-settings-TOKEN_KEY-of-at-least-32-bytes\"\nalgorithms = [\"HS256\"]\n",
        idp.url()
    ))
    .await
}

fn login_body(code: &str, nonce: &str) -> Value {
    json!({ "code": code, "code_verifier": VERIFIER, "redirect_uri": REDIRECT, "nonce": nonce })
}

// --- Tests ---------------------------------------------------------------------------------------

#[tokio::test]
async fn logging_in_with_a_provider_opens_a_confab_session_like_a_password_login() {
    let idp = provider().await;
    let app = app_with_login(&idp).await;

    let offered: Vec<LoginProvider> = body(app.get("/api/auth/providers", None).await).await;
    assert_eq!(offered.len(), 1, "only the issuer with login = true is offered");
    assert_eq!((offered[0].name.as_str(), offered[0].label.as_str(), offered[0].client_id.as_str()), ("sso", "Example SSO", CLIENT));
    assert_eq!(offered[0].authorization_endpoint, format!("{}/auth", idp.url()));
    assert!(offered[0].scope.split(' ').any(|s| s == "openid"), "{}", offered[0].scope);

    let pair: TokenPair = body(app.post_json("/api/auth/oidc/sso", &login_body("oidc_ann", "the-nonce"), None).await).await;
    assert_eq!(pair.user.username, "oidc_ann");
    let exchange = idp.exchanges.lock().expect("not poisoned")[0].clone();
    for (key, value) in [("grant_type", "authorization_code"), ("code", "oidc_ann"), ("code_verifier", VERIFIER), ("redirect_uri", REDIRECT), ("client_id", CLIENT)] {
        assert_eq!(exchange.get(key).map(String::as_str), Some(value), "the token endpoint got {exchange:?}");
    }
    // Confab's own tokens: the access token works on REST and the socket, the refresh
    // token rotates, logout ends the session.
    let me: Value = body(app.get("/api/me", Some(&pair.access_token)).await).await;
    assert_eq!(me["username"], "oidc_ann");
    assert_eq!(claims_of(&pair.access_token)["iss"], "confab");
    let mut socket = app.ws(&pair.access_token).await;
    socket.ok(join(&unique("room"))).await;
    let rotated: TokenPair = body(app.refresh(&pair.refresh_token).await).await;
    assert_eq!(rotated.user.id, pair.user.id);
    let logout = app.http.post(app.url("/api/auth/logout")).bearer_auth(&rotated.access_token).send().await.expect("sent");
    assert_eq!(logout.status().as_u16(), 204);
    problem(app.get("/api/me", Some(&rotated.access_token)).await, 401).await;

    // Logging in again is the same account.
    let again: TokenPair = body(app.post_json("/api/auth/oidc/sso", &login_body("oidc_ann", "the-nonce"), None).await).await;
    assert_eq!(again.user.id, pair.user.id);
    // Both ID tokens are counted as the issuer's accepted tokens.
    let metrics = text(app.get("/metrics", None).await).await;
    assert!(metrics.contains("confab_issuer_tokens_total{issuer=\"sso\",outcome=\"accepted\"} 2\n"), "{metrics}");

    // The web app's flavour: the refresh token in the cookie, not in the body; CSRF header needed.
    let no_csrf = app.http.post(app.url("/api/auth/session/oidc/sso")).json(&login_body("oidc_bob", "the-nonce")).send().await.expect("sent");
    problem(no_csrf, 403).await;
    let response = app
        .http
        .post(app.url("/api/auth/session/oidc/sso"))
        .header("confab-csrf", "1")
        .json(&login_body("oidc_bob", "the-nonce"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cookie.starts_with("confab_refresh=") && cookie.contains("HttpOnly"), "{cookie}");
    let session: Value = body(response).await;
    assert_eq!(session["user"]["username"], "oidc_bob");
    assert!(session.get("refresh_token").is_none(), "{session}");
    let refresh_cookie = cookie.split(';').next().expect("a pair").to_owned();
    let refreshed =
        app.http.post(app.url("/api/auth/session/refresh")).header("confab-csrf", "1").header("cookie", refresh_cookie).send().await.expect("sent");
    assert_eq!(refreshed.status().as_u16(), 200);
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused_with_401() {
    let idp = provider().await;
    let app = app_with_login(&idp).await;
    *idp.nonce.lock().expect("not poisoned") = "a-nonce-of-another-login".to_owned();
    for path in ["/api/auth/oidc/sso", "/api/auth/session/oidc/sso"] {
        let response = app.http.post(app.url(path)).header("confab-csrf", "1").json(&login_body("oidc_eve", "the-nonce")).send().await.expect("sent");
        let refused = problem(response, 401).await;
        assert!(refused.detail.contains("nonce"), "{path}: {}", refused.detail);
        assert!(!refused.detail.contains("a-nonce-of-another") && !refused.detail.contains("eyJ"), "{path} echoes: {}", refused.detail);
    }
    // Without a nonce claim at all, the same.
    *idp.nonce.lock().expect("not poisoned") = String::new();
    problem(app.post_json("/api/auth/oidc/sso", &login_body("oidc_eve", "the-nonce"), None).await, 401).await;
}

#[tokio::test]
async fn an_unknown_issuer_and_an_issuer_without_login_get_404_and_nothing_is_exchanged() {
    let idp = provider().await;
    let app = app_with_login(&idp).await;
    for name in ["nobody", "django"] {
        let refused = problem(app.post_json(&format!("/api/auth/oidc/{name}"), &login_body("oidc_x", "the-nonce"), None).await, 404).await;
        assert!(refused.detail.contains("login provider"), "{name}: {}", refused.detail);
    }
    assert!(idp.exchanges.lock().expect("not poisoned").is_empty());

    // Without any login issuer, the list is empty.
    let plain = spawn_app().await;
    let offered: Vec<LoginProvider> = body(plain.get("/api/auth/providers", None).await).await;
    assert!(offered.is_empty(), "{offered:?}");
}

#[tokio::test]
async fn a_malformed_login_body_is_refused_before_the_provider_is_asked() {
    let idp = provider().await;
    let app = app_with_login(&idp).await;
    let cases = [
        ("code_verifier", json!({ "code": "c", "code_verifier": "short", "redirect_uri": REDIRECT, "nonce": "n" })),
        ("code_verifier", json!({ "code": "c", "code_verifier": format!("{VERIFIER}!"), "redirect_uri": REDIRECT, "nonce": "n" })),
        ("redirect_uri", json!({ "code": "c", "code_verifier": VERIFIER, "redirect_uri": "javascript:alert(1)", "nonce": "n" })),
        ("nonce", json!({ "code": "c", "code_verifier": VERIFIER, "redirect_uri": REDIRECT, "nonce": "" })),
        ("code", json!({ "code": "", "code_verifier": VERIFIER, "redirect_uri": REDIRECT, "nonce": "n" })),
    ];
    for (field, bad) in cases {
        let refused = problem(app.post_json("/api/auth/oidc/sso", &bad, None).await, 422).await;
        assert_eq!(refused.field.as_deref(), Some(field), "{bad}");
    }
    let long = json!({ "code": "c".repeat(10_000), "code_verifier": VERIFIER, "redirect_uri": REDIRECT, "nonce": "n" });
    assert_eq!(problem(app.post_json("/api/auth/oidc/sso", &long, None).await, 422).await.field.as_deref(), Some("code"));
    let huge = json!({ "code": "c".repeat(100_000), "code_verifier": VERIFIER, "redirect_uri": REDIRECT, "nonce": "n" });
    problem(app.post_json("/api/auth/oidc/sso", &huge, None).await, 413).await;
    assert!(idp.exchanges.lock().expect("not poisoned").is_empty());
}

#[tokio::test]
async fn refused_codes_from_one_address_are_throttled_before_the_provider_is_asked_again() {
    let idp = provider().await;
    // One failed login per username: four refusals per address (4× that) in five minutes.
    let file = tempfile::NamedTempFile::new().expect("a temp file");
    let toml = format!("[[issuer]]\nname = \"sso\"\ndiscovery = \"{}\"\nalgorithms = [\"RS256\"]\nlogin = true\nclient_id = \"{CLIENT}\"\n", idp.url());
    std::fs::write(file.path(), toml).expect("written");
    let path = file.path().to_path_buf();
    let app = spawn_app_with(|c| {
        c.issuers_file = Some(path);
        c.login_attempts = 1;
    })
    .await;
    // Logins that succeed, and bodies refused before any call, cost nothing.
    for _ in 0..6 {
        let _: TokenPair = body(app.post_json("/api/auth/oidc/sso", &login_body("oidc_ok", "the-nonce"), None).await).await;
        problem(app.post_json("/api/auth/oidc/sso", &json!({ "code": "", "code_verifier": VERIFIER, "redirect_uri": REDIRECT, "nonce": "n" }), None).await, 422).await;
    }
    *idp.answer.lock().expect("not poisoned") = Answer::InvalidGrant;
    for _ in 0..4 {
        problem(app.post_json("/api/auth/oidc/sso", &login_body("oidc_x", "the-nonce"), None).await, 401).await;
    }
    let asked = idp.exchanges.lock().expect("not poisoned").len();
    let response = app
        .http
        .post(app.url("/api/auth/session/oidc/sso"))
        .header("confab-csrf", "1")
        .json(&login_body("oidc_x", "the-nonce"))
        .send()
        .await
        .expect("sent");
    assert!(response.headers().contains_key("retry-after"), "{:?}", response.headers());
    problem(response, 429).await;
    problem(app.post_json("/api/auth/oidc/sso", &login_body("oidc_x", "the-nonce"), None).await, 429).await;
    assert_eq!(idp.exchanges.lock().expect("not poisoned").len(), asked, "the provider was not asked again");
}

#[tokio::test]
async fn a_failing_token_endpoint_gets_503_and_a_refused_code_gets_401() {
    let idp = provider().await;
    let app = app_with_login(&idp).await;
    *idp.answer.lock().expect("not poisoned") = Answer::Broken;
    let failed = problem(app.post_json("/api/auth/oidc/sso", &login_body("oidc_x", "the-nonce"), None).await, 503).await;
    assert!(failed.detail.contains("token endpoint"), "{}", failed.detail);

    *idp.answer.lock().expect("not poisoned") = Answer::InvalidGrant;
    let refused = problem(app.post_json("/api/auth/oidc/sso", &login_body("oidc_x", "the-nonce"), None).await, 401).await;
    assert!(refused.detail.contains("refused the authorization code (invalid_grant)"), "{}", refused.detail);
    assert_eq!(idp.exchanges.lock().expect("not poisoned").len(), 2);

    // A provider that is gone altogether: 503 as well.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let gone = format!("http://{}", closed.local_addr().expect("an address"));
    drop(closed);
    let app = app_trusting(&format!("[[issuer]]\nname = \"sso\"\ndiscovery = \"{gone}\"\nalgorithms = [\"RS256\"]\nlogin = true\nclient_id = \"{CLIENT}\"\n")).await;
    problem(app.post_json("/api/auth/oidc/sso", &login_body("oidc_x", "the-nonce"), None).await, 503).await;
    let offered: Vec<LoginProvider> = body(app.get("/api/auth/providers", None).await).await;
    assert!(offered.is_empty(), "a provider whose discovery fails is not offered: {offered:?}");
}
