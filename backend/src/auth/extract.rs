//! Extractors that authenticate a request before the handler runs, and the middleware that
//! checks an API token against the route's scope first.
//!
//! An API token reaches a handler only through the [`enforce_rest`] middleware, which
//! checked it against the route's scope ([`super::scopes`]): here it is taken from the
//! request's extensions, and a token the middleware did not pass is refused (fail closed).

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api_tokens::{self, is_api_token};
use super::scopes;
use super::token::Identity;
use crate::error::AppError;
use crate::state::AppState;

/// An authenticated caller (`Authorization: Bearer <access token or API token>`); 401 otherwise.
pub struct AuthUser(pub Identity);

/// An optional caller: no header means anonymous, but a bad token is still a 401, so a
/// client never silently loses its identity.
pub struct MaybeAuthUser(pub Option<Identity>);

/// The bearer token of a request, if it has an `Authorization: Bearer` header.
pub fn bearer(parts: &Parts) -> Option<&str> {
    bearer_of(&parts.headers)
}

/// The bearer token in a set of headers.
pub fn bearer_of(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Middleware on every route: a request with an API token is checked against
/// [`REST_ROUTES`](scopes::REST_ROUTES) before its handler runs, and the verified identity
/// is handed to the `AuthUser` / `MaybeAuthUser` extractors (which refuse an API token that
/// did not pass here).
pub async fn enforce_rest(State(state): State<AppState>, matched: Option<MatchedPath>, mut request: Request, next: Next) -> Response {
    let Some(token) = bearer_of(request.headers()).filter(|t| is_api_token(t)) else {
        return next.run(request).await;
    };
    // A nested service has no matched route of its own: its rows match the request's path.
    let path = matched.map_or_else(|| request.uri().path().to_owned(), |m| m.as_str().to_owned());
    let need = scopes::rest_need(request.method(), &path);
    let scope = match need {
        Some(scopes::Need::Open) => return next.run(request).await,
        Some(scopes::Need::Scope(scope)) => scope,
        Some(scopes::Need::Login) => return AppError::Forbidden("API tokens cannot do this; log in").into_response(),
        None => return AppError::Forbidden("this route is not available to API tokens").into_response(),
    };
    let identity = match api_tokens::authenticate(&state.db, &state.token_usage, token).await {
        Ok(identity) => identity,
        Err(err) => return err.into_response(),
    };
    if let Err(suspended) = crate::features::moderation::enforce::not_suspended(&state, identity.user_id) {
        return suspended.into_response();
    }
    if !identity.scopes.contains(scope) {
        return AppError::MissingScope(scope).into_response();
    }
    request.extensions_mut().insert(VerifiedToken(identity));
    next.run(request).await
}

/// An API token identity [`enforce_rest`] verified for this request's route.
#[derive(Clone)]
pub struct VerifiedToken(pub Identity);

async fn identify(parts: &Parts, state: &AppState, token: &str) -> Result<Identity, AppError> {
    if is_api_token(token) {
        return match parts.extensions.get::<VerifiedToken>() {
            Some(VerifiedToken(identity)) => Ok(identity.clone()),
            None => Err(AppError::Forbidden("this route is not available to API tokens")),
        };
    }
    super::authenticate(state, token).await
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(AppError::Unauthenticated)?;
        identify(parts, state, token).await.map(AuthUser)
    }
}

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match bearer(parts) {
            None => Ok(MaybeAuthUser(None)),
            Some(token) => identify(parts, state, token).await.map(|id| MaybeAuthUser(Some(id))),
        }
    }
}

/// A caller who logged in (an access token): API tokens are refused with 403, for what
/// only a person may do (managing tokens and webhooks).
pub struct LoginUser(pub Identity);

impl FromRequestParts<AppState> for LoginUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(AppError::Unauthenticated)?;
        if is_api_token(token) {
            return Err(AppError::Forbidden("API tokens cannot do this; log in"));
        }
        super::authenticate(state, token).await.map(LoginUser)
    }
}
