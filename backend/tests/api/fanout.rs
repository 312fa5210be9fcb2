//! Coalesced writes, over real sockets: with a fan-out window, notifications to a busy
//! connection wait for the window, but a response to its own call never does, and nothing
//! is lost or reordered (the policy itself, step by step in virtual time, is tested in
//! `ws::writer`).

use confab_shared::Message;
use confab_shared::rpc::EchoParams;

use crate::helpers::{join, send, spawn_app_with, unique};

/// A window far longer than any test waits (the longest the server accepts): a held
/// notification that only the window released would time the test out.
const FOREVER_MS: u64 = 60_000;

#[tokio::test]
async fn an_answer_is_never_held_and_brings_the_held_notifications_with_it() {
    let app = spawn_app_with(|c| c.fanout_window_ms = FOREVER_MS).await;
    let room = unique("busy");
    let (_, mut ann) = app.user_online("ann").await;
    let (_, mut bob) = app.user_online("bob").await;
    ann.ok(join(&room)).await;
    // Bob's answer to his join was just written: the window is open, so what follows for
    // him is held.
    bob.ok(join(&room)).await;
    // Ann's answer comes after the broadcast, so Bob's copy is queued (and held) by then.
    let sent = ann.ok(send(&room, "one")).await;
    // Bob's call is answered at once, not after the window, and the held message comes first.
    assert_eq!(bob.ok(EchoParams { text: "ping".into() }).await.text, "ping");
    let held: Message = bob.next("room.message").await;
    assert_eq!((held.id, held.text.as_str()), (sent.id, "one"));
    // Ann's own copy of her broadcast went out with her answer.
    let own: Message = ann.next("room.message").await;
    assert_eq!(own.id, sent.id);
}

#[tokio::test]
async fn a_busy_room_under_a_short_window_gets_every_message_in_order() {
    let app = spawn_app_with(|c| c.fanout_window_ms = 30).await;
    let room = unique("stream");
    let (_, mut ann) = app.user_online("ann").await;
    let (_, mut bob) = app.user_online("bob").await;
    ann.ok(join(&room)).await;
    bob.ok(join(&room)).await;
    let mut sent = Vec::new();
    for n in 0..40 {
        sent.push(ann.ok(send(&room, &format!("m{n}"))).await.id);
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let message: Message = bob.next("room.message").await;
        got.push(message.id);
    }
    assert_eq!(got, sent);
}
