//! The tab's single connection to Confab, shared by every page: the WebSocket to `/ws`, or
//! the HTTP stream ([`super::stream`]) where the network breaks WebSockets.
//!
//! It owns the transport only: typed JSON-RPC calls (`call::<P: Method>`) matched to their
//! responses through a request-id → oneshot map, at most [`MAX_CALLS_IN_FLIGHT`] of them
//! awaiting answers at once (see [`super::window`]), fire-and-forget notifications, and
//! reconnecting with exponential backoff and full jitter ([`reconnect::delay_ms`]). What a
//! connection *means* (which token to present, what to re-join and `sync` after a
//! reconnect, what to do with pushed notifications) is decided by the [`Hooks`] the app
//! installs, so this file knows nothing about rooms or sessions.
//!
//! Browsers cannot set headers on a WebSocket, so the access token travels in the
//! subprotocol list `["confab.v1", "bearer.<token>"]`; the server only ever selects
//! `confab.v1`.
//!
//! # Falling back to the HTTP stream
//! The rules of the client libraries: the WebSocket first; the stream when the upgrade is
//! refused, or when two sockets in a row die without a close frame within
//! [`SHORT_LIVED_MS`] of opening; the WebSocket again on the first reconnection after
//! [`STREAM_FOR_MS`]. A browser does not show why an upgrade failed, so the stream itself
//! tells: it opens (something between refused the upgrade), answers 401 or 429 (the token or
//! the server's limits, which refuse a stream alike), or gets no answer (the server is
//! unreachable); only the first switches transports.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use confab_shared::rpc::{
    BEARER_PROTOCOL_PREFIX, ErrorObject, Method, Notification, RequestId, SUBPROTOCOL, ServerMessage, close,
    parse_server_frame, reconnect,
};
use futures::channel::oneshot;
use futures::future::{Either, LocalBoxFuture, select};
use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use super::stream::{self, OpenError, PostError, Stream};
use super::window::{MAX_CALLS_IN_FLIGHT, Window};
use crate::util::{now_ms, random};

/// Client-side error code: the call was not sent because no connection is open.
pub const NOT_CONNECTED: i32 = -1;
/// Client-side error code: the connection closed after the call was sent; its outcome is unknown.
pub const CONNECTION_LOST: i32 = -2;
/// Client-side error code: no response within [`CALL_TIMEOUT`].
pub const TIMED_OUT: i32 = -3;
/// Client-side error code: the HTTP stream's POST was answered with an error status (e.g. 413).
pub const REFUSED: i32 = -4;

/// The close code of a connection that ended without a close frame (or `stream.closed`).
pub const ABNORMAL: u16 = 1006;
/// A socket that dies without a close frame this soon after opening was likely killed by
/// the network; twice in a row and the tab falls back to the stream.
const SHORT_LIVED_MS: f64 = 5_000.0;
/// How long the tab stays on the stream after falling back before trying the WebSocket again.
const STREAM_FOR_MS: f64 = 300_000.0;

/// How long a call waits for its response before giving up.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// A connection that lived this long counts as healthy: the next failure starts the backoff over.
/// (Resetting on every open would let a server that accepts and then evicts at once, 1013,
/// be hammered at the base delay.)
const HEALTHY_AFTER_MS: f64 = 10_000.0;

/// What the connection badge shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// The first connection of this page load is being opened.
    Connecting,
    /// A connection is open.
    Connected,
    /// The connection dropped; another attempt is scheduled or under way.
    Reconnecting,
    /// The browser reports no network; we try again when it comes back.
    Offline,
}

impl ConnState {
    /// A stable token for `data-state` and CSS.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
            Self::Offline => "offline",
        }
    }

    /// The label people read.
    pub fn label(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting…",
            Self::Connected => "Connected",
            Self::Reconnecting => "Reconnecting…",
            Self::Offline => "Offline",
        }
    }
}

