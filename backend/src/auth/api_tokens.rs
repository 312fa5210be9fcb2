//! API tokens (`cfb_…`): minting, verifying a presented token, and coalesced usage times.
//!
//! The secret is 256 random bits; only its SHA-256 is stored (a fast hash is enough for a
//! secret that cannot be guessed, unlike a password). A presented token is found by its
//! hash, and the stored hash is then compared to the computed one in constant time. A
//! token is never logged: nothing here formats it, and callers only log its id.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confab_shared::tokens::API_TOKEN_PREFIX;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use tokio_util::sync::CancellationToken;

use super::token::Identity;
use super::scopes::Scopes;
use crate::error::AppError;
use crate::storage::{Db, api_tokens, now_ms, users};

/// Characters after the prefix: 32 bytes as unpadded URL-safe base64.
const SECRET_CHARS: usize = 43;
/// How often pending `last_used_at` times are written.
pub const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(30);
/// `expires_at` of an identity whose token never expires (9999-12-31T23:59:59Z): far enough
/// that no timer fires, small enough that converting it to milliseconds cannot overflow.
pub const NEVER_EXPIRES_SECS: i64 = 253_402_300_799;

/// A fresh token and the hash to store.
pub fn mint() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let token = format!("{API_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a bearer value is meant as an API token (rather than an access token).
pub fn is_api_token(bearer: &str) -> bool {
    bearer.starts_with(API_TOKEN_PREFIX)
}

/// Whether the token has the shape of one we mint; anything else is refused unlooked-up.
fn well_formed(token: &str) -> bool {
    token.strip_prefix(API_TOKEN_PREFIX).is_some_and(|secret| {
        secret.len() == SECRET_CHARS && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Verifies an API token: known, not expired, its user still there. 401 otherwise.
pub async fn authenticate(db: &Db, usage: &TokenUsage, token: &str) -> Result<Identity, AppError> {
    if !well_formed(token) {
        return Err(AppError::Unauthenticated);
    }
    let computed = hash(token);
    let row = api_tokens::by_hash(db, &computed).await?.ok_or(AppError::Unauthenticated)?;
    if !bool::from(row.token_hash.as_bytes().ct_eq(computed.as_bytes())) {
        return Err(AppError::Unauthenticated);
    }
    let now = now_ms();
    if row.expires_at.is_some_and(|exp| exp <= now) {
        return Err(AppError::Unauthenticated);
    }
    let user = users::by_id(db, row.user_id).await?.ok_or(AppError::Unauthenticated)?;
    usage.used(row.id, now);
    Ok(Identity {
        user_id: user.id,
        username: user.username,
        is_admin: user.is_admin,
        session_id: String::new(),
        expires_at: row.expires_at.map_or(NEVER_EXPIRES_SECS, |ms| ms.div_euclid(1000)),
        scopes: Scopes::parse_list(&row.scopes),
        api_token: Some(row.id),
        external: None,
    })
}

/// When each token was last used, kept in memory and written every
/// [`USAGE_FLUSH_EVERY`]: a busy bot costs one `UPDATE` per interval, not one per request.
#[derive(Default)]
pub struct TokenUsage {
    // Never held across an `.await`.
    pending: Mutex<HashMap<i64, i64>>,
}

impl TokenUsage {
    /// Notes a use of token `id` at `at` (ms).
    pub fn used(&self, id: i64, at: i64) {
        if let Ok(mut pending) = self.pending.lock() {
            let entry = pending.entry(id).or_insert(at);
            *entry = (*entry).max(at);
        }
    }

    /// A use not yet written, to show in listings.
    pub fn pending(&self, id: i64) -> Option<i64> {
        self.pending.lock().ok()?.get(&id).copied()
    }

    /// Writes every pending time; a failed write is kept for the next flush.
    pub async fn flush(&self, db: &Db) {
        let batch: Vec<(i64, i64)> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return,
        };
        for (id, at) in batch {
            if let Err(err) = api_tokens::touch(db, id, at).await {
                tracing::warn!(%err, token_id = id, "last_used_at not written; retrying at the next flush");
                self.used(id, at);
            }
        }
    }

    /// Flushes every [`USAGE_FLUSH_EVERY`] until shutdown, then once more.
    pub async fn flush_periodically(&self, db: Db, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(USAGE_FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.flush(&db).await,
                () = shutdown.cancelled() => break,
            }
        }
        self.flush(&db).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_are_prefixed_random_and_well_formed() {
        let (a, hash_a) = mint();
        let (b, _) = mint();
        assert_ne!(a, b);
        assert!(a.starts_with("cfb_") && well_formed(&a), "{a}");
        assert_eq!(hash_a, hash(&a));
        assert_ne!(hash_a, a, "the stored form is not the secret");
    }

    #[test]
    fn malformed_tokens_are_refused_without_a_lookup() {
        for bad in ["cfb_", "cfb_short", "cfb_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "xyz_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
            assert!(!well_formed(bad), "{bad}");
        }
        let (good, _) = mint();
        assert!(!well_formed(&format!("{good}a")));
    }

    #[test]
    fn usage_keeps_the_latest_time_per_token() {
        let usage = TokenUsage::default();
        usage.used(1, 20);
        usage.used(1, 10);
        usage.used(2, 5);
        assert_eq!(usage.pending(1), Some(20));
        assert_eq!(usage.pending(2), Some(5));
        assert_eq!(usage.pending(3), None);
    }
}
