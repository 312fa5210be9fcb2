//! How a delivery travels through Redis: the channel names and the bytes of a payload.
//!
//! Groups are published on `confab:g:<group>`, single-connection sends on the target
//! instance's own `confab:i:<instance>`. A payload is a tag byte and a few header bytes
//! before the frame's text, so a receiving instance fans out the same bytes it got.

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;

use crate::layer::{Class, ConnId, Delivery, Except};

/// The prefix of a group's channel.
pub const GROUP_PREFIX: &str = "confab:g:";
const INSTANCE_PREFIX: &str = "confab:i:";

/// The channel a group's deliveries are published on.
pub fn group_channel(group: &str) -> String {
    format!("{GROUP_PREFIX}{group}")
}

/// The channel of one instance: sends to a single connection of it.
pub fn instance_channel(instance: u32) -> String {
    format!("{INSTANCE_PREFIX}{instance:08x}")
}

/// `[conn u64]` (instance channel only), then one of:
/// `F class except text` · `O seq text` · `X code` · `P [UserPresence…] as JSON` · `K user room`.
pub fn encode(delivery: &Delivery, conn: Option<ConnId>) -> Bytes {
    let text_len = match delivery {
        Delivery::Frame { text, .. } | Delivery::Ordered { text, .. } => text.len(),
        Delivery::Close { .. } => 0,
        Delivery::Evict { room, .. } => room.len() + 8,
        Delivery::Presence(changes) => changes.len() * 40,
    };
    let mut out = Vec::with_capacity(text_len + 20);
    if let Some(conn) = conn {
        out.extend_from_slice(&conn.to_be_bytes());
    }
    match delivery {
        Delivery::Frame { text, class, except } => {
            out.push(b'F');
            out.push(if *class == Class::Reliable { b'R' } else { b'D' });
            match except {
                Except::Nobody => out.push(b'N'),
                Except::User(id) => {
                    out.push(b'U');
                    out.extend_from_slice(&id.to_be_bytes());
                }
                Except::Conn(id) => {
                    out.push(b'C');
                    out.extend_from_slice(&id.to_be_bytes());
                }
            }
            out.extend_from_slice(text.as_bytes());
        }
        Delivery::Ordered { text, seq } => {
            out.push(b'O');
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Delivery::Close { code } => {
            out.push(b'X');
            out.extend_from_slice(&code.to_be_bytes());
        }
        Delivery::Evict { user_id, room } => {
            out.push(b'K');
            out.extend_from_slice(&user_id.to_be_bytes());
            out.extend_from_slice(room.as_bytes());
        }
        Delivery::Presence(changes) => {
            out.push(b'P');
            // Plain data with string keys: serializing cannot fail.
            let _ = serde_json::to_writer(&mut out, &**changes);
        }
    }
    Bytes::from(out)
}

/// The delivery in a payload (and its target connection, `with_conn` for an instance
/// channel's); `None` for anything this build does not understand.
pub fn decode(payload: &[u8], with_conn: bool) -> Option<(Delivery, Option<ConnId>)> {
    let (conn, rest) = if with_conn {
        let (head, rest) = payload.split_first_chunk::<8>()?;
        (Some(u64::from_be_bytes(*head)), rest)
    } else {
        (None, payload)
    };
    let (&tag, rest) = rest.split_first()?;
    let text = |bytes: &[u8]| Utf8Bytes::try_from(Bytes::copy_from_slice(bytes)).ok();
    let delivery = match tag {
        b'F' => {
            let (&class, rest) = rest.split_first()?;
            let class = if class == b'R' { Class::Reliable } else { Class::Droppable };
            let (&except, rest) = rest.split_first()?;
            let (except, rest) = match except {
                b'N' => (Except::Nobody, rest),
                b'U' => {
                    let (id, rest) = rest.split_first_chunk::<8>()?;
                    (Except::User(i64::from_be_bytes(*id)), rest)
                }
                b'C' => {
                    let (id, rest) = rest.split_first_chunk::<8>()?;
                    (Except::Conn(u64::from_be_bytes(*id)), rest)
                }
                _ => return None,
            };
            Delivery::Frame { text: text(rest)?, class, except }
        }
        b'O' => {
            let (seq, rest) = rest.split_first_chunk::<8>()?;
            Delivery::Ordered { text: text(rest)?, seq: i64::from_be_bytes(*seq) }
        }
        b'X' => {
            let (code, _) = rest.split_first_chunk::<2>()?;
            Delivery::Close { code: u16::from_be_bytes(*code) }
        }
        b'K' => {
            let (user_id, rest) = rest.split_first_chunk::<8>()?;
            Delivery::Evict { user_id: i64::from_be_bytes(*user_id), room: std::str::from_utf8(rest).ok()?.into() }
        }
        b'P' => Delivery::Presence(serde_json::from_slice::<Vec<confab_shared::UserPresence>>(rest).ok()?.into()),
        _ => return None,
    };
    Some((delivery, conn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_survive_the_wire_encoding() {
        let cases = [
            Delivery::Frame { text: "hello".into(), class: Class::Droppable, except: Except::User(-7) },
            Delivery::Frame { text: "x".into(), class: Class::Reliable, except: Except::Conn(1 << 40) },
            Delivery::Ordered { text: "{\"m\":1}".into(), seq: 42 },
            Delivery::Close { code: 4003 },
            Delivery::Evict { user_id: 42, room: "lobby".into() },
            Delivery::Presence(vec![confab_shared::UserPresence { username: "ann".into(), online: true }].into()),
        ];
        for case in cases {
            let (back, conn) = decode(&encode(&case, Some(9)), true).unwrap();
            assert_eq!(conn, Some(9));
            assert_eq!(format!("{back:?}"), format!("{case:?}"));
        }
        assert!(decode(b"Zjunk", false).is_none());
        assert!(decode(b"", false).is_none());
    }

    #[test]
    fn channels_are_named_by_group_and_by_instance() {
        assert_eq!(group_channel("room:lobby"), "confab:g:room:lobby");
        assert_eq!(instance_channel(0xab), "confab:i:000000ab");
    }
}
