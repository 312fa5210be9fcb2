//! Presence: a user's first connection and last disconnection are announced to every
//! connection, once, however many tabs they open.

use confab_shared::UserPresence;
use confab_shared::rpc::{EchoParams, UsersListParams};

use crate::helpers::{WsClient, spawn_app, unique};

fn echo() -> EchoParams {
    EchoParams { text: "sync point".into() }
}

async fn is_online(ws: &mut WsClient, username: &str) -> bool {
    ws.ok(UsersListParams {}).await.into_iter().find(|u| u.username == username).is_some_and(|u| u.online)
}

#[tokio::test]
async fn a_users_first_connection_and_last_disconnection_are_announced_once() {
    let app = spawn_app().await;
    let (_, mut bob) = app.user_online("bob").await;
    // A round trip: bob's own arrival has been announced (to bob) before the answer.
    bob.ok(echo()).await;
    bob.clear_backlog();
    let mut observer = app.ws_anonymous().await;
    observer.ok(echo()).await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let name = ann.user.username.clone();
    assert!(!is_online(&mut bob, &name).await);

    let mut tab1 = app.ws(&ann.access_token).await;
    let online = UserPresence { username: name.clone(), online: true };
    assert_eq!(bob.next::<UserPresence>("presence.changed").await, online);
    assert_eq!(observer.next::<UserPresence>("presence.changed").await, online, "anonymous sockets hear it too");
    assert!(is_online(&mut bob, &name).await);

    let mut tab2 = app.ws(&ann.access_token).await;
    tab2.ok(echo()).await;
    bob.assert_no("presence.changed").await;

    tab1.close().await;
    assert_eq!(tab1.expect_close().await, 1000);
    bob.assert_no("presence.changed").await;
    assert!(is_online(&mut bob, &name).await, "one tab is still open");

    drop(tab2);
    let offline = UserPresence { username: name.clone(), online: false };
    assert_eq!(bob.next::<UserPresence>("presence.changed").await, offline);
    assert_eq!(observer.next::<UserPresence>("presence.changed").await, offline);
    assert!(!is_online(&mut bob, &name).await);
}

#[tokio::test]
async fn a_user_coming_back_is_announced_again() {
    let app = spawn_app().await;
    let (_, mut bob) = app.user_online("bob").await;
    bob.ok(echo()).await;
    bob.clear_backlog();
    let ann = app.signup_and_login(&unique("ann")).await;
    let name = ann.user.username.clone();

    for round in 0..2 {
        let mut ws = app.ws(&ann.access_token).await;
        let came = bob.next::<UserPresence>("presence.changed").await;
        assert_eq!(came, UserPresence { username: name.clone(), online: true }, "round {round}");
        ws.close().await;
        ws.expect_close().await;
        let went = bob.next::<UserPresence>("presence.changed").await;
        assert_eq!(went, UserPresence { username: name.clone(), online: false }, "round {round}");
    }
}