/// Which transport a connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The WebSocket to `/ws`.
    WebSocket,
    /// `GET /api/stream` with a POST per frame.
    Stream,
}

impl Transport {
    /// A stable token for `data-transport`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::Stream => "stream",
        }
    }

    /// The name people read.
    pub fn label(self) -> &'static str {
        match self {
            Self::WebSocket => "WebSocket",
            Self::Stream => "HTTP stream",
        }
    }
}

/// The app's side of the connection lifecycle.
pub trait Hooks {
    /// The access token to present on the next attempt, `None` for an anonymous connection.
    /// `suspect` is set when the previous attempt with a token was refused with 401 (a browser
    /// does not show why an upgrade failed; the HTTP stream tried after it does).
    fn credentials(&self, suspect: bool) -> LocalBoxFuture<'static, Option<String>>;
    /// A connection opened and can take calls.
    fn opened(&self);
    /// The connection closed with `code` (1006 when it never opened or died without a close frame).
    fn closed(&self, code: u16, was_open: bool);
    /// A server notification arrived.
    fn notification(&self, notification: Notification);
}

/// A cheap, copyable handle on the tab's socket.
#[derive(Clone, Copy)]
pub struct Socket {
    state: RwSignal<ConnState>,
    /// The transport of the open connection (or of the last one).
    transport: RwSignal<Transport>,
    inner: StoredValue<Rc<Inner>, LocalStorage>,
}

type Reply = Result<Value, ErrorObject>;

struct Inner {
    hooks: RefCell<Option<Rc<dyn Hooks>>>,
    conn: RefCell<Option<Conn>>,
    /// Bumped on every (re)connect; callbacks of older sockets see a stale value and do nothing.
    generation: Cell<u64>,
    next_id: Cell<i64>,
    pending: RefCell<HashMap<i64, oneshot::Sender<Reply>>>,
    /// The calls awaiting answers on any connection: at most [`MAX_CALLS_IN_FLIGHT`].
    window: Rc<Window>,
    /// Failed attempts since the last healthy connection; drives the backoff.
    attempt: Cell<u32>,
    suspect: Cell<bool>,
    ever_opened: Cell<bool>,
    retry: RefCell<Option<TimeoutHandle>>,
    /// Until when (`now_ms`) connections open the stream rather than the WebSocket.
    stream_until: Cell<f64>,
    /// Sockets in a row that died without a close frame soon after opening.
    short_sockets: Cell<u32>,
}

/// One connection; dropping it ends it.
struct Conn {
    link: Link,
    open: bool,
    opened_at: f64,
    /// The access token it was opened with, for the stream to try after a failed upgrade.
    token: Option<String>,
}

enum Link {
    Socket(SocketLink),
    Stream(Rc<Stream>),
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Link::Stream(stream) = &self.link {
            stream.close();
        }
    }
}

/// One WebSocket and the JS callbacks it holds; dropping it detaches and closes them.
struct SocketLink {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for SocketLink {
    fn drop(&mut self) {
        // Detach first so a dropped closure is never invoked by a late event.
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        if self.ws.ready_state() <= WebSocket::OPEN {
            let _ = self.ws.close_with_code(close::NORMAL);
        }
    }
}

impl Inner {
    fn fail_pending(&self, code: i32, message: &str) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for (_, tx) in pending {
            let _ = tx.send(Err(ErrorObject { code, message: message.to_owned(), data: None }));
        }
    }

    fn cancel_retry(&self) {
        if let Some(handle) = self.retry.borrow_mut().take() {
            handle.clear();
        }
    }

    fn hooks(&self) -> Option<Rc<dyn Hooks>> {
        self.hooks.borrow().clone()
    }

    fn is_open(&self) -> bool {
        self.conn.borrow().as_ref().is_some_and(|c| c.open)
    }

