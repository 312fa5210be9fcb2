//! Moderation's tables: room roles, bans and mutes, account suspensions, room settings,
//! reports and the audit log.
//!
//! Every decision is written with its audit row in one transaction ([`Audit`]): a crash
//! between them loses both or neither.

use std::collections::{HashMap, HashSet};

use confab_shared::Timestamp;
use confab_shared::moderation::{AuditEntry, ModerationAction, ReportState};
use sea_orm::{ConnectionTrait, DatabaseTransaction, FromQueryResult, TransactionTrait};

use super::{Db, StorageError, StorageResult, now_ms, statement, statement_on};

/// The kind of a room sanction, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Ban,
    Mute,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ban => "ban",
            Self::Mute => "mute",
        }
    }
}

/// One audit log row, written in the transaction of the action it records.
#[derive(Clone, Debug)]
pub struct Audit {
    pub actor_id: Option<i64>,
    /// The actor's username (`system` for the server's own work).
    pub actor: String,
    pub action: ModerationAction,
    pub target: Option<String>,
    pub room: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// The instance that recorded it.
    pub instance: String,
}

/// Writes `audit` on `conn` (a transaction, usually).
pub async fn record_on(conn: &impl ConnectionTrait, audit: &Audit) -> StorageResult<()> {
    let sql = "INSERT INTO audit_log (created_at, actor_id, actor, action, target, room, reason, detail, instance) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let values = vec![
        now_ms().into(),
        audit.actor_id.into(),
        audit.actor.clone().into(),
        audit.action.as_str().into(),
        audit.target.clone().into(),
        audit.room.clone().into(),
        audit.reason.clone().into(),
        audit.detail.clone().into(),
        audit.instance.clone().into(),
    ];
    conn.execute(statement_on(conn.get_database_backend(), sql, values)).await?;
    Ok(())
}

/// Writes an audit row alone (an action that changes nothing stored: a kick, a publish).
pub async fn record(db: &Db, audit: &Audit) -> StorageResult<()> {
    record_on(&db.conn, audit).await
}

/// Commits `txn` with `audit` written in it.
async fn commit_with(txn: DatabaseTransaction, audit: &Audit) -> StorageResult<()> {
    record_on(&txn, audit).await?;
    txn.commit().await?;
    Ok(())
}

