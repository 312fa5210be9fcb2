//! Accounts and tokens: signup, login, refresh rotation, logout, and verifying a bearer.
//!
//! # Layout
//! - [`password`]: argon2id on dedicated threads with reused work areas and a bounded queue.
//! - [`token`]: JWT access tokens (pinned HS256, `iss`/`aud`/`nbf`/`exp`) and opaque refresh tokens.
//! - [`throttle`]: failed-login counting per username and per IP.
//! - [`issuers`]: trusted issuers (`CONFAB_ISSUERS_FILE`): other systems' tokens, mapped to accounts.
//! - [`api_tokens`]: API tokens (`cfb_…`) for programs: minting, verifying, usage times.
//! - [`scopes`]: what a token may do, per socket method and per REST route.
//! - [`extract`]: the API-token scope middleware and the `AuthUser` / `MaybeAuthUser` /
//!   `LoginUser` extractors (these two need `AppState`; the modules above do not).
//! - [`routes`]: the `/api/auth/*` and `/api/me` handlers.
//! - [`cookie`]: the web app's session, its refresh token in an `HttpOnly` cookie.
//! - [`oidc`]: "Log in with <provider>" (OpenID Connect, for issuers with `login = true`).

pub mod api_tokens;
pub mod cookie;
pub mod extract;
pub mod issuers;
pub mod oidc;
pub mod password;
pub mod routes;
pub mod scopes;
pub mod throttle;
pub mod token;

pub use routes::router;
pub use token::Identity;

use crate::error::AppError;
use crate::state::AppState;
use crate::storage::sessions;

/// Verifies a bearer: an API token (`cfb_…`), a token of a trusted issuer, or an access token whose session is still
/// live (not logged out or revoked) and is the session of the token's user: a token whose
/// `sid` names someone else's session (signed with a leaked or shared secret, or by a bug)
/// speaks for nobody. A suspended account's bearer, of any kind, is refused with 403
/// `reason: "suspended"` (-32003 on the socket).
pub async fn authenticate(state: &AppState, token: &str) -> Result<Identity, AppError> {
    let identity = if api_tokens::is_api_token(token) {
        api_tokens::authenticate(&state.db, &state.token_usage, token).await?
    } else if state.issuers.claims(token) {
        state.issuers.authenticate(&state.db, token).await?
    } else {
        let identity = state.keys.verify(token).ok_or(AppError::Unauthenticated)?;
        if sessions::active_owner(&state.db, &identity.session_id).await? != Some(identity.user_id) {
            return Err(AppError::Unauthenticated);
        }
        identity
    };
    crate::features::moderation::enforce::not_suspended(state, identity.user_id)?;
    Ok(identity)
}
