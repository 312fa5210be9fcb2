//! Open sockets per client address and per user: 429 with `Retry-After` at the upgrade, a
//! place freed when a socket closes, and the client address taken from a forwarding header
//! only when the peer is a trusted proxy (IPv6 counted by its /64).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use confab_shared::Scope;
use confab_shared::rpc::EchoParams;
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Request};
use tokio_tungstenite::tungstenite;

use crate::helpers::{TestApp, WsClient, body, spawn_app_with, unique, within};

/// A raw socket held open (the cap counts it until it is dropped).
type Held = WebSocketStream<TcpStream>;

/// What an upgrade got: a socket, or the refusal's status, `Retry-After` and body.
enum Upgrade {
    Open(Held),
    Refused { status: u16, retry_after: Option<u64>, body: String },
}

/// Opens a socket to `app` from the local address `from` (any of 127.0.0.0/8 works on Linux).
async fn upgrade_from(app: &TestApp, from: IpAddr, request: Request<()>) -> Upgrade {
    let socket = TcpSocket::new_v4().expect("a TCP socket");
    socket.bind(SocketAddr::new(from, 0)).expect("binding a loopback address");
    let stream = within("a TCP connection", socket.connect(app.addr)).await.expect("the server accepts");
    match within("the handshake", tokio_tungstenite::client_async(request, stream)).await {
        Ok((ws, _)) => Upgrade::Open(ws),
        Err(tungstenite::Error::Http(response)) => Upgrade::Refused {
            status: response.status().as_u16(),
            retry_after: response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()),
            body: response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned(),
        },
        Err(other) => panic!("the upgrade failed without an HTTP answer: {other}"),
    }
}

async fn upgrade(app: &TestApp, request: Request<()>) -> Upgrade {
    upgrade_from(app, IpAddr::from([127, 0, 0, 1]), request).await
}

#[track_caller]
fn open(upgrade: Upgrade, what: &str) -> Held {
    match upgrade {
        Upgrade::Open(ws) => ws,
        Upgrade::Refused { status, body, .. } => panic!("{what}: refused with {status}: {body}"),
    }
}

/// The refusal must be a 429 problem with a `Retry-After` in seconds.
#[track_caller]
fn assert_at_cap(upgrade: Upgrade, what: &str) {
    match upgrade {
        Upgrade::Open(_) => panic!("{what}: accepted over the cap"),
        Upgrade::Refused { status, retry_after, body } => {
            assert_eq!(status, 429, "{what}: {body}");
            assert!(body.contains("/problems/rate-limited") && body.contains("too many open sockets"), "{what}: {body}");
            assert!(retry_after.is_some_and(|secs| secs >= 1), "{what}: no Retry-After");
        }
    }
}

