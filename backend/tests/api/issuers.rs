//! Trusted issuers (`CONFAB_ISSUERS_FILE`): a team's backend signing with a shared key (like
//! the Django seeds) and an identity provider publishing RS256/ES256 keys (JWKS, discovery),
//! against the real server; the JWKS endpoint is a small HTTP server in the test that counts
//! its fetches and can be taken down. The key pairs under `issuers_keys/` are test fixtures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use confab_shared::rpc::AuthRefreshParams;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "the-django-settings-TOKEN_KEY-of-at-least-32-bytes";
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/issuers_keys");

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{KEYS}/{name}")).expect("a test key")
}

pub(crate) fn jwk(kid: &str) -> Value {
    let all: Value = serde_json::from_slice(&fixture("jwks.json")).expect("the test JWKS");
    all[kid].clone()
}

/// A token signed with one of the fixture private keys.
pub(crate) fn signed(alg: Algorithm, kid: &str, claims: &Value) -> String {
    let pem = fixture(&format!("{kid}.pem"));
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        _ => EncodingKey::from_ec_pem(&pem),
    }
    .expect("a fixture key");
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).expect("signing works")
}

/// A token signed like the seeds' Django view: `jwt.encode(claims, settings.TOKEN_KEY)`.
fn django(claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET.as_bytes())).expect("signing works")
}

/// A server trusting the issuers written in `toml`.
pub(crate) async fn app_trusting(toml: &str) -> TestApp {
    let file = tempfile::NamedTempFile::new().expect("a temp file");
    std::fs::write(file.path(), toml).expect("written");
    let path = file.path().to_path_buf();
    let app = spawn_app_with(|c| {
        c.issuers_file = Some(path);
        c.expiry_warning_secs = 3600;
    })
    .await;
    drop(file);
    app
}

fn django_issuer(extra: &str) -> String {
    format!(
        "[[issuer]]\nname = \"django\"\nsecret = \"{SECRET}\"\nalgorithms = [\"HS256\"]\nuser_claim = \"uid\"\nname_claim = \"nickname\"\nrooms_claim = \"group_name\"\nrequire_exp = false\n{extra}"
    )
}

// --- A JWKS endpoint ---------------------------------------------------------------------------

struct Provider {
    keys: std::sync::Mutex<Vec<Value>>,
    fetches: AtomicUsize,
    down: AtomicBool,
    addr: std::sync::OnceLock<SocketAddr>,
}

async fn jwks(State(p): State<Arc<Provider>>) -> axum::response::Response {
    p.fetches.fetch_add(1, Ordering::SeqCst);
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys = p.keys.lock().expect("not poisoned").clone();
    ([("cache-control", "public, max-age=3600")], axum::Json(json!({ "keys": keys }))).into_response()
}

async fn discovery(State(p): State<Arc<Provider>>) -> axum::Json<Value> {
    let addr = p.addr.get().expect("bound");
    axum::Json(json!({ "issuer": format!("http://{addr}"), "jwks_uri": format!("http://{addr}/jwks") }))
}

