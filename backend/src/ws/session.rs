//! A connection's life: open (groups, presence), the reader loop, the writer task, and the
//! close (rooms left, presence uncounted, one log line).
//!
//! # Transports
//! One session serves both transports. The socket ([`super::upgrade`]) and the HTTP stream
//! ([`super::stream`]) each hand it a [`Link`]: a stream of [`Inbound`] frames (the socket's
//! text frames, or the bodies of the stream's POSTs, each with the place its answer goes) and
//! a sink the writer writes batches to (the socket, or the stream's response body). Dispatch,
//! limits, timers, presence and the close codes are the same whichever it is.
//!
//! # Order
//! The reader handles one frame at a time, so responses leave in request order. The one
//! exception is pipelining: consecutive single `room.send` calls are checked and queued for
//! the group commit right away ([`Pipeline`]), and their responses follow in order as the
//! commits land, so a client with many sends in flight gets them into one transaction (and
//! its room's members get them in one write). Any other call first waits for the sends
//! before it, so it sees their effects and its response comes after theirs.
//!
//! # Back-pressure
//! The session reads a frame only when the connection's queue has room
//! ([`Outbox::congested`]) and its pipeline is not full; otherwise it leaves the client's
//! requests in the socket, and TCP slows the client down. A client that pipelines faster
//! than it reads its answers is slowed, never evicted; eviction (1013) is for notifications
//! it cannot keep up with (see [`crate::layer::hub`]).
//!
//! # Close
//! The writer task ([`super::writer`]) sends the close frame ahead of anything still queued.
//! On a socket the session then keeps reading, discarding, until the client answers the
//! close (or a grace period passes): closing a socket with unread requests in it would make
//! the kernel reset the connection, and the reset destroys the close frame before the client
//! reads it. A stream has no close handshake: its `stream.closed` event ends the body. A
//! writer that fails for any reason ends the session at once; one that cannot write its
//! close within the grace period is stopped.
//!
//! Every call is charged to the connection's [`CallLimits`] before anything else is looked
//! at: a frame that is not JSON, a call with a bad envelope, an unknown method or bad params
//! are answered too, so a client flooding them gets -32029 like any other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes};
use confab_shared::Timestamp;
use confab_shared::rpc::notify::SessionExpiring;
use confab_shared::rpc::{
    ErrorObject, Frame, Incoming, MAX_ANSWER_BYTES, Method as _, Notification, Request, RequestId, Response, SendParams, close, decode_frame,
};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{Sink, Stream, StreamExt};
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};

use super::Conn;
use super::budget;
use super::dispatch::dispatch;
use super::limits::CallLimits;
use crate::auth::Identity;
use crate::features::{chat, rooms, users};
use crate::layer::hub::{Control, QueueLimits, WRITE_FAILED};
use crate::layer::{Class, Outbox, group};
use crate::metrics::METRICS;
use crate::state::AppState;

/// How long the close handshake may take (our close frame written, the client's answer
/// read) before the socket is dropped anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long a stopping instance waits for a socket's in-flight sends to commit.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);
/// Most `room.send` calls of one connection awaiting their commit; beyond that the reader
/// stops reading until the oldest is answered (back-pressure on a flat-out sender).
const MAX_PIPELINED_SENDS: usize = 64;

