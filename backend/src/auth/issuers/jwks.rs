//! An issuer's JWKS: fetched when first needed, cached for the response's lifetime (within
//! bounds), refetched for an unknown `kid` at most once per `jwks_refetch_secs`, and kept
//! serving from the cache while the endpoint is down (the outage is logged once). With
//! discovery, the discovery document is kept too: the login flow needs its endpoints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use reqwest::header::CACHE_CONTROL;

use super::Refusal;
use super::config::{Family, Key};

/// Cache lifetimes outside these bounds are clamped: a `max-age=0` endpoint must not make
/// every token a fetch, and keys must not be trusted for days after a rotation.
const MIN_CACHE: Duration = Duration::from_secs(60);
const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
/// The lifetime of a response that states none.
const DEFAULT_CACHE: Duration = Duration::from_secs(3600);
/// A JWKS or discovery document larger than this is refused (a handful of keys is ~10 KB).
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Keys kept from one document.
const MAX_KEYS: usize = 64;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What Confab reads of an OpenID Connect discovery document.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Discovered {
    /// The provider's issuer identifier: the `iss` of its ID tokens.
    pub issuer: Option<String>,
    pub jwks_uri: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
}

/// Where the JWKS is found.
pub enum Location {
    Jwks(String),
    Discovery(String),
}

/// One issuer's key set and its fetching policy.
pub struct Jwks {
    issuer: String,
    location: Location,
    refetch_every: Duration,
    client: reqwest::Client,
    // A tokio mutex: held across a fetch so that concurrent tokens wait for one fetch
    // instead of each starting their own.
    state: tokio::sync::Mutex<State>,
    /// Fetches that brought keys, and that failed (metrics).
    fetched: AtomicU64,
    failed: AtomicU64,
}

#[derive(Default)]
struct State {
    keys: Vec<(Option<String>, Key)>,
    /// When the cached keys are due for a refresh.
    fresh_until: Option<Instant>,
    last_fetch: Option<Instant>,
    /// The discovery document, once read (its endpoints do not move while a provider runs).
    discovered: Option<Discovered>,
    /// When discovery was last attempted, so a provider that is down costs one fetch per
    /// `jwks_refetch_secs`, not one per request.
    last_discovery: Option<Instant>,
    /// The endpoint is failing and that was logged (cleared by the next success).
    down: bool,
}

impl Jwks {
    pub fn new(issuer: String, location: Location, refetch_every: Duration, client: reqwest::Client) -> Self {
        Self { issuer, location, refetch_every, client, state: tokio::sync::Mutex::default(), fetched: AtomicU64::new(0), failed: AtomicU64::new(0) }
    }

