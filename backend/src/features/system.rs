//! Operational endpoints: health, metrics (the counters of [`crate::metrics`] and this
//! instance's gauges) and the API documents (`/api/openapi.json`,
//! `/api/asyncapi.json`, and the pages under `/api/docs`, see [`crate::docs`]).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use confab_shared::{Health, Status};

use crate::metrics::METRICS;
use crate::state::AppState;

pub fn router(docs_assets: &std::path::Path) -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/asyncapi.json", get(asyncapi_json))
        .route("/api/docs", get(docs_index))
        .route("/api/docs/", get(docs_index))
        .route("/api/docs/init.js", get(docs_init))
        .route("/api/docs/nav.css", get(|| async { css(crate::docs::NAV_CSS) }))
        .route("/api/docs/protocol.css", get(|| async { css(crate::docs::PROTOCOL_CSS) }))
        .route("/api/docs/protocol", get(docs_protocol))
        .route("/api/docs/protocol.md", get(docs_protocol_md))
        .nest_service("/api/docs/assets", tower_http::services::ServeDir::new(docs_assets))
        .route("/metrics", get(metrics))
}

/// Whether this instance and its dependencies are up.
#[utoipa::path(get, path = "/api/health", tag = "system",
    responses(
        (status = 200, description = "Everything is up", body = Health),
        (status = 503, description = "The database or the channel layer is down", body = Health),
    ))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let db = if state.db.ping().await { Status::Up } else { Status::Down };
    let channel_layer = if state.layer.is_up() { Status::Up } else { Status::Down };
    let ok = db == Status::Up && channel_layer == Status::Up;
    let body = Health { status: if ok { "ok" } else { "degraded" }.to_owned(), db, channel_layer };
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}

/// The OpenAPI document, identical to the committed `openapi/openapi.json`.
#[utoipa::path(get, path = "/api/openapi.json", tag = "system",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)))]
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::openapi_json())
}

/// The AsyncAPI 3.0 document of the WebSocket API, identical to the committed `openapi/asyncapi.json`.
#[utoipa::path(get, path = "/api/asyncapi.json", tag = "system",
    responses((status = 200, description = "The WebSocket API (AsyncAPI 3.0), generated from the same types", body = Object)))]
pub async fn asyncapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], crate::asyncapi::asyncapi_json())
}

/// The API documentation page: Swagger UI on `/api/openapi.json`, with vendored assets.
async fn docs_index(State(state): State<AppState>) -> impl IntoResponse {
    let dir = &state.config.docs_assets_dir;
    let vendored = crate::docs::SWAGGER_ASSETS.iter().all(|file| dir.join(file).is_file());
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], crate::docs::index_html(vendored))
}

/// A stylesheet of the docs pages.
fn css(text: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], text)
}

async fn docs_init() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], crate::docs::INIT_JS)
}

/// The WebSocket protocol reference, generated from the shared types.
async fn docs_protocol() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], crate::docs::protocol_html())
}

/// The same reference as Markdown, identical to the committed `docs/protocol.md`.
async fn docs_protocol_md() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], crate::docs::protocol_markdown())
}

/// `GET /metrics`: the process-wide counters, then this instance's gauges.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::with_capacity(1024);
    METRICS.render(&mut out);
    let _ = writeln!(
        out,
        "# HELP confab_connections Open WebSocket connections on this instance\n# TYPE confab_connections gauge\nconfab_connections {}",
        state.layer.hub().len()
    );
    // The hashing threads are this instance's, like the gauge above.
    let _ = writeln!(
        out,
        "# HELP confab_password_hashes_total Argon2 computations (hashes and verifications) run by this instance\n# TYPE confab_password_hashes_total counter\nconfab_password_hashes_total {}",
        state.hasher.runs()
    );
    let _ = writeln!(
        out,
        "# HELP confab_channel_layer_up Whether cross-instance delivery works\n# TYPE confab_channel_layer_up gauge\nconfab_channel_layer_up {}",
        u8::from(state.layer.is_up())
    );
    state.hooks.render_metrics(&mut out);
    state.issuers.render_metrics(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
