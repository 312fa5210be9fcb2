//! Webhooks: every event reaches a receiver on 127.0.0.1 signed as Standard Webhooks says
//! (checked here with an HMAC of our own), failed attempts are retried in order per room,
//! nothing is lost across a restart, failures disable the webhook and tell the admins, and
//! private destinations are refused unless allowed. A `room.message` event is in the outbox
//! as soon as its send is answered (same transaction: a batch whose outbox rows fail stores
//! nothing), and `https://` receivers are verified against the configured CA.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use confab_shared::webhooks::{Webhook, WebhookCreated, WebhookDelivery};
use confab_shared::{Message, TokenPair};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::helpers::{TestApp, body, dm, join, problem, send, spawn_app, spawn_app_with, unique, within};

/// What the receiver answers, one per request; 200 once the script runs out.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Never answers (until the client gives up).
    Hang,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Hit {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    arrived: Arc<Notify>,
}

impl Receiver {
    fn new(script: &[Answer]) -> (Self, axum::Router) {
        let receiver = Receiver::default();
        receiver.script.lock().expect("the script").extend(script.iter().copied());
        let app = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(receiver.clone());
        (receiver, app)
    }

    /// Starts a receiver on 127.0.0.1; returns it and its URL.
    async fn start(script: &[Answer]) -> (Self, String) {
        let (receiver, app) = Self::new(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr: SocketAddr = listener.local_addr().expect("an address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, format!("http://{addr}/hook"))
    }

    /// Starts a receiver serving TLS on 127.0.0.1 with a fresh self-signed certificate for
    /// that address; returns it, its `https://` URL and the certificate (PEM).
    async fn start_tls() -> (Self, String, String) {
        use tokio_rustls::rustls;
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("a certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key)
            .expect("a server configuration");
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr: SocketAddr = tcp.local_addr().expect("an address");
        let listener = TlsListener { tcp, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) };
        let (receiver, app) = Self::new(&[]);
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, format!("https://{addr}/hook"), made.cert.pem())
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("the hits").clone()
    }

    /// Waits until at least `n` requests arrived; returns them all.
    async fn wait_for(&self, n: usize) -> Vec<Hit> {
        within(&format!("{n} webhook requests"), async {
            loop {
                let arrived = self.arrived.notified();
                let hits = self.hits();
                if hits.len() >= n {
                    return hits;
                }
                arrived.await;
            }
        })
        .await
    }
}

/// TLS over a TCP listener, for `axum::serve`; failed handshakes are dropped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn hook(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let hit = Hit { id: header("webhook-id"), timestamp: header("webhook-timestamp"), signature: header("webhook-signature"), body };
    receiver.hits.lock().expect("the hits").push(hit);
    receiver.arrived.notify_waiters();
    let answer = receiver.script.lock().expect("the script").pop_front().unwrap_or(Answer::Status(200));
    match answer {
        Answer::Status(code) => StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK
        }
    }
}

