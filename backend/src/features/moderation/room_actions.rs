//! The room actions of owners, moderators and admins: kick, ban, unban, mute, unmute,
//! appointing moderators and owners, and the room's settings.

use std::collections::HashSet;

use confab_shared::moderation::{
    BanParams, ConfigureParams, KickParams, MAX_MODERATORS, MAX_RETENTION_DAYS, MAX_SLOW_MODE_SECS, ModerationAction, ModerationApplied,
    ModerationResult, MuteParams, RoomRole, RoomSettings, SetRoleParams, UnbanParams, UnmuteParams,
};
use confab_shared::{Timestamp, validate};

use super::roles::{self, Act, Rank};
use super::sanctions::Entry;
use super::{audit, ends_at, evict, layer_up, reason, tell};
use crate::auth::Identity;
use crate::error::{AppError, AppResult};
use crate::features::rooms::room_param;
use crate::state::AppState;
use crate::storage::entity::rooms as room_entity;
use crate::storage::entity::users as user_entity;
use crate::storage::moderation::{self as store, Kind};
use crate::storage::{rooms, users};

/// The room, the caller's rank in it, the user acted on and their rank.
struct Scene {
    room: room_entity::Model,
    actor: Rank,
    target: user_entity::Model,
    target_rank: Rank,
}

async fn scene(state: &AppState, me: &Identity, room: &str, user: &str) -> AppResult<Scene> {
    room_param(room)?;
    let username = validate::username(user).map_err(|m| AppError::invalid("user", m))?;
    let room = rooms::by_name(&state.db, room).await?.ok_or(AppError::NotFound("room"))?;
    let actor = roles::rank(state, &room, me.user_id, me.is_admin).await?;
    roles::may_moderate(actor)?;
    let target = users::by_name(&state.db, username).await?.ok_or(AppError::NotFound("user"))?;
    if target.id == me.user_id {
        return Err(AppError::Forbidden("you cannot do this to yourself"));
    }
    let target_rank = roles::rank(state, &room, target.id, target.is_admin).await?;
    Ok(Scene { room, actor, target, target_rank })
}

fn result(action: ModerationAction, scene: &Scene, until: Option<i64>) -> ModerationResult {
    ModerationResult { action, room: scene.room.name.clone(), user: scene.target.username.clone(), until: until.map(Timestamp::from_millis) }
}

fn applied(me: &Identity, action: ModerationAction, room: &str, until: Option<i64>, reason: Option<String>) -> ModerationApplied {
    ModerationApplied { action, room: Some(room.to_owned()), until: until.map(Timestamp::from_millis), reason, by: me.username.clone(), role: None }
}

/// `room.kick`: the user's sockets leave the room now, on every instance; they may rejoin.
pub async fn kick(state: &AppState, me: &Identity, p: KickParams) -> AppResult<ModerationResult> {
    let why = reason(p.reason.as_deref(), "reason")?;
    let scene = scene(state, me, &p.room, &p.user).await?;
    roles::may_act_on(scene.actor, scene.target_rank, Act::Remove)?;
    layer_up(state)?;
    let mut entry = audit::entry(state, me, ModerationAction::Kick);
    (entry.target, entry.room, entry.reason) = (Some(scene.target.username.clone()), Some(scene.room.name.clone()), why.clone());
    store::record(&state.db, &entry).await?;
    evict(state, &scene.room.name, scene.target.id);
    tell(state, scene.target.id, applied(me, ModerationAction::Kick, &scene.room.name, None, why));
    tracing::info!(room = %scene.room.name, user = %scene.target.username, by = %me.username, "kicked");
    Ok(result(ModerationAction::Kick, &scene, None))
}

/// `room.ban`: kicked, and kept out until unbanned or the duration ends.
pub async fn ban(state: &AppState, me: &Identity, p: BanParams) -> AppResult<ModerationResult> {
    sanction(state, me, Kind::Ban, p.room, p.user, p.reason, p.duration_secs).await
}

/// `room.mute`: may read, cannot send, react, type or edit until unmuted or the duration ends.
pub async fn mute(state: &AppState, me: &Identity, p: MuteParams) -> AppResult<ModerationResult> {
    sanction(state, me, Kind::Mute, p.room, p.user, p.reason, p.duration_secs).await
}

async fn sanction(
    state: &AppState,
    me: &Identity,
    kind: Kind,
    room: String,
    user: String,
    why: Option<String>,
    duration_secs: Option<u64>,
) -> AppResult<ModerationResult> {
    let why = reason(why.as_deref(), "reason")?;
    let until = ends_at(duration_secs)?;
    let scene = scene(state, me, &room, &user).await?;
    roles::may_act_on(scene.actor, scene.target_rank, Act::Silence)?;
    layer_up(state)?;
    let action = if kind == Kind::Ban { ModerationAction::Ban } else { ModerationAction::Mute };
    let mut entry = audit::entry(state, me, action);
    (entry.target, entry.room, entry.reason) = (Some(scene.target.username.clone()), Some(scene.room.name.clone()), why.clone());
    entry.detail = duration_secs.map(|secs| format!("for {secs} s"));
    store::sanction(&state.db, scene.room.id, scene.target.id, kind, why.as_deref(), until, me.user_id, &entry).await?;
    state.sanctions.set(kind, scene.room.id, &scene.room.name, scene.target.id, Entry { until, reason: why.clone() });
    if kind == Kind::Ban {
        evict(state, &scene.room.name, scene.target.id);
    }
    tell(state, scene.target.id, applied(me, action, &scene.room.name, until, why));
    tracing::info!(room = %scene.room.name, user = %scene.target.username, by = %me.username, action = action.as_str(), ?duration_secs, "sanctioned");
    Ok(result(action, &scene, until))
}

