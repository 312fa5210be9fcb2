//! Presence by interest: a connection hears `presence.changed` only for the users it
//! watches, once per first connection and last disconnection, coalesced per tick; the watch
//! set is bounded and validated.

use confab_shared::UserPresence;
use confab_shared::rpc::{EchoParams, PresenceUnwatchParams, PresenceWatchParams, UsersListParams};

use crate::helpers::{WsClient, assert_invalid_param, spawn_app, spawn_app_with, unique, within};

fn echo() -> EchoParams {
    EchoParams { text: "sync point".into() }
}

fn watch(users: &[&str]) -> PresenceWatchParams {
    PresenceWatchParams { users: users.iter().map(|u| (*u).to_owned()).collect(), replace: false }
}

fn replace(users: &[&str]) -> PresenceWatchParams {
    PresenceWatchParams { replace: true, ..watch(users) }
}

fn presence(username: &str, online: bool) -> UserPresence {
    UserPresence { username: username.to_owned(), online }
}

async fn is_online(ws: &mut WsClient, username: &str) -> bool {
    let page = ws.ok(UsersListParams { prefix: Some(username.to_owned()), ..UsersListParams::default() }).await;
    page.users.into_iter().find(|u| u.username == username).is_some_and(|u| u.online)
}

/// Waits until the server has counted `username`'s last connection out (the close handshake
/// ends before the session uncounts it).
async fn until_offline(ws: &mut WsClient, username: &str) {
    within(&format!("{username} to be counted offline"), async {
        while is_online(ws, username).await {
            // Paced under the call rate limit; not a measurement.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_connection_hears_only_the_users_it_watches() {
    let app = spawn_app().await;
    let (_, mut watcher) = app.user_online("watcher").await;
    let mut bystander = app.ws_anonymous().await;
    bystander.ok(echo()).await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let (ann_name, bob_name) = (ann.user.username.clone(), bob.user.username.clone());
    let watched = watcher.ok(watch(&[&ann_name])).await;
    assert_eq!((watched.watching, watched.users), (1, vec![presence(&ann_name, false)]));

    // bob first: were his arrival sent to the watcher, it would come before ann's.
    let mut bob_ws = app.ws(&bob.access_token).await;
    bob_ws.ok(echo()).await;
    let mut ann_ws = app.ws(&ann.access_token).await;
    ann_ws.ok(echo()).await;

    assert_eq!(watcher.next::<UserPresence>("presence.changed").await, presence(&ann_name, true));
    assert!(watcher.take_from_backlog("presence.changed").is_none(), "nothing about bob");
    watcher.assert_no("presence.changed").await;
    bystander.assert_no("presence.changed").await;
    assert!(is_online(&mut bystander, &bob_name).await, "bob is online all the same");
}

#[tokio::test]
async fn a_watched_users_first_connection_and_last_disconnection_are_announced_once() {
    let app = spawn_app().await;
    let (_, mut bob) = app.user_online("bob").await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let name = ann.user.username.clone();
    bob.ok(watch(&[&name])).await;

    let mut tab1 = app.ws(&ann.access_token).await;
    assert_eq!(bob.next::<UserPresence>("presence.changed").await, presence(&name, true));
    assert!(is_online(&mut bob, &name).await);

    let mut tab2 = app.ws(&ann.access_token).await;
    tab2.ok(echo()).await;
    bob.assert_no("presence.changed").await;

    tab1.close().await;
    assert_eq!(tab1.expect_close().await, 1000);
    bob.assert_no("presence.changed").await;
    assert!(is_online(&mut bob, &name).await, "one tab is still open");

    drop(tab2);
    assert_eq!(bob.next::<UserPresence>("presence.changed").await, presence(&name, false));
    assert!(!is_online(&mut bob, &name).await);
}

#[tokio::test]
async fn a_user_coming_back_is_announced_again() {
    let app = spawn_app().await;
    let (_, mut bob) = app.user_online("bob").await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let name = ann.user.username.clone();
    bob.ok(watch(&[&name])).await;

    for round in 0..2 {
        let mut ws = app.ws(&ann.access_token).await;
        assert_eq!(bob.next::<UserPresence>("presence.changed").await, presence(&name, true), "round {round}");
        ws.close().await;
        ws.expect_close().await;
        assert_eq!(bob.next::<UserPresence>("presence.changed").await, presence(&name, false), "round {round}");
    }
}

#[tokio::test]
async fn a_user_who_flaps_within_one_tick_sends_nothing() {
    // A tick that never comes on its own: the test flushes by hand, so "within one tick" is
    // exact rather than a race with the clock.
    let app = spawn_app_with(|c| c.presence_tick_ms = 3_600_000).await;
    let (_, mut watcher) = app.user_online("watcher").await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let (ann_name, bob_name) = (ann.user.username.clone(), bob.user.username.clone());
    watcher.ok(watch(&[&ann_name, &bob_name])).await;
    app.state().presence_batch.flush().await;
    watcher.clear_backlog();

    let mut flap = app.ws(&ann.access_token).await;
    flap.ok(echo()).await;
    flap.close().await;
    flap.expect_close().await;
    until_offline(&mut watcher, &ann_name).await;
    let mut bob_ws = app.ws(&bob.access_token).await;
    bob_ws.ok(echo()).await;
    app.state().presence_batch.flush().await;

    assert_eq!(watcher.next::<UserPresence>("presence.changed").await, presence(&bob_name, true));
    assert!(watcher.take_from_backlog("presence.changed").is_none(), "ann's flap sent nothing");
    watcher.assert_no("presence.changed").await;

    // The same flap spread over two ticks is two changes.
    let mut ann_ws = app.ws(&ann.access_token).await;
    ann_ws.ok(echo()).await;
    app.state().presence_batch.flush().await;
    assert_eq!(watcher.next::<UserPresence>("presence.changed").await, presence(&ann_name, true));
    drop(ann_ws);
    until_offline(&mut watcher, &ann_name).await;
    app.state().presence_batch.flush().await;
    assert_eq!(watcher.next::<UserPresence>("presence.changed").await, presence(&ann_name, false));
}

#[tokio::test]
async fn replace_swaps_the_watch_set_and_unwatch_shrinks_it() {
    let app = spawn_app().await;
    let (_, mut watcher) = app.user_online("watcher").await;
    let (ann, mut ann_ws) = app.user_online("ann").await;
    ann_ws.ok(echo()).await;
    let cy = app.signup_and_login(&unique("cy")).await;
    let dee = app.signup_and_login(&unique("dee")).await;
    let (ann_name, cy_name, dee_name) = (ann.user.username.clone(), cy.user.username.clone(), dee.user.username.clone());

    let shouted = ann_name.to_uppercase();
    let watched = watcher.ok(watch(&[&shouted, &cy_name, "nobody_here", &cy_name])).await;
    assert_eq!(watched.watching, 2, "unknown and repeated names do not count");
    assert_eq!(watched.users, vec![presence(&ann_name, true), presence(&cy_name, false)], "spelled as the server does");

    let replaced = watcher.ok(replace(&[&dee_name])).await;
    assert_eq!((replaced.watching, replaced.users), (1, vec![presence(&dee_name, false)]));
    let cy_ws = app.ws(&cy.access_token).await;
    let dee_ws = app.ws(&dee.access_token).await;
    assert_eq!(watcher.next::<UserPresence>("presence.changed").await, presence(&dee_name, true));
    assert!(watcher.take_from_backlog("presence.changed").is_none(), "cy was replaced away");

    let left = watcher.ok(PresenceUnwatchParams { users: vec![dee_name.clone(), "nobody_here".into()] }).await;
    assert_eq!(left.watching, 0);
    drop(dee_ws);
    drop(cy_ws);
    watcher.assert_no("presence.changed").await;
}

#[tokio::test]
async fn the_watch_set_is_bounded_and_names_are_checked() {
    let app = spawn_app_with(|c| c.presence_watch_max = 2).await;
    let (_, mut ws) = app.user_online("watcher").await;
    let a = app.signup_and_login(&unique("a")).await.user.username;
    let b = app.signup_and_login(&unique("b")).await.user.username;
    let c = app.signup_and_login(&unique("c")).await.user.username;

    assert_invalid_param(&ws.fail(watch(&[&a, &b, &c])).await, "users");
    assert_eq!(ws.ok(watch(&[&a, &b])).await.watching, 2);
    assert_invalid_param(&ws.fail(watch(&[&c])).await, "users");
    assert_eq!(ws.ok(watch(&[&a])).await.watching, 2, "a refused watch changed nothing; re-watching is free");
    assert_eq!(ws.ok(replace(&[&c])).await.watching, 1, "replacing may bring the set under the limit");
    assert_invalid_param(&ws.fail(watch(&["no spaces"])).await, "users");
    assert_invalid_param(&ws.fail(watch(&["x"])).await, "users");
    let raw = ws.call_raw(r#"{"jsonrpc":"2.0","id":9,"method":"presence.watch","params":{"users":"ann"}}"#).await;
    assert_eq!((raw["error"]["code"].as_i64(), raw["error"]["data"]["field"].as_str()), (Some(-32602), Some("users")));
    assert_eq!(ws.ok(watch(&[])).await.watching, 1);
}

#[tokio::test]
async fn a_connection_that_watches_nobody_hears_no_presence_at_all() {
    let app = spawn_app().await;
    let (ann, mut ann_ws) = app.user_online("ann").await;
    ann_ws.ok(echo()).await;
    let (_, mut bob_ws) = app.user_online("bob").await;
    bob_ws.ok(echo()).await;
    drop(bob_ws);
    let mut again = app.ws(&ann.access_token).await;
    again.ok(echo()).await;

    ann_ws.assert_no("presence.changed").await;
    again.assert_no("presence.changed").await;
}
