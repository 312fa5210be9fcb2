//! The live endpoints: the WebSocket, and the HTTP stream for networks that break it;
//! authentication before either exists, then one session per connection, whichever the
//! transport.
//!
//! # Layout
//! - this file: `GET /ws`, and what both transports pass before a session exists
//!   ([`admit`]): Origin allow-list, open connections per client address, a bounded number
//!   of handshakes in progress, the token (from the header, or for the socket the `bearer.`
//!   subprotocol), open connections per user, the `connect` hook.
//! - [`stream`]: `GET /api/stream` and `POST /api/stream/{session}`, the same protocol over
//!   an event stream and POSTs; [`streams`]: the open streams' sessions by id.
//! - [`caps`]: the open-connection counts per address and per user, and their slots.
//! - [`session`]: a connection's life, over either transport: reader loop, timers, close codes.
//! - [`writer`]: the writer task: batched writes, fan-out coalesced within a window.
//! - [`dispatch`]: method → feature.
//! - [`conn`]: the per-connection state; [`limits`]: the call rate limiter.
//! - [`budget`]: the byte budget of a reply frame, shared by the calls of a batch.

pub mod budget;
pub mod caps;
pub mod conn;
pub mod dispatch;
pub mod limits;
pub mod session;
pub mod stream;
pub mod streams;
pub mod writer;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use confab_shared::hooks::{ConnectHookParams, HookName, HookRequest};
use confab_shared::rpc::{BEARER_PROTOCOL_PREFIX, SUBPROTOCOL};

pub use conn::Conn;

use crate::auth::Identity;
use crate::client_ip::IpBucket;
use crate::error::AppError;
use crate::features::hooks;
use crate::metrics::METRICS;
use crate::state::AppState;

/// tungstenite's default read buffer is 128 KiB per connection, allocated up front; frames
/// are small, so 512 bytes keeps idle connections cheap while large frames still read fine
/// (tungstenite reserves room for a frame once it has read its header).
const READ_BUFFER_BYTES: usize = 512;
/// Flushes happen once per batch anyway; this bounds the buffer a batch may build.
const WRITE_BUFFER_BYTES: usize = 32 * 1024;
/// tungstenite refuses a frame that would take its write buffer past this, and a writer
/// that fails ends the session: so, by construction, room for the largest frame the server
/// ever writes (an answer of `MAX_ANSWER_BYTES`; every notification is smaller) on top of a
/// full buffer, and a frame header.
const MAX_WRITE_BUFFER_BYTES: usize = WRITE_BUFFER_BYTES + confab_shared::rpc::MAX_ANSWER_BYTES + 64;
const _: () = assert!(confab_shared::Message::MAX_JSON_BYTES < confab_shared::rpc::MAX_ANSWER_BYTES);

/// How long a handshake waits for a slot before it gets 503 with `Retry-After`.
const UPGRADE_WAIT: Duration = Duration::from_secs(1);
/// What a client at a socket cap is told to wait: a place frees only when one of its own
/// sockets closes, so hammering sooner gains nothing.
const AT_CAP_RETRY_AFTER_SECS: u64 = 10;

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade)).merge(stream::router())
}

/// A connection that passed every check: who it is, the rooms the `connect` hook joins it
/// to, and its places under the caps (held for as long as its session runs).
pub struct Admitted {
    pub identity: Option<Identity>,
    pub rooms: Vec<String>,
    /// The handshake slot: let go once the connection exists.
    pub handshake: tokio::sync::OwnedSemaphorePermit,
    pub places: Places,
}

/// A connection's places under the per-address and per-user caps; dropping them frees both.
pub struct Places {
    _address: Option<caps::Slot<IpBucket>>,
    _user: Option<caps::Slot<i64>>,
}

