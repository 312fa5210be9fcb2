//! `/api/auth/*` and `/api/me`.
//!
//! Login and sign-up do the cheap checks in the order that keeps a flood cheap: the body's
//! rules (422: a malformed name never becomes a throttle key or a log line), then the
//! throttle (429, counted before any hash), then the database (a taken name is 409 without a
//! hash), and only then a hashing thread (bounded; 503 when full).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_shared::rpc::close;
use confab_shared::{Credentials, Problem, RefreshRequest, TokenPair, User, validate};

use super::extract::{AuthUser, LoginUser};
use super::token;
use crate::client_ip::ClientIp;
use crate::error::{AppError, AppResult};
use crate::http::ApiJson;
use crate::layer::{Delivery, group};
use crate::state::AppState;
use crate::storage::{StorageError, sessions, users};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/signup", post(signup))
        .route("/api/auth/login", post(login))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/me", get(me))
        .merge(super::cookie::router())
        .merge(super::oidc::router())
}

/// Create an account.
#[utoipa::path(post, path = "/api/auth/signup", tag = "auth", request_body = Credentials,
    responses(
        (status = 201, description = "Account created", body = User),
        (status = 403, description = "Sign-up is turned off on this server (`CONFAB_SIGNUP=off`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid username or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many sign-ups from this address; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Password hashing at capacity; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    client: ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> AppResult<(StatusCode, Json<User>)> {
    if state.config.signup == crate::config::Signup::Off {
        return Err(AppError::Forbidden("sign-up is turned off on this server; accounts come from the team's own sign-in"));
    }
    let username = validate::username(&body.username).map_err(|m| AppError::invalid("username", m))?;
    validate::password(&body.password).map_err(|m| AppError::invalid("password", m))?;
    let address = client.bucket();
    state.throttle.signup_attempt(address).await.map_err(AppError::rate_limited)?;
    // Racing sign-ups for one new name can both get past this; the insert decides (409).
    if users::by_name(&state.db, username).await?.is_some() {
        return Err(AppError::Conflict("username is taken"));
    }
    let hash = match state.hasher.hash(body.password).await {
        Ok(hash) => hash,
        Err(err) => {
            state.throttle.signup_abandoned(address).await;
            return Err(err.into());
        }
    };
    match users::sign_up(&state.db, username, &hash, &state.webhooks).await {
        Ok(user) => Ok((StatusCode::CREATED, Json(user.into()))),
        Err(StorageError::Duplicate) => Err(AppError::Conflict("username is taken")),
        Err(other) => Err(other.into()),
    }
}

/// Log in and receive an access token and a refresh token.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 401, description = "Unknown user or wrong password (indistinguishable)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts for this username or address; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Password hashing at capacity; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> AppResult<Json<TokenPair>> {
    // No account has a name that breaks the username rules, so such a login fails like any
    // unknown name (the rules are public: answering at once gives nothing away). From here
    // on the name is at most 32 characters of [A-Za-z0-9_.-]: safe as a key and in a log.
    let username = validate::username(&body.username).map_err(|_| AppError::BadCredentials)?;
    let address = client.bucket();
    state.throttle.login_attempt(username, address).await.map_err(AppError::rate_limited)?;
    let user = match check_password(&state, username, body.password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            tracing::info!(%username, client = %address, "login failed");
            return Err(AppError::BadCredentials);
        }
        Err(err) => {
            state.throttle.login_abandoned(username, address).await;
            return Err(err);
        }
    };
    state.throttle.login_succeeded(username, address).await;
    let (pair, session_id) = open_session(&state, user).await?;
    tracing::info!(user = %pair.user.username, session = %session_id, "logged in");
    Ok(Json(pair))
}

/// A new login session of `user` (a password or an identity provider's login): stored with
/// its hashed refresh token, and its first token pair; the session's id, for the log.
pub(super) async fn open_session(state: &AppState, user: crate::storage::entity::users::Model) -> AppResult<(TokenPair, String)> {
    crate::features::moderation::enforce::not_suspended(state, user.id)?;
    let session_id = uuid::Uuid::new_v4().simple().to_string();
    let refresh_token = token::new_refresh_token();
    let ttl_ms = state.config.refresh_ttl().as_millis() as i64;
    sessions::open(&state.db, &session_id, user.id, &token::hash_refresh_token(&refresh_token), ttl_ms).await?;
    let pair = issue_pair(state, user.into(), &session_id, refresh_token)?;
    Ok((pair, session_id))
}

