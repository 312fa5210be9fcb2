//! Rooms over the socket: joining (and creating), leaving, who is here, history pages,
//! admin-only rooms, read cursors and unread counts, quiet rooms.

use confab_shared::rpc::notify::{ReadCursor, RoomUser};
use confab_shared::rpc::{JoinParams, RoomReadParams, RoomsListParams, SetQuietParams};
use confab_shared::{CreateRoom, Message, RoomSummary, RoomsPage};
use serde_json::json;

use crate::helpers::{
    WsClient, assert_code, assert_invalid_param, body, history, join, leave, problem, send, spawn_app, unique,
};

fn ids(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.id).collect()
}

async fn summary_of(ws: &mut WsClient, room: &str) -> RoomSummary {
    let prefix = RoomsListParams { prefix: Some(room.to_owned()), ..RoomsListParams::default() };
    ws.ok(prefix).await.rooms.into_iter().find(|r| r.name == room).unwrap_or_else(|| panic!("{room} is listed"))
}

#[tokio::test]
async fn joining_an_unknown_room_creates_it() {
    let app = spawn_app().await;
    let (ann, mut ws) = app.user_online("ann").await;
    let room = unique("fresh");

    let joined = ws.ok(join(&room)).await;

    assert_eq!(
        joined.room,
        RoomSummary {
            name: room.clone(),
            online: 1,
            admin_only: false,
            last_message_at: None,
            unread: Some(0),
            mentions: Some(0),
            owner: Some(ann.user.username.clone()),
            moderators: Vec::new(),
            slow_mode_secs: 0,
            retention_days: None,
            quiet: false,
        },
        "whoever creates a room by joining it owns it"
    );
    assert_eq!(joined.role, confab_shared::moderation::RoomRole::Owner);
    assert_eq!(joined.online, vec![ann.user.username.clone()]);
    assert!(joined.history.is_empty());
    let listed: confab_shared::RoomsPage = body(app.get("/api/rooms", None).await).await;
    assert!(listed.rooms.iter().any(|r| r.name == room && r.online == 1));
    assert_eq!(joined.online_next_cursor, None, "one page holds everyone here");
}

#[tokio::test]
async fn two_users_in_a_room_see_each_other_join_speak_and_leave() {
    let app = spawn_app().await;
    let (ann, mut ann_ws) = app.user_online("ann").await;
    let (bob, mut bob_ws) = app.user_online("bob").await;
    let room = unique("pair");
    ann_ws.ok(join(&room)).await;
    // The joiner's own connection hears its arrival too (it subscribes before announcing).
    let own: RoomUser = ann_ws.next("room.user_joined").await;
    assert_eq!(own, RoomUser { room: room.clone(), username: ann.user.username.clone() });

    let bob_joined = bob_ws.ok(join(&room)).await;

    let mut both = vec![ann.user.username.clone(), bob.user.username.clone()];
    both.sort();
    assert_eq!(bob_joined.online, both);
    assert_eq!(bob_joined.room.online, 2);
    let arrival: RoomUser = ann_ws.next("room.user_joined").await;
    assert_eq!(arrival, RoomUser { room: room.clone(), username: bob.user.username.clone() });

    let sent = ann_ws.ok(send(&room, "  hello bob  ")).await;
    assert_eq!(sent.text, "hello bob", "text is trimmed");
    assert_eq!((sent.room.as_str(), sent.author.as_str()), (room.as_str(), ann.user.username.as_str()));
    assert_eq!((sent.edited_at, sent.deleted, sent.reactions.is_empty()), (None, false, true));
    assert!(sent.sent_at.to_string().ends_with('Z') && sent.sent_at.to_string().len() == 24, "RFC 3339 ms UTC: {}", sent.sent_at);
    assert_eq!(bob_ws.next::<Message>("room.message").await, sent);
    assert_eq!(ann_ws.next::<Message>("room.message").await, sent, "the sender's connection gets it too");
    assert_eq!(summary_of(&mut bob_ws, &room).await.last_message_at, Some(sent.sent_at));

    bob_ws.ok(leave(&room)).await;
    let departure: RoomUser = ann_ws.next("room.user_left").await;
    assert_eq!(departure, RoomUser { room: room.clone(), username: bob.user.username.clone() });
    ann_ws.ok(send(&room, "bob is gone")).await;
    bob_ws.assert_no("room.message").await;
    assert_eq!(summary_of(&mut ann_ws, &room).await.online, 1);
}