/// What a transport hands the session's reader.
pub enum Inbound {
    /// One JSON-RPC request or batch. Its answer goes to `reply` when there is one (the body
    /// of the POST that carried it), else to the connection's queue (the socket).
    Frame { text: Utf8Bytes, reply: Option<Reply> },
    /// A sign of life that is not a call (a ping or a pong).
    Alive,
    /// End the session, closing with this code.
    Close(u16),
    /// The client is gone (reset, EOF) or its transport failed: nothing to send.
    Gone(&'static str),
}

/// Where the answer to a POSTed frame goes: its reply frame, or `None` when it held only
/// notifications.
pub type Reply = oneshot::Sender<Option<String>>;

/// A transport as the session sees it.
pub struct Link<S, R> {
    /// What the writer writes to: the socket's sending half, or the stream's response body.
    pub sink: S,
    /// What the client sends, in order.
    pub inbound: R,
    /// How often the writer proves the link alive when it has nothing to say (a ping, a comment).
    pub keepalive: Duration,
    /// How long the client may send nothing before it is taken for gone; `None` where silence
    /// is normal (a stream whose client only listens: its writes fail when it is gone).
    pub idle_limit: Option<Duration>,
    /// Whether the client answers a close (the socket's close handshake, read up to its answer).
    pub lingers: bool,
    /// `socket` or `stream`, for the logs.
    pub kind: &'static str,
}

/// Why the reader stopped.
enum End {
    /// Close the socket with this code (the writer sends the close frame).
    Close(u16),
    /// The peer is gone (reset, EOF, silent too long) or the socket failed: nothing to send.
    Gone(&'static str),
}

/// Runs one connection over `link` to its end; returns the close code it ended with (`None`:
/// the client was gone, nothing was sent).
pub async fn run<S, R>(state: AppState, link: Link<S, R>, identity: Option<Identity>, joined_at_connect: Vec<String>, peer: SocketAddr) -> Option<u16>
where
    S: Sink<Message> + Unpin + Send + 'static,
    S::Error: std::fmt::Display,
    R: Stream<Item = Inbound> + Unpin,
{
    let Link { sink, inbound: mut stream, keepalive, idle_limit, lingers, kind } = link;
    let started = std::time::Instant::now();
    let user_id = identity.as_ref().map(|i| i.user_id);
    let limits = QueueLimits { frames: state.config.outbox_capacity, bytes: state.config.outbox_max_bytes };
    let (outbox, inbox) = state.layer.hub().register(user_id, limits);
    let control = inbox.control.clone();
    let mut conn = Conn::new(outbox.conn(), identity);
    let username = conn.identity.as_ref().map(|i| i.username.clone());
    METRICS.connections_opened.fetch_add(1, Ordering::Relaxed);
    tracing::info!(conn = conn.id, user = username.as_deref().unwrap_or("-"), %peer, kind, "connection opened");

    let mut writer = tokio::spawn(super::writer::run(sink, inbox, keepalive, state.config.fanout_window()));
    // Boxed, like every call below: an idle connection's task then holds only the reader's
    // own state, not room for the largest of these futures (kilobytes per connection).
    Box::pin(open(&state, &conn)).await;
    Box::pin(rooms::join_at_connect(&state, &mut conn, joined_at_connect)).await;
    let end = Reader::new(&state, &conn, &outbox, &control, idle_limit).run(&mut conn, &mut stream).await;
    // Ask the writer to stop at once, then leave the rooms before the goodbye: the rest of
    // the room learns of the departure without waiting for this client's close handshake.
    let code = match end {
        End::Close(code) => Some(code),
        End::Gone(_) => None,
    };
    outbox.close(code.unwrap_or(close::NORMAL));
    Box::pin(finish(&state, &mut conn)).await;
    match code {
        Some(_) => {
            // The close handshake: the writer sends our close frame (ahead of anything still
            // queued) while we read, and drop, what the client still sends, up to its answer.
            // A stream's close is its last event; nothing comes back.
            let answered = async {
                if lingers {
                    linger(&mut stream).await;
                }
            };
            let handshake = futures_util::future::join(&mut writer, answered);
            if tokio::time::timeout(CLOSE_GRACE, handshake).await.is_err() {
                tracing::debug!(conn = conn.id, "close handshake did not finish in time");
                // A client that reads nothing keeps no writer (nor its queue) alive.
                writer.abort();
            }
        }
        // Nothing to say to a peer that is gone.
        None => writer.abort(),
    }
    drop(stream);
    METRICS.connections_closed.fetch_add(1, Ordering::Relaxed);
    let reason = match end {
        End::Gone(reason) => reason,
        End::Close(_) => "closed",
    };
    tracing::info!(
        conn = conn.id,
        user = username.as_deref().unwrap_or("-"),
        %peer,
        kind,
        duration_ms = started.elapsed().as_millis() as u64,
        close_code = code.unwrap_or(0),
        reason,
        "connection closed"
    );
    code
}

/// Reads and drops frames until the client answers our close frame or the socket ends.
async fn linger(stream: &mut (impl Stream<Item = Inbound> + Unpin)) {
    while let Some(inbound) = stream.next().await {
        if let Inbound::Close(_) | Inbound::Gone(_) = inbound {
            break;
        }
    }
}

/// Joins the connection's standing groups, then announces the user (subscribe before announcing).
async fn open(state: &AppState, conn: &Conn) {
    // Receiving events is the `read` scope: a token without it hears nothing but its revocation.
    let receives = conn.identity.as_ref().is_none_or(|me| me.scopes.contains(confab_shared::Scope::Read));
    let mut groups = if receives { vec![group::ALL.to_owned()] } else { Vec::new() };
    if let Some(me) = &conn.identity {
        if receives {
            groups.push(group::user(me.user_id));
        }
        groups.push(me.revocation_group());
    }
    for g in &groups {
        if let Err(err) = state.layer.group_add(g, conn.id).await {
            tracing::warn!(%err, group = %g, "group subscription failed; local delivery only");
        }
    }
    if let Some(me) = &conn.identity {
        users::connected(state, &me.username).await;
    }
}

/// Leaves every room (announcing last departures), every group, and uncounts presence.
async fn finish(state: &AppState, conn: &mut Conn) {
    let joined: Vec<String> = conn.rooms.keys().cloned().collect();
    for room in joined {
        rooms::leave_room(state, conn, &room).await;
    }
    state.layer.leave_all(conn.id);
    if let Some(me) = &conn.identity {
        users::disconnected(state, &me.username).await;
    }
}

/// Where a frame's reply goes: the connection's queue (the socket), or the POST that
/// carried the frame (the stream).
enum To {
    Outbox,
    Post(Reply),
}

/// The responses of pipelined sends, in request order (`None`: a notification, no response),
/// each with where it goes.
struct Pipeline {
    replies: FuturesOrdered<BoxFuture<'static, (Option<String>, To)>>,
}

impl Pipeline {
    fn new() -> Self {
        Self { replies: FuturesOrdered::new() }
    }

    fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }

    fn is_full(&self) -> bool {
        self.replies.len() >= MAX_PIPELINED_SENDS
    }

    fn push(&mut self, reply: BoxFuture<'static, Option<String>>, to: To) {
        self.replies.push_back(Box::pin(async move { (reply.await, to) }));
    }

    /// The next send's response, once it has committed.
    async fn next(&mut self) -> Option<(Option<String>, To)> {
        self.replies.next().await
    }

    /// Answers every send in flight, in order: what any other call waits for.
    async fn drain(&mut self, outbox: &Outbox) {
        while let Some((reply, to)) = self.replies.next().await {
            answer(outbox, reply, to);
        }
    }
}

fn answer(outbox: &Outbox, reply: Option<String>, to: To) {
    match to {
        To::Outbox => {
            if let Some(reply) = reply {
                outbox.answer(&reply.into());
            }
        }
        // A POST whose client went away has nobody to tell; its call did run.
        To::Post(post) => {
            let _ = post.send(reply);
        }
    }
}

/// What the reader's timers are set for: when the peer was last heard from, and the access
/// token's expiry (with its warning).
struct Clock {
    /// `None`: silence is normal on this transport.
    idle_limit: Option<Duration>,
    warning_secs: i64,
    last_heard: Instant,
    /// The expiry the timers are set for (`None` inside: the connection has no expiry).
    armed_for: Option<Option<i64>>,
    /// The expiry already warned about; a refreshed token has a new one.
    warned_for: Option<i64>,
}

/// What a timer said.
enum Tick {
    /// Nothing due yet: the timer was re-armed.
    Rearmed,
    /// The peer has been silent for too long.
    Idle,
    /// Time to send `session.expiring` for this expiry (Unix seconds).
    Warn(i64),
    /// The access token expired.
    Expired,
}

impl Clock {
    /// The next instant the reader must wake for, given the current token expiry.
    fn next_deadline(&mut self, expires_at: Option<i64>) -> Instant {
        self.armed_for = Some(expires_at);
        // With no idle limit (and no expiry), a day: the timer is then only re-armed.
        let mut due = self.last_heard + self.idle_limit.unwrap_or(Duration::from_secs(86_400));
        if let Some(exp) = expires_at {
            if self.warned_for != Some(exp) {
                due = due.min(instant_of(exp - self.warning_secs));
            }
            due = due.min(instant_of(exp));
        }
        due
    }

    /// Decides what a timer that fired means.
    fn fired(&mut self, expires_at: Option<i64>) -> Tick {
        // Expiries are wall-clock times: compared on the wall clock (an `Instant` made from
        // one is always a little later than an `Instant::now()` taken before it).
        let now_ms = chrono::Utc::now().timestamp_millis();
        if let Some(exp) = expires_at {
            if exp.saturating_mul(1000) <= now_ms {
                return Tick::Expired;
            }
            if self.warned_for != Some(exp) && (exp - self.warning_secs).saturating_mul(1000) <= now_ms {
                self.warned_for = Some(exp);
                return Tick::Warn(exp);
            }
        }
        if self.idle_limit.is_some_and(|limit| self.last_heard + limit <= Instant::now()) {
            return Tick::Idle;
        }
        Tick::Rearmed
    }

