//! Moderation: room roles, the actions of a room's owner and moderators and of admins,
//! reports and the audit log.
//!
//! A room has one owner (whoever created it; an admin can hand it to someone else), any
//! number of moderators (up to [`MAX_MODERATORS`]) and members. Admins may do everything
//! everywhere. Nobody acts on someone of equal or higher rank: a moderator cannot kick, ban
//! or mute the owner, an admin or another moderator; the owner cannot be banned or muted in
//! their own room. Every action is stored before it takes effect and written to the audit
//! log in the same transaction.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::rest::wire;

/// The most moderators one room may have (every room summary lists them).
pub const MAX_MODERATORS: usize = 20;
/// The longest `reason` (characters) an action or a report may carry.
pub const MAX_REASON_CHARS: usize = 500;
/// The longest `duration_secs` of a ban, mute or suspension: a year (absent: until lifted).
pub const MAX_DURATION_SECS: u64 = 366 * 24 * 3600;
/// The longest slow mode, in seconds (6 hours).
pub const MAX_SLOW_MODE_SECS: u32 = 6 * 3600;
/// The longest per-room retention, in days (10 years).
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// The rules of moderation as the protocol reference states them.
pub const RULES: &str = "Each room has an `owner` (whoever created it; an admin may hand the room to another user with \
`room.set_role`), `moderators` (appointed by the owner or an admin) and members; admins may act in every room. Owners, \
moderators and admins may delete any message of the room, kick, ban and mute its members, and set slow mode \
(`room.configure`); only the owner or an admin appoints or removes moderators. Nobody acts on a higher or equal rank: \
a moderator cannot act on the owner, an admin or another moderator; nobody can ban or mute the room's owner or an \
admin. A kick takes the user's sockets out of the room at once, on every instance; a ban also keeps them out (`room.join`, \
`room.history`, `room.read` answer -32003 with `data.reason = \"banned\"`, and `sync` returns nothing new from the room); \
a mute lets them read but not send, react, type or edit (-32003 with `data.reason = \"muted\"`). A `duration_secs` ends \
the ban or mute on its own; `data.until` says when. In slow mode a member may send one message per `slow_mode_secs` \
(owner, moderators and admins are exempt): -32029 with `data.retry_after_ms` and `data.reason = \"slow_mode\"`. The user \
acted on gets `moderation.applied`. Decisions are stored: they survive restarts and reach every instance within one \
presence tick; when the database is unreachable the action is refused and nothing of it applies. A suspended account \
(`POST /api/users/{username}/suspend`) has its sockets closed with 4003 and its logins, refreshes, API tokens and \
socket upgrades refused with 403 problem+json `reason: \"suspended\"` until it is lifted or ends.";

