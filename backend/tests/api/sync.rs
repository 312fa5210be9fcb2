//! Catching up: `sync` after a reconnect (also under live traffic and across a server
//! restart) returns exactly what was missed, none twice, at most 500 items per call, of the
//! rooms the caller may read, in a number of queries that does not grow with the rooms named.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use confab_shared::rpc::{EchoParams, MAX_SYNC_ROOMS, SendParams, SyncParams, SyncResult};
use confab_shared::{CreateRoom, DirectMessage, Message};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_invalid_param, dm, join, send, spawn_app, spawn_app_with, sync_rooms, unique, within};

fn ids(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.id).collect()
}

#[tokio::test]
async fn sync_after_a_reconnect_returns_exactly_the_missed_messages_and_dms() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let (_, mut bob) = app.user_online("bob").await;
    let (main, side) = (unique("main"), unique("side"));
    let mut ann_ws = app.ws(&ann.access_token).await;
    for ws in [&mut ann_ws, &mut bob] {
        ws.ok(join(&main)).await;
        ws.ok(join(&side)).await;
    }
    let seen_main = bob.ok(send(&main, "before 1")).await;
    let seen_side = bob.ok(send(&side, "before 2")).await;
    let seen_dm = bob.ok(dm(&ann.user.username, "before 3")).await;
    assert_eq!(ann_ws.next::<Message>("room.message").await, seen_main);
    assert_eq!(ann_ws.next::<Message>("room.message").await, seen_side);
    assert_eq!(ann_ws.next::<DirectMessage>("dm.message").await, seen_dm);
    ann_ws.close().await;
    ann_ws.expect_close().await;

    let mut missed_main = Vec::new();
    let mut missed_side = Vec::new();
    let mut missed_dms = Vec::new();
    for i in 0..5 {
        missed_main.push(bob.ok(send(&main, &format!("main {i}"))).await);
        missed_side.push(bob.ok(send(&side, &format!("side {i}"))).await);
        missed_dms.push(bob.ok(dm(&ann.user.username, &format!("dm {i}"))).await);
    }

    let mut back = app.ws(&ann.access_token).await;
    let caught_up = back.ok(sync_rooms(&[(&main, seen_main.id), (&side, seen_side.id)], Some(seen_dm.id))).await;

    let mut expected: Vec<Message> = missed_main.iter().chain(&missed_side).cloned().collect();
    expected.sort_by_key(|m| m.id);
    let mut got = caught_up.messages.clone();
    got.sort_by_key(|m| m.id);
    assert_eq!(got, expected, "exactly the missed room messages");
    assert_eq!(caught_up.dms, missed_dms, "exactly the missed DMs, oldest first");
    assert!(caught_up.complete);
    for room in [&main, &side] {
        let in_room: Vec<i64> = caught_up.messages.iter().filter(|m| &m.room == room).map(|m| m.id).collect();
        assert!(in_room.windows(2).all(|w| w[0] < w[1]), "oldest first within {room}: {in_room:?}");
    }

    let last_main = missed_main.last().map(|m| m.id).unwrap_or_default();
    let last_side = missed_side.last().map(|m| m.id).unwrap_or_default();
    let last_dm = missed_dms.last().map(|m| m.id);
    let nothing_new = back.ok(sync_rooms(&[(&main, last_main), (&side, last_side)], last_dm)).await;
    assert_eq!(nothing_new, SyncResult { messages: vec![], dms: vec![], complete: true });
}

#[tokio::test]
async fn sync_returns_at_most_500_items_and_says_when_to_call_again() {
    let app = spawn_app_with(|c| { c.rate_per_sec = 10_000; c.write_bytes_per_sec = u32::MAX }).await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let (_, mut bob) = app.user_online("bob").await;
    let room = unique("busy");
    bob.ok(join(&room)).await;
    // 490 room messages in batches of 20, then 20 DMs: 510 items.
    let mut sent: Vec<i64> = Vec::new();
    for batch in 0..25 {
        let n = if batch == 24 { 10 } else { 20 };
        let calls: Vec<Value> = (0..n)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "room.send", "params": SendParams {
                room: room.clone(), text: format!("{batch}/{i}"), nonce: None }}))
            .collect();
        let answer = bob.call_raw(&Value::Array(calls).to_string()).await;
        for item in answer.as_array().expect("a batch answer") {
            sent.push(item["result"]["id"].as_i64().unwrap_or_else(|| panic!("a sent message: {item}")));
        }
    }
    let mut dms = Vec::new();
    for i in 0..20 {
        dms.push(bob.ok(dm(&ann.user.username, &format!("dm {i}"))).await);
    }
    assert_eq!(sent.len(), 490);
    let mut ann_ws = app.ws(&ann.access_token).await;

    let first = ann_ws.ok(sync_rooms(&[(&room, 0)], Some(0))).await;

    assert!(!first.complete);
    assert_eq!(first.messages.len() + first.dms.len(), 500);
    assert_eq!(ids(&first.messages), sent, "rooms first, oldest first");
    assert_eq!(first.dms, dms[..10]);
    let last_dm = first.dms.last().map(|m| m.id);
    let second = ann_ws.ok(sync_rooms(&[(&room, *sent.last().expect("sent"))], last_dm)).await;
    assert!(second.complete);
    assert!(second.messages.is_empty());
    assert_eq!(second.dms, dms[10..]);
}