async fn exec(conn: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> StorageResult<u64> {
    Ok(conn.execute(statement_on(conn.get_database_backend(), sql, values)).await?.rows_affected())
}

// ---- Roles ----------------------------------------------------------------------------

/// Whether `user_id` moderates `room_id`.
pub async fn is_moderator(db: &Db, room_id: i64, user_id: i64) -> StorageResult<bool> {
    #[derive(FromQueryResult)]
    struct Row {
        n: i64,
    }
    let sql = "SELECT COUNT(*) AS n FROM room_moderators WHERE room_id = ? AND user_id = ?";
    let row = Row::find_by_statement(statement(db, sql, vec![room_id.into(), user_id.into()])).one(&db.conn).await?;
    Ok(row.is_some_and(|r| r.n > 0))
}

/// Each room's owner name and moderator names, for the rooms asked about.
pub async fn roles_of(db: &Db, room_ids: &[i64]) -> StorageResult<HashMap<i64, (Option<String>, Vec<String>)>> {
    #[derive(FromQueryResult)]
    struct Row {
        room_id: i64,
        username: String,
        owner: bool,
    }
    let mut out: HashMap<i64, (Option<String>, Vec<String>)> = HashMap::new();
    if room_ids.is_empty() {
        return Ok(out);
    }
    let marks = vec!["?"; room_ids.len()].join(", ");
    let sql = format!(
        "SELECT r.id AS room_id, u.username AS username, ? AS owner FROM rooms r JOIN users u ON u.id = r.owner_id WHERE r.id IN ({marks}) \
         UNION ALL SELECT m.room_id AS room_id, u.username AS username, ? AS owner FROM room_moderators m JOIN users u ON u.id = m.user_id \
         WHERE m.room_id IN ({marks})"
    );
    let mut values: Vec<sea_orm::Value> = vec![true.into()];
    values.extend(room_ids.iter().map(|id| (*id).into()));
    values.push(false.into());
    values.extend(room_ids.iter().map(|id| (*id).into()));
    for row in Row::find_by_statement(statement(db, &sql, values)).all(&db.conn).await? {
        let entry = out.entry(row.room_id).or_default();
        if row.owner {
            entry.0 = Some(row.username);
        } else {
            entry.1.push(row.username);
        }
    }
    for (_, moderators) in out.values_mut() {
        moderators.sort_by_cached_key(|n| n.to_ascii_lowercase());
    }
    Ok(out)
}

/// Each room's owner and moderators, by user id (who slow mode does not hold back).
pub async fn exempt_of(db: &Db, room_ids: &[i64]) -> StorageResult<HashMap<i64, HashSet<i64>>> {
    #[derive(FromQueryResult)]
    struct Row {
        room_id: i64,
        user_id: i64,
    }
    let mut out: HashMap<i64, HashSet<i64>> = HashMap::new();
    if room_ids.is_empty() {
        return Ok(out);
    }
    let marks = vec!["?"; room_ids.len()].join(", ");
    let sql = format!(
        "SELECT id AS room_id, owner_id AS user_id FROM rooms WHERE owner_id IS NOT NULL AND id IN ({marks}) \
         UNION ALL SELECT room_id, user_id FROM room_moderators WHERE room_id IN ({marks})"
    );
    let values: Vec<sea_orm::Value> = room_ids.iter().chain(room_ids).map(|id| (*id).into()).collect();
    for row in Row::find_by_statement(statement(db, &sql, values)).all(&db.conn).await? {
        out.entry(row.room_id).or_default().insert(row.user_id);
    }
    Ok(out)
}

/// How many moderators a room has.
pub async fn moderator_count(db: &Db, room_id: i64) -> StorageResult<u64> {
    #[derive(FromQueryResult)]
    struct Row {
        n: i64,
    }
    let row = Row::find_by_statement(statement(db, "SELECT COUNT(*) AS n FROM room_moderators WHERE room_id = ?", vec![room_id.into()]))
        .one(&db.conn)
        .await?;
    Ok(row.map_or(0, |r| r.n.max(0) as u64))
}

/// Makes `user_id` a moderator of `room_id` (`on`) or a member again.
pub async fn set_moderator(db: &Db, room_id: i64, user_id: i64, on: bool, by: i64, audit: &Audit) -> StorageResult<()> {
    let txn = db.conn.begin().await?;
    if on {
        let sql = "INSERT INTO room_moderators (room_id, user_id, appointed_by, created_at) VALUES (?, ?, ?, ?) \
                   ON CONFLICT (room_id, user_id) DO NOTHING";
        exec(&txn, sql, vec![room_id.into(), user_id.into(), by.into(), now_ms().into()]).await?;
    } else {
        exec(&txn, "DELETE FROM room_moderators WHERE room_id = ? AND user_id = ?", vec![room_id.into(), user_id.into()]).await?;
    }
    commit_with(txn, audit).await
}

/// Hands `room_id` to `user_id`: the previous owner becomes a member, and the new owner is no
/// longer listed among the moderators.
pub async fn set_owner(db: &Db, room_id: i64, user_id: i64, audit: &Audit) -> StorageResult<()> {
    let txn = db.conn.begin().await?;
    exec(&txn, "UPDATE rooms SET owner_id = ? WHERE id = ?", vec![user_id.into(), room_id.into()]).await?;
    exec(&txn, "DELETE FROM room_moderators WHERE room_id = ? AND user_id = ?", vec![room_id.into(), user_id.into()]).await?;
    commit_with(txn, audit).await
}

/// Sets a room's slow mode and retention (`None`: unchanged; retention `Some(None)`: the
/// server's default).
pub async fn configure(db: &Db, room_id: i64, slow_mode_secs: Option<u32>, retention_days: Option<Option<u32>>, audit: &Audit) -> StorageResult<()> {
    let txn = db.conn.begin().await?;
    if let Some(secs) = slow_mode_secs {
        exec(&txn, "UPDATE rooms SET slow_mode_secs = ? WHERE id = ?", vec![i64::from(secs).into(), room_id.into()]).await?;
    }
    if let Some(days) = retention_days {
        exec(&txn, "UPDATE rooms SET retention_days = ? WHERE id = ?", vec![days.map(i64::from).into(), room_id.into()]).await?;
    }
    commit_with(txn, audit).await
}

// ---- Bans and mutes -------------------------------------------------------------------

/// Bans or mutes `user_id` in `room_id` until `ends_at` (`None`: until lifted), replacing
/// any earlier one of the same kind.
pub async fn sanction(db: &Db, room_id: i64, user_id: i64, kind: Kind, reason: Option<&str>, ends_at: Option<i64>, by: i64, audit: &Audit) -> StorageResult<()> {
    let txn = db.conn.begin().await?;
    let sql = "INSERT INTO room_sanctions (room_id, user_id, kind, reason, ends_at, by_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
               ON CONFLICT (room_id, user_id, kind) DO UPDATE SET reason = excluded.reason, ends_at = excluded.ends_at, \
               by_id = excluded.by_id, created_at = excluded.created_at";
    let values = vec![room_id.into(), user_id.into(), kind.as_str().into(), reason.map(str::to_owned).into(), ends_at.into(), by.into(), now_ms().into()];
    exec(&txn, sql, values).await?;
    commit_with(txn, audit).await
}

/// Lifts a ban or mute; `true` when there was one (still in force or not).
pub async fn lift(db: &Db, room_id: i64, user_id: i64, kind: Kind, audit: &Audit) -> StorageResult<bool> {
    let txn = db.conn.begin().await?;
    let sql = "DELETE FROM room_sanctions WHERE room_id = ? AND user_id = ? AND kind = ?";
    let lifted = exec(&txn, sql, vec![room_id.into(), user_id.into(), kind.as_str().into()]).await? > 0;
    commit_with(txn, audit).await?;
    Ok(lifted)
}

/// A ban or mute in force.
#[derive(Clone, Debug, FromQueryResult)]
pub struct SanctionRow {
    pub room_id: i64,
    pub room: String,
    pub user_id: i64,
    pub kind: String,
    pub reason: Option<String>,
    pub ends_at: Option<i64>,
}

impl SanctionRow {
    pub fn kind(&self) -> Kind {
        if self.kind == "ban" { Kind::Ban } else { Kind::Mute }
    }
}

/// Every ban and mute in force at `now`.
pub async fn sanctions_in_force(db: &Db, now: i64) -> StorageResult<Vec<SanctionRow>> {
    let sql = "SELECT s.room_id AS room_id, r.name AS room, s.user_id AS user_id, s.kind AS kind, s.reason AS reason, s.ends_at AS ends_at \
               FROM room_sanctions s JOIN rooms r ON r.id = s.room_id WHERE s.ends_at IS NULL OR s.ends_at > ?";
    Ok(SanctionRow::find_by_statement(statement(db, sql, vec![now.into()])).all(&db.conn).await?)
}

/// A sanction in force as a list shows it: a room's ban or mute to its moderators, an
/// account's suspension to the admins. `user_id` and `created_at` are the list's keyset.
#[derive(Clone, Debug, FromQueryResult)]
pub struct ListedSanction {
    pub user_id: i64,
    pub username: String,
    pub reason: Option<String>,
    pub ends_at: Option<i64>,
    pub by_name: Option<String>,
    pub created_at: i64,
}

/// The columns of a [`ListedSanction`] read from `table` (aliased `s`: `user_id`, `reason`,
/// `ends_at`, `by_id`, `created_at`), with the names of the user and of who imposed it.
fn listed_from(table: &str) -> String {
    format!(
        "SELECT s.user_id AS user_id, u.username AS username, s.reason AS reason, s.ends_at AS ends_at, \
         b.username AS by_name, s.created_at AS created_at FROM {table} s JOIN users u ON u.id = s.user_id \
         LEFT JOIN users b ON b.id = s.by_id"
    )
}

/// One page of `sql` (a [`listed_from`] query with its `WHERE`): newest first (by
/// `created_at`, then user id), starting below `before` (`(created_at, user_id)` of the
/// previous page's last row).
async fn newest_first(db: &Db, mut sql: String, mut values: Vec<sea_orm::Value>, before: Option<(i64, i64)>, limit: u64) -> StorageResult<Vec<ListedSanction>> {
    if let Some((at, user_id)) = before {
        sql.push_str(" AND (s.created_at < ? OR (s.created_at = ? AND s.user_id < ?))");
        values.extend([at.into(), at.into(), user_id.into()]);
    }
    sql.push_str(" ORDER BY s.created_at DESC, s.user_id DESC LIMIT ?");
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    Ok(ListedSanction::find_by_statement(statement(db, &sql, values)).all(&db.conn).await?)
}

/// The bans or mutes of `room_id` in force at `now`, newest first, below `before`.
pub async fn room_sanctions_page(db: &Db, room_id: i64, kind: Kind, now: i64, before: Option<(i64, i64)>, limit: u64) -> StorageResult<Vec<ListedSanction>> {
    let sql = format!("{} WHERE s.room_id = ? AND s.kind = ? AND (s.ends_at IS NULL OR s.ends_at > ?)", listed_from("room_sanctions"));
    newest_first(db, sql, vec![room_id.into(), kind.as_str().into(), now.into()], before, limit).await
}

/// The ban or mute of `user_id` in `room_id`, if one is in force at `now`.
pub async fn room_sanction(db: &Db, room_id: i64, user_id: i64, kind: Kind, now: i64) -> StorageResult<Option<ListedSanction>> {
    let sql = format!("{} WHERE s.room_id = ? AND s.user_id = ? AND s.kind = ? AND (s.ends_at IS NULL OR s.ends_at > ?)", listed_from("room_sanctions"));
    let values = vec![room_id.into(), user_id.into(), kind.as_str().into(), now.into()];
    Ok(ListedSanction::find_by_statement(statement(db, &sql, values)).one(&db.conn).await?)
}

// ---- Suspensions ----------------------------------------------------------------------

/// An account suspension in force.
#[derive(Clone, Debug, FromQueryResult)]
pub struct SuspensionRow {
    pub user_id: i64,
    pub reason: Option<String>,
    pub ends_at: Option<i64>,
}

/// Suspends `user_id` until `ends_at` (`None`: until lifted), replacing an earlier suspension.
pub async fn suspend(db: &Db, user_id: i64, reason: Option<&str>, ends_at: Option<i64>, by: i64, audit: &Audit) -> StorageResult<()> {
    let txn = db.conn.begin().await?;
    let sql = "INSERT INTO suspensions (user_id, reason, ends_at, by_id, created_at) VALUES (?, ?, ?, ?, ?) \
               ON CONFLICT (user_id) DO UPDATE SET reason = excluded.reason, ends_at = excluded.ends_at, by_id = excluded.by_id, \
               created_at = excluded.created_at";
    exec(&txn, sql, vec![user_id.into(), reason.map(str::to_owned).into(), ends_at.into(), by.into(), now_ms().into()]).await?;
    commit_with(txn, audit).await
}

/// Lifts a suspension; `true` when there was one.
pub async fn unsuspend(db: &Db, user_id: i64, audit: &Audit) -> StorageResult<bool> {
    let txn = db.conn.begin().await?;
    let lifted = exec(&txn, "DELETE FROM suspensions WHERE user_id = ?", vec![user_id.into()]).await? > 0;
    commit_with(txn, audit).await?;
    Ok(lifted)
}

/// Every suspension in force at `now`.
pub async fn suspensions_in_force(db: &Db, now: i64) -> StorageResult<Vec<SuspensionRow>> {
    let sql = "SELECT user_id, reason, ends_at FROM suspensions WHERE ends_at IS NULL OR ends_at > ?";
    Ok(SuspensionRow::find_by_statement(statement(db, sql, vec![now.into()])).all(&db.conn).await?)
}

/// Suspensions in force at `now`, newest first, below `before`.
pub async fn suspensions_page(db: &Db, now: i64, before: Option<(i64, i64)>, limit: u64) -> StorageResult<Vec<ListedSanction>> {
    let sql = format!("{} WHERE (s.ends_at IS NULL OR s.ends_at > ?)", listed_from("suspensions"));
    newest_first(db, sql, vec![now.into()], before, limit).await
}

/// The rooms in slow mode: id → seconds.
pub async fn slow_rooms(db: &Db) -> StorageResult<HashMap<i64, u32>> {
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        slow_mode_secs: i32,
    }
    let rows = Row::find_by_statement(statement(db, "SELECT id, slow_mode_secs FROM rooms WHERE slow_mode_secs > ?", vec![0i32.into()])).all(&db.conn).await?;
    Ok(rows.into_iter().map(|r| (r.id, r.slow_mode_secs.max(0) as u32)).collect())
}