    /// Falls back to the stream for [`STREAM_FOR_MS`].
    fn fall_back(&self) {
        self.short_sockets.set(0);
        self.stream_until.set(now_ms() + STREAM_FOR_MS);
    }
}

fn browser_online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

fn ws_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" { "wss:" } else { "ws:" };
    Some(format!("{scheme}//{}/ws", location.host().ok()?))
}

fn error(code: i32, message: &str) -> ErrorObject {
    ErrorObject { code, message: message.to_owned(), data: None }
}

impl Default for Socket {
    fn default() -> Self {
        Self::new()
    }
}

impl Socket {
    /// Creates the handle; nothing connects until [`Socket::connect`].
    pub fn new() -> Self {
        let inner = Inner {
            hooks: RefCell::new(None),
            conn: RefCell::new(None),
            generation: Cell::new(0),
            next_id: Cell::new(1),
            pending: RefCell::new(HashMap::new()),
            window: Window::new(MAX_CALLS_IN_FLIGHT),
            attempt: Cell::new(0),
            suspect: Cell::new(false),
            ever_opened: Cell::new(false),
            retry: RefCell::new(None),
            stream_until: Cell::new(0.0),
            short_sockets: Cell::new(0),
        };
        let socket = Self {
            state: RwSignal::new(ConnState::Connecting),
            transport: RwSignal::new(Transport::WebSocket),
            inner: StoredValue::new_local(Rc::new(inner)),
        };
        socket.watch_network();
        socket
    }

    /// Installs the app's lifecycle hooks (once, before the first connect).
    pub fn set_hooks(&self, hooks: Rc<dyn Hooks>) {
        *self.inner.get_value().hooks.borrow_mut() = Some(hooks);
    }

    /// The connection state, for the badge and for disabling sends.
    pub fn state(&self) -> ConnState {
        self.state.get()
    }

    /// The transport of the open connection (or of the last one), for the badge.
    pub fn transport(&self) -> Transport {
        self.transport.get()
    }

    /// Whether a connection is open right now (not reactive).
    pub fn is_open(&self) -> bool {
        self.inner.get_value().is_open()
    }

    /// Drops any current connection and opens a new one now, e.g. after logging in or out
    /// (the token is part of the handshake, so a new identity needs a new socket).
    pub fn connect(&self) {
        let inner = self.inner.get_value();
        inner.cancel_retry();
        inner.generation.set(inner.generation.get() + 1);
        let generation = inner.generation.get();
        let old = inner.conn.borrow_mut().take();
        drop(old);
        inner.fail_pending(CONNECTION_LOST, "connection replaced");
        self.state.set(if inner.ever_opened.get() { ConnState::Reconnecting } else { ConnState::Connecting });
        let this = *self;
        leptos::task::spawn_local(async move { this.open(generation).await });
    }

