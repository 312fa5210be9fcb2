//! The HTTP streaming transport: `GET /api/stream` and `POST /api/stream/{session}` speak the
//! socket's protocol, with the socket's authentication, limits, session life and eviction;
//! stream users and socket users talk to each other as if both had sockets.

use confab_shared::TokenPair;
use confab_shared::rpc::notify::{RoomUser, SessionExpiring};
use confab_shared::rpc::{AuthRefreshParams, EchoParams, PresenceWatchParams};
use confab_shared::{DirectMessage, Message, UserPresence};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::helpers::{
    TestApp, assert_code, body, claims_of, dm, join, problem, send, spawn_app, spawn_app_with, sync_rooms, unique, within,
};

fn echo(text: &str) -> EchoParams {
    EchoParams { text: text.to_owned() }
}

fn watch(user: &str) -> PresenceWatchParams {
    PresenceWatchParams { users: vec![user.to_owned()], replace: false }
}

#[tokio::test]
async fn a_stream_opens_with_its_session_and_the_headers_that_get_it_through_proxies() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;

    let mut stream = app.stream(Some(&ann.access_token)).await;

    let headers = stream.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(headers.get("content-encoding").is_none(), "an event stream is never compressed");
    assert_eq!(stream.session.len(), 32, "128 bits in hex: {}", stream.session);
    assert!(stream.session.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(app.stream(Some(&ann.access_token)).await.session, stream.session, "every stream has its own session");
    assert_eq!(stream.ok(echo("over http")).await.text, "over http");
    // A batch is answered by one array; a frame of notifications only, by 204.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"text": "a"}},
        {"jsonrpc": "2.0", "method": "echo", "params": {"text": "b"}},
        {"jsonrpc": "2.0", "id": 2, "method": "echo", "params": {"text": "c"}},
    ]);
    let answer: Value = body(stream.post(batch.to_string()).await).await;
    assert_eq!(answer.as_array().map(Vec::len), Some(2), "{answer}");
    assert_eq!(answer[1]["result"]["text"], "c");
    let notification = stream.post(json!({"jsonrpc": "2.0", "method": "echo", "params": {"text": "x"}}).to_string()).await;
    assert_eq!(notification.status().as_u16(), 204);
    let not_json = stream.post("{not json").await;
    assert_eq!(not_json.status().as_u16(), 200, "a bad frame is answered, as on a socket");
    let answer: Value = body(not_json).await;
    assert_eq!(answer["error"]["code"], -32700);
}

#[tokio::test]
async fn a_stream_user_and_a_socket_user_chat_in_a_room_both_ways_and_see_each_others_presence() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let (bob, mut bob_ws) = app.user_online("bob").await;
    let (ann_name, bob_name) = (ann.user.username.clone(), bob.user.username.clone());
    let room = unique("lobby");
    bob_ws.ok(join(&room)).await;
    let watched = bob_ws.ok(watch(&ann_name)).await;
    assert_eq!(watched.users, vec![UserPresence { username: ann_name.clone(), online: false }]);

    let mut ann_stream = app.stream(Some(&ann.access_token)).await;
    assert_eq!(bob_ws.next::<UserPresence>("presence.changed").await, UserPresence { username: ann_name.clone(), online: true });
    let joined = ann_stream.ok(join(&room)).await;
    assert!(joined.online.contains(&bob_name), "{:?}", joined.online);
    // (bob may first hear of his own arrival.)
    while bob_ws.next::<RoomUser>("room.user_joined").await.username != ann_name {}

    // Stream → socket: the answer in the POST's body, the broadcast on both.
    let sent = ann_stream.ok(send(&room, "hello from behind a proxy")).await;
    let heard: Message = bob_ws.next("room.message").await;
    assert_eq!((heard.id, heard.author.as_str(), heard.text.as_str()), (sent.id, ann_name.as_str(), "hello from behind a proxy"));
    assert_eq!(ann_stream.next::<Message>("room.message").await.id, sent.id, "the sender's own stream hears it too");
    // Socket → stream, and typing.
    let reply = bob_ws.ok(send(&room, "hello back")).await;
    let heard: Message = ann_stream.next("room.message").await;
    assert_eq!((heard.id, heard.author.as_str()), (reply.id, bob_name.as_str()));
    bob_ws.ok(confab_shared::rpc::TypingParams { room: room.clone() }).await;
    assert_eq!(ann_stream.next::<RoomUser>("room.typing").await.username, bob_name);

    // The stream's client goes away: its session ends, and the room and the watchers hear it.
    drop(ann_stream);
    let left: RoomUser = bob_ws.next("room.user_left").await;
    assert_eq!(left.username, ann_name);
    assert_eq!(bob_ws.next::<UserPresence>("presence.changed").await, UserPresence { username: ann_name, online: false });
}

