//! A connection's life: open (groups, presence), the reader loop, the writer task, and the
//! close (rooms left, presence uncounted, one log line).
//!
//! The reader handles one frame at a time, so responses leave in request order. The one
//! exception is pipelining: consecutive single `room.send` calls are checked and queued for
//! the group commit right away, and their responses follow in order as the commits land, so a
//! client with many sends in flight gets them into one transaction (and its room's members
//! get them in one write). Any other call first waits for the sends before it, so it sees
//! their effects and its response comes after theirs. The writer task ([`super::writer`])
//! drains the outbound queue in batches.
//!
//! Every call costs a token of the connection's [`TokenBucket`] before anything else is
//! looked at: a frame that is not JSON, a call with a bad envelope, an unknown method or
//! bad params are answered too, so a client flooding them gets -32029 like any other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use confab_shared::Timestamp;
use confab_shared::rpc::notify::SessionExpiring;
use confab_shared::rpc::{
    ErrorObject, Frame, Incoming, MAX_ANSWER_BYTES, Method as _, Notification, Request, RequestId, Response, SendParams, close, decode_frame,
};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use futures_util::stream::{FuturesOrdered, SplitStream};
use tokio::time::{Instant, sleep, sleep_until};

use super::Conn;
use super::budget;
use super::dispatch::dispatch;
use super::limits::TokenBucket;
use crate::auth::Identity;
use crate::features::{chat, rooms, users};
use crate::layer::hub::Control;
use crate::layer::{Class, Outbox, group};
use crate::metrics::METRICS;
use crate::state::AppState;

/// How long the writer gets to say goodbye before the session ends anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Most `room.send` calls of one connection awaiting their commit; beyond that the reader
/// stops reading until the oldest is answered (back-pressure on a flat-out sender).
const MAX_PIPELINED_SENDS: usize = 64;

/// The responses of pipelined sends, in request order (`None`: a notification, no response).
/// How long a stopping instance waits for a socket's in-flight sends to commit.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);

type PendingSends = FuturesOrdered<BoxFuture<'static, Option<String>>>;

