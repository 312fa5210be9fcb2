//! Moderation over real sockets: who may do what (a table of every action by every kind of
//! caller), kicks, bans and mutes taking effect at once and ending on time, a muted user
//! told of the mute by `room.join`, a room's bans and mutes listed for its moderators, slow mode,
//! suspended accounts refused on every path, reports, the audit log, purges, decisions that
//! survive a restart, a decision refused whole when its audit row cannot be written, and
//! two instances on one Redis.

use std::time::Duration;

use confab_shared::moderation::{
    AuditPage, BanParams, ConfigureParams, KickParams, ModerationAction, ModerationApplied, MuteParams, ReportAccepted, ReportParams,
    ReportState, ReportsPage, RoomRole, SetRoleParams, Suspension, SuspensionsPage, UnbanParams, UnmuteParams,
};
use confab_shared::rpc::notify::RoomUser;
use confab_shared::rpc::{DeleteParams, EchoParams, EditParams, ErrorObject, ReactParams, RoomReadParams, TypingParams};
use confab_shared::{ApiTokenCreated, Job, JobAccepted, JobState, Message, TokenPair};
use serde_json::{Value, json};

use crate::helpers::*;
use confab::features::moderation::retention::{Progress, sweep};
use confab::storage::now_ms;

/// A room owned by `owner`, with `moderator` appointed and `member` and `target` in it.
struct Room {
    app: TestApp,
    name: String,
    admin: TokenPair,
    owner: TokenPair,
    moderator: TokenPair,
    member: TokenPair,
    target: TokenPair,
}

async fn room() -> Room {
    room_on(spawn_app().await).await
}

async fn room_on(app: TestApp) -> Room {
    let admin = app.admin(&unique("adm")).await;
    let owner = app.signup_and_login(&unique("own")).await;
    let moderator = app.signup_and_login(&unique("mod")).await;
    let member = app.signup_and_login(&unique("mem")).await;
    let target = app.signup_and_login(&unique("tgt")).await;
    let name = unique("civil");
    let created = app.post_json("/api/rooms", &json!({ "name": name }), Some(&owner.access_token)).await;
    assert_eq!(created.status().as_u16(), 201);
    let mut ws = app.ws(&owner.access_token).await;
    let made = ws.ok(SetRoleParams { room: name.clone(), user: moderator.user.username.clone(), role: RoomRole::Moderator }).await;
    assert_eq!(made.action, ModerationAction::SetRole);
    Room { app, name, admin, owner, moderator, member, target }
}

impl Room {
    /// A socket of `who`, joined to the room.
    async fn joined(&self, who: &TokenPair) -> WsClient {
        let mut ws = self.app.ws(&who.access_token).await;
        ws.ok(join(&self.name)).await;
        ws
    }

    /// An API token of `who` with `scopes`.
    async fn token(&self, who: &TokenPair, scopes: &[&str]) -> String {
        let body = json!({ "name": "bot", "scopes": scopes });
        let created: ApiTokenCreated = body_of(self.app.post_json("/api/tokens", &body, Some(&who.access_token)).await).await;
        created.token
    }

    /// A message by `target`, for a delete or a report.
    async fn target_message(&self) -> Message {
        let mut ws = self.joined(&self.target).await;
        ws.ok(send(&self.name, "something to moderate")).await
    }

    /// Undoes whatever an action did to `target` (as an admin).
    async fn reset_target(&self) {
        let mut ws = self.app.ws(&self.admin.access_token).await;
        let user = self.target.user.username.clone();
        ws.ok(UnbanParams { room: self.name.clone(), user: user.clone() }).await;
        ws.ok(UnmuteParams { room: self.name.clone(), user: user.clone() }).await;
        ws.ok(SetRoleParams { room: self.name.clone(), user, role: RoomRole::Member }).await;
        ws.ok(ConfigureParams { room: self.name.clone(), slow_mode_secs: Some(0), retention_days: None }).await;
    }
}

async fn body_of<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> T {
    body(response).await
}

/// POST with a bearer and a JSON body.
async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.post_json(path, &body, Some(token)).await
}

/// Waits for `username`'s `room.user_joined` (others' are skipped).
async fn arrival(ws: &mut WsClient, username: &str) {
    while ws.next::<RoomUser>("room.user_joined").await.username != username {}
}

fn reason_of(err: &ErrorObject) -> Option<&str> {
    err.data.as_ref().and_then(|d| d.get("reason")).and_then(Value::as_str)
}

#[track_caller]
fn assert_sanctioned(err: &ErrorObject, reason: &str) {
    assert_eq!((err.code, reason_of(err)), (-32003, Some(reason)), "{err:?}");
}

// ---- Who may do what --------------------------------------------------------------------

/// Every room action.
#[derive(Clone, Copy, Debug)]
enum Action {
    Kick,
    Ban,
    Unban,
    Mute,
    Unmute,
    Appoint,
    SlowMode,
    DeleteOthers,
    Report,
}

/// Every kind of caller.
#[derive(Clone, Copy, Debug)]
enum Caller {
    Admin,
    Owner,
    Moderator,
    Member,
    Anonymous,
    /// The owner's API token with `write`.
    OwnerTokenWithWrite,
    /// The owner's API token with `read` only.
    OwnerTokenWithoutWrite,
}

/// What a call must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    /// -32003 without a scope: the rules refuse it.
    Forbidden,
    /// -32003 with `data.scope = "write"`.
    NeedsWrite,
    /// -32001.
    Unauthenticated,
}

async fn attempt(r: &Room, ws: &mut WsClient, action: Action) -> Result<(), ErrorObject> {
    let (room, user) = (r.name.clone(), r.target.user.username.clone());
    match action {
        Action::Kick => ws.call(KickParams { room, user, reason: Some("calm down".into()) }).await.map(drop),
        Action::Ban => ws.call(BanParams { room, user, reason: None, duration_secs: Some(3600) }).await.map(drop),
        Action::Unban => ws.call(UnbanParams { room, user }).await.map(drop),
        Action::Mute => ws.call(MuteParams { room, user, reason: None, duration_secs: None }).await.map(drop),
        Action::Unmute => ws.call(UnmuteParams { room, user }).await.map(drop),
        Action::Appoint => ws.call(SetRoleParams { room, user, role: RoomRole::Moderator }).await.map(drop),
        Action::SlowMode => ws.call(ConfigureParams { room, slow_mode_secs: Some(30), retention_days: None }).await.map(drop),
        Action::DeleteOthers => {
            let message = r.target_message().await;
            ws.call(DeleteParams { id: message.id }).await.map(drop)
        }
        Action::Report => {
            let message = r.target_message().await;
            ws.call(ReportParams { id: message.id, reason: "spam".into() }).await.map(drop)
        }
    }
}

fn expected(action: Action, caller: Caller) -> Expect {
    use Caller::*;
    match (caller, action) {
        (Anonymous, _) => Expect::Unauthenticated,
        (OwnerTokenWithoutWrite, _) => Expect::NeedsWrite,
        (_, Action::Report) => Expect::Ok,
        (Admin | Owner | OwnerTokenWithWrite, _) => Expect::Ok,
        (Moderator, Action::Appoint) => Expect::Forbidden,
        (Moderator, _) => Expect::Ok,
        (Member, _) => Expect::Forbidden,
    }
}

