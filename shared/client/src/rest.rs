//! The REST endpoints a client needs (accounts, tokens, publishing), with the shared crate's
//! bodies. A non-2xx answer is [`Error::Http`] with its problem+json document.

use std::time::Duration;

use confab_shared::{
    ApiToken, ApiTokenCreated, CreateApiToken, Credentials, Problem, PublishAccepted, PublishRequest, RefreshRequest, TokenPair, User,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// How long one REST request may take, unless [`Rest::with_timeout`] says otherwise.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A REST client of one server; cheap to clone (one connection pool).
#[derive(Clone, Debug)]
pub struct Rest {
    http: reqwest::Client,
    /// The origin without a trailing slash, e.g. `http://127.0.0.1:8000`.
    base: String,
}

impl Rest {
    /// `base` is the server's origin, e.g. `http://127.0.0.1:8000`. Only `http://`: this
    /// build has no TLS (put a TLS-terminating proxy's plain side, or a tunnel, in between).
    pub fn new(base: &str) -> Result<Self, Error> {
        Self::with_timeout(base, REQUEST_TIMEOUT)
    }

    /// [`Rest::new`] with a bound on each request other than 30 s.
    pub fn with_timeout(base: &str, timeout: Duration) -> Result<Self, Error> {
        let base = base.trim_end_matches('/');
        let Some(authority) = base.strip_prefix("http://") else {
            return Err(Error::Url { url: base.to_owned(), reason: "must start with http:// (this build has no TLS)" });
        };
        if authority.is_empty() || authority.contains('/') {
            return Err(Error::Url { url: base.to_owned(), reason: "must be an origin: http://host:port, without a path" });
        }
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self { http, base: base.to_owned() })
    }

    /// The server's origin.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The socket URL: `ws://…/ws`.
    pub fn socket_url(&self) -> String {
        format!("ws://{}/ws", &self.base["http://".len()..])
    }

    /// `POST /api/auth/signup`: the new account.
    pub async fn signup(&self, credentials: &Credentials) -> Result<User, Error> {
        self.send(self.http.post(self.url("/api/auth/signup")).json(credentials)).await
    }

    /// `POST /api/auth/login`: an access token (JWT) and a single-use refresh token.
    /// A refused login is [`Error::AuthFailed`].
    pub async fn login(&self, credentials: &Credentials) -> Result<TokenPair, Error> {
        match self.send(self.http.post(self.url("/api/auth/login")).json(credentials)).await {
            // 401 wrong password, 422 a malformed username, 429 throttled.
            Err(Error::Http { status, problem }) if (400..500).contains(&status) => Err(Error::AuthFailed { status, problem }),
            other => other,
        }
    }

    /// `POST /api/auth/refresh`: a rotated pair; the old refresh token stops working.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let body = RefreshRequest { refresh_token: refresh_token.to_owned() };
        self.send(self.http.post(self.url("/api/auth/refresh")).json(&body)).await
    }

    /// `POST /api/auth/logout`: revokes the session of `access_token`; its sockets close with 4003.
    pub async fn logout(&self, access_token: &str) -> Result<(), Error> {
        let response = self.http.post(self.url("/api/auth/logout")).bearer_auth(access_token).send().await?;
        check(response).await.map(drop)
    }

    /// `GET /api/me`: the account behind a token (an access token or an API token).
    pub async fn me(&self, token: &str) -> Result<User, Error> {
        self.send(self.http.get(self.url("/api/me")).bearer_auth(token)).await
    }

    /// `POST /api/tokens` (a login's access token; an API token cannot mint tokens): a
    /// `cfb_…` API token, whose secret is in this answer only.
    pub async fn create_api_token(&self, access_token: &str, request: &CreateApiToken) -> Result<ApiTokenCreated, Error> {
        self.post("/api/tokens", access_token, request).await
    }

    /// `GET /api/tokens`: the caller's API tokens, without their secrets.
    pub async fn api_tokens(&self, access_token: &str) -> Result<Vec<ApiToken>, Error> {
        self.send(self.http.get(self.url("/api/tokens")).bearer_auth(access_token)).await
    }

    /// `DELETE /api/tokens/{id}`: revokes an API token; every socket opened with it closes with 4003.
    pub async fn revoke_api_token(&self, access_token: &str, id: i64) -> Result<(), Error> {
        let response = self.http.delete(self.url(&format!("/api/tokens/{id}"))).bearer_auth(access_token).send().await?;
        check(response).await.map(drop)
    }

    /// `POST /api/publish` (an admin, or an API token with the `publish` scope): a `notice`
    /// to the connections of a room, a user or everyone.
    pub async fn publish(&self, token: &str, request: &PublishRequest) -> Result<PublishAccepted, Error> {
        self.send(self.http.post(self.url("/api/publish")).bearer_auth(token).json(request)).await
    }

    /// A JSON request to any other endpoint, e.g. `post("/api/rooms", token, &body)`.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, token: &str, body: &B) -> Result<T, Error> {
        self.send(self.http.post(self.url(path)).bearer_auth(token).json(body)).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, Error> {
        let response = check(request.send().await?).await?;
        let bytes = response.bytes().await?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// Passes a 2xx response through; anything else becomes [`Error::Http`].
async fn check(response: reqwest::Response) -> Result<reqwest::Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let problem = response.bytes().await.ok().and_then(|body| serde_json::from_slice::<Problem>(&body).ok());
    Err(Error::Http { status: status.as_u16(), problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_origins_are_accepted() {
        // See the rustls dev-dependency in Cargo.toml.
        let _ = rustls::crypto::ring::default_provider().install_default();
        assert_eq!(Rest::new("http://127.0.0.1:8000/").map(|r| r.socket_url()).ok().as_deref(), Some("ws://127.0.0.1:8000/ws"));
        for bad in ["https://example.com", "ws://127.0.0.1:1", "127.0.0.1:8000", "http://", "http://host/api"] {
            assert!(matches!(Rest::new(bad), Err(Error::Url { .. })), "{bad} should be refused");
        }
    }
}
