//! The connection task: one per client, owning the socket and every piece of state, so no
//! lock is ever held across an `.await`.
//!
//! Life of a connection: the first socket opens inside [`start`] (errors go to the caller),
//! then [`Connection::run`] serves it: frames in (answers to pending calls, notifications
//! through the [`Cursors`] to the events), commands out (calls, notifications, close). When
//! the socket is lost, pending calls fail with `ConnectionLost`, the state goes
//! `Reconnecting`, and after a jittered backoff (commands keep being taken meanwhile: calls
//! wait, `close` ends it) a new socket opens, the rooms are re-joined and `sync` runs until
//! `complete`, with live messages held and merged, so each message reaches the events
//! exactly once, in id order per room. Then the waiting calls go out and the state is `Open`.
//!
//! The connection runs on a [`Wire`]: the WebSocket first; when its upgrade is refused, or
//! when it dies without a close frame within [`SHORT_LIVED`] of opening twice in a row (a
//! proxy that kills sockets), the HTTP stream for [`Options::websocket_retry`], after which
//! the next reconnection tries the WebSocket again. Everything above the wire is the same.
//!
//! Each application call carries a permit of the client's in-flight window
//! ([`Options::max_in_flight`]) and keeps it in [`Pending`] until its answer, its failure or
//! its deadline, so what this task holds for unanswered calls stays bounded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use confab_shared::rpc::{
    AuthRefreshParams, AuthRefreshResult, ErrorCode, ErrorObject, HistoryParams, JoinParams, JoinResult, Method,
    Notification, RequestId, Response, SUBPROTOCOL, SyncParams, close,
};
use confab_shared::Message;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout_at};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};

use crate::auth::{Auth, LoginSession};
use crate::backoff::Attempts;
use crate::client::{Call, Command, Inner};
use crate::cursors::Cursors;
use crate::options::Login;
use crate::wire::{Incoming, StreamWire, Transport, Wire, Ws};
use crate::{Client, Error, Event, Events, Options, Rest, Resync, State};

/// A WebSocket that dies this soon after opening, without a close frame, counts as killed by
/// the network; twice in a row and the connection falls back to the stream.
pub const SHORT_LIVED: Duration = Duration::from_secs(5);

/// Opens the first connection and starts the task that keeps it.
pub(crate) async fn start(options: Options) -> Result<(Client, Events), Error> {
    let rest = Rest::new(&options.url)?;
    let auth = Arc::new(match &options.login {
        Login::Anonymous => Auth::Fixed(None),
        Login::Token(token) => Auth::Fixed(Some(token.clone())),
        Login::Credentials(credentials) => Auth::Login(Box::new(LoginSession::new(rest.clone(), credentials.clone()))),
    });
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (state_tx, state) = watch::channel(State::Connecting);
    let (transport_tx, transport) = watch::channel(None);
    let window = Arc::new(Semaphore::new(options.max_in_flight.min(Semaphore::MAX_PERMITS)));
    let peak_in_flight = Arc::new(AtomicUsize::new(0));
    let mut connection = Connection {
        rest: rest.clone(),
        auth: auth.clone(),
        commands,
        renewals: commands_tx.downgrade(),
        events: events_tx,
        state: state_tx,
        cursors: Cursors::new(options.dm_after),
        attempts: Attempts::new(options.backoff),
        pending: HashMap::new(),
        waiting: VecDeque::new(),
        next_id: 1,
        held: None,
        last_close: None,
        renewing: Arc::new(AtomicBool::new(false)),
        peak_in_flight: peak_in_flight.clone(),
        stream_http: reqwest::Client::builder().build()?,
        transport: transport_tx,
        stream_until: None,
        short_sockets: 0,
        opened_at: Instant::now(),
        options,
    };
    let wire = connection.connect_first().await?;
    connection.state.send_replace(State::Open);
    let call_timeout = connection.options.call_timeout;
    tokio::spawn(connection.run(wire));
    let inner = Inner { commands: commands_tx, state, transport, rest, auth, call_timeout, window, peak_in_flight };
    Ok((Client { inner: Arc::new(inner) }, Events { rx: events }))
}

