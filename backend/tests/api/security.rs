//! What the server does for its users' safety beyond the API's own rules: the browser
//! security headers on every answer, the web app's refresh token in an `HttpOnly` cookie
//! guarded against cross-site requests, and owner-only files.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use base64::Engine as _;
use confab_shared::{Credentials, SessionTokens, TokenPair, User};
use reqwest::header::{CONTENT_SECURITY_POLICY, SET_COOKIE};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::helpers::{PASSWORD, TestApp, body, header, problem, spawn_app, spawn_app_with, unique, within};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|err| panic!("{}: {err}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn a_new_data_dir_is_owner_only_and_so_are_the_database_its_journal_and_the_jwt_secret() {
    // A data dir that does not exist yet, under the test's own temporary folder.
    let app = spawn_app_with(|config| config.data_dir = config.data_dir.join("fresh/data")).await;
    // A write, so SQLite has its write-ahead log and shared-memory files.
    app.signup_and_login(&unique("perm")).await;
    let dir = &app.config.data_dir;
    assert_eq!(mode(dir), 0o700, "the data dir");
    assert_eq!(mode(&dir.join("jwt_secret")), 0o600, "the generated JWT secret");
    if app.config.database_url.is_none() {
        for file in ["confab.db", "confab.db-wal", "confab.db-shm"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------

const BOOT: &str = "document.documentElement.dataset.boot = 'app';";
const START: &str = "\n      import init from '/assets/app.js';\n      init();\n    ";

fn index_html(boot: &str) -> String {
    format!(
        "<!doctype html><html><head><script>{boot}</script><script type=\"module\" src=\"/assets/x.js\"></script></head>\
         <body><script type=\"module\">{START}</script></body></html>"
    )
}

fn sha256(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

async fn spawn_with_index(html: &str) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary static dir");
    std::fs::write(dir.path().join("index.html"), html).expect("index.html is written");
    let static_dir = dir.path().to_path_buf();
    let app = spawn_app_with(|config| config.static_dir = static_dir).await;
    (app, dir)
}

fn csp(response: &reqwest::Response) -> String {
    header(response, CONTENT_SECURITY_POLICY.as_str()).unwrap_or_else(|| panic!("{} has no Content-Security-Policy", response.url()))
}

#[tokio::test]
async fn every_answer_carries_the_browser_security_headers_and_the_policy_of_its_kind() {
    let (app, _dir) = spawn_with_index(&index_html(BOOT)).await;
    let pages = ["/", "/login", "/rooms/general", "/assets/missing.js", "/api/health", "/api/docs", "/api/docs/protocol", "/api/nope", "/ws"];
    for path in pages {
        let response = app.get(path, None).await;
        assert_eq!(header(&response, "x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        assert_eq!(header(&response, "referrer-policy").as_deref(), Some("no-referrer"), "{path}");
        assert_eq!(header(&response, "x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(header(&response, "strict-transport-security"), None, "{path}: no HSTS over plain http unless configured");
        let policy = csp(&response);
        assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe-inline") && !policy.contains("'unsafe-eval'"), "{path}: {policy}");
    }
    let app_policy = csp(&app.get("/rooms/general", None).await);
    let scripts = format!("script-src 'self' 'wasm-unsafe-eval' 'sha256-{}' 'sha256-{}';", sha256(BOOT), sha256(START));
    assert!(app_policy.contains(&scripts), "the inline scripts by their hashes, the sourced one not: {app_policy}");
    for directive in ["default-src 'self'", "object-src 'none'", "base-uri 'none'", "connect-src 'self'", "style-src 'self'"] {
        assert!(app_policy.contains(directive), "{directive}: {app_policy}");
    }
    assert!(csp(&app.get("/api/health", None).await).starts_with("default-src 'none'"));
    let docs = csp(&app.get("/api/docs", None).await);
    assert!(docs.contains("script-src 'self';") && docs.contains("img-src 'self' data:"), "{docs}");
    // The docs pages have no inline style or script for that policy to refuse.
    for page in ["/api/docs", "/api/docs/protocol"] {
        let html = app.get(page, None).await.text().await.expect("a page");
        assert!(!html.contains("<style") && !html.contains("<script>") && !html.contains(" style="), "{page}: {html}");
    }
    for sheet in ["/api/docs/nav.css", "/api/docs/protocol.css"] {
        let response = app.get(sheet, None).await;
        assert_eq!(response.status().as_u16(), 200, "{sheet}");
        assert!(header(&response, "content-type").is_some_and(|t| t.starts_with("text/css")), "{sheet}");
    }
}

#[tokio::test]
async fn a_rebuilt_app_is_served_with_the_hashes_of_its_new_inline_scripts() {
    let (app, dir) = spawn_with_index(&index_html(BOOT)).await;
    assert!(csp(&app.get("/", None).await).contains(&sha256(BOOT)));
    let rebuilt = "document.documentElement.dataset.boot = 'login';";
    let index = dir.path().join("index.html");
    std::fs::write(&index, index_html(rebuilt)).expect("index.html is rewritten");
    // A later modification time, whatever the file system's clock resolution.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(&index).and_then(|f| f.set_modified(later)).expect("mtime set");
    let policy = csp(&app.get("/", None).await);
    assert!(policy.contains(&sha256(rebuilt)) && !policy.contains(&sha256(BOOT)), "{policy}");
}

#[tokio::test]
async fn hsts_is_sent_when_the_server_is_reached_over_https() {
    let app = spawn_app_with(|config| config.https = true).await;
    for path in ["/", "/api/health"] {
        assert_eq!(header(&app.get(path, None).await, "strict-transport-security").as_deref(), Some("max-age=31536000"), "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// The web app's cookie session
// ---------------------------------------------------------------------------------------------

/// A POST to one of the cookie routes, with the CSRF header unless `forged`, and a cookie.
async fn session_post(app: &TestApp, path: &str, cookie: Option<&str>, body: Option<&Credentials>, forged: bool) -> reqwest::Response {
    let mut request = app.http.post(app.url(path));
    if !forged {
        request = request.header("Confab-CSRF", "1");
    }
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("confab_refresh={cookie}"));
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    within(&format!("POST {path}"), request.send()).await.expect("the request reaches the server")
}

/// The `confab_refresh` cookie a response sets: its value and its attributes.
fn set_cookie(response: &reqwest::Response) -> (String, String) {
    let raw = response.headers().get(SET_COOKIE).expect("a Set-Cookie header").to_str().expect("ASCII").to_owned();
    let (pair, attributes) = raw.split_once(';').unwrap_or((&raw, ""));
    let value = pair.strip_prefix("confab_refresh=").unwrap_or_else(|| panic!("not the refresh cookie: {raw}"));
    (value.to_owned(), attributes.trim().to_owned())
}

fn credentials(username: &str) -> Credentials {
    Credentials { username: username.to_owned(), password: PASSWORD.to_owned() }
}

/// Logs a new account in as the web app does; returns the cookie's token and the answer.
async fn web_login(app: &TestApp, name: &str) -> (String, SessionTokens) {
    assert_eq!(app.signup(name, PASSWORD).await.status().as_u16(), 201);
    let login = session_post(app, "/api/auth/session", None, Some(&credentials(name)), false).await;
    assert_eq!(login.status().as_u16(), 200);
    let (cookie, _) = set_cookie(&login);
    (cookie, body(login).await)
}

async fn me_status(app: &TestApp, access_token: &str) -> u16 {
    app.get("/api/me", Some(access_token)).await.status().as_u16()
}

#[tokio::test]
async fn the_web_apps_session_keeps_its_refresh_token_in_an_http_only_cookie_that_rotates() {
    let app = spawn_app().await;
    let name = unique("web");
    assert_eq!(app.signup(&name, PASSWORD).await.status().as_u16(), 201);

    let login = session_post(&app, "/api/auth/session", None, Some(&credentials(&name)), false).await;
    assert_eq!(login.status().as_u16(), 200);
    let (first, attributes) = set_cookie(&login);
    assert_eq!(attributes, "Path=/api/auth/session; HttpOnly; SameSite=Strict; Max-Age=2592000", "no Secure over plain http");
    assert_eq!(header(&login, "cache-control").as_deref(), Some("no-store"));
    let raw: Value = body(login).await;
    assert!(raw.get("refresh_token").is_none(), "the body never holds the refresh token: {raw}");
    let session: SessionTokens = serde_json::from_value(raw).expect("session tokens");
    assert_eq!(session.user.username, name);
    assert_eq!(me_status(&app, &session.access_token).await, 200);

    let refreshed = session_post(&app, "/api/auth/session/refresh", Some(&first), None, false).await;
    assert_eq!(refreshed.status().as_u16(), 200);
    let (second, _) = set_cookie(&refreshed);
    assert_ne!(second, first, "the refresh token rotates");
    let renewed: SessionTokens = body(refreshed).await;
    assert_eq!(me_status(&app, &renewed.access_token).await, 200);

    // The cookie's token is an ordinary refresh token of the session: reusing the spent one
    // revokes the session, and the answer deletes the cookie.
    let reused = session_post(&app, "/api/auth/session/refresh", Some(&first), None, false).await;
    let (cleared, attributes) = set_cookie(&reused);
    assert_eq!((cleared.as_str(), attributes.contains("Max-Age=0")), ("", true));
    problem(reused, 401).await;
    assert_eq!(me_status(&app, &renewed.access_token).await, 401, "the reuse revoked the session");
    problem(session_post(&app, "/api/auth/session/refresh", Some(&second), None, false).await, 401).await;
}

#[tokio::test]
async fn the_cookie_routes_refuse_requests_without_the_csrf_header() {
    let app = spawn_app().await;
    let name = unique("web");
    let (cookie, session) = web_login(&app, &name).await;
    let forged = session_post(&app, "/api/auth/session", None, Some(&credentials(&name)), true).await;
    assert!(forged.headers().get(SET_COOKIE).is_none());
    assert_eq!(problem(forged, 403).await.kind, "/problems/forbidden");

    // A form of another site (no header): neither a refresh nor a logout happens.
    problem(session_post(&app, "/api/auth/session/refresh", Some(&cookie), None, true).await, 403).await;
    problem(session_post(&app, "/api/auth/session/logout", Some(&cookie), None, true).await, 403).await;
    assert_eq!(me_status(&app, &session.access_token).await, 200);
    let refreshed = session_post(&app, "/api/auth/session/refresh", Some(&cookie), None, false).await;
    assert_eq!(refreshed.status().as_u16(), 200, "the cookie was not spent by the refused requests");
    // Without any cookie: 401, and whatever cookie the browser might hold is deleted.
    let none = session_post(&app, "/api/auth/session/refresh", None, None, false).await;
    assert_eq!(set_cookie(&none).0, "");
    problem(none, 401).await;
}

#[tokio::test]
async fn logging_out_by_the_cookie_needs_no_access_token_and_revokes_only_that_session() {
    let app = spawn_app().await;
    let name = unique("web");
    let (cookie, session) = web_login(&app, &name).await;
    // Another session of the same user (a program) is not touched.
    let program: TokenPair = app.login_ok(&name).await;
    let mut socket = app.ws(&session.access_token).await;

    let out = session_post(&app, "/api/auth/session/logout", Some(&cookie), None, false).await;
    assert_eq!(out.status().as_u16(), 204);
    assert_eq!(set_cookie(&out).0, "", "the cookie is deleted");
    assert_eq!(socket.expect_close().await, 4003, "the session's sockets close");
    assert_eq!(me_status(&app, &session.access_token).await, 401);
    problem(session_post(&app, "/api/auth/session/refresh", Some(&cookie), None, false).await, 401).await;
    let me: User = body(app.get("/api/me", Some(&program.access_token)).await).await;
    assert_eq!(me.username, name);
    // Logging out twice, or with no cookie, is no error.
    assert_eq!(session_post(&app, "/api/auth/session/logout", Some(&cookie), None, false).await.status().as_u16(), 204);
    assert_eq!(session_post(&app, "/api/auth/session/logout", None, None, false).await.status().as_u16(), 204);
}

#[tokio::test]
async fn the_refresh_cookie_is_secure_when_the_server_is_reached_over_https() {
    let app = spawn_app_with(|config| config.https = true).await;
    let name = unique("web");
    assert_eq!(app.signup(&name, PASSWORD).await.status().as_u16(), 201);
    let login = session_post(&app, "/api/auth/session", None, Some(&credentials(&name)), false).await;
    assert!(set_cookie(&login).1.ends_with("; Secure"), "{:?}", set_cookie(&login));
}