// ---- Reports --------------------------------------------------------------------------

/// Files a report; [`StorageError::Duplicate`] when this user reported this message already.
pub async fn report(db: &Db, message_id: i64, room_id: i64, reporter_id: i64, reason: &str, audit: &Audit) -> StorageResult<i64> {
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
    }
    let txn = db.conn.begin().await?;
    let sql = "INSERT INTO reports (message_id, room_id, reporter_id, reason, state, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id";
    let values = vec![message_id.into(), room_id.into(), reporter_id.into(), reason.into(), "open".into(), now_ms().into()];
    let id = Row::find_by_statement(statement_on(txn.get_database_backend(), sql, values)).one(&txn).await?.map(|r| r.id);
    let id = id.ok_or(StorageError::Db("the report's id was not returned".into()))?;
    commit_with(txn, audit).await?;
    Ok(id)
}

/// A report as stored, with the names the queue shows.
#[derive(Clone, Debug, FromQueryResult)]
pub struct ReportRow {
    pub id: i64,
    pub message_id: i64,
    pub room_id: i64,
    pub reporter: String,
    pub reason: String,
    pub state: String,
    pub created_at: i64,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<i64>,
    pub resolution: Option<String>,
    pub note: Option<String>,
}

const REPORT_COLUMNS: &str = "SELECT rp.id AS id, rp.message_id AS message_id, rp.room_id AS room_id, u.username AS reporter, \
    rp.reason AS reason, rp.state AS state, rp.created_at AS created_at, rb.username AS resolved_by, rp.resolved_at AS resolved_at, \
    rp.resolution AS resolution, rp.note AS note FROM reports rp JOIN users u ON u.id = rp.reporter_id LEFT JOIN users rb ON rb.id = rp.resolved_by";

