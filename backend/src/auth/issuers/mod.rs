//! Trusted issuers (`CONFAB_ISSUERS_FILE`): tokens signed by a team's own backend (a shared
//! key) or identity provider (a PEM key, a JWKS, OpenID Connect discovery) work wherever
//! Confab's access tokens do, mapped to Confab accounts created on first use.
//!
//! # Layout
//! - [`config`]: the file's keys and the checks made at start; key kinds.
//! - [`jwks`]: fetching and caching an issuer's published keys.
//! - [`claims`]: user, name, admin and rooms claims; usernames for new accounts.
//! - [`login`]: "Log in with" (`login = true`): the code exchange and the ID token's checks.
//! - this file: choosing the issuer, pinning the algorithm to the key, validating, mapping.
//!
//! The algorithm is decided by the key's type (and the issuer's `algorithms`), never by the
//! token's header alone. A refused token gets a reason naming the rule it broke; the reason
//! never contains the token.

pub mod claims;
pub mod config;
pub mod jwks;
pub mod login;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use self::config::{Checked, Entry, Key, Source};
use self::jwks::{Jwks, Location};
use crate::auth::api_tokens::NEVER_EXPIRES_SECS;
use crate::auth::scopes::Scopes;
use crate::auth::token::{External, Identity};
use crate::error::AppError;
use crate::storage::Db;
use crate::storage::external_identities::{self, Account};

/// Tokens longer than this are refused before any parsing (a JWT with a few claims and an
/// RS256 signature is well under 2 KB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `max_age_secs`.
const LEEWAY_SECS: u64 = 5;
/// Mapped accounts remembered in memory (mappings never change, so they never go stale).
const MAX_REMEMBERED: usize = 100_000;

/// Why a token was refused: a sentence naming the rule (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(Cow<'static, str>);

impl Refusal {
    pub fn new(reason: &'static str) -> Self {
        Self(Cow::Borrowed(reason))
    }

    pub fn owned(reason: String) -> Self {
        Self(Cow::Owned(reason))
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> Self {
        AppError::TokenRefused(refusal.0.into_owned())
    }
}

/// The configured issuers (none by default) and the accounts their tokens mapped to.
#[derive(Default)]
pub struct Issuers {
    list: Vec<Issuer>,
    accounts: dashmap::DashMap<(String, String), Account>,
}

struct Issuer {
    entry: Entry,
    algorithms: Vec<Algorithm>,
    keys: Keys,
    /// Tokens of this issuer accepted, and refused once this issuer was the one to check them.
    accepted: crate::metrics::Counter,
    refused: crate::metrics::Counter,
    /// For the login flow's calls to the provider's token endpoint.
    client: reqwest::Client,
}

/// What a token's claims must hold beyond its signature and times.
struct Expected<'a> {
    iss: Option<&'a str>,
    /// Accepted audiences; empty: `aud` is not checked.
    aud: Vec<&'a str>,
    require_exp: bool,
}

enum Keys {
    Static(Key),
    Published(Jwks),
}

