//! HTTP streaming: the socket's protocol for networks that break WebSockets (proxies that
//! strip the upgrade or kill the socket right after it).
//!
//! `GET /api/stream` passes exactly what a socket upgrade passes ([`super::admit`]) and
//! answers `text/event-stream`: first `stream.opened {session}`, then every frame the socket
//! would carry, in the same order, each an event of one `data:` line; a comment every
//! [`KEEPALIVE`] when there is nothing to say, so proxies do not time the stream out; at the
//! end `stream.closed {code, reason}` with the socket's close code, and the end of the body.
//! `POST /api/stream/{session}` carries what the client would have sent as one text frame: a
//! request or a batch, whose answer is the POST's response (204 when it held only
//! notifications). Notifications only ever arrive on the stream.
//!
//! Both halves are one [`session`](super::session), the socket's: the POSTs' bodies are its
//! frames (each with the POST to answer), the response body is where its writer writes. So
//! limits, scopes, presence, expiry, logout and eviction are the socket's, unchanged: a
//! stream whose client does not read fills the response body's one-chunk channel, then the
//! connection's queue, and is evicted (1013) at the same byte budget as a socket.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, Utf8Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use confab_shared::rpc::notify::{StreamClosed, StreamOpened};
use confab_shared::rpc::Notification;
use futures_util::{Sink, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::PollSender;

use super::session::{self, Inbound};
use super::streams::{POSTS_IN_LINE, Post};
use super::{Admitted, admit, header_token, origin_allowed};
use crate::error::AppError;
use crate::state::AppState;

/// How often a stream with nothing to say carries a comment line.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

pub fn router() -> Router<AppState> {
    Router::new().route("/api/stream", get(open)).route("/api/stream/{session}", post(call))
}

/// `GET /api/stream`: a session whose frames go out as events of the response.
async fn open(State(state): State<AppState>, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    let Admitted { identity, rooms, handshake, places } = match admit(&state, peer, &headers, header_token(&headers)).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let (registration, posts) = state.streams.open(identity.as_ref().map(|me| me.user_id));
    // One chunk in flight: what the client has not read waits in hyper's buffer, the
    // kernel's, and then the connection's queue, whose byte budget evicts it.
    let (body, chunks) = mpsc::channel::<Bytes>(1);
    let opened = Notification::StreamOpened(StreamOpened { session: registration.id().to_owned() }).to_frame();
    let mut first = Vec::new();
    push_event(&mut first, &opened);
    // The channel is new and empty: this cannot fail.
    let _ = body.try_send(Bytes::from(first));
    // The last event goes apart from the writer's chunks, so that it is sent even when the
    // writer, stuck behind a client that does not read, had to be stopped.
    let (last, last_chunk) = oneshot::channel::<Bytes>();
    let inbound = posts_of(posts, body.clone());
    let link = session::Link {
        sink: EventSink { buffer: Vec::new(), body: PollSender::new(body) },
        inbound,
        keepalive: KEEPALIVE,
        idle_limit: None,
        lingers: false,
        kind: "stream",
    };
    let tracker = state.sessions.clone();
    tokio::spawn(tracker.track_future(async move {
        // The cap slots and the id live exactly as long as the session.
        let _places = places;
        let _registration = registration;
        drop(handshake);
        if let Some(code) = session::run(state, link, identity, rooms, peer).await {
            let reason = super::writer::reason_of(code).to_owned();
            let mut event = Vec::new();
            push_event(&mut event, &Notification::StreamClosed(StreamClosed { code, reason }).to_frame());
            let _ = last.send(Bytes::from(event));
        }
    }));
    let chunks = futures_util::stream::unfold(chunks, |mut chunks| async move { chunks.recv().await.map(|chunk| (Ok::<_, Infallible>(chunk), chunks)) });
    let last = futures_util::stream::once(last_chunk).filter_map(|chunk| std::future::ready(chunk.ok().map(Ok::<_, Infallible>)));
    let mut response = Body::from_stream(chunks.chain(last)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx buffers responses unless told not to.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The frames POSTed to a stream, as its session reads them, and the client's going away
/// (its response body dropped), which ends the session at once rather than at the next write.
fn posts_of(mut posts: mpsc::Receiver<Post>, body: mpsc::Sender<Bytes>) -> impl futures_util::Stream<Item = Inbound> + Unpin {
    let frames = futures_util::stream::poll_fn(move |cx| posts.poll_recv(cx)).map(|post| Inbound::Frame { text: post.text, reply: Some(post.reply) });
    let gone = futures_util::stream::once(async move { body.closed().await }).map(|()| Inbound::Gone("the client went away"));
    futures_util::stream::select(frames, Box::pin(gone))
}

/// `POST /api/stream/{session}`: one frame for the stream's session; its answer is the response.
async fn call(State(state): State<AppState>, Path(session): Path<String>, headers: HeaderMap, body: Body) -> Response {
    match post_frame(&state, &session, &headers, body).await {
        Ok(Some(reply)) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], reply).into_response(),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => err.into_response(),
    }
}

async fn post_frame(state: &AppState, session: &str, headers: &HeaderMap, body: Body) -> Result<Option<String>, AppError> {
    if !origin_allowed(state, headers) {
        return Err(AppError::Forbidden("origin not allowed"));
    }
    let caller = match header_token(headers) {
        None => None,
        Some(token) => Some(crate::auth::authenticate(state, &token).await?.user_id),
    };
    let stream = state.streams.find(session).ok_or(AppError::NotFound("stream session"))?;
    if caller != stream.user_id {
        return Err(match caller {
            None => AppError::Unauthenticated,
            Some(_) => AppError::Forbidden("this stream was opened with another user's credentials"),
        });
    }
    let limit = state.config.max_frame_bytes;
    let too_large = AppError::TooLarge("the body is larger than the frame limit (a socket would close with 1009)");
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large);
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_large)?;
    let text = Utf8Bytes::try_from(bytes).map_err(|_| AppError::BadRequest("the body is not UTF-8 text".to_owned()))?;
    let (reply, answer) = oneshot::channel();
    stream.posts.try_send(Post { text, reply }).map_err(|err| match err {
        mpsc::error::TrySendError::Full(_) => AppError::AtCap {
            detail: format!("too many calls waiting on this stream (at most {POSTS_IN_LINE}); wait for their answers"),
            retry_after_secs: 1,
        },
        mpsc::error::TrySendError::Closed(_) => AppError::NotFound("stream session"),
    })?;
    // The session ended before it answered: the stream is gone (its `stream.closed` says why).
    answer.await.map_err(|_| AppError::NotFound("stream session"))
}

