//! How answers travel: the web app's files precompressed and cached by content hash
//! (`index.html` and the client-side routes revalidated), REST answers compressed above a
//! threshold, and what is never compressed (small answers, the WebSocket upgrade).

use std::path::Path;

use confab_shared::rpc::EchoParams;
use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};

use crate::helpers::{TestApp, header, spawn_app, spawn_app_with, within};

const ASSET: &str = "/assets/confab_frontend-0123456789abcdef.js";
const INDEX: &str = "<!doctype html><title>Confab</title>";

/// A static dir laid out as `frontend/build.sh` lays it out. The `.br` and `.gz` files hold
/// markers instead of compressed bytes: what matters is which file was chosen.
fn write_static_dir(dir: &Path) {
    let assets = dir.join("assets");
    std::fs::create_dir_all(&assets).expect("the assets dir is created");
    let asset = assets.join("confab_frontend-0123456789abcdef.js");
    for (path, content) in [
        (dir.join("index.html"), INDEX),
        (dir.join("index.html.br"), "index as brotli"),
        (dir.join("index.html.gz"), "index as gzip"),
        (asset.clone(), "export default function init() {}"),
        (asset.with_extension("js.br"), "js as brotli"),
        (asset.with_extension("js.gz"), "js as gzip"),
    ] {
        std::fs::write(path, content).expect("a static file is written");
    }
}

async fn spawn_with_static_dir() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary static dir");
    write_static_dir(dir.path());
    let static_dir = dir.path().to_path_buf();
    let app = spawn_app_with(|config| config.static_dir = static_dir).await;
    (app, dir)
}

/// `GET path` with this `Accept-Encoding` (none at all for `None`).
async fn get(app: &TestApp, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(app.url(path));
    if let Some(accept) = accept {
        request = request.header(ACCEPT_ENCODING, accept);
    }
    within(&format!("GET {path}"), request.send()).await.expect("the request reaches the server")
}

async fn bytes(response: reqwest::Response) -> Vec<u8> {
    within("the body", response.bytes()).await.expect("the body arrives").to_vec()
}

#[tokio::test]
async fn an_asset_is_sent_precompressed_as_the_client_accepts_and_cached_for_a_year() {
    let (app, _dir) = spawn_with_static_dir().await;

    for (accept, encoding, content) in [
        (Some("gzip, deflate, br, zstd"), Some("br"), "js as brotli"),
        (Some("gzip"), Some("gzip"), "js as gzip"),
        (Some("identity"), None, "export default function init() {}"),
        (None, None, "export default function init() {}"),
    ] {
        let response = get(&app, ASSET, accept).await;
        assert_eq!(response.status().as_u16(), 200, "Accept-Encoding {accept:?}");
        assert_eq!(header(&response, CONTENT_ENCODING).as_deref(), encoding, "Accept-Encoding {accept:?}");
        assert_eq!(header(&response, VARY).as_deref(), Some("accept-encoding"), "caches must key on the encoding");
        assert_eq!(header(&response, CACHE_CONTROL).as_deref(), Some("public, max-age=31536000, immutable"));
        assert!(header(&response, CONTENT_TYPE).is_some_and(|t| t.contains("javascript")), "the type of the file, not of the encoding");
        assert_eq!(bytes(response).await, content.as_bytes(), "Accept-Encoding {accept:?}");
    }
}

#[tokio::test]
async fn index_html_and_every_client_side_route_are_revalidated_on_each_load() {
    let (app, _dir) = spawn_with_static_dir().await;

    for path in ["/", "/index.html", "/login", "/rooms/general", "/dm/ann"] {
        let response = get(&app, path, Some("br, gzip")).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(header(&response, CACHE_CONTROL).as_deref(), Some("no-cache"), "{path}");
        assert_eq!(header(&response, CONTENT_ENCODING).as_deref(), Some("br"), "{path}");
        assert!(header(&response, CONTENT_TYPE).is_some_and(|t| t.starts_with("text/html")), "{path}");
        assert_eq!(bytes(response).await, b"index as brotli", "{path}");
    }
    let plain = get(&app, "/rooms/general", None).await;
    assert_eq!(header(&plain, CONTENT_ENCODING), None);
    assert_eq!(bytes(plain).await, INDEX.as_bytes());
}

#[tokio::test]
async fn an_asset_of_another_build_is_not_found_and_not_cached() {
    let (app, _dir) = spawn_with_static_dir().await;

    let response = get(&app, "/assets/confab_frontend-ffffffffffffffff.js", Some("br")).await;

    // Not index.html with a 200: a module import would fail with a confusing MIME error.
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(header(&response, CACHE_CONTROL), None);
}

#[tokio::test]
async fn a_large_rest_answer_is_compressed_for_clients_that_accept_it() {
    let app = spawn_app().await;

    let brotli = get(&app, "/api/openapi.json", Some("br;q=1, gzip;q=0.5")).await;
    let gzip = get(&app, "/api/openapi.json", Some("gzip")).await;
    let plain = get(&app, "/api/openapi.json", None).await;

    assert_eq!(header(&brotli, CONTENT_ENCODING).as_deref(), Some("br"));
    assert_eq!(header(&brotli, VARY).as_deref(), Some("accept-encoding"));
    assert_eq!(header(&gzip, CONTENT_ENCODING).as_deref(), Some("gzip"));
    assert_eq!(header(&plain, CONTENT_ENCODING), None);
    let gzip = bytes(gzip).await;
    assert_eq!(gzip[..2], [0x1f, 0x8b], "a gzip stream");
    let plain = bytes(plain).await;
    serde_json::from_slice::<serde_json::Value>(&plain).expect("identity is plain JSON");
    assert!(gzip.len() * 3 < plain.len(), "{} bytes gzipped of {}", gzip.len(), plain.len());
    assert!(bytes(brotli).await.len() < plain.len());
}

#[tokio::test]
async fn a_small_rest_answer_is_sent_as_it_is() {
    let app = spawn_app().await;

    let response = get(&app, "/api/health", Some("br, gzip")).await;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, CONTENT_ENCODING), None, "below compression::MIN_BYTES");
    serde_json::from_slice::<serde_json::Value>(&bytes(response).await).expect("plain JSON");
}

#[tokio::test]
async fn a_websocket_upgrade_from_a_browser_that_accepts_compression_works_uncompressed() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&crate::helpers::unique("ann")).await;
    let mut request = app.ws_bearer_request(&ann.access_token);
    // Browsers send their usual Accept-Encoding on the upgrade request too.
    request.headers_mut().insert(ACCEPT_ENCODING.as_str(), "gzip, deflate, br, zstd".parse().expect("a header value"));

    let mut ws = crate::helpers::WsClient::connect(app.addr, request).await.expect("the upgrade succeeds");

    let echoed = ws.ok(EchoParams { text: "hi".into() }).await;
    assert_eq!(echoed.text, "hi");
}