#[tokio::test]
async fn direct_messages_reach_a_stream_and_leave_from_it() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let (bob, mut bob_ws) = app.user_online("bob").await;
    let mut ann_stream = app.stream(Some(&ann.access_token)).await;
    ann_stream.ok(echo("live")).await;

    let receipt = bob_ws.ok(dm(&ann.user.username, "psst")).await;
    let heard: DirectMessage = ann_stream.next("dm.message").await;
    assert_eq!((heard.id, heard.text.as_str()), (receipt.id, "psst"));

    let answer = ann_stream.ok(dm(&bob.user.username, "got it")).await;
    let heard: DirectMessage = bob_ws.next("dm.message").await;
    assert_eq!((heard.id, heard.from.as_str()), (answer.id, ann.user.username.as_str()));
}

#[tokio::test]
async fn a_post_needs_the_streams_own_credentials_and_a_live_session() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let mut stream = app.stream(Some(&ann.access_token)).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"text": "x"}}).to_string();

    problem(stream.post_as(call.clone(), Some(&bob.access_token)).await, 403).await;
    problem(stream.post_as(call.clone(), None).await, 401).await;
    problem(stream.post_as(call.clone(), Some("garbage")).await, 401).await;
    // Another session of the same user is the same user.
    let elsewhere = app.login_ok(&ann.user.username).await;
    assert_eq!(stream.post_as(call.clone(), Some(&elsewhere.access_token)).await.status().as_u16(), 200);
    // An anonymous stream takes no bearer, and a user's stream no anonymous POST.
    let anonymous = app.stream(None).await;
    problem(anonymous.post_as(call.clone(), Some(&ann.access_token)).await, 403).await;
    assert_eq!(anonymous.post_as(call.clone(), None).await.status().as_u16(), 200);

    // An unknown session, and one whose stream has ended.
    let unknown = app.http.post(app.url(&format!("/api/stream/{}", "0".repeat(32)))).bearer_auth(&ann.access_token).body(call.clone()).send().await.expect("answered");
    problem(unknown, 404).await;
    let ended = stream.session.clone();
    app.post_json("/api/auth/logout", &json!({}), Some(&ann.access_token)).await;
    assert_eq!(stream.expect_closed().await, 4003);
    let fresh = app.login_ok(&ann.user.username).await;
    let gone = app.http.post(app.url(&format!("/api/stream/{ended}"))).bearer_auth(&fresh.access_token).body(call).send().await.expect("answered");
    problem(gone, 404).await;
}

#[tokio::test]
async fn a_stream_is_refused_as_a_socket_would_be() {
    let app = spawn_app_with(|c| {
        c.max_sockets_per_user = 1;
        c.allowed_origins = vec!["https://chat.example".to_owned()];
    })
    .await;
    let ann = app.signup_and_login(&unique("ann")).await;

    problem(app.stream_response(Some("garbage"), None).await, 401).await;
    problem(app.stream_response(Some(&ann.access_token), Some("https://evil.example")).await, 403).await;
    let _ws = app.ws(&ann.access_token).await;
    let at_cap = app.stream_response(Some(&ann.access_token), Some("https://chat.example")).await;
    assert!(at_cap.headers().contains_key("retry-after"));
    problem(at_cap, 429).await;
}

#[tokio::test]
async fn an_anonymous_stream_reads_but_may_not_write() {
    let app = spawn_app().await;
    let (_, mut bob_ws) = app.user_online("bob").await;
    let room = unique("lobby");
    bob_ws.ok(join(&room)).await;
    let mut watcher = app.stream(None).await;

    watcher.ok(join(&room)).await;
    assert_code(&watcher.fail(send(&room, "hi")).await, -32001);
    let sent = bob_ws.ok(send(&room, "for everyone")).await;
    assert_eq!(watcher.next::<Message>("room.message").await.id, sent.id);
}

