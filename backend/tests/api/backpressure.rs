//! Back-pressure: a connection that cannot keep up with reliable traffic is closed with 1013
//! (never silently skipped), and recovers what it missed with `sync`.

use confab_shared::rpc::EchoParams;
use serde_json::{Value, json};

use crate::helpers::{WsClient, join, spawn_app_with, sync_rooms, unique};

/// Enough to fill the kernel's socket buffers on both ends several times over.
const MAX_BYTES: usize = 64 << 20;
const TEXT_CHARS: usize = 4000;
const BATCH: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_is_evicted_with_1013_and_recovers_everything_with_sync() {
    let app = spawn_app_with(|c| {
        c.outbox_capacity = 64;
        c.rate_per_sec = 100_000;
        c.write_bytes_per_sec = u32::MAX;
    })
    .await;
    let slow_user = app.signup_and_login(&unique("slow")).await;
    let slow_name = slow_user.user.username.clone();
    let room = unique("firehose");
    let request = app.ws_bearer_request(&slow_user.access_token);
    let mut slow = WsClient::connect_small_buffer(app.addr, request).await.expect("the upgrade succeeds");
    slow.ok(join(&room)).await;
    let (_, mut fast) = app.user_online("fast").await;
    fast.ok(join(&room)).await;

    // From now on `slow` reads nothing. `fast` sends large messages until the server reports
    // slow's departure from the room.
    let text = "x".repeat(TEXT_CHARS);
    let mut sent: Vec<i64> = Vec::new();
    let mut evicted = false;
    while !evicted && sent.len() * TEXT_CHARS < MAX_BYTES {
        let calls: Vec<Value> = (0..BATCH)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "room.send", "params": {"room": room, "text": text}}))
            .collect();
        let answer = fast.call_raw(&Value::Array(calls).to_string()).await;
        for item in answer.as_array().expect("a batch answer") {
            sent.push(item["result"]["id"].as_i64().unwrap_or_else(|| panic!("the send failed: {:.200}", item.to_string())));
        }
        while let Some(left) = fast.take_from_backlog("room.user_left") {
            evicted |= left["username"] == slow_name.as_str();
        }
        // The echoes of our own messages are of no interest here.
        fast.clear_backlog();
    }
    assert!(evicted, "a consumer that read nothing for {} MB was not evicted", (sent.len() * TEXT_CHARS) >> 20);

    assert_eq!(slow.expect_close().await, 1013);
    let received: Vec<i64> = slow
        .backlog()
        .iter()
        .filter(|f| f["method"] == "room.message")
        .map(|f| f["params"]["id"].as_i64().expect("an id"))
        .collect();
    assert!(received.len() < sent.len(), "the slow consumer cannot have received everything");
    assert_eq!(received, sent[..received.len()], "what it did receive is a gap-free prefix, in order");

    // Reconnect and catch up.
    let mut back = app.ws(&slow_user.access_token).await;
    let mut synced: Vec<i64> = Vec::new();
    loop {
        let after = synced.last().or(received.last()).copied().unwrap_or(0);
        let page = back.ok(sync_rooms(&[(&room, after)], None)).await;
        synced.extend(page.messages.iter().map(|m| m.id));
        if page.complete {
            break;
        }
    }
    let recovered: Vec<i64> = received.iter().chain(&synced).copied().collect();
    assert_eq!(recovered, sent, "received + synced is everything, once, in order");
    // The sender, which kept reading, was never evicted.
    fast.ok(EchoParams { text: "still here".into() }).await;
}
