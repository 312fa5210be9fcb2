//! The web app's session: the same login and rotating refresh tokens as `/api/auth/*`, with
//! the refresh token in a cookie the page's scripts cannot read.
//!
//! Programs keep using `POST /api/auth/login` and `POST /api/auth/refresh` with the token in
//! the JSON body. A browser page that kept a 30-day refresh token in `localStorage` would
//! hand it to any script that ever ran in the page (an XSS carries it away and uses it for
//! a month); here it lives in the cookie [`COOKIE`]:
//!
//! - `HttpOnly`: no script reads it, so a script can at worst use the session while the page
//!   is open, not take it along;
//! - `SameSite=Strict`: the browser never sends it on a request another site starts;
//! - `Path=/api/auth/session`: sent to the routes of this module only, never to the rest of the API;
//! - `Secure` when the server is reached over https (`CONFAB_HTTPS`);
//! - `Max-Age`: the session's lifetime (`CONFAB_REFRESH_TTL_SECS`).
//!
//! Cross-site request forgery: every route here needs the header [`CSRF_HEADER`]. A form or
//! a link of another site cannot set a header, and a script of another origin that tries
//! needs a CORS preflight this server never grants; `SameSite=Strict` is a second wall.
//! The bodies answered carry no refresh token ([`SessionTokens`]), so a script that calls
//! the refresh route gets an access token (15 minutes), never the session itself.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use confab_shared::{Credentials, OidcLogin, Problem, RefreshRequest, SessionTokens, TokenPair};

use super::token;
use crate::error::{AppError, AppResult};
use crate::http::ApiJson;
use crate::state::AppState;
use crate::storage::sessions;

/// The cookie's name.
pub const COOKIE: &str = "confab_refresh";
/// The cookie's path: the routes of this module, and nothing else of the API.
pub const COOKIE_PATH: &str = "/api/auth/session";
/// The header every route here needs (any value), which cross-site forms cannot send.
pub const CSRF_HEADER: &str = "confab-csrf";
/// A refresh token is 43 URL-safe base64 characters; anything else in the cookie is junk.
const MAX_TOKEN_CHARS: usize = 64;

/// The header every route here needs, as the OpenAPI document states it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct CsrfHeader {
    /// Any value; a form or a link of another site cannot send it.
    #[param(rename = "Confab-CSRF")]
    #[allow(dead_code)]
    confab_csrf: String,
}

/// 403 of every route here without [`CSRF_HEADER`].
#[derive(utoipa::IntoResponses)]
#[response(status = 403, description = "The `Confab-CSRF` header is missing", content_type = "application/problem+json")]
pub struct NoCsrfHeader(pub Problem);

pub fn router() -> Router<AppState> {
    Router::new()
        .route(COOKIE_PATH, post(log_in))
        .route("/api/auth/session/refresh", post(refresh))
        .route("/api/auth/session/logout", post(log_out))
        .route("/api/auth/session/oidc/{issuer}", post(log_in_with))
}

/// Log in as the web app does: the refresh token goes into an `HttpOnly` cookie
/// (`confab_refresh`, `SameSite=Strict`, path `/api/auth/session`) instead of the body.
/// Needs the header `Confab-CSRF` (any value). Programs use `POST /api/auth/login`.
#[utoipa::path(post, path = "/api/auth/session", tag = "auth", request_body = Credentials,
    params(CsrfHeader),
    responses(
        (status = 200, description = "Logged in; `Set-Cookie` holds the refresh token", body = SessionTokens,
            headers(("Set-Cookie" = String, description = "`confab_refresh=…; Path=/api/auth/session; HttpOnly; SameSite=Strict; Max-Age=…`"))),
        (status = 401, description = "Unknown user or wrong password (indistinguishable)", body = Problem, content_type = "application/problem+json"),
        NoCsrfHeader,
        (status = 422, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts for this username or address", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Password hashing at capacity; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn log_in(
    State(state): State<AppState>,
    client: crate::client_ip::ClientIp,
    headers: HeaderMap,
    body: ApiJson<Credentials>,
) -> AppResult<Response> {
    require_csrf(&headers)?;
    let Json(pair) = super::routes::login(State(state.clone()), client, body).await?;
    Ok(session_response(&state, pair))
}

/// Log in with an identity provider as the web app does: `POST /api/auth/oidc/{issuer}`
/// (the code of the provider's redirect, the PKCE verifier, the nonce), with the refresh
/// token in the `HttpOnly` cookie instead of the body. Needs the header `Confab-CSRF`.
#[utoipa::path(post, path = "/api/auth/session/oidc/{issuer}", tag = "auth", request_body = OidcLogin,
    params(CsrfHeader, ("issuer" = String, Path, description = "The provider's `name` from `GET /api/auth/providers`")),
    responses(
        (status = 200, description = "Logged in; `Set-Cookie` holds the refresh token", body = SessionTokens,
            headers(("Set-Cookie" = String, description = "`confab_refresh=…; Path=/api/auth/session; HttpOnly; SameSite=Strict; Max-Age=…`"))),
        (status = 401, description = "The provider refused the code, or its ID token was refused (wrong nonce, signature, issuer, audience, expiry); the detail names the rule", body = Problem, content_type = "application/problem+json"),
        NoCsrfHeader,
        (status = 404, description = "No provider of that name is offered for login", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many refused codes or tokens from this address; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider cannot be reached or failed; retry later", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn log_in_with(
    State(state): State<AppState>,
    client: crate::client_ip::ClientIp,
    headers: HeaderMap,
    issuer: Path<String>,
    body: ApiJson<OidcLogin>,
) -> AppResult<Response> {
    require_csrf(&headers)?;
    let Json(pair) = super::oidc::log_in(State(state.clone()), client, issuer, body).await?;
    Ok(session_response(&state, pair))
}

/// Rotate the web app's refresh token (from the cookie) and get a fresh access token. As
/// with `POST /api/auth/refresh`, presenting a used token revokes the session. A refused
/// cookie is deleted. Needs the header `Confab-CSRF`.
#[utoipa::path(post, path = "/api/auth/session/refresh", tag = "auth",
    params(CsrfHeader),
    responses(
        (status = 200, description = "A fresh access token; `Set-Cookie` holds the rotated refresh token", body = SessionTokens,
            headers(("Set-Cookie" = String, description = "The rotated `confab_refresh` cookie"))),
        (status = 401, description = "No cookie, or an unknown, expired, reused or revoked refresh token (the cookie is deleted)", body = Problem, content_type = "application/problem+json"),
        NoCsrfHeader,
    ))]
