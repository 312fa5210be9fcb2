//! A moderation decision and its audit row are written in one transaction: killed with
//! SIGKILL while reports pour in, the server leaves every acknowledged report stored, every
//! stored report with exactly one audit row, and no audit row without its report.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::server::{Database, Server, Socket};
use super::{IN_FLIGHT, KILL_AFTER, flat_out_then_kill};

#[tokio::test]
async fn on_sqlite_a_kill_9_mid_reports_leaves_each_report_with_its_audit_row() {
    let db = Database::sqlite();
    kill_mid_reports(&db).await;
}

#[tokio::test]
async fn on_postgres_a_kill_9_mid_reports_leaves_each_report_with_its_audit_row() {
    let db = Database::postgres().await;
    kill_mid_reports(&db).await;
    db.drop_if_postgres().await;
}

/// The ids of the messages of `room` that have a report, and how many reports each has.
async fn reported(db: &Database, room: &str) -> HashMap<i64, usize> {
    let sql = format!("SELECT rp.message_id FROM reports rp JOIN rooms r ON r.id = rp.room_id WHERE r.name = '{room}'");
    let mut out = HashMap::new();
    for row in db.rows(&sql).await {
        *out.entry(row[0].as_i64().expect("a message id")).or_insert(0) += 1;
    }
    out
}

/// The message ids the `report` audit rows of `room` name (their detail is `message {id}`),
/// and how many rows name each.
async fn audited(db: &Database, room: &str) -> HashMap<i64, usize> {
    let sql = format!("SELECT detail FROM audit_log WHERE action = 'report' AND room = '{room}'");
    let mut out = HashMap::new();
    for row in db.rows(&sql).await {
        let detail = row[0].as_str().expect("a report's audit row has a detail");
        let id = detail.strip_prefix("message ").and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("detail {detail:?}"));
        *out.entry(id).or_insert(0) += 1;
    }
    out
}

async fn kill_mid_reports(db: &Database) {
    let room = "civil";
    // One reporter files hundreds of reports here: no cap on open ones.
    let no_cap = [("CONFAB_OPEN_REPORTS_PER_USER", "0")];
    let mut server = Server::start_with(db, &no_cap).await;
    let author = server.login("civil_ann").await;
    let mut socket = Socket::connect(server.port, &author).await;
    let joined = socket.call("room.join", json!({"room": room, "history": 0})).await;
    assert!(joined.get("result").is_some(), "join failed: {joined}");
    // Something to report: more messages than reports will be acknowledged before the kill.
    let total = KILL_AFTER + 4 * IN_FLIGHT;
    let mut messages = Vec::with_capacity(total);
    for i in 0..total {
        let sent = socket.call("room.send", json!({"room": room, "text": format!("report me {i}")})).await;
        messages.push(sent["result"]["id"].as_i64().unwrap_or_else(|| panic!("send failed: {sent}")));
    }

    let reporter = server.login("civil_bob").await;
    let mut socket = Socket::connect(server.port, &reporter).await;
    socket.call("room.join", json!({"room": room, "history": 0})).await;
    let calls = messages.iter().map(|&message| (message, json!({"id": message, "reason": "spam"})));
    let (acked, _) = flat_out_then_kill(&mut server, &mut socket, "message.report", calls, |result| result["report_id"].is_i64()).await;

    let _server = Server::start_with(db, &no_cap).await;
    let reports = reported(db, room).await;
    let audit = audited(db, room).await;
    for (message, _) in &acked {
        assert_eq!(reports.get(message), Some(&1), "acknowledged report of message {message} lost or doubled");
    }
    assert!(reports.values().all(|&n| n == 1), "a message reported twice by one reporter");
    assert_eq!(audit, reports, "every stored report has exactly one audit row, and every audit row its report");
    let known: HashSet<i64> = messages.into_iter().collect();
    assert!(reports.keys().all(|id| known.contains(id)));
}
