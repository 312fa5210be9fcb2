//! The connection's life: a server restart caught up exactly once, renewal of short-lived
//! access tokens, an expiring fixed token, calls waiting out a reconnection, a clean close.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_client::{Backoff, Error, Event, Events, Options, State};
use confab_shared::rpc::{DmSendParams, EchoParams, JoinParams, Notification, SendParams, close};
use confab_shared::{DirectMessage, Message};
use tokio::sync::Semaphore;

use super::server::{PASSWORD, Server, next_matching, unique, within};

/// A gate a reconnection waits at until the test opens it, so that "sent while the client was
/// away" does not depend on timing.
fn gate() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(0))
}

fn gated(options: Options, gate: &Arc<Semaphore>) -> Options {
    let gate = gate.clone();
    options.before_reconnect(move || {
        let gate = gate.clone();
        async move {
            // Each attempt takes a permit; the test adds enough.
            if let Ok(permit) = gate.acquire().await {
                permit.forget();
            }
        }
    })
}

/// Room and direct messages from the events until `done` says enough.
async fn collect(events: &mut Events, what: &str, mut done: impl FnMut(&[Message], &[DirectMessage]) -> bool) -> (Vec<Message>, Vec<DirectMessage>, usize) {
    let (mut messages, mut dms, mut reconnects) = (Vec::new(), Vec::new(), 0);
    within(what, async {
        while !done(&messages, &dms) {
            match events.recv().await {
                Some(Event::Notification(Notification::RoomMessage(m))) => messages.push(m),
                Some(Event::Notification(Notification::DmMessage(dm))) => dms.push(dm),
                Some(Event::Reconnected(_)) => reconnects += 1,
                Some(_) => {}
                None => panic!("the events ended while waiting for {what}"),
            }
        }
    })
    .await;
    (messages, dms, reconnects)
}

#[tokio::test]
async fn after_a_restart_sync_delivers_what_was_missed_exactly_once_in_order() {
    let mut server = Server::start().await;
    let (alice, bob) = (server.account("alice").await, server.account("bob").await);
    let room = unique("room");
    let away = gate();
    let (a, mut a_events) = gated(Options::new(server.url()).token(&alice.access_token), &away).connect().await.expect("alice");
    let quick = Backoff { restart_jitter: Duration::from_millis(50), ..Backoff::default() };
    let (b, _b_events) = Options::new(server.url()).token(&bob.access_token).backoff(quick).connect().await.expect("bob");
    a.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("alice joins");
    b.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("bob joins");
    let mut sent = vec![b.call(SendParams { room: room.clone(), text: "before".into(), nonce: None }).await.expect("send")];
    collect(&mut a_events, "the message before the restart", |m, _| m.len() == 1).await;

    server.restart().await;
    let code = next_matching(&mut a_events, "alice's disconnect", |event| match event {
        Event::Disconnected { close_code } => Some(close_code),
        _ => None,
    })
    .await;
    assert_eq!(code, Some(close::GOING_AWAY), "the server closed with 1001");
    // Bob reconnects by himself (his calls wait for it) and sends while alice is away.
    for i in 1..=3 {
        sent.push(b.call(SendParams { room: room.clone(), text: format!("missed {i}"), nonce: None }).await.expect("send"));
    }
    let dm = b.call(DmSendParams { to: alice.user.username.clone(), text: "are you there?".into(), nonce: None }).await.expect("dm");
    away.add_permits(1);
    // These race alice's catch-up on purpose: live or synced, each must come once.
    for i in 1..=3 {
        sent.push(b.call(SendParams { room: room.clone(), text: format!("racing {i}"), nonce: None }).await.expect("send"));
    }
    let (messages, dms, mut reconnects) =
        collect(&mut a_events, "alice caught up", |m, d| m.len() >= sent.len() - 1 && !d.is_empty()).await;
    if reconnects == 0 {
        // The report follows the caught-up messages; a duplicate arriving meanwhile would show
        // in the live check below.
        next_matching(&mut a_events, "the reconnect report", |e| matches!(e, Event::Reconnected(_)).then_some(())).await;
        reconnects = 1;
    }
    let ids = |list: &[Message]| list.iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(&messages), ids(&sent[1..]), "every message once, in order");
    assert_eq!(dms.iter().map(|d| d.id).collect::<Vec<_>>(), [dm.id], "the missed DM once");
    assert_eq!(reconnects, 1);
    assert_eq!(a.wait_for(State::Open).await, State::Open);

    let live = b.call(SendParams { room: room.clone(), text: "welcome back".into(), nonce: None }).await.expect("send");
    let (after, _, _) = collect(&mut a_events, "live delivery after the catch-up", |m, _| !m.is_empty()).await;
    assert_eq!(ids(&after), [live.id], "nothing arrives twice later either");
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn credentials_renew_the_access_token_on_the_open_socket_before_each_expiry() {
    let server = Server::start_with(|config| {
        config.access_ttl_secs = 3;
        config.expiry_warning_secs = 2;
    })
    .await;
    let user = server.account("renewer").await;
    let first_expiry = Instant::now() + Duration::from_secs(3);
    let (client, mut events) =
        Options::new(server.url()).credentials(&user.user.username, PASSWORD).connect().await.expect("connects");
    let mut renewals = 0;
    within("two renewals and the first token's expiry", async {
        // A second past the first token's expiry (JWT expiries are whole seconds): without
        // renewal the socket would have been closed with 4001 by then.
        while renewals < 2 || Instant::now() < first_expiry + Duration::from_secs(1) {
            match events.recv().await {
                Some(Event::Renewed { .. }) => renewals += 1,
                Some(Event::Notification(_)) => {}
                other => panic!("unexpected event while renewing: {other:?}"),
            }
        }
    })
    .await;
    let echoed = client.call(EchoParams { text: "still here".into() }).await.expect("echo");
    assert_eq!(echoed.text, "still here");
    assert_eq!(client.state(), State::Open);
    client.close().await;
}

