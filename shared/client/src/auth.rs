//! How a client proves who it is on every (re)connect: a fixed bearer token (an API token
//! `cfb_…`, or an access token the application manages), a login it renews by itself, or
//! nothing (anonymous, read-only).

use std::time::{Duration, Instant};

use confab_shared::{Credentials, TokenPair, User};
use tokio::sync::Mutex;

use crate::{Error, Rest};

/// The most a token may have left and still be renewed before a connect (a third of its
/// lifetime when that is shorter): a socket opened with a token about to expire would be
/// closed with 4001 before `session.expiring` could help.
const RENEW_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) enum Auth {
    /// Sent as is; `None` is anonymous.
    Fixed(Option<String>),
    Login(Box<LoginSession>),
}

impl Auth {
    /// Whether [`Auth::renew`] can replace an expiring access token.
    pub(crate) fn renewable(&self) -> bool {
        matches!(self, Self::Login(_))
    }

    /// The bearer token for the next upgrade, renewed first when it is about to expire.
    pub(crate) async fn bearer(&self) -> Result<Option<String>, Error> {
        match self {
            Self::Fixed(token) => Ok(token.clone()),
            Self::Login(session) => session.bearer().await.map(Some),
        }
    }

    /// A fresh access token (refresh, or log in again); `stale` is the one the caller saw,
    /// so that of two concurrent renewals the second reuses the first's result.
    pub(crate) async fn renew(&self, stale: Option<&str>) -> Result<String, Error> {
        match self {
            Self::Fixed(_) => Err(Error::Closed { close_code: None }),
            Self::Login(session) => session.renew(stale).await,
        }
    }

    /// Makes the next `bearer` renew (the server refused the current token).
    pub(crate) async fn invalidate(&self) {
        if let Self::Login(session) = self {
            session.state.lock().await.expires = Instant::now();
        }
    }

    /// Logs the session out, if the client opened one.
    pub(crate) async fn end(&self) -> Result<(), Error> {
        match self {
            Self::Fixed(_) => Ok(()),
            Self::Login(session) => session.end().await,
        }
    }

    /// The account, when the client logged in itself.
    pub(crate) async fn user(&self) -> Option<User> {
        match self {
            Self::Fixed(_) => None,
            Self::Login(session) => session.state.lock().await.pair.as_ref().map(|p| p.user.clone()),
        }
    }
}

/// Logs in with a username and password, refreshes before expiry, logs in again when the
/// refresh token is no longer accepted.
#[derive(Debug)]
pub(crate) struct LoginSession {
    rest: Rest,
    credentials: Credentials,
    /// Held across the REST call of a renewal: refresh tokens are single-use, so two
    /// concurrent refreshes would fail one of them.
    state: Mutex<SessionState>,
}

#[derive(Debug)]
struct SessionState {
    pair: Option<TokenPair>,
    /// When the access token expires, by this machine's clock at receipt.
    expires: Instant,
}

impl LoginSession {
    pub(crate) fn new(rest: Rest, credentials: Credentials) -> Self {
        Self { rest, credentials, state: Mutex::new(SessionState { pair: None, expires: Instant::now() }) }
    }

    async fn bearer(&self) -> Result<String, Error> {
        let mut state = self.state.lock().await;
        match &state.pair {
            Some(pair) => {
                let lifetime = Duration::from_secs(pair.expires_in.max(0) as u64);
                let margin = RENEW_MARGIN.min(lifetime / 3);
                if state.expires.saturating_duration_since(Instant::now()) > margin {
                    return Ok(pair.access_token.clone());
                }
                self.refresh_or_login(&mut state).await
            }
            None => self.login(&mut state).await,
        }
    }

    async fn renew(&self, stale: Option<&str>) -> Result<String, Error> {
        let mut state = self.state.lock().await;
        if let (Some(pair), Some(stale)) = (&state.pair, stale)
            && pair.access_token != stale
        {
            return Ok(pair.access_token.clone());
        }
        self.refresh_or_login(&mut state).await
    }

    async fn end(&self) -> Result<(), Error> {
        let pair = self.state.lock().await.pair.take();
        match pair {
            Some(pair) => self.rest.logout(&pair.access_token).await,
            None => Ok(()),
        }
    }

    async fn refresh_or_login(&self, state: &mut SessionState) -> Result<String, Error> {
        let Some(pair) = &state.pair else { return self.login(state).await };
        match self.rest.refresh(&pair.refresh_token).await {
            Ok(pair) => Ok(keep(state, pair)),
            // 401: the refresh token expired, was used already, or its session was revoked.
            Err(Error::Http { status: 401, .. }) => self.login(state).await,
            Err(err) => Err(err),
        }
    }

    async fn login(&self, state: &mut SessionState) -> Result<String, Error> {
        let pair = self.rest.login(&self.credentials).await?;
        Ok(keep(state, pair))
    }
}

fn keep(state: &mut SessionState, pair: TokenPair) -> String {
    state.expires = Instant::now() + Duration::from_secs(pair.expires_in.max(0) as u64);
    let token = pair.access_token.clone();
    state.pair = Some(pair);
    token
}
