//! Whom a room message mentions: the `@name`s that are users who may read the room (never
//! the author), and the members `@room` / `@here` reach when the room's owner, a moderator
//! or an admin wrote them.
//!
//! What one sender can cost is bounded: the text is read once ([`confab_shared::mention`]
//! counts at most `MAX_MENTIONS` names), the names are looked up in one query, and only those
//! roles fan out to a whole room. A text that mentions nobody costs no query at all.

use std::collections::HashSet;

use confab_shared::{MentionAll, mention};

use crate::auth::Identity;
use crate::error::{AppError, AppResult};
use crate::features::moderation::roles::{self, Rank};
use crate::state::AppState;
use crate::storage::mentions::{self, Candidate};
use crate::storage::messages::MentionTargets;
use crate::storage::rooms;

/// Resolves the mentions of `text`, written by `me` in the room `room_id`.
pub async fn resolve(state: &AppState, me: &Identity, room_id: i64, text: &str) -> AppResult<MentionTargets> {
    let said = mention::mentioned(text);
    let mut targets = MentionTargets::default();
    if said.names.is_empty() && !said.here && !said.room {
        return Ok(targets);
    }
    let room = rooms::by_id(&state.db, room_id).await?.ok_or(AppError::NotFound("room"))?;
    let may_read = |c: &Candidate| (!room.admin_only || c.is_admin) && state.sanctions.ban(room.id, c.id).is_none();
    let mut seen = HashSet::from([me.user_id]);
    if !said.names.is_empty() {
        let mut found = mentions::by_names(&state.db, &said.names).await?;
        // In the order the text names them.
        found.sort_by_key(|c| said.names.iter().position(|n| n.eq_ignore_ascii_case(&c.username)));
        for c in found {
            if may_read(&c) && seen.insert(c.id) {
                targets.users.push(c.id);
                targets.names.push(c.username);
            }
        }
    }
    if (said.room || said.here) && roles::rank(state, &room, me.user_id, me.is_admin).await? >= Rank::Moderator {
        let reached = if said.room {
            targets.all = Some(MentionAll::Room);
            mentions::members(&state.db, room.id).await?
        } else {
            targets.all = Some(MentionAll::Here);
            let present = state.presence.room_members(&room.name).await?;
            let present: Vec<&str> = present.iter().map(String::as_str).collect();
            mentions::by_names(&state.db, &present).await?
        };
        for c in reached {
            if may_read(&c) && seen.insert(c.id) {
                targets.users.push(c.id);
            }
        }
    }
    Ok(targets)
}
