//! From a decoded request to its result: the one place that maps methods to features.

use confab_shared::Timestamp;
use confab_shared::rpc::{AuthRefreshParams, AuthRefreshResult, ErrorObject, Request};
use serde::Serialize;
use serde_json::Value;

use super::Conn;
use crate::error::{AppError, AppResult};
use crate::features::moderation::{reports, room_actions};
use crate::features::{chat, dm, rooms, sync, users};
use crate::state::AppState;

/// Runs one call; every failure becomes a JSON-RPC error object.
pub async fn dispatch(state: &AppState, conn: &mut Conn, request: Request) -> Result<Value, ErrorObject> {
    crate::auth::scopes::authorize_method(conn.identity.as_ref(), request.method())?;
    let outcome = match request {
        Request::Echo(p) => json(Ok(p)),
        Request::UsersList(p) => json(users::list(state, p).await),
        Request::RoomsList(p) => json(rooms::list(state, conn.identity.as_ref(), p).await),
        Request::RoomJoin(p) => json(rooms::join(state, conn, p).await),
        Request::RoomMembers(p) => json(rooms::members(state, conn, p).await),
        Request::PresenceWatch(p) => json(users::watch(state, conn, p).await),
        Request::PresenceUnwatch(p) => json(users::unwatch(state, conn, p).await),
        Request::RoomLeave(p) => json(rooms::leave(state, conn, p).await),
        Request::RoomSend(p) => json(chat::send(state, conn, p).await),
        Request::RoomHistory(p) => json(rooms::history(state, conn.identity.as_ref(), p, conn.answer_budget).await),
        Request::RoomTyping(p) => json(rooms::typing(state, conn, p).await),
        Request::MessageEdit(p) => json(chat::edit(state, conn, p).await),
        Request::MessageDelete(p) => json(chat::delete(state, conn, p).await),
        Request::MessageReact(p) => json(chat::react(state, conn, p).await),
        Request::DmSend(p) => json(dm::send(state, conn, p).await),
        Request::DmHistory(p) => json(dm::history(state, conn, p).await),
        Request::RoomRead(p) => json(rooms::read(state, conn, p).await),
        Request::RoomSetQuiet(p) => json(async { rooms::set_quiet(state, conn.user()?, p).await }.await),
        Request::DmRead(p) => json(dm::read(state, conn, p).await),
        Request::Sync(p) => json(sync::sync(state, conn, p).await),
        Request::JobSubscribe(p) => json(crate::features::jobs::subscribe(state, conn, p).await),
        Request::AuthRefresh(p) => json(refresh(state, conn, p).await),
        Request::RoomKick(p) => json(async { room_actions::kick(state, conn.user()?, p).await }.await),
        Request::RoomBan(p) => json(async { room_actions::ban(state, conn.user()?, p).await }.await),
        Request::RoomUnban(p) => json(async { room_actions::unban(state, conn.user()?, p).await }.await),
        Request::RoomMute(p) => json(async { room_actions::mute(state, conn.user()?, p).await }.await),
        Request::RoomUnmute(p) => json(async { room_actions::unmute(state, conn.user()?, p).await }.await),
        Request::RoomSetRole(p) => json(async { room_actions::set_role(state, conn.user()?, p).await }.await),
        Request::RoomConfigure(p) => json(async { room_actions::configure(state, conn.user()?, p).await }.await),
        Request::MessageReport(p) => json(async { reports::report(state, conn.user()?, p).await }.await),
    };
    outcome.map_err(ErrorObject::from)
}

fn json<T: Serialize>(result: AppResult<T>) -> AppResult<Value> {
    result.and_then(|value| serde_json::to_value(value).map_err(|e| AppError::Internal(e.into())))
}

/// `auth.refresh`: adopt a fresh access token of the same user, moving the connection to
/// its session (so that logging that session out closes this socket).
async fn refresh(state: &AppState, conn: &mut Conn, p: AuthRefreshParams) -> AppResult<AuthRefreshResult> {
    let current = conn.user()?.clone();
    if current.api_token.is_some() {
        return Err(AppError::Forbidden("a connection opened with an API token keeps it; reconnect to change it"));
    }
    if crate::auth::api_tokens::is_api_token(&p.access_token) {
        return Err(AppError::invalid("access_token", "an API token cannot replace an access token"));
    }
    let fresh = crate::auth::authenticate(state, &p.access_token)
        .await
        .map_err(|_| AppError::invalid("access_token", "invalid, expired or revoked token"))?;
    if fresh.user_id != current.user_id {
        return Err(AppError::Forbidden("the token belongs to another user"));
    }
    let (new_group, old_group) = (fresh.revocation_group(), current.revocation_group());
    if new_group != old_group {
        state.layer.group_add(&new_group, conn.id).await.map_err(|e| anyhow::anyhow!(e))?;
        state.layer.group_discard(&old_group, conn.id);
    }
    let expires_at = Timestamp::from_millis(fresh.expires_at * 1000);
    conn.identity = Some(fresh);
    Ok(AuthRefreshResult { expires_at })
}
