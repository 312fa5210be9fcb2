//! "Log in with <provider>" for issuers with `login = true`: the part of the OpenID Connect
//! authorization code flow (with PKCE) that needs the issuer and its keys.
//!
//! The browser goes to the provider and comes back with a code; the web app sends that code
//! here with its PKCE verifier and the nonce it chose. Confab exchanges the code at the
//! provider's token endpoint (from the discovery document; the client secret when one is
//! configured, the verifier always), verifies the returned ID token exactly as a bearer of
//! the issuer is verified (the algorithm pinned by the key, `exp`, `nbf`), with `iss` the
//! configured one or else the provider's issuer identifier, `aud` the client (or the
//! configured `aud`), and its `nonce` the one sent. The identity maps to the account as a
//! bearer's does. Opening the Confab session is the caller's (`auth::oidc`).
//!
//! Everything that crosses the network is bounded: the body checks before any call, the
//! provider's answer by time ([`EXCHANGE_TIMEOUT`]) and by size ([`MAX_ANSWER_BYTES`]).
//! Refusals never repeat a code, a verifier or a token.

use std::time::Duration;

use confab_shared::{LoginProvider, OidcLogin};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;

use super::{Expected, Issuer, Issuers, Keys, Refusal, unverified};
use crate::auth::token::Identity;
use crate::error::AppError;
use crate::storage::Db;

/// The scopes the web app asks for: the ID token, and the profile claims (`preferred_username`).
pub const SCOPE: &str = "openid profile";
/// The whole call to the token endpoint, connect to last byte.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// A token endpoint's answer larger than this is refused (an ID token and an access token
/// are a few KB).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest accepted authorization code and redirect URI.
const MAX_CODE_CHARS: usize = 2048;
/// Longest accepted nonce.
const MAX_NONCE_CHARS: usize = 256;

/// Where the provider's endpoints come from, and why a login cannot start.
#[derive(Debug, thiserror::Error)]
enum Unready {
    #[error("the provider's discovery document could not be read: {0:#}")]
    Discovery(anyhow::Error),
    #[error("the provider's discovery document names no {0}")]
    Missing(&'static str),
}

/// A provider's discovered endpoints and issuer identifier.
struct Endpoints {
    issuer: Option<String>,
    authorization: String,
    token: String,
}

impl Issuer {
    /// The client id, when this issuer is offered for login.
    fn login_client(&self) -> Option<&str> {
        self.entry.client_id.as_deref().filter(|_| self.entry.login)
    }

    async fn endpoints(&self) -> Result<Endpoints, Unready> {
        let Keys::Published(jwks) = &self.keys else { return Err(Unready::Missing("endpoints (no discovery)")) };
        let doc = jwks.discovered().await.map_err(Unready::Discovery)?.ok_or(Unready::Missing("endpoints (no discovery)"))?;
        Ok(Endpoints {
            issuer: doc.issuer,
            authorization: doc.authorization_endpoint.ok_or(Unready::Missing("authorization_endpoint"))?,
            token: doc.token_endpoint.ok_or(Unready::Missing("token_endpoint"))?,
        })
    }
}

impl Issuers {
    /// The issuers offered for login, with what the web app needs to send the browser to
    /// them. One whose discovery document cannot be read now is left out (and logged): the
    /// login page still offers the others and the password.
    pub async fn login_providers(&self) -> Vec<LoginProvider> {
        let mut out = Vec::new();
        for issuer in &self.list {
            let Some(client_id) = issuer.login_client() else { continue };
            match issuer.endpoints().await {
                Ok(endpoints) => out.push(LoginProvider {
                    name: issuer.entry.name.clone(),
                    label: issuer.entry.label.clone().unwrap_or_else(|| issuer.entry.name.clone()),
                    authorization_endpoint: endpoints.authorization,
                    client_id: client_id.to_owned(),
                    scope: SCOPE.to_owned(),
                }),
                Err(err) => tracing::warn!(issuer = %issuer.entry.name, %err, "not offered for login"),
            }
        }
        out
    }

