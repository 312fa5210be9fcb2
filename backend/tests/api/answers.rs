//! No answer outgrows the socket: the largest answers the contract allows (messages of 4 000
//! control characters, each with the most reactions a message may hold) stay within
//! `MAX_ANSWER_BYTES`, arrive, and page through everything exactly once; the calls of a batch
//! share one budget; and the connection keeps working afterwards.

use confab_shared::rpc::{DmHistoryParams, EchoParams, JoinParams, MAX_ANSWER_BYTES, Method, SyncResult};
use confab_shared::{DirectMessage, Message};
use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, decode_response, dm, history, join, send, spawn_app_with, sync_rooms, unique};

const MESSAGES: usize = 100;
/// Reactors × emoji = the most reactions a message may hold.
const REACTORS: usize = 50;
const EMOJI: usize = 20;

/// 4 000 characters that each take six bytes in JSON (`\u0001`), after a number that tells
/// the messages apart.
fn heavy_text(i: usize) -> String {
    format!("{i:03}{}", "\u{1}".repeat(confab_shared::validate::MAX_TEXT_CHARS - 3))
}

/// A typed call and the size of its response frame. The test parses the frame and serializes
/// it again with the server's own serializer, which gives back the frame's length exactly.
async fn sized<P: Method>(ws: &mut WsClient, params: P) -> (P::Result, usize) {
    let id = ws.request(params).await;
    let response = ws.response(id).await;
    let bytes = serde_json::to_string(&response).expect("a response serializes").len();
    let result = decode_response(response).unwrap_or_else(|err| panic!("{} failed: {err:?}", P::NAME));
    (result, bytes)
}

/// The heaviest room the contract allows: `MESSAGES` messages of control characters, each with
/// `REACTORS` × `EMOJI` reactions of the longest emoji by users with the longest names
/// (written straight into the database: a hundred thousand reactions over the socket would
/// be slow, and what is tested here is reading them).
async fn heavy_room(app: &TestApp, bob: &mut WsClient, room: &str) -> Vec<i64> {
    bob.ok(join(room)).await;
    let mut ids = Vec::new();
    for i in 0..MESSAGES {
        ids.push(bob.ok(send(room, &heavy_text(i))).await.id);
    }
    let prefix = unique("r");
    for i in 0..REACTORS {
        let name = format!("{prefix}_{i:0>21}");
        assert_eq!(name.len(), 32);
        confab::storage::users::create(&app.state().db, &name, "not a hash", false).await.expect("the account is created");
    }
    let emoji: Vec<String> = (0..EMOJI)
        .map(|e| {
            let last = char::from_u32(0x1F600 + e as u32).expect("an emoji");
            std::iter::repeat_n('😀', confab_shared::validate::MAX_EMOJI_CHARS - 1).chain([last]).collect()
        })
        .collect();
    let emoji_rows = emoji.iter().map(|e| format!("('{e}')")).collect::<Vec<_>>().join(", ");
    app.execute_sql(&format!(
        "WITH e(emoji) AS (VALUES {emoji_rows}) \
         INSERT INTO reactions (message_id, user_id, emoji, username, created_at) \
         SELECT m.id, u.id, e.emoji, u.username, u.id FROM messages m, users u, e \
         WHERE m.room_id = (SELECT id FROM rooms WHERE name = '{room}') AND u.username LIKE '{prefix}%'"
    ))
    .await;
    ids
}

/// Sends `text` as one frame and returns the reply frame, parsed, and its length.
async fn raw(ws: &mut WsClient, text: &str) -> (Value, usize) {
    let reply = ws.call_raw(text).await;
    let bytes = serde_json::to_string(&reply).expect("a reply serializes").len();
    (reply, bytes)
}

