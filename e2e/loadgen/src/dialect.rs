//! The three wire dialects the benchmark speaks: Confab's JSON-RPC, the Django Channels
//! consumer's JSON, and Socket.IO (Engine.IO v4). All carry the same logical messages:
//! join a room; send `{room, text}` and get an acknowledgement; receive `{room, text}`.
//!
//! The send time travels inside the text as `lg:<nanoseconds>:`. A receiver finds it with a
//! byte search and classifies frames by their first bytes: no JSON parsing per message.

use std::io::Write as _;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::{Deserialize, Serialize};

/// The marker before the send time in every message text.
const MARKER: &[u8] = b"lg:";
/// The rest of the text, so messages look like chat (and match across servers).
pub const TEXT_TAIL: &str = ":hello from the confab load generator";

static MARKER_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(MARKER));

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Confab: JSON-RPC 2.0 over `/ws`, bearer token, subprotocol `confab.v1`.
    Confab,
    /// The Django Channels peer: JSON `{type, …}` over `/ws/chat/`.
    Django,
    /// The Socket.IO peer: Engine.IO v4 over `/socket.io/`.
    Socketio,
}

/// What a received text frame means to the load generator.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A room message carrying its send time.
    Message { sent_ns: u64 },
    /// The answer to our request `id`.
    Ack { id: u64, ok: bool },
    /// A frame to answer with this text (Engine.IO ping → pong).
    Reply(&'static [u8]),
    /// The Socket.IO namespace is open.
    Opened,
    /// Anything else (presence, joins of others, …): ignored.
    Other,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Self::Confab => "confab",
            Self::Django => "django",
            Self::Socketio => "socketio",
        }
    }

    /// The upgrade request's path.
    pub fn path(self) -> &'static str {
        match self {
            Self::Confab => "/ws",
            Self::Django => "/ws/chat/",
            Self::Socketio => "/socket.io/?EIO=4&transport=websocket",
        }
    }

    /// Extra request headers (each ending in CRLF).
    pub fn headers(self, token: Option<&str>) -> String {
        match (self, token) {
            (Self::Confab, Some(token)) => format!("Sec-WebSocket-Protocol: confab.v1\r\nAuthorization: Bearer {token}\r\n"),
            (Self::Confab, None) => "Sec-WebSocket-Protocol: confab.v1\r\n".to_owned(),
            _ => String::new(),
        }
    }

    /// The first frame after the upgrade, if the dialect needs one (Socket.IO: open the
    /// default namespace; the server answers `40{…}`, seen as [`Incoming::Opened`]).
    pub fn open_frame(self) -> Option<&'static [u8]> {
        match self {
            Self::Socketio => Some(b"40"),
            _ => None,
        }
    }

    /// Joins `room`; the acknowledgement carries `id`.
    pub fn join(self, out: &mut Vec<u8>, room: &str, id: u64) {
        // Writes into a Vec cannot fail.
        let _ = match self {
            Self::Confab => write!(out, r#"{{"jsonrpc":"2.0","id":{id},"method":"room.join","params":{{"room":"{room}","history":0}}}}"#),
            Self::Django => write!(out, r#"{{"type":"join","id":{id},"room":"{room}"}}"#),
            Self::Socketio => write!(out, r#"42{id}["join","{room}"]"#),
        };
    }

    /// Sends a message stamped with `sent_ns` to `room`; the acknowledgement carries `id`.
    pub fn send(self, out: &mut Vec<u8>, room: &str, id: u64, sent_ns: u64) {
        let _ = match self {
            Self::Confab => write!(
                out,
                r#"{{"jsonrpc":"2.0","id":{id},"method":"room.send","params":{{"room":"{room}","text":"lg:{sent_ns}{TEXT_TAIL}"}}}}"#
            ),
            Self::Django => write!(out, r#"{{"type":"send","id":{id},"room":"{room}","text":"lg:{sent_ns}{TEXT_TAIL}"}}"#),
            Self::Socketio => write!(out, r#"42{id}["send",{{"room":"{room}","text":"lg:{sent_ns}{TEXT_TAIL}"}}]"#),
        };
    }

    /// Classifies a text frame by its first bytes.
    pub fn classify(self, frame: &[u8]) -> Incoming {
        match self {
            Self::Confab => classify_confab(frame),
            Self::Django => classify_django(frame),
            Self::Socketio => classify_socketio(frame),
        }
    }
}

fn classify_confab(frame: &[u8]) -> Incoming {
    const NOTIFICATION: &[u8] = br#"{"jsonrpc":"2.0","method":""#;
    const RESPONSE: &[u8] = br#"{"jsonrpc":"2.0","id":"#;
    if let Some(rest) = frame.strip_prefix(NOTIFICATION) {
        if rest.starts_with(br#"room.message""#) {
            return sent_time(frame).map_or(Incoming::Other, |sent_ns| Incoming::Message { sent_ns });
        }
        return Incoming::Other;
    }
    if let Some(rest) = frame.strip_prefix(RESPONSE) {
        let (id, after) = leading_number(rest);
        return match id {
            Some(id) => Incoming::Ack { id, ok: after.starts_with(br#","result""#) },
            // `"id":null`: an error we cannot attribute.
            None => Incoming::Other,
        };
    }
    Incoming::Other
}

fn classify_django(frame: &[u8]) -> Incoming {
    // Python's json.dumps: `{"type": "message", …}` and `{"type": "ack", "id": 7}`.
    if frame.starts_with(br#"{"type": "message""#) {
        return sent_time(frame).map_or(Incoming::Other, |sent_ns| Incoming::Message { sent_ns });
    }
    if let Some(rest) = frame.strip_prefix(br#"{"type": "ack", "id": "#)
        && let (Some(id), _) = leading_number(rest)
    {
        return Incoming::Ack { id, ok: true };
    }
    Incoming::Other
}

fn classify_socketio(frame: &[u8]) -> Incoming {
    match frame {
        b"2" => Incoming::Reply(b"3"),
        [b'4', b'2', b'[', ..] if frame[3..].starts_with(br#""message","#) => {
            sent_time(frame).map_or(Incoming::Other, |sent_ns| Incoming::Message { sent_ns })
        }
        [b'4', b'3', rest @ ..] => match leading_number(rest) {
            (Some(id), _) => Incoming::Ack { id, ok: true },
            (None, _) => Incoming::Other,
        },
        [b'4', b'0', ..] => Incoming::Opened,
        _ => Incoming::Other,
    }
}

/// The number after the first `lg:` marker.
fn sent_time(frame: &[u8]) -> Option<u64> {
    let at = MARKER_FINDER.find(frame)?;
    leading_number(&frame[at + MARKER.len()..]).0
}

/// Parses leading ASCII digits; returns the number and what follows.
fn leading_number(bytes: &[u8]) -> (Option<u64>, &[u8]) {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return (None, bytes);
    }
    let n = bytes[..digits].iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    (Some(n), &bytes[digits..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confab_frames_are_told_apart() {
        let msg = br#"{"jsonrpc":"2.0","method":"room.message","params":{"id":5,"room":"r","author":"u","text":"lg:12345:hi"}}"#;
        assert_eq!(classify_confab(msg), Incoming::Message { sent_ns: 12345 });
        let ok = br#"{"jsonrpc":"2.0","id":42,"result":{"text":"lg:1:x"}}"#;
        assert_eq!(classify_confab(ok), Incoming::Ack { id: 42, ok: true });
        let err = br#"{"jsonrpc":"2.0","id":43,"error":{"code":-32029}}"#;
        assert_eq!(classify_confab(err), Incoming::Ack { id: 43, ok: false });
        let presence = br#"{"jsonrpc":"2.0","method":"presence.changed","params":{}}"#;
        assert_eq!(classify_confab(presence), Incoming::Other);
    }

    #[test]
    fn django_frames_are_told_apart() {
        assert_eq!(classify_django(br#"{"type": "message", "room": "r", "text": "lg:99:x"}"#), Incoming::Message { sent_ns: 99 });
        assert_eq!(classify_django(br#"{"type": "ack", "id": 7}"#), Incoming::Ack { id: 7, ok: true });
    }

    #[test]
    fn socketio_frames_are_told_apart() {
        assert_eq!(classify_socketio(b"2"), Incoming::Reply(b"3"));
        assert_eq!(classify_socketio(br#"42["message",{"room":"r","text":"lg:7:x"}]"#), Incoming::Message { sent_ns: 7 });
        assert_eq!(classify_socketio(b"4312[]"), Incoming::Ack { id: 12, ok: true });
        assert_eq!(classify_socketio(br#"40{"sid":"x"}"#), Incoming::Opened);
    }

    #[test]
    fn what_we_send_is_what_we_parse() {
        for dialect in [Dialect::Confab, Dialect::Django, Dialect::Socketio] {
            let mut out = Vec::new();
            dialect.send(&mut out, "room-1", 3, 777);
            assert_eq!(sent_time(&out), Some(777), "{dialect:?}");
        }
    }
}
