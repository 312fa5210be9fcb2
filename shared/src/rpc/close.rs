//! WebSocket close codes the server uses, and what a client should do about each.

/// Declares the codes once: the constants, [`ALL`] (code, reason phrase) and [`DOCS`]
/// (code, name, advice), so the close frames, the TypeScript constants and the protocol
/// reference cannot disagree.
macro_rules! close_codes {
    ($( $(#[doc = $doc:literal])* $name:ident = $code:literal, $reason:literal; )*) => {
        $( $(#[doc = $doc])* pub const $name: u16 = $code; )*

        /// Every code with its reason phrase (sent in the close frame), for documentation.
        pub const ALL: &[(u16, &str)] = &[$(($name, $reason)),*];

        /// Every code with its constant name and what a client should do about it.
        pub const DOCS: &[(u16, &str, &str)] = &[$(($name, stringify!($name), concat!($($doc),*))),*];
    };
}

close_codes! {
    /// Normal closure.
    NORMAL = 1000, "normal closure";
    /// This instance is stopping (deploy, scale-in, SIGTERM); the others keep serving.
    /// Reconnect at once, after a random delay of up to 1 s (so a fleet of clients does not
    /// arrive in the same instant), to any instance; then `sync`. Its answered sends are
    /// committed; a send without an answer may or may not be, and `sync` tells.
    GOING_AWAY = 1001, "instance stopping; reconnect now to any instance";
    /// A malformed frame (protocol error).
    PROTOCOL_ERROR = 1002, "malformed frame";
    /// A binary frame arrived; the API is text only.
    UNSUPPORTED_DATA = 1003, "binary frames are not accepted";
    /// A frame larger than the configured limit (default 64 KiB).
    MESSAGE_TOO_BIG = 1009, "frame larger than the limit";
    /// An internal error ended the session.
    INTERNAL_ERROR = 1011, "internal error";
    /// Slow consumer evicted or server overloaded: reconnect with backoff, then `sync`.
    TRY_AGAIN_LATER = 1013, "slow consumer evicted or server overloaded; reconnect with backoff";
    /// The access token expired without an `auth.refresh`.
    TOKEN_EXPIRED = 4001, "access token expired";
    /// The session was logged out or revoked, the API token the socket was opened with was
    /// revoked, or the account was suspended (then the reason is `account suspended: …`): do
    /// not reconnect with the same credentials.
    LOGGED_OUT = 4003, "session logged out";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_documented_once() {
        assert_eq!(ALL.len(), DOCS.len());
        for ((code, _), (doc_code, name, advice)) in ALL.iter().zip(DOCS) {
            assert_eq!(code, doc_code);
            assert!(!name.is_empty() && !advice.trim().is_empty());
        }
        let mut codes: Vec<u16> = ALL.iter().map(|(c, _)| *c).collect();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
    }
}