/// The Standard Webhooks check, written here independently of the server's code.
fn verify(secret: &str, hit: &Hit) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("a whsec_ secret")).expect("base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("a key");
    mac.update(format!("{}.{}.{}", hit.id, hit.timestamp, hit.body).as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    hit.signature.split(' ').any(|sig| sig.strip_prefix("v1,") == Some(expected.as_str()))
}

async fn register(app: &TestApp, admin: &TokenPair, request: Value) -> WebhookCreated {
    let response = app.post_json("/api/webhooks", &request, Some(&admin.access_token)).await;
    assert_eq!(response.status().as_u16(), 201, "webhook registration");
    body(response).await
}

async fn deliveries(app: &TestApp, admin: &TokenPair, id: i64) -> Vec<WebhookDelivery> {
    body(app.get(&format!("/api/webhooks/{id}/deliveries"), Some(&admin.access_token)).await).await
}

#[tokio::test]
async fn every_event_arrives_with_a_signature_an_independent_hmac_verifies() {
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let (receiver, url) = Receiver::start(&[]).await;
    let events = ["room.message", "dm.message", "message.edited", "message.deleted", "user.signed_up"];
    let hook = register(&app, &admin, json!({ "url": url, "events": events })).await;
    assert!(hook.secret.starts_with("whsec_") && STANDARD.decode(&hook.secret[6..]).expect("base64").len() >= 24);

    let ann = app.signup_and_login(&unique("ann")).await;
    let mut ws = app.ws(&ann.access_token).await;
    let room = unique("hooked");
    ws.ok(join(&room)).await;
    let sent = ws.ok(send(&room, "hello hooks")).await;
    let live: Value = ws.next_notification("room.message").await;
    ws.ok(confab_shared::rpc::EditParams { id: sent.id, text: "hello, hooks".into() }).await;
    ws.ok(confab_shared::rpc::DeleteParams { id: sent.id }).await;
    ws.ok(dm(&admin.user.username, "psst")).await;

    let hits = receiver.wait_for(5).await;
    let types: Vec<String> = hits.iter().map(|h| h.json()["type"].as_str().unwrap_or_default().to_owned()).collect();
    let mut sorted = types.clone();
    sorted.sort();
    let mut want: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    want.sort();
    assert_eq!(sorted, want, "one request per event: {types:?}");
    for hit in &hits {
        assert!(verify(&hook.secret, hit), "signature of {hit:?}");
        assert!(!verify("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", hit), "a wrong key does not verify");
        assert!(hit.id.starts_with("msg_"), "{}", hit.id);
        let ts: i64 = hit.timestamp.parse().expect("Unix seconds");
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 300);
        assert!(hit.json()["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "RFC 3339: {}", hit.body);
    }
    let by_type = |t: &str| hits.iter().find(|h| h.json()["type"] == t).expect("the event").json();
    assert_eq!(by_type("room.message")["data"], live, "the same payload as the socket notification");
    assert_eq!(by_type("message.edited")["data"]["text"], "hello, hooks");
    assert_eq!(by_type("message.deleted")["data"], json!({"id": sent.id, "room": room}));
    assert_eq!(by_type("dm.message")["data"]["text"], "psst");
    assert_eq!(by_type("user.signed_up")["data"]["username"], json!(ann.user.username));
    // Edits come after the message they edit: one room, one order.
    let in_room: Vec<String> = types.into_iter().filter(|t| t.starts_with("room") || t.starts_with("message")).collect();
    assert_eq!(in_room, ["room.message", "message.edited", "message.deleted"]);
}

#[tokio::test]
async fn the_rooms_filter_limits_room_events_only() {
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let (receiver, url) = Receiver::start(&[]).await;
    let watched = unique("watched");
    register(&app, &admin, json!({ "url": url, "events": ["room.message", "dm.message"], "rooms": [watched] })).await;
    let (ann, mut ws) = app.user_online("ann").await;
    let other = unique("other");
    ws.ok(join(&other)).await;
    ws.ok(send(&other, "not for the hook")).await;
    ws.ok(join(&watched)).await;
    ws.ok(send(&watched, "for the hook")).await;
    ws.ok(dm(&admin.user.username, "dms are not room events")).await;

    let hits = receiver.wait_for(2).await;
    tokio::time::sleep(crate::helpers::QUIET).await;
    let mut texts: Vec<String> = receiver.hits().iter().map(|h| h.json()["data"]["text"].as_str().unwrap_or_default().to_owned()).collect();
    // Different rooms (a room, a conversation) are not ordered with each other.
    texts.sort();
    assert_eq!(texts, ["dms are not room events", "for the hook"], "{hits:?}");
    let _ = ann;
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_backoff_and_each_room_stays_in_order() {
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let (receiver, url) = Receiver::start(&[Answer::Status(500), Answer::Status(503)]).await;
    let hook = register(&app, &admin, json!({ "url": url, "events": ["room.message"] })).await;
    let (_ann, mut ws) = app.user_online("ann").await;
    let room = unique("ordered");
    ws.ok(join(&room)).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(ws.ok(send(&room, &format!("m{n}"))).await.id);
    }

    let hits = receiver.wait_for(5).await;
    let order: Vec<i64> = hits.iter().map(|h| h.json()["data"]["id"].as_i64().expect("an id")).collect();
    assert_eq!(order, [ids[0], ids[0], ids[0], ids[1], ids[2]], "the first is retried until it lands, then the rest in order");
    assert_eq!(hits[0].id, hits[2].id, "a retry keeps its webhook-id");
    assert_eq!(hits[0].body, hits[2].body, "and its body");
    let list = within("the deliveries to settle", async {
        loop {
            let list = deliveries(&app, &admin, hook.id).await;
            if list.iter().all(|d| d.status == confab_shared::webhooks::DeliveryStatus::Delivered) {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let first = list.iter().find(|d| d.event_id == hits[0].id).expect("the first delivery");
    assert_eq!((first.attempts, first.http_status), (3, Some(200)));
}

#[tokio::test]
async fn a_restart_between_the_event_and_its_delivery_loses_nothing() {
    let mut app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let (receiver, url) = Receiver::start(&[Answer::Hang]).await;
    register(&app, &admin, json!({ "url": url, "events": ["room.message"] })).await;
    let (_ann, mut ws) = app.user_online("ann").await;
    let room = unique("durable");
    ws.ok(join(&room)).await;
    let sent: Message = ws.ok(send(&room, "survive the restart")).await;
    let first = receiver.wait_for(1).await;
    drop(ws);

    // The attempt is in flight (the receiver never answers it) when the server stops.
    app.restart().await;

    let hits = receiver.wait_for(2).await;
    assert_eq!(hits[1].id, first[0].id, "the same event, delivered after the restart");
    assert_eq!(hits[1].json()["data"]["id"], sent.id);
}

#[tokio::test]
async fn repeated_failures_disable_the_webhook_and_tell_the_admins_and_a_retry_revives_it() {
    let app = spawn_app_with(|c| c.webhook_max_failures = 2).await;
    let admin = app.admin(&unique("root")).await;
    let mut admin_ws = app.ws(&admin.access_token).await;
    admin_ws.ok(confab_shared::rpc::EchoParams { text: "listening".into() }).await;
    let (receiver, url) = Receiver::start(&[Answer::Status(500), Answer::Status(502)]).await;
    let hook = register(&app, &admin, json!({ "url": url, "events": ["dm.message"] })).await;
    let (_ann, mut ws) = app.user_online("ann").await;
    ws.ok(dm(&admin.user.username, "doomed")).await;

    let notice = admin_ws.next_notification("notice").await;
    assert_eq!(notice["payload"]["kind"], "webhook.disabled");
    assert_eq!(notice["payload"]["webhook_id"], hook.id);
    assert_eq!(receiver.hits().len(), 2);
    let listed: Vec<Webhook> = body(app.get("/api/webhooks", Some(&admin.access_token)).await).await;
    assert!(listed[0].disabled_at.is_some(), "{listed:?}");
    let failed = deliveries(&app, &admin, hook.id).await;
    assert_eq!(failed[0].status, confab_shared::webhooks::DeliveryStatus::Failed);
    // Disabled: new events are not even queued.
    ws.ok(dm(&admin.user.username, "while disabled")).await;
    assert_eq!(deliveries(&app, &admin, hook.id).await.len(), 1);

    let path = format!("/api/webhooks/{}/deliveries/{}/retry", hook.id, failed[0].id);
    let retried = app.post_json(&path, &json!({}), Some(&admin.access_token)).await;
    assert_eq!(retried.status().as_u16(), 202);
    let hits = receiver.wait_for(3).await;
    assert_eq!(hits[2].id, hits[0].id);
    let listed: Vec<Webhook> = body(app.get("/api/webhooks", Some(&admin.access_token)).await).await;
    assert!(listed[0].disabled_at.is_none(), "enabled again");
}

#[tokio::test]
async fn a_410_disables_the_webhook_at_once() {
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let (receiver, url) = Receiver::start(&[Answer::Status(410)]).await;
    let hook = register(&app, &admin, json!({ "url": url, "events": ["user.signed_up"] })).await;
    app.signup_and_login(&unique("ann")).await;
    receiver.wait_for(1).await;
    let listed = within("the webhook to be disabled", async {
        loop {
            let listed: Vec<Webhook> = body(app.get("/api/webhooks", Some(&admin.access_token)).await).await;
            if listed[0].disabled_at.is_some() {
                return listed;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(listed[0].disabled_reason.as_deref().is_some_and(|r| r.contains("410")));
    assert_eq!(deliveries(&app, &admin, hook.id).await[0].http_status, Some(410));
}

#[tokio::test]
async fn private_destinations_are_refused_by_default_and_only_admins_manage_webhooks() {
    let app = spawn_app_with(|c| c.webhook_allow_private = false).await;
    let admin = app.admin(&unique("root")).await;
    for url in ["http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://10.0.0.1/", "http://[::1]/", "ftp://example.com/"] {
        let refused = app.post_json("/api/webhooks", &json!({ "url": url, "events": ["room.message"] }), Some(&admin.access_token)).await;
        assert_eq!(problem(refused, 422).await.field.as_deref(), Some("url"), "{url}");
    }
    let ann = app.signup_and_login(&unique("ann")).await;
    let request = json!({ "url": "https://hooks.example.com/x", "events": ["room.message"] });
    assert_eq!(problem(app.post_json("/api/webhooks", &request, Some(&ann.access_token)).await, 403).await.status, 403);
    assert_eq!(problem(app.get("/api/webhooks", Some(&ann.access_token)).await, 403).await.status, 403);
    let empty = app.post_json("/api/webhooks", &json!({ "url": "https://hooks.example.com/x", "events": [] }), Some(&admin.access_token)).await;
    assert_eq!(problem(empty, 422).await.field.as_deref(), Some("events"));
    let request = json!({ "url": "https://hooks.example.com/x", "events": ["room.message", "nope"] });
    let unknown = problem(app.post_json("/api/webhooks", &request, Some(&admin.access_token)).await, 422).await;
    assert_eq!(unknown.field.as_deref(), Some("events[1]"), "the path to the unknown event: {unknown:?}");
}

/// The outbox rows of `room.message` events, as `(webhook id, data.id)`, oldest first.
async fn room_message_rows(app: &TestApp) -> Vec<(i64, i64)> {
    use confab::storage::entity::webhook_deliveries as deliveries;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let rows = deliveries::Entity::find()
        .filter(deliveries::Column::EventType.eq("room.message"))
        .order_by_asc(deliveries::Column::Id)
        .all(&app.state().db.conn)
        .await
        .expect("the outbox is readable");
    rows.into_iter()
        .map(|d| {
            let body: Value = serde_json::from_str(&d.body).expect("a JSON body");
            (d.webhook_id, body["data"]["id"].as_i64().expect("the message id"))
        })
        .collect()
}

#[tokio::test]
async fn a_room_message_is_in_the_outbox_once_its_send_is_acknowledged() {
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    // The receiver never answers: what the outbox holds is all there is to see.
    let (_receiver, url) = Receiver::start(&[Answer::Hang, Answer::Hang]).await;
    let first = register(&app, &admin, json!({ "url": url, "events": ["room.message"] })).await;
    let second = register(&app, &admin, json!({ "url": url, "events": ["room.message", "dm.message"] })).await;
    let (_ann, mut ws) = app.user_online("ann").await;
    let room = unique("outboxed");
    ws.ok(join(&room)).await;
    let sent: Message = ws.ok(send(&room, "in the same transaction")).await;
    let live: Value = ws.next_notification("room.message").await;

    let mut rows = room_message_rows(&app).await;
    rows.sort_unstable();
    assert_eq!(rows, [(first.id, sent.id), (second.id, sent.id)], "one delivery per webhook, there as soon as the send is answered");
    let stored: Vec<String> = {
        use confab::storage::entity::webhook_deliveries as deliveries;
        use sea_orm::EntityTrait;
        deliveries::Entity::find().all(&app.state().db.conn).await.expect("the outbox").into_iter().map(|d| d.body).collect()
    };
    let body: Value = serde_json::from_str(&stored[0]).expect("a JSON body");
    assert_eq!(body["data"], live, "the body carries the socket notification's payload");
    assert_eq!(body["type"], "room.message");
}

#[tokio::test]
async fn a_batch_whose_outbox_rows_cannot_be_written_stores_no_message() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let (receiver, url) = Receiver::start(&[]).await;
    let hook = register(&app, &admin, json!({ "url": url, "events": ["room.message"] })).await;
    let (_ann, mut ws) = app.user_online("ann").await;
    let room = unique("refused");
    ws.ok(join(&room)).await;

    let db = &app.state().db;
    let (refuse, allow) = match db.backend() {
        sea_orm::DbBackend::Postgres => (
            "CREATE FUNCTION refuse_outbox() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_outbox BEFORE INSERT ON webhook_deliveries FOR EACH ROW EXECUTE FUNCTION refuse_outbox();",
            "DROP TRIGGER refuse_outbox ON webhook_deliveries",
        ),
        _ => (
            "CREATE TRIGGER refuse_outbox BEFORE INSERT ON webhook_deliveries BEGIN SELECT RAISE(ABORT, 'outbox refused'); END;",
            "DROP TRIGGER refuse_outbox",
        ),
    };
    db.conn.execute_unprepared(refuse).await.expect("the trigger is created");
    let refused = ws.call(send(&room, "its webhook event cannot be stored")).await;
    assert!(refused.is_err(), "the send fails with its outbox row: {refused:?}");
    db.conn.execute_unprepared(allow).await.expect("the trigger is dropped");

    let kept: Message = ws.ok(send(&room, "stored with its event")).await;
    let history = ws.ok(crate::helpers::history(&room, None, None)).await;
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["stored with its event"], "the refused batch left no message behind");
    assert_eq!(kept.id, history[0].id);
    assert_eq!(room_message_rows(&app).await, [(hook.id, kept.id)]);
    let hits = receiver.wait_for(1).await;
    assert_eq!(hits[0].json()["data"]["id"], kept.id);
}

#[tokio::test]
async fn an_https_destination_signed_by_the_configured_ca_gets_signed_deliveries() {
    let (receiver, url, pem) = Receiver::start_tls().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).expect("the CA file");
    let app = spawn_app_with(|c| c.webhook_ca_file = Some(ca)).await;
    let admin = app.admin(&unique("root")).await;
    let hook = register(&app, &admin, json!({ "url": url, "events": ["user.signed_up"] })).await;
    let ann = app.signup_and_login(&unique("ann")).await;

    let hits = receiver.wait_for(1).await;
    assert!(verify(&hook.secret, &hits[0]), "signature of {:?}", hits[0]);
    assert_eq!(hits[0].json()["data"]["username"], json!(ann.user.username));
}

#[tokio::test]
async fn an_https_destination_with_an_untrusted_certificate_fails_with_the_reason_on_the_delivery() {
    let (receiver, url, _pem) = Receiver::start_tls().await;
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let hook = register(&app, &admin, json!({ "url": url, "events": ["user.signed_up"] })).await;
    app.signup_and_login(&unique("ann")).await;

    let failed = within("the first attempt to fail", async {
        loop {
            if let Some(d) = deliveries(&app, &admin, hook.id).await.into_iter().find(|d| d.attempts >= 1) {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let error = failed.error.unwrap_or_default();
    assert!(error.contains("certificate"), "the error names the certificate: {error}");
    assert_eq!((failed.status, failed.http_status), (confab_shared::webhooks::DeliveryStatus::Pending, None), "retried later");
    assert!(receiver.hits().is_empty(), "nothing reached the receiver");
}