/// The writer's sink on a stream: each text frame is an event, a ping is a comment; a batch
/// of them is one chunk of the response body. (The close is not the writer's: the stream's
/// task sends `stream.closed` once the session has ended.)
struct EventSink {
    /// The batch being built.
    buffer: Vec<u8>,
    body: PollSender<Bytes>,
}

/// The response body is gone: the client went away.
#[derive(Debug)]
struct BodyGone;

impl std::fmt::Display for BodyGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the stream's client went away")
    }
}

/// Appends `text` as an event of `data:` lines. The server's frames are compact JSON, one
/// line each; a line break would end the field, so one is split over lines (SSE joins them
/// with a line break, which JSON reads as whitespace).
fn push_event(buffer: &mut Vec<u8>, text: &str) {
    for line in text.split(['\n', '\r']) {
        buffer.extend_from_slice(b"data: ");
        buffer.extend_from_slice(line.as_bytes());
        buffer.push(b'\n');
    }
    buffer.push(b'\n');
}

impl Sink<Message> for EventSink {
    type Error = BodyGone;

    /// Room for another frame: a batch past the socket's write buffer is sent on first.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.buffer.len() >= super::WRITE_BUFFER_BYTES {
            return self.poll_flush(cx);
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        let buffer = &mut self.get_mut().buffer;
        match item {
            Message::Text(text) => push_event(buffer, &text),
            Message::Ping(_) => buffer.extend_from_slice(b": keep-alive\n\n"),
            Message::Close(_) | Message::Pong(_) | Message::Binary(_) => {}
        }
        Ok(())
    }

    /// Hands the batch to the response body, waiting while the previous one is unread.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        if this.buffer.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(this.body.poll_reserve(cx)).map_err(|_| BodyGone)?;
        let chunk = Bytes::from(std::mem::take(&mut this.buffer));
        this.body.send_item(chunk).map_err(|_| BodyGone)?;
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.as_mut().poll_flush(cx))?;
        self.get_mut().body.close();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_one_data_line_and_a_line_break_inside_one_cannot_end_the_event() {
        let mut buffer = Vec::new();
        push_event(&mut buffer, r#"{"a":1}"#);
        assert_eq!(buffer, b"data: {\"a\":1}\n\n");
        buffer.clear();
        push_event(&mut buffer, "{\"a\":\n1}");
        assert_eq!(buffer, b"data: {\"a\":\ndata: 1}\n\n");
    }
}
