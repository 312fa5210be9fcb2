//! The handle applications hold: typed calls, the connection state, close; and the events
//! they receive (notifications, exactly once for messages, and the connection's life).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use confab_shared::rpc::{Method, Notification};
use confab_shared::{DirectMessage, Message, Timestamp, User};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::auth::Auth;
use crate::{Error, Rest, Transport};

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The first connection is being opened.
    Connecting,
    /// Connected and caught up: calls go out at once.
    Open,
    /// The connection was lost; calls wait (within the call timeout) until it is back and caught up.
    Reconnecting,
    /// For good: no more calls or events.
    Closed,
}

/// What the client tells the application, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A notification. Room and direct messages come exactly once each, in id order per
    /// room, whether live or caught up with `sync` after a reconnect.
    Notification(Notification),
    /// A notification this version of the crate does not know (from a newer server).
    Unknown { method: String, params: Value },
    /// The connection was lost (`close_code` when the server closed it); reconnecting.
    Disconnected { close_code: Option<u16> },
    /// Reconnected and caught up; the missed items were delivered as notifications just before.
    Reconnected(Resync),
    /// The access token was renewed on the open socket (`auth.refresh`).
    Renewed { expires_at: Timestamp },
    /// Something failed in the background (a renewal, a reconnection attempt); the client goes on.
    Error(Error),
    /// The client closed for good: by `close()` (1000), or because the server ended the
    /// session (4001, 4003) or refused the token; `error` says why when it was not `close()`.
    Closed { close_code: Option<u16>, error: Option<Error> },
}

/// What one reconnection caught up on, in the order it was delivered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resync {
    pub messages: Vec<Message>,
    pub dms: Vec<DirectMessage>,
}

/// The stream of [`Event`]s; it ends after [`Event::Closed`]. Events queue without bound
/// until read, so read them (a bot's main loop does).
#[derive(Debug)]
pub struct Events {
    pub(crate) rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the client is closed and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next notification, skipping the connection's other events; `None` once closed.
    pub async fn notification(&mut self) -> Option<Notification> {
        loop {
            match self.rx.recv().await? {
                Event::Notification(notification) => return Some(notification),
                _ => continue,
            }
        }
    }
}

/// A request to the connection task.
pub(crate) enum Command {
    Call(Call),
    Notify { method: String, params: Value },
    Close { done: oneshot::Sender<()> },
}

pub(crate) struct Call {
    pub(crate) method: String,
    pub(crate) params: Value,
    pub(crate) reply: oneshot::Sender<Result<Value, Error>>,
    pub(crate) deadline: Instant,
    /// The caller's place in the in-flight window, released when the connection drops the
    /// call (answered, failed or expired), not when the caller stops waiting; `None` for the
    /// connection's own calls (`auth.refresh`).
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// A connection to Confab; cheap to clone, every clone talks over the same socket. When the
/// last clone is dropped the connection closes.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) state: watch::Receiver<State>,
    /// The current connection's transport; `None` while there is none.
    pub(crate) transport: watch::Receiver<Option<Transport>>,
    pub(crate) rest: Rest,
    pub(crate) auth: Arc<Auth>,
    pub(crate) call_timeout: Duration,
    /// The in-flight window: one permit per call between `call_raw` and its answer.
    pub(crate) window: Arc<Semaphore>,
    /// The most calls the connection task held at once (see [`Client::peak_in_flight`]).
    pub(crate) peak_in_flight: Arc<AtomicUsize>,
}

/// How long past its deadline the handle waits for the connection task to answer a call
/// (the task enforces deadlines itself; this only guards against it being gone).
const DEADLINE_SLACK: Duration = Duration::from_secs(1);

