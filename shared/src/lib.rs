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
//! - [`rest`]: bodies of the HTTP API, including the problem+json error.
//! - [`rpc`]: JSON-RPC 2.0 envelopes, the method table with params and results,
//!   notifications, error codes and close codes.

pub mod rest;
pub mod rpc;
pub mod time;
pub mod validate;

#[cfg(feature = "ts")]
pub mod bindings;

pub use rest::*;
pub use time::Timestamp;
