//! What an API token's scopes allow where the method alone does not say: joining a room
//! reads, creating one (by `room.join` of a new name, or `POST /api/rooms`) writes; starting
//! an export writes, following it reads.

use confab_shared::rpc::RoomsListParams;
use confab_shared::{ApiTokenCreated, JobAccepted, RoomsPage, Scope, TokenPair};
use serde_json::json;

use crate::helpers::{TestApp, assert_code, body, join, problem, spawn_app, unique};

async fn token(app: &TestApp, login: &TokenPair, scopes: &[Scope]) -> String {
    let response = app.post_json("/api/tokens", &json!({ "name": unique("bot"), "scopes": scopes }), Some(&login.access_token)).await;
    body::<ApiTokenCreated>(response).await.token
}

async fn room_exists(app: &TestApp, login: &TokenPair, room: &str) -> bool {
    let page: RoomsPage = body(app.get(&format!("/api/rooms?prefix={room}"), Some(&login.access_token)).await).await;
    page.rooms.iter().any(|r| r.name == room)
}

#[tokio::test]
async fn a_read_token_cannot_create_a_room_but_joins_an_existing_one() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let existing = unique("lobby");
    app.ws(&ann.access_token).await.ok(join(&existing)).await;
    let read = token(&app, &ann, &[Scope::Read]).await;
    let mut bot = app.ws(&read).await;

    let joined = bot.ok(join(&existing)).await;
    assert_eq!(joined.room.name, existing);

    let fresh = unique("new");
    let refused = bot.fail(join(&fresh)).await;
    assert_code(&refused, -32003);
    assert_eq!(refused.data.as_ref().and_then(|d| d["scope"].as_str()), Some("write"), "{refused:?}");
    assert!(!room_exists(&app, &ann, &fresh).await, "the room was created anyway");
    let rest = problem(app.post_json("/api/rooms", &json!({ "name": fresh }), Some(&read)).await, 403).await;
    assert_eq!(rest.kind, "/problems/insufficient-scope");
    // The socket is still usable, and listing is reading.
    bot.ok(RoomsListParams::default()).await;

    let mut writer = app.ws(&token(&app, &ann, &[Scope::Read, Scope::Write]).await).await;
    writer.ok(join(&fresh)).await;
    assert!(room_exists(&app, &ann, &fresh).await, "a write token creates the room by joining");
    // Anonymous sockets never create rooms (unchanged): -32004.
    assert_code(&app.ws_anonymous().await.fail(join(&unique("nobody"))).await, -32004);
}

#[tokio::test]
async fn starting_an_export_needs_write_and_following_it_needs_read() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let room = unique("archive");
    app.ws(&ann.access_token).await.ok(join(&room)).await;
    let read = token(&app, &ann, &[Scope::Read]).await;
    let write = token(&app, &ann, &[Scope::Write]).await;
    let export = json!({ "kind": "export_room", "room": room, "format": "json" });

    let refused = problem(app.post_json("/api/jobs", &export, Some(&read)).await, 403).await;
    assert_eq!(refused.kind, "/problems/insufficient-scope");
    assert!(refused.detail.contains("write"), "{}", refused.detail);

    let accepted = app.post_json("/api/jobs", &export, Some(&write)).await;
    assert_eq!(accepted.status().as_u16(), 202);
    let job_id = body::<JobAccepted>(accepted).await.job_id;
    let polled = app.get(&format!("/api/jobs/{job_id}"), Some(&read)).await;
    assert_eq!(polled.status().as_u16(), 200, "a read token follows the export");
}