struct Connection {
    options: Options,
    rest: Rest,
    auth: Arc<Auth>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// For the renewal task to call `auth.refresh` like any caller, without keeping the
    /// connection alive once every `Client` is dropped.
    renewals: mpsc::WeakUnboundedSender<Command>,
    events: mpsc::UnboundedSender<Event>,
    state: watch::Sender<State>,
    cursors: Cursors,
    attempts: Attempts,
    /// Calls sent on the current socket, by request id.
    pending: HashMap<i64, Pending>,
    /// Calls made while reconnecting; sent once caught up, or failed at their deadline.
    waiting: VecDeque<Call>,
    next_id: i64,
    /// Live room and direct messages that arrive while catching up wait here, so that order
    /// and de-duplication hold.
    held: Option<Vec<Notification>>,
    /// The close code of the last close frame the server sent.
    last_close: Option<u16>,
    /// One renewal at a time.
    renewing: Arc<AtomicBool>,
    /// The most calls held at once (`pending` and `waiting`), read by `Client::peak_in_flight`.
    peak_in_flight: Arc<AtomicUsize>,
    /// The HTTP client of the stream: no overall timeout, since the stream lives long (each
    /// POST has the call timeout).
    stream_http: reqwest::Client,
    /// The current wire's transport, read by `Client::transport`.
    transport: watch::Sender<Option<Transport>>,
    /// Until when connections open the stream rather than the WebSocket.
    stream_until: Option<Instant>,
    /// WebSockets in a row that the network killed within [`SHORT_LIVED`] of opening.
    short_sockets: u32,
    /// When the current wire opened.
    opened_at: Instant,
}

struct Pending {
    method: String,
    deadline: Instant,
    reply: Reply,
    /// The call's place in the in-flight window, given back when this entry goes.
    permit: Option<OwnedSemaphorePermit>,
}

enum Reply {
    /// An application's call.
    Call(oneshot::Sender<Result<Value, Error>>),
    /// `room.join`: a success fixes or keeps the room's cursor before the caller hears of it.
    Join(oneshot::Sender<Result<Value, Error>>),
    /// `room.leave`: a success forgets the room.
    Leave { room: String, reply: oneshot::Sender<Result<Value, Error>> },
    /// The newest message of a room just joined without history, asked for to fix where
    /// catching up will start; the join's result goes to the caller once it is known.
    Baseline { room: String, join: Value, reply: oneshot::Sender<Result<Value, Error>> },
}

impl Reply {
    /// Whom to tell the outcome.
    fn into_sender(self) -> oneshot::Sender<Result<Value, Error>> {
        match self {
            Self::Call(reply) | Self::Join(reply) | Self::Leave { reply, .. } | Self::Baseline { reply, .. } => reply,
        }
    }
}

/// Why serving a socket stopped.
enum End {
    /// The socket was lost; the close code when the server sent one.
    Lost(Option<u16>),
    /// `close()` (with whom to tell), or every `Client` was dropped (`None`).
    Close(Option<oneshot::Sender<()>>),
}

impl Connection {
    // ---------------------------------------------------------------------------------
    // Serving an open socket

