//! Confab: a real-time chat and presence server.
//!
//! REST for accounts and listings, a JSON-RPC 2.0 WebSocket for everything live, the wire
//! types from `confab-shared`, SQLite or PostgreSQL underneath, and a channel layer that is
//! in-process for one instance and Redis for many.
//!
//! # Layout
//! - [`cli`], [`config`]: the `confab` command and its settings (flags and env vars).
//! - [`startup`]: builds an [`startup::Application`] (storage, keys, layer, router) and runs it.
//! - [`state`]: the [`state::AppState`] of cheap handles every handler receives.
//! - [`error`]: the one feature-layer error, mapped to problem+json and to JSON-RPC errors.
//! - [`http`]: REST extractors with field-level validation errors; [`compression`] of
//!   REST responses.
//! - [`client_ip`]: the client's address (behind trusted proxies) and its bucket for
//!   per-address limits.
//! - [`auth`]: passwords, tokens, login throttling, extractors, `/api/auth/*`.
//! - [`import`]: `confab user import`, accounts in bulk (and, for load tests, their sessions).
//! - [`storage`]: sea-orm entities, migrations and queries.
//! - [`layer`]: the channel layer trait, the local hub of connections, its implementations.
//! - [`presence`]: connection counting per user and per room.
//! - [`redis_link`]: one Redis server or a Redis Cluster, detected; the shared command connection.
//! - [`ws`]: the socket endpoint and the per-connection session.
//! - [`features`]: users, rooms, chat, private messages, sync, publishing from outside,
//!   background jobs (room exports), system endpoints.
//! - [`openapi`], [`metrics`]: the API document and Prometheus counters.
//! - [`asyncapi`], [`docs`]: the WebSocket API document and the pages under `/api/docs`.
//! - [`spa`]: the web app's files: precompressed, content-hashed, cached.

pub mod asyncapi;
pub mod auth;
pub mod cli;
pub mod client_ip;
pub mod compression;
pub mod config;
pub mod docs;
pub mod error;
pub mod features;
pub mod http;
pub mod import;
pub mod layer;
pub mod metrics;
pub mod openapi;
pub mod presence;
pub mod redis_link;
pub mod spa;
pub mod startup;
pub mod state;
pub mod storage;
pub mod ws;