/// Retries an upgrade until the server has noticed a closed socket and freed its place.
async fn upgrade_once_freed(app: &TestApp, request: impl Fn() -> Request<()>) -> Held {
    within("a freed place", async {
        loop {
            if let Upgrade::Open(ws) = upgrade(app, request()).await {
                return ws;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

fn forwarded_for(app: &TestApp, value: &str) -> Request<()> {
    let mut request = app.ws_request();
    request.headers_mut().insert("x-forwarded-for", HeaderValue::from_str(value).expect("a header value"));
    request
}

#[tokio::test]
async fn sockets_beyond_the_per_address_cap_get_429_and_a_closed_socket_frees_its_place() {
    let app = spawn_app_with(|c| {
        c.max_sockets_per_ip = 3;
        c.max_sockets_per_user = 0;
    })
    .await;
    let mut held: Vec<Held> = Vec::new();
    for i in 0..3 {
        held.push(open(upgrade(&app, app.ws_request()).await, &format!("anonymous socket {i}")));
    }

    assert_at_cap(upgrade(&app, app.ws_request()).await, "a fourth anonymous socket");
    let pair = app.signup_and_login(&unique("ann")).await;
    assert_at_cap(upgrade(&app, app.ws_bearer_request(&pair.access_token)).await, "a logged-in fourth socket from the same address");
    let other = open(upgrade_from(&app, IpAddr::from([127, 0, 0, 2]), app.ws_request()).await, "another address");

    drop(held.pop());
    held.push(upgrade_once_freed(&app, || app.ws_request()).await);
    assert_at_cap(upgrade(&app, app.ws_request()).await, "the freed place is taken again");
    drop(other);
}

#[tokio::test]
async fn sockets_beyond_the_per_user_cap_get_429_whether_opened_with_a_login_or_an_api_token() {
    let app = spawn_app_with(|c| {
        c.max_sockets_per_ip = 0;
        c.max_sockets_per_user = 2;
    })
    .await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let created = app.post_json("/api/tokens", &json!({"name": "bot", "scopes": [Scope::Read]}), Some(&ann.access_token)).await;
    let token: confab_shared::ApiTokenCreated = body(created).await;

    let mut tab = WsClient::connect(app.addr, app.ws_bearer_request(&ann.access_token)).await.expect("ann's first tab");
    let _bot = open(upgrade(&app, app.ws_bearer_request(&token.token)).await, "ann's API token socket");
    assert_at_cap(upgrade(&app, app.ws_bearer_request(&ann.access_token)).await, "ann's third socket");
    assert_at_cap(upgrade(&app, app.ws_bearer_request(&token.token)).await, "ann's third socket, by API token");
    // Other users and anonymous sockets are not ann's.
    let _bob = open(upgrade(&app, app.ws_bearer_request(&bob.access_token)).await, "bob");
    let _anonymous = open(upgrade(&app, app.ws_request()).await, "anonymous");

    tab.ok(EchoParams { text: "still open".into() }).await;
    tab.close().await;
    let _again = upgrade_once_freed(&app, || app.ws_bearer_request(&ann.access_token)).await;
    assert_at_cap(upgrade(&app, app.ws_bearer_request(&ann.access_token)).await, "ann is at her cap again");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_counted_ipv6_by_its_64() {
    let app = spawn_app_with(|c| {
        c.max_sockets_per_ip = 2;
        c.max_sockets_per_user = 0;
        c.trusted_proxies = vec!["127.0.0.1".parse().expect("an address")];
    })
    .await;
    let _a1 = open(upgrade(&app, forwarded_for(&app, "203.0.113.5")).await, "203.0.113.5 #1");
    let _a2 = open(upgrade(&app, forwarded_for(&app, "198.51.100.1, 203.0.113.5")).await, "203.0.113.5 #2 (a made-up hop on the left)");
    assert_at_cap(upgrade(&app, forwarded_for(&app, "203.0.113.5")).await, "203.0.113.5 #3");
    assert_at_cap(upgrade(&app, forwarded_for(&app, "203.0.113.6, 203.0.113.5")).await, "a left hop does not pick the bucket");
    let _b = open(upgrade(&app, forwarded_for(&app, "203.0.113.6")).await, "another forwarded address");
    // The proxy's own sockets (no header) are the proxy's address, not the clients'.
    let _proxy = open(upgrade(&app, app.ws_request()).await, "the proxy itself");

    let _v6a = open(upgrade(&app, forwarded_for(&app, "2001:db8:1:2::1")).await, "2001:db8:1:2::1");
    let _v6b = open(upgrade(&app, forwarded_for(&app, "[2001:db8:1:2:ffff::9]:443")).await, "same /64");
    assert_at_cap(upgrade(&app, forwarded_for(&app, "2001:db8:1:2:abcd::77")).await, "a third address of one /64");
    let _v6c = open(upgrade(&app, forwarded_for(&app, "2001:db8:1:3::1")).await, "the next /64");
}

#[tokio::test]
async fn a_forwarding_header_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app_with(|c| {
        c.max_sockets_per_ip = 2;
        c.max_sockets_per_user = 0;
        // Some proxy, but not the test's address.
        c.trusted_proxies = vec!["10.0.0.0/8".parse().expect("a block")];
    })
    .await;
    let _a = open(upgrade(&app, forwarded_for(&app, "203.0.113.1")).await, "first");
    let _b = open(upgrade(&app, forwarded_for(&app, "203.0.113.2")).await, "second");

    // A fresh made-up address per socket does not escape the peer's count.
    assert_at_cap(upgrade(&app, forwarded_for(&app, "203.0.113.3")).await, "spoofed X-Forwarded-For");
    assert_at_cap(upgrade(&app, app.ws_request()).await, "no header");
}
