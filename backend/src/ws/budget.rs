//! The byte budget of a reply frame: every reply, a batch's array included, stays within
//! [`MAX_ANSWER_BYTES`](confab_shared::rpc::MAX_ANSWER_BYTES), so no answer can outgrow what the socket's writer takes.
//!
//! The session gives each call what the frame has left, less the call's own envelope
//! ([`Conn::answer_budget`](super::Conn::answer_budget)). Paging methods (`sync`, the two
//! histories, `room.join`'s history) cut their items to it and say so. Every other method's
//! answer has a size bound known before it runs ([`floor`]); a call whose floor no longer fits
//! is not run at all and answers [`ErrorObject::answer_budget_spent`], so nothing happens
//! that the client would not hear about.

use confab_shared::rpc::{ErrorObject, Incoming, Request, RequestId, Response};
use confab_shared::{DirectMessage, Message};

use crate::features::json_len;
use crate::features::rooms::JOIN_ONLINE;

/// The longest page of `users.list`, `rooms.list` and `room.members`.
const LIST_PAGE: usize = 200;
/// A username in a list: 32 characters, quotes and a comma.
const NAME_BYTES: usize = 32 + 3;
/// One `UserPresence`: `{"username":"<32>","online":false},`.
const PRESENCE_BYTES: usize = 64;
/// One `RoomSummary`: a 64-character name, a count, a timestamp, an unread count, its owner
/// and at most [`MAX_MODERATORS`](confab_shared::moderation::MAX_MODERATORS) moderators.
const ROOM_BYTES: usize = 320 + (1 + confab_shared::moderation::MAX_MODERATORS) * NAME_BYTES;
/// `room.join`'s `muted`: a `moderation.applied` with a 64-character room, a timestamp, a
/// 32-character name and a reason of at most 500 characters of up to 4 bytes each.
const MUTE_NOTICE_BYTES: usize = 256 + confab_shared::moderation::MAX_REASON_CHARS * 4;
/// What a list page holds besides its items: a cursor (at most 100 characters), counts.
const PAGE_FRAME_BYTES: usize = 256;
/// The largest answer of the methods that answer an acknowledgement, a cursor count, a job
/// or a token's expiry.
const SMALL_BYTES: usize = 1024;

/// The bytes a call needs left in its frame's budget before it may run: the largest answer it
/// can give, or for a paging method the least that still makes progress (one history message;
/// for `sync`, whose `complete: false` says "call again", an empty answer).
pub fn floor(request: &Request) -> usize {
    match request {
        Request::Echo(p) => json_len(p),
        Request::UsersList(_) => PAGE_FRAME_BYTES + LIST_PAGE * PRESENCE_BYTES,
        Request::RoomsList(_) => PAGE_FRAME_BYTES + LIST_PAGE * ROOM_BYTES,
        Request::RoomSetQuiet(_) => ROOM_BYTES,
        Request::RoomMembers(_) => PAGE_FRAME_BYTES + LIST_PAGE * NAME_BYTES,
        // The room, the first page of who is there and its cursor; the history is cut to fit.
        Request::RoomJoin(_) => PAGE_FRAME_BYTES + ROOM_BYTES + JOIN_ONLINE * NAME_BYTES
            + MUTE_NOTICE_BYTES,
        Request::PresenceWatch(p) => PAGE_FRAME_BYTES + p.users.len().saturating_mul(PRESENCE_BYTES),
        Request::RoomSend(_) | Request::MessageEdit(_) | Request::MessageReact(_) => Message::MAX_JSON_BYTES,
        Request::RoomHistory(_) => Message::MAX_JSON_BYTES + 2,
        Request::DmSend(_) => DirectMessage::MAX_JSON_BYTES,
        Request::DmHistory(_) => DirectMessage::MAX_JSON_BYTES + 2,
        Request::Sync(_) => PAGE_FRAME_BYTES,
        Request::PresenceUnwatch(_)
        | Request::RoomLeave(_)
        | Request::RoomTyping(_)
        | Request::MessageDelete(_)
        | Request::RoomRead(_)
        | Request::DmRead(_)
        | Request::JobSubscribe(_)
        | Request::AuthRefresh(_)
        | Request::RoomKick(_)
        | Request::RoomBan(_)
        | Request::RoomUnban(_)
        | Request::RoomMute(_)
        | Request::RoomUnmute(_)
        | Request::RoomSetRole(_)
        | Request::RoomConfigure(_)
        | Request::MessageReport(_) => SMALL_BYTES,
    }
}

