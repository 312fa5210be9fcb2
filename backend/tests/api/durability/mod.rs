//! Durability: what the server acknowledged survives the server.
//!
//! Each test runs the `confab` binary as a child process on a database that outlives it (a
//! SQLite file, or a fresh PostgreSQL database on `CONFAB_TEST_PG_URL`), sends flat out
//! with many calls in flight, kills it with SIGKILL in the middle, starts it again and
//! reads the database: every acknowledged message must be there, exactly once, numbered
//! without gaps; with a `room.message` webhook registered, each stored message also has
//! exactly one delivery in the outbox (written in the message's own transaction); every
//! acknowledged report has its audit row ([`moderation`]). A few seconds each; every wait has
//! a timeout.

mod moderation;
pub mod server;

use std::collections::HashMap;

use serde_json::{Value, json};
use server::{Database, Server, Socket};

/// Calls in flight while the server is killed.
const IN_FLIGHT: usize = 48;
/// Acknowledgements to collect before the kill.
const KILL_AFTER: usize = 400;

#[tokio::test]
async fn on_sqlite_a_kill_9_mid_send_loses_no_acknowledged_message() {
    let db = Database::sqlite();
    kill_mid_send(&db, false).await;
}

#[tokio::test]
async fn on_postgres_a_kill_9_mid_send_loses_no_acknowledged_message() {
    let db = Database::postgres().await;
    kill_mid_send(&db, false).await;
    db.drop_if_postgres().await;
}

#[tokio::test]
async fn on_sqlite_a_kill_9_mid_send_loses_no_webhook_event_of_an_acknowledged_message() {
    let db = Database::sqlite();
    kill_mid_send(&db, true).await;
}

#[tokio::test]
async fn on_postgres_a_kill_9_mid_send_loses_no_webhook_event_of_an_acknowledged_message() {
    let db = Database::postgres().await;
    kill_mid_send(&db, true).await;
    db.drop_if_postgres().await;
}

/// The `room.message` outbox: message id → deliveries of it to `webhook`.
async fn deliveries(db: &Database, webhook: i64) -> HashMap<i64, usize> {
    let sql = format!("SELECT body FROM webhook_deliveries WHERE event_type = 'room.message' AND webhook_id = {webhook}");
    let mut out = HashMap::new();
    for row in db.rows(&sql).await {
        let body: Value = serde_json::from_str(row[0].as_str().expect("a text body")).expect("a JSON body");
        *out.entry(body["data"]["id"].as_i64().expect("the message id")).or_insert(0) += 1;
    }
    out
}

/// A room's messages as stored: nonce → (id, text, seq).
async fn stored(db: &Database, room: &str) -> HashMap<String, (i64, String, i64)> {
    let sql = format!(
        "SELECT m.nonce, m.id, m.text, m.seq FROM messages m JOIN rooms r ON r.id = m.room_id WHERE r.name = '{room}'"
    );
    let mut out = HashMap::new();
    for row in db.rows(&sql).await {
        let nonce = row[0].as_str().expect("every test message has a nonce").to_owned();
        let value = (row[1].as_i64().expect("id"), row[2].as_str().expect("text").to_owned(), row[3].as_i64().expect("seq"));
        assert!(out.insert(nonce.clone(), value).is_none(), "nonce {nonce} stored twice");
    }
    out
}

/// Sends flat out, kills the server, checks what is stored; `webhook`: with a `room.message`
/// webhook registered (a receiver that answers 200), every stored message has its delivery.
async fn kill_mid_send(db: &Database, webhook: bool) {
    let room = "durable";
    let mut server = Server::start(db).await;
    let hook = if webhook {
        let admin = server.admin(db, "durable_root").await;
        Some(server.webhook(&admin, &server::receiver().await, &["room.message"]).await)
    } else {
        None
    };
    let token = server.login("durable_ann").await;
    let mut socket = Socket::connect(server.port, &token).await;
    let joined = socket.call("room.join", json!({"room": room, "history": 0})).await;
    assert!(joined.get("result").is_some(), "join failed: {joined}");

    // Flat out: IN_FLIGHT sends outstanding at all times; the server dies under them.
    let mut sent = 0..;
    let calls = std::iter::from_fn(|| {
        let next = sent.next()?;
        let nonce = format!("n{next}");
        Some((nonce.clone(), json!({"room": room, "text": format!("text {next}"), "nonce": nonce})))
    });
    let (acked, unanswered) = flat_out_then_kill(&mut server, &mut socket, "room.send", calls, |result| result.is_object()).await;
    let acked: Vec<(String, i64, String)> =
        acked.into_iter().map(|(nonce, result)| (nonce, result["id"].as_i64().expect("a message id"), result["text"].as_str().expect("text").to_owned())).collect();

    let server = Server::start(db).await;
    let rows = stored(db, room).await;
    for (nonce, id, text) in &acked {
        let row = rows.get(nonce).unwrap_or_else(|| panic!("acknowledged message {nonce} lost"));
        assert_eq!((row.0, &row.1), (*id, text), "acknowledged message {nonce} changed");
    }
    assert_seqs_are_one_to_n(db, room, &rows).await;
    if let Some(hook) = hook {
        let outbox = deliveries(db, hook).await;
        for (nonce, id, _) in &acked {
            assert_eq!(outbox.get(id), Some(&1), "acknowledged message {nonce} (id {id}) has not exactly one webhook delivery");
        }
        // Nor more: a delivery only with its message (a rolled-back batch leaves neither).
        let stored_ids: std::collections::HashSet<i64> = rows.values().map(|r| r.0).collect();
        assert!(outbox.keys().all(|id| stored_ids.contains(id)), "a delivery of a message that was never stored");
        assert_eq!(outbox.len(), rows.len(), "every stored message has its delivery");
    }

    // The sends that were in flight at the kill, retried as a client retries (same nonce,
    // same text): each is stored exactly once, whether or not it had been committed before
    // the kill.
    let token = server.login("durable_ann").await;
    let mut socket = Socket::connect(server.port, &token).await;
    socket.call("room.join", json!({"room": room, "history": 0})).await;
    let mut unanswered = unanswered;
    unanswered.sort();
    for nonce in &unanswered {
        let response = socket.call("room.send", json!({"room": room, "text": format!("text {}", &nonce[1..]), "nonce": nonce})).await;
        let id = response["result"]["id"].as_i64().unwrap_or_else(|| panic!("resend of {nonce} failed: {response}"));
        if let Some((stored_id, _, _)) = rows.get(nonce) {
            assert_eq!(id, *stored_id, "a resent nonce committed before the kill must answer with the stored message");
        }
    }
    let after = stored(db, room).await;
    assert_eq!(after.len(), rows.len() + unanswered.iter().filter(|n| !rows.contains_key(*n)).count());
    assert_seqs_are_one_to_n(db, room, &after).await;
}