pub async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    require_csrf(&headers)?;
    let Some(refresh_token) = cookie_token(&headers) else {
        return Ok((clear_cookie(&state), AppError::Unauthenticated).into_response());
    };
    match super::routes::refresh(State(state.clone()), ApiJson(RefreshRequest { refresh_token })).await {
        Ok(Json(pair)) => Ok(session_response(&state, pair)),
        Err(AppError::Unauthenticated) => Ok((clear_cookie(&state), AppError::Unauthenticated).into_response()),
        // Anything else (the database is down) may pass: the cookie stays for a retry.
        Err(other) => Err(other),
    }
}

/// Log out the web app's session: revoke the session the cookie names (its sockets close
/// with 4003) and delete the cookie. Works with an expired access token, and without any
/// cookie (then it only answers 204). Needs the header `Confab-CSRF`.
#[utoipa::path(post, path = "/api/auth/session/logout", tag = "auth",
    params(CsrfHeader),
    responses(
        (status = 204, description = "Logged out; `Set-Cookie` deletes the cookie",
            headers(("Set-Cookie" = String, description = "`confab_refresh=; …; Max-Age=0`"))),
        NoCsrfHeader,
    ))]
pub async fn log_out(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    require_csrf(&headers)?;
    if let Some(refresh_token) = cookie_token(&headers)
        && let Some(session_id) = sessions::of_token(&state.db, &token::hash_refresh_token(&refresh_token)).await?
    {
        sessions::revoke(&state.db, &session_id).await?;
        super::routes::close_sockets(&state, &crate::layer::group::session(&session_id));
        tracing::info!(session = %session_id, "logged out (cookie)");
    }
    Ok((clear_cookie(&state), StatusCode::NO_CONTENT).into_response())
}

fn require_csrf(headers: &HeaderMap) -> AppResult<()> {
    if headers.contains_key(CSRF_HEADER) {
        Ok(())
    } else {
        Err(AppError::Forbidden("this route needs the Confab-CSRF header"))
    }
}

/// The refresh token in the request's cookies, if one looks like a refresh token.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| {
            !value.is_empty() && value.len() <= MAX_TOKEN_CHARS && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
}

/// The `Set-Cookie` header of `value` living `max_age_secs`.
fn set_cookie(state: &AppState, value: &str, max_age_secs: u64) -> HeaderMap {
    let secure = if state.config.https { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={value}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}");
    let mut headers = HeaderMap::new();
    // The value is URL-safe base64 (or empty), so the header is always valid.
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, value);
    }
    // A token answer is nobody's to keep.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers
}

fn clear_cookie(state: &AppState) -> HeaderMap {
    set_cookie(state, "", 0)
}

/// The answer to a login or refresh: the access token in the body, the refresh token in the cookie.
fn session_response(state: &AppState, pair: TokenPair) -> Response {
    let cookie = set_cookie(state, &pair.refresh_token, state.config.refresh_ttl().as_secs());
    let body = SessionTokens { access_token: pair.access_token, token_type: pair.token_type, expires_in: pair.expires_in, user: pair.user };
    (cookie, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).expect("a header"));
        headers
    }

    #[test]
    fn the_refresh_token_is_read_from_the_cookie_header_and_junk_is_ignored() {
        let token = "AbC-_09xyzAbC-_09xyzAbC-_09xyzAbC-_09xyzAbC";
        assert_eq!(cookie_token(&with_cookie(&format!("a=1; {COOKIE}={token}; b=2"))).as_deref(), Some(token));
        assert_eq!(cookie_token(&with_cookie(&format!("{COOKIE}=\"{token}\""))).as_deref(), Some(token));
        for junk in [format!("{COOKIE}="), format!("{COOKIE}=a b"), format!("{COOKIE}={}", "a".repeat(65)), format!("x{COOKIE}={token}")] {
            assert_eq!(cookie_token(&with_cookie(&junk)), None, "{junk}");
        }
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }
}