wire! {
    /// A user's role in one room.
    #[derive(Copy, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum RoomRole {
        /// The room's owner: everything a moderator may do, and appointing moderators.
        Owner,
        /// Deletes messages, kicks, bans and mutes members, sets slow mode.
        Moderator,
        /// Anyone else.
        Member,
    }

    /// Why a call was refused by a moderation decision (`data.reason` of -32003 and -32029,
    /// `reason` of a 403 problem).
    #[derive(Copy, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum Sanction {
        /// Muted in this room: may read, not send, react, type or edit.
        Muted,
        /// Banned from this room: may not join or read it.
        Banned,
        /// The account is suspended.
        Suspended,
        /// The room is in slow mode and the caller's last message was too recent.
        SlowMode,
    }

    /// What a moderation or admin action did (`moderation.applied`'s `action`, the audit
    /// log's `action`).
    #[derive(Copy, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum ModerationAction {
        /// Taken out of a room (may rejoin).
        Kick,
        /// Kept out of a room.
        Ban,
        /// Let back into a room.
        Unban,
        /// Silenced in a room.
        Mute,
        /// May speak in a room again.
        Unmute,
        /// A room role changed (owner, moderator, member).
        SetRole,
        /// A room's slow mode or retention changed.
        Configure,
        /// A message was deleted by someone other than its author.
        DeleteMessage,
        /// An account was suspended.
        Suspend,
        /// An account's suspension was lifted.
        Unsuspend,
        /// A user's messages were deleted (one room or everywhere), as a background job.
        Purge,
        /// A message was reported.
        Report,
        /// A report was resolved.
        ResolveReport,
        /// A webhook was created, deleted or retried by an admin.
        Webhook,
        /// An API token was created or revoked.
        Token,
        /// A notice was published from outside (`POST /api/publish`).
        Publish,
        /// Old messages were deleted by the retention sweep.
        Retention,
    }

    /// Params of `room.kick`.
    pub struct KickParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// The username to take out of the room.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32))]
        pub user: String,
        /// Why, up to 500 characters (no control characters but line breaks); shown to the user.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000-\\u0009\\u000B-\\u001F\\u007F-\\u009F]*$", max_length = 500))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub reason: Option<String>,
    }

    /// Params of `room.ban`.
    pub struct BanParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// The username.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32))]
        pub user: String,
        /// Why, up to 500 characters (no control characters but line breaks); shown to the user.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000-\\u0009\\u000B-\\u001F\\u007F-\\u009F]*$", max_length = 500))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub reason: Option<String>,
        /// Seconds until it ends on its own, 1 to 31 622 400 (a year); absent: until lifted.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 31_622_400))]
        #[serde(default, with = "crate::whole", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional, type = "number"))]
        pub duration_secs: Option<u64>,
    }

    /// Params of `room.mute`.
    pub struct MuteParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// The username.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32))]
        pub user: String,
        /// Why, up to 500 characters (no control characters but line breaks); shown to the user.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000-\\u0009\\u000B-\\u001F\\u007F-\\u009F]*$", max_length = 500))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub reason: Option<String>,
        /// Seconds until it ends on its own, 1 to 31 622 400 (a year); absent: until lifted.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 31_622_400))]
        #[serde(default, with = "crate::whole", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional, type = "number"))]
        pub duration_secs: Option<u64>,
    }

    /// Params of `room.unban`.
    pub struct UnbanParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// The username.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32))]
        pub user: String,
    }

    /// Params of `room.unmute`.
    pub struct UnmuteParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// The username.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32))]
        pub user: String,
    }

    /// Params of `room.set_role`.
    pub struct SetRoleParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// The username.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32))]
        pub user: String,
        /// `moderator` or `member` (owner or admin); `owner` hands the room over (admin only;
        /// the previous owner becomes a member).
        pub role: RoomRole,
    }

    /// Params of `room.configure`: what is absent stays as it is.
    pub struct ConfigureParams {
        /// The room's name.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        pub room: String,
        /// At most one message per this many seconds per member, 0 (off) to 21 600.
        #[cfg_attr(feature = "openapi", schema(maximum = 21_600))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub slow_mode_secs: Option<u32>,
        /// Messages older than this many days are deleted, 1 to 3650; 0 goes back to the
        /// server's default (`CONFAB_RETENTION_DAYS`; kept forever when it is unset).
        #[cfg_attr(feature = "openapi", schema(maximum = 3650))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub retention_days: Option<u32>,
    }

    /// Result of `room.configure`: the room's settings now.
    pub struct RoomSettings {
        /// The room's name.
        pub room: String,
        /// 0: slow mode is off.
        pub slow_mode_secs: u32,
        /// `null`: the server's default (`CONFAB_RETENTION_DAYS`; kept forever when it is unset).
        pub retention_days: Option<u32>,
    }

    /// Result of `room.kick`, `room.ban`, `room.unban`, `room.mute`, `room.unmute`, `room.set_role`.
    pub struct ModerationResult {
        /// What was done.
        pub action: ModerationAction,
        /// The room.
        pub room: String,
        /// The user acted on.
        pub user: String,
        /// When it ends; `null`: until lifted (or nothing to end).
        pub until: Option<Timestamp>,
    }

    /// Params of `message.report`.
    pub struct ReportParams {
        /// The message's id.
        pub id: i64,
        /// What is wrong with it: 1 to 500 characters, not only spaces, no control characters but
        /// line breaks.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000-\\u0009\\u000B-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0009\\u000B-\\u001F\\u007F-\\u009F]*$", min_length = 1, max_length = 500))]
        pub reason: String,
    }

    /// Result of `message.report`.
    pub struct ReportAccepted {
        /// The report's id.
        pub report_id: i64,
    }

    /// `moderation.applied`: a moderation decision about the receiving user.
    pub struct ModerationApplied {
        /// What was done.
        pub action: ModerationAction,
        /// The room, for room actions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub room: Option<String>,
        /// When it ends; absent: until lifted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub until: Option<Timestamp>,
        /// The reason given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub reason: Option<String>,
        /// Who decided it.
        pub by: String,
        /// The role set, for `set_role`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub role: Option<RoomRole>,
    }

    /// The body of `POST /api/rooms/{room}/members/{username}/kick` (`room.kick` over REST).
    #[derive(Default)]
    pub struct KickRequest {
        /// Why, up to 500 characters (no control characters but line breaks); shown to the user.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000-\\u0009\\u000B-\\u001F\\u007F-\\u009F]*$", max_length = 500))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub reason: Option<String>,
    }

    /// The body of `PUT /api/rooms/{room}/roles/{username}` (`room.set_role` over REST).
    pub struct RoleRequest {
        pub role: RoomRole,
    }

    /// The body of `PATCH /api/rooms/{room}/settings` (`room.configure` over REST): what is
    /// absent stays as it is.
    #[derive(Default)]
    pub struct SettingsRequest {
        /// At most one message per this many seconds per member, 0 (off) to 21 600.
        #[cfg_attr(feature = "openapi", schema(maximum = 21_600))]
        #[serde(default, with = "crate::whole", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional, type = "number"))]
        pub slow_mode_secs: Option<u32>,
        /// Messages older than this many days are deleted, 1 to 3650; 0 goes back to the
        /// server's default (`CONFAB_RETENTION_DAYS`; kept forever when it is unset).
        #[cfg_attr(feature = "openapi", schema(maximum = 3650))]
        #[serde(default, with = "crate::whole", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional, type = "number"))]
        pub retention_days: Option<u32>,
    }

    /// The body of `POST /api/users/{username}/suspend`, `PUT /api/rooms/{room}/bans/{username}`
    /// and `PUT /api/rooms/{room}/mutes/{username}` (`room.ban` and `room.mute` over REST).
    #[derive(Default)]
    pub struct SanctionRequest {
        /// Why, up to 500 characters (no control characters but line breaks); shown to the user.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000-\\u0009\\u000B-\\u001F\\u007F-\\u009F]*$", max_length = 500))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub reason: Option<String>,
        /// Seconds until it ends on its own, 1 to 31 622 400; absent: until lifted.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 31_622_400))]
        #[serde(default, with = "crate::whole", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional, type = "number"))]
        pub duration_secs: Option<u64>,
    }

    /// An account's suspension.
    pub struct Suspension {
        /// The account.
        pub username: String,
        /// `true` while suspended.
        pub suspended: bool,
        /// When it ends; `null`: until lifted.
        pub until: Option<Timestamp>,
        /// The reason given.
        pub reason: Option<String>,
    }

    /// An account suspended now, as `GET /api/suspensions` lists it.
    pub struct SuspendedAccount {
        /// The account.
        pub username: String,
        /// The reason given.
        pub reason: Option<String>,
        /// When it ends; `null`: until lifted.
        pub until: Option<Timestamp>,
        /// The admin who suspended it; `null` when that account no longer exists.
        pub by: Option<String>,
        /// When it was suspended (a later suspension of the same account replaces it).
        pub at: Timestamp,
    }

    /// A page of `GET /api/suspensions`, newest first.
    pub struct SuspensionsPage {
        pub suspensions: Vec<SuspendedAccount>,
        /// Pass as `cursor` for the next page; `null` on the last page.
        pub next_cursor: Option<String>,
    }

    /// Query of `GET /api/suspensions`.
    #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
    #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
    pub struct SuspensionsQuery {
        /// `next_cursor` of the previous page (`<milliseconds>-<digits>`; empty: the first page).
        #[cfg_attr(feature = "openapi", param(pattern = "^([0-9]{1,15}-[0-9]{1,18})?$", max_length = 34))]
        pub cursor: Option<String>,
        /// 1 to 200, default 50.
        #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
        pub limit: Option<u32>,
    }

    /// A ban or mute in force in a room, as `GET /api/rooms/{room}/bans` and
    /// `GET /api/rooms/{room}/mutes` list it.
    pub struct RoomSanction {
        /// The user banned or muted.
        pub user: String,
        /// The reason given.
        pub reason: Option<String>,
        /// When it ends; `null`: until lifted.
        pub until: Option<Timestamp>,
        /// Who decided it; `null` when that account no longer exists.
        pub by: Option<String>,
        /// When it was decided (a later ban or mute of the same user replaces it).
        pub at: Timestamp,
    }

    /// A page of `GET /api/rooms/{room}/bans` or `GET /api/rooms/{room}/mutes`, newest first.
    pub struct RoomSanctionsPage {
        pub sanctions: Vec<RoomSanction>,
        /// Pass as `cursor` for the next page; `null` on the last page.
        pub next_cursor: Option<String>,
    }

    /// Query of `GET /api/rooms/{room}/bans` and `GET /api/rooms/{room}/mutes`.
    #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
    #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
    pub struct RoomSanctionsQuery {
        /// `next_cursor` of the previous page (`<milliseconds>-<digits>`; empty: the first page).
        #[cfg_attr(feature = "openapi", param(pattern = "^([0-9]{1,15}-[0-9]{1,18})?$", max_length = 34))]
        pub cursor: Option<String>,
        /// 1 to 200, default 50.
        #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
        pub limit: Option<u32>,
    }

    /// The body of `POST /api/users/{username}/purge`.
    #[derive(Default)]
    pub struct PurgeRequest {
        /// Only this room's messages; absent: every room.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub room: Option<String>,
    }

    /// The state of a report.
    #[derive(Copy, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum ReportState {
        Open,
        Resolved,
    }

    /// A report in the queue, with the message it is about.
    pub struct Report {
        pub id: i64,
        pub state: ReportState,
        /// Who reported it.
        pub reporter: String,
        pub reason: String,
        pub created_at: Timestamp,
        /// The message as it is now (deleted: `text` is empty).
        pub message: crate::Message,
        /// Who resolved it, what was done and their note.
        pub resolved_by: Option<String>,
        pub resolution: Option<String>,
        pub note: Option<String>,
        pub resolved_at: Option<Timestamp>,
    }

    /// A page of `GET /api/reports`, newest first.
    pub struct ReportsPage {
        pub reports: Vec<Report>,
        /// Pass as `cursor` for the next page; `null` on the last page.
        pub next_cursor: Option<String>,
    }

    /// The body of `POST /api/reports/{id}/resolve`.
    pub struct ResolveReport {
        /// What was done about it, 1 to 64 characters, not only spaces, no control characters:
        /// `dismissed`, `deleted`, `banned`, … .
        #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$", min_length = 1, max_length = 64))]
        pub action: String,
        /// A note for the other moderators, up to 500 characters (no control characters but line breaks).
        #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000-\\u0009\\u000B-\\u001F\\u007F-\\u009F]*$", max_length = 500))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub note: Option<String>,
    }

    /// Query of `GET /api/reports`.
    #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
    #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
    pub struct ReportsQuery {
        /// Only this room's reports (a moderator of the room may ask; admins see every room).
        #[cfg_attr(feature = "openapi", param(pattern = "^[A-Za-z0-9_-]{1,64}$", max_length = 64))]
        pub room: Option<String>,
        /// `open` (default) or `resolved`.
        pub state: Option<ReportState>,
        /// `next_cursor` of the previous page (decimal digits; empty: the first page).
        #[cfg_attr(feature = "openapi", param(pattern = "^[0-9]{0,18}$", max_length = 18))]
        pub cursor: Option<String>,
        /// 1 to 200, default 50.
        #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
        pub limit: Option<u32>,
    }

    /// One row of the audit log.
    pub struct AuditEntry {
        pub id: i64,
        pub at: Timestamp,
        /// Who did it (a username; `system` for the server's own sweeps).
        pub actor: String,
        pub action: ModerationAction,
        /// Whom or what it was done to (a username, a webhook or token id).
        pub target: Option<String>,
        pub room: Option<String>,
        pub reason: Option<String>,
        /// More about it, in words (a duration, a role, a job id).
        pub detail: Option<String>,
        /// The instance that recorded it.
        pub instance: String,
    }

    /// A page of `GET /api/audit`, newest first.
    pub struct AuditPage {
        pub entries: Vec<AuditEntry>,
        /// Pass as `cursor` for the next page; `null` on the last page.
        pub next_cursor: Option<String>,
    }

    /// The body of `POST /api/audit/export`: the file's format and the filters of
    /// `GET /api/audit` (every filter optional; none exports the whole log).
    pub struct AuditExportRequest {
        pub format: crate::rest::ExportFormat,
        /// Only this actor's actions (username).
        #[cfg_attr(feature = "openapi", schema(max_length = 32))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub actor: Option<String>,
        /// Only actions on this target.
        #[cfg_attr(feature = "openapi", schema(max_length = 64))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub target: Option<String>,
        /// Only this room.
        #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$", max_length = 64))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub room: Option<String>,
        /// Only this action.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub action: Option<ModerationAction>,
        /// Only entries at or after this time (RFC 3339).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub after: Option<Timestamp>,
        /// Only entries before this time (RFC 3339).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub before: Option<Timestamp>,
    }

    /// Query of `GET /api/audit` (every filter optional).
    #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
    #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
    pub struct AuditQuery {
        /// Only this actor's actions (username).
        #[cfg_attr(feature = "openapi", param(max_length = 32))]
        pub actor: Option<String>,
        /// Only actions on this target.
        #[cfg_attr(feature = "openapi", param(max_length = 64))]
        pub target: Option<String>,
        /// Only this room.
        #[cfg_attr(feature = "openapi", param(pattern = "^[A-Za-z0-9_-]{1,64}$", max_length = 64))]
        pub room: Option<String>,
        /// Only this action.
        pub action: Option<ModerationAction>,
        /// Only entries at or after this time (RFC 3339).
        pub after: Option<Timestamp>,
        /// Only entries before this time (RFC 3339).
        pub before: Option<Timestamp>,
        /// `next_cursor` of the previous page (decimal digits; empty: the first page).
        #[cfg_attr(feature = "openapi", param(pattern = "^[0-9]{0,18}$", max_length = 18))]
        pub cursor: Option<String>,
        /// 1 to 200, default 50.
        #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 200))]
        pub limit: Option<u32>,
    }
}