impl Issuers {
    /// The issuers of `CONFAB_ISSUERS_FILE`, or none without one; a bad file is an error
    /// naming the entry and the field.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        match path {
            None => Ok(Self::default()),
            Some(path) => Self::from_checked(config::load(path)?),
        }
    }

    /// Issuers from checked entries.
    pub fn from_checked(list: Vec<Checked>) -> anyhow::Result<Self> {
        let client = crate::tls::client_builder().connect_timeout(Duration::from_secs(5)).build()?;
        let list = list
            .into_iter()
            .map(|Checked { entry, source, algorithms }| {
                let refetch = Duration::from_secs(entry.jwks_refetch_secs);
                let keys = match source {
                    Source::Static(key) => Keys::Static(key),
                    Source::JwksUrl(url) => Keys::Published(Jwks::new(entry.name.clone(), Location::Jwks(url), refetch, client.clone())),
                    Source::Discovery(url) => Keys::Published(Jwks::new(entry.name.clone(), Location::Discovery(url), refetch, client.clone())),
                };
                Issuer { entry, algorithms, keys, client: client.clone(), accepted: Default::default(), refused: Default::default() }
            })
            .collect();
        Ok(Self { list, accounts: dashmap::DashMap::new() })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The configured issuers' names, for the start-up log.
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|i| i.entry.name.as_str()).collect()
    }

    /// Appends the issuers' series in Prometheus text format (nothing without issuers).
    pub fn render_metrics(&self, out: &mut String) {
        use crate::metrics::{counter_line, header, label};
        if self.list.is_empty() {
            return;
        }
        header(out, "confab_issuer_tokens_total", "counter", "Tokens of trusted issuers checked, by issuer and outcome");
        for issuer in &self.list {
            let name = label(&issuer.entry.name);
            for (outcome, counter) in [("accepted", &issuer.accepted), ("refused", &issuer.refused)] {
                counter_line(out, "confab_issuer_tokens_total", &format!("issuer=\"{name}\",outcome=\"{outcome}\""), counter.load(Ordering::Relaxed));
            }
        }
        header(out, "confab_issuer_key_fetches_total", "counter", "Fetches of a trusted issuer's published keys (discovery and JWKS), by issuer and result");
        for issuer in &self.list {
            if let Keys::Published(jwks) = &issuer.keys {
                let name = label(&issuer.entry.name);
                let (ok, failed) = jwks.fetches();
                counter_line(out, "confab_issuer_key_fetches_total", &format!("issuer=\"{name}\",result=\"ok\""), ok);
                counter_line(out, "confab_issuer_key_fetches_total", &format!("issuer=\"{name}\",result=\"failed\""), failed);
            }
        }
    }

    /// Whether this token is for the issuers rather than for Confab's own keys: any token
    /// whose (unverified) `iss` is not Confab's, once issuers are configured.
    pub fn claims(&self, token: &str) -> bool {
        if self.list.is_empty() {
            return false;
        }
        let iss = token.split('.').nth(1).and_then(|p| decode_part(p).ok()).and_then(|m| m.get("iss").cloned());
        iss.as_ref().and_then(Value::as_str) != Some(crate::auth::token::ISSUER)
    }

    /// Verifies a token of a trusted issuer and maps it to its account (created on first use).
    pub async fn authenticate(&self, db: &Db, token: &str) -> Result<Identity, AppError> {
        let Unverified { alg, kid, payload } = unverified(token)?;
        let kid = kid.as_deref();
        let iss = payload.get("iss").and_then(Value::as_str);
        let by_iss: Vec<&Issuer> = self.list.iter().filter(|i| iss.is_some() && i.entry.iss.as_deref() == iss).collect();
        let candidates = if by_iss.is_empty() { self.list.iter().filter(|i| i.entry.iss.is_none()).collect() } else { by_iss };
        let mut first_refusal = None;
        for issuer in candidates {
            match issuer.verify(token, alg, kid, &issuer.bearer_expectations()).await {
                Ok(claims) => {
                    let identity = self.identity(db, issuer, &claims).await;
                    let counter = if identity.is_ok() { &issuer.accepted } else { &issuer.refused };
                    counter.fetch_add(1, Ordering::Relaxed);
                    return identity;
                }
                Err(refusal) => {
                    issuer.refused.fetch_add(1, Ordering::Relaxed);
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        Err(first_refusal.unwrap_or_else(|| Refusal::new("no trusted issuer matches the token's issuer (iss)")).into())
    }

    async fn identity(&self, db: &Db, issuer: &Issuer, claims: &Map<String, Value>) -> Result<Identity, AppError> {
        let entry = &issuer.entry;
        let subject = claims::subject(claims, &entry.user_claim)?;
        let is_admin = match (&entry.admin_claim, &entry.admin_value) {
            (Some(claim), Some(value)) => claims::has_value(claims, claim, value),
            _ => false,
        };
        let rooms = match &entry.rooms_claim {
            Some(claim) => claims::rooms(claims, claim)?,
            None => Vec::new(),
        };
        let expires_at = expiry(entry, claims)?;
        let key = (entry.name.clone(), subject);
        let account = match self.accounts.get(&key) {
            Some(account) => account.clone(),
            None => {
                let name = claims.get(&entry.name_claim).and_then(Value::as_str);
                let names = claims::username_candidates(&entry.name, &key.1, name);
                let account = external_identities::find_or_create(db, &entry.name, &key.1, &names, is_admin).await?;
                if self.accounts.len() < MAX_REMEMBERED {
                    self.accounts.insert(key, account.clone());
                }
                account
            }
        };
        Ok(Identity {
            user_id: account.user_id,
            username: account.username,
            is_admin,
            session_id: String::new(),
            expires_at,
            scopes: Scopes::ALL,
            api_token: None,
            external: Some(Arc::new(External { issuer: entry.name.clone(), rooms, exclusive: entry.rooms_claim_exclusive })),
        })
    }
}

/// What a token's header and claims say before anything is verified.
struct Unverified {
    alg: Algorithm,
    kid: Option<String>,
    payload: Map<String, Value>,
}

/// Reads a JWT's header and claims (size first, `alg: none` refused), to choose the key.
fn unverified(token: &str) -> Result<Unverified, Refusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::owned(format!("the token is larger than {MAX_TOKEN_BYTES} bytes")));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, _signature] = parts.as_slice() else {
        return Err(Refusal::new("not a JWT (three dot-separated parts)"));
    };
    let header = decode_part(header).map_err(|()| Refusal::new("the token's header is not base64url JSON"))?;
    let payload = decode_part(payload).map_err(|()| Refusal::new("the token's claims are not base64url JSON"))?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or(Refusal::new("the token's header names no algorithm"))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(Refusal::new("unsigned tokens (alg none) are never accepted"));
    }
    let alg: Algorithm = alg.parse().map_err(|_| Refusal::new("the token's algorithm is not supported"))?;
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok(Unverified { alg, kid, payload })
}

