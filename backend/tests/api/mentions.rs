//! Mentions: `@name`, `@room` and `@here` recognised by the server, the `mention`
//! notification on every connection of the mentioned, unread mention counts in `rooms.list`
//! and `room.join` (stored, cleared by `room.read`), edits, and what one sender can cost.

use confab_shared::moderation::BanParams;
use confab_shared::rpc::notify::RoomUser;
use confab_shared::rpc::{DeleteParams, EditParams, RoomReadParams, RoomsListParams};
use confab_shared::{MentionAll, Message, RoomSummary};

use crate::helpers::{PASSWORD, TestApp, WsClient, join, send, spawn_app, unique};

/// The caller's summary of `room` in `rooms.list`.
async fn listed(ws: &mut WsClient, room: &str) -> RoomSummary {
    let page = ws.ok(RoomsListParams { prefix: Some(room.to_owned()), ..RoomsListParams::default() }).await;
    page.rooms.into_iter().find(|r| r.name == room).expect("the room is listed")
}

/// A new account whose socket joined `room` (so it is a member).
async fn member(app: &TestApp, prefix: &str, room: &str) -> (String, WsClient) {
    let (tokens, mut ws) = app.user_online(prefix).await;
    ws.ok(join(room)).await;
    (tokens.user.username, ws)
}

#[tokio::test]
async fn a_mention_reaches_every_connection_of_the_mentioned_user_and_the_message_names_them() {
    let app = spawn_app().await;
    let room = unique("lobby");
    let (ann, mut ann_ws) = member(&app, "ann", &room).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    // Bob's tabs have not joined the room: a mention reaches them all the same.
    let (mut bob1, mut bob2) = (app.ws(&bob.access_token).await, app.ws(&bob.access_token).await);
    let (_, mut carl) = member(&app, "carl", &room).await;

    let text = format!("hi @{}, @nobody_here and @{ann}: mail me at x@{}.org", bob.user.username.to_uppercase(), bob.user.username);
    let sent = ann_ws.ok(send(&room, &text)).await;

    assert_eq!(sent.mentions, vec![bob.user.username.clone()], "spelled as the user spells it; never the author, nor an address");
    assert_eq!(sent.mention_all, None);
    for tab in [&mut bob1, &mut bob2] {
        assert_eq!(tab.next::<Message>("mention").await, sent);
    }
    assert_eq!(carl.next::<Message>("room.message").await.mentions, sent.mentions, "the broadcast carries the mentions");
    carl.assert_no("mention").await;
    ann_ws.assert_no("mention").await;
}

#[tokio::test]
async fn unread_mentions_are_counted_per_room_survive_a_restart_and_are_cleared_by_room_read() {
    let mut app = spawn_app().await;
    let room = unique("lobby");
    let (_, mut ann) = member(&app, "ann", &room).await;
    let bob_name = unique("bob");
    let bob = app.signup_and_login(&bob_name).await;
    let mut bob_ws = app.ws(&bob.access_token).await;
    assert_eq!(bob_ws.ok(join(&room)).await.room.mentions, Some(0));

    let first = ann.ok(send(&room, &format!("@{bob_name} one"))).await;
    ann.ok(send(&room, "no mention")).await;
    let deleted = ann.ok(send(&room, &format!("@{bob_name} soon gone"))).await;
    let last = ann.ok(send(&room, &format!("@{bob_name} three"))).await;
    ann.ok(DeleteParams { id: deleted.id }).await;
    let summary = listed(&mut bob_ws, &room).await;
    assert_eq!((summary.unread, summary.mentions), (Some(3), Some(2)), "a deleted message no longer counts");

    app.restart().await;
    let bob = app.login_ok(&bob_name).await;
    let mut bob_ws = app.ws(&bob.access_token).await;
    assert_eq!(listed(&mut bob_ws, &room).await.mentions, Some(2), "stored, not held in memory");
    bob_ws.ok(RoomReadParams { room: room.clone(), id: first.id }).await;
    assert_eq!(bob_ws.ok(join(&room)).await.room.mentions, Some(1), "room.join reports what is left after the cursor");
    bob_ws.ok(RoomReadParams { room: room.clone(), id: last.id }).await;
    let summary = listed(&mut bob_ws, &room).await;
    assert_eq!((summary.unread, summary.mentions), (Some(0), Some(0)));
}

