//! Rooms: list, create, join (creating on first join), leave, history, typing, read cursors
//! (which clear unread messages and mentions alike), and quiet rooms (a member's choice to
//! hear nothing of a room: no notification, no Web Push for a mention).

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use confab_shared::hooks::{HookName, HookRequest};
use confab_shared::rpc::notify::RoomUser;
use confab_shared::rpc::{
    Ack, HistoryParams, JoinParams, JoinResult, LeaveParams, Notification, RoomMembersPage, RoomMembersParams,
    RoomReadParams, RoomsListParams, SetQuietParams, TypingParams,
};
use confab_shared::rpc::MAX_ANSWER_BYTES;
use confab_shared::rpc::notify::ReadCursor;
use confab_shared::moderation::RoomRole;
use confab_shared::tokens::CREATE_ROOM_SCOPE;
use confab_shared::{CreateRoom, HistoryQuery, Message, Problem, QuietRequest, RoomSummary, RoomsPage, RoomsQuery, Timestamp, validate};

use super::{hooks, moderation};
use super::{Budget, Page, list_limit, page_limit};
use crate::auth::Identity;
use crate::auth::extract::{AuthUser, MaybeAuthUser};
use crate::error::{AppError, AppResult};
use crate::http::{ApiJson, ApiQuery};
use crate::layer::{Class, Delivery, Except, group};
use crate::state::AppState;
use crate::storage::entity::rooms as room_entity;
use crate::storage::moderation as moderation_store;
use crate::storage::{StorageError, mentions, messages, rooms};
use crate::ws::Conn;

/// One `room.typing` per room per connection in this interval.
const TYPING_INTERVAL: Duration = Duration::from_secs(2);
/// Default number of messages `room.join` returns.
const JOIN_HISTORY: u32 = 10;
/// Usernames of the room's online list in `room.join`'s result (the rest: `room.members`).
pub const JOIN_ONLINE: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/rooms", get(list_rooms).post(create_room))
        .route("/api/rooms/{room}/messages", get(room_messages))
        .route("/api/rooms/{room}/quiet", put(put_quiet))
}