/// How many of `reporter_id`'s reports are open.
pub async fn open_reports_by(db: &Db, reporter_id: i64) -> StorageResult<u64> {
    #[derive(FromQueryResult)]
    struct Row {
        n: i64,
    }
    let sql = "SELECT COUNT(*) AS n FROM reports WHERE reporter_id = ? AND state = ?";
    let row = Row::find_by_statement(statement(db, sql, vec![reporter_id.into(), "open".into()])).one(&db.conn).await?;
    Ok(row.map_or(0, |r| r.n.max(0) as u64))
}

/// A report by id.
pub async fn report_by_id(db: &Db, id: i64) -> StorageResult<Option<ReportRow>> {
    let sql = format!("{REPORT_COLUMNS} WHERE rp.id = ?");
    Ok(ReportRow::find_by_statement(statement(db, &sql, vec![id.into()])).one(&db.conn).await?)
}

/// Reports in `state`, in `rooms` (`None`: every room), with ids below `before`, newest first.
pub async fn reports_page(db: &Db, state: ReportState, rooms: Option<&[i64]>, before: Option<i64>, limit: u64) -> StorageResult<Vec<ReportRow>> {
    let state = match state {
        ReportState::Open => "open",
        ReportState::Resolved => "resolved",
    };
    let mut sql = format!("{REPORT_COLUMNS} WHERE rp.state = ?");
    let mut values: Vec<sea_orm::Value> = vec![state.into()];
    if let Some(rooms) = rooms {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        sql.push_str(&format!(" AND rp.room_id IN ({})", vec!["?"; rooms.len()].join(", ")));
        values.extend(rooms.iter().map(|id| (*id).into()));
    }
    if let Some(before) = before {
        sql.push_str(" AND rp.id < ?");
        values.push(before.into());
    }
    sql.push_str(" ORDER BY rp.id DESC LIMIT ?");
    values.push((limit as i64).into());
    Ok(ReportRow::find_by_statement(statement(db, &sql, values)).all(&db.conn).await?)
}