impl RoomRole {
    /// The role's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Moderator => "moderator",
            Self::Member => "member",
        }
    }
}

impl Sanction {
    /// The reason's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Muted => "muted",
            Self::Banned => "banned",
            Self::Suspended => "suspended",
            Self::SlowMode => "slow_mode",
        }
    }
}

impl ModerationAction {
    /// Every action, in declaration order.
    pub const ALL: [ModerationAction; 17] = [
        Self::Kick,
        Self::Ban,
        Self::Unban,
        Self::Mute,
        Self::Unmute,
        Self::SetRole,
        Self::Configure,
        Self::DeleteMessage,
        Self::Suspend,
        Self::Unsuspend,
        Self::Purge,
        Self::Report,
        Self::ResolveReport,
        Self::Webhook,
        Self::Token,
        Self::Publish,
        Self::Retention,
    ];

    /// The action's name on the wire (and in the audit log's `action` column).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kick => "kick",
            Self::Ban => "ban",
            Self::Unban => "unban",
            Self::Mute => "mute",
            Self::Unmute => "unmute",
            Self::SetRole => "set_role",
            Self::Configure => "configure",
            Self::DeleteMessage => "delete_message",
            Self::Suspend => "suspend",
            Self::Unsuspend => "unsuspend",
            Self::Purge => "purge",
            Self::Report => "report",
            Self::ResolveReport => "resolve_report",
            Self::Webhook => "webhook",
            Self::Token => "token",
            Self::Publish => "publish",
            Self::Retention => "retention",
        }
    }

    /// An action by its wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_what_serde_writes() {
        for action in ModerationAction::ALL {
            assert_eq!(serde_json::to_value(action).unwrap(), serde_json::json!(action.as_str()));
            assert_eq!(ModerationAction::parse(action.as_str()), Some(action));
        }
        for sanction in [Sanction::Muted, Sanction::Banned, Sanction::Suspended, Sanction::SlowMode] {
            assert_eq!(serde_json::to_value(sanction).unwrap(), serde_json::json!(sanction.as_str()));
        }
        for role in [RoomRole::Owner, RoomRole::Moderator, RoomRole::Member] {
            assert_eq!(serde_json::to_value(role).unwrap(), serde_json::json!(role.as_str()));
        }
    }
}
