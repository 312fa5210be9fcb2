//! Web Push: browsers store subscriptions (hostile input refused naming the field, one row
//! per endpoint, a bounded number per person), and a private message to someone with no
//! connection reaches a receiver on 127.0.0.1 standing in for their push service, encrypted
//! for the subscription (opened here with the subscription's private key, RFC 8291 written
//! out independently of the server's code) and signed with the server's VAPID key (the JWT
//! checked here); 410 removes the subscription, a push service that is down is retried,
//! and one conversation pushes at most once per coalescing window. A mention (in a message
//! or added by an edit) pushes to the mentioned with no connection, unless they keep the
//! room quiet.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confab::storage::entity::push_deliveries;
use confab_shared::push::{PushKey, PushKind, PushMessage, PushSubscription};
use ring::{aead, agreement, hkdf};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::helpers::{TestApp, body, dm, join, problem, send, spawn_app, spawn_app_with, unique, within};

/// One POST the stand-in push service got.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A push service on 127.0.0.1 that answers each POST with the next status of its script
/// (201 once the script runs out) and records what it got.
#[derive(Clone, Default)]
struct PushService {
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<Vec<u16>>>,
    arrived: Arc<Notify>,
}

impl PushService {
    async fn start(script: &[u16]) -> (Self, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        (Self::serve(listener, script), addr)
    }

    fn serve(listener: tokio::net::TcpListener, script: &[u16]) -> Self {
        let service = PushService::default();
        service.script.lock().expect("the script").extend(script.iter().rev());
        let app = axum::Router::new().route("/push/{id}", axum::routing::post(receive)).with_state(service.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        service
    }

    async fn wait_for(&self, n: usize) -> Vec<Hit> {
        within(&format!("{n} pushes"), async {
            loop {
                let arrived = self.arrived.notified();
                let hits = self.hits.lock().expect("the hits").clone();
                if hits.len() >= n {
                    return hits;
                }
                arrived.await;
            }
        })
        .await
    }
}

async fn receive(State(service): State<PushService>, uri: axum::http::Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    service.hits.lock().expect("the hits").push(Hit { path: uri.path().to_owned(), headers, body });
    service.arrived.notify_waiters();
    let code = service.script.lock().expect("the script").pop().unwrap_or(201);
    StatusCode::from_u16(code).unwrap_or(StatusCode::CREATED)
}

/// A browser's side of a subscription: its ECDH key pair and auth secret. ring's private
/// keys are single-use, so each browser opens one push.
struct Browser {
    private: Option<agreement::EphemeralPrivateKey>,
    public: Vec<u8>,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let private = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).expect("a key");
        let public = private.compute_public_key().expect("its public key").as_ref().to_vec();
        let mut auth = [0u8; 16];
        ring::rand::SecureRandom::fill(&rng, &mut auth).expect("random bytes");
        Self { private: Some(private), public, auth }
    }

    fn subscription(&self, endpoint: &str) -> Value {
        json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {"p256dh": URL_SAFE_NO_PAD.encode(&self.public), "auth": URL_SAFE_NO_PAD.encode(self.auth)},
            "device": "Test browser",
        })
    }

    /// RFC 8291 §3.4 and RFC 8188, the receiving side: the plaintext of an `aes128gcm` body.
    fn open(&mut self, body: &[u8]) -> Vec<u8> {
        assert!(body.len() > 86, "a header and a record");
        let (salt, rest) = body.split_at(16);
        assert_eq!(u32::from_be_bytes(rest[..4].try_into().expect("rs")), 4096, "record size");
        assert_eq!(rest[4], 65, "idlen: the sender's public key");
        let (as_public, record) = rest[5..].split_at(65);
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, as_public.to_vec());
        let private = self.private.take().expect("a browser opens one push");
        let ecdh = agreement::agree_ephemeral(private, &peer, <[u8]>::to_vec).expect("ECDH");
        let expand = |prk: &hkdf::Prk, info: &[&[u8]], out: &mut [u8]| {
            struct Len(usize);
            impl hkdf::KeyType for Len {
                fn len(&self) -> usize {
                    self.0
                }
            }
            prk.expand(info, Len(out.len())).expect("expand").fill(out).expect("fill");
        };
        let mut ikm = [0u8; 32];
        expand(&hkdf::Salt::new(hkdf::HKDF_SHA256, &self.auth).extract(&ecdh), &[b"WebPush: info\0".as_slice(), self.public.as_slice(), as_public], &mut ikm);
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        expand(&prk, &[b"Content-Encoding: aes128gcm\0".as_slice()], &mut cek);
        expand(&prk, &[b"Content-Encoding: nonce\0".as_slice()], &mut nonce);
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek).expect("a key"));
        let mut record = record.to_vec();
        let plain = key.open_in_place(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::empty(), &mut record).expect("authentic");
        let end = plain.iter().rposition(|&b| b != 0).expect("a delimiter");
        assert_eq!(plain[end], 2, "the last record's delimiter");
        plain[..end].to_vec()
    }
}

