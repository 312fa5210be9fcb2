//! The two ways the SPA talks to Confab, both typed by `confab-shared`.
//!
//! - [`rest`]: `fetch` helpers for `/api/...`; failures carry the problem+json `detail`.
//! - [`socket`]: the tab's single connection: typed JSON-RPC calls, notifications,
//!   reconnect with backoff and jitter; its calls keep to the in-flight [`window`]. It is a
//!   WebSocket, or the HTTP [`stream`] where the network breaks WebSockets.

pub mod rest;
pub mod socket;
pub mod stream;
pub mod window;