#[tokio::test]
async fn a_user_with_two_tabs_joins_and_leaves_a_room_once() {
    let app = spawn_app().await;
    let (_, mut bob) = app.user_online("bob").await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let mut tab1 = app.ws(&ann.access_token).await;
    let mut tab2 = app.ws(&ann.access_token).await;
    let room = unique("tabs");
    bob.ok(join(&room)).await;
    let _bob_himself: RoomUser = bob.next("room.user_joined").await;
    let ann_in_room = RoomUser { room: room.clone(), username: ann.user.username.clone() };

    tab1.ok(join(&room)).await;
    assert_eq!(bob.next::<RoomUser>("room.user_joined").await, ann_in_room);
    let second = tab2.ok(join(&room)).await;
    bob.assert_no("room.user_joined").await;
    assert_eq!(second.room.online, 2, "distinct users, not connections");

    let said = bob.ok(send(&room, "both tabs hear this")).await;
    assert_eq!(tab1.next::<Message>("room.message").await, said);
    assert_eq!(tab2.next::<Message>("room.message").await, said);

    tab1.ok(leave(&room)).await;
    bob.assert_no("room.user_left").await;
    tab2.ok(leave(&room)).await;
    assert_eq!(bob.next::<RoomUser>("room.user_left").await, ann_in_room);

    // Closing the socket leaves its rooms as well.
    let mut tab3 = app.ws(&ann.access_token).await;
    tab3.ok(join(&room)).await;
    assert_eq!(bob.next::<RoomUser>("room.user_joined").await, ann_in_room);
    tab3.close().await;
    assert_eq!(bob.next::<RoomUser>("room.user_left").await, ann_in_room);
}

#[tokio::test]
async fn leaving_is_idempotent() {
    let app = spawn_app().await;
    let (_, mut ws) = app.user_online("ann").await;
    let room = unique("once");

    ws.ok(leave(&room)).await;
    ws.ok(join(&room)).await;
    ws.ok(leave(&room)).await;
    ws.ok(leave(&room)).await;

    assert_code(&ws.fail(send(&room, "not joined any more")).await, -32003);
    assert_invalid_param(&ws.fail(leave("not a room")).await, "room");
}

#[tokio::test]
async fn join_returns_the_latest_messages_oldest_first() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let (_, mut bob) = app.user_online("bob").await;
    let room = unique("recent");
    ann.ok(join(&room)).await;
    let mut sent = Vec::new();
    for i in 0..15 {
        sent.push(ann.ok(send(&room, &format!("m{i}"))).await);
    }

    let default = bob.ok(join(&room)).await;
    assert_eq!(default.history, sent[5..], "10 by default");
    let three = bob.ok(JoinParams { room: room.clone(), history: Some(3) }).await;
    assert_eq!(ids(&three.history), ids(&sent[12..]));
    let none = bob.ok(JoinParams { room: room.clone(), history: Some(0) }).await;
    assert!(none.history.is_empty());
    let all = bob.ok(JoinParams { room: room.clone(), history: Some(100) }).await;
    assert_eq!(all.history, sent);
    assert_invalid_param(&bob.fail(JoinParams { room: room.clone(), history: Some(101) }).await, "history");
}

