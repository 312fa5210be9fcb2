//! WebSocket close codes the server uses, and what a client should do about each.

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// The server is shutting down: reconnect (possibly to another instance).
pub const GOING_AWAY: u16 = 1001;
/// A binary frame arrived; the API is text only.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A malformed frame (protocol error).
pub const PROTOCOL_ERROR: u16 = 1002;
/// A frame larger than the configured limit (default 64 KiB).
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// An internal error ended the session.
pub const INTERNAL_ERROR: u16 = 1011;
/// Slow consumer evicted or server overloaded: reconnect with backoff, then `sync`.
pub const TRY_AGAIN_LATER: u16 = 1013;
/// The access token expired without an `auth.refresh`.
pub const TOKEN_EXPIRED: u16 = 4001;
/// The session was logged out or revoked.
pub const LOGGED_OUT: u16 = 4003;

/// Every code with its reason phrase, for documentation.
pub const ALL: &[(u16, &str)] = &[
    (NORMAL, "normal closure"),
    (GOING_AWAY, "server shutting down; reconnect elsewhere"),
    (PROTOCOL_ERROR, "malformed frame"),
    (UNSUPPORTED_DATA, "binary frames are not accepted"),
    (MESSAGE_TOO_BIG, "frame larger than the limit"),
    (INTERNAL_ERROR, "internal error"),
    (TRY_AGAIN_LATER, "slow consumer evicted or server overloaded; reconnect with backoff"),
    (TOKEN_EXPIRED, "access token expired"),
    (LOGGED_OUT, "session logged out"),
];
