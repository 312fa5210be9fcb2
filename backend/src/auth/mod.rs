//! Accounts and tokens: signup, login, refresh rotation, logout, and verifying a bearer.
//!
//! # Layout
//! - [`password`]: argon2id on dedicated threads with reused work areas and a bounded queue.
//! - [`token`]: JWT access tokens (pinned HS256, `iss`/`aud`/`nbf`/`exp`) and opaque refresh tokens.
//! - [`throttle`]: failed-login counting per username and per IP.
//! - [`extract`]: `AuthUser` / `MaybeAuthUser` extractors.
//! - [`routes`]: the `/api/auth/*` and `/api/me` handlers.

pub mod extract;
pub mod password;
pub mod routes;
pub mod throttle;
pub mod token;

pub use routes::router;
pub use token::Identity;

use crate::error::AppError;
use crate::state::AppState;
use crate::storage::sessions;

/// Verifies an access token and that its session is still live (not logged out or revoked).
pub async fn authenticate(state: &AppState, token: &str) -> Result<Identity, AppError> {
    let identity = state.keys.verify(token).ok_or(AppError::Unauthenticated)?;
    if !sessions::is_active(&state.db, &identity.session_id).await? {
        return Err(AppError::Unauthenticated);
    }
    Ok(identity)
}
