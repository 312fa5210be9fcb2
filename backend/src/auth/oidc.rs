//! "Log in with <provider>": the routes of the OpenID Connect login (authorization code flow
//! with PKCE) for the trusted issuers with `login = true`.
//!
//! The web app asks `GET /api/auth/providers` what to offer, sends the browser to the
//! provider with a PKCE challenge, a `state` and a `nonce`, and posts the code it comes back
//! with to `POST /api/auth/oidc/{issuer}` (programs: the refresh token in the body) or
//! `POST /api/auth/session/oidc/{issuer}` (the web app: the refresh token in the `HttpOnly`
//! cookie, see [`super::cookie`]). The provider's ID token only proves who the person is
//! (checked in [`super::issuers::login`]); the answer is a Confab session like a password
//! login's, so refresh, logout and the socket work the same afterwards.
//!
//! The body is bounded like every REST body (`http::MAX_BODY_BYTES`, 413), and each of its
//! fields by the lengths its schema states (422), which even escaped to the last character
//! stay within it; the provider's answer is bounded in time and size
//! (`issuers::login`).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_shared::{LoginProvider, OidcLogin, Problem, TokenPair};

use crate::client_ip::ClientIp;
use crate::error::{AppError, AppResult};
use crate::http::ApiJson;
use crate::state::AppState;
use crate::storage::users;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/providers", get(providers))
        .route("/api/auth/oidc/{issuer}", post(log_in))
}

/// The identity providers offered on the login page ("Log in with …"), with what a client
/// needs to start the authorization code flow: the authorization endpoint (from the
/// provider's discovery document), the client id and the scopes. Empty when none is
/// configured; a provider whose discovery document cannot be read now is left out.
#[utoipa::path(get, path = "/api/auth/providers", tag = "auth",
    responses(
        (status = 200, description = "The providers offered for login", body = [LoginProvider]),
    ))]
pub async fn providers(State(state): State<AppState>) -> Json<Vec<LoginProvider>> {
    Json(state.issuers.login_providers().await)
}

/// Log in with an identity provider: exchange the authorization code of its redirect (with
/// the PKCE verifier) for its ID token, check the token and its `nonce`, and receive
/// Confab's own access and refresh tokens, as from `POST /api/auth/login`. The account is
/// the one the issuer's tokens map to (created on first use). Refused codes and tokens are
/// counted per client address, as failed password logins are.
#[utoipa::path(post, path = "/api/auth/oidc/{issuer}", tag = "auth", request_body = OidcLogin,
    params(("issuer" = String, Path, description = "The provider's `name` from `GET /api/auth/providers`")),
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 401, description = "The provider refused the code, or its ID token was refused (wrong nonce, signature, issuer, audience, expiry); the detail names the rule", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No provider of that name is offered for login", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many refused codes or tokens from this address; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider cannot be reached or failed; retry later", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn log_in(
    State(state): State<AppState>,
    client: ClientIp,
    Path(issuer): Path<String>,
    ApiJson(body): ApiJson<OidcLogin>,
) -> AppResult<Json<TokenPair>> {
    // Each attempt can cost the provider a call: a flood of made-up codes from one address
    // stops here, as password guesses do.
    let address = client.bucket();
    state.throttle.exchange_attempt(address).await.map_err(AppError::rate_limited)?;
    let identity = match state.issuers.log_in(&state.db, &issuer, &body).await {
        Ok(identity) => {
            state.throttle.exchange_given_back(address).await;
            identity
        }
        Err(err @ (AppError::TokenRefused(_) | AppError::Unauthenticated)) => {
            tracing::info!(%issuer, client = %address, "login with an identity provider refused");
            return Err(err);
        }
        Err(other) => {
            state.throttle.exchange_given_back(address).await;
            return Err(other);
        }
    };
    let user = users::by_id(&state.db, identity.user_id).await?.ok_or(AppError::Unauthenticated)?;
    let (pair, session_id) = super::routes::open_session(&state, user).await?;
    tracing::info!(user = %pair.user.username, session = %session_id, %issuer, "logged in with an identity provider");
    Ok(Json(pair))
}
