//! The HTTP stream: the socket's frames over plain HTTP, for networks that break WebSockets.
//!
//! `GET /api/stream` is an event stream whose first event is `stream.opened {session}`, then
//! one `data:` line per frame the socket would have carried, and last `stream.closed {code}`
//! before the body ends. Each frame this side sends is a `POST /api/stream/{session}` whose
//! response body holds the answers; at most [`POSTS_AT_ONCE`] wait at once (the server
//! refuses more). The body is read with `fetch` and its reader, since `EventSource` cannot
//! send an `Authorization` header. [`super::socket`] decides when to use it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use confab_shared::rpc::{Notification, ServerMessage, parse_server_frame};
use futures::future::{Either, select};
use gloo_net::http::Request;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, ReadableStreamDefaultReader};

use super::window::Window;

/// The most POSTs one stream has waiting for answers at once: the server refuses more (429).
pub const POSTS_AT_ONCE: usize = 8;

/// The most bytes of one event held while its end has not arrived: a server (or proxy) that
/// sends an endless line ends the stream instead of the tab's memory.
const MAX_EVENT_BYTES: usize = 8 << 20;

/// Why a stream did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// No HTTP answer in time: the network or the server is down.
    Unreachable,
    /// An HTTP answer that is not an event stream, with its status (502 for a stream that did
    /// not start with `stream.opened`).
    Refused(u16),
}

/// Why a POST was not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostError {
    /// The stream ended, or the request never got an answer: the frame's fate is unknown.
    Lost,
    /// An error status, e.g. 413 for a frame over the limit.
    Status(u16),
}

/// One open stream; dropping every handle does not end it, [`Stream::close`] does.
pub struct Stream {
    session: String,
    /// Aborts the GET (the server sees its response dropped and ends the session) and any POST.
    abort: AbortController,
    posts: Rc<Window>,
    ended: Rc<Cell<bool>>,
}

impl Stream {
    /// Ends the stream from this side; its `on_end` still runs (with 1006).
    pub fn close(&self) {
        self.abort.abort();
    }

    /// Sends one frame with `token`; the answer's body, if any, holds the JSON-RPC response(s).
    pub async fn post(self: Rc<Self>, text: String, token: Option<String>) -> Result<Option<String>, PostError> {
        let _turn = self.posts.turn().await;
        if self.ended.get() {
            return Err(PostError::Lost);
        }
        let mut request = Request::post(&format!("/api/stream/{}", self.session))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .abort_signal(Some(&self.abort.signal()));
        if let Some(token) = &token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let response = request.body(text).map_err(|_| PostError::Lost)?.send().await.map_err(|_| PostError::Lost)?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        match status {
            200..=299 => Ok((!body.is_empty()).then_some(body)),
            404 => Err(PostError::Lost),
            _ => Err(PostError::Status(status)),
        }
    }
}

/// Opens a stream with `token`: resolves once `stream.opened` arrived, within `timeout`. Then
/// every later frame goes to `on_frame`, and the end (a `stream.closed` code, or 1006 when the
/// body ended without one) to `on_end`, once.
pub async fn open(
    token: Option<&str>,
    timeout: Duration,
    on_frame: impl Fn(&str) + 'static,
    on_end: impl FnOnce(u16) + 'static,
) -> Result<Rc<Stream>, OpenError> {
    let abort = AbortController::new().map_err(|_| OpenError::Unreachable)?;
    let mut request = Request::get("/api/stream").header("Accept", "text/event-stream").abort_signal(Some(&abort.signal()));
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let opening = async {
        let response = request.send().await.map_err(|_| OpenError::Unreachable)?;
        let event_stream = response.headers().get("content-type").is_some_and(|t| t.starts_with("text/event-stream"));
        let body = response.body().filter(|_| response.ok() && event_stream);
        let Some(body) = body else {
            return Err(OpenError::Refused(if response.ok() { 502 } else { response.status() }));
        };
        let mut events = Events { reader: body.get_reader().unchecked_into(), buffer: Vec::new(), data: Vec::new() };
        let first = events.next().await.ok_or(OpenError::Refused(502))?;
        match parse_server_frame(&first).ok().and_then(|mut m| m.pop()) {
            Some(ServerMessage::Notification(Notification::StreamOpened(opened))) => Ok((events, opened.session)),
            _ => Err(OpenError::Refused(502)),
        }
    };
    let (mut events, session) = match select(Box::pin(opening), Box::pin(gloo_timers::future::sleep(timeout))).await {
        Either::Left((Ok(opened), _)) => opened,
        Either::Left((Err(err), _)) => {
            abort.abort();
            return Err(err);
        }
        Either::Right(_) => {
            abort.abort();
            return Err(OpenError::Unreachable);
        }
    };
    let ended = Rc::new(Cell::new(false));
    let stream = Rc::new(Stream { session, abort, posts: Window::new(POSTS_AT_ONCE), ended: ended.clone() });
    leptos::task::spawn_local(async move {
        let mut code = None;
        while let Some(data) = events.next().await {
            match closed_code(&data) {
                Some(closed) => code = Some(closed),
                None => on_frame(&data),
            }
        }
        ended.set(true);
        on_end(code.unwrap_or(super::socket::ABNORMAL));
    });
    Ok(stream)
}

/// The code of a `stream.closed` event; `None` for any other frame.
fn closed_code(data: &str) -> Option<u16> {
    if !data.contains("\"stream.closed\"") {
        return None;
    }
    match parse_server_frame(data).ok()?.pop()? {
        ServerMessage::Notification(Notification::StreamClosed(closed)) => Some(closed.code),
        _ => None,
    }
}

/// A `text/event-stream` body, read event by event.
struct Events {
    reader: ReadableStreamDefaultReader,
    buffer: Vec<u8>,
    /// The `data:` lines of the event being read.
    data: Vec<String>,
}

impl Events {
    /// The next event's data (its `data:` lines joined by line breaks); `None` at the end of
    /// the body, on a network error, or past [`MAX_EVENT_BYTES`]. Comments (the keep-alives)
    /// and other fields carry nothing Confab uses.
    async fn next(&mut self) -> Option<String> {
        loop {
            while let Some(newline) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=newline).collect();
                let line = String::from_utf8_lossy(&line[..newline]);
                let line = line.strip_suffix('\r').unwrap_or(&line);
                if line.is_empty() {
                    if !self.data.is_empty() {
                        return Some(std::mem::take(&mut self.data).join("\n"));
                    }
                } else if let Some(value) = line.strip_prefix("data:") {
                    self.data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                }
            }
            let chunk = JsFuture::from(self.reader.read()).await.ok()?;
            let done = js_sys::Reflect::get(&chunk, &"done".into()).ok()?.as_bool().unwrap_or(true);
            if done {
                return None;
            }
            let value = js_sys::Reflect::get(&chunk, &"value".into()).ok()?;
            let bytes = value.dyn_into::<js_sys::Uint8Array>().ok()?;
            let held = self.buffer.len() + self.data.iter().map(String::len).sum::<usize>();
            if held + bytes.length() as usize > MAX_EVENT_BYTES {
                let _ = self.reader.cancel();
                return None;
            }
            self.buffer.extend(bytes.to_vec());
        }
    }
}
