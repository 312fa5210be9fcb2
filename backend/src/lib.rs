//! Confab: a real-time chat and presence server.
//!
//! REST for accounts and listings, a JSON-RPC 2.0 WebSocket for everything live, the wire
//! types from `confab-shared`, SQLite or PostgreSQL underneath, and a channel layer that is
//! in-process for one instance and Redis for many.
//!
//! # Layout
//! From the bottom up. Layers 1–6 each use only the ones listed before them; 7–9 are the
//! application on top of them (the handlers, the documents that list the handlers, and
//! startup), which use one another.
//!
//! 1. [`metrics`] (process-wide counters), [`redis_link`] (one Redis server or a Redis
//!    Cluster, detected; the shared command connection), `auth::password` (argon2 on its
//!    own threads), [`client_ip`] (the client's address behind trusted proxies, and its
//!    bucket for per-address limits), [`tls`] (the crypto provider of outgoing HTTPS),
//!    [`signing`] (Standard Webhooks signatures of webhook deliveries and hooks).
//! 2. [`config`] (settings: flags and env vars); [`files`] (the data directory and its files,
//!    owner-only); [`storage`] (sea-orm entities, migrations, queries, the room-message
//!    appender and the webhook delivery queue); [`webpush`] (Web Push encryption and the
//!    server's VAPID key, kept in the data directory).
//! 3. [`error`]: the one feature-layer error, mapped to problem+json and to JSON-RPC errors.
//! 4. [`layer`]: the channel layer trait, the local hub of connections, its in-process and
//!    Redis implementations; [`presence`]: connection counting per user and per room, and
//!    the batched announcements.
//! 5. [`auth`]'s building blocks: access and API tokens, scopes, login throttling.
//! 6. [`state`]: the [`state::AppState`] of cheap handles every handler receives. Every type
//!    it holds lives in a layer below it (or in the feature that runs it, as the message
//!    pipeline and the job runner do) and never imports `AppState`.
//! 7. [`http`] (REST extractors with field-level validation errors, [`compression`] of REST
//!    responses), `auth`'s extractors and `/api/auth/*` routes, [`ws`] (the socket endpoint
//!    and the per-connection session), [`features`] (users, rooms, chat, private messages,
//!    sync, publishing from outside, webhooks, background jobs, system endpoints).
//! 8. [`openapi`], [`asyncapi`], [`docs`] (the API documents and the pages under
//!    `/api/docs`), [`spa`] (the web app's files: precompressed, content-hashed, cached),
//!    [`headers`] (the browser security headers on every response).
//! 9. [`startup`]: builds an [`startup::Application`] (storage, keys, layer, router) and
//!    runs it; [`cli`]: the `confab` command; [`import`]: `confab user import`.
//!
//! The rule: layers 1–5 and every type `AppState` holds never import `features`, `ws`,
//! `state`, `auth`'s routes or extractors, or anything else above them. A test
//! (`layering`) reads every `use crate::…` line and `crate::…` path of those modules and
//! of everything they reach, and names the file and line that breaks it.

pub mod asyncapi;
pub mod auth;
pub mod cli;
#[cfg(test)]
mod committed;
pub mod client_ip;
pub mod compression;
pub mod config;
pub mod docs;
pub mod error;
pub mod features;
pub mod files;
pub mod headers;
pub mod http;
pub mod import;
pub mod layer;
#[cfg(test)]
mod layering;
pub mod metrics;
pub mod openapi;
pub mod presence;
pub mod redis_link;
pub mod signing;
pub mod spa;
pub mod startup;
pub mod state;
pub mod storage;
pub mod tls;
pub mod webpush;
pub mod ws;