    /// Fetches so far: (succeeded, failed).
    pub fn fetches(&self) -> (u64, u64) {
        (self.fetched.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }

    /// The key for a token's `kid` (or the only key, for a token without one).
    pub async fn key(&self, kid: Option<&str>) -> Result<Key, Refusal> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let stale = state.fresh_until.is_none_or(|t| t <= now);
        let found = find(&state.keys, kid);
        let may_fetch = state.last_fetch.is_none_or(|t| now.duration_since(t) >= self.refetch_every);
        if (stale || found.is_none()) && may_fetch {
            state.last_fetch = Some(now);
            match self.fetch(&mut state).await {
                Ok((keys, lifetime)) => {
                    self.fetched.fetch_add(1, Ordering::Relaxed);
                    if state.down {
                        tracing::info!(issuer = %self.issuer, "the JWKS endpoint answers again");
                    }
                    state.keys = keys;
                    state.fresh_until = Some(now + lifetime);
                    state.down = false;
                }
                Err(err) => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    if !state.down {
                        tracing::warn!(issuer = %self.issuer, %err, "the JWKS endpoint failed; verifying with the cached keys until it answers");
                    }
                    state.down = true;
                }
            }
            return find(&state.keys, kid).ok_or_else(|| unknown(kid, state.keys.is_empty()));
        }
        found.ok_or_else(|| unknown(kid, state.keys.is_empty()))
    }

    async fn fetch(&self, state: &mut State) -> anyhow::Result<(Vec<(Option<String>, Key)>, Duration)> {
        let url = match &self.location {
            Location::Jwks(url) => url.clone(),
            Location::Discovery(base) => match &state.discovered {
                Some(doc) => doc.jwks_uri.clone(),
                None => {
                    let doc = self.discover(base).await?;
                    let uri = doc.jwks_uri.clone();
                    state.discovered = Some(doc);
                    uri
                }
            },
        };
        let (body, lifetime) = self.get(&url).await?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| anyhow::anyhow!("the JWKS at {url} is not a key set: {e}"))?;
        let keys: Vec<(Option<String>, Key)> = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone(), jwk_key(&jwk.algorithm)?)))
            .take(MAX_KEYS)
            .collect();
        Ok((keys, lifetime))
    }

    /// The discovery document (read once, then kept); `None` without discovery.
    pub async fn discovered(&self) -> anyhow::Result<Option<Discovered>> {
        let Location::Discovery(base) = &self.location else { return Ok(None) };
        let mut state = self.state.lock().await;
        if let Some(doc) = &state.discovered {
            return Ok(Some(doc.clone()));
        }
        let now = Instant::now();
        if state.last_discovery.is_some_and(|t| now.duration_since(t) < self.refetch_every) {
            anyhow::bail!("the discovery document could not be read a moment ago; not asking again yet");
        }
        state.last_discovery = Some(now);
        let doc = self.discover(base).await?;
        state.discovered = Some(doc.clone());
        Ok(Some(doc))
    }

    async fn discover(&self, base: &str) -> anyhow::Result<Discovered> {
        let url = if base.contains("/.well-known/") {
            base.to_owned()
        } else {
            format!("{}/.well-known/openid-configuration", base.trim_end_matches('/'))
        };
        let (body, _) = self.get(&url).await?;
        serde_json::from_slice(&body).map_err(|e| anyhow::anyhow!("the discovery document at {url} has no jwks_uri: {e}"))
    }

    /// GET with a timeout and a size bound; returns the body and its cache lifetime.
    async fn get(&self, url: &str) -> anyhow::Result<(Vec<u8>, Duration)> {
        let mut response = self.client.get(url).timeout(FETCH_TIMEOUT).send().await?.error_for_status()?;
        let lifetime = response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .map_or(DEFAULT_CACHE, |secs| Duration::from_secs(secs).clamp(MIN_CACHE, MAX_CACHE));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                anyhow::bail!("{url} answered more than {MAX_DOCUMENT_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, lifetime))
    }
}

fn find(keys: &[(Option<String>, Key)], kid: Option<&str>) -> Option<Key> {
    match kid {
        Some(kid) => keys.iter().find(|(k, _)| k.as_deref() == Some(kid)).map(|(_, key)| key.clone()),
        // Without a `kid`, only an unambiguous set can answer.
        None => match keys {
            [(_, key)] => Some(key.clone()),
            _ => None,
        },
    }
}

fn unknown(kid: Option<&str>, empty: bool) -> Refusal {
    match (kid, empty) {
        (_, true) => Refusal::new("the issuer's keys could not be fetched"),
        (Some(_), false) => Refusal::new("the token's key id (kid) is not among the issuer's keys"),
        (None, false) => Refusal::new("the token names no key id (kid) and the issuer has several keys"),
    }
}

/// A JWK's verification key and kind; `None` for symmetric or unsupported keys.
fn jwk_key(params: &AlgorithmParameters) -> Option<Key> {
    match params {
        AlgorithmParameters::RSA(rsa) => Some(Key { family: Family::Rsa, key: DecodingKey::from_rsa_components(&rsa.n, &rsa.e).ok()? }),
        AlgorithmParameters::EllipticCurve(ec) => {
            let family = match ec.curve {
                EllipticCurve::P256 => Family::EcP256,
                EllipticCurve::P384 => Family::EcP384,
                _ => return None,
            };
            Some(Key { family, key: DecodingKey::from_ec_components(&ec.x, &ec.y).ok()? })
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Some(Key { family: Family::Ed25519, key: DecodingKey::from_ed_components(&okp.x).ok()? })
        }
        // A published symmetric key would let anyone who reads the JWKS sign tokens.
        _ => None,
    }
}

/// `max-age` of a `Cache-Control` value (`no-store` / `no-cache` count as 0).
fn max_age(value: &str) -> Option<u64> {
    value.split(',').map(str::trim).find_map(|directive| {
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        directive.strip_prefix("max-age=")?.trim_matches('"').parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_gives_the_lifetime() {
        assert_eq!(max_age("public, max-age=600"), Some(600));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("public"), None);
    }
}