/// What a socket upgrade and a stream's opening both pass, in this order, before their
/// session exists; `token` is the bearer token the request carries, if any.
pub async fn admit(state: &AppState, peer: SocketAddr, headers: &HeaderMap, token: Option<String>) -> Result<Admitted, Response> {
    if !origin_allowed(state, headers) {
        return Err(AppError::Forbidden("origin not allowed").into_response());
    }
    // The address's cap first: a flood from one address costs a map lookup per attempt,
    // never a handshake slot or a token check.
    let address = IpBucket::of(state.client_ip.client_ip(peer.ip(), headers));
    let Ok(address_slot) = state.sockets.admit_address(address) else {
        return Err(at_cap(format!("too many open sockets and streams from this address (at most {})", state.config.max_sockets_per_ip)));
    };
    // Bounded accept work: a reconnect storm waits in a short line (FIFO) for a handshake
    // slot, and what cannot get one soon is told to come back rather than piling up.
    let handshake = match tokio::time::timeout(UPGRADE_WAIT, state.upgrades.clone().acquire_owned()).await {
        Ok(Ok(slot)) => slot,
        Ok(Err(_)) | Err(_) => return Err(AppError::Busy { retry_after_secs: 1 }.into_response()),
    };
    let identity = match token {
        None => None,
        Some(token) => match crate::auth::authenticate(state, &token).await {
            Ok(identity) => Some(identity),
            Err(err) => return Err(err.into_response()),
        },
    };
    let user_slot = match &identity {
        None => None,
        Some(me) => match state.sockets.admit_user(me.user_id) {
            Ok(slot) => slot,
            Err(_) => {
                return Err(at_cap(format!("too many open sockets and streams for this user (at most {})", state.config.max_sockets_per_user)));
            }
        },
    };
    // The application's say, last: only a connection that passed every check of ours costs
    // the backend a request (and the handshake slot bounds how many wait on it at once).
    let mut rooms = Vec::new();
    if state.hooks.is_on(HookName::Connect) {
        let claimed = identity.as_ref().and_then(|me| me.external.as_ref()).map(|e| e.rooms.clone()).unwrap_or_default();
        let request = HookRequest::Connect { user: identity.as_ref().map(hooks::user), params: ConnectHookParams { rooms: claimed } };
        match state.hooks.allowed(&request).await {
            Ok(allowed) => rooms = allowed.rooms,
            Err(denied) => return Err(denied.into_response()),
        }
    }
    Ok(Admitted { identity, rooms, handshake, places: Places { _address: address_slot, _user: user_slot } })
}

async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let token = header_token(&headers).or_else(|| protocol_token(&ws));
    let Admitted { identity, rooms, handshake, places } = match admit(&state, peer, &headers, token).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let max = state.config.max_frame_bytes;
    ws.protocols([SUBPROTOCOL])
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .on_failed_upgrade(|err| tracing::debug!(%err, "websocket upgrade failed"))
        .on_upgrade(move |socket| {
            drop(handshake);
            let tracker = state.sessions.clone();
            // The cap slots live exactly as long as the session's future: freed however it
            // ends (and, should the upgrade fail, with this closure).
            tracker.track_future(async move {
                let _places = places;
                let (sink, stream) = socket.split();
                let link = session::Link {
                    sink,
                    inbound: stream.map(session::from_socket),
                    keepalive: Duration::from_secs(state.config.ping_secs.max(1)),
                    idle_limit: Some(Duration::from_secs(state.config.ping_secs.max(1) * 3)),
                    lingers: true,
                    kind: "socket",
                };
                session::run(state, link, identity, rooms, peer).await;
            })
        })
}

/// 429 with `Retry-After`: one more socket would pass a cap.
fn at_cap(detail: String) -> Response {
    METRICS.sockets_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(%detail, "socket refused at its cap");
    AppError::AtCap { detail, retry_after_secs: AT_CAP_RETRY_AFTER_SECS }.into_response()
}

/// The `Authorization: Bearer` token of a request.
pub fn header_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

fn protocol_token(ws: &WebSocketUpgrade) -> Option<String> {
    ws.requested_protocols()
        .filter_map(|p| p.to_str().ok())
        .flat_map(|list| list.split(','))
        .find_map(|p| p.trim().strip_prefix(BEARER_PROTOCOL_PREFIX).map(str::to_owned))
}

/// Browsers send `Origin`; programs usually do not and pass. A browser origin must be the
/// server's own (same host as the request) or in `CONFAB_ALLOWED_ORIGINS`.
fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let allowed = &state.config.allowed_origins;
    if allowed.iter().any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}
