//! Every list pages: users (prefix search, online filter, counts), rooms and room members,
//! by keyset cursors that inserts never shift; bad paging params name the field.

use confab_shared::rpc::{RoomMembersParams, RoomsListParams, UsersListParams};
use confab_shared::{RoomsPage, UsersPage};

use crate::helpers::{TestApp, assert_code, assert_invalid_param, body, join, problem, spawn_app, spawn_app_with, unique};

/// Accounts made straight in the database: paging needs many, logging in none.
async fn accounts(app: &TestApp, names: &[String]) {
    for name in names {
        confab::storage::users::create(&app.state().db, name, "not a hash", false).await.expect("the account is created");
    }
}

fn users(prefix: &str, limit: u32, cursor: Option<String>) -> UsersListParams {
    UsersListParams { prefix: Some(prefix.to_owned()), limit: Some(limit), cursor, online: None }
}

fn names(page: &UsersPage) -> Vec<String> {
    page.users.iter().map(|u| u.username.clone()).collect()
}

#[tokio::test]
async fn users_page_in_name_order_and_inserts_never_shift_a_page() {
    let app = spawn_app().await;
    let (_, mut ws) = app.user_online("reader").await;
    let base = unique("pg");
    // Mixed case on purpose: the order is case-insensitive.
    let mut all: Vec<String> = ["b", "D", "f", "H", "j"].iter().map(|s| format!("{base}_{s}")).collect();
    accounts(&app, &all).await;

    let first = ws.ok(users(&base, 2, None)).await;
    assert_eq!(names(&first), all[..2]);
    assert_eq!((first.total, first.online), (5, 0));
    // Names before and inside the part already read, and one after it.
    let inserted: Vec<String> = ["a", "c", "e0", "z"].iter().map(|s| format!("{base}_{s}")).collect();
    accounts(&app, &inserted).await;
    let mut rest = Vec::new();
    let mut cursor = first.next_cursor.clone();
    while let Some(next) = cursor {
        let page = ws.ok(users(&base, 2, Some(next))).await;
        assert!(page.users.len() <= 2);
        rest.extend(names(&page));
        cursor = page.next_cursor;
    }
    // Everything after the cursor, inserted or not, exactly once, in order.
    all.extend(["e0", "z"].iter().map(|s| format!("{base}_{s}")));
    let mut expected: Vec<String> = all[2..].to_vec();
    expected.sort_by_key(|n| n.to_lowercase());
    assert_eq!(rest, expected);
    assert_eq!(ws.ok(users(&base, 200, None)).await.total, 9);
}

#[tokio::test]
async fn one_call_finds_a_user_by_prefix_whatever_the_case() {
    let app = spawn_app().await;
    let base = unique("find");
    let crowd: Vec<String> = (0..60).map(|i| format!("{base}_{i:03}")).collect();
    accounts(&app, &crowd).await;
    let needle = format!("{base}_Needle.x");
    accounts(&app, &[needle.clone()]).await;

    let page: UsersPage = body(app.get(&format!("/api/users?prefix={}&limit=5", format!("{base}_nee").to_uppercase()), None).await).await;
    assert_eq!(names(&page), vec![needle]);
    assert_eq!((page.total, page.next_cursor), (1, None));
    let crowd_page: UsersPage = body(app.get(&format!("/api/users?prefix={base}_0"), None).await).await;
    assert_eq!((crowd_page.users.len(), crowd_page.total), (50, 60), "the default page is 50");
    assert!(crowd_page.next_cursor.is_some());
}