#[tokio::test]
async fn sync_pages_through_one_long_room() {
    let app = spawn_app_with(|c| { c.rate_per_sec = 10_000; c.write_bytes_per_sec = u32::MAX }).await;
    let (_, mut bob) = app.user_online("bob").await;
    let room = unique("long");
    bob.ok(join(&room)).await;
    let mut sent = Vec::new();
    for batch in 0..26 {
        let calls: Vec<Value> = (0..20)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "room.send", "params": {"room": room, "text": format!("{batch}/{i}")}}))
            .collect();
        for item in bob.call_raw(&Value::Array(calls).to_string()).await.as_array().expect("a batch answer") {
            sent.push(item["result"]["id"].as_i64().expect("a sent message"));
        }
    }
    let mut ws = app.ws_anonymous().await;

    let mut got = Vec::new();
    let mut last = 0;
    let mut calls = 0;
    loop {
        let page = ws.ok(sync_rooms(&[(&room, last)], None)).await;
        calls += 1;
        assert!(page.messages.len() <= 500);
        got.extend(ids(&page.messages));
        last = got.last().copied().unwrap_or(last);
        if page.complete {
            break;
        }
        assert!(calls < 5, "sync never completes");
    }

    assert_eq!(calls, 2);
    assert_eq!(got, sent, "all 520, none twice, in order");
}

#[tokio::test]
async fn sync_skips_rooms_the_caller_may_not_read_or_that_do_not_exist() {
    let app = spawn_app().await;
    let boss = app.admin(&unique("boss")).await;
    let (_, mut ann) = app.user_online("ann").await;
    let mut boss_ws = app.ws(&boss.access_token).await;
    let (staff, public) = (unique("staff"), unique("public"));
    app.post_json("/api/rooms", &CreateRoom { name: staff.clone(), admin_only: true }, Some(&boss.access_token)).await;
    boss_ws.ok(join(&staff)).await;
    boss_ws.ok(join(&public)).await;
    boss_ws.ok(send(&staff, "secret")).await;
    let open = boss_ws.ok(send(&public, "open")).await;

    let result = ann.ok(sync_rooms(&[(&staff, 0), (&public, 0), (&unique("nowhere"), 0)], None)).await;

    assert_eq!(result, SyncResult { messages: vec![open], dms: vec![], complete: true });
}

#[tokio::test]
async fn reconnecting_under_live_traffic_misses_nothing_and_sync_repeats_nothing() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let (_, mut bob) = app.user_online("bob").await;
    let room = unique("live");
    bob.ok(join(&room)).await;
    let mut ann_ws = app.ws(&ann.access_token).await;
    ann_ws.ok(join(&room)).await;
    const TOTAL: usize = 120;

    // Bob keeps talking while ann drops off and comes back.
    let bobs_room = room.clone();
    let sender = tokio::spawn(async move {
        let mut sent = Vec::with_capacity(TOTAL);
        for i in 0..TOTAL {
            sent.push(bob.ok(send(&bobs_room, &format!("live {i}"))).await.id);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sent
    });
    let mut seen = Vec::new();
    while seen.len() < 20 {
        seen.push(ann_ws.next::<Message>("room.message").await.id);
    }
    drop(ann_ws);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Reconnect the way a client should: subscribe (join) first, then sync from the last id seen.
    let mut back = app.ws(&ann.access_token).await;
    back.ok(join(&room)).await;
    let last_seen = *seen.last().expect("seen");
    let mut synced: Vec<i64> = Vec::new();
    loop {
        let after = synced.last().copied().unwrap_or(last_seen);
        let page = back.ok(sync_rooms(&[(&room, after)], None)).await;
        synced.extend(ids(&page.messages));
        if page.complete {
            break;
        }
    }
    let sent = within("the sender to finish", sender).await.expect("the sender task");
    let mut live = Vec::new();
    let mut have: BTreeSet<i64> = seen.iter().chain(&synced).copied().collect();
    while have.len() < sent.len() {
        let id = back.next::<Message>("room.message").await.id;
        live.push(id);
        have.insert(id);
    }

    assert_eq!(seen, sent[..20], "the first connection saw a gap-free prefix");
    assert!(synced.windows(2).all(|w| w[0] < w[1]), "sync is ordered and repeats nothing: {synced:?}");
    assert!(synced.iter().all(|id| *id > last_seen), "sync returns only what was missed");
    assert!(live.windows(2).all(|w| w[0] < w[1]), "live messages arrive in id order: {live:?}");
    assert_eq!(have, sent.iter().copied().collect::<BTreeSet<_>>(), "nothing missed, nothing foreign");
}

