//! API tokens over REST: `POST /api/tokens` mints one (its secret shown once),
//! `GET /api/tokens` lists the caller's, `DELETE /api/tokens/{id}` revokes one and closes
//! every socket opened with it (4003) on every instance. All three need a login: a token
//! cannot mint, list or revoke tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use confab_shared::moderation::ModerationAction;
use confab_shared::rpc::close;
use confab_shared::tokens::{MAX_TOKEN_DAYS, MAX_TOKEN_NAME_CHARS};
use confab_shared::{ApiToken, ApiTokenCreated, CreateApiToken, Problem, Scope, Timestamp};

use crate::auth::api_tokens;
use crate::auth::extract::LoginUser;
use crate::auth::scopes::Scopes;
use crate::error::{AppError, AppResult};
use crate::http::ApiJson;
use crate::layer::{Delivery, group};
use crate::state::AppState;
use crate::storage::Db;
use crate::storage::moderation::Audit;
use crate::storage::entity::api_tokens as token_entity;
use crate::storage::{api_tokens as store, users};

/// Most tokens one user may hold.
pub const MAX_TOKENS_PER_USER: u64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tokens", get(list_tokens).post(create_token))
        .route("/api/tokens/{id}", delete(revoke_token))
}

/// 403 of the routes only a login may use (an API token asked).
#[derive(utoipa::IntoResponses)]
#[response(status = 403, description = "Asked with an API token", content_type = "application/problem+json")]
pub struct LoginOnly(pub Problem);

/// Create an API token for the caller; the secret is in this answer only.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", security(("bearer" = [])), request_body = CreateApiToken,
    responses(
        (status = 201, description = "Created; `token` is shown only here", body = ApiTokenCreated),
        (status = 403, description = "Asked with an API token, or `publish` asked by a non-admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller already has 50 tokens", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, scopes or lifetime", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_token(
    State(state): State<AppState>,
    LoginUser(caller): LoginUser,
    ApiJson(body): ApiJson<CreateApiToken>,
) -> AppResult<(StatusCode, Json<ApiTokenCreated>)> {
    let audit = caller.is_admin.then(|| {
        let mut entry = super::moderation::audit::entry(&state, &caller, ModerationAction::Token);
        entry.detail = Some(format!("created {:?} with {}", body.name.trim(), Scopes::of(&body.scopes).to_list()));
        entry
    });
    let (token, row) = mint(&state.db, caller.user_id, caller.is_admin, &body, audit.as_ref()).await?;
    tracing::info!(user = %caller.username, token_id = row.id, scopes = %row.scopes, "API token created");
    Ok((StatusCode::CREATED, Json(created(row, token))))
}

/// Validates a request and stores a new token: the secret and the stored row. Shared with
/// `confab token create`.
pub async fn mint(db: &Db, user_id: i64, is_admin: bool, body: &CreateApiToken, audit: Option<&Audit>) -> AppResult<(String, token_entity::Model)> {
    // As the schema states it: the name as sent is 1 to 64 characters without control
    // characters and not all blank; it is stored trimmed.
    let name = body.name.trim();
    if name.is_empty() || body.name.chars().count() > MAX_TOKEN_NAME_CHARS || body.name.chars().any(char::is_control) {
        return Err(AppError::invalid("name", "must be 1 to 64 characters, not all blank, without control characters"));
    }
    if body.scopes.is_empty() {
        return Err(AppError::invalid("scopes", "name at least one scope: read, write, publish"));
    }
    let scopes = Scopes::of(&body.scopes);
    if scopes.contains(Scope::Publish) && !is_admin {
        return Err(AppError::Forbidden("only an admin's token can have the publish scope"));
    }
    let expires_at = match body.expires_in_days {
        None => None,
        Some(days @ 1..=MAX_TOKEN_DAYS) => Some(crate::storage::now_ms() + i64::from(days) * 86_400_000),
        Some(_) => return Err(AppError::invalid("expires_in_days", "must be 1 to 3650")),
    };
    if store::count_of_user(db, user_id).await? >= MAX_TOKENS_PER_USER {
        return Err(AppError::Conflict("at most 50 API tokens per user: revoke one first"));
    }
    let (token, token_hash) = api_tokens::mint();
    let list = scopes.to_list();
    let row = store::create(db, store::NewToken { user_id, name, scopes: &list, token_hash: &token_hash, expires_at }, audit).await?;
    Ok((token, row))
}

/// The caller's API tokens, oldest first, without their secrets.
#[utoipa::path(get, path = "/api/tokens", tag = "tokens", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's tokens", body = [ApiToken]),
        LoginOnly,
    ))]
pub async fn list_tokens(State(state): State<AppState>, LoginUser(caller): LoginUser) -> AppResult<Json<Vec<ApiToken>>> {
    let rows = store::of_user(&state.db, caller.user_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|mut row| {
                // Uses not yet written by this instance's coalescing flusher.
                row.last_used_at = row.last_used_at.max(state.token_usage.pending(row.id));
                listed(row)
            })
            .collect(),
    ))
}

/// Revoke one of the caller's API tokens: it stops working at once, and every socket
/// opened with it closes with 4003 on every instance.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        LoginOnly,
        (status = 404, description = "No such token of the caller's", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_token(State(state): State<AppState>, LoginUser(caller): LoginUser, Path(id): Path<String>) -> AppResult<StatusCode> {
    let id = super::path_id(&id, "token")?;
    let audit = caller.is_admin.then(|| {
        let mut entry = super::moderation::audit::entry(&state, &caller, ModerationAction::Token);
        (entry.target, entry.detail) = (Some(format!("token {id}")), Some("revoked".to_owned()));
        entry
    });
    if !store::delete(&state.db, caller.user_id, id, audit.as_ref()).await? {
        return Err(AppError::NotFound("token"));
    }
    close_token_sockets(&state, id);
    tracing::info!(user = %caller.username, token_id = id, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Closes every socket opened with token `id`, on every instance, with 4003.
pub fn close_token_sockets(state: &AppState, id: i64) {
    if let Err(err) = state.layer.group_send(&group::token(id), Delivery::Close { code: close::LOGGED_OUT }) {
        // Local sockets were closed by the hub; remote ones keep running until they close,
        // but every new request and upgrade with the token is refused already.
        tracing::warn!(%err, token_id = id, "could not broadcast the token's revocation");
    }
}

fn listed(row: token_entity::Model) -> ApiToken {
    ApiToken {
        id: row.id,
        name: row.name,
        scopes: Scopes::parse_list(&row.scopes).to_vec(),
        created_at: Timestamp::from_millis(row.created_at),
        expires_at: row.expires_at.map(Timestamp::from_millis),
        last_used_at: row.last_used_at.map(Timestamp::from_millis),
    }
}

fn created(row: token_entity::Model, token: String) -> ApiTokenCreated {
    let t = listed(row);
    ApiTokenCreated { id: t.id, name: t.name, scopes: t.scopes, token, created_at: t.created_at, expires_at: t.expires_at, last_used_at: t.last_used_at }
}

/// `confab token create`: mints a token for `username` straight in the database.
pub async fn create_for(db: &Db, username: &str, body: &CreateApiToken) -> anyhow::Result<ApiTokenCreated> {
    let user = users::by_name(db, username).await?.ok_or_else(|| anyhow::anyhow!("no user named {username}"))?;
    let (token, row) = mint(db, user.id, user.is_admin, body, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(created(row, token))
}
