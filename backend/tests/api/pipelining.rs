//! Pipelining and slow readers, on one accounting of a connection's queued bytes: a client
//! that sends faster than it reads is slowed down (the server stops reading its requests),
//! never evicted for its own answers; an eviction always reaches the client as a close
//! frame with its code; and what one connection can make the server hold is bounded.

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Request;

use crate::durability::server::{Database, Server};
use crate::helpers::{TestApp, WsClient, join, spawn_app_with, unique};

type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;
type Stream = SplitStream<WebSocketStream<TcpStream>>;

/// How long a whole pipelining run may take before the test fails instead of hanging.
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// A socket with a small kernel receive buffer, split into its halves, so that a test can
/// write and read on separate tasks.
async fn split_socket(addr: std::net::SocketAddr, request: Request<()>) -> (Sink, Stream) {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(16 * 1024).expect("a receive buffer size");
    let stream = socket.connect(addr).await.expect("a TCP connection");
    let (ws, _) = tokio_tungstenite::client_async(request, stream).await.expect("the WebSocket handshake");
    ws.split()
}

fn call(id: usize, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// Reads frames until `expected` answers have arrived, pausing now and then (a reader slower
/// than the server); returns the answers' results in arrival order. Fails on an error
/// answer or a close.
async fn read_answers(mut stream: Stream, expected: usize) -> Vec<Value> {
    let mut results = Vec::with_capacity(expected);
    let mut frames = 0usize;
    while results.len() < expected {
        let message = stream.next().await.expect("the socket stays open").expect("no socket error");
        frames += 1;
        if frames % 500 == 0 {
            // Deliberately slow: the server produces faster than this reader drains.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => panic!("closed after {} of {expected} answers: {frame:?}", results.len()),
            _ => continue,
        };
        let value: Value = serde_json::from_str(&text).expect("JSON from the server");
        let answers = match value {
            Value::Array(items) => items,
            single if single.get("id").is_some() => vec![single],
            _ => continue,
        };
        for answer in answers {
            assert!(answer.get("error").is_none(), "an answer failed: {answer}");
            results.push(answer);
        }
    }
    results
}

async fn messages_in(app: &TestApp, room: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &app.state().db.conn;
    let sql = format!("SELECT COUNT(*) AS n FROM messages WHERE room_id = (SELECT id FROM rooms WHERE name = '{room}')");
    let row = db.query_one(Statement::from_string(db.get_database_backend(), sql)).await.expect("the count runs").expect("a row");
    row.try_get::<i64>("", "n").expect("a count")
}

/// A server that lets one client send as fast as it likes, with a 256 KiB outbox: what
/// holds a pipelining client back is its own reading, nothing else.
async fn unthrottled_app() -> TestApp {
    spawn_app_with(|c| {
        c.rate_per_sec = 10_000_000;
        c.write_bytes_per_sec = u32::MAX;
        c.outbox_max_bytes = 256 << 10;
    })
    .await
}

/// Joins `room` on the split socket and waits for the answer.
async fn join_on(sink: &mut Sink, stream: &mut Stream, room: &str) {
    sink.send(Message::text(call(0, "room.join", json!({"room": room})).to_string())).await.expect("the join is written");
    loop {
        let message = stream.next().await.expect("the socket stays open").expect("no socket error");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).expect("JSON");
            if value.get("id") == Some(&json!(0)) {
                assert!(value.get("result").is_some(), "the join failed: {value}");
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pipelining_50_000_sends_through_a_slow_reader_is_slowed_never_evicted_and_every_send_is_answered_and_stored() {
    let app = unthrottled_app().await;
    let me = app.signup_and_login(&unique("bot")).await;
    let room = unique("pipeline");
    let (mut sink, mut stream) = split_socket(app.addr, app.ws_bearer_request(&me.access_token)).await;
    join_on(&mut sink, &mut stream, &room).await;

    const SENDS: usize = 50_000;
    let reader = tokio::spawn(read_answers(stream, SENDS));
    let room_name = room.clone();
    let writer = tokio::spawn(async move {
        for id in 1..=SENDS {
            let frame = call(id, "room.send", json!({"room": room_name, "text": format!("m{id}")}));
            sink.feed(Message::text(frame.to_string())).await.expect("the request is written");
        }
        sink.flush().await.expect("the requests are written");
        sink
    });
    let answers = tokio::time::timeout(RUN_LIMIT, reader).await.expect("every send answered in time").expect("the reader");
    let _sink = writer.await.expect("the writer");

    let ids: Vec<i64> = answers.iter().map(|a| a["id"].as_i64().expect("an id")).collect();
    assert_eq!(ids, (1..=SENDS as i64).collect::<Vec<_>>(), "every send answered once, in request order");
    let texts_in_order = answers.iter().enumerate().all(|(i, a)| a["result"]["text"] == format!("m{}", i + 1));
    assert!(texts_in_order, "each answer is the message its request sent");
    assert_eq!(messages_in(&app, &room).await, SENDS as i64, "every send is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pipelining_batches_of_sends_through_a_slow_reader_is_slowed_never_evicted() {
    let app = unthrottled_app().await;
    let me = app.signup_and_login(&unique("bot")).await;
    let room = unique("batches");
    let (mut sink, mut stream) = split_socket(app.addr, app.ws_bearer_request(&me.access_token)).await;
    join_on(&mut sink, &mut stream, &room).await;

    const BATCHES: usize = 500;
    const PER_BATCH: usize = 20;
    let reader = tokio::spawn(read_answers(stream, BATCHES * PER_BATCH));
    let room_name = room.clone();
    let writer = tokio::spawn(async move {
        for batch in 0..BATCHES {
            let calls: Vec<Value> = (0..PER_BATCH)
                .map(|i| {
                    let id = batch * PER_BATCH + i + 1;
                    call(id, "room.send", json!({"room": room_name, "text": format!("m{id}")}))
                })
                .collect();
            sink.feed(Message::text(Value::Array(calls).to_string())).await.expect("the batch is written");
        }
        sink.flush().await.expect("the batches are written");
        sink
    });
    let answers = tokio::time::timeout(RUN_LIMIT, reader).await.expect("every batch answered in time").expect("the reader");
    let _sink = writer.await.expect("the writer");
    let ids: Vec<i64> = answers.iter().map(|a| a["id"].as_i64().expect("an id")).collect();
    assert_eq!(ids, (1..=(BATCHES * PER_BATCH) as i64).collect::<Vec<_>>(), "every call answered once, in order");
    assert_eq!(messages_in(&app, &room).await, (BATCHES * PER_BATCH) as i64, "every send is stored");
}

/// The eviction of a slow consumer reaches it as a close frame with 1013, even though the
/// server left many of its requests unread: closing a socket with unread data in it would
/// make the kernel reset the connection and destroy the close frame on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_client_reads_the_close_frame_and_its_code_even_with_requests_left_unread() {
    let app = unthrottled_app().await;
    let slow_user = app.signup_and_login(&unique("slow")).await;
    let slow_name = slow_user.user.username.clone();
    let room = unique("evict");
    let (mut sink, mut stream) = split_socket(app.addr, app.ws_bearer_request(&slow_user.access_token)).await;
    join_on(&mut sink, &mut stream, &room).await;
    let (_, mut fast) = app.user_online("fast").await;
    fast.ok(join(&room)).await;

    // The slow client pipelines requests it does not read the answers to; the server stops
    // reading them once its queue is congested, so many stay unread in the socket.
    let pipeliner = tokio::spawn(async move {
        let text = "p".repeat(1000);
        for id in 1..=5_000 {
            let frame = call(id, "echo", json!({"text": text}));
            if sink.send(Message::text(frame.to_string())).await.is_err() {
                break;
            }
        }
        sink
    });

    // Others' messages fill what the slow client does not read until it is evicted.
    let text = "x".repeat(4000);
    let mut evicted = false;
    for _ in 0..2_000 {
        let calls: Vec<Value> = (0..10).map(|i| call(i, "room.send", json!({"room": room, "text": text}))).collect();
        fast.call_raw(&Value::Array(calls).to_string()).await;
        while let Some(left) = fast.take_from_backlog("room.user_left") {
            evicted |= left["username"] == slow_name.as_str();
        }
        fast.clear_backlog();
        if evicted {
            break;
        }
    }
    assert!(evicted, "the slow consumer was not evicted");

    // Now it reads: everything queued before the eviction, then the close frame.
    let code = tokio::time::timeout(RUN_LIMIT, async move {
        while let Some(message) = stream.next().await {
            match message {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(err) => panic!("the connection failed before the close frame arrived: {err}"),
            }
        }
        panic!("the connection ended without a close frame");
    })
    .await
    .expect("the close frame in time");
    assert_eq!(code, Some(1013));
    pipeliner.abort();
}

/// A socket that asks for large answers and reads none of them makes the server hold at
/// most its byte budget (plus one answer), not everything it asked for; once it reads, it
/// gets every answer, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_asks_for_history_without_reading_cannot_grow_the_server_beyond_its_budget() {
    let db = Database::sqlite();
    let server = Server::start_with(&db, &[("CONFAB_OUTBOX_MAX_BYTES", "1048576")]).await;
    let token = server.login(&unique("writer")).await;
    let room = unique("big");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", server.port).parse().expect("an address");
    let mut request = format!("ws://{addr}/ws").into_client_request().expect("a valid ws:// URL");
    let bearer = format!("Bearer {token}").parse().expect("a header value");
    request.headers_mut().insert("Authorization", bearer);
    let mut writer = WsClient::connect(addr, request).await.expect("the upgrade succeeds");
    writer.ok(join(&room)).await;
    // 100 messages of 4 000 characters: each history page below is ~400 KB.
    let text = "y".repeat(4000);
    for _ in 0..10 {
        let calls: Vec<Value> = (0..10).map(|i| call(i, "room.send", json!({"room": room, "text": text}))).collect();
        writer.call_raw(&Value::Array(calls).to_string()).await;
    }
    let history = call(0, "room.history", json!({"room": room, "limit": 100}));
    let page = writer.call_raw(&history.to_string()).await;
    assert_eq!(page["result"].as_array().map(Vec::len), Some(100), "the history page: {:.300}", page.to_string());
    let before = server.peak_rss_kib();

    // An anonymous socket asks for the page 300 times (~120 MB of answers) without reading.
    const ASKS: usize = 300;
    let anonymous = format!("ws://{addr}/ws").into_client_request().expect("a valid ws:// URL");
    let (mut sink, stream) = split_socket(addr, anonymous).await;
    let room_name = room.clone();
    let asker = tokio::spawn(async move {
        for id in 1..=ASKS {
            let frame = call(id, "room.history", json!({"room": room_name, "limit": 100}));
            sink.send(Message::text(frame.to_string())).await.expect("the request is written");
        }
        sink
    });
    // Every request was taken by the kernel or the server before the reading starts.
    let _sink = tokio::time::timeout(RUN_LIMIT, asker).await.expect("the requests are written in time").expect("the asker");

    let answers = tokio::time::timeout(RUN_LIMIT, read_answers(stream, ASKS)).await.expect("every answer in time");
    let ids: Vec<i64> = answers.iter().map(|a| a["id"].as_i64().expect("an id")).collect();
    assert_eq!(ids, (1..=ASKS as i64).collect::<Vec<_>>(), "every request answered, in order");
    let grown_mib = server.peak_rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 48, "one socket grew the server's peak memory by {grown_mib} MiB (budget 1 MiB)");
}
