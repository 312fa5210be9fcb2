//! Chat in a room: sending (with nonces), editing, deleting, reacting and typing, with their
//! permissions and the notifications the room receives.

use std::collections::BTreeMap;
use std::time::Duration;

use confab_shared::Message;
use confab_shared::rpc::notify::{MessageRef, ReactionChange, RoomUser};
use confab_shared::rpc::{DeleteParams, EditParams, ReactParams, SendParams, TypingParams};

use confab_shared::validate::{MAX_DISTINCT_REACTIONS, MAX_REACTIONS};

use crate::helpers::{assert_code, assert_invalid_param, history, join, send, spawn_app, spawn_app_with, unique};

/// A -32009 naming the nonce: the nonce was used before for a different message.
#[track_caller]
fn assert_nonce_reused(err: &confab_shared::rpc::ErrorObject) {
    assert_code(err, -32009);
    assert_eq!(err.data.as_ref().and_then(|d| d.get("field")), Some(&serde_json::json!("nonce")), "{err:?}");
    assert_eq!(err.message, "nonce already used for a different message");
}

fn with_nonce(room: &str, text: &str, nonce: &str) -> SendParams {
    SendParams { room: room.to_owned(), text: text.to_owned(), nonce: Some(nonce.to_owned()) }
}

fn react(id: i64, emoji: &str, on: bool) -> ReactParams {
    ReactParams { id, emoji: emoji.to_owned(), on }
}

fn typing(room: &str) -> TypingParams {
    TypingParams { room: room.to_owned() }
}

#[tokio::test]
async fn sending_needs_a_joined_room() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let room = unique("closed");

    assert_code(&ann.fail(send(&room, "anyone?")).await, -32003);
    ann.ok(join(&room)).await;
    ann.ok(send(&room, "now I may")).await;
    assert_invalid_param(&ann.fail(send(&room, "")).await, "text");
}

#[tokio::test]
async fn a_send_or_typing_to_a_malformed_room_name_names_the_room_instead_of_asking_to_join() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;

    for bad in ["a.b", "", "with space", &"r".repeat(65)] {
        assert_invalid_param(&ann.fail(send(bad, "hello")).await, "room");
        assert_invalid_param(&ann.fail(typing(bad)).await, "room");
    }
    // A well-formed name of a room not joined is still "join the room first".
    assert_code(&ann.fail(send(&unique("elsewhere"), "hello")).await, -32003);
    assert_code(&ann.fail(typing(&unique("elsewhere"))).await, -32003);
}

#[tokio::test]
async fn a_repeated_nonce_returns_the_first_message_instead_of_a_duplicate() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let (_, mut bob) = app.user_online("bob").await;
    let room = unique("dedup");
    ann.ok(join(&room)).await;
    bob.ok(join(&room)).await;

    let first = ann.ok(with_nonce(&room, "hello", "nonce-1")).await;
    let repeat = ann.ok(with_nonce(&room, " hello\n", "nonce-1")).await;
    let after = ann.ok(send(&room, "after")).await;

    assert_eq!(repeat, first);
    assert_eq!(bob.next::<Message>("room.message").await, first);
    assert_eq!(bob.next::<Message>("room.message").await, after, "the repeat was not broadcast");
    assert_eq!(ann.ok(history(&room, None, None)).await, vec![first.clone(), after]);
    // Nonces are per user.
    let bobs = bob.ok(with_nonce(&room, "same nonce, other user", "nonce-1")).await;
    assert_ne!(bobs.id, first.id);
    assert_invalid_param(&ann.fail(with_nonce(&room, "x", &"n".repeat(65))).await, "nonce");
    assert_invalid_param(&ann.fail(with_nonce(&room, "x", "")).await, "nonce");
}

#[tokio::test]
async fn repeated_nonces_sent_concurrently_store_one_message() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let room = unique("race");
    ann.ok(join(&room)).await;

    // Pipelined: the repeats reach the writer together.
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(ann.request(with_nonce(&room, "try", "same")).await);
    }
    let mut answers = Vec::new();
    for id in ids {
        answers.push(ann.outcome::<Message>(id).await.expect("every try is answered with the message"));
    }

    assert!(answers.iter().all(|m| *m == answers[0]), "{answers:?}");
    assert_eq!(ann.ok(history(&room, None, None)).await, vec![answers[0].clone()]);
}