#[tokio::test]
async fn a_room_never_joined_counts_its_mentions_until_it_is_read() {
    let app = spawn_app().await;
    let room = unique("lobby");
    let (_, mut ann) = member(&app, "ann", &room).await;
    let (bob, mut bob_ws) = app.user_online("bob").await;

    let sent = ann.ok(send(&room, &format!("@{} have a look", bob.user.username))).await;

    assert_eq!(bob_ws.next::<Message>("mention").await.id, sent.id);
    assert_eq!(listed(&mut bob_ws, &room).await.mentions, Some(1));
    bob_ws.ok(RoomReadParams { room: room.clone(), id: sent.id }).await;
    assert_eq!(listed(&mut bob_ws, &room).await.mentions, Some(0));
}

#[tokio::test]
async fn an_edit_recomputes_the_mentions_and_tells_only_the_newly_mentioned() {
    let app = spawn_app().await;
    let room = unique("lobby");
    let (_, mut ann) = member(&app, "ann", &room).await;
    let (bob, mut bob_ws) = member(&app, "bob", &room).await;
    let (carl, mut carl_ws) = member(&app, "carl", &room).await;

    let sent = ann.ok(send(&room, &format!("@{bob} look"))).await;
    assert_eq!(bob_ws.next::<Message>("mention").await.id, sent.id);

    let edited = ann.ok(EditParams { id: sent.id, text: format!("@{bob} @{carl} look") }).await;
    assert_eq!(edited.mentions, vec![bob.clone(), carl.clone()]);
    assert_eq!(carl_ws.next::<Message>("mention").await, edited, "carl is mentioned for the first time");
    assert_eq!(bob_ws.next::<Message>("message.edited").await.mentions, edited.mentions);
    // A later mention of bob proves nothing came between: his mentions arrive in order.
    let marker = ann.ok(send(&room, &format!("@{bob} marker"))).await;
    assert_eq!(bob_ws.next::<Message>("mention").await.id, marker.id, "bob was mentioned already: the edit does not tell him again");

    ann.ok(EditParams { id: sent.id, text: format!("only @{carl} now") }).await;
    assert_eq!(listed(&mut bob_ws, &room).await.mentions, Some(1), "the edit took bob's mention away; the marker stays");
    assert_eq!(listed(&mut carl_ws, &room).await.mentions, Some(1));
}

#[tokio::test]
async fn room_and_here_mention_the_members_only_from_the_owner_moderators_or_admins() {
    let app = spawn_app().await;
    let room = unique("lobby");
    // The first to join creates the room and owns it.
    let (_, mut owner) = member(&app, "ann", &room).await;
    let (bob, mut bob_ws) = member(&app, "bob", &room).await;
    let (_, mut carl_ws) = member(&app, "carl", &room).await;
    // Dave is a member with no connection: `@room` reaches him, `@here` does not.
    let (dave, mut dave_ws) = member(&app, "dave", &room).await;
    // Announced arrival first, then departure: a join and a leave within one tick cancel out.
    while owner.next::<RoomUser>("room.user_joined").await.username != dave {}
    dave_ws.close().await;
    while owner.next::<RoomUser>("room.user_left").await.username != dave {}

    let plain = bob_ws.ok(send(&room, "@room @here listen")).await;
    assert_eq!((plain.mention_all, plain.mentions.is_empty()), (None, true), "a member's @room is plain text");

    let here = owner.ok(send(&room, "@here standup")).await;
    assert_eq!(here.mention_all, Some(MentionAll::Here));
    let everyone = owner.ok(send(&room, &format!("@room release, @{bob} too"))).await;
    assert_eq!((everyone.mention_all, everyone.mentions.clone()), (Some(MentionAll::Room), vec![bob.clone()]));
    for ws in [&mut bob_ws, &mut carl_ws] {
        assert_eq!(ws.next::<Message>("mention").await.id, here.id);
        assert_eq!(ws.next::<Message>("mention").await.id, everyone.id, "once, though named as well");
    }
    owner.assert_no("mention").await;
    let dave = app.login_ok(&dave).await;
    let mut dave_ws = app.ws(&dave.access_token).await;
    let summary = listed(&mut dave_ws, &room).await;
    assert_eq!(summary.mentions, Some(1), "@room counts for a member who was away; @here does not");
    assert_eq!(listed(&mut bob_ws, &room).await.mentions, Some(2));
}