#[tokio::test]
async fn a_stream_has_the_sockets_limits_frame_size_batch_size_and_call_rate() {
    let app = spawn_app_with(|c| {
        c.max_frame_bytes = 4096;
        c.rate_per_sec = 2;
    })
    .await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let mut stream = app.stream(Some(&ann.access_token)).await;

    let oversize = json!({"jsonrpc": "2.0", "id": 1, "method": "echo", "params": {"text": "x".repeat(5000)}}).to_string();
    let refused = problem(stream.post(oversize).await, 413).await;
    assert!(refused.detail.contains("frame limit"), "{refused:?}");
    // The refused body cost no call; a batch past 20 calls is one -32600.
    let batch: Vec<Value> = (0..21).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "echo", "params": {"text": "x"}})).collect();
    let answer: Value = body(stream.post(Value::Array(batch).to_string()).await).await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    // The burst is twice the rate, and calls of all of the stream's POSTs share it.
    let mut refused = None;
    for _ in 0..6 {
        if let Err(err) = stream.call(echo("x")).await {
            refused = Some(err);
            break;
        }
    }
    let refused = refused.expect("the call rate is enforced");
    assert_code(&refused, -32029);
    assert!(refused.data.as_ref().and_then(|d| d.get("retry_after_ms")).is_some(), "{refused:?}");
}

#[tokio::test]
async fn logout_ends_a_stream_with_4003() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let mut stream = app.stream(Some(&ann.access_token)).await;
    stream.ok(echo("live")).await;

    let response = app.post_json("/api/auth/logout", &json!({}), Some(&ann.access_token)).await;

    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(stream.expect_closed().await, 4003);
}

#[tokio::test]
async fn an_expiring_token_is_announced_on_the_stream_refreshed_by_a_post_and_the_stream_ends_with_4001() {
    let app = spawn_app_with(|c| {
        c.access_ttl_secs = 4;
        c.expiry_warning_secs = 2;
    })
    .await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let first_exp = claims_of(&ann.access_token)["exp"].as_i64().expect("exp");
    let mut stream = app.stream(Some(&ann.access_token)).await;

    let warning: SessionExpiring = stream.next("session.expiring").await;
    assert_eq!(warning.expires_at.millis(), first_exp * 1000);
    let fresh: TokenPair = body(app.refresh(&ann.refresh_token).await).await;
    let refreshed = stream.ok(AuthRefreshParams { access_token: fresh.access_token.clone() }).await;
    let fresh_exp = claims_of(&fresh.access_token)["exp"].as_i64().expect("exp");
    assert_eq!(refreshed.expires_at.millis(), fresh_exp * 1000);

    // The new token is announced in its turn, and with no refresh the stream ends at its expiry.
    let again: SessionExpiring = stream.next("session.expiring").await;
    assert_eq!(again.expires_at.millis(), fresh_exp * 1000);
    assert_eq!(stream.expect_closed().await, 4001);
    assert!(chrono::Utc::now().timestamp_millis() >= fresh_exp * 1000 - 200, "closed before the refreshed token expired");
}

/// Enough to fill the kernel's buffers on both ends several times over.
const FLOOD_MAX_BYTES: usize = 64 << 20;
const TEXT_CHARS: usize = 4000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_is_not_read_is_evicted_with_1013_and_its_server_side_stays_bounded() {
    let outbox_max_bytes = 1 << 20;
    let app = spawn_app_with(|c| {
        c.outbox_max_bytes = outbox_max_bytes;
        c.rate_per_sec = 100_000;
        c.write_bytes_per_sec = u32::MAX;
    })
    .await;
    let slow_user = app.signup_and_login(&unique("slow")).await;
    let slow_name = slow_user.user.username.clone();
    let room = unique("firehose");
    // A raw connection with a tiny receive buffer, so not reading pushes back at once.
    let mut raw = RawStream::open(&app, &slow_user.access_token).await;
    let joined = raw.post(&app, &slow_user, json!({"jsonrpc": "2.0", "id": 1, "method": "room.join", "params": {"room": room}})).await;
    assert!(joined.get("result").is_some(), "{joined}");
    let (_, mut fast) = app.user_online("fast").await;
    fast.ok(join(&room)).await;

    // From now on the stream is not read. `fast` sends large messages until the server
    // reports slow's departure from the room.
    let text = "x".repeat(TEXT_CHARS);
    let mut sent: Vec<i64> = Vec::new();
    let mut evicted = false;
    while !evicted && sent.len() * TEXT_CHARS < FLOOD_MAX_BYTES {
        let calls: Vec<Value> = (0..10).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "room.send", "params": {"room": room, "text": text}})).collect();
        let answer = fast.call_raw(&Value::Array(calls).to_string()).await;
        for item in answer.as_array().expect("a batch answer") {
            sent.push(item["result"]["id"].as_i64().unwrap_or_else(|| panic!("the send failed: {:.200}", item.to_string())));
        }
        while let Some(left) = fast.take_from_backlog("room.user_left") {
            evicted |= left["username"] == slow_name.as_str();
        }
        fast.clear_backlog();
    }
    let flooded = sent.len() * TEXT_CHARS;
    assert!(evicted, "a stream that read nothing for {} MB was not evicted", flooded >> 20);
    // What the server held for it: the queue's budget, one chunk, hyper's and the kernel's
    // buffers; nothing near what was sent to the room.
    assert!(flooded < 16 << 20, "evicted only after {} MB", flooded >> 20);

    // Now read: a gap-free prefix of the room, then `stream.closed` 1013, then the end.
    let events = within("the rest of the stream", raw.read_to_end()).await;
    let (last, before) = events.split_last().expect("events");
    assert_eq!(last["method"], "stream.closed", "{last}");
    assert_eq!(last["params"]["code"], 1013);
    let received: Vec<i64> = before.iter().filter(|f| f["method"] == "room.message").map(|f| f["params"]["id"].as_i64().expect("an id")).collect();
    assert!(received.len() < sent.len(), "a stream that read nothing cannot have received everything");
    assert_eq!(received, sent[..received.len()], "what it did receive is a gap-free prefix, in order");

    // It catches up like a socket: a new stream and `sync`.
    let mut back = app.stream(Some(&slow_user.access_token)).await;
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
}