#[tokio::test]
async fn a_fixed_token_that_expires_is_closed_with_4001_and_the_client_stops() {
    let server = Server::start_with(|config| {
        config.access_ttl_secs = 2;
        config.expiry_warning_secs = 1;
    })
    .await;
    let user = server.account("fixed").await;
    let (client, mut events) = Options::new(server.url()).token(&user.access_token).connect().await.expect("connects");
    let (code, error) = next_matching(&mut events, "the expiry close", |event| match event {
        Event::Closed { close_code, error } => Some((close_code, error)),
        _ => None,
    })
    .await;
    assert_eq!(code, Some(close::TOKEN_EXPIRED));
    assert!(error.is_some(), "the close says why");
    assert_eq!(client.state(), State::Closed);
    assert!(within("the events to end", events.recv()).await.is_none());
    assert!(matches!(client.call(EchoParams { text: "x".into() }).await, Err(Error::Closed { .. })));
}

#[tokio::test]
async fn a_call_made_while_reconnecting_waits_and_close_is_clean() {
    let mut server = Server::start().await;
    let user = server.account("gina").await;
    let away = gate();
    let (client, mut events) = gated(Options::new(server.url()).token(&user.access_token), &away).connect().await.expect("connects");

    // A call made while away waits for the reconnection and then goes out.
    server.restart().await;
    next_matching(&mut events, "the disconnect", |e| matches!(e, Event::Disconnected { .. }).then_some(())).await;
    assert_eq!(client.state(), State::Reconnecting);
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.call(EchoParams { text: "after the restart".into() }).await }
    });
    away.add_permits(1);
    let echoed = within("the waiting call", waiting).await.expect("the task").expect("echo");
    assert_eq!(echoed.text, "after the restart");

    // Closed while away: the waiting call fails with Closed, the events end with Closed(1000).
    server.restart().await;
    next_matching(&mut events, "the second disconnect", |e| matches!(e, Event::Disconnected { .. }).then_some(())).await;
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.call(EchoParams { text: "never sent".into() }).await }
    });
    tokio::task::yield_now().await;
    within("close", client.close()).await;
    let failed = within("the waiting call", waiting).await.expect("the task");
    assert!(matches!(failed, Err(Error::Closed { .. })), "{failed:?}");
    let closed = next_matching(&mut events, "the close event", |e| match e {
        Event::Closed { close_code, error } => Some((close_code, error.is_none())),
        _ => None,
    })
    .await;
    assert_eq!(closed, (Some(close::NORMAL), true));
    assert!(within("the events to end", events.recv()).await.is_none());
    assert_eq!(client.state(), State::Closed);
    assert!(matches!(client.call(EchoParams { text: "x".into() }).await, Err(Error::Closed { .. })));
    within("a second close", client.close()).await;
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let server = Server::start().await;
    let user = server.account("hank").await;
    let (client, mut events) = Options::new(server.url()).token(&user.access_token).connect().await.expect("connects");
    let other = client.clone();
    drop(client);
    other.call(EchoParams { text: "a clone still works".into() }).await.expect("echo");
    drop(other);
    let closed = next_matching(&mut events, "the close event", |e| match e {
        Event::Closed { close_code, .. } => Some(close_code),
        _ => None,
    })
    .await;
    assert_eq!(closed, Some(close::NORMAL));
}
