//! Operational endpoints: health and the API documents.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use confab_shared::{Health, Status};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi_json))
        .route("/metrics", get(crate::metrics::handler))
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
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::openapi_json())
}