#[tokio::test]
async fn a_nonce_reused_for_a_different_message_is_a_conflict_and_stores_nothing() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let (lobby, second) = (unique("lobby"), unique("second"));
    ann.ok(join(&lobby)).await;
    ann.ok(join(&second)).await;
    let first = ann.ok(with_nonce(&lobby, "hello", "N1")).await;

    // Another room, another text, or both: refused, whether the first is stored already ...
    assert_nonce_reused(&ann.fail(with_nonce(&second, "other", "N1")).await);
    assert_nonce_reused(&ann.fail(with_nonce(&second, "hello", "N1")).await);
    assert_nonce_reused(&ann.fail(with_nonce(&lobby, "other", "N1")).await);
    // ... or in the same batch (pipelined, so the writer gets them together).
    let ids = [
        ann.request(with_nonce(&lobby, "fresh", "N2")).await,
        ann.request(with_nonce(&second, "fresh", "N2")).await,
        ann.request(with_nonce(&lobby, "changed", "N2")).await,
        ann.request(with_nonce(&lobby, "fresh", "N2")).await,
    ];
    let fresh = ann.outcome::<Message>(ids[0]).await.expect("the first use of N2");
    assert_nonce_reused(&ann.outcome::<Message>(ids[1]).await.expect_err("another room"));
    assert_nonce_reused(&ann.outcome::<Message>(ids[2]).await.expect_err("another text"));
    assert_eq!(ann.outcome::<Message>(ids[3]).await.expect("a retry"), fresh);

    assert_eq!(ann.ok(history(&lobby, None, None)).await, vec![first.clone(), fresh]);
    assert_eq!(ann.ok(history(&second, None, None)).await, Vec::<Message>::new(), "nothing was stored in the other room");
    // The retry of the original still gets it.
    assert_eq!(ann.ok(with_nonce(&lobby, "hello", "N1")).await, first);
}

#[tokio::test]
async fn a_retry_of_an_edited_message_still_gets_it() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let room = unique("edited");
    ann.ok(join(&room)).await;
    let first = ann.ok(with_nonce(&room, "helo", "N1")).await;
    let edited = ann.ok(EditParams { id: first.id, text: "hello".into() }).await;

    assert_eq!(ann.ok(with_nonce(&room, "helo", "N1")).await, edited);
    let elsewhere = unique("elsewhere");
    ann.ok(join(&elsewhere)).await;
    assert_nonce_reused(&ann.fail(with_nonce(&elsewhere, "helo", "N1")).await);
}

#[tokio::test]
async fn the_author_edits_a_message_and_the_room_is_told() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let (_, mut bob) = app.user_online("bob").await;
    let room = unique("edits");
    ann.ok(join(&room)).await;
    bob.ok(join(&room)).await;
    let original = ann.ok(send(&room, "helo")).await;

    let edited = ann.ok(EditParams { id: original.id, text: " hello ".into() }).await;

    assert_eq!((edited.id, edited.text.as_str(), edited.sent_at), (original.id, "hello", original.sent_at));
    assert!(edited.edited_at.is_some_and(|t| t >= original.sent_at));
    assert_eq!(bob.next::<Message>("message.edited").await, edited);
    assert_eq!(ann.ok(history(&room, None, None)).await, vec![edited.clone()]);

    assert_code(&bob.fail(EditParams { id: original.id, text: "hijacked".into() }).await, -32003);
    assert_code(&ann.fail(EditParams { id: original.id + 1000, text: "x".into() }).await, -32004);
    assert_invalid_param(&ann.fail(EditParams { id: original.id, text: " ".into() }).await, "text");
    assert_eq!(ann.ok(history(&room, None, None)).await, vec![edited]);
}