/// The account, if `password` is its password. An unknown name is checked against a decoy
/// hash, so it takes as long as a wrong password.
async fn check_password(state: &AppState, username: &str, password: String) -> AppResult<Option<crate::storage::entity::users::Model>> {
    let user = users::by_name(&state.db, username).await?;
    let stored = match &user {
        Some(user) => user.password_hash.clone(),
        None => state.hasher.decoy_hash().await?,
    };
    let valid = state.hasher.verify(password, stored).await?;
    Ok(user.filter(|_| valid))
}

pub(super) fn issue_pair(state: &AppState, user: User, session_id: &str, refresh_token: String) -> AppResult<TokenPair> {
    let (access_token, _) = state.keys.issue(user.id, &user.username, user.is_admin, session_id)?;
    Ok(TokenPair {
        access_token,
        token_type: TokenPair::BEARER.to_owned(),
        expires_in: state.keys.access_ttl().as_secs() as i64,
        refresh_token,
        user,
    })
}

/// Exchange a refresh token for a new pair. The old refresh token stops working; presenting
/// it again revokes the whole session (its access tokens get 401, its sockets close with 4003).
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A rotated token pair", body = TokenPair),
        (status = 401, description = "Unknown, expired, reused or revoked refresh token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(State(state): State<AppState>, ApiJson(body): ApiJson<RefreshRequest>) -> AppResult<Json<TokenPair>> {
    let new_token = token::new_refresh_token();
    let ttl_ms = state.config.refresh_ttl().as_millis() as i64;
    let old_hash = token::hash_refresh_token(&body.refresh_token);
    match sessions::rotate(&state.db, &old_hash, &token::hash_refresh_token(&new_token), ttl_ms).await? {
        sessions::Rotation::Rotated { session_id, user_id } => {
            crate::features::moderation::enforce::not_suspended(&state, user_id)?;
            let user = users::by_id(&state.db, user_id).await?.ok_or(AppError::Unauthenticated)?;
            issue_pair(&state, user.into(), &session_id, new_token).map(Json)
        }
        sessions::Rotation::Reused { session_id } => {
            tracing::warn!(session = %session_id, "refresh token reused: session revoked");
            close_sockets(&state, &group::session(&session_id));
            Err(AppError::Unauthenticated)
        }
        sessions::Rotation::Invalid => Err(AppError::Unauthenticated),
    }
}

/// Log out: revoke the session and close its open sockets with 4003 (with a trusted issuer's
/// token, which has no Confab session: close that identity's sockets, on every instance).
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An API token cannot log out a session", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn logout(State(state): State<AppState>, LoginUser(identity): LoginUser) -> AppResult<StatusCode> {
    match &identity.external {
        // A trusted issuer's token has no Confab session to revoke (ending it is the issuer's
        // business); what logging out can do is close that identity's sockets everywhere.
        Some(external) => tracing::info!(user = %identity.username, issuer = %external.issuer, "logged out"),
        None => {
            sessions::revoke(&state.db, &identity.session_id).await?;
            tracing::info!(user = %identity.username, session = %identity.session_id, "logged out");
        }
    }
    close_sockets(&state, &identity.revocation_group());
    Ok(StatusCode::NO_CONTENT)
}

/// Closes every socket of a revocation group (a session's, or an external identity's) with
/// 4003 on every instance.
pub(super) fn close_sockets(state: &AppState, group: &str) {
    if let Err(err) = state.layer.group_send(group, Delivery::Close { code: close::LOGGED_OUT }) {
        // Local sockets were closed by the hub; remote ones learn of the revocation when
        // their token is next checked (refresh or expiry).
        tracing::warn!(%err, "could not broadcast session close");
    }
}

/// The caller's account.
#[utoipa::path(get, path = "/api/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(State(state): State<AppState>, AuthUser(identity): AuthUser) -> AppResult<Json<User>> {
    let user = users::by_id(&state.db, identity.user_id).await?.ok_or(AppError::Unauthenticated)?;
    Ok(Json(user.into()))
}
