//! Extractors that authenticate a request before the handler runs.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::token::Identity;
use crate::error::AppError;
use crate::state::AppState;

/// An authenticated caller (`Authorization: Bearer <access token>`); 401 otherwise.
pub struct AuthUser(pub Identity);

/// An optional caller: no header means anonymous, but a bad token is still a 401, so a
/// client never silently loses its identity.
pub struct MaybeAuthUser(pub Option<Identity>);

/// The bearer token of a request, if it has an `Authorization: Bearer` header.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(AppError::Unauthenticated)?;
        super::authenticate(state, token).await.map(AuthUser)
    }
}

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match bearer(parts) {
            None => Ok(MaybeAuthUser(None)),
            Some(token) => super::authenticate(state, token).await.map(|id| MaybeAuthUser(Some(id))),
        }
    }
}