/// A page of the rooms visible to the caller, by name.
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", security((), ("bearer" = [])), params(RoomsQuery),
    responses(
        (status = 200, description = "Rooms by name with online counts; admin-only rooms only for admins", body = RoomsPage),
        (status = 422, description = "Invalid cursor, limit or prefix, or `member` without a bearer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_rooms(
    State(state): State<AppState>,
    MaybeAuthUser(caller): MaybeAuthUser,
    ApiQuery(q): ApiQuery<RoomsQuery>,
) -> AppResult<Json<RoomsPage>> {
    let params = RoomsListParams { cursor: q.cursor, limit: q.limit, prefix: q.prefix, member: q.member };
    list(&state, caller.as_ref(), params).await.map(Json)
}

/// Create a room.
#[utoipa::path(post, path = "/api/rooms", tag = "rooms", security(("bearer" = [])), request_body = CreateRoom,
    responses(
        (status = 201, description = "Created", body = RoomSummary),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "admin_only requested by a non-admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A room with that name exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_room(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<CreateRoom>,
) -> AppResult<(StatusCode, Json<RoomSummary>)> {
    let name = validate::room_name(&body.name).map_err(|m| AppError::invalid("name", m))?;
    if body.admin_only && !caller.is_admin {
        return Err(AppError::Forbidden("only admins can create admin-only rooms"));
    }
    let room = match rooms::create(&state.db, name, body.admin_only, Some(caller.user_id)).await {
        Err(StorageError::Duplicate) => return Err(AppError::Conflict("a room with that name exists")),
        other => other?,
    };
    Ok((StatusCode::CREATED, Json(summary(&state, Some(&caller), &room).await?)))
}

/// A page of a room's history, oldest first.
#[utoipa::path(get, path = "/api/rooms/{room}/messages", tag = "rooms", security((), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[A-Za-z0-9_-]{1,64}$"), HistoryQuery),
    responses(
        (status = 200, description = "Messages, oldest first", body = [Message]),
        (status = 403, description = "Admin-only room", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn room_messages(
    State(state): State<AppState>,
    MaybeAuthUser(caller): MaybeAuthUser,
    Path(room): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> AppResult<Json<Vec<Message>>> {
    let params = HistoryParams { room, before: query.before, limit: query.limit };
    // The same page as over the socket, so both page alike.
    history(&state, caller.as_ref(), params, MAX_ANSWER_BYTES).await.map(Json)
}

/// Keep the room quiet for the caller, or hear of it again (`room.set_quiet`).
#[utoipa::path(put, path = "/api/rooms/{room}/quiet", tag = "rooms", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body = QuietRequest,
    responses(
        (status = 200, description = "The room as the caller's `rooms.list` shows it now", body = RoomSummary),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Admin-only room, or banned from it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid room or body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put_quiet(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(room): Path<String>,
    ApiJson(QuietRequest { quiet }): ApiJson<QuietRequest>,
) -> AppResult<Json<RoomSummary>> {
    set_quiet(&state, &caller, SetQuietParams { room, quiet }).await.map(Json)
}

/// `room.set_quiet` and `PUT /api/rooms/{room}/quiet`: for a room the caller may read; the
/// caller becomes a member if they were not one.
pub async fn set_quiet(state: &AppState, me: &Identity, p: SetQuietParams) -> AppResult<RoomSummary> {
    let room = readable(state, Some(me), &p.room).await?;
    rooms::set_quiet(&state.db, me.user_id, room.id, p.quiet).await?;
    summary(state, Some(me), &room).await
}

/// `rooms.list` and `GET /api/rooms`: a keyset page of the rooms visible to `caller`, by
/// name, with online counts and unread counts.
pub async fn list(state: &AppState, caller: Option<&Identity>, p: RoomsListParams) -> AppResult<RoomsPage> {
    let limit = list_limit(p.limit, 50)?;
    let prefix = match p.prefix.as_deref() {
        None | Some("") => "",
        Some(prefix) => validate::room_name(prefix).map_err(|m| AppError::invalid("prefix", m))?,
    };
    let after = p.cursor.as_deref().filter(|c| !c.is_empty()).map(Page::decode).transpose()?;
    let is_admin = caller.is_some_and(|c| c.is_admin);
    let member = match (p.member, caller) {
        (Some(true), Some(c)) => Some(c.user_id),
        (Some(true), None) => return Err(AppError::invalid("member", "needs a logged-in caller")),
        _ => None,
    };
    let query = rooms::RoomQuery { include_admin_only: is_admin, prefix, member };
    let rows = rooms::page(&state.db, query, after.as_deref(), limit as u64 + 1).await?;
    let (rows, next_cursor) = Page::split(rows, limit, |r| r.name.clone());
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    let online = state.presence.room_counts_of(&names).await?;
    let (unread, mentioned, quiet) = match caller {
        Some(c) => (
            Some(rooms::unread_counts(&state.db, c.user_id).await?),
            Some(mentions::unread_counts(&state.db, c.user_id).await?),
            rooms::quiet_rooms(&state.db, c.user_id).await?,
        ),
        None => (None, None, Default::default()),
    };
    let total = rooms::count(&state.db, query).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut roles = moderation_store::roles_of(&state.db, &ids).await?;
    let rooms = rows
        .into_iter()
        .map(|room| {
            let (owner, moderators) = roles.remove(&room.id).unwrap_or_default();
            RoomSummary {
                online: online.get(&room.name).copied().unwrap_or(0),
                unread: unread.as_ref().map(|u| u.get(&room.id).copied().unwrap_or(0)),
                mentions: mentioned.as_ref().map(|m| m.get(&room.id).copied().unwrap_or(0)),
                owner,
                moderators,
                slow_mode_secs: room.slow_mode_secs.max(0) as u32,
                retention_days: room.retention_days.map(|d| d.max(0) as u32),
                quiet: quiet.contains(&room.id),
                name: room.name,
                admin_only: room.admin_only,
                last_message_at: room.last_message_at.map(Timestamp::from_millis),
            }
        })
        .collect();
    Ok(RoomsPage { rooms, next_cursor, total })
}

async fn summary(state: &AppState, caller: Option<&Identity>, room: &room_entity::Model) -> AppResult<RoomSummary> {
    let online = state.presence.room_count(&room.name).await?;
    let (unread, mentioned, quiet) = match caller {
        Some(c) => (
            Some(rooms::unread_counts(&state.db, c.user_id).await?.get(&room.id).copied().unwrap_or(0)),
            Some(mentions::unread_counts(&state.db, c.user_id).await?.get(&room.id).copied().unwrap_or(0)),
            rooms::quiet_rooms(&state.db, c.user_id).await?.contains(&room.id),
        ),
        None => (None, None, false),
    };
    let (owner, moderators) = moderation_store::roles_of(&state.db, &[room.id]).await?.remove(&room.id).unwrap_or_default();
    Ok(RoomSummary {
        name: room.name.clone(),
        online,
        admin_only: room.admin_only,
        last_message_at: room.last_message_at.map(Timestamp::from_millis),
        unread,
        mentions: mentioned,
        owner,
        moderators,
        slow_mode_secs: room.slow_mode_secs.max(0) as u32,
        retention_days: room.retention_days.map(|d| d.max(0) as u32),
        quiet,
    })
}

/// A `room` parameter that breaks the naming rules: -32602 with `data.field = "room"`.
pub fn room_param(name: &str) -> AppResult<&str> {
    validate::room_name(name).map_err(|m| AppError::invalid("room", m))
}

/// Finds a room the caller may read: -32004 when it does not exist, -32003 when admin-only.
pub async fn readable(state: &AppState, caller: Option<&Identity>, name: &str) -> AppResult<room_entity::Model> {
    room_param(name)?;
    let room = rooms::by_name(&state.db, name).await?.ok_or(AppError::NotFound("room"))?;
    check_access(caller, &room)?;
    if let Some(me) = caller {
        moderation::enforce::not_banned(state, room.id, me.user_id)?;
    }
    Ok(room)
}

/// -32003 when `caller` may not read `room` (admin-only rooms are for admins).
pub fn check_access(caller: Option<&Identity>, room: &room_entity::Model) -> AppResult<()> {
    if room.admin_only && !caller.is_some_and(|c| c.is_admin) {
        return Err(AppError::Forbidden("this room is for admins only"));
    }
    Ok(())
}

/// `room.join`: subscribe, announce the user's first arrival, return who is here and the
/// latest messages. A name that does not exist yet is created for a caller who may create
/// rooms ([`CREATE_ROOM_SCOPE`]); anonymous callers get -32004.
pub async fn join(state: &AppState, conn: &mut Conn, p: JoinParams) -> AppResult<JoinResult> {
    let name = room_param(&p.room)?;
    if let Some(external) = conn.identity.as_ref().and_then(|me| me.external.as_ref()) {
        if external.exclusive && !external.rooms.iter().any(|r| r == name) {
            return Err(AppError::Forbidden("this token's rooms are fixed by its issuer; it may join no other room"));
        }
    }
    let limit = join_history(p.history)?;
    // Asked once per room and connection: joining a room already joined only re-reads it.
    if state.hooks.is_on(HookName::RoomJoin) && !conn.rooms.contains_key(name) {
        let request = HookRequest::RoomJoin { user: conn.identity.as_ref().map(hooks::user), params: JoinParams { room: name.to_owned(), history: p.history } };
        state.hooks.allowed(&request).await?;
    }
    enter(state, conn, name, limit).await
}

/// `room.join`'s `history`: 0 to 100, [`JOIN_HISTORY`] when absent.
fn join_history(history: Option<u32>) -> AppResult<u32> {
    match history {
        None => Ok(JOIN_HISTORY),
        Some(n @ 0..=100) => Ok(n),
        Some(_) => Err(AppError::invalid("history", "must be 0 to 100")),
    }
}

/// Joins `name` (checked) for this connection, without asking the `room.join` hook: the
/// rooms a token's claim or the `connect` hook chose were decided at connect.
async fn enter(state: &AppState, conn: &mut Conn, name: &str, limit: u32) -> AppResult<JoinResult> {
    let room = match (rooms::by_name(&state.db, name).await?, &conn.identity) {
        (Some(room), _) => room,
        // A login has every scope; an API token needs `write` to add a room to the server.
        (None, Some(me)) if !me.scopes.contains(CREATE_ROOM_SCOPE) => return Err(AppError::MissingScope(CREATE_ROOM_SCOPE)),
        (None, Some(me)) => rooms::get_or_create(&state.db, name, me.user_id).await?,
        (None, None) => return Err(AppError::NotFound("room")),
    };
    check_access(conn.identity.as_ref(), &room)?;
    if let Some(me) = &conn.identity {
        moderation::enforce::not_banned(state, room.id, me.user_id)?;
    }

    if !conn.rooms.contains_key(&room.name) {
        // Subscribe before announcing, so our own join and everything after it reaches us.
        state.layer.group_add(&group::room(&room.name), conn.id).await.map_err(|e| anyhow::anyhow!(e))?;
        conn.rooms.insert(room.name.clone(), room.id);
        if let Some(me) = &conn.identity {
            rooms::add_member(&state.db, me.user_id, room.id).await?;
            if state.presence.enter(&room.name, &me.username).await? {
                state.presence_batch.room(&room.name, &me.username, true);
            }
        }
    }
    let (online, online_next_cursor) = members_page(state, &room.name, None, JOIN_ONLINE).await?;
    // One more than asked, to tell whether older messages exist.
    let mut rows = messages::history(&state.db, room.id, None, u64::from(limit) + 1).await?;
    let older = rows.len() > limit as usize;
    if older {
        rows.remove(0);
    }
    let summary = summary(state, conn.identity.as_ref(), &room).await?;
    let role = match &conn.identity {
        Some(me) => moderation::roles::role(state, &room, me.user_id).await?,
        None => RoomRole::Member,
    };
    let muted = match &conn.identity {
        Some(me) => moderation::enforce::mute_notice(state, room.id, &room.name, me.user_id).await?,
        None => None,
    };
    let mut joined = JoinResult { room: summary, online, online_next_cursor, history: Vec::new(), history_more: false, role, muted };
    let mut budget = Budget::after(conn.answer_budget, &joined);
    joined.history = budget.newest(messages::to_wire(&state.db, rows).await?);
    joined.history_more = older || budget.cut();
    Ok(joined)
}

/// Joins the rooms chosen at connect: those a trusted issuer's token names in its rooms
/// claim, then those the `connect` hook added. A room that cannot be joined is logged and
/// skipped: the socket still opens.
pub async fn join_at_connect(state: &AppState, conn: &mut Conn, from_hook: Vec<String>) {
    let claimed = conn.identity.as_ref().and_then(|me| me.external.as_ref()).map(|e| e.rooms.clone()).unwrap_or_default();
    for room in claimed.iter().chain(&from_hook) {
        let entered = match room_param(room) {
            Ok(name) => enter(state, conn, name, 0).await.map(drop),
            Err(err) => Err(err),
        };
        if let Err(err) = entered {
            tracing::warn!(conn = conn.id, %room, %err, "a room chosen at connect could not be joined");
        }
    }
}

/// `room.members`: a page of the users present in a room this connection joined.
pub async fn members(state: &AppState, conn: &Conn, p: RoomMembersParams) -> AppResult<RoomMembersPage> {
    room_param(&p.room)?;
    let limit = list_limit(p.limit, JOIN_ONLINE)?;
    let after = p.cursor.as_deref().filter(|c| !c.is_empty()).map(Page::decode).transpose()?;
    if !conn.rooms.contains_key(&p.room) {
        return Err(AppError::Forbidden("join the room first"));
    }
    let all = sorted_members(state, &p.room).await?;
    let total = all.len() as u64;
    let (members, next_cursor) = page_of(all, after.as_deref(), limit);
    Ok(RoomMembersPage { members, next_cursor, total })
}

/// Users present in a room, by lowercase name (the order of every user list).
async fn sorted_members(state: &AppState, room: &str) -> AppResult<Vec<String>> {
    let mut all = state.presence.room_members(room).await?;
    all.sort_by_cached_key(|n| n.to_ascii_lowercase());
    Ok(all)
}

fn page_of(all: Vec<String>, after: Option<&str>, limit: usize) -> (Vec<String>, Option<String>) {
    let start = after.map_or(0, |a| all.partition_point(|n| n.to_ascii_lowercase().as_str() <= a));
    let rest: Vec<String> = all.into_iter().skip(start).take(limit + 1).collect();
    Page::split(rest, limit, |n| n.to_ascii_lowercase())
}

async fn members_page(state: &AppState, room: &str, after: Option<&str>, limit: usize) -> AppResult<(Vec<String>, Option<String>)> {
    Ok(page_of(sorted_members(state, room).await?, after, limit))
}

/// `room.leave`: idempotent; announces the user's last departure.
pub async fn leave(state: &AppState, conn: &mut Conn, p: LeaveParams) -> AppResult<Ack> {
    room_param(&p.room)?;
    leave_room(state, conn, &p.room).await;
    Ok(Ack {})
}

/// Leaves one room (also used when a connection closes).
pub async fn leave_room(state: &AppState, conn: &mut Conn, room: &str) {
    if conn.rooms.remove(room).is_none() {
        return;
    }
    conn.typing.remove(room);
    state.layer.group_discard(&group::room(room), conn.id);
    if let Some(me) = &conn.identity {
        match state.presence.exit(room, &me.username).await {
            Ok(true) => state.presence_batch.room(room, &me.username, false),
            Ok(false) => {}
            Err(err) => tracing::warn!(%err, room, "presence exit not recorded"),
        }
    }
}

/// `room.history` and `GET /api/rooms/{room}/messages`: the newest `limit` messages before
/// `before` that fit in `budget` bytes of JSON (an array).
pub async fn history(state: &AppState, caller: Option<&Identity>, p: HistoryParams, budget: usize) -> AppResult<Vec<Message>> {
    let limit = page_limit(p.limit)?;
    let room = readable(state, caller, &p.room).await?;
    let rows = messages::history(&state.db, room.id, p.before, limit).await?;
    Ok(Budget::array(budget).newest(messages::to_wire(&state.db, rows).await?))
}

/// `room.typing`: at most once per 2 s per room; `Ok(None)` means "over the limit" for a
/// notification, which is dropped silently.
pub async fn typing(state: &AppState, conn: &mut Conn, p: TypingParams) -> AppResult<Ack> {
    let me = conn.user()?.clone();
    room_param(&p.room)?;
    let Some(&room_id) = conn.rooms.get(&p.room) else {
        return Err(AppError::Forbidden("join the room first"));
    };
    moderation::enforce::may_speak(state, room_id, me.user_id)?;
    let now = Instant::now();
    if let Some(last) = conn.typing.get(&p.room) {
        let elapsed = now.duration_since(*last);
        if elapsed < TYPING_INTERVAL {
            return Err(AppError::RateLimited { retry_after_ms: (TYPING_INTERVAL - elapsed).as_millis() as u64 });
        }
    }
    conn.typing.insert(p.room.clone(), now);
    let frame = Notification::Typing(RoomUser { room: p.room.clone(), username: me.username }).to_frame();
    let delivery = Delivery::Frame { text: frame.into(), class: Class::Droppable, except: Except::User(me.user_id) };
    state.layer.group_send(&group::room(&p.room), delivery).map_err(|e| anyhow::anyhow!(e))?;
    Ok(Ack {})
}

/// `room.read`: moves the cursor forward (at most to the room's newest message) and tells the
/// reader's other connections where it is now.
pub async fn read(state: &AppState, conn: &Conn, p: RoomReadParams) -> AppResult<Ack> {
    let me = conn.user()?;
    let room = readable(state, Some(me), &p.room).await?;
    if let Some(id) = rooms::mark_read(&state.db, me.user_id, room.id, p.id).await? {
        let event = Notification::ReadMoved(ReadCursor::Room { room: room.name, id });
        let delivery = Delivery::Frame { text: event.to_frame().into(), class: Class::Reliable, except: Except::Conn(conn.id) };
        state.layer.group_send(&group::user(me.user_id), delivery).map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(Ack {})
}

/// Sends a notification to every connection in a room.
pub fn broadcast(state: &AppState, room: &str, event: &Notification, class: Class) {
    crate::layer::broadcast_room(state.layer.as_ref(), room, event, class);
}