#[tokio::test]
async fn the_author_or_an_admin_deletes_a_message_and_it_keeps_its_id() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let (_, mut bob) = app.user_online("bob").await;
    let boss = app.admin(&unique("boss")).await;
    let mut boss_ws = app.ws(&boss.access_token).await;
    let room = unique("deletes");
    ann.ok(join(&room)).await;
    bob.ok(join(&room)).await;
    let first = ann.ok(send(&room, "regrettable")).await;
    let second = ann.ok(send(&room, "also regrettable")).await;
    bob.ok(react(first.id, "+1", true)).await;

    assert_code(&bob.fail(DeleteParams { id: first.id }).await, -32003);
    ann.ok(DeleteParams { id: first.id }).await;

    assert_eq!(bob.next::<MessageRef>("message.deleted").await, MessageRef { id: first.id, room: room.clone() });
    let page = bob.ok(history(&room, None, None)).await;
    assert_eq!(page[0].id, first.id);
    assert_eq!((page[0].text.as_str(), page[0].deleted), ("", true));
    assert!(page[0].reactions.is_empty(), "reactions go with the text");
    ann.ok(DeleteParams { id: first.id }).await;
    bob.assert_no("message.deleted").await;

    // An admin may delete anyone's message, joined or not.
    boss_ws.ok(DeleteParams { id: second.id }).await;
    assert_eq!(ann.next::<MessageRef>("message.deleted").await, MessageRef { id: first.id, room: room.clone() });
    assert_eq!(ann.next::<MessageRef>("message.deleted").await, MessageRef { id: second.id, room: room.clone() });
    assert_code(&ann.fail(DeleteParams { id: second.id + 1000 }).await, -32004);
}

#[tokio::test]
async fn a_deleted_message_can_be_neither_edited_nor_reacted_to() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let room = unique("gone");
    ann.ok(join(&room)).await;
    let message = ann.ok(send(&room, "soon gone")).await;
    ann.ok(DeleteParams { id: message.id }).await;

    assert_code(&ann.fail(EditParams { id: message.id, text: "resurrect".into() }).await, -32009);
    assert_code(&ann.fail(react(message.id, "+1", true)).await, -32009);
}

#[tokio::test]
async fn joined_users_react_and_the_room_sees_the_reactions() {
    let app = spawn_app().await;
    let (ann_tokens, mut ann) = app.user_online("ann").await;
    let (bob_tokens, mut bob) = app.user_online("bob").await;
    let (_, mut carl) = app.user_online("carl").await;
    let (ann_name, bob_name) = (ann_tokens.user.username.clone(), bob_tokens.user.username.clone());
    let room = unique("reacts");
    ann.ok(join(&room)).await;
    bob.ok(join(&room)).await;
    let message = ann.ok(send(&room, "react to me")).await;

    let by_bob = bob.ok(react(message.id, "👍", true)).await;
    assert_eq!(by_bob.reactions, BTreeMap::from([("👍".to_owned(), vec![bob_name.clone()])]));
    let change = ReactionChange { id: message.id, room: room.clone(), emoji: "👍".into(), user: bob_name.clone(), added: true, count: 1 };
    assert_eq!(ann.next::<ReactionChange>("message.reacted").await, change);
    let mut held = message.clone();
    change.apply_to(&mut held);
    assert_eq!(held, by_bob, "the change turns the message a member holds into the new one");

    // Reaction order is kept at millisecond resolution; make sure the two are apart.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let by_ann = ann.ok(react(message.id, "👍", true)).await;
    assert_eq!(by_ann.reactions["👍"], vec![bob_name.clone(), ann_name.clone()], "in reaction order");
    assert_eq!(bob.next::<ReactionChange>("message.reacted").await.user, bob_name);
    assert_eq!(bob.next::<ReactionChange>("message.reacted").await.count, 2);
    let twice = ann.ok(react(message.id, "👍", true)).await;
    assert_eq!(twice.reactions["👍"].len(), 2, "reacting twice is one reaction");
    bob.assert_no("message.reacted").await;
    let party = bob.ok(react(message.id, "🎉", true)).await;
    assert_eq!(party.reactions.len(), 2);

    let removed = bob.ok(react(message.id, "👍", false)).await;
    assert_eq!(removed.reactions["👍"], vec![ann_name.clone()]);
    let empty = bob.ok(react(message.id, "🎉", false)).await;
    assert!(!empty.reactions.contains_key("🎉"), "an emoji nobody uses any more disappears");
    assert_eq!(bob.ok(history(&room, None, None)).await, vec![empty]);

    assert_code(&carl.fail(react(message.id, "👀", true)).await, -32003);
    assert_invalid_param(&bob.fail(react(message.id, "", true)).await, "emoji");
    assert_invalid_param(&bob.fail(react(message.id, "two words", true)).await, "emoji");
    assert_invalid_param(&bob.fail(react(message.id, &"x".repeat(17), true)).await, "emoji");
    assert_code(&bob.fail(react(message.id + 1000, "👍", true)).await, -32004);
}