/// A stream read from a raw TCP connection with a tiny receive buffer: a client that can stop
/// reading for real (an HTTP library would keep reading into its own buffers).
struct RawStream {
    tcp: tokio::net::TcpStream,
    /// Everything read so far, the response head included.
    read: Vec<u8>,
    session: String,
}

impl RawStream {
    async fn open(app: &TestApp, token: &str) -> Self {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(4096).expect("a small buffer");
        let mut tcp = within("a TCP connection", socket.connect(app.addr)).await.expect("connected");
        let request = format!("GET /api/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n", app.addr);
        tcp.write_all(request.as_bytes()).await.expect("the request is sent");
        let mut raw = Self { tcp, read: Vec::new(), session: String::new() };
        // Up to the session id of `stream.opened`, and no further.
        let marker = br#""session":""#;
        let at = within("stream.opened", async {
            loop {
                if let Some(at) = raw.read.windows(marker.len()).position(|w| w == marker) {
                    if raw.read.len() >= at + marker.len() + 32 {
                        return at + marker.len();
                    }
                }
                raw.fill().await.expect("the stream is open");
            }
        })
        .await;
        assert!(raw.read.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&raw.read));
        raw.session = String::from_utf8_lossy(&raw.read[at..at + 32]).into_owned();
        raw
    }

    /// Reads once more; `None` at the end of the connection.
    async fn fill(&mut self) -> Option<()> {
        let mut buf = [0u8; 16 * 1024];
        let n = self.tcp.read(&mut buf).await.expect("the connection reads");
        (n > 0).then(|| self.read.extend_from_slice(&buf[..n]))
    }

    async fn post(&self, app: &TestApp, user: &TokenPair, call: Value) -> Value {
        let response = app.http.post(app.url(&format!("/api/stream/{}", self.session))).bearer_auth(&user.access_token).body(call.to_string()).send().await.expect("answered");
        body(response).await
    }

    /// Reads up to the end of the chunked body and returns its events.
    async fn read_to_end(&mut self) -> Vec<Value> {
        loop {
            if let Some(events) = self.events() {
                return events;
            }
            self.fill().await.expect("the stream's body ends before the connection");
        }
    }

    /// The body's events once its last chunk has arrived.
    fn events(&self) -> Option<Vec<Value>> {
        let head = self.read.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let mut rest = &self.read[head..];
        let mut body = Vec::new();
        loop {
            let line = rest.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line]).expect("a chunk size").trim(), 16).expect("a hex chunk size");
            if rest.len() < line + 2 + size + 2 {
                return None;
            }
            body.extend_from_slice(&rest[line + 2..line + 2 + size]);
            rest = &rest[line + 2 + size + 2..];
            if size == 0 {
                break;
            }
        }
        let text = String::from_utf8(body).expect("UTF-8");
        Some(
            text.split("\n\n")
                .filter_map(|event| {
                    let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                    (!data.is_empty()).then(|| serde_json::from_str(&data.join("\n")).expect("JSON events"))
                })
                .collect(),
        )
    }
}