#[tokio::test]
async fn the_online_filter_lists_online_users_only_and_counts_them() {
    let app = spawn_app().await;
    let base = unique("on");
    let ann = app.signup_and_login(&format!("{base}_ann")).await;
    let cy = app.signup_and_login(&format!("{base}_cy")).await;
    accounts(&app, &[format!("{base}_bob"), format!("{base}_dee")]).await;
    let mut ann_ws = app.ws(&ann.access_token).await;
    ann_ws.ok(confab_shared::rpc::EchoParams { text: "here".into() }).await;
    let mut cy_ws = app.ws(&cy.access_token).await;
    cy_ws.ok(confab_shared::rpc::EchoParams { text: "here".into() }).await;

    let online_first = ann_ws.ok(UsersListParams { online: Some(true), ..users(&base, 1, None) }).await;
    assert_eq!(names(&online_first), vec![ann.user.username.clone()]);
    assert!(online_first.users.iter().all(|u| u.online));
    assert_eq!((online_first.total, online_first.online), (4, 2));
    let online_next = ann_ws.ok(UsersListParams { online: Some(true), ..users(&base, 1, online_first.next_cursor) }).await;
    assert_eq!(names(&online_next), vec![cy.user.username.clone()]);
    assert_eq!(online_next.next_cursor, None);

    let everyone = ann_ws.ok(users(&base, 10, None)).await;
    let flags: Vec<bool> = everyone.users.iter().map(|u| u.online).collect();
    assert_eq!(flags, vec![true, false, true, false], "ann, bob, cy, dee");
    assert_eq!((everyone.total, everyone.online), (4, 2));
}

#[tokio::test]
async fn bad_paging_params_name_the_field() {
    let app = spawn_app().await;
    let (_, mut ws) = app.user_online("reader").await;

    for limit in [0, 201] {
        assert_invalid_param(&ws.fail(UsersListParams { limit: Some(limit), ..UsersListParams::default() }).await, "limit");
        assert_invalid_param(&ws.fail(RoomsListParams { limit: Some(limit), ..RoomsListParams::default() }).await, "limit");
    }
    // Not base64url (or of a length no encoding has, or too long): refused, as the schema says.
    for cursor in ["!!", "abcde", "a=", "A".repeat(104).as_str()] {
        let params = UsersListParams { cursor: Some(cursor.to_owned()), ..UsersListParams::default() };
        assert_invalid_param(&ws.fail(params).await, "cursor");
    }
    // Any base64url text is a position (what the schema admits): one we never issued, even
    // with bits a canonical encoder would zero or bytes that are no text, starts a page.
    for cursor in ["bm90IGEga2V5IQ", "bm90IGEga2V5IR", "__8", "AA"] {
        ws.ok(UsersListParams { cursor: Some(cursor.to_owned()), ..UsersListParams::default() }).await;
        ws.ok(RoomsListParams { cursor: Some(cursor.to_owned()), ..RoomsListParams::default() }).await;
    }
    // An empty cursor is no cursor (what a query string's `cursor=` means): the first page.
    let names = |page: &UsersPage| page.users.iter().map(|u| u.username.clone()).collect::<Vec<_>>();
    let empty = ws.ok(UsersListParams { cursor: Some(String::new()), ..UsersListParams::default() }).await;
    let first = ws.ok(UsersListParams::default()).await;
    assert_eq!((names(&empty), empty.total), (names(&first), first.total));
    assert_invalid_param(&ws.fail(UsersListParams { prefix: Some("a b".into()), ..UsersListParams::default() }).await, "prefix");
    assert_invalid_param(&ws.fail(RoomsListParams { prefix: Some("a.b".into()), ..RoomsListParams::default() }).await, "prefix");
    assert_eq!(problem(app.get("/api/users?limit=500", None).await, 422).await.field.as_deref(), Some("limit"));
    assert_eq!(problem(app.get("/api/users?online=maybe", None).await, 422).await.field.as_deref(), Some("online"));
    assert_eq!(problem(app.get("/api/rooms?cursor=%25%25", None).await, 422).await.field.as_deref(), Some("cursor"));
    assert_eq!(problem(app.get("/api/rooms?limit=-1", None).await, 422).await.field.as_deref(), Some("limit"));
}