#[tokio::test]
async fn room_history_pages_back_with_before_and_limit() {
    let app = spawn_app().await;
    let (_, mut ws) = app.user_online("ann").await;
    let room = unique("pages");
    ws.ok(join(&room)).await;
    let mut sent = Vec::new();
    for i in 0..12 {
        sent.push(ws.ok(send(&room, &format!("m{i}"))).await.id);
    }

    let page1 = ws.ok(history(&room, None, Some(5))).await;
    let page2 = ws.ok(history(&room, Some(page1[0].id), Some(5))).await;
    let page3 = ws.ok(history(&room, Some(page2[0].id), Some(5))).await;
    let page4 = ws.ok(history(&room, Some(page3[0].id), Some(5))).await;

    assert_eq!(ids(&page1), sent[7..]);
    assert_eq!(ids(&page2), sent[2..7]);
    assert_eq!(ids(&page3), sent[..2]);
    assert!(page4.is_empty());
    assert_eq!(ids(&ws.ok(history(&room, None, None)).await), sent, "50 by default");
    assert_eq!(ids(&ws.ok(history(&room, None, Some(1))).await), sent[11..]);
    assert_eq!(ws.ok(history(&room, None, Some(100))).await.len(), 12);
    assert_invalid_param(&ws.fail(history(&room, None, Some(0))).await, "limit");
    assert_invalid_param(&ws.fail(history(&room, None, Some(101))).await, "limit");
    assert_code(&ws.fail(history(&unique("nowhere"), None, None)).await, -32004);
    assert_invalid_param(&ws.fail(history("bad name!", None, None)).await, "room");
}

#[tokio::test]
async fn admin_only_rooms_admit_only_admins() {
    let app = spawn_app().await;
    let boss = app.admin(&unique("boss")).await;
    let (_, mut ann) = app.user_online("ann").await;
    let mut boss_ws = app.ws(&boss.access_token).await;
    let staff = unique("staff");
    let created = app.post_json("/api/rooms", &CreateRoom { name: staff.clone(), admin_only: true }, Some(&boss.access_token)).await;
    assert_eq!(created.status().as_u16(), 201);

    let joined = boss_ws.ok(join(&staff)).await;
    assert!(joined.room.admin_only);
    let secret = boss_ws.ok(send(&staff, "admins only")).await;

    assert_code(&ann.fail(join(&staff)).await, -32003);
    assert_code(&ann.fail(history(&staff, None, None)).await, -32003);
    assert_code(&ann.fail(send(&staff, "let me in")).await, -32003);
    assert_code(&ann.fail(RoomReadParams { room: staff.clone(), id: secret.id }).await, -32003);
    assert!(ann.ok(RoomsListParams::default()).await.rooms.iter().all(|r| r.name != staff));
    assert!(boss_ws.ok(RoomsListParams::default()).await.rooms.iter().any(|r| r.name == staff && r.admin_only));
    ann.assert_no("room.message").await;
}

#[tokio::test]
async fn read_cursors_drive_unread_counts_and_only_move_forward() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let mut tab1 = app.ws(&ann.access_token).await;
    let mut tab2 = app.ws(&ann.access_token).await;
    let (_, mut bob) = app.user_online("bob").await;
    let room = unique("unread");
    tab1.ok(join(&room)).await;
    bob.ok(join(&room)).await;
    let mut from_bob = Vec::new();
    for i in 0..3 {
        from_bob.push(bob.ok(send(&room, &format!("b{i}"))).await);
    }
    let own = tab1.ok(send(&room, "my own message is never unread to me")).await;

    assert_eq!(summary_of(&mut tab2, &room).await.unread, Some(3));
    assert_eq!(summary_of(&mut bob, &room).await.unread, Some(1), "ann's message is unread to bob");

    tab1.ok(RoomReadParams { room: room.clone(), id: from_bob[1].id }).await;

    let moved: ReadCursor = tab2.next("read.moved").await;
    assert_eq!(moved, ReadCursor::Room { room: room.clone(), id: from_bob[1].id });
    tab1.assert_no("read.moved").await;
    assert_eq!(summary_of(&mut tab1, &room).await.unread, Some(1));
    let over_rest: confab_shared::RoomsPage = body(app.get("/api/rooms", Some(&ann.access_token)).await).await;
    assert_eq!(over_rest.rooms.iter().find(|r| r.name == room).and_then(|r| r.unread), Some(1));

    // Backwards is accepted and ignored.
    tab1.ok(RoomReadParams { room: room.clone(), id: from_bob[0].id }).await;
    tab2.assert_no("read.moved").await;
    assert_eq!(summary_of(&mut tab1, &room).await.unread, Some(1));

    tab2.ok(RoomReadParams { room: room.clone(), id: own.id }).await;
    assert_eq!(tab1.next::<ReadCursor>("read.moved").await, ReadCursor::Room { room: room.clone(), id: own.id });
    assert_eq!(summary_of(&mut tab1, &room).await.unread, Some(0));
    assert_code(&tab1.fail(RoomReadParams { room: unique("nowhere"), id: 1 }).await, -32004);
}

