//! The write path's scenarios and targets: what a persisted message costs at
//! the steady rates chats run at, flat out with many calls in flight, and (c) on PostgreSQL.
//!
//! - (e16-sqlite), (e16-postgres): (e) with 16 sends in flight per sender.
//! - (s-sqlite), (s-postgres): 50 senders × 20 msg/s, a steady 1 000 persisted messages/s;
//!   the acknowledgement latency is the number a chat user feels.
//! - (c-pg): (c) on PostgreSQL with one instance, the profile's other half.

use crate::bench::{Database, Profile, Run, Scenario, Status, TargetCheck};
use crate::dialect::Dialect;
use crate::load::{LoadResult, SendMode};

/// The scenarios, given (e) on a database and (c).
pub fn catalog(profile: Profile, e: &dyn Fn(Database) -> Scenario, c: &Scenario) -> Vec<Scenario> {
    let name = |db: Database| if db == Database::Sqlite { "sqlite" } else { "postgres" };
    let title = |db: Database| if db == Database::Sqlite { "SQLite" } else { "PostgreSQL" };
    let databases: &[Database] = if profile == Profile::Quick { &[Database::Sqlite] } else { &[Database::Sqlite, Database::Postgres] };
    let mut out = Vec::new();
    for &db in databases {
        out.push(Scenario {
            id: format!("e16-{}", name(db)),
            title: format!("persisted sends, 50 senders with 16 in flight each, {}", title(db)),
            // Socket.IO persists nothing: its figure is acknowledged sends, the ceiling a
            // persisting server is measured against.
            servers: if db == Database::Sqlite { vec![Dialect::Confab, Dialect::Socketio] } else { vec![Dialect::Confab] },
            window: 16,
            ..e(db)
        });
    }
    for &db in databases {
        out.push(Scenario {
            id: format!("s-{}", name(db)),
            title: format!("persisted sends at a steady 1 000 msg/s (50 senders × 20/s), {}", title(db)),
            mode: SendMode::Rate(20.0),
            window: 16,
            ..e(db)
        });
    }
    if profile == Profile::Full {
        out.push(Scenario {
            id: "c-pg".into(),
            title: "(c) on PostgreSQL, one instance".into(),
            servers: vec![Dialect::Confab],
            database: Database::Postgres,
            ..c.clone()
        });
    }
    out
}

fn ok<'a>(runs: &'a [Run], scenario: &str, server: Dialect) -> Option<&'a LoadResult> {
    runs.iter().find(|r| r.scenario == scenario && r.server == server && r.status == Status::Ok).and_then(|r| r.result.as_ref())
}

/// The write path's targets that the older checks do not cover.
pub fn check_targets(runs: &[Run], out: &mut Vec<TargetCheck>) {
    let mut check = |scenario: &str, target: String, measured: Option<(String, bool)>| {
        if !runs.iter().any(|r| r.scenario == scenario && r.server == Dialect::Confab) {
            return;
        }
        let (measured, met) = match measured {
            Some((m, ok)) => (m, Some(ok)),
            None => ("no result".into(), None),
        };
        out.push(TargetCheck { scenario: scenario.to_owned(), target, measured, met });
    };
    let ack_p99 = |r: &LoadResult| r.ack_latency_us.as_ref().map_or(u64::MAX, |l| l.p99);
    let ms = |us: u64| if us == u64::MAX { "-".to_owned() } else { format!("{:.1} ms", us as f64 / 1e3) };
    // (c): a third of Socket.IO's CPU per delivery, in the same run.
    let sio = ok(runs, "c", Dialect::Socketio).and_then(|r| r.server_cpu_us_per_delivery);
    let ours = ok(runs, "c", Dialect::Confab).and_then(|r| r.server_cpu_us_per_delivery);
    check(
        "c",
        "server CPU per delivery ≤ ⅓ of Socket.IO's (same run)".into(),
        ours.map(|o| match sio {
            Some(s) => (format!("{o:.2} µs vs {s:.2} µs ({:.2}×)", o / s), o * 3.0 <= s),
            None => (format!("{o:.2} µs (no Socket.IO run)"), false),
        }),
    );
    for (id, floor) in [("e-sqlite", 50_000.0), ("e-postgres", 25_000.0)] {
        let r = ok(runs, id, Dialect::Confab);
        check(id, format!("≥ {floor:.0} persisted messages/s, one send in flight per sender"), r.map(|r| (format!("{:.0}/s", r.acked_per_s), r.acked_per_s >= floor)));
        check(id, "ack p99 ≤ 20 ms".into(), r.map(|r| (ms(ack_p99(r)), ack_p99(r) <= 20_000)));
    }
    let r = ok(runs, "e16-sqlite", Dialect::Confab);
    check("e16-sqlite", "≥ 100 000 persisted messages/s".into(), r.map(|r| (format!("{:.0}/s", r.acked_per_s), r.acked_per_s >= 100_000.0)));
    check(
        "e16-sqlite",
        "≤ 10 µs server CPU per message".into(),
        r.map(|r| {
            let v = r.server_cpu_us_per_ack.unwrap_or(f64::INFINITY);
            (format!("{v:.1} µs"), v <= 10.0)
        }),
    );
    for id in ["s-sqlite", "s-postgres"] {
        let r = ok(runs, id, Dialect::Confab);
        check(
            id,
            "all 1000/s acknowledged (ack p50 / p99 reported)".into(),
            r.map(|r| {
                let l = r.ack_latency_us.as_ref();
                let p = |f: fn(&crate::load::Latency) -> u64| l.map_or("-".into(), |l| ms(f(l)));
                (format!("{:.0}/s, ack p50 {} / p99 {}", r.acked_per_s, p(|l| l.p50), p(|l| l.p99)), r.acked_per_s >= 990.0 && r.send_skipped == 0)
            }),
        );
    }
}