impl Issuer {
    /// A bearer token's expectations: the issuers file's `iss`, `aud` and `require_exp`.
    fn bearer_expectations(&self) -> Expected<'_> {
        Expected { iss: self.entry.iss.as_deref(), aud: self.entry.aud.as_deref().into_iter().collect(), require_exp: self.entry.require_exp }
    }

    /// Signature, algorithm, `iss`, `aud`, `exp`, `nbf`: the verified claims or why not.
    async fn verify(&self, token: &str, alg: Algorithm, kid: Option<&str>, expected: &Expected<'_>) -> Result<Map<String, Value>, Refusal> {
        let name = &self.entry.name;
        if !self.algorithms.contains(&alg) {
            return Err(Refusal::owned(format!("the algorithm {alg:?} is not accepted from issuer \"{name}\"")));
        }
        let key = match &self.keys {
            Keys::Static(key) => key.clone(),
            Keys::Published(jwks) => jwks.key(kid).await?,
        };
        if !key.family.allows(alg) {
            return Err(Refusal::owned(format!("the algorithm {alg:?} does not match the type of issuer \"{name}\"'s key")));
        }
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = Vec::new();
        if expected.require_exp {
            required.push("exp");
        }
        if let Some(iss) = expected.iss {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        if expected.aud.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&expected.aud);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation).map(|data| data.claims).map_err(|err| refusal(err.kind()))
    }
}

fn refusal(kind: &ErrorKind) -> Refusal {
    match kind {
        ErrorKind::ExpiredSignature => Refusal::new("the token has expired (exp)"),
        ErrorKind::ImmatureSignature => Refusal::new("the token is not valid yet (nbf)"),
        ErrorKind::InvalidIssuer => Refusal::new("the token's issuer (iss) is not the configured one"),
        ErrorKind::InvalidAudience => Refusal::new("the token's audience (aud) is not this server"),
        ErrorKind::MissingRequiredClaim(claim) => Refusal::owned(format!("the token lacks the required claim `{claim}`")),
        ErrorKind::InvalidAlgorithm => Refusal::new("the token's algorithm does not match the key"),
        ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::Crypto(_) => {
            Refusal::new("the signature does not verify")
        }
        _ => Refusal::new("the token is malformed"),
    }
}

/// When the token stops being accepted: its `exp`; without one (allowed by
/// `require_exp = false`) `iat + max_age_secs`, or, without `iat`, never (the socket lives on).
fn expiry(entry: &Entry, claims: &Map<String, Value>) -> Result<i64, Refusal> {
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
        return Ok(exp);
    }
    let Some(iat) = claims.get("iat").and_then(Value::as_i64) else { return Ok(NEVER_EXPIRES_SECS) };
    let until = iat.saturating_add(i64::try_from(entry.max_age_secs).unwrap_or(i64::MAX));
    if until.saturating_add(LEEWAY_SECS as i64) < chrono::Utc::now().timestamp() {
        return Err(Refusal::new("the token has no exp and was issued (iat) longer than max_age_secs ago"));
    }
    Ok(until)
}

fn decode_part(part: &str) -> Result<Map<String, Value>, ()> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| ())?;
    serde_json::from_slice(&bytes).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confab_tokens_stay_with_confab_keys_and_others_go_to_the_issuers() {
        let checked = config::parse("[[issuer]]\nname = \"django\"\nsecret = \"0123456789abcdef0123456789abcdef\"\nalgorithms = [\"HS256\"]\n", Path::new(".")).unwrap();
        let issuers = Issuers::from_checked(checked).unwrap();
        let part = |v: &str| URL_SAFE_NO_PAD.encode(v);
        let ours = format!("{}.{}.sig", part(r#"{"alg":"HS256"}"#), part(r#"{"iss":"confab"}"#));
        let theirs = format!("{}.{}.sig", part(r#"{"alg":"HS256"}"#), part(r#"{"uid":1}"#));
        assert!(!issuers.claims(&ours));
        assert!(issuers.claims(&theirs));
        assert!(!Issuers::default().claims(&theirs), "without issuers every token is Confab's");
    }
}