/// What a call's result may take when its frame has `left` bytes: less the envelope around
/// the result, `{"jsonrpc":"2.0","id":…,"result":}`.
pub fn for_result(left: usize, call: &Incoming) -> usize {
    let id: Option<&RequestId> = call.id.as_ref().and_then(Option::as_ref);
    left.saturating_sub(json_len(&id) + r#"{"jsonrpc":"2.0","id":,"result":}"#.len())
}

/// Whether `call` may run with `budget` bytes for its result: its floor fits, or, for a call
/// that did not decode, its error does.
pub fn admits(call: &Incoming, budget: usize) -> bool {
    match &call.request {
        Ok(request) => floor(request) <= budget,
        Err(error) => json_len(error) <= budget,
    }
}

/// The answer of a call that was not run (none for a notification).
pub fn refused(call: Incoming) -> Option<Response> {
    let wants_response = call.wants_response();
    wants_response.then(|| Response::err(call.id.flatten(), ErrorObject::answer_budget_spent()))
}

#[cfg(test)]
mod tests {
    use confab_shared::rpc::{JoinResult, PresenceWatchParams, PresenceWatchResult, RoomMembersPage};
    use confab_shared::{Job, JobKind, JobState, RoomSummary, RoomsPage, Timestamp, UserPresence, UsersPage};

    use confab_shared::rpc::MAX_ANSWER_BYTES;

    use super::*;

    fn name(i: usize) -> String {
        format!("{i:0>32}")
    }

    fn cursor() -> Option<String> {
        Some("A".repeat(100))
    }

    fn room() -> RoomSummary {
        RoomSummary {
            name: "r".repeat(64),
            online: u32::MAX,
            admin_only: false,
            last_message_at: Some(Timestamp::from_millis(253_402_300_799_999)),
            unread: Some(i64::MIN),
            mentions: Some(i64::MIN),
            owner: Some(name(0)),
            moderators: (0..confab_shared::moderation::MAX_MODERATORS).map(name).collect(),
            slow_mode_secs: u32::MAX,
            retention_days: Some(u32::MAX),
            quiet: true,
        }
    }

    /// The floors are what the largest answers of each method take, and all of them fit in a
    /// frame with room to spare.
    #[test]
    fn the_largest_answer_of_every_bounded_method_is_within_its_floor() {
        let users = UsersPage {
            users: (0..LIST_PAGE).map(|i| UserPresence { username: name(i), online: false }).collect(),
            next_cursor: cursor(),
            total: u64::MAX,
            online: u64::MAX,
        };
        let rooms = RoomsPage { rooms: (0..LIST_PAGE).map(|_| room()).collect(), next_cursor: cursor(), total: u64::MAX };
        let members = RoomMembersPage { members: (0..LIST_PAGE).map(name).collect(), next_cursor: cursor(), total: u64::MAX };
        let joined = JoinResult {
            room: room(),
            online: (0..JOIN_ONLINE).map(name).collect(),
            online_next_cursor: cursor(),
            history: Vec::new(),
            history_more: false,
            role: confab_shared::moderation::RoomRole::Moderator,
            muted: Some(confab_shared::moderation::ModerationApplied {
                action: confab_shared::moderation::ModerationAction::Mute,
                room: Some("r".repeat(64)),
                until: Some(Timestamp::from_millis(253_402_300_799_999)),
                reason: Some("\u{1F600}".repeat(confab_shared::moderation::MAX_REASON_CHARS)),
                by: name(0),
                role: None,
            }),
        };
        let watched = 1000;
        let watch = PresenceWatchParams { users: (0..watched).map(name).collect(), replace: false };
        let watching = PresenceWatchResult {
            watching: u32::MAX,
            users: (0..watched).map(|i| UserPresence { username: name(i), online: false }).collect(),
        };
        let job = Job {
            id: i64::MIN,
            kind: JobKind::ExportRoom,
            state: JobState::Failed,
            percent: 100,
            error: Some("x".repeat(200)),
            created_at: Timestamp::from_millis(253_402_300_799_999),
            finished_at: Some(Timestamp::from_millis(253_402_300_799_999)),
        };
        use confab_shared::rpc::{
            JobSubscribeParams, JoinParams, RoomMembersParams, RoomsListParams, UsersListParams,
        };
        let cases: [(Request, usize); 6] = [
            (Request::UsersList(UsersListParams::default()), json_len(&users)),
            (Request::RoomsList(RoomsListParams::default()), json_len(&rooms)),
            (Request::RoomMembers(RoomMembersParams { room: "r".into(), cursor: None, limit: None }), json_len(&members)),
            (Request::RoomJoin(JoinParams { room: "r".into(), history: None }), json_len(&joined)),
            (Request::PresenceWatch(watch), json_len(&watching)),
            (Request::JobSubscribe(JobSubscribeParams { job_id: 1 }), json_len(&job)),
        ];
        for (request, largest) in cases {
            let floor = floor(&request);
            assert!(largest <= floor, "{}: {largest} > {floor}", request.method());
            assert!(floor < MAX_ANSWER_BYTES / 4, "{}: {floor}", request.method());
        }
        assert!(Message::MAX_JSON_BYTES + 2 < MAX_ANSWER_BYTES / 4);
    }
}