    /// The timers must be set again when the token changed (`auth.refresh`).
    fn stale(&self, expires_at: Option<i64>) -> bool {
        self.armed_for != Some(expires_at)
    }
}

/// The reader side of one session: frames in, calls dispatched, answers queued.
struct Reader<'a> {
    state: &'a AppState,
    outbox: &'a Outbox,
    control: &'a Arc<Control>,
    limits: CallLimits,
    pipeline: Pipeline,
    clock: Clock,
}

impl<'a> Reader<'a> {
    fn new(state: &'a AppState, conn: &Conn, outbox: &'a Outbox, control: &'a Arc<Control>, idle_limit: Option<Duration>) -> Self {
        let config = &state.config;
        Self {
            state,
            outbox,
            control,
            limits: CallLimits::new(config.rate_per_sec, conn.identity.as_ref().map(|me| state.write_budgets.for_user(me.user_id))),
            pipeline: Pipeline::new(),
            clock: Clock {
                idle_limit,
                warning_secs: config.expiry_warning_secs as i64,
                last_heard: Instant::now(),
                armed_for: None,
                warned_for: None,
            },
        }
    }

    async fn run(mut self, conn: &mut Conn, stream: &mut (impl Stream<Item = Inbound> + Unpin)) -> End {
        // The futures the loop waits on across passes live as long as the loop: made afresh
        // on each pass, each would join and leave its wait list on every frame.
        let (state, control) = (self.state, self.control);
        let closed = control.closed();
        let shutdown = state.shutdown.cancelled();
        let timer = sleep_until(Instant::now());
        let evicted = control.evicted();
        tokio::pin!(closed, shutdown, timer, evicted);
        loop {
            let expires_at = conn.identity.as_ref().map(|i| i.expires_at);
            if self.clock.stale(expires_at) {
                timer.as_mut().reset(self.clock.next_deadline(expires_at));
            }
            // Read the next frame only when its answer has room; see the module doc.
            let congested = self.outbox.congested();
            let readable = !congested && !self.pipeline.is_full();
            tokio::select! {
                Some((reply, to)) = self.pipeline.next(), if !self.pipeline.is_empty() => answer(self.outbox, reply, to),
                frame = stream.next(), if readable => {
                    let Some(message) = frame else { return End::Gone("eof") };
                    if let Some(end) = self.on_message(conn, message).await {
                        return end;
                    }
                }
                // The writer made room. Waiting for it is progress, not silence: a client
                // whose answers are being written is alive even if we do not read it.
                () = control.drained(), if congested => self.clock.last_heard = Instant::now(),
                () = &mut evicted => {
                    // A kick or a ban: leave those rooms as `room.leave` would (the room
                    // hears of the departure), then wait for the next one.
                    for room in control.take_evictions() {
                        rooms::leave_room(state, conn, &room).await;
                    }
                    evicted.set(control.evicted());
                }
                code = &mut closed => {
                    return match code {
                        WRITE_FAILED => End::Gone("socket write failed"),
                        code => End::Close(code),
                    };
                }
                () = &mut timer => match self.clock.fired(expires_at) {
                    Tick::Rearmed => timer.as_mut().reset(self.clock.next_deadline(expires_at)),
                    Tick::Idle => return End::Gone("idle timeout"),
                    Tick::Expired => return End::Close(close::TOKEN_EXPIRED),
                    Tick::Warn(exp) => {
                        let event = Notification::SessionExpiring(SessionExpiring { expires_at: Timestamp::from_millis(exp * 1000) });
                        self.outbox.push(&event.to_frame().into(), Class::Reliable);
                        timer.as_mut().reset(self.clock.next_deadline(expires_at));
                    }
                },
                () = &mut shutdown => {
                    // The instance is stopping: sends already submitted are queued for commit;
                    // answer them before the close so no client is left guessing about a
                    // message that did commit. (New frames are no longer read.)
                    if tokio::time::timeout(SHUTDOWN_DRAIN, self.pipeline.drain(self.outbox)).await.is_err() {
                        tracing::warn!(conn = conn.id, "in-flight sends not answered before shutdown");
                    }
                    return End::Close(close::GOING_AWAY);
                }
            }
        }
    }

