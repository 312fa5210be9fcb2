//! Users and presence: `GET /api/users`, `users.list`, `presence.changed`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use confab_shared::UserPresence;
use confab_shared::rpc::Notification;

use crate::auth::extract::MaybeAuthUser;
use crate::error::{AppError, AppResult};
use crate::layer::{ChannelLayer, Class, Delivery, group};
use crate::presence::PresenceError;
use crate::state::AppState;
use crate::storage::users;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/users", get(list_users))
}

impl From<PresenceError> for AppError {
    fn from(err: PresenceError) -> Self {
        tracing::warn!(%err, "presence store unavailable");
        AppError::Unavailable("presence")
    }
}

/// Every user with their presence.
#[utoipa::path(get, path = "/api/users", tag = "users", security((), ("bearer" = [])),
    responses((status = 200, description = "Every user, alphabetically", body = [UserPresence])))]
pub async fn list_users(State(state): State<AppState>, _caller: MaybeAuthUser) -> AppResult<Json<Vec<UserPresence>>> {
    list(&state).await.map(Json)
}

/// Every user, alphabetically, with their presence across instances.
pub async fn list(state: &AppState) -> AppResult<Vec<UserPresence>> {
    let online = state.presence.online_users().await?;
    let names = users::all_names(&state.db).await?;
    Ok(names
        .into_iter()
        .map(|username| {
            let online = online.contains(&username);
            UserPresence { username, online }
        })
        .collect())
}

/// Counts a new connection; announces the user when it is their first anywhere.
pub async fn connected(state: &AppState, username: &str) {
    match state.presence.connect(username).await {
        Ok(true) => announce(state, username, true),
        Ok(false) => {}
        Err(err) => tracing::warn!(%err, "presence connect not recorded"),
    }
}

/// Uncounts a connection; announces the user offline when it was their last.
pub async fn disconnected(state: &AppState, username: &str) {
    match state.presence.disconnect(username).await {
        Ok(true) => announce(state, username, false),
        Ok(false) => {}
        Err(err) => tracing::warn!(%err, "presence disconnect not recorded"),
    }
}

/// Tells every connection on every instance that a user came online or went offline.
pub fn announce(state: &AppState, username: &str, online: bool) {
    announce_on(state.layer.as_ref(), username, online);
}

/// [`announce`] with only a layer at hand (the presence reaper).
pub fn announce_on(layer: &dyn ChannelLayer, username: &str, online: bool) {
    let frame = Notification::PresenceChanged(UserPresence { username: username.to_owned(), online }).to_frame();
    if let Err(err) = layer.group_send(group::ALL, Delivery::frame(frame, Class::Droppable)) {
        tracing::warn!(%err, "presence change not broadcast");
    }
}