#[tokio::test]
async fn the_largest_answers_fit_in_a_mebibyte_arrive_and_page_through_everything_once() {
    let app = spawn_app_with(|c| { c.rate_per_sec = 10_000; c.write_bytes_per_sec = u32::MAX }).await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let (bob_tokens, mut bob) = app.user_online("bob").await;
    let room = unique("heavy");
    let room_ids = heavy_room(&app, &mut bob, &room).await;
    let mut dm_ids = Vec::new();
    for i in 0..MESSAGES {
        dm_ids.push(bob.ok(dm(&ann.user.username, &heavy_text(i))).await.id);
    }
    let mut ws = app.ws(&ann.access_token).await;

    // `sync` from the start: several answers, each within the budget, everything once, in order.
    let (mut messages, mut dms): (Vec<Message>, Vec<DirectMessage>) = (Vec::new(), Vec::new());
    let mut calls = 0;
    loop {
        let after = messages.last().map_or(0, |m| m.id);
        let dm_after = dms.last().map_or(0, |m| m.id);
        let (page, bytes): (SyncResult, usize) = sized(&mut ws, sync_rooms(&[(&room, after)], Some(dm_after))).await;
        calls += 1;
        assert!(bytes <= MAX_ANSWER_BYTES, "sync answered {bytes} bytes");
        assert!(!page.messages.is_empty() || !page.dms.is_empty() || page.complete, "a sync on its own makes progress");
        messages.extend(page.messages);
        dms.extend(page.dms);
        if page.complete {
            break;
        }
        assert!(calls < 100, "sync never completes");
    }
    assert!(calls > 2, "the answers were cut by bytes, not by the 500-item limit ({calls} calls)");
    assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), room_ids, "every room message once, in order");
    assert_eq!(dms.iter().map(|m| m.id).collect::<Vec<_>>(), dm_ids, "every direct message once, in order");
    assert!(messages.iter().all(|m| m.text.chars().count() == 4000 && m.reactions.values().map(Vec::len).sum::<usize>() == REACTORS * EMOJI));

    // `room.history` and `dm.history` with the largest limit page back to an empty page.
    let mut back = Vec::new();
    let mut before = None;
    loop {
        let (page, bytes) = sized(&mut ws, history(&room, before, Some(100))).await;
        assert!(bytes <= MAX_ANSWER_BYTES, "room.history answered {bytes} bytes");
        let Some(first) = page.first() else { break };
        before = Some(first.id);
        back.splice(0..0, page.into_iter().map(|m| m.id));
    }
    assert_eq!(back, room_ids, "room.history pages back through every message once");
    let mut back = Vec::new();
    let mut before = None;
    loop {
        let params = DmHistoryParams { with: bob_tokens.user.username.clone(), before, limit: Some(100) };
        let (page, bytes) = sized(&mut ws, params).await;
        assert!(bytes <= MAX_ANSWER_BYTES, "dm.history answered {bytes} bytes");
        let Some(first) = page.first() else { break };
        before = Some(first.id);
        back.splice(0..0, page.into_iter().map(|m| m.id));
    }
    assert_eq!(back, dm_ids, "dm.history pages back through every direct message once");

    // `room.join` with the most history: the newest that fit, and the word that there is more.
    let (joined, bytes) = sized(&mut ws, JoinParams { room: room.clone(), history: Some(100) }).await;
    assert!(bytes <= MAX_ANSWER_BYTES, "room.join answered {bytes} bytes");
    assert!(!joined.history.is_empty() && joined.history.len() < MESSAGES);
    assert!(joined.history_more);
    let newest = &room_ids[MESSAGES - joined.history.len()..];
    assert_eq!(joined.history.iter().map(|m| m.id).collect::<Vec<_>>(), newest, "the newest messages");

    // A batch of 20 history calls shares one budget: what does not fit is not run, and says so.
    let calls: Vec<Value> = (0..20)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "room.history", "params": {"room": room, "limit": 100}}))
        .collect();
    let (reply, bytes) = raw(&mut ws, &Value::Array(calls).to_string()).await;
    assert!(bytes <= MAX_ANSWER_BYTES, "the batch answered {bytes} bytes");
    let replies = reply.as_array().expect("a batch answer");
    assert_eq!(replies.len(), 20);
    let mut refused = 0;
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply["id"], json!(i));
        match reply.get("result") {
            Some(page) => {
                let ids: Vec<i64> = page.as_array().expect("a page").iter().filter_map(|m| m["id"].as_i64()).collect();
                assert!(!ids.is_empty() && room_ids.ends_with(&ids), "call {i}: a page of the newest messages");
            }
            None => {
                assert_eq!(reply["error"]["code"], -32029, "{reply}");
                assert_eq!(reply["error"]["data"]["retry_after_ms"], 0, "{reply}");
                refused += 1;
            }
        }
    }
    assert!(refused > 0 && refused < 20, "some calls ran, the rest were refused ({refused})");

    // The connection is alive: answers and live messages still arrive.
    assert_eq!(ws.ok(EchoParams { text: "still here".into() }).await.text, "still here");
    let live = bob.ok(send(&room, "after all that")).await;
    assert_eq!(ws.next::<Message>("room.message").await, live);
}
