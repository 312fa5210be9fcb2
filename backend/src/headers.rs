//! Browser security headers, on every response.
//!
//! - `Content-Security-Policy`, one per kind of page:
//!   - the web app ([`spa_policy`]): scripts only from this origin, plus WebAssembly
//!     compilation and the inline scripts of `index.html` by their SHA-256 (read from the
//!     file being served, so a rebuilt SPA is covered without a restart); styles, images,
//!     fonts and connections (`fetch`, and the WebSocket: `'self'` covers `ws:`/`wss:` of this
//!     host) only from this origin; no plugins, no `<base>`, forms only to this origin;
//!   - the API documentation ([`DOCS_POLICY`]): Swagger UI's vendored files, its `data:`
//!     icons, and `fetch` of the OpenAPI document from this origin;
//!   - everything else, the API ([`API_POLICY`]): nothing at all, so a JSON answer opened
//!     as a page can run nothing.
//!
//!   Every policy forbids framing (`frame-ancestors 'none'`), as does `X-Frame-Options: DENY`
//!   for browsers that predate it.
//! - `X-Content-Type-Options: nosniff`: a file is what its `Content-Type` says.
//! - `Referrer-Policy: no-referrer`: room names and job ids in URLs never leave the site.
//! - `Strict-Transport-Security` when `CONFAB_HTTPS` says the server is reached over https.
//!   Confab never terminates TLS itself; browsers ignore the header over plain http anyway.
//!
//! A handler that sets a header of its own keeps it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

/// The policy of every API answer: nothing may load or run, nothing may frame it.
pub const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The policy of the pages under `/api/docs`: Swagger UI from this server (its icons are
/// `data:` images), the OpenAPI document fetched from this origin.
pub const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `max-age` of `Strict-Transport-Security`: one year, the usual minimum for preload lists.
pub const HSTS: &str = "max-age=31536000";

/// The web app's policy, with the hashes of the inline scripts it must allow.
pub fn spa_policy(inline_script_hashes: &[String]) -> String {
    let hashes: String = inline_script_hashes.iter().map(|hash| format!(" 'sha256-{hash}'")).collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self'; img-src 'self'; \
         font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The SHA-256 (base64) of every inline `<script>` of an HTML page: the text between the
/// opening tag and `</script>`, byte for byte, as browsers hash it.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<script").map(|i| at + i) {
        let Some(tag_end) = lower[start..].find('>').map(|i| start + i + 1) else { break };
        let Some(end) = lower[tag_end..].find("</script").map(|i| tag_end + i) else { break };
        let tag = &lower[start..tag_end];
        if !tag.contains(" src=") && !tag.contains("\tsrc=") && !tag.contains("\nsrc=") {
            hashes.push(STANDARD.encode(Sha256::digest(&html.as_bytes()[tag_end..end])));
        }
        at = end;
    }
    hashes
}

/// The web app's policy as last read from its `index.html`, re-read when the file changes.
struct SpaPolicy {
    index: PathBuf,
    /// The file's modification time when the policy was made, and the policy. A std mutex:
    /// held for a `stat` and, after a rebuild, one read of a small file; never across an await.
    current: Mutex<(Option<SystemTime>, HeaderValue)>,
}

impl SpaPolicy {
    fn new(static_dir: &Path) -> Self {
        let index = static_dir.join("index.html");
        let policy = Self { index, current: Mutex::new((None, HeaderValue::from_static(API_POLICY))) };
        policy.get();
        policy
    }

    /// The policy for the `index.html` on disk now.
    fn get(&self) -> HeaderValue {
        let modified = std::fs::metadata(&self.index).and_then(|m| m.modified()).ok();
        let Ok(mut current) = self.current.lock() else {
            return HeaderValue::from_static(API_POLICY);
        };
        if current.0 != modified || modified.is_none() {
            let hashes = std::fs::read_to_string(&self.index).map(|html| inline_script_hashes(&html)).unwrap_or_default();
            let value = HeaderValue::from_str(&spa_policy(&hashes)).unwrap_or_else(|_| HeaderValue::from_static(API_POLICY));
            *current = (modified, value);
        }
        current.1.clone()
    }
}

/// What [`set`] adds; one per router, cheap to clone.
#[derive(Clone)]
pub struct BrowserHeaders {
    spa: Arc<SpaPolicy>,
    https: bool,
}

impl BrowserHeaders {
    pub fn new(static_dir: &Path, https: bool) -> Self {
        Self { spa: Arc::new(SpaPolicy::new(static_dir)), https }
    }

    fn policy_for(&self, path: &str, headers: &HeaderMap) -> HeaderValue {
        if path == "/api/docs" || path.starts_with("/api/docs/") {
            HeaderValue::from_static(DOCS_POLICY)
        } else if path == "/api" || path.starts_with("/api/") || path == "/ws" || path == "/metrics" {
            HeaderValue::from_static(API_POLICY)
        } else if headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/html")) {
            self.spa.get()
        } else {
            // The app's other files (scripts, styles, images): a policy only governs documents,
            // and these are none; the last one read spares a `stat` per asset.
            self.spa.current.lock().map_or_else(|_| HeaderValue::from_static(API_POLICY), |c| c.1.clone())
        }
    }
}

/// Middleware: the headers above on every response.
pub async fn set(State(browser): State<BrowserHeaders>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let policy = browser.policy_for(&path, response.headers());
    let headers = response.headers_mut();
    let mut add = |name: HeaderName, value: HeaderValue| {
        headers.entry(name).or_insert(value);
    };
    add(header::CONTENT_SECURITY_POLICY, policy);
    add(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    add(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    add(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if browser.https {
        add(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_hashed_as_written_and_scripts_with_a_source_are_not() {
        let html = "<head><script>a()</script><script type=\"module\" src=\"/x.js\"></script>\
                    <SCRIPT type=\"module\">\n  b();\n</SCRIPT></head>";
        let expected: Vec<String> = ["a()", "\n  b();\n"].iter().map(|s| STANDARD.encode(Sha256::digest(s.as_bytes()))).collect();
        assert_eq!(inline_script_hashes(html), expected);
        assert!(inline_script_hashes("<p>no scripts</p>").is_empty());
        assert!(inline_script_hashes("<script>unterminated").is_empty());
    }

    #[test]
    fn the_app_policy_names_each_hash_and_keeps_everything_else_to_this_origin() {
        let policy = spa_policy(&["AAA=".to_owned(), "BBB=".to_owned()]);
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-AAA=' 'sha256-BBB=';"), "{policy}");
        for directive in ["default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"] {
            assert!(policy.contains(directive), "{directive}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline") && !policy.contains("'unsafe-eval'"), "{policy}");
    }
}
