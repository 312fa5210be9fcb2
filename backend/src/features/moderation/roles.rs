//! Who may act on whom: ranks in a room and the no-escalation rules.
//!
//! The rules are pure functions of two ranks and an action, so the whole table is tested
//! here; the features only work out the ranks (one query for a moderator) and ask.

use confab_shared::moderation::RoomRole;

use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::storage::entity::rooms as room_entity;
use crate::storage::moderation as store;

/// A user's standing in one room, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    Member,
    Moderator,
    Owner,
    Admin,
}

impl Rank {
    /// The room role a client is shown (an admin who neither owns nor moderates the room is
    /// a member there, with the admin's powers).
    pub fn role(self, owner: bool, moderator: bool) -> RoomRole {
        if owner {
            RoomRole::Owner
        } else if moderator {
            RoomRole::Moderator
        } else {
            RoomRole::Member
        }
    }
}

/// What is being done to someone in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// Kick, or delete their message.
    Remove,
    /// Ban or mute: never the owner or an admin.
    Silence,
    /// Unban or unmute.
    Lift,
}

/// `user_id`'s rank in `room`.
pub async fn rank(state: &AppState, room: &room_entity::Model, user_id: i64, is_admin: bool) -> AppResult<Rank> {
    Ok(if is_admin {
        Rank::Admin
    } else if room.owner_id == Some(user_id) {
        Rank::Owner
    } else if store::is_moderator(&state.db, room.id, user_id).await? {
        Rank::Moderator
    } else {
        Rank::Member
    })
}

/// `user_id`'s role in `room` as `room.join` shows it.
pub async fn role(state: &AppState, room: &room_entity::Model, user_id: i64) -> AppResult<RoomRole> {
    let moderator = room.owner_id != Some(user_id) && store::is_moderator(&state.db, room.id, user_id).await?;
    Ok(Rank::Member.role(room.owner_id == Some(user_id), moderator))
}

/// Whether `actor` may moderate the room at all: -32003 otherwise.
pub fn may_moderate(actor: Rank) -> AppResult<()> {
    if actor < Rank::Moderator {
        return Err(AppError::Forbidden("only the room's owner, its moderators or an admin can do this"));
    }
    Ok(())
}

/// Whether `actor` may do `act` to `target` (someone else): -32003 with the rule broken.
pub fn may_act_on(actor: Rank, target: Rank, act: Act) -> AppResult<()> {
    may_moderate(actor)?;
    if act == Act::Lift {
        return Ok(());
    }
    if act == Act::Silence && target >= Rank::Owner {
        return Err(AppError::Forbidden("the room's owner and admins cannot be banned or muted"));
    }
    if target >= actor {
        return Err(AppError::Forbidden("moderators cannot act on the room's owner, an admin or another moderator"));
    }
    Ok(())
}

/// Whether `actor` may give `target_now` the role `role`: -32003 with the rule broken.
pub fn may_set_role(actor: Rank, target_now: Rank, role: RoomRole) -> AppResult<()> {
    match role {
        RoomRole::Owner if actor < Rank::Admin => Err(AppError::Forbidden("only an admin can hand a room to a new owner")),
        RoomRole::Owner => Ok(()),
        _ if actor < Rank::Owner => Err(AppError::Forbidden("only the room's owner or an admin can appoint or remove moderators")),
        _ if target_now == Rank::Owner => Err(AppError::Forbidden("the owner stays the owner until an admin hands the room to someone else")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANKS: [Rank; 4] = [Rank::Member, Rank::Moderator, Rank::Owner, Rank::Admin];

    #[test]
    fn nobody_acts_on_an_equal_or_higher_rank_and_the_owner_and_admins_are_never_silenced() {
        for actor in RANKS {
            for target in RANKS {
                let remove = may_act_on(actor, target, Act::Remove).is_ok();
                let silence = may_act_on(actor, target, Act::Silence).is_ok();
                let lift = may_act_on(actor, target, Act::Lift).is_ok();
                assert_eq!(remove, actor >= Rank::Moderator && target < actor, "{actor:?} removing {target:?}");
                assert_eq!(silence, actor >= Rank::Moderator && target < actor && target < Rank::Owner, "{actor:?} silencing {target:?}");
                assert_eq!(lift, actor >= Rank::Moderator, "{actor:?} lifting for {target:?}");
            }
        }
    }

    #[test]
    fn owners_and_admins_appoint_moderators_and_only_admins_hand_rooms_over() {
        for actor in RANKS {
            for target in RANKS {
                for role in [RoomRole::Moderator, RoomRole::Member] {
                    let ok = may_set_role(actor, target, role).is_ok();
                    assert_eq!(ok, actor >= Rank::Owner && target != Rank::Owner, "{actor:?} making {target:?} a {role:?}");
                }
                assert_eq!(may_set_role(actor, target, RoomRole::Owner).is_ok(), actor == Rank::Admin);
            }
        }
    }
}
