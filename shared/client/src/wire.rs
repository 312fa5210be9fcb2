//! The two transports a connection runs on, behind one shape: text frames out, frames in,
//! one end with the server's close code.
//!
//! - The WebSocket (`/ws`), the normal way.
//! - The HTTP stream, for networks that break WebSockets (`docs/protocol.md`, "HTTP
//!   streaming"): `GET /api/stream` is an event stream of exactly the socket's frames (first
//!   `stream.opened {session}`, last `stream.closed {code, reason}`), and each frame the client
//!   sends is a `POST /api/stream/{session}` whose response is the answer. A reader task turns
//!   the events into [`Incoming`]s; each POST is a task of its own, at most
//!   [`STREAM_POSTS_AT_ONCE`] at a time, whose answer joins the same queue.
//!
//! The connection task (`connection`) decides which one to open and when to fall back; a
//! [`Wire`] only carries frames.

use std::sync::Arc;
use std::time::Duration;

use confab_shared::Problem;
use confab_shared::rpc::Notification;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message as Frame, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Error;
use crate::auth::Auth;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Which transport a connection uses ([`Client::transport`](crate::Client::transport)), or
/// the one [`Options::transport`](crate::Options::transport) forces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The WebSocket, `/ws`.
    WebSocket,
    /// The HTTP stream, `/api/stream`.
    Stream,
}

/// The most POSTs one stream has waiting for its session at once: the server refuses more (429).
pub const STREAM_POSTS_AT_ONCE: usize = 8;

/// How long `close` waits for the server's close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);

/// Events the reader has handed on and the connection has not read yet: past this the reader
/// stops reading, and the server's byte budget for the stream takes over.
const INCOMING_QUEUE: usize = 256;

/// The longest line of the event stream the reader holds: a server frame is far smaller.
const MAX_LINE_BYTES: usize = 16 << 20;

/// What a wire hands the connection.
pub(crate) enum Incoming {
    /// A frame of the socket or the stream, or a POST's answer.
    Text(String),
    /// A sign of life that carries no frame: a ping, a keep-alive comment.
    Alive,
    /// A POST that did not deliver `frame`: its calls fail, with the HTTP status when there
    /// was one (413 over the frame limit, 429, ...). 404 means the stream ended.
    Undelivered { frame: String, status: Option<u16>, problem: Option<Problem> },
    /// The end, with the server's close code when it sent one.
    Closed(Option<u16>),
}

pub(crate) enum Wire {
    Socket(Box<Ws>),
    Stream(StreamWire),
}

impl Wire {
    pub(crate) fn kind(&self) -> Transport {
        match self {
            Self::Socket(_) => Transport::WebSocket,
            Self::Stream(_) => Transport::Stream,
        }
    }

    /// The next thing the server said. Cancel-safe (it is raced against commands).
    pub(crate) async fn recv(&mut self) -> Incoming {
        match self {
            Self::Socket(ws) => match ws.next().await {
                Some(Ok(Frame::Text(text))) => Incoming::Text(text.as_str().to_owned()),
                Some(Ok(Frame::Close(frame))) => Incoming::Closed(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => Incoming::Alive,
                Some(Err(err)) => {
                    tracing::debug!(%err, "confab socket failed");
                    Incoming::Closed(None)
                }
                None => Incoming::Closed(None),
            },
            Self::Stream(stream) => stream.incoming.recv().await.unwrap_or(Incoming::Closed(None)),
        }
    }

    /// Sends one text frame; `Err` when the wire is gone. On the stream the POST runs in the
    /// background and its answer (or failure) comes back through [`Wire::recv`].
    pub(crate) async fn send(&mut self, text: String) -> Result<(), ()> {
        match self {
            Self::Socket(ws) => ws.send(Frame::Text(text.into())).await.map_err(drop),
            Self::Stream(stream) => stream.post(text),
        }
    }

    /// Ends the connection politely: a close handshake on the socket (bounded); on the
    /// stream, the end of the request, which ends the server's session.
    pub(crate) async fn close(self) {
        match self {
            Self::Socket(mut ws) => {
                let ws: &mut Ws = &mut ws;
                let frame = CloseFrame { code: CloseCode::Normal, reason: Utf8Bytes::from_static("") };
                if ws.close(Some(frame)).await.is_ok() {
                    let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async { while let Some(Ok(_)) = ws.next().await {} }).await;
                }
            }
            Self::Stream(stream) => drop(stream),
        }
    }
}

/// An open HTTP stream. Dropping it ends the request (and so the session on the server).
pub(crate) struct StreamWire {
    http: reqwest::Client,
    /// `POST` here: `…/api/stream/{session}`.
    post_url: String,
    /// Each POST carries the current bearer, so a renewed access token is the one used.
    auth: Arc<Auth>,
    post_timeout: Duration,
    posts: Arc<Semaphore>,
    incoming: mpsc::Receiver<Incoming>,
    /// For the POSTs' answers.
    answers: mpsc::Sender<Incoming>,
    reader: JoinHandle<()>,
}