    async fn run(mut self, wire: Wire) {
        let mut wire = wire;
        loop {
            let end = self.serve(&mut wire).await;
            match end {
                End::Close(done) => {
                    wire.close().await;
                    self.transport.send_replace(None);
                    self.finish(Some(close::NORMAL), None).await;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
                End::Lost(code) => {
                    self.wire_ended(wire.kind(), code);
                    drop(wire);
                    self.transport.send_replace(None);
                    self.fail_pending(|method| Error::ConnectionLost { method });
                    let _ = self.events.send(Event::Disconnected { close_code: code });
                    if let Some(error) = self.final_close(code) {
                        self.finish(code, Some(error)).await;
                        return;
                    }
                    self.state.send_replace(State::Reconnecting);
                    match self.reconnect(code).await {
                        Ok(new) => wire = new,
                        Err(done) => {
                            if let Some(done) = done {
                                let _ = done.send(());
                            }
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn serve(&mut self, wire: &mut Wire) -> End {
        let idle = tokio::time::sleep(self.options.idle_timeout);
        tokio::pin!(idle);
        while let Some(call) = self.waiting.pop_front() {
            if let Err(end) = self.send_call(wire, call).await {
                return end;
            }
        }
        loop {
            let next_deadline = self.pending.values().map(|p| p.deadline).min();
            tokio::select! {
                incoming = wire.recv() => {
                    idle.as_mut().reset(Instant::now() + self.options.idle_timeout);
                    match incoming {
                        Incoming::Text(text) => {
                            for outgoing in self.dispatch(&text, None).0 {
                                if wire.send(outgoing).await.is_err() {
                                    return End::Lost(None);
                                }
                            }
                        }
                        Incoming::Undelivered { frame, status, problem } => self.undelivered(&frame, status, problem.as_ref()),
                        Incoming::Alive => {}
                        Incoming::Closed(Some(code)) => {
                            self.last_close = Some(code);
                            return End::Lost(Some(code));
                        }
                        Incoming::Closed(None) => return End::Lost(self.last_close),
                    }
                }
                command = self.commands.recv() => match command {
                    None => return End::Close(None),
                    Some(Command::Close { done }) => return End::Close(Some(done)),
                    Some(Command::Call(call)) => {
                        if let Err(end) = self.send_call(wire, call).await {
                            return end;
                        }
                    }
                    Some(Command::Notify { method, params }) => {
                        let frame = json!({ "jsonrpc": "2.0", "method": method, "params": params }).to_string();
                        if wire.send(frame).await.is_err() {
                            return End::Lost(None);
                        }
                    }
                },
                () = sleep_until(next_deadline.unwrap_or_else(far_future)), if next_deadline.is_some() => self.expire_pending(),
                () = &mut idle => {
                    tracing::debug!("confab socket silent past the idle timeout; reconnecting");
                    return End::Lost(None);
                }
            }
        }
    }

    async fn send_call(&mut self, wire: &mut Wire, call: Call) -> Result<(), End> {
        if call.deadline <= Instant::now() {
            let _ = call.reply.send(Err(self.timeout(call.method)));
            return Ok(());
        }
        let id = self.take_id();
        let reply = match call.method.as_str() {
            "room.join" => Reply::Join(call.reply),
            "room.leave" => match call.params.get("room").and_then(Value::as_str) {
                Some(room) => Reply::Leave { room: room.to_owned(), reply: call.reply },
                None => Reply::Call(call.reply),
            },
            _ => Reply::Call(call.reply),
        };
        let frame = request_frame(id, &call.method, &call.params);
        self.pending.insert(id, Pending { method: call.method, deadline: call.deadline, reply, permit: call.permit });
        self.note_in_flight();
        if wire.send(frame).await.is_err() {
            return Err(End::Lost(None));
        }
        Ok(())
    }

    /// A frame the stream could not deliver: its calls fail, with the POST's status (413,
    /// 429, ...) or, when the stream is gone (404, or no answer at all), as lost.
    fn undelivered(&mut self, frame: &str, status: Option<u16>, problem: Option<&confab_shared::Problem>) {
        for id in request_ids(frame) {
            if let Some(pending) = self.pending.remove(&id) {
                let error = undelivered_error(pending.method.clone(), status, problem);
                let _ = pending.reply.into_sender().send(Err(error));
            }
        }
    }

    /// Handles one text frame: answers go to their callers (or, for `internal`, are
    /// returned), notifications to the events. Returns frames to send (baseline lookups).
    fn dispatch(&mut self, text: &str, internal: Option<i64>) -> (Vec<String>, Option<Result<Value, ErrorObject>>) {
        let mut outgoing = Vec::new();
        let mut answer = None;
        let items = match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => items,
            Ok(item) => vec![item],
            Err(err) => {
                let _ = self.events.send(Event::Error(Error::Decode(err)));
                return (outgoing, answer);
            }
        };
        for item in items {
            if item.get("method").is_some() {
                self.notification(item);
                continue;
            }
            let response: Response = match serde_json::from_value(item) {
                Ok(response) => response,
                Err(err) => {
                    let _ = self.events.send(Event::Error(Error::Decode(err)));
                    continue;
                }
            };
            let Some(RequestId::Number(id)) = response.id else { continue };
            let result = match (response.result, response.error) {
                (_, Some(error)) => Err(error),
                (result, None) => Ok(result.unwrap_or(Value::Null)),
            };
            if Some(id) == internal {
                answer = Some(result);
            } else if let Some(pending) = self.pending.remove(&id) {
                outgoing.extend(self.answer(pending, result));
            }
        }
        (outgoing, answer)
    }

    /// Hands an answer to its caller, moving the cursors first for joins and leaves.
    fn answer(&mut self, pending: Pending, result: Result<Value, ErrorObject>) -> Option<String> {
        let Pending { method, deadline, reply, permit } = pending;
        let value = match result {
            Ok(value) => value,
            Err(error) => {
                let _ = reply.into_sender().send(Err(Error::Rpc { method, error }));
                return None;
            }
        };
        match reply {
            Reply::Call(reply) => {
                let _ = reply.send(Ok(value));
            }
            Reply::Join(reply) => return self.joined(value, reply, deadline, permit),
            Reply::Leave { room, reply } => {
                self.cursors.left(&room);
                let _ = reply.send(Ok(value));
            }
            Reply::Baseline { room, join, reply } => {
                let newest = serde_json::from_value::<Vec<Message>>(value).ok().and_then(|h| h.last().map(|m| m.id));
                self.cursors.joined(&room, newest.unwrap_or(0));
                let _ = reply.send(Ok(join));
            }
        }
        None
    }

    /// A successful join: the first join of a room fixes where catching up will start (after
    /// the newest message the caller was shown, or the room's newest when it asked for no
    /// history, which takes one `room.history` call).
    fn joined(
        &mut self,
        value: Value,
        reply: oneshot::Sender<Result<Value, Error>>,
        deadline: Instant,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Option<String> {
        let joined: JoinResult = match serde_json::from_value(value.clone()) {
            Ok(joined) => joined,
            Err(err) => {
                let _ = reply.send(Err(Error::Decode(err)));
                return None;
            }
        };
        let room = joined.room.name;
        if self.cursors.last_seen_in(&room).is_some() || joined.room.last_message_at.is_none() {
            self.cursors.joined(&room, 0);
        } else if let Some(newest) = joined.history.last() {
            self.cursors.joined(&room, newest.id);
        } else {
            let id = self.take_id();
            let newest = HistoryParams { room: room.clone(), before: None, limit: Some(1) };
            let frame = request_frame(id, HistoryParams::NAME, &newest);
            let reply = Reply::Baseline { room, join: value, reply };
            // The lookup is still the caller's call: it keeps the join's permit.
            self.pending.insert(id, Pending { method: HistoryParams::NAME.to_owned(), deadline, reply, permit });
            return Some(frame);
        }
        let _ = reply.send(Ok(value));
        None
    }

    fn notification(&mut self, item: Value) {
        match serde_json::from_value::<Notification>(item.clone()) {
            Ok(notification) => self.deliver(notification),
            Err(_) => {
                let method = item.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
                let params = item.get("params").cloned().unwrap_or(Value::Null);
                let _ = self.events.send(Event::Unknown { method, params });
            }
        }
    }

    /// Hands a notification to the events; messages only once each, in id order per room.
    fn deliver(&mut self, notification: Notification) {
        if let Some(held) = &mut self.held
            && matches!(notification, Notification::RoomMessage(_) | Notification::DmMessage(_))
        {
            held.push(notification);
            return;
        }
        match &notification {
            Notification::RoomMessage(message) if !self.cursors.admit_message(message) => return,
            Notification::DmMessage(dm) if !self.cursors.admit_dm(dm) => return,
            Notification::SessionExpiring(_) => self.renew_in_background(),
            _ => {}
        }
        let _ = self.events.send(Event::Notification(notification));
    }

    fn flush_held(&mut self) {
        for notification in self.held.take().unwrap_or_default() {
            self.deliver(notification);
        }
    }

    /// Answers `session.expiring`: a fresh access token (refresh, or log in again), handed to
    /// the socket with `auth.refresh` like any call. Failing, the socket closes with 4001 at
    /// expiry and reconnecting renews again.
    fn renew_in_background(&self) {
        if !self.auth.renewable() || self.renewing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (auth, renewals, events, renewing) = (self.auth.clone(), self.renewals.clone(), self.events.clone(), self.renewing.clone());
        let call_timeout = self.options.call_timeout;
        tokio::spawn(async move {
            let outcome = async {
                let token = auth.renew(None).await?;
                let Some(commands) = renewals.upgrade() else { return Ok(None) };
                let (reply, answer) = oneshot::channel();
                let params = serde_json::to_value(AuthRefreshParams { access_token: token })?;
                let deadline = Instant::now() + call_timeout;
                let call = Call { method: AuthRefreshParams::NAME.to_owned(), params, reply, deadline, permit: None };
                commands.send(Command::Call(call)).map_err(|_| Error::Closed { close_code: None })?;
                drop(commands);
                let value = answer.await.map_err(|_| Error::Closed { close_code: None })??;
                Ok::<_, Error>(Some(serde_json::from_value::<AuthRefreshResult>(value)?.expires_at))
            };
            match outcome.await {
                Ok(Some(expires_at)) => {
                    let _ = events.send(Event::Renewed { expires_at });
                }
                Ok(None) => {}
                Err(err) => {
                    let _ = events.send(Event::Error(err));
                }
            }
            renewing.store(false, Ordering::Release);
        });
    }

    fn expire_pending(&mut self) {
        let now = Instant::now();
        let expired: Vec<i64> = self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        for id in expired {
            if let Some(pending) = self.pending.remove(&id) {
                let error = self.timeout(pending.method);
                let _ = pending.reply.into_sender().send(Err(error));
            }
        }
    }

    fn fail_pending(&mut self, error: impl Fn(String) -> Error) {
        for (_, pending) in self.pending.drain() {
            let _ = pending.reply.into_sender().send(Err(error(pending.method)));
        }
    }

    // ---------------------------------------------------------------------------------
    // Opening and catching up

    /// The first connection: open, and without a `dm_after` from the application look up
    /// the newest direct message, where catching up on DMs will start.
    async fn connect_first(&mut self) -> Result<Wire, Error> {
        let mut wire = self.open().await?;
        self.held = Some(Vec::new());
        if self.cursors.dm_after.is_none() && self.authenticated().await {
            let mut newest = 0;
            loop {
                let page = self.request(&mut wire, SyncParams { rooms: BTreeMap::new(), dm_after: Some(newest) }).await?;
                newest = page.dms.iter().map(|dm| dm.id).fold(newest, i64::max);
                if page.complete {
                    break;
                }
            }
            // DMs that arrived live while looking are new: deliver them, then raise the cursor.
            self.cursors.dm_after = Some(0);
            self.flush_held();
            self.cursors.raise_dm(newest);
        }
        self.flush_held();
        Ok(wire)
    }

    /// Opens a wire on the transport the rules choose, falling back to the stream when the
    /// WebSocket upgrade is refused.
    async fn open(&mut self) -> Result<Wire, Error> {
        let token = self.auth.bearer().await?;
        let wire = match self.next_transport() {
            Transport::Stream => self.open_stream(token).await?,
            Transport::WebSocket => match self.open_socket(token.clone()).await {
                Ok(ws) => Wire::Socket(Box::new(ws)),
                Err((err, refused)) if refused && self.options.transport.is_none() => {
                    let wire = self.open_stream(token).await?;
                    self.fall_back(format!("the WebSocket did not open ({err}); using the HTTP stream"));
                    wire
                }
                Err((err, _)) => return Err(err),
            },
        };
        self.opened_at = Instant::now();
        self.transport.send_replace(Some(wire.kind()));
        Ok(wire)
    }

    /// The transport the next wire opens.
    fn next_transport(&self) -> Transport {
        match (self.options.transport, self.stream_until) {
            (Some(forced), _) => forced,
            (None, Some(until)) if Instant::now() < until => Transport::Stream,
            (None, _) => Transport::WebSocket,
        }
    }

    /// Wires open the stream for a while ([`Options::websocket_retry`]); the application hears why.
    fn fall_back(&mut self, why: String) {
        self.short_sockets = 0;
        self.stream_until = Some(Instant::now() + self.options.websocket_retry);
        let _ = self.events.send(Event::Error(Error::Transport(why)));
    }

    /// Counts WebSockets the network killed right after they opened (no close frame, within
    /// [`SHORT_LIVED`]); the second in a row moves the connection to the stream.
    fn wire_ended(&mut self, kind: Transport, close_code: Option<u16>) {
        if kind != Transport::WebSocket {
            return;
        }
        let killed = close_code.is_none() && self.opened_at.elapsed() < SHORT_LIVED;
        self.short_sockets = if killed { self.short_sockets + 1 } else { 0 };
        if self.short_sockets >= 2 && self.options.transport.is_none() {
            self.fall_back("the WebSocket died right after opening twice in a row; using the HTTP stream".to_owned());
        }
    }

    async fn open_stream(&self, token: Option<String>) -> Result<Wire, Error> {
        let stream = StreamWire::open(&self.stream_http, self.rest.base(), self.auth.clone(), token, self.options.call_timeout).await?;
        Ok(Wire::Stream(stream))
    }

    /// Opens the WebSocket; a failure says whether something answered and refused the
    /// upgrade (so the stream may pass where the socket did not): not when nothing could be
    /// reached, and not for a refused token or a full server, which refuse a stream alike.
    async fn open_socket(&self, token: Option<String>) -> Result<Ws, (Error, bool)> {
        let mut request = self.rest.socket_url().into_client_request().map_err(|err| (Error::from(err), false))?;
        let headers = request.headers_mut();
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
        if let Some(token) = token {
            // Programs send the token in the Authorization header; browsers, which cannot, use
            // the `bearer.<token>` subprotocol instead.
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| (Error::Transport("the token has characters a header cannot carry".to_owned()), false))?;
            headers.insert(header::AUTHORIZATION, value);
        }
        let deadline = Instant::now() + self.options.call_timeout;
        let connecting = tokio_tungstenite::connect_async_with_config(request, None, true);
        match timeout_at(deadline, connecting).await {
            Ok(Ok((ws, _response))) => Ok(ws),
            Ok(Err(err)) => {
                let refused = upgrade_refused(&err);
                Err((err.into(), refused))
            }
            Err(_) => Err((self.timeout("connect".to_owned()), true)),
        }
    }

    /// After a lost socket: back off, open, re-join, `sync` until complete; until it works or
    /// the client is closed (`Err`, with whom to tell).
    async fn reconnect(&mut self, close_code: Option<u16>) -> Result<Wire, Option<oneshot::Sender<()>>> {
        let mut close_code = close_code;
        if close_code == Some(close::TOKEN_EXPIRED) {
            self.auth.invalidate().await;
        }
        loop {
            let wait = self.attempts.next(close_code.take(), rand::random::<f64>());
            if let Some(stop) = self.wait_taking_commands(sleep(wait)).await {
                self.finish(Some(close::NORMAL), None).await;
                return Err(stop);
            }
            if let Some(hook) = self.options.before_reconnect.clone()
                && let Some(stop) = self.wait_taking_commands((hook.0)()).await
            {
                self.finish(Some(close::NORMAL), None).await;
                return Err(stop);
            }
            self.last_close = None;
            let outcome = match self.open().await {
                Ok(mut wire) => match self.catch_up(&mut wire).await {
                    Ok(resync) => Ok((wire, resync)),
                    Err(err) => {
                        if matches!(err, Error::ConnectionLost { .. }) {
                            self.wire_ended(wire.kind(), self.last_close);
                        }
                        self.transport.send_replace(None);
                        Err(err)
                    }
                },
                Err(err) => Err(err),
            };
            match outcome {
                Ok((wire, resync)) => {
                    self.attempts.reset();
                    self.state.send_replace(State::Open);
                    let _ = self.events.send(Event::Reconnected(resync));
                    return Ok(wire);
                }
                Err(err) => {
                    self.held = None;
                    self.fail_pending(|method| Error::ConnectionLost { method });
                    if let Some(error) = self.refusal(&err).await {
                        self.finish(self.last_close, Some(error)).await;
                        return Err(None);
                    }
                    let _ = self.events.send(Event::Error(err));
                }
            }
        }
    }

    /// Whether a failed reconnection attempt ends the client: refused credentials, a
    /// refused fixed token, or a revocation close during the catch-up.
    async fn refusal(&self, err: &Error) -> Option<Error> {
        match err {
            Error::AuthFailed { status, problem } => Some(Error::AuthFailed { status: *status, problem: problem.clone() }),
            Error::Http { status: 401, problem } if !self.auth.renewable() => {
                Some(Error::Http { status: 401, problem: problem.clone() })
            }
            Error::Http { status: 401, .. } => {
                // A login whose access token was refused (revoked, or the server's key
                // changed): renew before the next attempt.
                self.auth.invalidate().await;
                None
            }
            Error::ConnectionLost { .. } => self.final_close(self.last_close),
            _ => None,
        }
    }

    /// Awaits `wait` while taking commands: calls queue (and time out), `close` stops.
    async fn wait_taking_commands(&mut self, wait: impl Future<Output = ()>) -> Option<Option<oneshot::Sender<()>>> {
        tokio::pin!(wait);
        loop {
            self.expire_waiting();
            let next_deadline = self.waiting.iter().map(|c| c.deadline).min();
            tokio::select! {
                () = &mut wait => return None,
                () = sleep_until(next_deadline.unwrap_or_else(far_future)), if next_deadline.is_some() => {}
                command = self.commands.recv() => match command {
                    None => return Some(None),
                    Some(Command::Close { done }) => return Some(Some(done)),
                    Some(Command::Call(call)) => {
                        self.waiting.push_back(call);
                        self.note_in_flight();
                    }
                    // Notifications are not queued: typing from a minute ago means nothing.
                    Some(Command::Notify { .. }) => {}
                },
            }
        }
    }

    fn expire_waiting(&mut self) {
        let now = Instant::now();
        let (expired, kept): (Vec<Call>, Vec<Call>) = self.waiting.drain(..).partition(|c| c.deadline <= now);
        self.waiting = kept.into();
        for call in expired {
            let error = self.timeout(call.method);
            let _ = call.reply.send(Err(error));
        }
    }

    /// Re-joins the rooms, then calls `sync` until complete; live messages are held meanwhile.
    async fn catch_up(&mut self, wire: &mut Wire) -> Result<Resync, Error> {
        self.held = Some(Vec::new());
        for room in self.cursors.rooms.clone() {
            match self.request(wire, JoinParams { room: room.clone(), history: Some(0) }).await {
                Ok(_) => {}
                // The room is gone or closed to us now: stop following it rather than fail forever.
                Err(Error::Rpc { error, .. })
                    if error.code == ErrorCode::Forbidden.code() || error.code == ErrorCode::NotFound.code() =>
                {
                    self.cursors.left(&room);
                }
                Err(err) => return Err(err),
            }
        }
        let authenticated = self.authenticated().await;
        let mut caught = Resync::default();
        loop {
            let page = self.request(wire, self.cursors.sync_params(authenticated)).await?;
            for message in page.messages {
                if self.cursors.admit_message(&message) {
                    caught.messages.push(message.clone());
                    let _ = self.events.send(Event::Notification(Notification::RoomMessage(message)));
                }
            }
            for dm in page.dms {
                if self.cursors.admit_dm(&dm) {
                    caught.dms.push(dm.clone());
                    let _ = self.events.send(Event::Notification(Notification::DmMessage(dm)));
                }
            }
            if page.complete {
                break;
            }
        }
        self.flush_held();
        Ok(caught)
    }

    /// One call of the connection's own, answered before anything else goes out: it reads
    /// the wire until its answer, dispatching whatever else arrives meanwhile.
    async fn request<M: Method>(&mut self, wire: &mut Wire, params: M) -> Result<M::Result, Error> {
        let method = M::NAME;
        let id = self.take_id();
        let lost = || Error::ConnectionLost { method: method.to_owned() };
        wire.send(request_frame(id, method, &params)).await.map_err(|()| lost())?;
        let deadline = Instant::now() + self.options.call_timeout;
        loop {
            let Ok(incoming) = timeout_at(deadline, wire.recv()).await else {
                return Err(self.timeout(method.to_owned()));
            };
            match incoming {
                Incoming::Text(text) => {
                    let (outgoing, answer) = self.dispatch(&text, Some(id));
                    for frame in outgoing {
                        wire.send(frame).await.map_err(|()| lost())?;
                    }
                    match answer {
                        Some(Ok(value)) => return Ok(serde_json::from_value(value)?),
                        Some(Err(error)) => return Err(Error::Rpc { method: method.to_owned(), error }),
                        None => {}
                    }
                }
                Incoming::Undelivered { frame, status, problem } => {
                    if request_ids(&frame).contains(&id) {
                        return Err(undelivered_error(method.to_owned(), status, problem.as_ref()));
                    }
                    self.undelivered(&frame, status, problem.as_ref());
                }
                Incoming::Closed(code) => {
                    if code.is_some() {
                        self.last_close = code;
                    }
                    return Err(lost());
                }
                Incoming::Alive => {}
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Ending

    /// Why a close ends the client for good, or `None` when reconnecting can help.
    fn final_close(&self, code: Option<u16>) -> Option<Error> {
        if !self.options.reconnect {
            return Some(Error::Closed { close_code: code });
        }
        match code {
            // The session or API token was revoked: coming back would undo the revocation.
            Some(close::LOGGED_OUT) => Some(Error::Closed { close_code: code }),
            // A fixed token expired; a login renews and reconnects.
            Some(close::TOKEN_EXPIRED) if !self.auth.renewable() => Some(Error::Closed { close_code: code }),
            _ => None,
        }
    }

    /// Fails every call, logs out (credentials), and reports the close.
    async fn finish(&mut self, close_code: Option<u16>, error: Option<Error>) {
        self.fail_pending(|_| Error::Closed { close_code });
        for call in self.waiting.drain(..) {
            let _ = call.reply.send(Err(Error::Closed { close_code }));
        }
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Call(call) => {
                    let _ = call.reply.send(Err(Error::Closed { close_code }));
                }
                Command::Close { done } => {
                    let _ = done.send(());
                }
                Command::Notify { .. } => {}
            }
        }
        if matches!(self.options.login, Login::Credentials(_)) && self.options.logout_on_close && error.is_none() {
            // Best effort: the session expires by itself otherwise.
            if let Err(err) = self.auth.end().await {
                let _ = self.events.send(Event::Error(err));
            }
        }
        self.state.send_replace(State::Closed);
        let _ = self.events.send(Event::Closed { close_code, error });
    }

    async fn authenticated(&self) -> bool {
        self.auth.renewable() || matches!(self.auth.bearer().await, Ok(Some(_)))
    }

    /// Records the most calls held at once, for `Client::peak_in_flight`.
    fn note_in_flight(&self) {
        self.peak_in_flight.fetch_max(self.pending.len() + self.waiting.len(), Ordering::Relaxed);
    }

    fn take_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn timeout(&self, method: String) -> Error {
        Error::Timeout { method, timeout: self.options.call_timeout }
    }
}

/// A JSON-RPC request as it goes on the wire.
#[derive(serde::Serialize)]
struct RequestFrame<'a, P> {
    jsonrpc: &'static str,
    id: i64,
    method: &'a str,
    params: &'a P,
}

fn request_frame(id: i64, method: &str, params: &impl serde::Serialize) -> String {
    // Params are the protocol's own types or JSON values: serializing them cannot fail.
    serde_json::to_string(&RequestFrame { jsonrpc: "2.0", id, method, params }).unwrap_or_default()
}

/// The ids of the requests in a frame (one request or a batch).
fn request_ids(frame: &str) -> Vec<i64> {
    match serde_json::from_str::<Value>(frame) {
        Ok(Value::Array(items)) => items.iter().filter_map(|item| item.get("id")?.as_i64()).collect(),
        Ok(item) => item.get("id").and_then(Value::as_i64).into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// How a call whose POST failed fails: with the POST's status (413, 429, ...), or as lost when
/// the stream is gone (404) or nothing answered.
fn undelivered_error(method: String, status: Option<u16>, problem: Option<&confab_shared::Problem>) -> Error {
    match status {
        Some(status) if status != 404 => Error::Http { status, problem: problem.cloned() },
        _ => Error::ConnectionLost { method },
    }
}

/// Whether a failed upgrade reached something that refused it: an HTTP answer other than 401
/// (a refused token), 429 (too many connections) and 502, 503 or 504 (a proxy whose server is
/// down or restarting: the stream would fail alike), or a handshake that went wrong; not a
/// server that could not be reached at all.
fn upgrade_refused(err: &tokio_tungstenite::tungstenite::Error) -> bool {
    use std::io::ErrorKind;
    use tokio_tungstenite::tungstenite::Error as WsError;
    match err {
        WsError::Http(response) => !matches!(response.status().as_u16(), 401 | 429 | 502..=504),
        WsError::Io(io) => !matches!(io.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound | ErrorKind::AddrNotAvailable | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable),
        _ => true,
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