#[tokio::test]
async fn after_a_restart_sync_returns_exactly_what_was_sent_while_away() {
    let mut app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let room = unique("durable");
    let mut ann_ws = app.ws(&ann.access_token).await;
    let mut bob_ws = app.ws(&bob.access_token).await;
    ann_ws.ok(join(&room)).await;
    bob_ws.ok(join(&room)).await;
    let mut before = Vec::new();
    for i in 0..3 {
        before.push(bob_ws.ok(send(&room, &format!("before {i}"))).await);
    }
    for message in &before {
        assert_eq!(&ann_ws.next::<Message>("room.message").await, message);
    }
    let last_seen = before[2].id;

    app.restart().await;

    assert_eq!(ann_ws.expect_close().await, 1001);
    assert_eq!(bob_ws.expect_close().await, 1001);
    // Tokens survive the restart: the signing secret lives in the data dir.
    let mut bob_ws = app.ws(&bob.access_token).await;
    bob_ws.ok(join(&room)).await;
    let mut after = Vec::new();
    for i in 0..3 {
        after.push(bob_ws.ok(send(&room, &format!("after {i}"))).await);
    }
    let dm_sent = bob_ws.ok(dm(&ann.user.username, "while you were away")).await;
    let mut ann_ws = app.ws(&ann.access_token).await;
    ann_ws.ok(EchoParams { text: "back".into() }).await;

    let caught_up = ann_ws.ok(sync_rooms(&[(&room, last_seen)], Some(0))).await;

    assert_eq!(caught_up.messages, after);
    assert_eq!(caught_up.dms, vec![dm_sent]);
    assert!(caught_up.complete);
    assert!(after[0].id > last_seen, "ids keep increasing across a restart");
    let history = ann_ws.ok(crate::helpers::history(&room, None, None)).await;
    assert_eq!(history, before.into_iter().chain(after).collect::<Vec<_>>());
}

#[tokio::test]
async fn sync_names_at_most_max_sync_rooms_rooms_per_call() {
    // Two syncs of 5 000 rooms cost 51 calls each: more than the default burst.
    let app = spawn_app_with(|c| c.rate_per_sec = 10_000).await;
    let (_, mut ann) = app.user_online("ann").await;
    let room = unique("real");
    ann.ok(join(&room)).await;
    let message = ann.ok(send(&room, "hello")).await;
    // The real room among made-up ones (and names no room could have, which yield nothing);
    // short names, so that one more than the limit still fits in one frame.
    let mut rooms: std::collections::BTreeMap<String, i64> = (1..MAX_SYNC_ROOMS).map(|i| (format!("m{i}"), 0)).collect();
    rooms.insert("not.a.room".to_owned(), 0);
    rooms.insert(room.clone(), 0);
    assert_eq!(rooms.len(), MAX_SYNC_ROOMS + 1);

    let err = ann.fail(SyncParams { rooms: rooms.clone(), dm_after: None }).await;
    assert_invalid_param(&err, "rooms");

    rooms.remove("not.a.room");
    let result = ann.ok(SyncParams { rooms, dm_after: None }).await;
    assert_eq!((ids(&result.messages), result.complete), (vec![message.id], true));
}