#[tokio::test]
async fn a_read_cursor_from_the_future_stops_at_the_newest_message() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let mut tab1 = app.ws(&ann.access_token).await;
    let mut tab2 = app.ws(&ann.access_token).await;
    let (_, mut bob) = app.user_online("bob").await;
    let room = unique("future");
    tab1.ok(join(&room)).await;
    bob.ok(join(&room)).await;
    let newest = bob.ok(send(&room, "read me")).await;

    tab1.ok(RoomReadParams { room: room.clone(), id: i64::MAX }).await;

    assert_eq!(tab2.next::<ReadCursor>("read.moved").await, ReadCursor::Room { room: room.clone(), id: newest.id });
    assert_eq!(summary_of(&mut tab1, &room).await.unread, Some(0));
    // What comes later is unread, as it would be without the huge id.
    bob.ok(send(&room, "new")).await;
    bob.ok(send(&room, "newer")).await;
    assert_eq!(summary_of(&mut tab1, &room).await.unread, Some(2));
}

#[tokio::test]
async fn rooms_list_counts_distinct_users_online() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let mut tab1 = app.ws(&ann.access_token).await;
    let mut tab2 = app.ws(&ann.access_token).await;
    let (_, mut bob) = app.user_online("bob").await;
    let room = unique("count");

    tab1.ok(join(&room)).await;
    tab2.ok(join(&room)).await;
    bob.ok(join(&room)).await;
    assert_eq!(summary_of(&mut bob, &room).await.online, 2);

    bob.ok(leave(&room)).await;
    tab1.ok(leave(&room)).await;
    assert_eq!(summary_of(&mut bob, &room).await.online, 1);
}

#[tokio::test]
async fn a_member_filter_lists_only_the_rooms_the_caller_has_joined_over_the_socket_and_rest() {
    let app = spawn_app().await;
    let (ann, mut ann_ws) = app.user_online("ann").await;
    let (_, mut bob_ws) = app.user_online("bob").await;
    let base = unique("side");
    let (mine, also_mine, not_mine) = (format!("{base}-a"), format!("{base}-b"), format!("{base}-c"));
    ann_ws.ok(join(&mine)).await;
    ann_ws.ok(join(&also_mine)).await;
    bob_ws.ok(join(&not_mine)).await;
    // Leaving the socket's subscription keeps the membership (and its read cursor).
    ann_ws.ok(leave(&also_mine)).await;

    let params = RoomsListParams { member: Some(true), prefix: Some(base.clone()), ..RoomsListParams::default() };
    let page = ann_ws.ok(params.clone()).await;
    let names: Vec<&str> = page.rooms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, [mine.as_str(), also_mine.as_str()], "ann's rooms, by name, and not bob's");
    assert_eq!(page.total, 2, "the total counts the filtered rooms");
    let everyone = ann_ws.ok(RoomsListParams { prefix: Some(base.clone()), ..RoomsListParams::default() }).await;
    assert_eq!(everyone.rooms.len(), 3, "without the filter every room is listed");

    let rest: confab_shared::RoomsPage = body(app.get(&format!("/api/rooms?member=true&prefix={base}"), Some(&ann.access_token)).await).await;
    assert_eq!(rest.rooms.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), names, "REST lists the same");

    let mut anonymous = app.ws_anonymous().await;
    assert_invalid_param(&anonymous.fail(params).await, "member");
    let refused = app.get("/api/rooms?member=true", None).await;
    assert_eq!(refused.status(), 422, "anonymous callers are members of nothing to list");
}

