//! The WebSocket API: JSON-RPC 2.0 over text frames, subprotocol `confab.v1`.
//!
//! # Layout
//! - [`methods`]: the request table (method name, params type, result type), generated once
//!   by a macro so the server's decoder, the SPA's typed `call` and the TypeScript method map
//!   cannot disagree.
//! - [`notify`]: server-pushed notifications.
//! - [`envelope`]: request/response/error envelopes and frame decoding with exact error codes.
//! - [`close`]: WebSocket close codes.
//! - [`reconnect`]: when to reconnect (backoff with full jitter, spread after a restart).

pub mod close;
pub mod envelope;
pub mod methods;
pub mod notify;
pub mod reconnect;

pub use envelope::{ErrorCode, ErrorObject, Frame, Incoming, RequestId, Response, ServerMessage, decode_frame, parse_server_frame};
pub use methods::*;
pub use notify::Notification;

/// Bytes a value takes as JSON, in serde_json's compact form (what the socket sends), counted
/// without building the text.
pub fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Wire types serialize without failing; if one ever did, it must not look small.
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// The one subprotocol the server speaks; it is always the one selected.
pub const SUBPROTOCOL: &str = "confab.v1";
/// Browser clients put `bearer.<access token>` in their subprotocol list.
pub const BEARER_PROTOCOL_PREFIX: &str = "bearer.";
/// The most calls one batch array may hold.
pub const MAX_BATCH: usize = 20;
/// The most bytes one reply frame (a response, or a batch's array of them) may take: paging
/// answers stop short of it and say so, and a call whose answer could pass it is not run.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;
/// Calls a client keeps in flight on one socket unless told otherwise (the web app and both
/// client libraries): a call beyond it waits for an earlier answer. The server applies its
/// own back-pressure whatever a client does; the window keeps a program that fires
/// thousands of calls at once from holding them all, and from queueing them in the socket.
pub const MAX_CALLS_IN_FLIGHT: usize = 64;
/// The most rooms one `sync` call may name: above what a client can fit in one frame with
/// real room names (64 KiB), so no client that names every joined room in one call breaks;
/// what it bounds is the work a call of short made-up names could ask for.
pub const MAX_SYNC_ROOMS: usize = 5000;