async fn subscribe(app: &TestApp, token: &str, browser: &Browser, endpoint: &str) -> PushSubscription {
    let response = app.post_json("/api/push/subscriptions", &browser.subscription(endpoint), Some(token)).await;
    assert_eq!(response.status(), 201);
    body(response).await
}

async fn deliveries(app: &TestApp) -> u64 {
    push_deliveries::Entity::find().count(&app.state().db.conn).await.expect("the push outbox")
}

/// Pushes are queued after the sender's answer: waits until the outbox holds `n`.
async fn wait_for_deliveries(app: &TestApp, n: u64) {
    within(&format!("{n} queued pushes"), async {
        while deliveries(app).await < n {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_browser_stores_lists_and_removes_its_subscription_and_bad_ones_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let key: PushKey = body(app.get("/api/push/key", None).await).await;
    assert_eq!(URL_SAFE_NO_PAD.decode(&key.public_key).map(|k| (k.len(), k[0])).ok(), Some((65, 4)));
    let me = app.signup_and_login(&unique("pusher")).await;
    let other = app.signup_and_login(&unique("other")).await;
    let browser = Browser::new();
    let endpoint = "http://127.0.0.1:9/push/one";
    let first = subscribe(&app, &me.access_token, &browser, endpoint).await;
    assert_eq!((first.service.as_str(), first.device.as_deref(), first.last_push_at), ("http://127.0.0.1:9", Some("Test browser"), None));
    // The same endpoint again is the same row, not a second one.
    let again = subscribe(&app, &me.access_token, &Browser::new(), endpoint).await;
    assert_eq!(again.id, first.id);
    let listed: Vec<PushSubscription> = body(app.get("/api/push/subscriptions", Some(&me.access_token)).await).await;
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [first.id]);

    let good = browser.subscription(endpoint);
    let mut bad_cases = vec![
        ("endpoint", json!("ftp://127.0.0.1/push")),
        ("endpoint", json!(format!("https://push.example.com/{}", "a".repeat(2000)))),
        ("keys.p256dh", json!({"p256dh": URL_SAFE_NO_PAD.encode([4u8; 64]), "auth": good["keys"]["auth"]})),
        ("keys.p256dh", json!({"p256dh": URL_SAFE_NO_PAD.encode([3u8; 65]), "auth": good["keys"]["auth"]})),
        ("keys.p256dh", json!({"p256dh": "not base64!", "auth": good["keys"]["auth"]})),
        ("keys.auth", json!({"p256dh": good["keys"]["p256dh"], "auth": URL_SAFE_NO_PAD.encode([1u8; 15])})),
        ("device", json!("x".repeat(65))),
    ];
    for (field, value) in bad_cases.drain(..) {
        let mut sent = good.clone();
        let slot = if field.starts_with("keys.") { "keys" } else { field };
        sent[slot] = value;
        let refused = problem(app.post_json("/api/push/subscriptions", &sent, Some(&me.access_token)).await, 422).await;
        assert_eq!(refused.field.as_deref(), Some(field), "{sent}");
    }
    assert_eq!(app.post_json("/api/push/subscriptions", &good, None).await.status(), 401);

    // Someone else's subscription is not theirs to remove; one's own is.
    let path = format!("/api/push/subscriptions/{}", first.id);
    assert_eq!(app.request(reqwest::Method::DELETE, &path, Some(&other.access_token), None::<&()>).await.status(), 404);
    assert_eq!(app.request(reqwest::Method::DELETE, &path, Some(&me.access_token), None::<&()>).await.status(), 204);
    assert_eq!(app.request(reqwest::Method::DELETE, &path, Some(&me.access_token), None::<&()>).await.status(), 404);
    let listed: Vec<PushSubscription> = body(app.get("/api/push/subscriptions", Some(&me.access_token)).await).await;
    assert!(listed.is_empty());
}

#[tokio::test]
async fn one_account_keeps_at_most_twenty_subscriptions() {
    let app = spawn_app().await;
    let me = app.signup_and_login(&unique("devices")).await;
    let browser = Browser::new();
    for n in 0..confab_shared::push::MAX_PUSH_SUBSCRIPTIONS {
        subscribe(&app, &me.access_token, &browser, &format!("http://127.0.0.1:9/push/{n}")).await;
    }
    let one_more = app.post_json("/api/push/subscriptions", &browser.subscription("http://127.0.0.1:9/push/last"), Some(&me.access_token)).await;
    let refused = problem(one_more, 422).await;
    assert_eq!(refused.field.as_deref(), Some("endpoint"));
    // An endpoint already stored may still be posted again (new keys).
    subscribe(&app, &me.access_token, &browser, "http://127.0.0.1:9/push/0").await;
}

#[tokio::test]
async fn push_endpoints_must_be_https_to_public_addresses_unless_private_ones_are_allowed() {
    let app = spawn_app_with(|c| c.webhook_allow_private = false).await;
    let me = app.signup_and_login(&unique("strict")).await;
    let browser = Browser::new();
    for endpoint in ["http://push.example.com/push/1", "https://127.0.0.1/push/1", "https://localhost/push/1", "https://10.1.2.3/push/1"] {
        let refused = problem(app.post_json("/api/push/subscriptions", &browser.subscription(endpoint), Some(&me.access_token)).await, 422).await;
        assert_eq!(refused.field.as_deref(), Some("endpoint"), "{endpoint}");
    }
    subscribe(&app, &me.access_token, &browser, "https://push.example.com/push/1").await;
}

#[tokio::test]
async fn a_dm_to_someone_with_no_connection_reaches_their_push_service_encrypted_and_signed() {
    let app = spawn_app().await;
    let (service, addr) = PushService::start(&[]).await;
    let key: PushKey = body(app.get("/api/push/key", None).await).await;
    let (alice, alice_name) = {
        let name = unique("alice");
        (app.signup_and_login(&name).await, name)
    };
    let bob_name = unique("bob");
    let bob = app.signup_and_login(&bob_name).await;
    let carol_name = unique("carol");
    let carol = app.signup_and_login(&carol_name).await;
    let mut bob_browser = Browser::new();
    let carol_browser = Browser::new();
    subscribe(&app, &bob.access_token, &bob_browser, &format!("http://{addr}/push/bob")).await;
    subscribe(&app, &carol.access_token, &carol_browser, &format!("http://{addr}/push/carol")).await;

    // Carol has a tab open: her message arrives there, and nothing is queued for her browser.
    let mut carol_ws = app.ws(&carol.access_token).await;
    // An answer on Carol's socket: her connection is counted by then (before any frame is read).
    carol_ws.ok(confab_shared::rpc::DmHistoryParams { with: alice_name.clone(), before: None, limit: None }).await;
    let mut alice_ws = app.ws(&alice.access_token).await;
    alice_ws.ok(dm(&carol_name, "you are online")).await;
    carol_ws.next_notification("dm.message").await;
    assert_eq!(deliveries(&app).await, 0, "someone with a connection gets no push");

    let long = format!("lunch? {}", "x".repeat(300));
    let sent = alice_ws.ok(dm(&bob_name, &long)).await;
    let hits = service.wait_for(1).await;
    let hit = &hits[0];
    assert_eq!(hit.path, "/push/bob");
    let header = |name: &str| hit.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(header("content-encoding"), "aes128gcm");
    assert_eq!(header("urgency"), "high");
    let ttl: u64 = header("ttl").parse().expect("a TTL in seconds");
    assert!((1..=86_400).contains(&ttl), "TTL {ttl}");
    let topic = header("topic");
    assert!(topic.len() <= 32 && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "Topic {topic}");

    // VAPID (RFC 8292): an ES256 JWT for the push service's origin, signed by the key the
    // web app subscribes with.
    let authorization = header("authorization");
    let (jwt, k) = authorization.strip_prefix("vapid t=").and_then(|rest| rest.split_once(", k=")).expect("vapid t=…, k=…");
    assert_eq!(k, key.public_key);
    let (signed, signature) = jwt.rsplit_once('.').expect("a JWT");
    let public = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, URL_SAFE_NO_PAD.decode(k).expect("base64url"));
    public.verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).expect("base64url")).expect("signed with the VAPID key");
    let part = |n: usize| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signed.split('.').nth(n).expect("a part")).expect("base64url")).expect("JSON") };
    assert_eq!(part(0)["alg"], "ES256");
    let claims = part(1);
    assert_eq!(claims["aud"], format!("http://{addr}"));
    let exp = claims["exp"].as_i64().expect("exp");
    let now = chrono::Utc::now().timestamp();
    assert!(exp > now && exp <= now + 24 * 3600, "exp within a day: {exp}");
    assert_eq!(claims["sub"], "mailto:admin@localhost");

    // The body opens with Bob's browser's private key.
    let message: PushMessage = serde_json::from_slice(&bob_browser.open(&hit.body)).expect("a PushMessage");
    assert_eq!(message.kind, PushKind::Dm);
    assert_eq!((message.conversation.as_str(), message.from.as_str()), (alice_name.as_str(), alice_name.as_str()));
    assert_eq!(message.url, format!("/dm/{alice_name}"));
    assert!(message.preview.starts_with("lunch? xxx") && message.preview.ends_with('…') && message.preview.chars().count() == 141, "{}", message.preview);
    assert!(hit.body.len() < 4096, "{} bytes", hit.body.len());
    assert_eq!(sent.text, long);

    // Once delivered, the list shows when the device last got a push.
    within("last_push_at", async {
        loop {
            let listed: Vec<PushSubscription> = body(app.get("/api/push/subscriptions", Some(&bob.access_token)).await).await;
            if listed.first().is_some_and(|s| s.last_push_at.is_some()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_push_service_answering_410_removes_the_subscription() {
    let app = spawn_app().await;
    let (service, addr) = PushService::start(&[410]).await;
    let alice = app.signup_and_login(&unique("alice")).await;
    let bob_name = unique("bob");
    let bob = app.signup_and_login(&bob_name).await;
    subscribe(&app, &bob.access_token, &Browser::new(), &format!("http://{addr}/push/gone")).await;
    let mut alice_ws = app.ws(&alice.access_token).await;
    alice_ws.ok(dm(&bob_name, "are you there?")).await;
    service.wait_for(1).await;
    within("the subscription to be removed", async {
        loop {
            let listed: Vec<PushSubscription> = body(app.get("/api/push/subscriptions", Some(&bob.access_token)).await).await;
            if listed.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(deliveries(&app).await, 0, "its pushes went with it");
}

#[tokio::test]
async fn a_push_service_that_is_down_is_retried_until_it_takes_the_push() {
    let app = spawn_app().await;
    // A port nothing listens on yet; the push service comes up there after a failed attempt.
    let parked = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = parked.local_addr().expect("an address");
    drop(parked);
    let alice = app.signup_and_login(&unique("alice")).await;
    let bob_name = unique("bob");
    let bob = app.signup_and_login(&bob_name).await;
    let mut browser = Browser::new();
    subscribe(&app, &bob.access_token, &browser, &format!("http://{addr}/push/later")).await;
    let mut alice_ws = app.ws(&alice.access_token).await;
    alice_ws.ok(dm(&bob_name, "ping")).await;
    within("a failed attempt", async {
        loop {
            let rows = push_deliveries::Entity::find().all(&app.state().db.conn).await.expect("the outbox");
            if rows.iter().any(|d| d.attempts >= 1 && d.status == "pending" && d.error.is_some()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    // 503 once more, then it takes the push.
    let listener = tokio::net::TcpListener::bind(addr).await.expect("the same port");
    let service = PushService::serve(listener, &[503]);
    let hits = service.wait_for(2).await;
    let message: PushMessage = serde_json::from_slice(&browser.open(&hits[1].body)).expect("a PushMessage");
    assert_eq!(message.preview, "ping");
}

#[tokio::test]
async fn one_conversation_pushes_at_most_once_per_coalescing_window() {
    let app = spawn_app_with(|c| c.push_coalesce_secs = 3600).await;
    let (_service, addr) = PushService::start(&[]).await;
    let alice = app.signup_and_login(&unique("alice")).await;
    let dave = app.signup_and_login(&unique("dave")).await;
    let bob_name = unique("bob");
    let bob = app.signup_and_login(&bob_name).await;
    subscribe(&app, &bob.access_token, &Browser::new(), &format!("http://{addr}/push/bob")).await;
    let mut alice_ws = app.ws(&alice.access_token).await;
    let mut dave_ws = app.ws(&dave.access_token).await;
    for text in ["one", "two", "three"] {
        alice_ws.ok(dm(&bob_name, text)).await;
    }
    // Pushes are queued in order, after the answers: once Dave's (another conversation) is
    // there, Alice's three have been looked at.
    dave_ws.ok(dm(&bob_name, "another conversation")).await;
    wait_for_deliveries(&app, 2).await;
    let topics: Vec<String> = push_deliveries::Entity::find().all(&app.state().db.conn).await.expect("the outbox").into_iter().map(|d| d.topic).collect();
    assert_eq!(topics.len(), 2, "Alice's conversation pushed once, Dave's once: {topics:?}");
    assert_ne!(topics[0], topics[1]);
}

#[tokio::test]
async fn a_mention_of_someone_with_no_connection_pushes_to_them_unless_they_keep_the_room_quiet() {
    let app = spawn_app().await;
    let (service, addr) = PushService::start(&[]).await;
    let room = unique("lobby");
    let (alice, mut alice_ws) = app.user_online("alice").await;
    let alice_name = alice.user.username.clone();
    alice_ws.ok(join(&room)).await;
    let bob_name = unique("bob");
    let bob = app.signup_and_login(&bob_name).await;
    let mut bob_browser = Browser::new();
    subscribe(&app, &bob.access_token, &bob_browser, &format!("http://{addr}/push/bob")).await;

    let sent = alice_ws.ok(send(&room, &format!("@{bob_name} standup in 5"))).await;
    let hits = service.wait_for(1).await;
    assert_eq!(hits[0].path, "/push/bob");
    let message: PushMessage = serde_json::from_slice(&bob_browser.open(&hits[0].body)).expect("a PushMessage");
    assert_eq!(message.kind, PushKind::Mention);
    assert_eq!((message.conversation.as_str(), message.from.as_str()), (room.as_str(), alice_name.as_str()));
    assert_eq!((message.url, message.preview), (format!("/rooms/{room}"), sent.text.clone()));

    // Carol keeps the room quiet: a mention there pushes nothing; a private message still
    // does (pushes are queued in order, so once it arrives the mention was passed over).
    let carol_name = unique("carol");
    let carol = app.signup_and_login(&carol_name).await;
    let mut carol_browser = Browser::new();
    subscribe(&app, &carol.access_token, &carol_browser, &format!("http://{addr}/push/carol")).await;
    let quiet = app.request(reqwest::Method::PUT, &format!("/api/rooms/{room}/quiet"), Some(&carol.access_token), Some(&json!({"quiet": true}))).await;
    assert_eq!(quiet.status(), 200);
    alice_ws.ok(send(&room, &format!("@{carol_name} are you there?"))).await;
    alice_ws.ok(dm(&carol_name, "psst")).await;
    let hits = service.wait_for(2).await;
    assert_eq!(hits[1].path, "/push/carol");
    let message: PushMessage = serde_json::from_slice(&carol_browser.open(&hits[1].body)).expect("a PushMessage");
    assert_eq!((message.kind, message.preview.as_str()), (PushKind::Dm, "psst"), "the quiet room's mention pushed nothing");

    // An edit that mentions someone for the first time pushes to them.
    let dave_name = unique("dave");
    let dave = app.signup_and_login(&dave_name).await;
    let mut dave_browser = Browser::new();
    subscribe(&app, &dave.access_token, &dave_browser, &format!("http://{addr}/push/dave")).await;
    alice_ws.ok(confab_shared::rpc::EditParams { id: sent.id, text: format!("@{bob_name} @{dave_name} standup in 5") }).await;
    let hits = service.wait_for(3).await;
    assert_eq!(hits[2].path, "/push/dave", "Bob was mentioned before: only Dave hears of the edit");
    let message: PushMessage = serde_json::from_slice(&dave_browser.open(&hits[2].body)).expect("a PushMessage");
    assert_eq!((message.kind, message.conversation.as_str()), (PushKind::Mention, room.as_str()));
}
