//! The HTTP stream transport and the fallback to it: a client on the stream chats with a
//! client on a WebSocket both ways (room messages, DMs, typing, presence), queues calls beyond
//! what a stream takes at once, catches up after a restart like a socket does; behind a proxy
//! that refuses upgrades it falls back to the stream at once, behind one that kills sockets
//! after the second quick death.

use std::time::Duration;

use confab_client::{Backoff, Client, Event, Events, Options, State, Transport};
use confab_shared::rpc::{DmSendParams, EchoParams, JoinParams, Notification, PresenceWatchParams, SendParams, TypingParams, close};
use confab_shared::{DirectMessage, Message, TokenPair};

use super::relay::{Mode, Relay};
use super::server::{Server, next_matching, unique, within};

async fn connect(url: String, who: &TokenPair, transport: Option<Transport>) -> (Client, Events) {
    let mut options = Options::new(url).token(&who.access_token).backoff(Backoff { initial: Duration::from_millis(50), ..Backoff::default() });
    if let Some(transport) = transport {
        options = options.transport(transport);
    }
    within("connect", options.connect()).await.expect("connects")
}

/// `a` and `b`, in one room, chat both ways: room messages, DMs, typing, and `b` watching
/// `a` go offline when `a` closes (which this does).
async fn chat_both_ways(a: (&Client, &mut Events, &TokenPair), b: (&Client, &mut Events, &TokenPair)) {
    let ((a, a_events, a_who), (b, b_events, b_who)) = (a, b);
    let (a_name, b_name) = (a_who.user.username.clone(), b_who.user.username.clone());
    let room = unique("room");
    a.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("a joins");
    b.call(PresenceWatchParams { users: vec![a_name.clone()], replace: true }).await.expect("b watches a");
    b.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("b joins");
    next_matching(a_events, "a told that b joined", |event| match event {
        Event::Notification(Notification::UserJoined(user)) if user.username == b_name => Some(()),
        _ => None,
    })
    .await;

    let from_a: Message = a.call(SendParams { room: room.clone(), text: "hello from a".into(), nonce: None }).await.expect("a sends");
    let seen = next_matching(b_events, "a's message at b", |event| match event {
        Event::Notification(Notification::RoomMessage(m)) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(seen, from_a);
    let from_b: Message = b.call(SendParams { room: room.clone(), text: "hello from b".into(), nonce: None }).await.expect("b sends");
    let seen = next_matching(a_events, "b's message at a", |event| match event {
        Event::Notification(Notification::RoomMessage(m)) if m.author == b_name => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(seen, from_b);

    let to_b: DirectMessage = a.call(DmSendParams { to: b_name.clone(), text: "psst".into(), nonce: None }).await.expect("a's DM");
    let seen = next_matching(b_events, "a's DM at b", |event| match event {
        Event::Notification(Notification::DmMessage(dm)) => Some(dm),
        _ => None,
    })
    .await;
    assert_eq!(seen.id, to_b.id);
    let to_a: DirectMessage = b.call(DmSendParams { to: a_name.clone(), text: "psst back".into(), nonce: None }).await.expect("b's DM");
    let seen = next_matching(a_events, "b's DM at a", |event| match event {
        Event::Notification(Notification::DmMessage(dm)) if dm.from == b_name => Some(dm),
        _ => None,
    })
    .await;
    assert_eq!(seen.id, to_a.id);

    a.notify(TypingParams { room: room.clone() }).expect("a types");
    next_matching(b_events, "a typing, at b", |event| match event {
        Event::Notification(Notification::Typing(user)) if user.username == a_name => Some(()),
        _ => None,
    })
    .await;
    b.notify(TypingParams { room: room.clone() }).expect("b types");
    next_matching(a_events, "b typing, at a", |event| match event {
        Event::Notification(Notification::Typing(user)) if user.username == b_name => Some(()),
        _ => None,
    })
    .await;

    a.close().await;
    next_matching(b_events, "a going offline, at b", |event| match event {
        Event::Notification(Notification::PresenceChanged(p)) if p.username == a_name && !p.online => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test]
async fn a_client_on_the_stream_chats_with_a_client_on_a_websocket_both_ways_with_dms_typing_and_presence() {
    let server = Server::start().await;
    let (alice, bob) = (server.account("alice").await, server.account("bob").await);
    let (a, mut a_events) = connect(server.url(), &alice, Some(Transport::Stream)).await;
    let (b, mut b_events) = connect(server.url(), &bob, Some(Transport::WebSocket)).await;
    assert_eq!((a.transport(), b.transport()), (Some(Transport::Stream), Some(Transport::WebSocket)));
    chat_both_ways((&a, &mut a_events, &alice), (&b, &mut b_events, &bob)).await;
    b.close().await;
    // The other way round: the stream's user watches the WebSocket's go offline.
    let (a, mut a_events) = connect(server.url(), &alice, Some(Transport::WebSocket)).await;
    let (b, mut b_events) = connect(server.url(), &bob, Some(Transport::Stream)).await;
    chat_both_ways((&a, &mut a_events, &alice), (&b, &mut b_events, &bob)).await;
    b.close().await;
}

#[tokio::test]
async fn on_the_stream_thirty_calls_at_once_are_queued_past_the_posts_a_stream_takes_and_all_answered() {
    let server = Server::start().await;
    let carol = server.account("carol").await;
    // Calls queued behind others wait longer than alone: a generous call timeout, so that a
    // loaded machine is not mistaken for a lost answer.
    let options = Options::new(server.url()).token(&carol.access_token).transport(Transport::Stream).call_timeout(Duration::from_secs(60));
    let (client, _events) = within("connect", options.connect()).await.expect("connects");
    // Thirty: several times the 8 POSTs a stream takes at once, within the call rate's burst (2 × 50).
    let calls = (0..30).map(|i| {
        let client = client.clone();
        async move { client.call(EchoParams { text: format!("{i}") }).await }
    });
    let answers = tokio::time::timeout(Duration::from_secs(60), futures_util::future::join_all(calls)).await.expect("thirty echoes within a minute");
    let texts: Vec<String> = answers.into_iter().map(|a| a.expect("echo").text).collect();
    assert_eq!(texts, (0..30).map(|i| format!("{i}")).collect::<Vec<_>>());
    assert_eq!(client.state(), State::Open);
    client.close().await;
    let refused = Options::new(server.url()).token("not-a-token").transport(Transport::Stream).connect().await;
    assert_eq!(refused.err().and_then(|e| e.http_status()), Some(401), "a refused token, as on the upgrade");
}

#[tokio::test]
async fn on_the_stream_a_restart_closes_with_1001_and_sync_delivers_what_was_missed_exactly_once() {
    let mut server = Server::start().await;
    let (dora, eve) = (server.account("dora").await, server.account("eve").await);
    let room = unique("room");
    let away = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let gate = away.clone();
    let options = Options::new(server.url()).token(&dora.access_token).transport(Transport::Stream).before_reconnect(move || {
        let gate = gate.clone();
        async move {
            if let Ok(permit) = gate.acquire().await {
                permit.forget();
            }
        }
    });
    let (d, mut d_events) = within("dora connects", options.connect()).await.expect("dora");
    d.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("dora joins");
    server.restart().await;
    let code = next_matching(&mut d_events, "dora's disconnect", |event| match event {
        Event::Disconnected { close_code } => Some(close_code),
        _ => None,
    })
    .await;
    assert_eq!(code, Some(close::GOING_AWAY), "stream.closed carried 1001");
    let (e, _e_events) = connect(server.url(), &eve, None).await;
    e.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("eve joins");
    let mut sent = Vec::new();
    for i in 1..=3 {
        sent.push(e.call(SendParams { room: room.clone(), text: format!("while away {i}"), nonce: None }).await.expect("send").id);
    }
    away.add_permits(1);
    let resync = next_matching(&mut d_events, "dora caught up", |event| match event {
        Event::Reconnected(resync) => Some(resync),
        _ => None,
    })
    .await;
    assert_eq!(resync.messages.iter().map(|m| m.id).collect::<Vec<_>>(), sent, "every message once, in order");
    assert_eq!(d.transport(), Some(Transport::Stream));
    d.close().await;
    e.close().await;
}

#[tokio::test]
async fn behind_a_proxy_that_refuses_the_upgrade_the_client_falls_back_to_the_stream_and_chats_with_a_websocket_user() {
    let server = Server::start().await;
    let relay = Relay::start(server.addr, Mode::RefuseUpgrades).await;
    let (frank, gina) = (server.account("frank").await, server.account("gina").await);
    let (f, mut f_events) = connect(relay.url(), &frank, None).await;
    let (g, mut g_events) = connect(server.url(), &gina, None).await;
    assert_eq!(f.transport(), Some(Transport::Stream), "behind the refusing proxy");
    assert_eq!(g.transport(), Some(Transport::WebSocket));
    let reported = next_matching(&mut f_events, "the fallback reported", |event| match event {
        Event::Error(err) => Some(err.to_string()),
        _ => None,
    })
    .await;
    assert!(reported.contains("WebSocket did not open") && reported.contains("403"), "{reported}");
    chat_both_ways((&f, &mut f_events, &frank), (&g, &mut g_events, &gina)).await;

    let forced = Options::new(relay.url()).token(&gina.access_token).transport(Transport::WebSocket).connect().await;
    assert_eq!(forced.err().and_then(|e| e.http_status()), Some(403), "forced onto the WebSocket, it fails");
    g.close().await;
}

#[tokio::test]
async fn behind_a_proxy_that_kills_sockets_right_after_they_open_the_second_such_death_moves_the_client_to_the_stream() {
    let server = Server::start().await;
    let relay = Relay::start(server.addr, Mode::CutSilentSockets(Duration::from_secs(1))).await;
    let (kate, leo) = (server.account("kate").await, server.account("leo").await);
    let (k, mut k_events) = connect(relay.url(), &kate, None).await;
    assert_eq!(k.transport(), Some(Transport::WebSocket), "the upgrade passes");
    let mut disconnects = 0;
    within("kate on the stream", async {
        loop {
            match k_events.recv().await.expect("events") {
                Event::Disconnected { close_code } => {
                    assert_eq!(close_code, None, "cut without a close frame");
                    disconnects += 1;
                }
                // Reconnected on a WebSocket after the first death, on the stream after the second.
                Event::Reconnected(_) if disconnects == 2 => break,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(k.transport(), Some(Transport::Stream), "two quick deaths, then the stream");
    let (l, mut l_events) = connect(server.url(), &leo, None).await;
    chat_both_ways((&k, &mut k_events, &kate), (&l, &mut l_events, &leo)).await;
    l.close().await;
}

#[tokio::test]
async fn after_websocket_retry_on_the_stream_the_next_reconnection_tries_the_websocket_again() {
    let mut server = Server::start().await;
    let relay = Relay::start(server.addr, Mode::RefuseUpgrades).await;
    let mia = server.account("mia").await;
    let retry = Duration::from_millis(200);
    let quick = Backoff { restart_jitter: Duration::from_millis(50), ..Backoff::default() };
    let options = Options::new(relay.url()).token(&mia.access_token).websocket_retry(retry).backoff(quick);
    let (m, mut m_events) = within("connect", options.connect()).await.expect("connects");
    assert_eq!(m.transport(), Some(Transport::Stream));
    // The proxy is fixed, and the fallback (which began before the stream opened) runs out.
    relay.pass_upgrades();
    tokio::time::sleep(retry).await;
    server.restart().await;
    next_matching(&mut m_events, "mia back", |event| matches!(event, Event::Reconnected(_)).then_some(())).await;
    assert_eq!(m.transport(), Some(Transport::WebSocket), "the reconnection after the retry time took the WebSocket");
    m.close().await;
}