    /// One thing from the transport; `Some` ends the session.
    async fn on_message(&mut self, conn: &mut Conn, inbound: Inbound) -> Option<End> {
        match inbound {
            Inbound::Frame { text, reply } => {
                self.clock.last_heard = Instant::now();
                self.control.heard(crate::layer::hub::clock_ms());
                METRICS.frames_received.fetch_add(1, Ordering::Relaxed);
                let to = reply.map_or(To::Outbox, To::Post);
                match decode_frame(&text) {
                    Frame::Single(Incoming { id, request: Ok(Request::RoomSend(params)) }) => {
                        let reply = Box::pin(submit_send(self.state, conn, &mut self.limits, id, params)).await;
                        self.pipeline.push(reply, to);
                    }
                    frame => {
                        self.pipeline.drain(self.outbox).await;
                        let reply = Box::pin(handle_frame(self.state, conn, &mut self.limits, frame)).await;
                        answer(self.outbox, reply, to);
                    }
                }
                None
            }
            Inbound::Alive => {
                self.clock.last_heard = Instant::now();
                None
            }
            Inbound::Close(code) => Some(End::Close(code)),
            Inbound::Gone(reason) => Some(End::Gone(reason)),
        }
    }
}

/// A socket message as the session takes it.
pub fn from_socket(message: Result<Message, axum::Error>) -> Inbound {
    match message {
        Ok(Message::Text(text)) => Inbound::Frame { text, reply: None },
        Ok(Message::Binary(_)) => Inbound::Close(close::UNSUPPORTED_DATA),
        Ok(Message::Close(_)) => Inbound::Close(close::NORMAL),
        Ok(Message::Ping(_) | Message::Pong(_)) => Inbound::Alive,
        Err(err) => match classify(err) {
            End::Close(code) => Inbound::Close(code),
            End::Gone(reason) => Inbound::Gone(reason),
        },
    }
}

/// A tokio instant for a Unix time in seconds.
fn instant_of(unix_secs: i64) -> Instant {
    let now = chrono::Utc::now().timestamp_millis();
    let delta = unix_secs.saturating_mul(1000).saturating_sub(now).max(0) as u64;
    Instant::now() + Duration::from_millis(delta)
}

/// tungstenite reports an oversized or malformed frame as an error without closing; say why.
/// A peer that reset the connection without a close frame is gone, not malformed: there is
/// nobody left to send 1002 to.
fn classify(err: axum::Error) -> End {
    match err.into_inner().downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)) => {
            End::Gone("reset without closing handshake")
        }
        Some(tungstenite::Error::Capacity(_)) => End::Close(close::MESSAGE_TOO_BIG),
        Some(tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_)) => End::Close(close::PROTOCOL_ERROR),
        _ => End::Gone("connection error"),
    }
}

/// Runs a decoded frame's calls in order and returns the reply frame, if any. A rejected
/// frame (not JSON, a bad batch) costs one call.
///
/// The reply stays within [`MAX_ANSWER_BYTES`]: each call gets what is left of it, less its
/// envelope, as [`Conn::answer_budget`] (the calls of a batch share one budget), and a call
/// whose answer could not fit any more is not run ([`budget`]).
async fn handle_frame(state: &AppState, conn: &mut Conn, limits: &mut CallLimits, frame: Frame) -> Option<String> {
    let (calls, batch) = match frame {
        Frame::Reject(response) => {
            return Some(encode(&match limits.charge(None) {
                Ok(()) => response,
                Err(retry_after_ms) => Response::err(response.id, ErrorObject::rate_limited(retry_after_ms)),
            }));
        }
        Frame::Single(call) => (vec![call], false),
        Frame::Batch(calls) => (calls, true),
    };
    // A batch's array: `[`, `]` and a comma before each reply but the first.
    let mut left = if batch { MAX_ANSWER_BYTES - 2 } else { MAX_ANSWER_BYTES };
    let mut replies = Vec::with_capacity(calls.len());
    for call in calls {
        conn.answer_budget = budget::for_result(left, &call);
        let reply = if budget::admits(&call, conn.answer_budget) {
            call_one(state, conn, limits, call).await
        } else {
            budget::refused(call)
        };
        if let Some(reply) = reply.map(|r| encode(&r)) {
            left = left.saturating_sub(reply.len() + 1);
            replies.push(reply);
        }
    }
    if batch { (!replies.is_empty()).then(|| format!("[{}]", replies.join(","))) } else { replies.pop() }
}