/// `room.unban`: idempotent.
pub async fn unban(state: &AppState, me: &Identity, p: UnbanParams) -> AppResult<ModerationResult> {
    lift(state, me, Kind::Ban, &p.room, &p.user).await
}

/// `room.unmute`: idempotent.
pub async fn unmute(state: &AppState, me: &Identity, p: UnmuteParams) -> AppResult<ModerationResult> {
    lift(state, me, Kind::Mute, &p.room, &p.user).await
}

async fn lift(state: &AppState, me: &Identity, kind: Kind, room: &str, user: &str) -> AppResult<ModerationResult> {
    let scene = scene(state, me, room, user).await?;
    roles::may_act_on(scene.actor, scene.target_rank, Act::Lift)?;
    layer_up(state)?;
    let action = if kind == Kind::Ban { ModerationAction::Unban } else { ModerationAction::Unmute };
    let mut entry = audit::entry(state, me, action);
    (entry.target, entry.room) = (Some(scene.target.username.clone()), Some(scene.room.name.clone()));
    if store::lift(&state.db, scene.room.id, scene.target.id, kind, &entry).await? {
        tell(state, scene.target.id, applied(me, action, &scene.room.name, None, None));
    }
    state.sanctions.lift(kind, scene.room.id, scene.target.id);
    Ok(result(action, &scene, None))
}

/// `room.set_role`: moderators by the owner or an admin; a new owner by an admin.
pub async fn set_role(state: &AppState, me: &Identity, p: SetRoleParams) -> AppResult<ModerationResult> {
    let scene = scene(state, me, &p.room, &p.user).await?;
    roles::may_set_role(scene.actor, scene.target_rank, p.role)?;
    layer_up(state)?;
    let mut entry = audit::entry(state, me, ModerationAction::SetRole);
    (entry.target, entry.room, entry.detail) = (Some(scene.target.username.clone()), Some(scene.room.name.clone()), Some(p.role.as_str().to_owned()));
    let room_id = scene.room.id;
    match p.role {
        RoomRole::Owner => {
            store::set_owner(&state.db, room_id, scene.target.id, &entry).await?;
            if let Some(previous) = scene.room.owner_id {
                state.sanctions.set_exempt(room_id, previous, false);
            }
            state.sanctions.set_exempt(room_id, scene.target.id, true);
        }
        RoomRole::Moderator => {
            if scene.target_rank != Rank::Moderator && store::moderator_count(&state.db, room_id).await? >= MAX_MODERATORS as u64 {
                return Err(AppError::Conflict("the room has 20 moderators already, the most it may have"));
            }
            store::set_moderator(&state.db, room_id, scene.target.id, true, me.user_id, &entry).await?;
            state.sanctions.set_exempt(room_id, scene.target.id, true);
        }
        RoomRole::Member => {
            store::set_moderator(&state.db, room_id, scene.target.id, false, me.user_id, &entry).await?;
            state.sanctions.set_exempt(room_id, scene.target.id, false);
        }
    }
    let mut told = applied(me, ModerationAction::SetRole, &scene.room.name, None, None);
    told.role = Some(p.role);
    tell(state, scene.target.id, told);
    Ok(result(ModerationAction::SetRole, &scene, None))
}

/// `room.configure`: slow mode (owner, moderators, admins) and retention (owner, admins).
pub async fn configure(state: &AppState, me: &Identity, p: ConfigureParams) -> AppResult<RoomSettings> {
    room_param(&p.room)?;
    if p.slow_mode_secs.is_some_and(|s| s > MAX_SLOW_MODE_SECS) {
        return Err(AppError::invalid("slow_mode_secs", format!("must be 0 to {MAX_SLOW_MODE_SECS}")));
    }
    if p.retention_days.is_some_and(|d| d > MAX_RETENTION_DAYS) {
        return Err(AppError::invalid("retention_days", format!("must be 0 to {MAX_RETENTION_DAYS}")));
    }
    let room = rooms::by_name(&state.db, &p.room).await?.ok_or(AppError::NotFound("room"))?;
    let actor = roles::rank(state, &room, me.user_id, me.is_admin).await?;
    roles::may_moderate(actor)?;
    if p.retention_days.is_some() && actor < Rank::Owner {
        return Err(AppError::Forbidden("only the room's owner or an admin can change its retention"));
    }
    layer_up(state)?;
    let retention = p.retention_days.map(|days| (days > 0).then_some(days));
    let mut entry = audit::entry(state, me, ModerationAction::Configure);
    entry.room = Some(room.name.clone());
    let mut detail = Vec::new();
    if let Some(secs) = p.slow_mode_secs {
        detail.push(format!("slow_mode_secs={secs}"));
    }
    if let Some(days) = retention {
        detail.push(format!("retention_days={}", days.map_or("default".to_owned(), |d| d.to_string())));
    }
    entry.detail = Some(detail.join(" "));
    store::configure(&state.db, room.id, p.slow_mode_secs, retention, &entry).await?;
    if let Some(secs) = p.slow_mode_secs {
        let exempt: HashSet<i64> = store::exempt_of(&state.db, &[room.id]).await?.remove(&room.id).unwrap_or_default();
        state.sanctions.set_slow_mode(room.id, secs, exempt);
    }
    let room = rooms::by_id(&state.db, room.id).await?.ok_or(AppError::NotFound("room"))?;
    Ok(settings(&room))
}

/// A room's settings as the contract shows them.
pub fn settings(room: &room_entity::Model) -> RoomSettings {
    RoomSettings {
        room: room.name.clone(),
        slow_mode_secs: room.slow_mode_secs.max(0) as u32,
        retention_days: room.retention_days.map(|d| d.max(0) as u32),
    }
}