    async fn open(self, generation: u64) {
        let inner = self.inner.get_value();
        let suspect = inner.suspect.replace(false);
        let token = match inner.hooks() {
            Some(hooks) => hooks.credentials(suspect).await,
            None => None,
        };
        if inner.generation.get() != generation {
            return; // a newer connect() superseded this one while we fetched credentials
        }
        if now_ms() < inner.stream_until.get() {
            self.open_stream(generation, token, false).await;
            return;
        }
        let Some(url) = ws_url() else { return };
        let protocols = js_sys::Array::new();
        protocols.push(&SUBPROTOCOL.into());
        if let Some(token) = &token {
            protocols.push(&format!("{BEARER_PROTOCOL_PREFIX}{token}").into());
        }
        let ws = match WebSocket::new_with_str_sequence(&url, &protocols) {
            Ok(ws) => ws,
            Err(_) => {
                self.schedule_retry(generation, close::INTERNAL_ERROR);
                return;
            }
        };
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| self.handle_open(generation));
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            // The API is text-only; a non-string frame would be a server bug, so it is ignored.
            if let Some(text) = event.data().as_string() {
                self.handle_frame(generation, &text);
            }
        });
        let on_close =
            Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| self.handle_close(generation, event.code()));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let link = SocketLink { ws, _on_open: on_open, _on_message: on_message, _on_close: on_close };
        *inner.conn.borrow_mut() = Some(Conn { link: Link::Socket(link), open: false, opened_at: 0.0, token });
    }

    /// Opens the HTTP stream; `after_upgrade_failed` when the WebSocket just failed to open,
    /// so that the stream opening means the upgrade was refused on the way.
    async fn open_stream(self, generation: u64, token: Option<String>, after_upgrade_failed: bool) {
        let on_frame = move |text: &str| self.handle_frame(generation, text);
        let on_end = move |code: u16| self.handle_close(generation, code);
        let opened = stream::open(token.as_deref(), CALL_TIMEOUT, on_frame, on_end).await;
        let inner = self.inner.get_value();
        if inner.generation.get() != generation {
            if let Ok(stream) = opened {
                stream.close();
            }
            return;
        }
        match opened {
            Ok(stream) => {
                if after_upgrade_failed {
                    leptos::logging::warn!("confab: the WebSocket did not open; using the HTTP stream");
                    inner.fall_back();
                }
                *inner.conn.borrow_mut() = Some(Conn { link: Link::Stream(stream), open: false, opened_at: 0.0, token });
                self.handle_open(generation);
            }
            Err(err) => {
                // Only a 401 says the token may be the problem (see `Hooks::credentials`).
                inner.suspect.set(token.is_some() && err == OpenError::Refused(401));
                if let Some(hooks) = inner.hooks() {
                    hooks.closed(ABNORMAL, false);
                }
                self.schedule_retry(generation, ABNORMAL);
            }
        }
    }

    fn handle_open(self, generation: u64) {
        let inner = self.inner.get_value();
        if inner.generation.get() != generation {
            return;
        }
        let transport = inner.conn.borrow_mut().as_mut().map(|conn| {
            conn.open = true;
            conn.opened_at = now_ms();
            match conn.link {
                Link::Socket(_) => Transport::WebSocket,
                Link::Stream(_) => Transport::Stream,
            }
        });
        if let Some(transport) = transport {
            self.transport.set(transport);
        }
        inner.ever_opened.set(true);
        self.state.set(ConnState::Connected);
        if let Some(hooks) = inner.hooks() {
            hooks.opened();
        }
    }

    fn handle_frame(self, generation: u64, text: &str) {
        let inner = self.inner.get_value();
        if inner.generation.get() != generation {
            return;
        }
        let messages = match parse_server_frame(text) {
            Ok(messages) => messages,
            Err(err) => {
                // Most likely a notification this build does not know yet; never fatal.
                leptos::logging::warn!("confab: ignoring a frame we cannot decode: {err}");
                return;
            }
        };
        for message in messages {
            match message {
                ServerMessage::Response(response) => {
                    let Some(RequestId::Number(id)) = response.id else {
                        // A null id means the server could not read one of our frames at all.
                        leptos::logging::warn!("confab: server rejected a frame: {:?}", response.error);
                        continue;
                    };
                    let Some(tx) = inner.pending.borrow_mut().remove(&id) else { continue };
                    let reply = match (response.error, response.result) {
                        (Some(err), _) => Err(err),
                        (None, result) => Ok(result.unwrap_or(Value::Null)),
                    };
                    let _ = tx.send(reply);
                }
                ServerMessage::Notification(notification) => {
                    if let Some(hooks) = inner.hooks() {
                        hooks.notification(notification);
                    }
                }
            }
        }
    }

    fn handle_close(self, generation: u64, code: u16) {
        let inner = self.inner.get_value();
        if inner.generation.get() != generation {
            return;
        }
        let conn = inner.conn.borrow_mut().take();
        let Some(conn) = conn else { return };
        let lived = now_ms() - conn.opened_at;
        let (was_open, healthy) = (conn.open, conn.open && lived >= HEALTHY_AFTER_MS);
        let (socket, token) = (matches!(conn.link, Link::Socket(_)), conn.token.clone());
        // This runs inside the socket's own onclose closure: free it on the next tick, not mid-call.
        leptos::task::spawn_local(async move { drop(conn) });
        inner.fail_pending(CONNECTION_LOST, "connection lost");
        if socket && was_open {
            // A proxy that kills sockets: no close frame, soon after opening.
            let killed = code == ABNORMAL && lived < SHORT_LIVED_MS;
            inner.short_sockets.set(if killed { inner.short_sockets.get() + 1 } else { 0 });
            if inner.short_sockets.get() >= 2 {
                leptos::logging::warn!("confab: the WebSocket died right after opening twice in a row; using the HTTP stream");
                inner.fall_back();
            }
        }
        if socket && !was_open {
            // The upgrade failed: the stream tells a refused upgrade from a refused token or an
            // unreachable server, and retries (or opens) from there.
            leptos::task::spawn_local(async move { self.open_stream(generation, token, true).await });
            return;
        }
        if healthy || matches!(code, close::LOGGED_OUT | close::TOKEN_EXPIRED | close::GOING_AWAY) {
            // A healthy connection ended, the session changed, or the instance is stopping
            // (the others serve): come back quickly.
            inner.attempt.set(0);
        }
        if let Some(hooks) = inner.hooks() {
            hooks.closed(code, was_open);
        }
        self.schedule_retry(generation, code);
    }

    /// Sends one frame on the open connection; `id` is the call awaiting its answer, failed at
    /// once when the stream's POST is refused. False when nothing is open.
    fn send_text(self, text: String, id: Option<i64>) -> bool {
        let inner = self.inner.get_value();
        let stream = match inner.conn.borrow().as_ref() {
            Some(Conn { open: true, link: Link::Socket(socket), .. }) => return socket.ws.send_with_str(&text).is_ok(),
            Some(Conn { open: true, link: Link::Stream(stream), .. }) => stream.clone(),
            _ => return false,
        };
        let generation = inner.generation.get();
        leptos::task::spawn_local(async move {
            // Each POST carries the current access token, renewed as the socket's would be.
            let hooks = self.inner.get_value().hooks();
            let token = match hooks {
                Some(hooks) => hooks.credentials(false).await,
                None => None,
            };
            let failure = match stream.post(text, token).await {
                Ok(Some(answer)) => return self.handle_frame(generation, &answer),
                Ok(None) => return,
                Err(PostError::Lost) => error(CONNECTION_LOST, "connection lost"),
                Err(PostError::Status(413)) => error(REFUSED, "the message is too large"),
                Err(PostError::Status(429)) => error(REFUSED, "too many requests; slow down"),
                Err(PostError::Status(status)) => error(REFUSED, &format!("the server refused the request ({status})")),
            };
            let waiting = id.and_then(|id| self.inner.get_value().pending.borrow_mut().remove(&id));
            if let Some(tx) = waiting {
                let _ = tx.send(Err(failure));
            }
        });
        true
    }

    fn schedule_retry(self, generation: u64, code: u16) {
        let inner = self.inner.get_value();
        if inner.generation.get() != generation {
            return;
        }
        self.state.set(if browser_online() { ConnState::Reconnecting } else { ConnState::Offline });
        let attempt = inner.attempt.get();
        inner.attempt.set(attempt.saturating_add(1));
        // Exponential backoff with full jitter (and a spread-out first retry after 1001/1012),
        // so a restarted server sees its clients come back at a steady rate, not all at once.
        let delay = if code == close::LOGGED_OUT && attempt == 0 { 50.0 } else { reconnect::delay_ms(attempt, code, random()) };
        let handle = set_timeout_with_handle(
            move || {
                let inner = self.inner.get_value();
                if inner.generation.get() == generation {
                    inner.retry.borrow_mut().take();
                    self.connect();
                }
            },
            Duration::from_millis(delay as u64),
        );
        inner.cancel_retry();
        *inner.retry.borrow_mut() = handle.ok();
    }

    /// Reconnects as soon as the browser is back online, and says "offline" while it is not.
    fn watch_network(self) {
        let online = window_event_listener(leptos::ev::online, move |_| {
            if !self.is_open() {
                self.connect();
            }
        });
        let offline = window_event_listener(leptos::ev::offline, move |_| {
            if !self.is_open() {
                self.state.set(ConnState::Offline);
            }
        });
        // The socket lives as long as the page, so the listeners do too.
        std::mem::forget(online);
        std::mem::forget(offline);
    }

    /// Calls `P::NAME` with `params` and decodes its typed result.
    ///
    /// Fails at once with [`NOT_CONNECTED`] when no connection is open (callers that must
    /// survive a reconnect are re-run by the app's `opened` hook instead of being queued),
    /// with [`CONNECTION_LOST`] if the socket closes first, and [`TIMED_OUT`] after 15 s,
    /// counted from the call (a call beyond the in-flight window waits there first).
    pub async fn call<P: Method>(&self, params: P) -> Result<P::Result, ErrorObject> {
        let params = serde_json::to_value(params).map_err(|e| error(-32602, &e.to_string()))?;
        let value = self.call_value(P::NAME, params).await?;
        serde_json::from_value(value)
            .map_err(|e| error(-32603, &format!("the server's answer to {} was not understood: {e}", P::NAME)))
    }

    /// [`call`](Self::call) with the params and the result as JSON values. Not generic, so
    /// the WASM holds its state machine once rather than once per method.
    async fn call_value(&self, method: &'static str, params: serde_json::Value) -> Result<serde_json::Value, ErrorObject> {
        let inner = self.inner.get_value();
        if !inner.is_open() {
            return Err(error(NOT_CONNECTED, "not connected"));
        }
        let generation = inner.generation.get();
        let window = inner.window.clone();
        drop(inner);
        let timeout = Box::pin(gloo_timers::future::sleep(CALL_TIMEOUT));
        let (_turn, timeout) = match select(Box::pin(window.turn()), timeout).await {
            Either::Left(turned) => turned,
            Either::Right(_) => return Err(error(TIMED_OUT, "timed out")),
        };
        let inner = self.inner.get_value();
        if inner.generation.get() != generation || !inner.is_open() {
            // The connection the call was made on went away while it waited for its turn.
            return Err(error(CONNECTION_LOST, "connection lost"));
        }
        let id = inner.next_id.get();
        inner.next_id.set(id + 1);
        let frame = serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let (tx, rx) = oneshot::channel();
        inner.pending.borrow_mut().insert(id, tx);
        drop(inner);
        if !self.send_text(frame.to_string(), Some(id)) {
            let inner = self.inner.get_value();
            inner.pending.borrow_mut().remove(&id);
            return Err(error(NOT_CONNECTED, "not connected"));
        }
        match select(rx, timeout).await {
            Either::Left((Ok(reply), _)) => reply,
            Either::Left((Err(_cancelled), _)) => Err(error(CONNECTION_LOST, "connection lost")),
            Either::Right(_) => {
                self.inner.get_value().pending.borrow_mut().remove(&id);
                Err(error(TIMED_OUT, "timed out"))
            }
        }
    }

    /// Sends `P::NAME` as a JSON-RPC notification (no id, no response); dropped when offline.
    /// Used for `room.typing`, where the server stays silent instead of answering -32029.
    pub fn notify<P: Method>(&self, params: P) {
        let Ok(params) = serde_json::to_value(params) else { return };
        let frame = serde_json::json!({ "jsonrpc": "2.0", "method": P::NAME, "params": params });
        self.send_text(frame.to_string(), None);
    }
}