/// Resolves an open report; `false` when it was resolved already.
pub async fn resolve(db: &Db, id: i64, by: i64, resolution: &str, note: Option<&str>, audit: &Audit) -> StorageResult<bool> {
    let txn = db.conn.begin().await?;
    let sql = "UPDATE reports SET state = ?, resolved_by = ?, resolved_at = ?, resolution = ?, note = ? WHERE id = ? AND state = ?";
    let values = vec!["resolved".into(), by.into(), now_ms().into(), resolution.into(), note.map(str::to_owned).into(), id.into(), "open".into()];
    let resolved = exec(&txn, sql, values).await? > 0;
    if resolved {
        commit_with(txn, audit).await?;
    }
    Ok(resolved)
}

/// Rooms `user_id` owns or moderates.
pub async fn rooms_moderated_by(db: &Db, user_id: i64) -> StorageResult<Vec<i64>> {
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
    }
    let sql = "SELECT id FROM rooms WHERE owner_id = ? UNION SELECT room_id AS id FROM room_moderators WHERE user_id = ?";
    Ok(Row::find_by_statement(statement(db, sql, vec![user_id.into(), user_id.into()])).all(&db.conn).await?.into_iter().map(|r| r.id).collect())
}

// ---- Audit log ------------------------------------------------------------------------