/// Runs `sync` the way a socket's call does, on a handle to the server's database that counts
/// the statements it runs; returns the result and the count.
async fn counted_sync(app: &TestApp, token: Option<&str>, params: SyncParams) -> (SyncResult, usize) {
    let identity = match token {
        Some(token) => Some(confab::auth::authenticate(app.state(), token).await.expect("a valid token")),
        None => None,
    };
    let mut state = app.state().clone();
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    state.db.conn.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let conn = confab::ws::Conn::new(0, identity);
    let result = confab::features::sync::sync(&state, &conn, params).await.expect("sync succeeds");
    (result, statements.load(Ordering::Relaxed))
}

#[tokio::test]
async fn sync_costs_the_same_few_queries_for_one_room_as_for_five_hundred() {
    let app = spawn_app().await;
    let (ann_tokens, mut ann) = app.user_online("ann").await;
    let (_, mut bob) = app.user_online("bob").await;
    let room = unique("busy");
    ann.ok(join(&room)).await;
    let first = ann.ok(send(&room, "one")).await;
    ann.ok(send(&room, "two")).await;
    bob.ok(dm(&ann_tokens.user.username, "psst")).await;
    // Two hundred rooms that exist (quiet ones: what matters is that each would be looked at),
    // and three hundred that do not.
    let mut rooms: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..200 {
        let name = format!("{room}-{i:03}");
        confab::storage::rooms::create(&app.state().db, &name, false, None).await.expect("the room is created");
        rooms.insert(name, 0);
    }
    rooms.extend((0..299).map(|i| (format!("{room}-nowhere-{i:03}"), 0)));
    rooms.insert(room.clone(), first.id);
    assert_eq!(rooms.len(), 500);
    let one = || SyncParams { rooms: BTreeMap::from([(room.clone(), first.id)]), dm_after: Some(0) };
    let many = || SyncParams { rooms: rooms.clone(), dm_after: Some(0) };

    for token in [Some(ann_tokens.access_token.as_str()), None] {
        let (alone, queries_alone) = counted_sync(&app, token, one()).await;
        let (among, queries_among) = counted_sync(&app, token, many()).await;

        assert_eq!(alone, among, "the same messages whichever rooms are named besides");
        assert_eq!(alone.messages.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["two"]);
        assert_eq!(alone.dms.len(), usize::from(token.is_some()));
        assert_eq!(queries_among, queries_alone, "queries for 500 rooms and for one");
        assert!(queries_alone <= 4, "{queries_alone} queries");
    }
}

#[tokio::test]
async fn sync_of_hundreds_of_rooms_returns_the_messages_of_the_readable_ones_in_name_order() {
    let app = spawn_app().await;
    let boss = app.admin(&unique("boss")).await;
    let mut boss_ws = app.ws(&boss.access_token).await;
    let (_, mut ann) = app.user_online("ann").await;
    let mut anonymous = app.ws_anonymous().await;
    let base = unique("many");
    let (alpha, staff, zeta) = (format!("{base}-alpha"), format!("{base}-staff"), format!("{base}-zeta"));
    app.post_json("/api/rooms", &CreateRoom { name: staff.clone(), admin_only: true }, Some(&boss.access_token)).await;
    for room in [&zeta, &staff, &alpha] {
        boss_ws.ok(join(room)).await;
    }
    // Sent in an order unlike the rooms' names: the answer is by room name, then by id.
    let z1 = boss_ws.ok(send(&zeta, "z1")).await;
    let s1 = boss_ws.ok(send(&staff, "s1")).await;
    let a1 = boss_ws.ok(send(&alpha, "a1")).await;
    let z2 = boss_ws.ok(send(&zeta, "z2")).await;
    let a2 = boss_ws.ok(send(&alpha, "a2")).await;
    let mut rooms: BTreeMap<String, i64> = (0..496).map(|i| (format!("{base}-nowhere-{i:03}"), 0)).collect();
    rooms.insert("not a room!".to_owned(), 0);
    rooms.extend([(alpha.clone(), 0), (staff.clone(), 0), (zeta.clone(), z1.id)]);
    assert_eq!(rooms.len(), 500);
    let params = SyncParams { rooms, dm_after: None };

    let public = vec![a1.clone(), a2.clone(), z2.clone()];
    for ws in [&mut ann, &mut anonymous] {
        assert_eq!(ws.ok(params.clone()).await, SyncResult { messages: public.clone(), dms: vec![], complete: true });
    }
    let everything = vec![a1, a2, s1, z2];
    assert_eq!(boss_ws.ok(params).await, SyncResult { messages: everything, dms: vec![], complete: true });
}