#[tokio::test]
async fn only_users_who_may_read_the_room_are_mentioned() {
    let app = spawn_app().await;
    let admin = app.admin(&unique("root")).await;
    let mut admin_ws = app.ws(&admin.access_token).await;
    let (bob, mut bob_ws) = app.user_online("bob").await;
    let other_admin = app.admin(&unique("ops")).await;

    let secret = unique("staff");
    let created = app.post_json("/api/rooms", &serde_json::json!({"name": secret, "admin_only": true}), Some(&admin.access_token)).await;
    assert_eq!(created.status().as_u16(), 201);
    admin_ws.ok(join(&secret)).await;
    let sent = admin_ws.ok(send(&secret, &format!("@{} @{} @room", bob.user.username, other_admin.user.username))).await;
    assert_eq!(sent.mentions, vec![other_admin.user.username.clone()], "bob may not read an admin-only room");

    let open = unique("open");
    admin_ws.ok(join(&open)).await;
    admin_ws.ok(BanParams { room: open.clone(), user: bob.user.username.clone(), reason: None, duration_secs: None }).await;
    let sent = admin_ws.ok(send(&open, &format!("@{} hello", bob.user.username))).await;
    assert!(sent.mentions.is_empty(), "nor one banned from the room");
    assert_eq!(listed(&mut bob_ws, &open).await.mentions, Some(0));
    bob_ws.assert_no("mention").await;
}

#[tokio::test]
async fn a_message_naming_hundreds_of_users_mentions_only_the_first_twenty() {
    let app = spawn_app().await;
    let room = unique("lobby");
    let (_, mut ann) = member(&app, "ann", &room).await;
    // 22 real accounts named first, then hundreds of names nobody has. The accounts are
    // created in the database: signing 22 up at once would meet the sign-up limit.
    let hash = app.state().hasher.hash(PASSWORD.to_owned()).await.expect("hashing works");
    let mut real = Vec::new();
    for i in 0..22 {
        let name = format!("m{i:02}_{}", &unique("u")[2..]);
        confab::storage::users::create(&app.state().db, &name, &hash, false).await.expect("the account is created");
        real.push(name);
    }
    let last = app.login_ok(&real[21]).await;
    let mut last_ws = app.ws(&last.access_token).await;
    let mut text: String = real.iter().map(|n| format!("@{n} ")).collect();
    for i in 0..400 {
        text.push_str(&format!("@g{i:03} "));
    }
    assert!(text.len() <= 4000, "{} characters", text.len());

    let sent = ann.ok(send(&room, &text)).await;

    assert_eq!(sent.mentions, real[..20].to_vec(), "the first 20 distinct names, in order");
    assert_eq!(sent.text, text.trim(), "the message itself is kept whole");
    assert_eq!(listed(&mut last_ws, &room).await.mentions, Some(0), "the 22nd name is past the cap");
    last_ws.assert_no("mention").await;
}
