//! Backend hooks (`CONFAB_HOOK_URL`): the team's backend, a small HTTP server in the test,
//! decides before a connect, a join or a send goes through. It checks every request's
//! signature with its own HMAC, records what it was asked, and answers by a rule the test
//! sets: allow, deny, replace the text, add rooms, stall past the timeout, or be down.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use confab_shared::hooks::HookName;
use confab_shared::rpc::{DmSendParams, SendParams};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::helpers::*;

/// What the backend answers to one request (by its JSON body): status and body, after a
/// pause in milliseconds.
type Rule = Box<dyn Fn(&Value) -> (u16, Value, u64) + Send + Sync>;

struct Backend {
    secret: String,
    rule: Rule,
    asked: Mutex<Vec<Value>>,
    badly_signed: Mutex<usize>,
}

async fn answer(State(b): State<Arc<Backend>>, headers: HeaderMap, body: String) -> axum::response::Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let key = base64::engine::general_purpose::STANDARD.decode(b.secret.trim_start_matches("whsec_")).expect("a base64 secret");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{}.{}.{}", header("webhook-id"), header("webhook-timestamp"), body).as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    if header("webhook-signature") != expected || !header("webhook-id").starts_with("hook_") {
        *b.badly_signed.lock().expect("not poisoned") += 1;
    }
    let request: Value = serde_json::from_str(&body).expect("a JSON body");
    b.asked.lock().expect("not poisoned").push(request.clone());
    let (status, reply, pause_ms) = (b.rule)(&request);
    if pause_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
    }
    (StatusCode::from_u16(status).expect("a status"), axum::Json(reply)).into_response()
}

