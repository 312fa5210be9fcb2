//! Access tokens (JWT, HS256, pinned) and opaque refresh tokens.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `iss` of Confab's own access tokens.
pub const ISSUER: &str = "confab";
const AUDIENCE: &str = "confab";
/// Clock skew tolerated on `exp` and `nbf` (the contract allows at most 5 s).
const LEEWAY_SECS: u64 = 5;
/// The shortest HMAC secret accepted: RFC 7518 §3.2 requires a key at least as long as the
/// hash output for HS256 (256 bits); a shorter one can be brute-forced from any token.
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id as a decimal string.
    pub sub: String,
    pub name: String,
    pub adm: bool,
    pub sid: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
}

/// Who a verified token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user_id: i64,
    pub username: String,
    pub is_admin: bool,
    pub session_id: String,
    /// Token expiry, seconds since the Unix epoch.
    pub expires_at: i64,
    /// What the credential may do: every scope for a login, the token's for an API token.
    pub scopes: super::scopes::Scopes,
    /// The API token's id when authenticated with one (`session_id` is then empty).
    pub api_token: Option<i64>,
    /// What a trusted issuer's token adds (`session_id` is then empty): see [`External`].
    pub external: Option<std::sync::Arc<External>>,
}

/// What a token of a trusted issuer (`CONFAB_ISSUERS_FILE`) carries beyond the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct External {
    /// The issuer's configured name.
    pub issuer: String,
    /// The rooms its rooms claim names, joined at connect.
    pub rooms: Vec<String>,
    /// The socket may join no room outside [`External::rooms`].
    pub exclusive: bool,
}

impl Identity {
    /// The channel-layer group whose close ends this identity's sockets: the login session's,
    /// or the API token's.
    pub fn revocation_group(&self) -> String {
        match (self.api_token, &self.external) {
            (Some(id), _) => crate::layer::group::token(id),
            // One group per external account: its sockets have no Confab session to end.
            (None, Some(external)) => crate::layer::group::session(&format!("{}/{}", external.issuer, self.user_id)),
            (None, None) => crate::layer::group::session(&self.session_id),
        }
    }
}

/// Signing and verification keys with a validation that pins everything the contract names.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
}

impl Keys {
    pub fn new(secret: &[u8], access_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
        }
    }

    /// The configured secret, or the one kept in the data dir (generated on first run). A
    /// configured secret shorter than [`MIN_SECRET_BYTES`] is refused, saying why (the
    /// message never contains the secret).
    pub fn load_secret(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
        if let Some(secret) = configured.filter(|s| !s.is_empty()) {
            if secret.len() < MIN_SECRET_BYTES {
                anyhow::bail!(
                    "CONFAB_JWT_SECRET is {} bytes long; HS256 needs at least {MIN_SECRET_BYTES} (RFC 7518 §3.2: a key \
                     as long as the hash output). Use a random value such as `openssl rand -base64 48`, or leave it \
                     unset and one is generated into the data dir",
                    secret.len()
                );
            }
            return Ok(secret.as_bytes().to_vec());
        }
        let path = data_dir.join("jwt_secret");
        if let Ok(existing) = std::fs::read_to_string(&path) {
            let existing = existing.trim();
            if existing.len() >= MIN_SECRET_BYTES {
                // Written with the umask by older versions: the key to every access token.
                crate::files::tighten(&path).with_context(|| format!("restricting {}", path.display()))?;
                return Ok(existing.as_bytes().to_vec());
            }
        }
        crate::files::create_data_dir(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<48>());
        write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
        Ok(secret.into_bytes())
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Issues an access token; returns it with its expiry (seconds since the epoch).
    pub fn issue(&self, user_id: i64, username: &str, is_admin: bool, session_id: &str) -> anyhow::Result<(String, i64)> {
        let now = chrono::Utc::now().timestamp();
        let exp = now + self.access_ttl.as_secs() as i64;
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user_id.to_string(),
            name: username.to_owned(),
            adm: is_admin,
            sid: session_id.to_owned(),
            iat: now,
            nbf: now,
            exp,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, exp))
    }

    /// Verifies signature, algorithm, issuer, audience, `nbf` and `exp`; `None` when any fails.
    pub fn verify(&self, token: &str) -> Option<Identity> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let claims = data.claims;
        Some(Identity {
            user_id: claims.sub.parse().ok()?,
            username: claims.name,
            is_admin: claims.adm,
            session_id: claims.sid,
            expires_at: claims.exp,
            scopes: super::scopes::Scopes::ALL,
            api_token: None,
            external: None,
        })
    }
}

/// A new opaque refresh token: 256 random bits, URL-safe.
pub fn new_refresh_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    bytes
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    crate::files::create_private(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(900))
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_identity() {
        let k = keys();
        let (token, _) = k.issue(42, "ann", true, "s1").unwrap();
        let id = k.verify(&token).unwrap();
        assert_eq!((id.user_id, id.username.as_str(), id.is_admin, id.session_id.as_str()), (42, "ann", true, "s1"));
    }

    #[test]
    fn tokens_from_another_secret_or_algorithm_are_rejected() {
        let (token, _) = Keys::new(b"another secret another secret!!!", Duration::from_secs(900)).issue(1, "a", false, "s").unwrap();
        assert!(keys().verify(&token).is_none());
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(), aud: AUDIENCE.into(), sub: "1".into(), name: "a".into(), adm: true, sid: "s".into(),
            iat: now, nbf: now, exp: now + 60, jti: "j".into(),
        };
        let hs512 = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef")).unwrap();
        assert!(keys().verify(&hs512).is_none());
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_rejected_beyond_the_leeway() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let now = chrono::Utc::now().timestamp();
        let make = |nbf: i64, exp: i64, aud: &str| {
            let claims = Claims {
                iss: ISSUER.into(), aud: aud.into(), sub: "1".into(), name: "a".into(), adm: false, sid: "s".into(),
                iat: now, nbf, exp, jti: "j".into(),
            };
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)).unwrap()
        };
        assert!(keys().verify(&make(now, now - 10, AUDIENCE)).is_none());
        assert!(keys().verify(&make(now + 30, now + 600, AUDIENCE)).is_none());
        assert!(keys().verify(&make(now, now + 600, "someone-else")).is_none());
        assert!(keys().verify(&make(now, now - 2, AUDIENCE)).is_some(), "within the 5 s leeway");
    }

    #[test]
    fn a_configured_secret_under_32_bytes_is_refused_without_repeating_it() {
        let dir = tempfile::tempdir().unwrap();
        let short = "s3cret-but-only-31-bytes-long!!";
        assert_eq!(short.len(), 31);
        let err = Keys::load_secret(Some(short), dir.path()).unwrap_err().to_string();
        assert!(err.contains("CONFAB_JWT_SECRET") && err.contains("at least 32") && err.contains("RFC 7518"), "{err}");
        assert!(!err.contains(short), "the message repeats the secret: {err}");
        let exact = "x".repeat(32);
        assert_eq!(Keys::load_secret(Some(&exact), dir.path()).unwrap(), exact.as_bytes());
        // Unset (or empty): one is generated, long enough.
        assert!(Keys::load_secret(Some(""), dir.path()).unwrap().len() >= MIN_SECRET_BYTES);
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_ne!(a, b);
        assert_eq!(hash_refresh_token(&a).len(), 64);
        assert!(!a.contains('.'), "a refresh token can never pass for a JWT");
    }
}