    /// Completes a login with the issuer `name`: exchanges the code, verifies the ID token
    /// and its nonce, and maps it to its account (created on first use).
    ///
    /// 404 for an issuer that does not exist or is not offered for login (the same answer:
    /// the other issuers are nobody's business), 422 for a malformed body, 401 when the
    /// provider refuses the code or the ID token is refused (the detail says which rule),
    /// 503 when the provider cannot be reached or fails.
    pub async fn log_in(&self, db: &Db, name: &str, login: &OidcLogin) -> Result<Identity, AppError> {
        let Some((issuer, client_id)) = self.list.iter().find(|i| i.entry.name == name).and_then(|i| Some((i, i.login_client()?))) else {
            return Err(AppError::NotFound("login provider"));
        };
        check(login)?;
        let endpoints = issuer.endpoints().await.map_err(|err| {
            tracing::warn!(issuer = %name, %err, "login impossible");
            AppError::Unavailable("the identity provider cannot be reached; try again later")
        })?;
        let id_token = exchange(issuer, client_id, &endpoints.token, login).await?;
        let token = unverified(&id_token)?;
        let mut aud = vec![client_id];
        aud.extend(issuer.entry.aud.as_deref());
        let iss = issuer.entry.iss.as_deref().or(endpoints.issuer.as_deref());
        let expected = Expected { iss, aud, require_exp: true };
        let outcome: Result<Identity, AppError> = async {
            let claims = issuer.verify(&id_token, token.alg, token.kid.as_deref(), &expected).await?;
            if claims.get("nonce").and_then(Value::as_str) != Some(login.nonce.as_str()) {
                tracing::info!(issuer = %name, "ID token refused: its nonce is not the login's");
                return Err(Refusal::new("the ID token's nonce is not the one this login sent").into());
            }
            self.identity(db, issuer, &claims).await
        }
        .await;
        // Counted with the bearer tokens of this issuer (`confab_issuer_tokens_total`).
        let counter = if outcome.is_ok() { &issuer.accepted } else { &issuer.refused };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        outcome
    }
}

/// The body's rules, before anything is sent to the provider.
fn check(login: &OidcLogin) -> Result<(), AppError> {
    if login.code.is_empty() || login.code.len() > MAX_CODE_CHARS {
        return Err(AppError::invalid("code", format!("must be 1 to {MAX_CODE_CHARS} characters")));
    }
    let verifier = &login.code_verifier;
    if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
        return Err(AppError::invalid("code_verifier", "must be 43 to 128 of A-Z a-z 0-9 - . _ ~ (RFC 7636)"));
    }
    let uri = &login.redirect_uri;
    if uri.len() > MAX_CODE_CHARS || !(uri.starts_with("https://") || uri.starts_with("http://")) {
        return Err(AppError::invalid("redirect_uri", format!("must be an http:// or https:// URL of at most {MAX_CODE_CHARS} characters")));
    }
    if login.nonce.is_empty() || login.nonce.len() > MAX_NONCE_CHARS {
        return Err(AppError::invalid("nonce", format!("must be 1 to {MAX_NONCE_CHARS} characters")));
    }
    Ok(())
}

/// The token endpoint's answer, as far as Confab reads it.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    error: Option<String>,
}

/// Exchanges the code for the provider's ID token (RFC 6749 §4.1.3 with RFC 7636's verifier).
async fn exchange(issuer: &Issuer, client_id: &str, token_endpoint: &str, login: &OidcLogin) -> Result<String, AppError> {
    let name = &issuer.entry.name;
    // The serializer is not Send: the form is finished before anything is awaited.
    let form = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code")
            .append_pair("code", &login.code)
            .append_pair("redirect_uri", &login.redirect_uri)
            .append_pair("code_verifier", &login.code_verifier);
        if issuer.entry.client_secret.is_none() {
            form.append_pair("client_id", client_id);
        }
        form.finish()
    };
    let mut request = issuer
        .client
        .post(token_endpoint)
        .timeout(EXCHANGE_TIMEOUT)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json");
    if let Some(secret) = &issuer.entry.client_secret {
        // client_secret_basic (RFC 6749 §2.3.1: each part form-encoded first).
        request = request.basic_auth(encoded(client_id), Some(encoded(secret)));
    }
    let unavailable = |why: &dyn std::fmt::Display| {
        tracing::warn!(issuer = %name, error = %why, "the token endpoint failed");
        AppError::Unavailable("the identity provider's token endpoint failed; try again later")
    };
    let mut response = request.body(form).send().await.map_err(|e| unavailable(&e))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unavailable(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(unavailable(&format!("the answer is larger than {MAX_ANSWER_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_server_error() || !(status.is_success() || status.is_client_error()) {
        return Err(unavailable(&format!("status {status}")));
    }
    let answer: Option<TokenAnswer> = serde_json::from_slice(&body).ok();
    if status.is_client_error() {
        // An OAuth error code is a short word (`invalid_grant`); anything else is not shown.
        let code = answer.and_then(|a| a.error).filter(|e| !e.is_empty() && e.len() <= 40 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        tracing::info!(issuer = %name, %status, error = code.as_deref().unwrap_or("-"), "the provider refused the authorization code");
        let detail = match code {
            Some(code) => format!("the identity provider refused the authorization code ({code})"),
            None => "the identity provider refused the authorization code".to_owned(),
        };
        return Err(Refusal::owned(detail).into());
    }
    match answer {
        Some(TokenAnswer { id_token: Some(id_token), .. }) => Ok(id_token),
        Some(_) => Err(Refusal::new("the identity provider's answer holds no ID token (is `openid` granted to the client?)").into()),
        None => Err(unavailable(&"the answer is not JSON")),
    }
}

fn encoded(part: &str) -> String {
    form_urlencoded::byte_serialize(part.as_bytes()).collect()
}