impl Drop for StreamWire {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl StreamWire {
    /// `GET {base}/api/stream`, then the first event, `stream.opened`. An error status is
    /// [`Error::Http`] (401 for a refused token, as on the upgrade).
    pub(crate) async fn open(http: &reqwest::Client, base: &str, auth: Arc<Auth>, token: Option<String>, timeout: Duration) -> Result<Self, Error> {
        let opening = async {
            let mut request = http.get(format!("{base}/api/stream")).header(reqwest::header::ACCEPT, "text/event-stream");
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await?;
            let status = response.status().as_u16();
            if !response.status().is_success() {
                let body = response.bytes().await.unwrap_or_default();
                return Err(Error::Http { status, problem: serde_json::from_slice(&body).ok() });
            }
            let event_stream = response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/event-stream"));
            if !event_stream {
                return Err(Error::Transport(format!("GET /api/stream answered {status} without an event stream (a proxy in the way?)")));
            }
            let (answers, mut incoming) = mpsc::channel(INCOMING_QUEUE);
            let reader = tokio::spawn(read_events(response, answers.clone()));
            let session = match incoming.recv().await {
                Some(Incoming::Text(first)) => match serde_json::from_str::<Notification>(&first) {
                    Ok(Notification::StreamOpened(opened)) => Some(opened.session),
                    _ => None,
                },
                _ => None,
            };
            let Some(session) = session else {
                reader.abort();
                return Err(Error::Transport("the stream did not open with stream.opened".to_owned()));
            };
            Ok(Self {
                http: http.clone(),
                post_url: format!("{base}/api/stream/{session}"),
                auth: auth.clone(),
                post_timeout: timeout,
                posts: Arc::new(Semaphore::new(STREAM_POSTS_AT_ONCE)),
                incoming,
                answers,
                reader,
            })
        };
        match tokio::time::timeout(timeout, opening).await {
            Ok(opened) => opened,
            Err(_) => Err(Error::Timeout { method: "connect".to_owned(), timeout }),
        }
    }

    fn post(&self, text: String) -> Result<(), ()> {
        if self.reader.is_finished() {
            return Err(());
        }
        let (http, url, auth, timeout, posts, answers) =
            (self.http.clone(), self.post_url.clone(), self.auth.clone(), self.post_timeout, self.posts.clone(), self.answers.clone());
        tokio::spawn(async move {
            // First come, first served: the semaphore is fair.
            let Ok(_permit) = posts.acquire_owned().await else { return };
            let outcome = async {
                let mut request = http.post(&url).timeout(timeout).header(reqwest::header::CONTENT_TYPE, "application/json").body(text.clone());
                if let Some(token) = auth.bearer().await.ok().flatten() {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await.ok()?;
                let status = response.status();
                let body = response.text().await.ok()?;
                Some((status, body))
            }
            .await;
            let incoming = match outcome {
                Some((status, body)) if status.is_success() => {
                    if body.is_empty() {
                        return;
                    }
                    Incoming::Text(body)
                }
                Some((status, body)) => Incoming::Undelivered { frame: text, status: Some(status.as_u16()), problem: serde_json::from_str(&body).ok() },
                None => Incoming::Undelivered { frame: text, status: None, problem: None },
            };
            let _ = answers.send(incoming).await;
        });
        Ok(())
    }
}

/// Reads `text/event-stream` events from the response: each event's `data:` lines (joined by
/// line breaks) are a frame, each comment a sign of life; `stream.closed` gives the close code
/// of the [`Incoming::Closed`] that ends it.
async fn read_events(mut response: reqwest::Response, incoming: mpsc::Sender<Incoming>) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut data: Vec<String> = Vec::new();
    let mut close_code = None;
    'read: loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(err) => {
                tracing::debug!(%err, "confab stream failed");
                break;
            }
        };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            let event = if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                let frame = data.join("\n");
                data.clear();
                if frame.contains("\"stream.closed\"")
                    && let Ok(Notification::StreamClosed(closed)) = serde_json::from_str::<Notification>(&frame)
                {
                    close_code = Some(closed.code);
                    continue;
                }
                Incoming::Text(frame)
            } else if line.starts_with(':') {
                Incoming::Alive
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                continue;
            } else {
                // Other fields (event:, id:, retry:) are not used by Confab.
                continue;
            };
            if incoming.send(event).await.is_err() {
                return;
            }
        }
        if buffer.len() + data.iter().map(String::len).sum::<usize>() > MAX_LINE_BYTES {
            tracing::debug!("confab stream sent an event over {MAX_LINE_BYTES} bytes");
            break 'read;
        }
    }
    let _ = incoming.send(Incoming::Closed(close_code)).await;
}