/// `room.send`, pipelined: checked and queued for the group commit now; the returned future
/// resolves to the response (if one is wanted) once the message is committed and broadcast.
async fn submit_send(
    state: &AppState,
    conn: &Conn,
    limits: &mut CallLimits,
    id: Option<Option<RequestId>>,
    params: SendParams,
) -> BoxFuture<'static, Option<String>> {
    let submitted = match limits.charge_send(&params) {
        Err(retry_after_ms) => Err(ErrorObject::rate_limited(retry_after_ms)),
        Ok(()) => match crate::auth::scopes::authorize_method(conn.identity.as_ref(), confab_shared::rpc::SendParams::NAME) {
            Ok(()) => chat::submit(state, conn, params).await.map_err(ErrorObject::from),
            Err(err) => Err(ErrorObject::from(err)),
        },
    };
    Box::pin(async move {
        let result = match submitted {
            Ok(receipt) => receipt.wait().await.map_err(ErrorObject::from),
            Err(err) => Err(err),
        };
        if result.is_err() {
            METRICS.rpc_errors.fetch_add(1, Ordering::Relaxed);
        }
        let id = id?;
        Some(match result {
            // The message's JSON as the writer serialized it for the broadcast.
            Ok(committed) => ok_frame(id.as_ref(), &committed.json),
            Err(error) => encode(&Response::err(id, error)),
        })
    })
}

/// A success response around a result that is already JSON (what
/// `encode(&Response::ok(id, result))` makes, without parsing and serializing it again).
pub(super) fn ok_frame(id: Option<&RequestId>, result: &str) -> String {
    let id = encode(&id);
    let mut frame = String::with_capacity(result.len() + id.len() + 32);
    frame.push_str(r#"{"jsonrpc":"2.0","id":"#);
    frame.push_str(&id);
    frame.push_str(r#","result":"#);
    frame.push_str(result);
    frame.push('}');
    frame
}

/// One call: charged to the rate limit whether or not it decoded, then dispatched.
async fn call_one(state: &AppState, conn: &mut Conn, limits: &mut CallLimits, call: Incoming) -> Option<Response> {
    let wants_response = call.wants_response();
    let id = call.id.flatten();
    let result = match (limits.charge(call.request.as_ref().ok()), call.request) {
        (Err(retry_after_ms), _) => Err(ErrorObject::rate_limited(retry_after_ms)),
        (Ok(()), Err(err)) => Err(err),
        (Ok(()), Ok(request)) => Box::pin(dispatch(state, conn, request)).await,
    };
    if result.is_err() {
        METRICS.rpc_errors.fetch_add(1, Ordering::Relaxed);
    }
    wants_response.then(|| match result {
        Ok(value) => Response::ok(id, value),
        Err(error) => Response::err(id, error),
    })
}

fn encode<T: serde::Serialize>(value: &T) -> String {
    // Responses hold only JSON values and strings; serializing them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prebuilt_success_response_is_the_response_serde_makes() {
        let result = r#"{"id":3,"text":"a \"b\""}"#;
        for id in [None, Some(RequestId::Number(7)), Some(RequestId::String("x\"y".into()))] {
            let ours: serde_json::Value = serde_json::from_str(&ok_frame(id.as_ref(), result)).expect("valid JSON");
            let value = serde_json::from_str(result).expect("valid JSON");
            let theirs: serde_json::Value = serde_json::from_str(&encode(&Response::ok(id, value))).expect("valid JSON");
            assert_eq!(ours, theirs);
        }
    }

    fn clock() -> Clock {
        Clock { idle_limit: Some(Duration::from_secs(60)), warning_secs: 30, last_heard: Instant::now(), armed_for: None, warned_for: None }
    }

    #[tokio::test]
    async fn a_timer_at_the_expiry_says_expired_and_one_inside_the_warning_warns_once() {
        let now = chrono::Utc::now().timestamp();
        let mut clock = clock();
        assert!(matches!(clock.fired(Some(now)), Tick::Expired), "a token whose second has come is expired");
        assert!(matches!(clock.fired(Some(now - 5)), Tick::Expired));
        let soon = now + 10;
        assert!(matches!(clock.fired(Some(soon)), Tick::Warn(exp) if exp == soon));
        assert!(matches!(clock.fired(Some(soon)), Tick::Rearmed), "warned twice");
        assert!(matches!(clock.fired(Some(now + 3600)), Tick::Rearmed));
        assert!(matches!(clock.fired(None), Tick::Rearmed));
        // The deadline for an expiry that has come is now, not later.
        assert!(clock.next_deadline(Some(now - 1)) <= Instant::now());
    }
}