impl Client {
    /// Calls a method: `params` names it and types the result, e.g.
    /// `client.call(SendParams { room, text, nonce: None })` returns the stored `Message`.
    /// While reconnecting the call waits for the connection (within the call timeout).
    pub async fn call<M: Method>(&self, params: M) -> Result<M::Result, Error> {
        let value = self.call_raw(M::NAME, serde_json::to_value(params)?).await?;
        Ok(serde_json::from_value(value)?)
    }

    /// Calls a method by name with untyped params (for methods newer than this crate).
    /// Beyond [`Options::max_in_flight`](crate::Options::max_in_flight) calls in flight it
    /// first waits for a place (first come, first served; within the call timeout).
    pub async fn call_raw(&self, method: &str, params: Value) -> Result<Value, Error> {
        let (reply, answer) = oneshot::channel();
        let deadline = Instant::now() + self.inner.call_timeout;
        let timeout = || Error::Timeout { method: method.to_owned(), timeout: self.inner.call_timeout };
        let permit = match tokio::time::timeout_at(deadline, self.inner.window.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            // The window is never closed while a handle exists; treat it as a closed client.
            Ok(Err(_)) => return Err(self.closed()),
            Err(_) => return Err(timeout()),
        };
        let call = Call { method: method.to_owned(), params, reply, deadline, permit: Some(permit) };
        self.inner.commands.send(Command::Call(call)).map_err(|_| self.closed())?;
        match tokio::time::timeout_at(deadline + DEADLINE_SLACK, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.closed()),
            Err(_) => Err(timeout()),
        }
    }

    /// The most calls the connection held at once so far (sent and unanswered, or waiting
    /// for a reconnection), for tests and diagnostics: at most
    /// [`Options::max_in_flight`](crate::Options::max_in_flight), plus one while the
    /// connection renews its access token.
    pub fn peak_in_flight(&self) -> usize {
        self.inner.peak_in_flight.load(Ordering::Relaxed)
    }

    /// Sends a JSON-RPC notification (no answer), e.g. `TypingParams`. Dropped when the
    /// connection is not open at that moment: notifications are not queued.
    pub fn notify<M: Method>(&self, params: M) -> Result<(), Error> {
        let params = serde_json::to_value(params)?;
        self.inner.commands.send(Command::Notify { method: M::NAME.to_owned(), params }).map_err(|_| self.closed())
    }

    /// Where the connection is now.
    pub fn state(&self) -> State {
        *self.inner.state.borrow()
    }

    /// The transport of the current connection (the WebSocket, or the HTTP stream it fell
    /// back to); `None` while there is no connection (reconnecting, closed).
    pub fn transport(&self) -> Option<Transport> {
        *self.inner.transport.borrow()
    }

    /// Waits until the state is `state` (or the client closed), e.g. `Open` after a reconnect.
    pub async fn wait_for(&self, state: State) -> State {
        let mut watch = self.inner.state.clone();
        match watch.wait_for(|now| *now == state || *now == State::Closed).await {
            Ok(now) => *now,
            Err(_) => State::Closed,
        }
    }

    /// The REST API of the same server.
    pub fn rest(&self) -> &Rest {
        &self.inner.rest
    }

    /// The account this client acts as (`GET /api/me` with its token); `None` when anonymous.
    pub async fn me(&self) -> Result<Option<User>, Error> {
        if let Some(user) = self.inner.auth.user().await {
            return Ok(Some(user));
        }
        match self.inner.auth.bearer().await? {
            Some(token) => self.inner.rest.me(&token).await.map(Some),
            None => Ok(None),
        }
    }

    /// Closes for good: a 1000 close handshake (bounded), pending and waiting calls fail with
    /// [`Error::Closed`], no reconnection; with credentials the session is logged out.
    /// Returns when all of that is done (at once if the client is closed already).
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.inner.commands.send(Command::Close { done }).is_ok() {
            let _ = closed.await;
        }
    }

    /// The connection task is gone: the client closed (it told pending calls the close code).
    fn closed(&self) -> Error {
        Error::Closed { close_code: None }
    }
}
