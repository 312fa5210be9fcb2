//! The single-page app's files, served the way a phone on a slow network wants them.
//!
//! `frontend/build.sh` lays out the static dir as
//!
//! ```text
//! index.html  favicon.svg            revalidated on every load (`no-cache`)
//! assets/<name>-<content hash>.<ext>  WASM, JS, CSS: cached for a year (`immutable`)
//! ```
//!
//! with a `.br` and a `.gz` next to every text and WASM file. [`ServeDir`] picks the variant
//! the request's `Accept-Encoding` allows (brotli first), sets `Content-Encoding` and
//! `Vary: Accept-Encoding`, and sends the file as it is to a client that asks for nothing.
//! A new build names its assets anew and `index.html` points at them, so a cached asset is
//! never stale; `index.html` itself (and every client-side route, which serves it too) is
//! revalidated each time, cheaply (`ETag` / `Last-Modified` give a 304).

use std::path::Path;

use axum::Router;
use axum::http::{HeaderValue, Response, StatusCode, header};
use tower::ServiceBuilder;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// Where the content-hashed assets live, under the static dir and in URLs.
pub const ASSETS_PATH: &str = "/assets";
/// A content-hashed asset never changes under its name.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `index.html` may be cached but must be revalidated: it names the current assets.
pub const REVALIDATE: &str = "no-cache";

/// `/assets/*` from `static_dir/assets`, and everything else from `static_dir` with
/// `index.html` for any path that is not a file (the SPA's client-side routes).
pub fn router<S: Clone + Send + Sync + 'static>(static_dir: &Path) -> Router<S> {
    let index = static_dir.join("index.html");
    if !index.exists() {
        tracing::warn!(path = %index.display(), "the SPA is not built (run `just build-spa`); only the API is served");
    }
    // No fallback here: an asset of an older build is a 404, not index.html with a 200.
    let assets = ServeDir::new(static_dir.join(ASSETS_PATH.trim_start_matches('/')))
        .precompressed_br()
        .precompressed_gzip();
    let pages = ServeDir::new(static_dir)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(ServeFile::new(index).precompressed_br().precompressed_gzip());
    Router::new()
        .nest_service(
            ASSETS_PATH,
            ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, immutable))
                .service(assets),
        )
        .fallback_service(
            ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, revalidate))
                .service(pages),
        )
}

fn immutable<B>(response: &Response<B>) -> Option<HeaderValue> {
    when_found(response, IMMUTABLE)
}

fn revalidate<B>(response: &Response<B>) -> Option<HeaderValue> {
    when_found(response, REVALIDATE)
}

/// `policy` for a file that was found (or not modified); nothing for a 404, which must not
/// be cached for a year should the file appear later.
fn when_found<B>(response: &Response<B>, policy: &'static str) -> Option<HeaderValue> {
    let status = response.status();
    (status.is_success() || status == StatusCode::NOT_MODIFIED).then(|| HeaderValue::from_static(policy))
}