#[tokio::test]
async fn a_member_keeps_a_room_quiet_and_hears_of_it_again_over_the_socket_and_rest() {
    let app = spawn_app().await;
    let room = unique("quiet");
    let (ann, mut ws) = app.user_online("ann").await;
    assert!(!ws.ok(join(&room)).await.room.quiet, "a room is not quiet to begin with");

    let quiet = ws.ok(SetQuietParams { room: room.clone(), quiet: true }).await;
    assert_eq!((quiet.name.as_str(), quiet.quiet), (room.as_str(), true));
    assert!(summary_of(&mut ws, &room).await.quiet, "rooms.list shows it");
    assert!(ws.ok(join(&room)).await.room.quiet, "room.join shows it");
    let member = RoomsListParams { member: Some(true), ..RoomsListParams::default() };
    assert!(ws.ok(member).await.rooms.iter().any(|r| r.name == room && r.quiet), "the sidebar's list shows it");

    // Someone else's view of the room is theirs.
    let (_, mut bob) = app.user_online("bob").await;
    assert!(!bob.ok(join(&room)).await.room.quiet);

    let path = format!("/api/rooms/{room}/quiet");
    let loud: RoomSummary = body(app.request(reqwest::Method::PUT, &path, Some(&ann.access_token), Some(&json!({"quiet": false}))).await).await;
    assert!(!loud.quiet);
    assert!(!summary_of(&mut ws, &room).await.quiet);
    // Setting it twice is harmless.
    for _ in 0..2 {
        assert!(ws.ok(SetQuietParams { room: room.clone(), quiet: true }).await.quiet);
    }
    let anonymous: RoomsPage = body(app.get("/api/rooms", None).await).await;
    assert!(anonymous.rooms.iter().any(|r| r.name == room && !r.quiet), "anonymous callers see no one's choice");
}

#[tokio::test]
async fn quiet_is_refused_to_anonymous_callers_and_for_bad_or_unknown_rooms() {
    let app = spawn_app().await;
    let room = unique("quiet");
    let (ann, mut ws) = app.user_online("ann").await;
    ws.ok(join(&room)).await;

    let mut anonymous = app.ws_anonymous().await;
    assert_code(&anonymous.fail(SetQuietParams { room: room.clone(), quiet: true }).await, -32001);
    assert_eq!(app.request(reqwest::Method::PUT, &format!("/api/rooms/{room}/quiet"), None, Some(&json!({"quiet": true}))).await.status(), 401);

    assert_invalid_param(&ws.fail(SetQuietParams { room: "no spaces".into(), quiet: true }).await, "room");
    assert_code(&ws.fail(SetQuietParams { room: unique("nowhere"), quiet: true }).await, -32004);
    let token = Some(ann.access_token.as_str());
    assert_eq!(app.request(reqwest::Method::PUT, &format!("/api/rooms/{}/quiet", unique("nowhere")), token, Some(&json!({"quiet": true}))).await.status(), 404);
    assert_eq!(app.request(reqwest::Method::PUT, "/api/rooms/no%20spaces/quiet", token, Some(&json!({"quiet": true}))).await.status(), 422);
    let refused = problem(app.request(reqwest::Method::PUT, &format!("/api/rooms/{room}/quiet"), token, Some(&json!({"quiet": "yes"}))).await, 422).await;
    assert_eq!(refused.field.as_deref(), Some("quiet"));
}