#[tokio::test]
async fn rooms_page_by_name_with_counts_and_hide_admin_rooms() {
    let app = spawn_app().await;
    let base = unique("rm");
    let (_, mut ws) = app.user_online("ann").await;
    for suffix in ["a", "b", "c"] {
        confab::storage::rooms::create(&app.state().db, &format!("{base}_{suffix}"), false, None).await.expect("a room");
    }
    confab::storage::rooms::create(&app.state().db, &format!("{base}_admins"), true, None).await.expect("a room");
    ws.ok(join(&format!("{base}_b"))).await;

    let params = |cursor| RoomsListParams { prefix: Some(base.clone()), limit: Some(2), cursor, member: None };
    let first = ws.ok(params(None)).await;
    let first_names: Vec<&str> = first.rooms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(first_names, [format!("{base}_a"), format!("{base}_b")]);
    assert_eq!((first.total, first.rooms[1].online), (3, 1), "the admin-only room is neither listed nor counted");
    confab::storage::rooms::create(&app.state().db, &format!("{base}_aa"), false, None).await.expect("a room");
    let second = ws.ok(params(first.next_cursor)).await;
    let second_names: Vec<&str> = second.rooms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(second_names, [format!("{base}_c")], "a room inserted before the cursor does not shift the page");
    assert_eq!((second.total, second.next_cursor), (4, None));
    let rest: RoomsPage = body(app.get(&format!("/api/rooms?prefix={base}_c"), None).await).await;
    assert_eq!(rest.rooms.len(), 1);
}

#[tokio::test]
async fn room_members_page_and_need_a_join() {
    let app = spawn_app().await;
    let room = unique("crowd");
    let mut sockets = Vec::new();
    let mut members = Vec::new();
    for i in 0..3 {
        let (tokens, mut ws) = app.user_online(&format!("m{i}")).await;
        ws.ok(join(&room)).await;
        members.push(tokens.user.username);
        sockets.push(ws);
    }
    members.sort_by_key(|n| n.to_lowercase());
    let (_, mut outsider) = app.user_online("outsider").await;
    let page = |cursor| RoomMembersParams { room: room.clone(), cursor, limit: Some(2) };

    assert_code(&outsider.fail(page(None)).await, -32003);
    let ws = &mut sockets[0];
    let first = ws.ok(page(None)).await;
    assert_eq!((first.members.as_slice(), first.total), (&members[..2], 3));
    let second = ws.ok(page(first.next_cursor)).await;
    assert_eq!((second.members.as_slice(), second.next_cursor), (&members[2..], None));
    assert_invalid_param(&ws.fail(RoomMembersParams { limit: Some(0), ..page(None) }).await, "limit");
}

#[tokio::test]
async fn a_big_room_gets_its_new_count_instead_of_each_arrival() {
    use confab_shared::rpc::notify::{RoomOnline, RoomUser};
    let app = spawn_app_with(|c| c.room_presence_detail_max = 2).await;
    let room = unique("big");
    let (first_tokens, mut first) = app.user_online("first").await;
    first.ok(join(&room)).await;
    let (second_tokens, mut second) = app.user_online("second").await;
    second.ok(join(&room)).await;
    assert_eq!(first.next::<RoomUser>("room.user_joined").await.username, first_tokens.user.username);
    assert_eq!(first.next::<RoomUser>("room.user_joined").await.username, second_tokens.user.username, "two present: itemised");

    let (third_tokens, mut third) = app.user_online("third").await;
    let joined = third.ok(join(&room)).await;
    assert_eq!(joined.room.online, 3);

    let count: RoomOnline = first.next("room.online_changed").await;
    assert_eq!((count.room.as_str(), count.online), (room.as_str(), 3));
    assert!(first.take_from_backlog("room.user_joined").is_none(), "no itemised arrival in a big room");
    assert_eq!(second.next::<RoomOnline>("room.online_changed").await.online, 3);
    drop(third);
    // Back to two present: itemised again.
    assert_eq!(second.next::<RoomUser>("room.user_left").await.username, third_tokens.user.username);
}