/// The size of a notification frame as the server sent it (re-serialized with its serializer).
fn frame_bytes(method: &str, params: &serde_json::Value) -> usize {
    serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string().len()
}

#[tokio::test]
async fn a_reaction_flood_is_capped_refuses_invisible_emoji_and_costs_members_the_same_per_reaction() {
    let app = spawn_app_with(|c| { c.rate_per_sec = 10_000; c.write_bytes_per_sec = u32::MAX }).await;
    let (_, mut ann) = app.user_online("ann").await;
    let (bob_tokens, mut bob) = app.user_online("bob").await;
    let (_, mut carl) = app.user_online("carl").await;
    let room = unique("flood");
    for ws in [&mut ann, &mut bob, &mut carl] {
        ws.ok(join(&room)).await;
    }
    let message = ann.ok(send(&room, "react to me")).await;

    // Twenty distinct emoji, then no more; an emoji already there is still welcome.
    let emoji: Vec<String> = (0..MAX_DISTINCT_REACTIONS).map(|i| char::from_u32(0x1F600 + i as u32).expect("an emoji").to_string()).collect();
    let mut sizes = Vec::new();
    for e in &emoji {
        bob.ok(react(message.id, e, true)).await;
        let change = carl.next_notification("message.reacted").await;
        sizes.push(frame_bytes("message.reacted", &change));
        let change: ReactionChange = serde_json::from_value(change).expect("a reaction change");
        assert_eq!((change.emoji.as_str(), change.user.as_str(), change.added, change.count), (e.as_str(), bob_tokens.user.username.as_str(), true, 1));
    }
    let refused = bob.fail(react(message.id, "🦀", true)).await;
    assert_code(&refused, -32009);
    assert_eq!(refused.data.as_ref().and_then(|d| d.get("field")), Some(&serde_json::json!("emoji")), "{refused:?}");
    carl.assert_no("message.reacted").await;
    let joined = carl.ok(react(message.id, &emoji[0], true)).await;
    assert_eq!((joined.reactions.len(), joined.reactions[&emoji[0]].len()), (MAX_DISTINCT_REACTIONS, 2));
    sizes.push(frame_bytes("message.reacted", &carl.next_notification("message.reacted").await));
    // What a member hears of one reaction does not grow with the reactions already there.
    let (least, most) = (sizes.iter().min().copied().unwrap_or(0), sizes.iter().max().copied().unwrap_or(0));
    assert!(most - least <= 8, "per-reaction frames of {least} to {most} bytes");
    assert!(most < 256, "a reaction costs each member {most} bytes");

    // Invisible or control characters are no emoji.
    for bad in ["\u{1}", "👍\u{7f}", "\u{200B}", "\u{202E}👍", "👍\u{200D}", "\u{E000}"] {
        assert_invalid_param(&bob.fail(react(message.id, bad, true)).await, "emoji");
    }

    // At most 1000 reactions in all: fill a second message to one short of that.
    let full = ann.ok(send(&room, "popular")).await;
    app.execute_sql(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
         INSERT INTO reactions (message_id, user_id, emoji, username, created_at) \
         SELECT {}, 1000000 + i, '👍', 'filler' || i, i FROM n",
        MAX_REACTIONS - 1,
        full.id
    ))
    .await;
    bob.ok(react(full.id, "🎉", true)).await;
    let over = carl.fail(react(full.id, "👍", true)).await;
    assert_code(&over, -32009);
    assert_eq!(over.data.as_ref().and_then(|d| d.get("field")), Some(&serde_json::json!("emoji")), "{over:?}");
    bob.ok(react(full.id, "🎉", false)).await;
    let back = carl.ok(react(full.id, "👍", true)).await;
    assert_eq!(back.reactions["👍"].len(), MAX_REACTIONS);
}