/// An audit log row as stored.
#[derive(Clone, Debug, FromQueryResult)]
pub struct AuditRow {
    pub id: i64,
    pub created_at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub room: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub instance: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            id: r.id,
            at: Timestamp::from_millis(r.created_at),
            actor: r.actor,
            // Rows are written by this code from the same enum; an unknown name would be a newer version's.
            action: ModerationAction::parse(&r.action).unwrap_or(ModerationAction::Configure),
            target: r.target,
            room: r.room,
            reason: r.reason,
            detail: r.detail,
            instance: r.instance,
        }
    }
}

/// What `GET /api/audit` and an audit export filter on (kept as JSON with an export's job).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub target: Option<String>,
    pub room: Option<String>,
    pub action: Option<ModerationAction>,
    /// Milliseconds, inclusive.
    pub after: Option<i64>,
    /// Milliseconds, exclusive.
    pub before: Option<i64>,
}

/// The `WHERE` clause of `filter` (starting ` WHERE 1 = 1`) and its values.
fn audit_where(filter: &AuditFilter) -> (String, Vec<sea_orm::Value>) {
    let mut sql = String::from(" WHERE 1 = 1");
    let mut values: Vec<sea_orm::Value> = Vec::new();
    let mut add = |clause: &str, value: sea_orm::Value| {
        sql.push_str(clause);
        values.push(value);
    };
    if let Some(actor) = &filter.actor {
        add(" AND actor = ?", actor.clone().into());
    }
    if let Some(target) = &filter.target {
        add(" AND target = ?", target.clone().into());
    }
    if let Some(room) = &filter.room {
        add(" AND room = ?", room.clone().into());
    }
    if let Some(action) = filter.action {
        add(" AND action = ?", action.as_str().into());
    }
    if let Some(after) = filter.after {
        add(" AND created_at >= ?", after.into());
    }
    if let Some(before) = filter.before {
        add(" AND created_at < ?", before.into());
    }
    (sql, values)
}

