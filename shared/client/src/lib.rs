//! A Confab client: connect with an API token or a login, make typed JSON-RPC calls, receive
//! typed notifications, and survive network failures and server restarts without missing or
//! doubling a message.
//!
//! ```no_run
//! // The bot of the README's third-party section.
//! use confab_client::{Options, shared::rpc::{JoinParams, Notification, SendParams}};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), confab_client::Error> {
//!     let token = std::env::var("CONFAB_TOKEN").unwrap_or_default();
//!     let (client, mut events) = Options::new("http://127.0.0.1:8000").token(token).connect().await?;
//!     client.call(JoinParams { room: "lobby".into(), history: Some(0) }).await?;
//!     while let Some(notification) = events.notification().await {
//!         if let Notification::RoomMessage(m) = notification && m.text == "!ping" {
//!             client.call(SendParams { room: m.room, text: "pong".into(), nonce: None }).await?;
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Calls are typed by the shared crate's [`Method`](confab_shared::rpc::Method) trait: the
//! params struct names the method and its result type. Notifications are the shared
//! [`Notification`](confab_shared::rpc::Notification) enum. After a reconnect the client
//! re-joins its rooms and calls `sync` until complete, so room and direct messages reach the
//! events exactly once, in id order per room (the delivery rules of `docs/protocol.md`).
//!
//! The connection opens the WebSocket, and falls back to the HTTP stream (`GET /api/stream`
//! and a POST per call) when a proxy refuses the upgrade or kills the socket right after it
//! twice in a row; [`Client::transport`] says which one is in use.
//!
//! Calls from any number of tasks pipeline on the one socket, at most
//! [`Options::max_in_flight`] at once (default 64): a call beyond that waits for a place,
//! first come first served, within its call timeout. What the client holds for unanswered
//! calls stays bounded, and the server, which stops reading a connection's requests while
//! its answers pile up, gets a steady pipeline rather than thousands of requests at once.
//!
//! # Layout
//! - [`options`]: what to connect to, with which credentials and reconnection policy.
//! - [`client`]: the [`Client`] handle (calls, state, close) and the [`Events`] stream.
//! - `connection`: the task that owns the connection: dispatch, reconnect, catch up, renew,
//!   and the choice of transport (the WebSocket, or the HTTP stream when a network breaks it).
//! - `wire`: the two transports behind one shape: the WebSocket and the HTTP stream.
//! - `cursors`: what was delivered, for exactly-once catch-up.
//! - [`backoff`]: full-jitter reconnection delays.
//! - `auth`: a fixed token or a self-renewing login.
//! - [`rest`]: the REST endpoints a client needs.
//! - [`error`]: the crate's one error type.

pub mod backoff;
pub mod client;
pub mod error;
pub mod options;
pub mod rest;

mod auth;
mod connection;
mod cursors;
mod wire;

pub use backoff::Backoff;
pub use client::{Client, Event, Events, Resync, State};
pub use connection::SHORT_LIVED;
pub use error::Error;
pub use options::Options;
pub use rest::Rest;
pub use wire::{STREAM_POSTS_AT_ONCE, Transport};

/// The wire types (`confab-shared`), re-exported so that callers name the same ones.
pub use confab_shared as shared;
