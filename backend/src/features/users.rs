//! Users and presence: `GET /api/users`, `users.list` (paged), `presence.watch` /
//! `presence.unwatch`, and the announcements of first arrivals and last departures.
//!
//! Presence is by interest: a connection hears `presence.changed` only for the users it
//! watches, and the announcements of a tick travel together (see [`crate::presence::batch`]).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use confab_shared::rpc::{
    PresenceUnwatchParams, PresenceUnwatchResult, PresenceWatchParams, PresenceWatchResult, UsersListParams,
};
use confab_shared::{Problem, UserPresence, UsersPage, UsersQuery, validate};

use super::{Page, list_limit};
use crate::auth::extract::MaybeAuthUser;
use crate::error::{AppError, AppResult};
use crate::http::ApiQuery;
use crate::layer::watch::TooMany;
use crate::presence::PresenceError;
use crate::state::AppState;
use crate::storage::users;
use crate::ws::Conn;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/users", get(list_users))
}

impl From<PresenceError> for AppError {
    fn from(err: PresenceError) -> Self {
        tracing::warn!(%err, "presence store unavailable");
        AppError::Unavailable("presence")
    }
}

/// A page of users with their presence.
#[utoipa::path(get, path = "/api/users", tag = "users", security((), ("bearer" = [])), params(UsersQuery),
    responses(
        (status = 200, description = "Users alphabetically (case-insensitive), with total and online counts", body = UsersPage),
        (status = 422, description = "Invalid cursor, limit or prefix", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    _caller: MaybeAuthUser,
    ApiQuery(q): ApiQuery<UsersQuery>,
) -> AppResult<Json<UsersPage>> {
    let params = UsersListParams { cursor: q.cursor, limit: q.limit, prefix: q.prefix, online: q.online };
    list(&state, params).await.map(Json)
}

/// `users.list` and `GET /api/users`: a keyset page by lowercase username. The counts cover
/// the prefix (everyone without one): `total` accounts, `online` of them online.
pub async fn list(state: &AppState, p: UsersListParams) -> AppResult<UsersPage> {
    let limit = list_limit(p.limit, 50)?;
    let prefix = match p.prefix.as_deref() {
        None | Some("") => String::new(),
        Some(prefix) => validate::username_prefix(prefix).map_err(|m| AppError::invalid("prefix", m))?.to_ascii_lowercase(),
    };
    let after = p.cursor.as_deref().filter(|c| !c.is_empty()).map(Page::decode).transpose()?;
    let (names, online_total) = if p.online == Some(true) {
        state.presence.online_page(&prefix, after.as_deref(), limit + 1).await?
    } else {
        let names = users::page(&state.db, &prefix, after.as_deref(), limit as u64 + 1).await?;
        (names, state.presence.online_page(&prefix, None, 0).await?.1)
    };
    let (names, next_cursor) = Page::split(names, limit, |n| n.to_ascii_lowercase());
    let online = if p.online == Some(true) { vec![true; names.len()] } else { state.presence.online_among(&names).await? };
    let total = users::count(&state.db, &prefix).await?;
    Ok(UsersPage {
        users: names.into_iter().zip(online).map(|(username, online)| UserPresence { username, online }).collect(),
        next_cursor,
        total,
        online: online_total,
    })
}

/// `presence.watch`: extends (or replaces) the connection's watch set and returns the
/// current presence of the users named. The set is updated before their presence is read,
/// so a change in between reaches the connection as a `presence.changed` as well.
pub async fn watch(state: &AppState, conn: &Conn, p: PresenceWatchParams) -> AppResult<PresenceWatchResult> {
    let max = state.config.presence_watch_max;
    if p.users.len() > max {
        return Err(AppError::invalid("users", format!("at most {max} users per connection")));
    }
    for name in &p.users {
        validate::username(name).map_err(|m| AppError::invalid("users", format!("{name:?}: {m}")))?;
    }
    let names = users::existing(&state.db, &p.users).await?;
    let watching = state.layer.hub().watches().watch(conn.id, &names, p.replace, max).map_err(|TooMany { would_be }| {
        AppError::invalid("users", format!("at most {max} users per connection (this would watch {would_be})"))
    })?;
    let online = state.presence.online_among(&names).await?;
    let users = names.into_iter().zip(online).map(|(username, online)| UserPresence { username, online }).collect();
    Ok(PresenceWatchResult { watching: watching as u32, users })
}

/// `presence.unwatch`.
pub async fn unwatch(state: &AppState, conn: &Conn, p: PresenceUnwatchParams) -> AppResult<PresenceUnwatchResult> {
    let max = state.config.presence_watch_max;
    if p.users.len() > max {
        return Err(AppError::invalid("users", format!("at most {max} users per call")));
    }
    // Watch sets hold names as the server spells them; a differently cased name still matches.
    let names = users::existing(&state.db, &p.users).await?;
    let watching = state.layer.hub().watches().unwatch(conn.id, &names);
    Ok(PresenceUnwatchResult { watching: watching as u32 })
}

/// Counts a new connection; announces the user (next tick) when it is their first anywhere.
pub async fn connected(state: &AppState, username: &str) {
    match state.presence.connect(username).await {
        Ok(true) => state.presence_batch.user(username, true),
        Ok(false) => {}
        Err(err) => tracing::warn!(%err, "presence connect not recorded"),
    }
}

/// Uncounts a connection; announces the user offline (next tick) when it was their last.
pub async fn disconnected(state: &AppState, username: &str) {
    match state.presence.disconnect(username).await {
        Ok(true) => state.presence_batch.user(username, false),
        Ok(false) => {}
        Err(err) => tracing::warn!(%err, "presence disconnect not recorded"),
    }
}
