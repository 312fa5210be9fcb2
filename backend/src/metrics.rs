//! Process-wide counters, rendered in Prometheus text format (served at `/metrics` by
//! `features::system`, which adds this instance's gauges).
//!
//! Plain relaxed atomics in a static: the hot path pays one uncontended `fetch_add`, and
//! the numbers describe the process, which is what a scrape wants even when tests run
//! several servers in one process.
//!
//! Labelled series whose labels are known at start (a hook's name, a trusted issuer's
//! name) are owned by the part that counts them, as a [`Counter`] or a [`Histogram`] with
//! fixed buckets, and rendered with [`counter_line`] / [`Histogram::render`] by the
//! `/metrics` handler.
//!
//! Why not the `metrics` crate with `metrics-exporter-prometheus`: every series here is
//! known when the server starts, so a static array of atomics renders the same text that
//! crate would, without a global recorder, a registry keyed by name and label set on the
//! hot path, or the exporter's dependency tree in the build. Series created at run time
//! from unbounded label values (per room, per user) are what would call for it; Confab
//! deliberately has none. The names and help texts follow its conventions.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Default)]
pub struct Metrics {
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub frames_received: AtomicU64,
    pub frames_queued: AtomicU64,
    pub messages_persisted: AtomicU64,
    pub write_batches: AtomicU64,
    pub evictions: AtomicU64,
    pub dropped: AtomicU64,
    pub rpc_errors: AtomicU64,
    pub sockets_refused: AtomicU64,
}

pub static METRICS: Metrics = Metrics {
    connections_opened: AtomicU64::new(0),
    connections_closed: AtomicU64::new(0),
    frames_received: AtomicU64::new(0),
    frames_queued: AtomicU64::new(0),
    messages_persisted: AtomicU64::new(0),
    write_batches: AtomicU64::new(0),
    evictions: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
    rpc_errors: AtomicU64::new(0),
    sockets_refused: AtomicU64::new(0),
};

impl Metrics {
    /// Appends every counter, with its help and type lines, in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let counters = [
            ("confab_connections_opened_total", "WebSocket connections accepted", &self.connections_opened),
            ("confab_connections_closed_total", "WebSocket connections ended", &self.connections_closed),
            ("confab_frames_received_total", "Text frames received from clients", &self.frames_received),
            ("confab_frames_queued_total", "Frames queued to connections by group sends", &self.frames_queued),
            ("confab_messages_persisted_total", "Room messages committed", &self.messages_persisted),
            ("confab_write_batches_total", "Group-commit transactions", &self.write_batches),
            ("confab_evictions_total", "Slow consumers closed with 1013", &self.evictions),
            ("confab_dropped_frames_total", "Droppable frames skipped for slow consumers", &self.dropped),
            ("confab_rpc_errors_total", "JSON-RPC error responses", &self.rpc_errors),
            ("confab_sockets_refused_total", "Socket upgrades refused at a per-address or per-user cap", &self.sockets_refused),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
        }
    }
}

/// A monotonic counter of a labelled series.
pub type Counter = AtomicU64;

/// Appends the `# HELP` and `# TYPE` lines of a series.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Appends one sample line: `name{labels} value`; `labels` is `key="value",…` (values
/// escaped with [`label`]) or empty.
pub fn counter_line(out: &mut String, name: &str, labels: &str, value: u64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// A label value, escaped as the text format asks (`\`, `"`, newline).
pub fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Upper bounds of [`Histogram`]'s buckets, in seconds (`+Inf` is implied).
const BUCKETS_SECS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Durations in fixed buckets from 1 ms to 5 s: one relaxed increment per bucket an
/// observation falls in, and the sum in microseconds.
#[derive(Default)]
pub struct Histogram {
    /// Observations at most each bound, cumulative as the format wants.
    buckets: [AtomicU64; BUCKETS_SECS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS_SECS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines (after the caller's [`header`]).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS_SECS) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}", bucket.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        if labels.is_empty() {
            let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        } else {
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {count}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_cumulatively_and_sums_in_seconds() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(9));
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "hook=\"room.send\"");
        assert!(out.contains("x_seconds_bucket{hook=\"room.send\",le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{hook=\"room.send\",le=\"0.025\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{hook=\"room.send\",le=\"5\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{hook=\"room.send\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_sum{hook=\"room.send\"} 9.0205\n"), "{out}");
        assert!(out.contains("x_seconds_count{hook=\"room.send\"} 3\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