async fn provider(kids: &[&str]) -> Arc<Provider> {
    let p = Arc::new(Provider {
        keys: std::sync::Mutex::new(kids.iter().map(|k| jwk(k)).collect()),
        fetches: AtomicUsize::new(0),
        down: AtomicBool::new(false),
        addr: std::sync::OnceLock::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    p.addr.set(listener.local_addr().expect("an address")).expect("set once");
    let router = axum::Router::new()
        .route("/jwks", axum::routing::get(jwks))
        .route("/.well-known/openid-configuration", axum::routing::get(discovery))
        .with_state(p.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    p
}

impl Provider {
    fn url(&self) -> String {
        format!("http://{}", self.addr.get().expect("bound"))
    }
}

fn sso_claims(sub: &str) -> Value {
    json!({ "iss": "https://sso.example", "aud": "confab", "sub": sub, "preferred_username": sub, "exp": now() + 600, "iat": now() })
}

fn sso_issuer(source: &str, extra: &str) -> String {
    format!("[[issuer]]\nname = \"sso\"\n{source}\nalgorithms = [\"RS256\", \"ES256\"]\niss = \"https://sso.example\"\naud = \"confab\"\n{extra}")
}

async fn me(app: &TestApp, token: &str) -> Value {
    body(app.get("/api/me", Some(token)).await).await
}

// --- Tests ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_token_signed_with_a_shared_key_like_the_seeds_connects_and_lands_in_its_group_room() {
    let app = app_trusting(&django_issuer("")).await;
    let room = unique("team");
    // Exactly the seeds' claims: no exp, no iat, an integer uid.
    let token = django(&json!({ "uid": 7, "nickname": "seed_ann", "group_name": room }));
    let mut ann = app.ws(&token).await;

    let (_, mut bob) = app.user_online("bob").await;
    let joined = bob.ok(join(&room)).await;
    assert!(joined.online.iter().any(|n| n == "seed_ann"), "ann was put in {room}: {:?}", joined.online);
    bob.ok(send(&room, "hello from confab")).await;
    let message = ann.next_notification("room.message").await;
    assert_eq!(message["text"], "hello from confab", "{message}");

    // The same token works on REST, for the same account, every time.
    let first = me(&app, &token).await;
    assert_eq!(first["username"], "seed_ann");
    let renamed = django(&json!({ "uid": 7, "nickname": "another_name", "group_name": room }));
    assert_eq!(me(&app, &renamed).await["id"], first["id"], "issuer + uid maps to one account, whose name never changes");
    assert_eq!(me(&app, &renamed).await["username"], "seed_ann");
    // It has no password: logging in as it fails like any wrong password.
    assert_eq!(app.login("seed_ann", PASSWORD).await.status().as_u16(), 401);
}

#[tokio::test]
async fn a_display_name_that_is_taken_or_invalid_is_made_unique_deterministically() {
    let app = app_trusting(&django_issuer("")).await;
    app.signup_and_login("taken_name").await;
    let taken = me(&app, &django(&json!({ "uid": "a1", "nickname": "taken_name" }))).await;
    let name = taken["username"].as_str().expect("a name").to_owned();
    assert!(name.starts_with("taken_name-") && name != "taken_name", "{name}");
    let odd = me(&app, &django(&json!({ "uid": "a2", "nickname": "Ann Smith!" }))).await;
    assert_eq!(odd["username"], "Ann_Smith");
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_through_a_jwks_and_through_discovery() {
    let idp = provider(&["rsa1", "ec1"]).await;
    let by_url = sso_issuer(&format!("jwks_url = \"{}/jwks\"", idp.url()), "");
    let app = app_trusting(&by_url).await;
    let rs = signed(Algorithm::RS256, "rsa1", &sso_claims("rs_user"));
    let es = signed(Algorithm::ES256, "ec1", &sso_claims("es_user"));
    assert_eq!(me(&app, &rs).await["username"], "rs_user");
    let mut socket = app.ws(&es).await;
    socket.ok(join(&unique("room"))).await;

    let discovered = app_trusting(&sso_issuer(&format!("discovery = \"{}\"", idp.url()), "")).await;
    assert_eq!(me(&discovered, &es).await["username"], "es_user");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_and_tokens_of_the_old_key_keep_working() {
    let idp = provider(&["rsa1"]).await;
    let app = app_trusting(&sso_issuer(&format!("jwks_url = \"{}/jwks\"", idp.url()), "jwks_refetch_secs = 0")).await;
    let old = signed(Algorithm::RS256, "rsa1", &sso_claims("old_key"));
    me(&app, &old).await;
    idp.keys.lock().expect("not poisoned").push(jwk("rsa2"));
    let new = signed(Algorithm::RS256, "rsa2", &sso_claims("new_key"));
    assert_eq!(me(&app, &new).await["username"], "new_key");
    assert_eq!(me(&app, &old).await["username"], "old_key");
    app.ws(&old).await;
}

#[tokio::test]
async fn with_the_jwks_endpoint_down_the_cached_keys_still_verify() {
    let idp = provider(&["ec1"]).await;
    let app = app_trusting(&sso_issuer(&format!("jwks_url = \"{}/jwks\"", idp.url()), "jwks_refetch_secs = 0")).await;
    let token = signed(Algorithm::ES256, "ec1", &sso_claims("cached"));
    me(&app, &token).await;
    idp.down.store(true, Ordering::SeqCst);
    // A new kid makes the server try the endpoint, which fails: the cache must survive it.
    let unknown = signed(Algorithm::ES256, "ec2", &sso_claims("nobody"));
    let refused = problem(app.get("/api/me", Some(&unknown)).await, 401).await;
    assert!(refused.detail.contains("key id"), "{}", refused.detail);
    let fetches = idp.fetches.load(Ordering::SeqCst);
    assert!(fetches >= 2, "the server asked the endpoint again ({fetches})");
    assert_eq!(me(&app, &token).await["username"], "cached");
    app.ws(&token).await;
}

#[tokio::test]
async fn a_flood_of_forged_key_ids_costs_at_most_one_extra_jwks_fetch() {
    let idp = provider(&["rsa1"]).await;
    // An hour between refetches: however slow the machine, the flood fits in one window.
    let app = app_trusting(&sso_issuer(&format!("jwks_url = \"{}/jwks\"", idp.url()), "jwks_refetch_secs = 3600")).await;
    me(&app, &signed(Algorithm::RS256, "rsa1", &sso_claims("real"))).await;
    for n in 0..30 {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(format!("forged-{n}"));
        let key = EncodingKey::from_rsa_pem(&fixture("rsa1.pem")).expect("a key");
        let forged = jsonwebtoken::encode(&header, &sso_claims("forger"), &key).expect("signed");
        problem(app.get("/api/me", Some(&forged)).await, 401).await;
    }
    let fetches = idp.fetches.load(Ordering::SeqCst);
    assert!(fetches <= 2, "{fetches} JWKS fetches for 30 forged key ids");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401_naming_the_rule_at_the_upgrade_and_on_rest() {
    let pem_issuer = format!(
        "[[issuer]]\nname = \"pem\"\npublic_key_file = \"{KEYS}/rsa1.pub.pem\"\nalgorithms = [\"RS256\"]\niss = \"https://pem.example\"\naud = \"confab\"\n"
    );
    let app = app_trusting(&format!("{}\n{pem_issuer}", django_issuer("").replace("require_exp = false", "require_exp = true\niss = \"django\"\naud = \"chat\""))).await;
    let good = json!({ "iss": "django", "aud": "chat", "uid": 1, "nickname": "good", "exp": now() + 600 });
    let with = |patch: Value| {
        let mut claims = good.clone();
        for (k, v) in patch.as_object().expect("an object") {
            if v.is_null() {
                claims.as_object_mut().expect("an object").remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };
    let part = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let rsa_public_as_secret = {
        let claims = json!({ "iss": "https://pem.example", "aud": "confab", "sub": "x", "exp": now() + 600 });
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&fixture("rsa1.pub.pem"))).expect("signed")
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", format!("{}.{}.", part(&json!({"alg": "none", "typ": "JWT"})), part(&good)), "alg none"),
        ("HS256 signed with the RSA public key", rsa_public_as_secret, "algorithm HS256"),
        ("another audience", django(&with(json!({ "aud": "someone-else" }))), "audience"),
        ("another issuer", django(&with(json!({ "iss": "evil" }))), "issuer"),
        ("expired", django(&with(json!({ "exp": now() - 60 }))), "expired"),
        ("not yet valid", django(&with(json!({ "nbf": now() + 600 }))), "not valid yet"),
        ("no exp", django(&with(json!({ "exp": null }))), "`exp`"),
        ("no user claim", django(&with(json!({ "uid": null }))), "user claim `uid`"),
        ("a wrong signature", jsonwebtoken::encode(&Header::new(Algorithm::HS256), &good, &EncodingKey::from_secret(&[7u8; 32])).expect("signed"), "signature"),
        ("oversized", django(&with(json!({ "pad": "x".repeat(9000) }))), "larger than"),
    ];
    for (case, token, reason) in cases {
        let rest = problem(app.get("/api/me", Some(&token)).await, 401).await;
        assert!(rest.detail.contains(reason), "{case}: REST said {:?}", rest.detail);
        assert!(!rest.detail.contains(&token[..20]), "{case}: the detail echoes the token");
        let (status, body) = app.ws_refused(app.ws_bearer_request(&token)).await;
        assert_eq!(status, 401, "{case}: {body}");
        let detail: Value = serde_json::from_str(&body).expect("a problem");
        assert!(detail["detail"].as_str().is_some_and(|d| d.contains(reason)), "{case}: the upgrade said {body}");
    }
    // The same rules hold for the subprotocol way of passing it.
    let mut request = app.ws_request();
    let expired = django(&with(json!({ "exp": now() - 60 })));
    request.headers_mut().insert("sec-websocket-protocol", format!("confab.v1, bearer.{expired}").parse().expect("a header"));
    assert_eq!(app.ws_refused(request).await.0, 401);
    // The good token passes both ways.
    assert_eq!(me(&app, &django(&good)).await["username"], "good");
}

#[tokio::test]
async fn a_token_with_exclusive_rooms_may_join_no_other_room() {
    let app = app_trusting(&django_issuer("rooms_claim_exclusive = true")).await;
    let (mine, other) = (unique("mine"), unique("other"));
    let mut ann = app.ws(&django(&json!({ "uid": 3, "nickname": "exclusive", "group_name": [mine.clone()] }))).await;
    ann.ok(join(&mine)).await;
    let err = ann.fail(join(&other)).await;
    assert_code(&err, -32003);
}

#[tokio::test]
async fn auth_refresh_takes_a_fresh_external_token_and_its_expiry_is_enforced() {
    let app = app_trusting(&django_issuer("")).await;
    let mut ann = app.ws(&django(&json!({ "uid": 9, "nickname": "refresher", "exp": now() + 600 }))).await;
    // Warned at once (the warning window is an hour), then closed with 4001 when it expires.
    // Short, yet long enough that the refresh lands before it (and its 5 s leeway) ends.
    let short = django(&json!({ "uid": 9, "nickname": "refresher", "exp": now() + 4 }));
    ann.ok(AuthRefreshParams { access_token: short }).await;
    ann.next_notification("session.expiring").await;
    assert_eq!(ann.expect_close().await, 4001);
    let mut other = app.ws(&django(&json!({ "uid": 10, "nickname": "someone", "exp": now() + 600 }))).await;
    let err = other.fail(AuthRefreshParams { access_token: django(&json!({ "uid": 9, "exp": now() + 600 })) }).await;
    assert_code(&err, -32003);
}

#[tokio::test]
async fn sign_up_can_be_turned_off() {
    let app = spawn_app_with(|c| c.signup = confab::config::Signup::Off).await;
    let refused = problem(app.signup("newcomer", PASSWORD).await, 403).await;
    assert!(refused.detail.contains("sign-up is turned off"), "{}", refused.detail);
}

#[tokio::test]
async fn a_bad_issuers_file_stops_the_start_naming_the_entry_and_the_field() {
    let dir = tempfile::tempdir().expect("a dir");
    let file = dir.path().join("issuers.toml");
    std::fs::write(&file, "[[issuer]]\nname = \"django\"\nsecret = \"too short\"\nalgorithms = [\"HS256\"]\n").expect("written");
    let mut config = confab::config::Config::for_tests(dir.path().join("data"));
    config.issuers_file = Some(file);
    let err = match confab::startup::Application::build(config).await {
        Ok(_) => panic!("the server started"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("issuer \"django\"") && err.contains("field `secret`") && !err.contains("too short"), "{err}");
}

#[tokio::test]
async fn a_pem_public_key_verifies_its_own_algorithm_and_a_mismatched_list_stops_the_start() {
    let pem = |algorithms: &str| {
        format!("[[issuer]]\nname = \"pem\"\npublic_key_file = \"{KEYS}/ec1.pub.pem\"\nalgorithms = [{algorithms}]\nname_claim = \"name\"\n")
    };
    let app = app_trusting(&pem("\"ES256\"")).await;
    let claims = json!({ "sub": "p1", "name": "pem_user", "exp": now() + 600 });
    assert_eq!(me(&app, &signed(Algorithm::ES256, "ec1", &claims)).await["username"], "pem_user");
    let other_key = problem(app.get("/api/me", Some(&signed(Algorithm::ES256, "ec2", &claims))).await, 401).await;
    assert!(other_key.detail.contains("signature"), "{}", other_key.detail);

    let dir = tempfile::tempdir().expect("a dir");
    let file = dir.path().join("issuers.toml");
    std::fs::write(&file, pem("\"ES256\", \"RS256\"")).expect("written");
    let mut config = confab::config::Config::for_tests(dir.path().join("data"));
    config.issuers_file = Some(file);
    let err = match confab::startup::Application::build(config).await {
        Ok(_) => panic!("the server started with RS256 for an EC key"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("issuer \"pem\"") && err.contains("field `algorithms`") && err.contains("P-256"), "{err}");
}

#[tokio::test]
async fn logging_out_with_an_issuers_token_closes_that_identitys_sockets() {
    let app = app_trusting(&django_issuer("")).await;
    let token = django(&json!({ "uid": "out-1", "nickname": "leaving" }));
    let mut first = app.ws(&token).await;
    let mut second = app.ws(&token).await;
    let other = django(&json!({ "uid": "out-2", "nickname": "staying" }));
    let mut stays = app.ws(&other).await;
    for socket in [&mut first, &mut second, &mut stays] {
        socket.ok(confab_shared::rpc::EchoParams { text: "live".into() }).await;
    }
    let response = app.post_json("/api/auth/logout", &json!({}), Some(&token)).await;
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(first.expect_close().await, 4003);
    assert_eq!(second.expect_close().await, 4003);
    stays.ok(confab_shared::rpc::EchoParams { text: "still here".into() }).await;
}

#[tokio::test]
async fn each_issuers_accepted_and_refused_tokens_are_counted_in_the_metrics() {
    let app = app_trusting(&django_issuer("")).await;
    me(&app, &django(&json!({ "uid": "m-1", "nickname": "counted" }))).await;
    let forged = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &json!({ "uid": "m-2" }), &EncodingKey::from_secret(b"another-key-of-at-least-32-bytes-long"))
        .expect("signing works");
    problem(app.get("/api/me", Some(&forged)).await, 401).await;
    let metrics = text(app.get("/metrics", None).await).await;
    assert!(metrics.contains("confab_issuer_tokens_total{issuer=\"django\",outcome=\"accepted\"} 1\n"), "{metrics}");
    assert!(metrics.contains("confab_issuer_tokens_total{issuer=\"django\",outcome=\"refused\"} 1\n"), "{metrics}");
    assert!(!metrics.contains("confab_issuer_key_fetches_total{issuer=\"django\""), "a shared key is never fetched");
}