impl Backend {
    async fn start(rule: impl Fn(&Value) -> (u16, Value, u64) + Send + Sync + 'static) -> (Arc<Self>, SocketAddr) {
        let backend = Arc::new(Self { secret: confab::signing::new_secret(), rule: Box::new(rule), asked: Mutex::default(), badly_signed: Mutex::default() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        let router = axum::Router::new().route("/hooks", axum::routing::post(answer)).with_state(backend.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (backend, addr)
    }

    fn asked(&self) -> Vec<Value> {
        self.asked.lock().expect("not poisoned").clone()
    }

    fn asked_for(&self, hook: &str) -> Vec<Value> {
        self.asked().into_iter().filter(|r| r["hook"] == hook).collect()
    }
}

/// A server whose `hooks` ask `backend` (at `addr`), with `policy` on errors.
async fn app_asking(backend: &Backend, addr: SocketAddr, hooks: &[HookName], policy: &str) -> TestApp {
    let secret = backend.secret.clone();
    let hooks = hooks.to_vec();
    let policy = confab::config::HookOnError::parse(policy).expect("a policy");
    spawn_app_with(move |c| {
        c.hook_url = Some(format!("http://{addr}/hooks"));
        c.hooks = hooks;
        c.hook_secret = Some(secret);
        c.hook_on_error = policy;
        c.hook_timeout_ms = 300;
    })
    .await
}

fn allow() -> (u16, Value, u64) {
    (200, json!({ "result": "allow" }), 0)
}

fn deny(reason: &str) -> (u16, Value, u64) {
    (200, json!({ "result": "deny", "reason": reason }), 0)
}

fn assert_denied(err: &confab_shared::rpc::ErrorObject, hook: &str, reason: &str) {
    assert_code(err, -32003);
    assert_eq!(err.data, Some(json!({ "reason": reason, "hook": hook })), "{err:?}");
}

#[tokio::test]
async fn a_denied_send_is_refused_with_the_backends_reason_and_nothing_is_stored_or_delivered() {
    let (backend, addr) = Backend::start(|r| if r["params"]["text"].as_str().is_some_and(|t| t.contains("spam")) { deny("no spam here") } else { allow() }).await;
    let app = app_asking(&backend, addr, &[HookName::RoomSend], "deny").await;
    let room = unique("hooked");
    let (_, mut ann) = app.user_online("ann").await;
    let (_, mut bob) = app.user_online("bob").await;
    ann.ok(join(&room)).await;
    bob.ok(join(&room)).await;

    let refused = ann.fail(send(&room, "  buy spam now ")).await;
    assert_denied(&refused, "room.send", "no spam here");
    let sent = ann.ok(send(&room, "hello")).await;
    let heard = bob.next_notification("room.message").await;
    assert_eq!((heard["id"].as_i64(), heard["text"].as_str()), (Some(sent.id), Some("hello")), "the first message bob hears is the allowed one");
    let stored = ann.ok(history(&room, None, Some(50))).await;
    assert_eq!(stored.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["hello"]);

    // What the backend was asked: the typed request, with the text as it would be stored.
    let asked = backend.asked_for("room.send");
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0]["params"], json!({ "room": room, "text": "buy spam now" }));
    assert_eq!(asked[0]["user"]["admin"], false);
    assert_eq!(asked[0]["user"]["issuer"], Value::Null);
    assert!(asked[0]["user"]["username"].as_str().is_some_and(|u| u.starts_with("ann")), "{}", asked[0]);
    assert_eq!(*backend.badly_signed.lock().expect("not poisoned"), 0, "every request carries a valid Standard Webhooks signature");
}

#[tokio::test]
async fn a_backend_may_replace_the_text_and_a_retry_returns_the_stored_message_without_asking_again() {
    let (backend, addr) = Backend::start(|r| {
        let text = r["params"]["text"].as_str().unwrap_or_default().replace("darn", "d**n");
        (200, json!({ "result": "allow", "text": text }), 0)
    })
    .await;
    let app = app_asking(&backend, addr, &[HookName::RoomSend, HookName::DmSend], "deny").await;
    let room = unique("replaced");
    let (_, mut ann) = app.user_online("ann").await;
    let (bob_tokens, mut bob) = app.user_online("bob").await;
    ann.ok(join(&room)).await;
    bob.ok(join(&room)).await;

    let params = SendParams { room: room.clone(), text: "darn it".into(), nonce: Some("n-1".into()) };
    let first = ann.ok(params.clone()).await;
    assert_eq!(first.text, "d**n it");
    assert_eq!(bob.next_notification("room.message").await["text"], "d**n it");
    let again = ann.ok(params).await;
    assert_eq!((again.id, again.text.as_str()), (first.id, "d**n it"));
    assert_eq!(backend.asked_for("room.send").len(), 1, "the retry was answered from the stored message");

    let bob_name = claims_of(&bob_tokens.access_token)["name"].as_str().expect("a username").to_owned();
    let dm = DmSendParams { to: bob_name, text: "darn late".into(), nonce: Some("d-1".into()) };
    let delivered = ann.ok(dm.clone()).await;
    assert_eq!(delivered.text, "d**n late");
    assert_eq!(bob.next_notification("dm.message").await["text"], "d**n late");
    assert_eq!(ann.ok(dm).await.id, delivered.id);
    assert_eq!(backend.asked_for("dm.send").len(), 1);
}

#[tokio::test]
async fn a_replacement_that_breaks_the_message_rules_counts_as_a_failed_hook() {
    let (backend, addr) = Backend::start(|_| (200, json!({ "result": "allow", "text": "   " }), 0)).await;
    let app = app_asking(&backend, addr, &[HookName::RoomSend], "deny").await;
    let room = unique("blank");
    let (_, mut ann) = app.user_online("ann").await;
    ann.ok(join(&room)).await;
    let refused = ann.fail(send(&room, "hello")).await;
    assert_denied(&refused, "room.send", "the application could not be asked; try again later");
    assert!(ann.ok(history(&room, None, Some(10))).await.is_empty());
}

#[tokio::test]
async fn a_backend_that_stalls_fails_or_is_down_is_decided_by_each_hooks_policy() {
    // room.send stalls past the timeout, dm.send answers 500.
    let (backend, addr) = Backend::start(|r| match r["hook"].as_str() {
        Some("room.send") => (200, json!({ "result": "deny", "reason": "too late to matter" }), 3_000),
        _ => (500, json!({}), 0),
    })
    .await;
    let denying = app_asking(&backend, addr, &[HookName::RoomSend, HookName::DmSend], "deny").await;
    let room = unique("stalled");
    let (_, mut ann) = denying.user_online("ann").await;
    let (bob_tokens, _bob) = denying.user_online("bob").await;
    let bob = claims_of(&bob_tokens.access_token)["name"].as_str().expect("a username").to_owned();
    ann.ok(join(&room)).await;
    assert_denied(&ann.fail(send(&room, "hello")).await, "room.send", "the application could not be asked; try again later");
    let dm = DmSendParams { to: bob.clone(), text: "hi".into(), nonce: None };
    assert_denied(&ann.fail(dm.clone()).await, "dm.send", "the application could not be asked; try again later");
    assert!(ann.ok(history(&room, None, Some(10))).await.is_empty(), "nothing stored on a failed hook that denies");

    // The same failures under `allow` let the calls through, unchanged.
    let allowing = app_asking(&backend, addr, &[HookName::RoomSend, HookName::DmSend], "deny,room.send=allow,dm.send=allow").await;
    let (_, mut cat) = allowing.user_online("cat").await;
    let (dan_tokens, _dan) = allowing.user_online("dan").await;
    cat.ok(join(&room)).await;
    assert_eq!(cat.ok(send(&room, "through")).await.text, "through");
    let dan = claims_of(&dan_tokens.access_token)["name"].as_str().expect("a username").to_owned();
    assert_eq!(cat.ok(DmSendParams { to: dan, text: "hi".into(), nonce: None }).await.text, "hi");

    // A backend nobody listens on: the policy again, and the metrics count each outcome.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let down = closed.local_addr().expect("an address");
    drop(closed);
    let app = app_asking(&backend, down, &[HookName::RoomSend], "deny").await;
    let (_, mut eve) = app.user_online("eve").await;
    let room = unique("down");
    eve.ok(join(&room)).await;
    assert_denied(&eve.fail(send(&room, "anyone?")).await, "room.send", "the application could not be asked; try again later");
    let metrics = text(app.get("/metrics", None).await).await;
    assert!(metrics.contains("confab_hook_requests_total{hook=\"room.send\",outcome=\"failed_deny\"} 1\n"), "{metrics}");
    assert!(metrics.contains("confab_hook_duration_seconds_count{hook=\"room.send\"} 1\n"), "{metrics}");
}

#[tokio::test]
async fn the_connect_hook_refuses_an_upgrade_with_403_or_adds_rooms_to_join() {
    let room = unique("lobby");
    let picked = room.clone();
    let (backend, addr) = Backend::start(move |r| match &r["user"] {
        Value::Null => deny("sign in first"),
        _ => (200, json!({ "result": "allow", "rooms": [picked] }), 0),
    })
    .await;
    let app = app_asking(&backend, addr, &[HookName::Connect], "deny").await;
    let (status, body) = app.ws_refused(app.ws_request()).await;
    assert_eq!(status, 403);
    let problem: Value = serde_json::from_str(&body).expect("problem+json");
    assert_eq!(problem["detail"], "refused by the application: sign in first");

    let tokens = app.signup_and_login(&unique("ann")).await;
    let name = claims_of(&tokens.access_token)["name"].as_str().expect("a username").to_owned();
    let mut ann = app.ws(&tokens.access_token).await;
    ann.ok(confab_shared::rpc::EchoParams { text: "first answer".into() }).await;
    let (_, mut bob) = app.user_online("bob").await;
    let joined = bob.ok(join(&room)).await;
    assert!(joined.online.contains(&name), "the hook put {name} in {room}: {:?}", joined.online);
    let asked = backend.asked_for("connect");
    assert_eq!(asked.last().map(|r| r["params"].clone()), Some(json!({ "rooms": [] })));
}

#[tokio::test]
async fn the_join_hook_is_asked_once_per_room_and_its_deny_names_the_reason() {
    let (backend, addr) = Backend::start(|r| if r["params"]["room"].as_str().is_some_and(|n| n.starts_with("staff")) { deny("staff only") } else { allow() }).await;
    let app = app_asking(&backend, addr, &[HookName::RoomJoin], "deny").await;
    let (_, mut ann) = app.user_online("ann").await;
    assert_denied(&ann.fail(join(&unique("staff"))).await, "room.join", "staff only");
    let open = unique("open");
    ann.ok(join(&open)).await;
    ann.ok(join(&open)).await;
    assert_eq!(backend.asked_for("room.join").len(), 2, "the second join of the same room was not asked");
    // Rooms that were refused were not created either.
    let rooms = ann.ok(confab_shared::rpc::RoomsListParams::default()).await;
    assert!(rooms.rooms.iter().all(|r| !r.name.starts_with("staff")), "{:?}", rooms.rooms);
}

#[tokio::test]
async fn a_server_without_hooks_never_calls_out() {
    let (backend, _addr) = Backend::start(|_| deny("never")).await;
    let app = spawn_app().await;
    let room = unique("plain");
    let (_, mut ann) = app.user_online("ann").await;
    ann.ok(join(&room)).await;
    ann.ok(send(&room, "hello")).await;
    assert!(backend.asked().is_empty());
    assert!(!text(app.get("/metrics", None).await).await.contains("confab_hook_"));
}

#[tokio::test]
async fn an_edit_is_asked_too_so_a_message_cannot_be_edited_past_the_backend() {
    let (backend, addr) = Backend::start(|r| match r["params"]["text"].as_str() {
        Some(t) if t.contains("spam") => deny("no spam here"),
        Some(t) => (200, json!({ "result": "allow", "text": t.replace("darn", "d**n") }), 0),
        None => allow(),
    })
    .await;
    let app = app_asking(&backend, addr, &[HookName::RoomSend, HookName::MessageEdit], "deny").await;
    let room = unique("edited");
    let (_, mut ann) = app.user_online("ann").await;
    ann.ok(join(&room)).await;
    let sent = ann.ok(send(&room, "fine")).await;
    let refused = ann.fail(confab_shared::rpc::EditParams { id: sent.id, text: "now spam".into() }).await;
    assert_denied(&refused, "message.edit", "no spam here");
    let edited = ann.ok(confab_shared::rpc::EditParams { id: sent.id, text: "darn fine".into() }).await;
    assert_eq!(edited.text, "d**n fine");
    let asked = backend.asked_for("message.edit");
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0]["room"], json!(room));
    assert_eq!(asked[0]["params"], json!({ "id": sent.id, "text": "now spam" }));
    let stored = ann.ok(history(&room, None, Some(10))).await;
    assert_eq!(stored.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["d**n fine"]);
}