const AUDIT_COLUMNS: &str = "SELECT id, created_at, actor, action, target, room, reason, detail, instance FROM audit_log";

/// Audit rows matching `filter` with ids below `before_id`, newest first.
pub async fn audit_page(db: &Db, filter: &AuditFilter, before_id: Option<i64>, limit: u64) -> StorageResult<Vec<AuditRow>> {
    let (mut sql, mut values) = audit_where(filter);
    if let Some(id) = before_id {
        sql.push_str(" AND id < ?");
        values.push(id.into());
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    values.push((limit as i64).into());
    Ok(AuditRow::find_by_statement(statement(db, &format!("{AUDIT_COLUMNS}{sql}"), values)).all(&db.conn).await?)
}

/// How many audit rows match `filter`, and the newest one's id (0 when none): an export's
/// extent, fixed when it starts.
pub async fn audit_extent(db: &Db, filter: &AuditFilter) -> StorageResult<(u64, i64)> {
    #[derive(FromQueryResult)]
    struct Row {
        n: i64,
        newest: Option<i64>,
    }
    let (sql, values) = audit_where(filter);
    let row = Row::find_by_statement(statement(db, &format!("SELECT COUNT(*) AS n, MAX(id) AS newest FROM audit_log{sql}"), values)).one(&db.conn).await?;
    Ok(row.map_or((0, 0), |r| (r.n.max(0) as u64, r.newest.unwrap_or(0))))
}

/// Up to `limit` audit rows matching `filter` with ids in `(after, newest]`, oldest first:
/// one page of an export.
pub async fn audit_through(db: &Db, filter: &AuditFilter, after: i64, newest: i64, limit: u64) -> StorageResult<Vec<AuditRow>> {
    let (mut sql, mut values) = audit_where(filter);
    sql.push_str(" AND id > ? AND id <= ? ORDER BY id LIMIT ?");
    values.extend([after.into(), newest.into(), (limit as i64).into()]);
    Ok(AuditRow::find_by_statement(statement(db, &format!("{AUDIT_COLUMNS}{sql}"), values)).all(&db.conn).await?)
}

// ---- Purge ----------------------------------------------------------------------------

/// The ids of up to `limit` of `author_id`'s messages not yet deleted (in `room_id`, or
/// everywhere) above `after`, oldest first: one batch of a purge.
pub async fn purge_batch(db: &Db, author_id: i64, room_id: Option<i64>, after: i64, limit: u64) -> StorageResult<Vec<(i64, i64)>> {
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        room_id: i64,
    }
    let mut sql = String::from("SELECT id, room_id FROM messages WHERE author_id = ? AND deleted = ? AND id > ?");
    let mut values: Vec<sea_orm::Value> = vec![author_id.into(), false.into(), after.into()];
    if let Some(room) = room_id {
        sql.push_str(" AND room_id = ?");
        values.push(room.into());
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    values.push((limit as i64).into());
    Ok(Row::find_by_statement(statement(db, &sql, values)).all(&db.conn).await?.into_iter().map(|r| (r.id, r.room_id)).collect())
}

/// How many of `author_id`'s messages a purge has to delete.
pub async fn purge_total(db: &Db, author_id: i64, room_id: Option<i64>) -> StorageResult<u64> {
    #[derive(FromQueryResult)]
    struct Row {
        n: i64,
    }
    let mut sql = String::from("SELECT COUNT(*) AS n FROM messages WHERE author_id = ? AND deleted = ?");
    let mut values: Vec<sea_orm::Value> = vec![author_id.into(), false.into()];
    if let Some(room) = room_id {
        sql.push_str(" AND room_id = ?");
        values.push(room.into());
    }
    let row = Row::find_by_statement(statement(db, &sql, values)).one(&db.conn).await?;
    Ok(row.map_or(0, |r| r.n.max(0) as u64))
}

/// Soft-deletes those of `ids` not deleted yet (text and reactions go, the ids stay) in one
/// transaction and returns how many. When there were any and `audit(how many)` is a row, it is
/// written in the same transaction. The condition on `deleted` makes a batch safe to repeat:
/// two instances sweeping, or a purge meeting a moderator's delete, never count a message twice.
pub async fn delete_messages(db: &Db, ids: &[i64], audit: impl FnOnce(u64) -> Option<Audit>) -> StorageResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let marks = vec!["?"; ids.len()].join(", ");
    let txn = db.conn.begin().await?;
    let mut values: Vec<sea_orm::Value> = vec!["".into(), true.into(), false.into()];
    values.extend(ids.iter().map(|id| (*id).into()));
    let n = exec(&txn, &format!("UPDATE messages SET text = ?, deleted = ? WHERE deleted = ? AND id IN ({marks})"), values).await?;
    if n == 0 {
        txn.rollback().await?;
        return Ok(0);
    }
    exec(&txn, &format!("DELETE FROM reactions WHERE message_id IN ({marks})"), ids.iter().map(|id| (*id).into()).collect()).await?;
    super::mentions::forget(&txn, ids).await?;
    if let Some(audit) = audit(n) {
        record_on(&txn, &audit).await?;
    }
    txn.commit().await?;
    Ok(n)
}

