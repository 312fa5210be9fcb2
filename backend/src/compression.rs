//! Compression of REST responses (brotli or gzip, as the client's `Accept-Encoding` says).
//!
//! Applied to the REST routes only. The SPA's files are compressed once at build time (see
//! [`crate::spa`]), and the WebSocket is not compressed at all: its frames are small and
//! each one is written to every subscriber, so per-message deflate would cost CPU on every
//! delivery for a few bytes saved.

use axum::http::{Response, StatusCode, header};
use axum::body::HttpBody as Body;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};

/// Below this, compressing saves less than the encoding costs (headers, CPU, a round of
/// buffering): most single-object answers (a token pair, a health check) stay as they are.
pub const MIN_BYTES: u64 = 1024;

/// The layer: brotli (quality 4, tower-http's default for on-the-fly) or gzip, when
/// [`Worthwhile`] says so.
pub fn layer() -> CompressionLayer<Worthwhile> {
    CompressionLayer::new().compress_when(Worthwhile)
}

/// Which responses to compress: bodies of at least [`MIN_BYTES`], except images, event
/// streams, protocol switches (a WebSocket upgrade has no body to compress) and file
/// downloads (`Content-Disposition`), which keep their `Content-Length` so a client can show
/// progress, and cost no server CPU per download.
#[derive(Clone, Copy, Debug, Default)]
pub struct Worthwhile;

impl Predicate for Worthwhile {
    fn should_compress<B: Body>(&self, response: &Response<B>) -> bool {
        response.status() != StatusCode::SWITCHING_PROTOCOLS
            && !response.headers().contains_key(header::CONTENT_DISPOSITION)
            && SizeAbove::new(MIN_BYTES).should_compress(response)
            && NotForContentType::IMAGES.should_compress(response)
            && NotForContentType::SSE.should_compress(response)
    }
}
