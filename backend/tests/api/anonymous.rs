//! Anonymous observers: sockets without a token may read public rooms, never write.

use confab_shared::Message;
use confab_shared::rpc::{
    AuthRefreshParams, DeleteParams, DmHistoryParams, DmReadParams, EchoParams, EditParams, JobSubscribeParams,
    ReactParams, RoomReadParams, RoomsListParams, TypingParams, UsersListParams,
};

use crate::helpers::{assert_code, dm, history, join, send, spawn_app, unique};

#[tokio::test]
async fn an_anonymous_socket_may_read_public_rooms() {
    let app = spawn_app().await;
    let (ann, mut ann_ws) = app.user_online("ann").await;
    let room = unique("public");
    ann_ws.ok(join(&room)).await;
    let first = ann_ws.ok(send(&room, "for everyone")).await;
    let mut ws = app.ws_anonymous().await;

    assert_eq!(ws.ok(EchoParams { text: "hi".into() }).await.text, "hi");
    let users = ws.ok(UsersListParams::default()).await.users;
    assert!(users.iter().any(|u| u.username == ann.user.username && u.online));
    let rooms = ws.ok(RoomsListParams::default()).await.rooms;
    let listed = rooms.iter().find(|r| r.name == room).expect("the room is listed");
    assert_eq!(listed.unread, None, "anonymous callers have no unread count");
    assert_eq!(listed.online, 1);
    let joined = ws.ok(join(&room)).await;
    assert_eq!(joined.history, vec![first.clone()]);
    assert_eq!(joined.online, vec![ann.user.username.clone()], "an observer is not present");
    assert_eq!(ws.ok(history(&room, None, None)).await, vec![first]);

    let live = ann_ws.ok(send(&room, "live")).await;
    assert_eq!(ws.next::<Message>("room.message").await, live);
}

#[tokio::test]
async fn every_write_from_an_anonymous_socket_is_unauthenticated() {
    let app = spawn_app().await;
    let (ann, mut ann_ws) = app.user_online("ann").await;
    let room = unique("public");
    ann_ws.ok(join(&room)).await;
    let message = ann_ws.ok(send(&room, "hello")).await;
    let mut ws = app.ws_anonymous().await;
    ws.ok(join(&room)).await;
    let name = ann.user.username.clone();

    assert_code(&ws.fail(send(&room, "hi")).await, -32001);
    assert_code(&ws.fail(TypingParams { room: room.clone() }).await, -32001);
    assert_code(&ws.fail(EditParams { id: message.id, text: "x".into() }).await, -32001);
    assert_code(&ws.fail(DeleteParams { id: message.id }).await, -32001);
    assert_code(&ws.fail(ReactParams { id: message.id, emoji: "+1".into(), on: true }).await, -32001);
    assert_code(&ws.fail(dm(&name, "psst")).await, -32001);
    assert_code(&ws.fail(DmHistoryParams { with: name.clone(), before: None, limit: None }).await, -32001);
    assert_code(&ws.fail(RoomReadParams { room: room.clone(), id: message.id }).await, -32001);
    assert_code(&ws.fail(DmReadParams { with: name.clone(), id: 1 }).await, -32001);
    assert_code(&ws.fail(AuthRefreshParams { access_token: ann.access_token.clone() }).await, -32001);
    assert_code(&ws.fail(JobSubscribeParams { job_id: 1 }).await, -32001);
    // Nothing was written.
    assert_eq!(ann_ws.ok(history(&room, None, None)).await, vec![message]);
}

#[tokio::test]
async fn joining_an_unknown_room_anonymously_is_not_found_and_creates_nothing() {
    let app = spawn_app().await;
    let mut ws = app.ws_anonymous().await;
    let room = unique("nowhere");

    assert_code(&ws.fail(join(&room)).await, -32004);
    assert_code(&ws.fail(history(&room, None, None)).await, -32004);

    let rooms = ws.ok(RoomsListParams::default()).await.rooms;
    assert!(rooms.iter().all(|r| r.name != room));
}

#[tokio::test]
async fn an_anonymous_observer_is_kept_out_of_admin_only_rooms() {
    let app = spawn_app().await;
    let boss = app.admin(&unique("boss")).await;
    let staff = unique("staff");
    let created = app
        .post_json("/api/rooms", &confab_shared::CreateRoom { name: staff.clone(), admin_only: true }, Some(&boss.access_token))
        .await;
    assert_eq!(created.status().as_u16(), 201);
    let mut ws = app.ws_anonymous().await;

    assert_code(&ws.fail(join(&staff)).await, -32003);
    assert_code(&ws.fail(history(&staff, None, None)).await, -32003);
    assert!(ws.ok(RoomsListParams::default()).await.rooms.iter().all(|r| r.name != staff));
}

#[tokio::test]
async fn an_anonymous_socket_does_not_count_as_anyone_online() {
    let app = spawn_app().await;
    let (bob_tokens, mut bob) = app.user_online("bob").await;
    let name = bob_tokens.user.username.clone();
    bob.ok(EchoParams { text: "counted".into() }).await;

    let mut ws = app.ws_anonymous().await;
    ws.ok(EchoParams { text: "here".into() }).await;
    drop(ws);

    bob.assert_no("presence.changed").await;
    let users = bob.ok(UsersListParams { online: Some(true), ..UsersListParams::default() }).await;
    assert_eq!(users.users.iter().map(|u| u.username.clone()).collect::<Vec<_>>(), vec![name], "only bob is online");
}