/// Calls `method` flat out, [`IN_FLIGHT`] calls outstanding (the keys and params from
/// `calls`), kills the server after [`KILL_AFTER`] acknowledgements, then reads what the
/// server wrote before it died. Every answer before the kill must satisfy `acknowledged`.
/// Returns the acknowledged calls' keys with their results, and the keys never answered.
async fn flat_out_then_kill<K>(
    server: &mut Server,
    socket: &mut Socket,
    method: &str,
    mut calls: impl Iterator<Item = (K, Value)>,
    acknowledged: impl Fn(&Value) -> bool,
) -> (Vec<(K, Value)>, Vec<K>) {
    let mut key_of: HashMap<i64, K> = HashMap::new();
    let mut acked = Vec::new();
    let mut killed = false;
    loop {
        while !killed && key_of.len() < IN_FLIGHT {
            let Some((key, params)) = calls.next() else { break };
            key_of.insert(socket.send(method, params).await, key);
        }
        // After the kill, read what the server wrote before it died (still in our socket buffer).
        let Some(response) = socket.response().await else { break };
        let key = key_of.remove(&response["id"].as_i64().expect("an integer id")).expect("a response to a call we made");
        let result = &response["result"];
        assert!(acknowledged(result), "{method} failed before the kill: {response}");
        acked.push((key, result.clone()));
        if acked.len() == KILL_AFTER {
            server.kill();
            killed = true;
        }
    }
    assert!(killed, "the socket closed before the server was killed");
    (acked, key_of.into_values().collect())
}

/// The room's sequence numbers are 1..=n without gaps or repeats, and its counter is at n.
async fn assert_seqs_are_one_to_n(db: &Database, room: &str, rows: &HashMap<String, (i64, String, i64)>) {
    let mut seqs: Vec<i64> = rows.values().map(|r| r.2).collect();
    seqs.sort_unstable();
    let n = seqs.len() as i64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "sequence numbers with gaps or repeats");
    let counter = db.rows(&format!("SELECT last_seq FROM rooms WHERE name = '{room}'")).await;
    assert_eq!(counter, vec![vec![json!(n)]], "the room's counter disagrees with its messages");
    // Ids and sequence numbers agree on the order.
    let mut by_id: Vec<(i64, i64)> = rows.values().map(|r| (r.0, r.2)).collect();
    by_id.sort_unstable();
    assert!(by_id.windows(2).all(|w| w[0].1 < w[1].1), "id order and sequence order disagree");
}

/// PostgreSQL refuses connections for a while: sends are answered with a clear error (no
/// hang), REST with 503; once it is back, sends work again and nothing acknowledged is lost.
#[tokio::test]
async fn on_postgres_a_database_that_goes_away_answers_an_error_and_loses_nothing() {
    let db = Database::postgres().await;
    let room = "outage";
    let server = Server::start(&db).await;
    let token = server.login("outage_bob").await;
    let mut socket = Socket::connect(server.port, &token).await;
    socket.call("room.join", json!({"room": room, "history": 0})).await;
    let before = socket.call("room.send", json!({"room": room, "text": "before", "nonce": "b"})).await;
    assert!(before["result"].is_object(), "send failed: {before}");

    db.allow_connections(false).await;
    let during = socket.call("room.send", json!({"room": room, "text": "during", "nonce": "d"})).await;
    let error: &Value = &during["error"];
    assert_eq!(error["code"], json!(-32603), "a send during the outage: {during}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("unavailable")), "the error says why: {during}");
    assert_eq!(server.status("/api/rooms").await, 503, "REST during the outage");

    db.allow_connections(true).await;
    let after = socket.call("room.send", json!({"room": room, "text": "after", "nonce": "a"})).await;
    assert!(after["result"].is_object(), "send after the outage: {after}");
    let rows = stored(&db, room).await;
    assert_eq!(rows.get("b").map(|r| r.1.as_str()), Some("before"));
    assert_eq!(rows.get("a").map(|r| r.1.as_str()), Some("after"));
    drop(server);
    db.drop_if_postgres().await;
}