#[tokio::test]
async fn typing_reaches_the_others_in_the_room_but_not_the_typists_own_connections() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let mut tab1 = app.ws(&ann.access_token).await;
    let mut tab2 = app.ws(&ann.access_token).await;
    let (_, mut bob) = app.user_online("bob").await;
    let room = unique("typing");
    for ws in [&mut tab1, &mut tab2, &mut bob] {
        ws.ok(join(&room)).await;
    }

    tab1.ok(typing(&room)).await;

    let seen: RoomUser = bob.next("room.typing").await;
    assert_eq!(seen, RoomUser { room: room.clone(), username: ann.user.username.clone() });
    // Sentinel: a message sent after the typing reaches ann's tabs; no typing came before it.
    let said = bob.ok(send(&room, "I see you typing")).await;
    for tab in [&mut tab1, &mut tab2] {
        let (method, params) = tab.next_among(&["room.typing", "room.message"]).await;
        assert_eq!(method, "room.message", "{params}");
        assert_eq!(params["id"], said.id);
    }
}

#[tokio::test]
async fn typing_is_limited_to_once_per_two_seconds_per_room() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let (bob_tokens, mut bob) = app.user_online("bob").await;
    let room = unique("typist");
    let other = unique("elsewhere");
    ann.ok(join(&room)).await;
    ann.ok(join(&other)).await;
    bob.ok(join(&room)).await;
    // Joins are announced on the next presence tick: let them all arrive before the silence checks.
    while ann.next::<RoomUser>("room.user_joined").await.username != bob_tokens.user.username {}

    ann.ok(typing(&room)).await;
    let refused = ann.fail(typing(&room)).await;
    assert_code(&refused, -32029);
    let retry = refused.data.as_ref().and_then(|d| d["retry_after_ms"].as_u64()).expect("data.retry_after_ms");
    assert!((1..=2000).contains(&retry), "retry_after_ms {retry}");
    ann.ok(typing(&other)).await;
    // Over the limit as a notification: silence, and nothing reaches the room.
    ann.clear_backlog();
    ann.notify(typing(&room)).await;
    let _: RoomUser = bob.next("room.typing").await;
    bob.assert_no("room.typing").await;
    ann.assert_silent().await;

    tokio::time::sleep(Duration::from_millis(retry + 50)).await;
    ann.ok(typing(&room)).await;
    let _: RoomUser = bob.next("room.typing").await;
    assert_code(&bob.fail(typing(&unique("not-joined"))).await, -32003);
}

#[tokio::test]
async fn a_room_message_is_already_stored_when_it_arrives() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let mut watcher = app.ws_anonymous().await;
    let room = unique("durable");
    ann.ok(join(&room)).await;
    watcher.ok(join(&room)).await;

    for i in 0..10 {
        // Not waiting for the sender's answer: the notification alone must imply the commit.
        ann.request(send(&room, &format!("m{i}"))).await;
        let arrived: Message = watcher.next("room.message").await;
        let stored: Vec<Message> = crate::helpers::body(app.get(&format!("/api/rooms/{room}/messages?limit=1"), None).await).await;
        assert_eq!(stored.last(), Some(&arrived), "message {i} was broadcast before it was stored");
    }
}

#[tokio::test]
async fn pipelined_sends_are_answered_in_order_and_a_later_call_sees_them_all() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let room = unique("pipeline");
    ann.ok(join(&room)).await;

    // Thirty sends without waiting, then a history call before any answer has arrived.
    let mut calls = Vec::new();
    for i in 0..30 {
        calls.push(ann.request(send(&room, &format!("message {i}"))).await);
    }
    calls.push(ann.request(history(&room, None, Some(100))).await);

    let mut answered = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..calls.len() {
        let frame = ann.next_response().await;
        answered.push(frame["id"].as_i64().expect("a numeric id"));
        if answered.len() < calls.len() {
            sent.push(serde_json::from_value::<Message>(frame["result"].clone()).expect("a send answers with the message"));
        } else {
            let seen: Vec<Message> = serde_json::from_value(frame["result"].clone()).expect("history answers with messages");
            assert_eq!(seen, sent, "the history call sees every send before it");
        }
    }
    assert_eq!(answered, calls, "responses leave in request order");
    assert!(sent.windows(2).all(|w| w[0].id < w[1].id), "ids follow the order of the sends");
    assert!(sent.iter().enumerate().all(|(i, m)| m.text == format!("message {i}")));
}
