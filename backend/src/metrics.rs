//! Process-wide counters, rendered in Prometheus text format (served at `/metrics` by
//! `features::system`, which adds this instance's gauges).
//!
//! Plain relaxed atomics in a static: the hot path pays one uncontended `fetch_add`, and
//! the numbers describe the process, which is what a scrape wants even when tests run
//! several servers in one process.
//!
//! Why not the `metrics` crate with `metrics-exporter-prometheus`: for ten monotonic
//! counters it would add a global recorder, a registry keyed by name and label set, and
//! the exporter's dependency tree, to render the same text. The day Confab exports
//! histograms (latency per method, batch sizes) or labelled series, that is the library to
//! move to; the counters' names and help texts here are already its conventions.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

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