#[tokio::test]
async fn every_room_action_is_allowed_or_refused_by_who_asks_as_the_table_says() {
    let r = room().await;
    let with_write = r.token(&r.owner, &["read", "write"]).await;
    let without_write = r.token(&r.owner, &["read"]).await;
    let actions = [
        Action::Kick,
        Action::Ban,
        Action::Unban,
        Action::Mute,
        Action::Unmute,
        Action::Appoint,
        Action::SlowMode,
        Action::DeleteOthers,
        Action::Report,
    ];
    let callers = [
        Caller::Admin,
        Caller::Owner,
        Caller::Moderator,
        Caller::Member,
        Caller::Anonymous,
        Caller::OwnerTokenWithWrite,
        Caller::OwnerTokenWithoutWrite,
    ];
    let mut failures = Vec::new();
    for caller in callers {
        let mut ws = match caller {
            Caller::Admin => r.app.ws(&r.admin.access_token).await,
            Caller::Owner => r.app.ws(&r.owner.access_token).await,
            Caller::Moderator => r.app.ws(&r.moderator.access_token).await,
            Caller::Member => r.app.ws(&r.member.access_token).await,
            Caller::Anonymous => r.app.ws_anonymous().await,
            Caller::OwnerTokenWithWrite => r.app.ws(&with_write).await,
            Caller::OwnerTokenWithoutWrite => r.app.ws(&without_write).await,
        };
        for action in actions {
            let outcome = attempt(&r, &mut ws, action).await;
            let got = match &outcome {
                Ok(()) => Expect::Ok,
                Err(e) if e.code == -32001 => Expect::Unauthenticated,
                Err(e) if e.code == -32003 && e.data.as_ref().and_then(|d| d.get("scope")) == Some(&json!("write")) => Expect::NeedsWrite,
                Err(e) if e.code == -32003 => Expect::Forbidden,
                Err(e) => panic!("{caller:?} {action:?}: unexpected {e:?}"),
            };
            if got != expected(action, caller) {
                failures.push(format!("{caller:?} {action:?}: expected {:?}, got {outcome:?}", expected(action, caller)));
            }
            r.reset_target().await;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn nobody_acts_on_an_equal_or_higher_rank_or_on_themselves() {
    let r = room().await;
    let other_moderator = r.app.signup_and_login(&unique("mod2")).await;
    let other_admin = r.app.admin(&unique("adm2")).await;
    let mut owner = r.app.ws(&r.owner.access_token).await;
    owner.ok(SetRoleParams { room: r.name.clone(), user: other_moderator.user.username.clone(), role: RoomRole::Moderator }).await;
    let mut moderator = r.app.ws(&r.moderator.access_token).await;
    let mut admin = r.app.ws(&r.admin.access_token).await;
    let kick = |user: &TokenPair| KickParams { room: r.name.clone(), user: user.user.username.clone(), reason: None };
    let ban = |user: &TokenPair| BanParams { room: r.name.clone(), user: user.user.username.clone(), reason: None, duration_secs: None };
    let mute = |user: &TokenPair| MuteParams { room: r.name.clone(), user: user.user.username.clone(), reason: None, duration_secs: None };

    for victim in [&r.owner, &r.admin, &other_moderator] {
        assert_code(&moderator.fail(kick(victim)).await, -32003);
        assert_code(&moderator.fail(ban(victim)).await, -32003);
    }
    assert_code(&moderator.fail(kick(&r.moderator)).await, -32003);
    assert_code(&owner.fail(ban(&r.owner)).await, -32003);
    assert_code(&admin.fail(ban(&r.owner)).await, -32003);
    assert_code(&admin.fail(mute(&r.owner)).await, -32003);
    assert_code(&owner.fail(mute(&r.admin)).await, -32003);
    assert_code(&admin.fail(kick(&other_admin)).await, -32003);
    // What the rank allows still works: the owner over a moderator, an admin over the owner.
    owner.ok(mute(&other_moderator)).await;
    admin.ok(kick(&r.owner)).await;
    let err = moderator.fail(SetRoleParams { room: r.name.clone(), user: r.member.user.username.clone(), role: RoomRole::Moderator }).await;
    assert_code(&err, -32003);
    let err = owner.fail(SetRoleParams { room: r.name.clone(), user: r.member.user.username.clone(), role: RoomRole::Owner }).await;
    assert_code(&err, -32003);
}

// ---- Kick, ban, mute --------------------------------------------------------------------

#[tokio::test]
async fn a_kick_takes_every_socket_of_the_user_out_of_the_room_at_once_and_they_may_rejoin() {
    let r = room().await;
    let mut watcher = r.joined(&r.member).await;
    let mut first = r.joined(&r.target).await;
    let mut second = r.joined(&r.target).await;
    // The arrival announced first: a join and a leave within one presence tick announce nothing.
    arrival(&mut watcher, &r.target.user.username).await;
    let mut moderator = r.app.ws(&r.moderator.access_token).await;

    let kicked = moderator.ok(KickParams { room: r.name.clone(), user: r.target.user.username.clone(), reason: Some("off topic".into()) }).await;
    assert_eq!(kicked.until, None);

    for ws in [&mut first, &mut second] {
        let told: ModerationApplied = ws.next("moderation.applied").await;
        assert_eq!((told.action, told.room.as_deref(), told.reason.as_deref()), (ModerationAction::Kick, Some(r.name.as_str()), Some("off topic")));
        assert_eq!(told.by, r.moderator.user.username);
    }
    let left: RoomUser = watcher.next("room.user_left").await;
    assert_eq!(left.username, r.target.user.username);
    // Out of the room on both sockets: a send needs a join again, which works.
    for ws in [&mut first, &mut second] {
        assert_code(&ws.fail(send(&r.name, "still here?")).await, -32003);
    }
    first.ok(join(&r.name)).await;
    first.ok(send(&r.name, "back")).await;
}

#[tokio::test]
async fn a_ban_keeps_the_user_out_of_join_history_read_and_sync_until_it_is_lifted() {
    let r = room().await;
    let mut target = r.joined(&r.target).await;
    let mut member = r.joined(&r.member).await;
    let before = member.ok(send(&r.name, "before the ban")).await;
    let mut owner = r.app.ws(&r.owner.access_token).await;

    owner.ok(BanParams { room: r.name.clone(), user: r.target.user.username.clone(), reason: Some("spam".into()), duration_secs: None }).await;

    let told: ModerationApplied = target.next("moderation.applied").await;
    assert_eq!((told.action, told.until), (ModerationAction::Ban, None));
    let after = member.ok(send(&r.name, "after the ban")).await;
    assert_sanctioned(&target.fail(join(&r.name)).await, "banned");
    assert_sanctioned(&target.fail(history(&r.name, None, None)).await, "banned");
    assert_sanctioned(&target.fail(RoomReadParams { room: r.name.clone(), id: after.id }).await, "banned");
    let synced = target.ok(sync_rooms(&[(&r.name, before.id - 1)], None)).await;
    assert!(synced.messages.is_empty() && synced.complete, "{synced:?}");
    let refused = problem(r.app.get(&format!("/api/rooms/{}/messages", r.name), Some(&r.target.access_token)).await, 403).await;
    assert_eq!(refused.reason, Some(confab_shared::moderation::Sanction::Banned));
    assert!(refused.detail.contains("spam"), "{refused:?}");

    owner.ok(UnbanParams { room: r.name.clone(), user: r.target.user.username.clone() }).await;
    let back = target.ok(join(&r.name)).await;
    assert!(back.history.iter().any(|m| m.id == after.id));
}

/// Calls `params` until the server accepts it, checking each answer against the clock and
/// never against how fast the machine is: a refusal must name `reason` and `until` and come
/// for a call sent before `until`; an acceptance must arrive at `until` or later (so a call
/// answered before `until` was refused). A call in flight across `until` may go either way.
async fn refused_until<P: confab_shared::rpc::Method + Clone>(ws: &mut WsClient, params: P, until: confab_shared::Timestamp, reason: &str) {
    within("the decision to end", async {
        loop {
            let sent = chrono::Utc::now();
            let answer = ws.call(params.clone()).await;
            let answered = chrono::Utc::now();
            match answer {
                Ok(_) => {
                    assert!(answered >= until.0, "accepted before {until}");
                    return;
                }
                Err(err) => {
                    assert_sanctioned(&err, reason);
                    assert_eq!(err.data.as_ref().and_then(|d| d.get("until")), Some(&json!(until)), "{err:?}");
                    assert!(sent < until.0, "still refused for a call sent after {until}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_ban_and_a_mute_with_a_duration_end_on_their_own() {
    let r = room().await;
    let mut target = r.joined(&r.target).await;
    let mut owner = r.app.ws(&r.owner.access_token).await;
    let user = r.target.user.username.clone();

    // Two seconds: long enough that calls answered before the end (refused) are the rule,
    // though the checks hold however slowly the machine runs.
    let muted = owner.ok(MuteParams { room: r.name.clone(), user: user.clone(), reason: None, duration_secs: Some(2) }).await;
    let until = muted.until.expect("a mute with a duration ends");
    refused_until(&mut target, send(&r.name, "may I speak?"), until, "muted").await;

    let banned = owner.ok(BanParams { room: r.name.clone(), user, reason: None, duration_secs: Some(2) }).await;
    let until = banned.until.expect("a ban with a duration ends");
    refused_until(&mut target, join(&r.name), until, "banned").await;
}

#[tokio::test]
async fn a_muted_user_reads_but_cannot_send_react_type_or_edit() {
    let r = room().await;
    let mut target = r.joined(&r.target).await;
    let mut member = r.joined(&r.member).await;
    let mine = target.ok(send(&r.name, "mine")).await;
    let theirs = member.ok(send(&r.name, "theirs")).await;
    let mut moderator = r.app.ws(&r.moderator.access_token).await;

    moderator.ok(MuteParams { room: r.name.clone(), user: r.target.user.username.clone(), reason: Some("cool off".into()), duration_secs: None }).await;
    let told: ModerationApplied = target.next("moderation.applied").await;
    assert_eq!(told.action, ModerationAction::Mute);

    assert_sanctioned(&target.fail(send(&r.name, "hello?")).await, "muted");
    assert_sanctioned(&target.fail(ReactParams { id: theirs.id, emoji: "👍".into(), on: true }).await, "muted");
    assert_sanctioned(&target.fail(TypingParams { room: r.name.clone() }).await, "muted");
    assert_sanctioned(&target.fail(EditParams { id: mine.id, text: "edited".into() }).await, "muted");
    // Reading goes on: new messages arrive and history answers.
    let later = member.ok(send(&r.name, "you can still read this")).await;
    while target.next::<Message>("room.message").await.id != later.id {}
    target.ok(history(&r.name, None, None)).await;

    moderator.ok(UnmuteParams { room: r.name.clone(), user: r.target.user.username.clone() }).await;
    target.ok(send(&r.name, "thanks")).await;
}

#[tokio::test]
async fn slow_mode_holds_members_back_with_a_retry_after_and_lets_moderators_and_admins_through() {
    let r = room().await;
    let mut member = r.joined(&r.member).await;
    let mut moderator = r.joined(&r.moderator).await;
    let mut admin = r.joined(&r.admin).await;
    let mut owner = r.joined(&r.owner).await;

    let settings = moderator.ok(ConfigureParams { room: r.name.clone(), slow_mode_secs: Some(60), retention_days: None }).await;
    assert_eq!(settings.slow_mode_secs, 60);

    member.ok(send(&r.name, "one")).await;
    let err = member.fail(send(&r.name, "two")).await;
    assert_eq!(err.code, -32029, "{err:?}");
    assert_eq!(reason_of(&err), Some("slow_mode"));
    let wait = err.data.as_ref().and_then(|d| d["retry_after_ms"].as_u64()).expect("retry_after_ms");
    assert!(wait > 55_000 && wait <= 60_000, "{wait}");
    for ws in [&mut moderator, &mut admin, &mut owner] {
        ws.ok(send(&r.name, "exempt")).await;
        ws.ok(send(&r.name, "still exempt")).await;
    }
    let listed: confab_shared::RoomsPage = body(r.app.get(&format!("/api/rooms?prefix={}", r.name), None).await).await;
    assert_eq!(listed.rooms[0].slow_mode_secs, 60);
    assert_eq!(listed.rooms[0].moderators, vec![r.moderator.user.username.clone()]);
    assert_eq!(listed.rooms[0].owner.as_deref(), Some(r.owner.user.username.as_str()));

    moderator.ok(ConfigureParams { room: r.name.clone(), slow_mode_secs: Some(0), retention_days: None }).await;
    member.ok(send(&r.name, "free again")).await;
    let err = moderator.fail(ConfigureParams { room: r.name.clone(), slow_mode_secs: None, retention_days: Some(30) }).await;
    assert_code(&err, -32003);
    assert_invalid_param(&owner.fail(ConfigureParams { room: r.name.clone(), slow_mode_secs: Some(100_000), retention_days: None }).await, "slow_mode_secs");
}

#[tokio::test]
async fn room_join_says_the_callers_role_and_a_moderator_deletes_a_members_message_on_the_record() {
    let r = room().await;
    for (who, role) in [(&r.owner, RoomRole::Owner), (&r.moderator, RoomRole::Moderator), (&r.member, RoomRole::Member), (&r.admin, RoomRole::Member)] {
        let mut ws = r.app.ws(&who.access_token).await;
        let joined = ws.ok(join(&r.name)).await;
        assert_eq!(joined.role, role, "{}", who.user.username);
        assert_eq!(joined.room.moderators, vec![r.moderator.user.username.clone()]);
    }
    let mut watcher = r.joined(&r.member).await;
    let message = r.target_message().await;
    let mut moderator = r.app.ws(&r.moderator.access_token).await;
    moderator.ok(DeleteParams { id: message.id }).await;
    let deleted: Value = watcher.next_notification("message.deleted").await;
    assert_eq!(deleted["id"], json!(message.id));

    let audit: AuditPage = body(r.app.get("/api/audit?action=delete_message", Some(&r.admin.access_token)).await).await;
    let entry = &audit.entries[0];
    assert_eq!((entry.actor.as_str(), entry.target.as_deref(), entry.room.as_deref()), (r.moderator.user.username.as_str(), Some(r.target.user.username.as_str()), Some(r.name.as_str())));
}

#[tokio::test]
async fn a_muted_member_learns_of_the_mute_from_room_join_with_who_why_and_until_when() {
    let r = room().await;
    let user = r.target.user.username.clone();
    let mut moderator = r.app.ws(&r.moderator.access_token).await;
    let muted = moderator.ok(MuteParams { room: r.name.clone(), user: user.clone(), reason: Some("cool off".into()), duration_secs: Some(3600) }).await;

    // A socket opened after the mute (a reload) hears of it in the join's answer.
    let mut target = r.app.ws(&r.target.access_token).await;
    let joined = target.ok(join(&r.name)).await;
    let told = joined.muted.expect("the join says the caller is muted");
    assert_eq!((told.action, told.room.as_deref(), told.reason.as_deref()), (ModerationAction::Mute, Some(r.name.as_str()), Some("cool off")));
    assert_eq!((told.until, told.by.as_str()), (muted.until, r.moderator.user.username.as_str()));
    let others = r.joined(&r.member).await.ok(join(&r.name)).await;
    assert!(others.muted.is_none(), "only the muted member is told");

    // Lifted, the next join says nothing, and the answer has no `muted` at all.
    moderator.ok(UnmuteParams { room: r.name.clone(), user }).await;
    let raw = target.call_raw(&json!({ "jsonrpc": "2.0", "id": 9, "method": "room.join", "params": { "room": r.name } }).to_string()).await;
    assert!(raw["result"].is_object() && raw["result"].get("muted").is_none(), "{raw}");
}

#[tokio::test]
async fn moderators_page_a_rooms_bans_and_mutes_newest_first_and_a_lifted_one_leaves_the_list() {
    use confab_shared::moderation::RoomSanctionsPage;
    use reqwest::Method;
    let r = room().await;
    let (owner, moderator) = (&r.owner.access_token, &r.moderator.access_token);
    let at = |what: &str| format!("/api/rooms/{}/{what}", r.name);
    let empty: RoomSanctionsPage = body(r.app.get(&at("bans"), Some(moderator)).await).await;
    assert!(empty.sanctions.is_empty() && empty.next_cursor.is_none());

    // Banned in the order their accounts were created, so a shared millisecond orders them the same way.
    let mut ws = r.app.ws(moderator).await;
    for (i, who) in [&r.member, &r.target].iter().enumerate() {
        let duration_secs = (i == 0).then_some(3600);
        ws.ok(BanParams { room: r.name.clone(), user: who.user.username.clone(), reason: Some(format!("reason {i}")), duration_secs }).await;
    }
    ws.ok(MuteParams { room: r.name.clone(), user: r.target.user.username.clone(), reason: None, duration_secs: None }).await;

    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: RoomSanctionsPage = body(r.app.get(&format!("{}?limit=1&cursor={cursor}", at("bans")), Some(owner)).await).await;
        assert!(page.sanctions.len() <= 1);
        seen.extend(page.sanctions);
        match page.next_cursor {
            Some(next) => cursor = next,
            None => break,
        }
    }
    let names: Vec<&str> = seen.iter().map(|s| s.user.as_str()).collect();
    assert_eq!(names, [&r.target.user.username, &r.member.user.username]);
    assert!(seen.windows(2).all(|w| w[0].at >= w[1].at));
    assert_eq!((seen[1].reason.as_deref(), seen[0].reason.as_deref()), (Some("reason 0"), Some("reason 1")));
    assert!(seen[1].until.is_some() && seen[0].until.is_none());
    assert!(seen.iter().all(|s| s.by.as_deref() == Some(r.moderator.user.username.as_str())));

    // Mutes are their own list.
    let mutes: RoomSanctionsPage = body(r.app.get(&at("mutes"), Some(moderator)).await).await;
    let names: Vec<&str> = mutes.sanctions.iter().map(|s| s.user.as_str()).collect();
    assert_eq!(names, [&r.target.user.username]);
    assert!(mutes.sanctions[0].reason.is_none() && mutes.sanctions[0].until.is_none());

    // Lifted (over REST, as the web app lifts them), it leaves its list.
    body::<Value>(r.app.request(Method::DELETE, &at(&format!("bans/{}", r.target.user.username)), Some(owner), None::<&Value>).await).await;
    body::<Value>(r.app.request(Method::DELETE, &at(&format!("mutes/{}", r.target.user.username)), Some(owner), None::<&Value>).await).await;
    let bans: RoomSanctionsPage = body(r.app.get(&at("bans"), Some(moderator)).await).await;
    let names: Vec<&str> = bans.sanctions.iter().map(|s| s.user.as_str()).collect();
    assert_eq!(names, [&r.member.user.username]);
    let mutes: RoomSanctionsPage = body(r.app.get(&at("mutes"), Some(moderator)).await).await;
    assert!(mutes.sanctions.is_empty());
}

#[tokio::test]
async fn only_the_rooms_owner_moderators_and_admins_list_its_bans_and_mutes_and_hidden_rooms_stay_hidden() {
    use confab_shared::moderation::RoomSanctionsPage;
    let r = room().await;
    let at = |room: &str, what: &str| format!("/api/rooms/{room}/{what}");
    let mut ws = r.app.ws(&r.owner.access_token).await;
    ws.ok(BanParams { room: r.name.clone(), user: r.target.user.username.clone(), reason: None, duration_secs: None }).await;

    for what in ["bans", "mutes"] {
        let path = at(&r.name, what);
        for who in [&r.admin, &r.owner, &r.moderator] {
            body::<RoomSanctionsPage>(r.app.get(&path, Some(&who.access_token)).await).await;
        }
        // An API token reads it with `read`, for the one it belongs to.
        let token = r.token(&r.moderator, &["read"]).await;
        body::<RoomSanctionsPage>(r.app.get(&path, Some(&token)).await).await;
        problem(r.app.get(&path, Some(&r.member.access_token)).await, 403).await;
        problem(r.app.get(&path, Some(&r.target.access_token)).await, 403).await;
        problem(r.app.get(&path, None).await, 401).await;
        problem(r.app.get(&at(&unique("nowhere"), what), Some(&r.owner.access_token)).await, 404).await;
        for bad in ["cursor=12", "cursor=1-x", "limit=0", "limit=201"] {
            let refused = problem(r.app.get(&format!("{path}?{bad}"), Some(&r.owner.access_token)).await, 422).await;
            assert_eq!(refused.field.as_deref(), Some(bad.split('=').next().unwrap_or_default()), "{bad}");
        }
        let bad_room = problem(r.app.get(&at("not%20a%20room", what), Some(&r.owner.access_token)).await, 422).await;
        assert_eq!(bad_room.field.as_deref(), Some("room"));
    }

    // An admins-only room answers anyone else as a room that does not exist.
    let hidden = unique("staff");
    let created = r.app.post_json("/api/rooms", &json!({ "name": hidden, "admin_only": true }), Some(&r.admin.access_token)).await;
    assert_eq!(created.status().as_u16(), 201);
    body::<RoomSanctionsPage>(r.app.get(&at(&hidden, "bans"), Some(&r.admin.access_token)).await).await;
    let absent = problem(r.app.get(&at(&unique("nowhere"), "bans"), Some(&r.owner.access_token)).await, 404).await;
    let concealed = problem(r.app.get(&at(&hidden, "bans"), Some(&r.owner.access_token)).await, 404).await;
    assert_eq!((concealed.title, concealed.detail), (absent.title, absent.detail));
}

// ---- Accounts ---------------------------------------------------------------------------

#[tokio::test]
async fn a_suspended_account_is_refused_on_every_path_until_it_is_lifted() {
    let r = room().await;
    let app = &r.app;
    let who = &r.target;
    let api_token = r.token(who, &["read", "write"]).await;
    let mut live = r.joined(who).await;
    let theirs = live.ok(send(&r.name, "said before the suspension")).await;
    let mut by_token = app.ws(&api_token).await;
    let path = format!("/api/users/{}/suspend", who.user.username);

    let suspended: Suspension = body(post(app, &path, &r.admin.access_token, json!({ "reason": "abuse" })).await).await;
    assert!(suspended.suspended && suspended.until.is_none());

    for ws in [&mut live, &mut by_token] {
        assert_eq!(ws.expect_close().await, 4003);
    }
    let refusals = [
        ("login", app.login(&who.user.username, PASSWORD).await),
        ("refresh", app.refresh(&who.refresh_token).await),
        ("API token", app.get("/api/me", Some(&api_token)).await),
        ("access token", app.get("/api/me", Some(&who.access_token)).await),
    ];
    for (what, response) in refusals {
        let refused = problem(response, 403).await;
        assert_eq!(refused.reason, Some(confab_shared::moderation::Sanction::Suspended), "{what}");
        assert!(refused.detail.contains("abuse"), "{what}: {refused:?}");
    }
    for token in [&who.access_token, &api_token] {
        let (status, body) = app.ws_refused(app.ws_bearer_request(token)).await;
        assert_eq!(status, 403);
        assert!(body.contains("suspended"), "{body}");
    }
    // Nothing of theirs is gone.
    let history: Vec<Message> = body(app.get(&format!("/api/rooms/{}/messages", r.name), None).await).await;
    assert!(history.iter().any(|m| m.id == theirs.id && !m.deleted), "{history:?}");

    let lifted: Suspension = body(post(app, &format!("/api/users/{}/unsuspend", who.user.username), &r.admin.access_token, json!({})).await).await;
    assert!(!lifted.suspended);
    app.login_ok(&who.user.username).await;
    body_of::<Value>(app.get("/api/me", Some(&api_token)).await).await;
    app.ws(&api_token).await.ok(EchoParams { text: "back".into() }).await;
}

#[tokio::test]
async fn only_admins_suspend_and_a_suspension_with_a_duration_ends_on_its_own() {
    let r = room().await;
    let app = &r.app;
    let path = format!("/api/users/{}/suspend", r.target.user.username);
    problem(post(app, &path, &r.owner.access_token, json!({})).await, 403).await;
    let own = format!("/api/users/{}/suspend", r.admin.user.username);
    problem(post(app, &own, &r.admin.access_token, json!({})).await, 403).await;
    let bad = problem(post(app, &path, &r.admin.access_token, json!({ "duration_secs": 0 })).await, 422).await;
    assert_eq!(bad.field.as_deref(), Some("duration_secs"));
    problem(post(app, "/api/users/nobody_here/suspend", &r.admin.access_token, json!({})).await, 404).await;
    // No body at all is a suspension without reason or end.
    let response = within("POST", app.http.post(app.url(&path)).bearer_auth(&r.admin.access_token).send()).await.expect("sent");
    let indefinite: Suspension = body(response).await;
    assert!(indefinite.suspended && indefinite.until.is_none());

    let timed: Suspension = body(post(app, &path, &r.admin.access_token, json!({ "duration_secs": 1 })).await).await;
    let until = timed.until.expect("an end");
    // Checked against the clock, never against how fast the machine is (see `refused_until`).
    within("the suspension to end", async {
        loop {
            let sent = chrono::Utc::now();
            let response = app.login(&r.target.user.username, PASSWORD).await;
            if response.status().as_u16() == 200 {
                assert!(chrono::Utc::now() >= until.0, "logged in before {until}");
                break;
            }
            let refused = problem(response, 403).await;
            assert_eq!(refused.until, Some(until));
            assert!(sent < until.0, "still refused for a login sent after {until}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn admins_page_the_accounts_suspended_now_newest_first_and_a_lifted_one_leaves_the_list() {
    let r = room().await;
    let app = &r.app;
    let admin = &r.admin.access_token;
    let empty: SuspensionsPage = body(app.get("/api/suspensions", Some(admin)).await).await;
    assert!(empty.suspensions.is_empty() && empty.next_cursor.is_none());
    // Suspended in the order their accounts were created, so a shared millisecond orders them the same way.
    let victims = [&r.moderator, &r.member, &r.target];
    for (i, who) in victims.iter().enumerate() {
        let path = format!("/api/users/{}/suspend", who.user.username);
        let mut request = json!({ "reason": format!("reason {i}") });
        if i == 1 {
            request["duration_secs"] = json!(3600);
        }
        body_of::<Suspension>(post(app, &path, admin, request).await).await;
    }

    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: SuspensionsPage = body(app.get(&format!("/api/suspensions?limit=2&cursor={cursor}"), Some(admin)).await).await;
        assert!(page.suspensions.len() <= 2);
        seen.extend(page.suspensions);
        match page.next_cursor {
            Some(next) => cursor = next,
            None => break,
        }
    }
    let names: Vec<&str> = seen.iter().map(|s| s.username.as_str()).collect();
    assert_eq!(names, [&r.target.user.username, &r.member.user.username, &r.moderator.user.username]);
    assert!(seen.windows(2).all(|w| w[0].at >= w[1].at));
    assert_eq!(seen[1].reason.as_deref(), Some("reason 1"));
    assert!(seen[1].until.is_some() && seen[0].until.is_none());
    assert!(seen.iter().all(|s| s.by.as_deref() == Some(r.admin.user.username.as_str())));

    body_of::<Suspension>(post(app, &format!("/api/users/{}/unsuspend", r.member.user.username), admin, json!({})).await).await;
    // An admin's API token reads it with `read`, as it reads the audit log.
    let token = r.token(&r.admin, &["read"]).await;
    let after: SuspensionsPage = body(app.get("/api/suspensions", Some(&token)).await).await;
    let names: Vec<&str> = after.suspensions.iter().map(|s| s.username.as_str()).collect();
    assert_eq!(names, [&r.target.user.username, &r.moderator.user.username]);

    problem(app.get("/api/suspensions", Some(&r.owner.access_token)).await, 403).await;
    problem(app.get("/api/suspensions", None).await, 401).await;
    for bad in ["cursor=12", "cursor=1-x", "limit=0", "limit=201"] {
        let refused = problem(app.get(&format!("/api/suspensions?{bad}"), Some(admin)).await, 422).await;
        assert_eq!(refused.field.as_deref(), Some(bad.split('=').next().unwrap_or_default()), "{bad}");
    }
}

#[tokio::test]
async fn a_purge_deletes_a_users_messages_in_one_room_as_a_job_and_tells_the_room() {
    let r = room().await;
    let other_room = unique("elsewhere");
    let mut target = r.joined(&r.target).await;
    target.ok(join(&other_room)).await;
    let mut watcher = r.joined(&r.member).await;
    let mut purged = Vec::new();
    for i in 0..5 {
        purged.push(target.ok(send(&r.name, &format!("junk {i}"))).await.id);
    }
    let kept = target.ok(send(&other_room, "fine elsewhere")).await;
    let path = format!("/api/users/{}/purge", r.target.user.username);
    problem(post(&r.app, &path, &r.owner.access_token, json!({ "room": r.name })).await, 403).await;

    let accepted: JobAccepted = body(post(&r.app, &path, &r.admin.access_token, json!({ "room": r.name })).await).await;
    let mut admin = r.app.ws(&r.admin.access_token).await;
    let job = admin.ok(confab_shared::rpc::JobSubscribeParams { job_id: accepted.job_id }).await;
    let finished: Job = if job.state == JobState::Done { job } else { admin.next("job.finished").await };
    assert_eq!(finished.state, JobState::Done, "{finished:?}");
    assert_eq!(finished.kind, confab_shared::JobKind::PurgeMessages);

    let mut deleted = Vec::new();
    while deleted.len() < purged.len() {
        let event: Value = watcher.next_notification("message.deleted").await;
        deleted.push(event["id"].as_i64().expect("an id"));
    }
    assert_eq!(deleted, purged);
    let left: Vec<Message> = body(r.app.get(&format!("/api/rooms/{}/messages", r.name), None).await).await;
    assert!(left.iter().filter(|m| purged.contains(&m.id)).all(|m| m.deleted && m.text.is_empty()));
    let elsewhere: Vec<Message> = body(r.app.get(&format!("/api/rooms/{other_room}/messages"), None).await).await;
    assert_eq!(elsewhere.iter().find(|m| m.id == kept.id).map(|m| m.deleted), Some(false));
    let audit: AuditPage = body(r.app.get("/api/audit?action=purge", Some(&r.admin.access_token)).await).await;
    assert_eq!(audit.entries[0].target.as_deref(), Some(r.target.user.username.as_str()));
}

#[tokio::test]
async fn the_room_actions_over_rest_do_what_the_socket_methods_do_with_the_same_refusals() {
    use reqwest::Method;
    let r = room().await;
    let user = r.target.user.username.clone();
    let mut target = r.joined(&r.target).await;
    let (owner, moderator, member) = (&r.owner.access_token, &r.moderator.access_token, &r.member.access_token);
    let at = |what: &str| format!("/api/rooms/{}/{what}", r.name);

    // A kick without a body (`null`, which the optional body's schema allows, is the same);
    // the target's socket is out of the room and told why.
    body::<Value>(r.app.request(Method::POST, &at(&format!("members/{user}/kick")), Some(moderator), Some(&Value::Null)).await).await;
    target.next::<ModerationApplied>("moderation.applied").await;
    target.ok(join(&r.name)).await;
    let kicked: confab_shared::moderation::ModerationResult = body(r.app.request(Method::POST, &at(&format!("members/{user}/kick")), Some(moderator), None::<&Value>).await).await;
    assert_eq!((kicked.action, kicked.user.as_str()), (ModerationAction::Kick, user.as_str()));
    let told: ModerationApplied = target.next("moderation.applied").await;
    assert_eq!(told.action, ModerationAction::Kick);

    // A ban with a duration, then lifted; a mute with a reason, then lifted.
    let banned: confab_shared::moderation::ModerationResult =
        body(r.app.request(Method::PUT, &at(&format!("bans/{user}")), Some(owner), Some(&json!({ "reason": "spam", "duration_secs": 3600.0 }))).await).await;
    assert!(banned.until.is_some());
    assert_sanctioned(&target.fail(join(&r.name)).await, "banned");
    body::<Value>(r.app.request(Method::DELETE, &at(&format!("bans/{user}")), Some(owner), None::<&Value>).await).await;
    target.ok(join(&r.name)).await;
    body::<Value>(r.app.request(Method::PUT, &at(&format!("mutes/{user}")), Some(moderator), Some(&json!({ "reason": "calm down" }))).await).await;
    assert_sanctioned(&target.fail(send(&r.name, "hello?")).await, "muted");
    body::<Value>(r.app.request(Method::DELETE, &at(&format!("mutes/{user}")), Some(moderator), None::<&Value>).await).await;
    target.ok(send(&r.name, "hello again")).await;

    // Roles and settings.
    let made: confab_shared::moderation::ModerationResult = body(r.app.request(Method::PUT, &at(&format!("roles/{user}")), Some(owner), Some(&json!({ "role": "moderator" }))).await).await;
    assert_eq!(made.action, ModerationAction::SetRole);
    let settings: confab_shared::moderation::RoomSettings = body(r.app.request(Method::PATCH, &at("settings"), Some(owner), Some(&json!({ "slow_mode_secs": 5, "retention_days": 30 }))).await).await;
    assert_eq!((settings.slow_mode_secs, settings.retention_days), (5, Some(30)));

    // The socket's refusals, as problem+json: rank, permission, unknown names, bad input.
    problem(r.app.request(Method::PUT, &at(&format!("bans/{user}")), Some(member), None::<&Value>).await, 403).await;
    problem(r.app.request(Method::PATCH, &at("settings"), Some(moderator), Some(&json!({ "retention_days": 1 }))).await, 403).await;
    problem(r.app.request(Method::PUT, &format!("/api/rooms/{}/bans/{user}", unique("nowhere")), Some(owner), None::<&Value>).await, 404).await;
    problem(r.app.request(Method::PUT, &at("bans/nobody_by_that_name"), Some(owner), None::<&Value>).await, 404).await;
    let too_long = problem(r.app.request(Method::PUT, &at(&format!("mutes/{user}")), Some(owner), Some(&json!({ "duration_secs": 99_999_999 }))).await, 422).await;
    assert_eq!(too_long.field.as_deref(), Some("duration_secs"));
    let bad_role = problem(r.app.request(Method::PUT, &at(&format!("roles/{user}")), Some(owner), Some(&json!({ "role": "king" }))).await, 422).await;
    assert_eq!(bad_role.field.as_deref(), Some("role"));
    let read_only = r.token(&r.owner, &["read"]).await;
    problem(r.app.request(Method::DELETE, &at(&format!("bans/{user}")), Some(&read_only), None::<&Value>).await, 403).await;

    // Each is on the record, as over the socket.
    let audit: AuditPage = body(r.app.get(&format!("/api/audit?room={}&limit=20", r.name), Some(&r.admin.access_token)).await).await;
    let actions: Vec<ModerationAction> = audit.entries.iter().map(|e| e.action).collect();
    for expected in [ModerationAction::Kick, ModerationAction::Ban, ModerationAction::Unban, ModerationAction::Mute, ModerationAction::Unmute, ModerationAction::Configure] {
        assert!(actions.contains(&expected), "{expected:?} in {actions:?}");
    }
}

#[tokio::test]
async fn retention_deletes_a_rooms_messages_once_they_are_older_than_its_days_and_no_others() {
    let r = room().await;
    let mut owner = r.joined(&r.owner).await;
    let settings = owner.ok(ConfigureParams { room: r.name.clone(), slow_mode_secs: None, retention_days: Some(2) }).await;
    assert_eq!(settings.retention_days, Some(2));
    let kept_room = unique("forever");
    owner.ok(join(&kept_room)).await;
    let mut old = Vec::new();
    for text in ["one", "two", "three"] {
        old.push(owner.ok(send(&r.name, text)).await);
    }
    owner.ok(ReactParams { id: old[0].id, emoji: "👍".into(), on: true }).await;
    let elsewhere = owner.ok(send(&kept_room, "kept")).await;
    let newer = send_after(&mut owner, &r.name, &old[2]).await;

    // The clock is the test's. Two days after `newer`, the three before it are older than two
    // days and it is not; a day later than that, nothing changes in the room without retention.
    let day = 86_400_000;
    let at = newer.sent_at.0.timestamp_millis() + 2 * day;
    let mut progress = Progress::new();
    assert_eq!(sweep(r.app.state(), at - day, &mut progress).await, 0);
    assert_eq!(sweep(r.app.state(), at, &mut progress).await, 3);
    let history: Vec<Message> = body(r.app.get(&format!("/api/rooms/{}/messages", r.name), None).await).await;
    for m in &history {
        let expired = old.iter().any(|o| o.id == m.id);
        assert_eq!((m.deleted, m.text.is_empty(), m.reactions.is_empty()), (expired, expired, true), "{m:?}");
    }
    assert!(history.iter().any(|m| m.id == newer.id && !m.deleted));
    let other: Vec<Message> = body(r.app.get(&format!("/api/rooms/{kept_room}/messages"), None).await).await;
    assert_eq!(other.iter().find(|m| m.id == elsewhere.id).map(|m| m.deleted), Some(false));

    // Another instance's sweep (its own progress, from the start) finds nothing left to do.
    assert_eq!(sweep(r.app.state(), at, &mut Progress::new()).await, 0);
    let audit: AuditPage = body(r.app.get(&format!("/api/audit?action=retention&room={}", r.name), Some(&r.admin.access_token)).await).await;
    assert_eq!(audit.entries.len(), 1, "{:?}", audit.entries);
    assert_eq!((audit.entries[0].actor.as_str(), audit.entries[0].detail.as_deref()), ("system", Some("3 messages older than 2 days")));

    // Back to the server's default, which is to keep everything: later sweeps leave it alone.
    let settings = owner.ok(ConfigureParams { room: r.name.clone(), slow_mode_secs: None, retention_days: Some(0) }).await;
    assert_eq!(settings.retention_days, None);
    assert_eq!(sweep(r.app.state(), at + 365 * day, &mut Progress::new()).await, 0);
}

#[tokio::test]
async fn the_servers_default_retention_applies_to_rooms_without_their_own() {
    let app = spawn_app_with(|config| config.retention_days = 30).await;
    let r = room_on(app).await;
    let mut owner = r.joined(&r.owner).await;
    let own = unique("own-retention");
    owner.ok(join(&own)).await;
    owner.ok(ConfigureParams { room: own.clone(), slow_mode_secs: None, retention_days: Some(60) }).await;
    let first = owner.ok(send(&r.name, "under the default")).await;
    let mine = owner.ok(send(&own, "under its own")).await;
    let last = send_after(&mut owner, &r.name, &mine).await;

    let day = 86_400_000;
    let at = last.sent_at.0.timestamp_millis() + 30 * day;
    let mut progress = Progress::new();
    assert_eq!(sweep(r.app.state(), at, &mut progress).await, 1, "the default room's first message only");
    let history: Vec<Message> = body(r.app.get(&format!("/api/rooms/{}/messages", r.name), None).await).await;
    assert!(history.iter().any(|m| m.id == first.id && m.deleted));
    assert!(history.iter().any(|m| m.id == last.id && !m.deleted));
    assert_eq!(sweep(r.app.state(), at + 30 * day, &mut progress).await, 2, "then the rest, its own room's included");
}

/// Sends `text` once the clock has passed `previous`'s time, so the two never share a millisecond.
async fn send_after(ws: &mut WsClient, room: &str, previous: &Message) -> Message {
    let at = previous.sent_at.0.timestamp_millis();
    while now_ms() <= at {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    ws.ok(send(room, "newer")).await
}

// ---- Reports and the audit log ----------------------------------------------------------

#[tokio::test]
async fn a_member_with_the_most_open_reports_may_report_again_once_one_is_resolved() {
    let r = room_on(spawn_app_with(|c| c.open_reports_per_user = 3).await).await;
    let mut target = r.joined(&r.target).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(target.ok(send(&r.name, &format!("report me {i}"))).await.id);
    }
    let mut member = r.joined(&r.member).await;
    let mut filed = Vec::new();
    for id in &ids[..3] {
        filed.push(member.ok(ReportParams { id: *id, reason: "spam".into() }).await.report_id);
    }
    let refused = member.fail(ReportParams { id: ids[3], reason: "spam".into() }).await;
    assert_code(&refused, -32009);
    assert!(refused.message.contains("too many open reports"), "{refused:?}");
    // Another member is not held back by the first one's reports.
    let mut moderator = r.joined(&r.moderator).await;
    moderator.ok(ReportParams { id: ids[3], reason: "spam".into() }).await;

    let resolve = format!("/api/reports/{}/resolve", filed[0]);
    body::<Value>(post(&r.app, &resolve, &r.moderator.access_token, json!({ "action": "dismissed" })).await).await;
    member.ok(ReportParams { id: ids[3], reason: "spam".into() }).await;
}

#[tokio::test]
async fn a_member_reports_a_message_once_and_the_rooms_moderators_see_and_resolve_it() {
    let r = room().await;
    let message = r.target_message().await;
    let mut member = r.app.ws(&r.member.access_token).await;

    let filed: ReportAccepted = member.ok(ReportParams { id: message.id, reason: "rude".into() }).await;
    assert_code(&member.fail(ReportParams { id: message.id, reason: "rude".into() }).await, -32009);
    assert_invalid_param(&member.fail(ReportParams { id: message.id, reason: "  ".into() }).await, "reason");
    assert_code(&member.fail(ReportParams { id: i64::MAX, reason: "x".into() }).await, -32004);

    let queue = format!("/api/reports?room={}", r.name);
    for who in [&r.admin, &r.owner, &r.moderator] {
        let page: ReportsPage = body(r.app.get(&queue, Some(&who.access_token)).await).await;
        let report = page.reports.iter().find(|p| p.id == filed.report_id).expect("listed");
        assert_eq!((report.reporter.as_str(), report.reason.as_str(), report.message.id), (r.member.user.username.as_str(), "rude", message.id));
    }
    problem(r.app.get(&queue, Some(&r.member.access_token)).await, 403).await;
    let mine: ReportsPage = body(r.app.get("/api/reports", Some(&r.member.access_token)).await).await;
    assert!(mine.reports.is_empty(), "a member moderates no room");

    // The filters and cursors the schema allows are positions; what it does not allow is 422.
    let admin = &r.admin.access_token;
    for refused in ["/api/reports?room=", "/api/reports?room=no%20such", "/api/reports?cursor=abc", "/api/reports?cursor=1234567890123456789"] {
        let field = if refused.contains("room") { "room" } else { "cursor" };
        assert_eq!(problem(r.app.get(refused, Some(admin)).await, 422).await.field.as_deref(), Some(field), "{refused}");
    }
    let below_all: ReportsPage = body(r.app.get(&format!("{queue}&cursor=1"), Some(admin)).await).await;
    assert!(below_all.reports.is_empty());
    let above_all: ReportsPage = body(r.app.get(&format!("{queue}&cursor=999999999999999999"), Some(admin)).await).await;
    assert_eq!(above_all.reports.len(), 1);
    let first_page: ReportsPage = body(r.app.get(&format!("{queue}&cursor="), Some(admin)).await).await;
    assert_eq!(first_page.reports.len(), 1);

    let resolve = format!("/api/reports/{}/resolve", filed.report_id);
    for bad in [json!({ "action": "  " }), json!({ "action": "deleted\u{9d}" }), json!({ "action": "dismissed", "note": "tab\there" })] {
        let field = if bad.get("note").is_some() { "note" } else { "action" };
        assert_eq!(problem(post(&r.app, &resolve, &r.moderator.access_token, bad).await, 422).await.field.as_deref(), Some(field));
    }
    problem(post(&r.app, &resolve, &r.member.access_token, json!({ "action": "dismissed" })).await, 404).await;
    let done: confab_shared::moderation::Report = body(post(&r.app, &resolve, &r.moderator.access_token, json!({ "action": "dismissed", "note": "banter" })).await).await;
    assert_eq!((done.state, done.resolution.as_deref(), done.note.as_deref()), (ReportState::Resolved, Some("dismissed"), Some("banter")));
    problem(post(&r.app, &resolve, &r.owner.access_token, json!({ "action": "deleted" })).await, 409).await;
    let open: ReportsPage = body(r.app.get(&queue, Some(&r.admin.access_token)).await).await;
    assert!(open.reports.is_empty());
    let resolved: ReportsPage = body(r.app.get(&format!("{queue}&state=resolved"), Some(&r.admin.access_token)).await).await;
    assert_eq!(resolved.reports.len(), 1);
}

#[tokio::test]
async fn the_audit_log_pages_newest_first_with_filters_for_admins_only() {
    let r = room().await;
    let mut owner = r.app.ws(&r.owner.access_token).await;
    let user = r.target.user.username.clone();
    for _ in 0..3 {
        owner.ok(KickParams { room: r.name.clone(), user: user.clone(), reason: Some("again".into()) }).await;
    }
    owner.ok(MuteParams { room: r.name.clone(), user: user.clone(), reason: None, duration_secs: Some(60) }).await;

    let admin = &r.admin.access_token;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/audit?room={}&limit=2&cursor={c}", r.name),
            None => format!("/api/audit?room={}&limit=2", r.name),
        };
        let page: AuditPage = body(r.app.get(&path, Some(admin)).await).await;
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let actions: Vec<ModerationAction> = seen.iter().map(|e| e.action).collect();
    // Newest first: the mute, three kicks, then the appointment made when the room was set up.
    assert_eq!(actions, [ModerationAction::Mute, ModerationAction::Kick, ModerationAction::Kick, ModerationAction::Kick, ModerationAction::SetRole]);
    assert!(seen.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(seen[0].detail.as_deref(), Some("for 60 s"));
    assert!(!seen[0].instance.is_empty());

    let kicks: AuditPage = body(r.app.get(&format!("/api/audit?action=kick&actor={}&target={user}", r.owner.user.username), Some(admin)).await).await;
    assert_eq!(kicks.entries.len(), 3);
    let future: AuditPage = body(r.app.get("/api/audit?after=2999-01-01T00:00:00Z", Some(admin)).await).await;
    assert!(future.entries.is_empty());
    problem(r.app.get("/api/audit", Some(&r.owner.access_token)).await, 403).await;
    assert_eq!(problem(r.app.get("/api/audit?cursor=%21", Some(admin)).await, 422).await.field.as_deref(), Some("cursor"));
    assert_eq!(problem(r.app.get("/api/audit?room=", Some(admin)).await, 422).await.field.as_deref(), Some("room"));
    assert_eq!(problem(r.app.get("/api/audit?action=nope", Some(admin)).await, 422).await.field.as_deref(), Some("action"));
}

// ---- Durability and faults --------------------------------------------------------------

#[tokio::test]
async fn decisions_survive_a_restart() {
    let mut r = room().await;
    let mut owner = r.app.ws(&r.owner.access_token).await;
    let victim = r.app.signup_and_login(&unique("vic")).await;
    owner.ok(BanParams { room: r.name.clone(), user: r.target.user.username.clone(), reason: None, duration_secs: None }).await;
    owner.ok(MuteParams { room: r.name.clone(), user: r.member.user.username.clone(), reason: None, duration_secs: Some(3600) }).await;
    owner.ok(ConfigureParams { room: r.name.clone(), slow_mode_secs: Some(600), retention_days: None }).await;
    body_of::<Suspension>(post(&r.app, &format!("/api/users/{}/suspend", victim.user.username), &r.admin.access_token, json!({})).await).await;
    drop(owner);

    r.app.restart().await;

    let target = r.app.login_ok(&r.target.user.username).await;
    assert_sanctioned(&r.app.ws(&target.access_token).await.fail(join(&r.name)).await, "banned");
    let member = r.app.login_ok(&r.member.user.username).await;
    let mut member = r.app.ws(&member.access_token).await;
    member.ok(join(&r.name)).await;
    assert_sanctioned(&member.fail(send(&r.name, "hi")).await, "muted");
    let moderator = r.app.login_ok(&r.moderator.user.username).await;
    let mut moderator = r.app.ws(&moderator.access_token).await;
    moderator.ok(join(&r.name)).await;
    moderator.ok(send(&r.name, "a moderator is exempt")).await;
    let plain = r.app.signup_and_login(&unique("new")).await;
    let mut plain = r.app.ws(&plain.access_token).await;
    plain.ok(join(&r.name)).await;
    plain.ok(send(&r.name, "first")).await;
    assert_eq!(plain.fail(send(&r.name, "second")).await.code, -32029, "slow mode survived");
    let refused = problem(r.app.login(&victim.user.username, PASSWORD).await, 403).await;
    assert_eq!(refused.reason, Some(confab_shared::moderation::Sanction::Suspended));
}

#[tokio::test]
async fn a_decision_whose_audit_row_cannot_be_written_is_not_applied_at_all() {
    let r = room().await;
    let mut target = r.joined(&r.target).await;
    let mut owner = r.app.ws(&r.owner.access_token).await;
    r.app.execute_sql("ALTER TABLE audit_log RENAME TO audit_log_away").await;

    let err = owner.fail(MuteParams { room: r.name.clone(), user: r.target.user.username.clone(), reason: None, duration_secs: None }).await;
    assert_code(&err, -32603);
    let err = owner.fail(BanParams { room: r.name.clone(), user: r.target.user.username.clone(), reason: None, duration_secs: None }).await;
    assert_code(&err, -32603);
    target.ok(send(&r.name, "neither muted nor banned")).await;
    target.assert_no("moderation.applied").await;

    r.app.execute_sql("ALTER TABLE audit_log_away RENAME TO audit_log").await;
    let mut restarted = r;
    restarted.app.restart().await;
    let target = restarted.app.login_ok(&restarted.target.user.username).await;
    let mut target = restarted.app.ws(&target.access_token).await;
    target.ok(join(&restarted.name)).await;
    target.ok(send(&restarted.name, "nothing was stored either")).await;
}

// ---- Two instances ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_and_a_suspension_decided_on_one_instance_hold_on_another_at_once() {
    let Ok(redis) = std::env::var("CONFAB_TEST_REDIS_URL") else {
        eprintln!("skipped: needs CONFAB_TEST_REDIS_URL (source /tmp/confab-services/env)");
        return;
    };
    let secret = uuid::Uuid::new_v4().simple().to_string().repeat(2);
    let cluster = |config: &mut confab::config::Config| {
        config.redis_url = Some(redis.clone());
        config.jwt_secret = Some(secret.clone());
        // Sign-ups are counted per address in the shared Redis, across every test using it.
        config.signups_per_ip = 10_000;
    };
    let r = room_on(spawn_app_with(cluster).await).await;
    let database_url = r.app.config.database_url();
    let b = spawn_app_with(|config| {
        cluster(config);
        config.database_url = Some(database_url);
    })
    .await;
    let mut member_on_b = b.ws(&r.member.access_token).await;
    member_on_b.ok(join(&r.name)).await;
    let mut target_on_b = b.ws(&r.target.access_token).await;
    target_on_b.ok(join(&r.name)).await;
    // The arrival announced first: a join and a leave within one presence tick announce nothing.
    arrival(&mut member_on_b, &r.target.user.username).await;
    let mut owner_on_a = r.app.ws(&r.owner.access_token).await;

    owner_on_a.ok(BanParams { room: r.name.clone(), user: r.target.user.username.clone(), reason: None, duration_secs: None }).await;
    let told: ModerationApplied = target_on_b.next("moderation.applied").await;
    assert_eq!(told.action, ModerationAction::Ban);
    let left: RoomUser = member_on_b.next("room.user_left").await;
    assert_eq!(left.username, r.target.user.username);
    assert_code(&target_on_b.fail(send(&r.name, "still in?")).await, -32003);
    // B's copy of the decisions catches up within a presence tick.
    within("the ban to hold on B", async {
        loop {
            match target_on_b.call(join(&r.name)).await {
                Err(err) if reason_of(&err) == Some("banned") => break,
                Err(err) => panic!("{err:?}"),
                Ok(_) => {
                    target_on_b.ok(confab_shared::rpc::LeaveParams { room: r.name.clone() }).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
    .await;

    let suspend = format!("/api/users/{}/suspend", r.member.user.username);
    body_of::<Suspension>(post(&r.app, &suspend, &r.admin.access_token, json!({ "reason": "spam" })).await).await;
    assert_eq!(member_on_b.expect_close().await, 4003);
    let refused = problem(b.get("/api/me", Some(&r.member.access_token)).await, 403).await;
    assert_eq!(refused.reason, Some(confab_shared::moderation::Sanction::Suspended));
}

/// Starts an audit export as `token` and waits for it to finish; its job.
async fn audit_export(r: &Room, token: &str, request: Value) -> Job {
    let mut ws = r.app.ws(token).await;
    let accepted: JobAccepted = body(post(&r.app, "/api/audit/export", token, request).await).await;
    let job = ws.ok(confab_shared::rpc::JobSubscribeParams { job_id: accepted.job_id }).await;
    let finished: Job = if job.state == JobState::Done { job } else { ws.next("job.finished").await };
    assert_eq!((&finished.state, &finished.kind), (&JobState::Done, &confab_shared::JobKind::ExportAudit), "{finished:?}");
    finished
}

#[tokio::test]
async fn the_audit_log_exports_to_json_and_csv_with_the_filters_of_its_listing() {
    let r = room().await;
    let user = r.target.user.username.clone();
    let mut moderator = r.app.ws(&r.moderator.access_token).await;
    // A reason a spreadsheet would evaluate, with a comma and a quote to escape.
    let reason = "=HYPERLINK(\"x\"), calm down";
    moderator.ok(MuteParams { room: r.name.clone(), user: user.clone(), reason: Some(reason.into()), duration_secs: None }).await;
    moderator.ok(UnmuteParams { room: r.name.clone(), user: user.clone() }).await;
    let admin = &r.admin.access_token;

    // The room's rows as JSON: what `GET /api/audit` lists, oldest first.
    let job = audit_export(&r, admin, json!({ "format": "json", "room": r.name })).await;
    let file = r.app.get(&format!("/api/jobs/{}/download", job.id), Some(admin)).await;
    assert_eq!(header(&file, "content-type").as_deref(), Some("application/json"));
    assert!(header(&file, "content-disposition").unwrap_or_default().ends_with(&format!("filename=\"audit-export-{}.json\"", job.id)));
    let exported: Vec<confab_shared::moderation::AuditEntry> = body(file).await;
    let listed: AuditPage = body(r.app.get(&format!("/api/audit?room={}", r.name), Some(admin)).await).await;
    let mut newest_first = exported.clone();
    newest_first.reverse();
    assert_eq!(newest_first, listed.entries);
    let actions: Vec<ModerationAction> = exported.iter().map(|e| e.action).collect();
    assert_eq!(actions, [ModerationAction::SetRole, ModerationAction::Mute, ModerationAction::Unmute]);

    // One action as CSV: a header, the row, and the reason inert for a spreadsheet.
    let job = audit_export(&r, admin, json!({ "format": "csv", "room": r.name, "action": "mute", "actor": r.moderator.user.username })).await;
    let file = r.app.get(&format!("/api/jobs/{}/download", job.id), Some(admin)).await;
    assert_eq!(header(&file, "content-type").as_deref(), Some("text/csv; charset=utf-8"));
    let csv_text = text(file).await;
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let columns: Vec<String> = reader.headers().expect("a header").iter().map(str::to_owned).collect();
    assert_eq!(columns, ["id", "at", "actor", "action", "target", "room", "reason", "detail", "instance"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a CSV record")).collect();
    assert_eq!(rows.len(), 1, "{csv_text}");
    assert_eq!((&rows[0][2], &rows[0][3], &rows[0][4]), (r.moderator.user.username.as_str(), "mute", user.as_str()));
    assert_eq!(&rows[0][6], format!("'{reason}"));

    // A filter nothing matches is an empty file, not an error.
    let job = audit_export(&r, admin, json!({ "format": "json", "room": r.name, "after": "2999-01-01T00:00:00Z" })).await;
    let empty: Vec<confab_shared::moderation::AuditEntry> = body(r.app.get(&format!("/api/jobs/{}/download", job.id), Some(admin)).await).await;
    assert!(empty.is_empty());

    // Admins only, with the write scope; filters checked as the listing checks them.
    problem(post(&r.app, "/api/audit/export", &r.owner.access_token, json!({ "format": "json" })).await, 403).await;
    let read_only = r.token(&r.admin, &["read"]).await;
    problem(post(&r.app, "/api/audit/export", &read_only, json!({ "format": "json" })).await, 403).await;
    let bad_room = problem(post(&r.app, "/api/audit/export", admin, json!({ "format": "json", "room": "" })).await, 422).await;
    assert_eq!(bad_room.field.as_deref(), Some("room"));
    let long_actor = problem(post(&r.app, "/api/audit/export", admin, json!({ "format": "json", "actor": "a".repeat(33) })).await, 422).await;
    assert_eq!(long_actor.field.as_deref(), Some("actor"));
    let no_format = problem(post(&r.app, "/api/audit/export", admin, json!({})).await, 422).await;
    assert_eq!(no_format.field.as_deref(), Some("format"));
}