/// Why the reader stopped.
enum End {
    /// Close the socket with this code (the writer sends the close frame).
    Close(u16),
    /// The peer is gone (reset, EOF, silent too long): nothing to send.
    Gone(&'static str),
}

pub async fn run(state: AppState, socket: WebSocket, identity: Option<Identity>, peer: SocketAddr) {
    let started = std::time::Instant::now();
    let user_id = identity.as_ref().map(|i| i.user_id);
    let (outbox, inbox) = state.layer.hub().register(user_id, state.config.outbox_capacity);
    let control = inbox.control.clone();
    let mut conn = Conn::new(outbox.conn(), identity);
    let username = conn.identity.as_ref().map(|i| i.username.clone());
    METRICS.connections_opened.fetch_add(1, Ordering::Relaxed);
    tracing::info!(conn = conn.id, user = username.as_deref().unwrap_or("-"), %peer, "connection opened");

    let (sink, stream) = socket.split();
    let ping_every = Duration::from_secs(state.config.ping_secs.max(1));
    let writer = tokio::spawn(super::writer::run(sink, inbox, ping_every, state.config.fanout_window()));
    // Boxed, like every call below: an idle connection's task then holds only the reader's
    // own state, not room for the largest of these futures (kilobytes per connection).
    Box::pin(open(&state, &conn)).await;
    let end = read_loop(&state, &mut conn, stream, &outbox, &control).await;
    let code = match end {
        End::Close(code) => {
            outbox.close(code);
            Some(code)
        }
        End::Gone(_) => {
            // Nothing to say to a peer that is gone; stop the writer all the same.
            outbox.close(close::NORMAL);
            None
        }
    };
    if tokio::time::timeout(CLOSE_GRACE, writer).await.is_err() {
        tracing::debug!(conn = conn.id, "writer did not finish in time");
    }
    Box::pin(finish(&state, &mut conn)).await;
    METRICS.connections_closed.fetch_add(1, Ordering::Relaxed);
    let reason = match end {
        End::Gone(reason) => reason,
        End::Close(_) => "closed",
    };
    tracing::info!(
        conn = conn.id,
        user = username.as_deref().unwrap_or("-"),
        %peer,
        duration_ms = started.elapsed().as_millis() as u64,
        close_code = code.unwrap_or(0),
        reason,
        "connection closed"
    );
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

async fn read_loop(
    state: &AppState,
    conn: &mut Conn,
    mut stream: SplitStream<WebSocket>,
    outbox: &Outbox,
    control: &Arc<Control>,
) -> End {
    let config = &state.config;
    let idle_limit = Duration::from_secs(config.ping_secs.max(1) * 3);
    let mut bucket = TokenBucket::new(config.rate_per_sec, config.rate_per_sec.saturating_mul(2));
    // The expiry we already warned about; a refreshed token has a new one.
    let mut warned_for = None;
    let mut sends = PendingSends::new();
    // Every future the loop waits on lives as long as the loop: made afresh on each pass,
    // each would register with its timer wheel or wait list and leave it again on every
    // frame. The idle timer is not moved on every frame either: when it fires, it checks
    // when the peer was last heard from and re-arms from there.
    let mut last_heard = Instant::now();
    let idle = sleep(idle_limit);
    let closed = control.closed();
    let shutdown = state.shutdown.cancelled();
    let expiry = sleep_until(far_future());
    let warning = sleep_until(far_future());
    tokio::pin!(idle, closed, shutdown, expiry, warning);
    // The token expiry the two timers are set for (`None`: not set yet).
    let mut armed_for = None;
    loop {
        let expires_at = conn.identity.as_ref().map(|i| i.expires_at);
        if armed_for != Some(expires_at) {
            armed_for = Some(expires_at);
            expiry.as_mut().reset(expires_at.map_or_else(far_future, instant_of));
            let warn_at = expires_at.map(|exp| instant_of(exp - config.expiry_warning_secs as i64));
            warning.as_mut().reset(warn_at.unwrap_or_else(far_future));
        }
        tokio::select! {
            Some(reply) = sends.next(), if !sends.is_empty() => {
                if let Some(reply) = reply {
                    outbox.answer(&reply.into());
                }
            }
            frame = stream.next(), if sends.len() < MAX_PIPELINED_SENDS => match frame {
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    METRICS.frames_received.fetch_add(1, Ordering::Relaxed);
                    match decode_frame(&text) {
                        Frame::Single(Incoming { id, request: Ok(Request::RoomSend(params)) }) => {
                            sends.push_back(Box::pin(submit_send(state, conn, &mut bucket, id, params)).await);
                        }
                        frame => {
                            while let Some(reply) = sends.next().await {
                                if let Some(reply) = reply {
                                    outbox.answer(&reply.into());
                                }
                            }
                            if let Some(reply) = Box::pin(handle_frame(state, conn, &mut bucket, frame)).await {
                                outbox.answer(&reply.into());
                            }
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => return End::Close(close::UNSUPPORTED_DATA),
                Some(Ok(Message::Close(_))) => return End::Close(close::NORMAL),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => last_heard = Instant::now(),
                Some(Err(err)) => return classify(err),
                None => return End::Gone("eof"),
            },
            code = &mut closed => return End::Close(code),
            () = &mut idle => {
                let deadline = last_heard + idle_limit;
                if deadline <= Instant::now() {
                    return End::Gone("idle timeout");
                }
                idle.as_mut().reset(deadline);
            }
            () = &mut warning, if expires_at.is_some() && warned_for != expires_at => {
                warned_for = expires_at;
                if let Some(exp) = expires_at {
                    let event = Notification::SessionExpiring(SessionExpiring { expires_at: Timestamp::from_millis(exp * 1000) });
                    outbox.push(&event.to_frame().into(), Class::Reliable);
                }
            }
            () = &mut expiry, if expires_at.is_some() => return End::Close(close::TOKEN_EXPIRED),
            () = &mut shutdown => {
                // The instance is stopping: sends already submitted are queued for commit;
                // answer them before the close so no client is left guessing about a message
                // that did commit. (New frames are no longer read.)
                let drained = async {
                    while let Some(reply) = sends.next().await {
                        if let Some(reply) = reply {
                            outbox.answer(&reply.into());
                        }
                    }
                };
                if tokio::time::timeout(SHUTDOWN_DRAIN, drained).await.is_err() {
                    tracing::warn!(conn = conn.id, "in-flight sends not answered before shutdown");
                }
                return End::Close(close::GOING_AWAY);
            }
        }
    }
}

/// A tokio instant for a Unix time in seconds.
fn instant_of(unix_secs: i64) -> Instant {
    let now = chrono::Utc::now().timestamp_millis();
    let delta = (unix_secs * 1000 - now).max(0) as u64;
    Instant::now() + Duration::from_millis(delta)
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
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
async fn handle_frame(state: &AppState, conn: &mut Conn, bucket: &mut TokenBucket, frame: Frame) -> Option<String> {
    let (calls, batch) = match frame {
        Frame::Reject(response) => {
            return Some(encode(&match bucket.take() {
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
            call_one(state, conn, bucket, call).await
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
    bucket: &mut TokenBucket,
    id: Option<Option<RequestId>>,
    params: SendParams,
) -> BoxFuture<'static, Option<String>> {
    let submitted = match bucket.take() {
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
async fn call_one(state: &AppState, conn: &mut Conn, bucket: &mut TokenBucket, call: Incoming) -> Option<Response> {
    let wants_response = call.wants_response();
    let id = call.id.flatten();
    let result = match (bucket.take(), call.request) {
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
}
