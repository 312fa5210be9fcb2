//! What to connect to and how: the server, the credentials, and the reconnection policy.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use confab_shared::Credentials;

use crate::{Backoff, Client, Error, Events, Transport};

/// How long a connection stays on the HTTP stream after falling back to it, unless
/// [`Options::websocket_retry`] says otherwise.
pub const DEFAULT_WEBSOCKET_RETRY: Duration = Duration::from_secs(5 * 60);

/// Calls in flight at once by default (see [`Options::max_in_flight`]): the protocol's
/// [`MAX_CALLS_IN_FLIGHT`](confab_shared::rpc::MAX_CALLS_IN_FLIGHT), as in the web app.
pub const DEFAULT_MAX_IN_FLIGHT: usize = confab_shared::rpc::MAX_CALLS_IN_FLIGHT;

/// How the client authenticates.
#[derive(Clone, Debug)]
pub(crate) enum Login {
    /// No token: read-only (`echo`, lists, joining public rooms, history).
    Anonymous,
    /// An API token (`cfb_…`) or an access token, sent as is on every (re)connect.
    Token(String),
    /// Log in over REST; renew before expiry.
    Credentials(Credentials),
}

/// Options of a connection; [`Options::connect`] opens it.
///
/// ```no_run
/// # async fn bot() -> Result<(), confab_client::Error> {
/// let (client, mut events) = confab_client::Options::new("http://127.0.0.1:8000").token("cfb_…").connect().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) url: String,
    pub(crate) login: Login,
    pub(crate) reconnect: bool,
    pub(crate) backoff: Backoff,
    pub(crate) call_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) dm_after: Option<i64>,
    pub(crate) logout_on_close: bool,
    pub(crate) before_reconnect: Option<Hook>,
    pub(crate) max_in_flight: usize,
    /// `None`: the WebSocket, falling back to the stream; `Some`: only that one.
    pub(crate) transport: Option<Transport>,
    pub(crate) websocket_retry: Duration,
}

/// An async callback, awaited before each reconnection attempt.
#[derive(Clone)]
pub(crate) struct Hook(pub(crate) Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>);

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook")
    }
}

impl Options {
    /// `url` is the server's origin, e.g. `http://127.0.0.1:8000`; the socket is its `/ws`,
    /// the HTTP stream its `/api/stream`.
    /// Anonymous until [`Options::token`] or [`Options::credentials`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            login: Login::Anonymous,
            reconnect: true,
            backoff: Backoff::default(),
            call_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(70),
            dm_after: None,
            logout_on_close: true,
            before_reconnect: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            transport: None,
            websocket_retry: DEFAULT_WEBSOCKET_RETRY,
        }
    }

    /// Authenticate with an API token (`cfb_…`) or any access token, sent as
    /// `Authorization: Bearer` on every (re)connect. It cannot be renewed: when it expires
    /// (4001) or is revoked (4003) the client closes.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.login = Login::Token(token.into());
        self
    }

    /// Log in with a username and password: the client answers `session.expiring` with a
    /// refreshed token, logs in again when the refresh token is dead, and logs out on close.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.login = Login::Credentials(Credentials { username: username.into(), password: password.into() });
        self
    }

    /// Reconnect after an unexpected close (default true).
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// The reconnection schedule (full jitter; defaults: Confab's policy, 500 ms doubling to 30 s, the first attempt within 5 s after a restart close).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How long a call may wait for an open connection and its answer (default 10 s).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// A socket with no frame and no ping for this long is presumed dead and reconnected
    /// (default 70 s; the server pings every 20 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The newest direct message id already handled (e.g. persisted by the application), so
    /// catching up starts there. Without it the client looks the newest one up when it connects.
    pub fn dm_after(mut self, id: i64) -> Self {
        self.dm_after = Some(id);
        self
    }

    /// Most calls in flight at once (default [`DEFAULT_MAX_IN_FLIGHT`], 64; at least 1).
    /// Calls pipeline on the one socket up to this many; a call beyond it waits, first come
    /// first served, until an earlier call is answered or fails, within its call timeout.
    /// This bounds what the client holds for unanswered calls however many tasks call at
    /// once, and keeps a program that fires thousands of calls from queueing them all on
    /// the socket: the server reads no further requests while half of the connection's
    /// byte budget is queued for it, so a deep pipeline only waits there instead.
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.max_in_flight = calls.max(1);
        self
    }

    /// Use only this transport. By default the client opens the WebSocket and falls back to
    /// the HTTP stream when the upgrade is refused (an HTTP answer other than 401 or 429, or
    /// a failed handshake) or when the socket dies without a close frame within 5 s of
    /// opening twice in a row, as proxies that break WebSockets do.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// After falling back to the HTTP stream, how long before a reconnection tries the
    /// WebSocket again (default [`DEFAULT_WEBSOCKET_RETRY`], 5 minutes).
    pub fn websocket_retry(mut self, after: Duration) -> Self {
        self.websocket_retry = after;
        self
    }

    /// With credentials: log the session out on close (default true).
    pub fn logout_on_close(mut self, logout: bool) -> Self {
        self.logout_on_close = logout;
        self
    }

    /// Awaited before each reconnection attempt (after the backoff wait), e.g. to wait for
    /// the network to come back. Calls and `close` are still taken meanwhile.
    pub fn before_reconnect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.before_reconnect = Some(Hook(Arc::new(move || Box::pin(hook()))));
        self
    }

    /// Connects (logging in first with credentials): the client handle for calls and the
    /// stream of events. Fails when the first connection does, e.g. [`Error::Http`] 401 for
    /// a refused token or [`Error::AuthFailed`] for refused credentials.
    pub async fn connect(self) -> Result<(Client, Events), Error> {
        crate::connection::start(self).await
    }
}
