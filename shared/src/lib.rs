//! The Confab wire contract as Rust types.
//!
//! Every REST body and every WebSocket frame of `PROTOCOL.md` is a type here, used by
//! the backend to decode and encode, by the Leptos SPA to talk to it, and exported to
//! TypeScript (feature `ts`) and OpenAPI schemas (feature `openapi`) so third-party
//! clients see exactly what the server speaks.
//!
//! # Layout
//! - [`time`]: the RFC 3339 millisecond timestamp every time on the wire uses.
//! - [`validate`]: the name and text rules, shared so the SPA rejects what the server would.
//! - [`mention`]: how `@name`, `@here` and `@room` are read in a room message.
//! - [`json_error`]: serde_json's error messages reworded where they mislead (lone surrogates).
//! - [`rest`]: bodies of the HTTP API, including the problem+json error.
//! - [`webhooks`]: webhook bodies, events, deliveries and the signature headers.
//! - [`push`]: Web Push subscriptions, the server's VAPID key and the pushed message.
//! - [`hooks`]: what a backend hook is asked and answers (`CONFAB_HOOK_URL`).
//! - [`moderation`]: room roles, moderation actions, reports and the audit log.
//! - [`tokens`]: API tokens for programs: scopes, `/api/tokens` bodies, the method → scope table.
//! - [`rpc`]: JSON-RPC 2.0 envelopes, the method table with params and results,
//!   notifications, error codes and close codes.
//! - [`schema`] (feature `openapi`): the wire types' schemas by reference and the method and
//!   notification tables the AsyncAPI document and the protocol reference are built from.
//! - [`bindings`] (feature `ts`): the generated TypeScript package in `shared/bindings/`.
//! - `fuzz` (feature `fuzz`): hostile-frame generators and the contract's model of the answers,
//!   for property tests here and in the backend.

pub mod hooks;
pub mod json_error;
pub mod mention;
pub mod moderation;
pub mod push;
pub mod rest;
pub mod rpc;
pub mod time;
pub mod tokens;
pub mod webhooks;
pub mod validate;
pub mod whole;

#[cfg(feature = "openapi")]
pub mod schema;

#[cfg(any(test, feature = "fuzz"))]
pub mod fuzz;

#[cfg(feature = "ts")]
pub mod bindings;

pub use rest::*;
pub use tokens::{ApiToken, ApiTokenCreated, CreateApiToken, Scope};
pub use time::Timestamp;
