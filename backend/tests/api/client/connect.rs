//! Connecting, typed calls, notifications and errors.

use confab_client::{Error, Event, Options, State};
use confab_shared::{CreateApiToken, Message, Scope};
use confab_shared::rpc::{EchoParams, ErrorCode, JoinParams, Notification, SendParams, TypingParams};

use super::server::{PASSWORD, Server, next_matching, unique, within};

#[tokio::test]
async fn a_bearer_token_opens_the_socket_and_calls_are_typed_end_to_end() {
    let server = Server::start().await;
    let alice = server.account("alice").await;
    let (client, mut events) = within("connect", Options::new(server.url()).token(&alice.access_token).connect()).await.expect("connects");
    assert_eq!(client.state(), State::Open);
    let me = client.me().await.expect("me").expect("an account");
    assert_eq!(me.username, alice.user.username);

    let echoed: EchoParams = client.call(EchoParams { text: "ping".into() }).await.expect("echo");
    assert_eq!(echoed.text, "ping");
    let room = unique("room");
    let joined = client.call(JoinParams { room: room.clone(), history: None }).await.expect("join");
    assert_eq!(joined.room.name, room);
    let sent: Message = client.call(SendParams { room: room.clone(), text: "hello".into(), nonce: None }).await.expect("send");
    assert_eq!(sent.author, alice.user.username);
    let received = next_matching(&mut events, "our own room.message", |event| match event {
        Event::Notification(Notification::RoomMessage(message)) => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(received, sent, "the send result and its notification are the same message");
    client.close().await;
}

#[tokio::test]
async fn json_rpc_errors_carry_their_code_and_field_and_the_socket_stays_open() {
    let server = Server::start().await;
    let bob = server.account("bob").await;
    let (client, _events) = Options::new(server.url()).token(&bob.access_token).connect().await.expect("connects");
    let forbidden = client.call(SendParams { room: unique("not-joined"), text: "x".into(), nonce: None }).await;
    assert_eq!(forbidden.as_ref().err().and_then(Error::rpc_code), Some(ErrorCode::Forbidden.code()), "{forbidden:?}");
    let room = unique("room");
    client.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("join");
    let invalid = client.call(SendParams { room, text: "   ".into(), nonce: None }).await.expect_err("blank text is refused");
    assert_eq!((invalid.rpc_code(), invalid.field()), (Some(ErrorCode::InvalidParams.code()), Some("text")));
    assert_eq!(client.state(), State::Open);
}

#[tokio::test]
async fn an_api_token_calls_within_its_scopes_gets_the_missing_scope_outside_them_and_closes_with_4003_once_revoked() {
    let server = Server::start().await;
    let hank = server.account("hank").await;
    let request = CreateApiToken { name: "reader".into(), scopes: vec![Scope::Read], expires_in_days: None };
    let created = server.rest.create_api_token(&hank.access_token, &request).await.expect("a token");
    assert!(created.token.starts_with("cfb_"), "{}", created.token);
    let (client, mut events) = Options::new(server.url()).token(&created.token).connect().await.expect("connects with the token");
    assert_eq!(client.me().await.expect("me").map(|u| u.username), Some(hank.user.username.clone()));
    // Joining an existing room is reading; creating one by joining it is writing.
    let room = unique("room");
    let (owner, _owner_events) = Options::new(server.url()).token(&hank.access_token).connect().await.expect("hank connects");
    owner.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("a full token creates the room");
    let missing = client.call(JoinParams { room: unique("room"), history: Some(0) }).await.expect_err("creating needs write");
    assert_eq!((missing.rpc_code(), missing.scope()), (Some(ErrorCode::Forbidden.code()), Some("write")), "{missing:?}");
    let joined = client.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("read covers joining");
    assert_eq!(joined.room.name, room);
    let refused = client.call(SendParams { room, text: "not with a read token".into(), nonce: None }).await.expect_err("write is missing");
    assert_eq!((refused.rpc_code(), refused.scope()), (Some(ErrorCode::Forbidden.code()), Some("write")), "{refused:?}");
    assert_eq!(client.state(), State::Open, "a scope error leaves the socket open");
    let listed = server.rest.api_tokens(&hank.access_token).await.expect("the listing");
    assert_eq!(listed.iter().map(|t| (t.id, t.name.as_str())).collect::<Vec<_>>(), [(created.id, "reader")]);

    server.rest.revoke_api_token(&hank.access_token, created.id).await.expect("revoked");
    let (code, why) = next_matching(&mut events, "the revoked token's socket to close", |event| match event {
        Event::Closed { close_code, error } => Some((close_code, error)),
        _ => None,
    })
    .await;
    assert_eq!(code, Some(4003), "closed for good with 4003: {why:?}");
    assert!(matches!(why, Some(Error::Closed { close_code: Some(4003) })), "{why:?}");
    let later = client.call(EchoParams { text: "after the revocation".into() }).await.expect_err("closed");
    assert!(matches!(later, Error::Closed { .. }), "{later:?}");
    let reopened = Options::new(server.url()).token(&created.token).connect().await.map(drop);
    assert!(matches!(reopened, Err(Error::Http { status: 401, .. })), "a revoked token opens nothing: {reopened:?}");
}

#[tokio::test]
async fn refused_tokens_and_credentials_fail_the_connect_with_clear_errors() {
    let server = Server::start().await;
    let refused = Options::new(server.url()).token("cfb_not-a-token").connect().await.map(drop);
    assert!(matches!(refused, Err(Error::Http { status: 401, .. })), "{refused:?}");
    let carol = server.account("carol").await;
    let wrong = Options::new(server.url()).credentials(&carol.user.username, "not the password").connect().await.map(drop);
    assert!(matches!(wrong, Err(Error::AuthFailed { status: 401, .. })), "{wrong:?}");
    let bad_url = Options::new("https://example.com").connect().await.map(drop);
    assert!(matches!(bad_url, Err(Error::Url { .. })), "{bad_url:?}");
}

#[tokio::test]
async fn credentials_log_in_and_notifications_from_others_reach_the_events() {
    let server = Server::start().await;
    let dave = server.account("dave").await;
    let erin = server.account("erin").await;
    let (d, mut d_events) =
        Options::new(server.url()).credentials(&dave.user.username, PASSWORD).connect().await.expect("dave connects");
    assert_eq!(d.me().await.expect("me").map(|u| u.username), Some(dave.user.username.clone()));
    let (e, _e_events) = Options::new(server.url()).token(&erin.access_token).connect().await.expect("erin connects");
    let room = unique("room");
    d.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("dave joins");
    e.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("erin joins");
    e.notify(TypingParams { room: room.clone() }).expect("typing sent");
    let typing = next_matching(&mut d_events, "room.typing from erin", |event| match event {
        Event::Notification(Notification::Typing(who)) => Some(who),
        _ => None,
    })
    .await;
    assert_eq!((typing.room, typing.username), (room, erin.user.username));
    d.close().await;
    e.close().await;
}