// ---- Retention -------------------------------------------------------------------------

/// A room whose messages expire, with its retention in days.
#[derive(Debug, FromQueryResult)]
pub struct RetentionRoom {
    pub id: i64,
    pub name: String,
    pub retention_days: Option<i32>,
}

/// The rooms whose messages expire: those with a retention of their own and, when there is a
/// default (`default_days` > 0), those without one (their `retention_days` is `None`).
pub async fn rooms_with_retention(db: &Db, default_days: u32) -> StorageResult<Vec<RetentionRoom>> {
    let sql = if default_days > 0 {
        "SELECT id, name, retention_days FROM rooms WHERE retention_days > 0 OR retention_days IS NULL ORDER BY id"
    } else {
        "SELECT id, name, retention_days FROM rooms WHERE retention_days > 0 ORDER BY id"
    };
    Ok(RetentionRoom::find_by_statement(statement(db, sql, vec![])).all(&db.conn).await?)
}

/// A message as the retention sweep reads it.
#[derive(Debug, FromQueryResult)]
pub struct Aged {
    pub id: i64,
    pub sent_at: i64,
    pub deleted: bool,
}

/// Up to `limit` of `room_id`'s messages above id `after`, oldest first, deleted ones included.
pub async fn messages_after(db: &Db, room_id: i64, after: i64, limit: u64) -> StorageResult<Vec<Aged>> {
    let sql = "SELECT id, sent_at, deleted FROM messages WHERE room_id = ? AND id > ? ORDER BY id LIMIT ?";
    Ok(Aged::find_by_statement(statement(db, sql, vec![room_id.into(), after.into(), (limit as i64).into()])).all(&db.conn).await?)
}
