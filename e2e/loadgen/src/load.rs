//! The load itself: N subscribers in R rooms, P publishers, idle connections; connect,
//! join, warm up, measure, drain, report.
//!
//! Connections are spread over worker threads, each a single-threaded tokio runtime, so a
//! connection's tasks share plain `Rc`/`RefCell` state and the per-message path touches no
//! atomic and no lock: the latency histogram and the counters are per worker, merged at the
//! end. The controller (the caller's runtime) moves everyone through the phases with a
//! `watch` channel and reads the few shared counters it needs to know when a phase is done.
//!
//! Confab's connections speak over a WebSocket or over its HTTP stream ([`Transport`]); on
//! the stream, a publisher's sends go out as POSTs on up to [`POST_LANES`] keep-alive
//! connections (lanes), opened as its backlog needs them, and their answers may come back in
//! any order across lanes.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};

use crate::clock::now_ns;
use crate::dialect::{Dialect, Incoming};
use crate::http_stream::{self, EventReader, Line, PostConn};
use crate::procfs;
use crate::ws::{self, Frame, FrameReader, Opcode};

/// Errors kept per run (the rest are counted).
const MAX_ERRORS: usize = 8;
/// Histograms cover 1 µs to 100 s with 3 significant digits.
const HIST_MAX_US: u64 = 100_000_000;
/// Most POSTs one stream publisher has in flight: the server lets 8 calls wait per stream
/// session and refuses more with 429.
pub const POST_LANES: usize = 8;

/// How a Confab connection talks to the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A WebSocket (`/ws`; the peers' own paths).
    #[default]
    Socket,
    /// Confab's HTTP stream: `GET /api/stream` carries the frames the socket would, each call
    /// is a `POST /api/stream/{session}` whose response is its answer.
    Stream,
}

impl Transport {
    pub fn is_socket(&self) -> bool {
        *self == Self::Socket
    }
}

/// How publishers pace themselves.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// As fast as acknowledgements come back, with at most `window` sends in flight.
    FlatOut,
    /// This many messages per second per publisher (skipped, and counted, when the window is full).
    Rate(f64),
    /// As fast as the publisher's own messages come back to it through the room (it is a
    /// member, as a client that shows a message once the room has it), with at most `window`
    /// sends awaiting their echo: the sender is paced by delivery, not by the answer.
    Echo,
}

/// One load run against one server (or a set of instances of it).
#[derive(Clone, Debug)]
pub struct Plan {
    pub dialect: Dialect,
    /// Socket or HTTP stream (Confab only).
    pub transport: Transport,
    /// Instances to spread connections over (round-robin by role index).
    pub endpoints: Vec<SocketAddr>,
    /// Bearer tokens handed out round-robin (Confab); empty for the peers.
    pub tokens: Vec<String>,
    pub rooms: usize,
    /// Room names are `<prefix><index>`.
    pub room_prefix: String,
    pub subscribers_per_room: usize,
    /// Publisher `i` sends to room `i % rooms`.
    pub publishers: usize,
    /// Connections that only connect (and authenticate) and then sit idle.
    pub idle: usize,
    pub mode: SendMode,
    /// Most sends in flight per publisher.
    pub window: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Longest wait after the last send for acknowledgements and deliveries.
    pub drain: Duration,
    /// Idle runs: how long to let the server settle before reading its memory.
    pub settle: Duration,
    /// Upgrades in flight at once.
    pub connect_concurrency: usize,
    /// Bound on the connect phase and on the join phase, each.
    pub phase_timeout: Duration,
    /// Processes whose CPU time and memory count as "the server" (instances, Redis).
    pub server_pids: Vec<u32>,
    /// Worker threads; 0 = one per CPU this process may run on.
    pub workers: usize,
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| Self {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        })
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadResult {
    pub connections: usize,
    pub connect_failures: usize,
    pub connect_secs: f64,
    /// Upgrades (with authentication, for Confab) completed per second.
    pub connect_per_s: f64,
    pub join_secs: f64,
    pub join_failures: usize,
    /// The measurement window (after warm-up, before drain).
    pub measured_secs: f64,
    /// Sends written / acknowledged OK / acknowledged with an error, over the whole run.
    pub sent: u64,
    pub acked: u64,
    pub ack_errors: u64,
    /// Rate mode: ticks skipped because the publisher's window was full.
    pub send_skipped: u64,
    /// Acknowledged sends per second in the window (Confab: persisted messages/s).
    pub acked_per_s: f64,
    /// Deliveries owed to subscribers for every acknowledged send, and those that arrived.
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub delivered_in_window: u64,
    pub delivered_per_s: f64,
    /// Send → receipt at a subscriber, for messages sent in the window.
    pub latency_us: Option<Latency>,
    /// Send → acknowledgement at the publisher.
    pub ack_latency_us: Option<Latency>,
    /// Send → the message's own broadcast back at its publisher ([`SendMode::Echo`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_latency_us: Option<Latency>,
    pub server_cpu_secs: f64,
    /// Server CPU use in the window, in cores (1.0 = one core busy).
    pub server_cpu_cores: f64,
    pub server_cpu_us_per_delivery: Option<f64>,
    pub server_cpu_us_per_ack: Option<f64>,
    pub loadgen_cpu_cores: f64,
    pub loadgen_cpu_us_per_delivery: Option<f64>,
    pub server_rss_before_kib: u64,
    pub server_rss_after_kib: u64,
    /// Idle runs: (RSS after − RSS before) / connections.
    pub rss_per_connection_bytes: Option<f64>,
    /// Close codes the server sent, with counts (1013: slow consumer evicted).
    pub closes: BTreeMap<u16, usize>,
    pub errors: Vec<String>,
    /// The measurement window in wall-clock milliseconds since the epoch (start, end), to
    /// line it up with what the server records; not saved.
    #[serde(skip)]
    pub window_unix_ms: (i64, i64),
    /// CPU seconds in the window of each of [`Plan::server_pids`], in that order; not saved:
    /// the benchmark, which knows which pid is what, turns it into `redis`.
    #[serde(skip)]
    pub server_cpu_secs_each: Vec<f64>,
    /// Redis CPU in the window, per shard (one entry for a single `redis-server`); part of
    /// `server_cpu_secs` already.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redis: Vec<RedisShardCpu>,
    /// (c-sweep): what the retention sweep did meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<crate::sweep::SweepResult>,
}

/// One Redis shard's CPU use in the measured window, from `/proc/<pid>/stat` of its processes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RedisShardCpu {
    /// The master's address, `127.0.0.1:<port>`.
    pub master: String,
    /// The slot ranges the master serves; empty for a single `redis-server` (all of them).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub slots: String,
    pub master_cpu_cores: f64,
    pub master_cpu_us_per_delivery: Option<f64>,
    /// The shard's replicas together: they apply the master's replication stream, which
    /// carries every `SPUBLISH` of the shard.
    pub replica_cpu_cores: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
enum Phase {
    Connect,
    Join,
    Warmup,
    Measure,
    Drain,
}

/// State every connection and the controller share.
struct Shared {
    phase: AtomicU8,
    measure_start_ns: AtomicU64,
    connected: AtomicUsize,
    connect_failed: AtomicUsize,
    joined: AtomicUsize,
    join_failed: AtomicUsize,
    /// Subscriber receipts so far (for the drain's "all arrived").
    received: AtomicU64,
    /// Acknowledged sends per room.
    acked: Vec<AtomicU64>,
    sent: AtomicU64,
    skipped: AtomicU64,
    in_flight: AtomicI64,
    gate: Semaphore,
}

impl Shared {
    fn phase(&self) -> Phase {
        match self.phase.load(Relaxed) {
            0 => Phase::Connect,
            1 => Phase::Join,
            2 => Phase::Warmup,
            3 => Phase::Measure,
            _ => Phase::Drain,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Role {
    Subscriber { room: usize },
    Publisher { room: usize },
    Idle,
}

#[derive(Clone, Debug)]
struct ConnSpec {
    role: Role,
    endpoint: SocketAddr,
    token: Option<String>,
}

/// Per-worker results, merged by the controller.
struct LocalStats {
    latency: Histogram<u64>,
    ack_latency: Histogram<u64>,
    echo_latency: Histogram<u64>,
    room_received: Vec<u64>,
    delivered_in_window: u64,
    acked_in_window: u64,
    ack_errors: u64,
    closes: BTreeMap<u16, usize>,
    errors: Vec<String>,
    error_count: usize,
}

impl LocalStats {
    fn new(rooms: usize) -> Self {
        Self {
            latency: histogram(),
            ack_latency: histogram(),
            echo_latency: histogram(),
            room_received: vec![0; rooms],
            delivered_in_window: 0,
            acked_in_window: 0,
            ack_errors: 0,
            closes: BTreeMap::new(),
            errors: Vec::new(),
            error_count: 0,
        }
    }

    fn error(&mut self, err: impl std::fmt::Display) {
        self.error_count += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(err.to_string());
        }
    }

    fn merge(&mut self, other: Self) {
        let _ = self.latency.add(&other.latency);
        let _ = self.ack_latency.add(&other.ack_latency);
        let _ = self.echo_latency.add(&other.echo_latency);
        for (a, b) in self.room_received.iter_mut().zip(other.room_received) {
            *a += b;
        }
        self.delivered_in_window += other.delivered_in_window;
        self.acked_in_window += other.acked_in_window;
        self.ack_errors += other.ack_errors;
        for (code, n) in other.closes {
            *self.closes.entry(code).or_default() += n;
        }
        self.error_count += other.error_count;
        for e in other.errors {
            if self.errors.len() < MAX_ERRORS {
                self.errors.push(e);
            }
        }
    }
}

fn histogram() -> Histogram<u64> {
    // Bounds are constants within hdrhistogram's limits; this cannot fail.
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

enum Cmd {
    Open(Vec<ConnSpec>),
    Collect(oneshot::Sender<LocalStats>),
}

/// Runs a plan to completion. Everything it opens is closed when it returns.
pub async fn run(plan: Plan) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(!plan.endpoints.is_empty(), "no endpoint");
    anyhow::ensure!(plan.rooms > 0 || plan.subscribers_per_room + plan.publishers == 0, "rooms needed");
    crate::clock::init();
    let specs = specs(&plan);
    let total = specs.len();
    let joiners = specs.iter().filter(|s| !matches!(s.role, Role::Idle)).count();
    let subs_per_room = plan.subscribers_per_room as u64;

    let shared = Arc::new(Shared {
        phase: AtomicU8::new(Phase::Connect as u8),
        measure_start_ns: AtomicU64::new(0),
        connected: AtomicUsize::new(0),
        connect_failed: AtomicUsize::new(0),
        joined: AtomicUsize::new(0),
        join_failed: AtomicUsize::new(0),
        received: AtomicU64::new(0),
        acked: (0..plan.rooms).map(|_| AtomicU64::new(0)).collect(),
        sent: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        in_flight: AtomicI64::new(0),
        gate: Semaphore::new(plan.connect_concurrency.max(1)),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let set_phase = |p: Phase| {
        shared.phase.store(p as u8, Relaxed);
        let _ = phase_tx.send(p);
    };

    let workers = if plan.workers > 0 { plan.workers } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
    let workers = workers.clamp(1, total.max(1));
    let mut handles = Vec::with_capacity(workers);
    let mut cmds = Vec::with_capacity(workers);
    for w in 0..workers {
        let (tx, rx) = mpsc::unbounded_channel();
        let ctx = SendCtx { shared: shared.clone(), phase: phase_rx.clone(), plan: plan.clone() };
        handles.push(std::thread::Builder::new().name(format!("loadgen-{w}")).spawn(move || worker(ctx, rx))?);
        cmds.push(tx);
    }

    let mut result = LoadResult { connections: total, ..LoadResult::default() };
    result.server_rss_before_kib = procfs::rss_kib_sum(&plan.server_pids);

    // Connect.
    let started = Instant::now();
    let mut per_worker: Vec<Vec<ConnSpec>> = vec![Vec::new(); workers];
    for (i, spec) in specs.into_iter().enumerate() {
        per_worker[i % workers].push(spec);
    }
    for (tx, batch) in cmds.iter().zip(per_worker) {
        let _ = tx.send(Cmd::Open(batch));
    }
    wait_until(plan.phase_timeout, || shared.connected.load(Relaxed) + shared.connect_failed.load(Relaxed) >= total).await;
    result.connect_secs = started.elapsed().as_secs_f64();
    result.connect_failures = total - shared.connected.load(Relaxed);
    result.connect_per_s = shared.connected.load(Relaxed) as f64 / result.connect_secs.max(1e-9);

    if joiners == 0 {
        // Idle run: let the server settle, then weigh it.
        tokio::time::sleep(plan.settle).await;
    } else {
        set_phase(Phase::Join);
        let started = Instant::now();
        let target = shared.connected.load(Relaxed).min(joiners);
        wait_until(plan.phase_timeout, || shared.joined.load(Relaxed) + shared.join_failed.load(Relaxed) >= target).await;
        result.join_secs = started.elapsed().as_secs_f64();
        result.join_failures = joiners - shared.joined.load(Relaxed);

        set_phase(Phase::Warmup);
        tokio::time::sleep(plan.warmup).await;

        // Per process, so the benchmark can tell the Redis shards apart.
        let cpu_each = || plan.server_pids.iter().map(|&p| procfs::cpu_secs(p).unwrap_or(0.0)).collect::<Vec<_>>();
        let cpu0 = cpu_each();
        let me0 = procfs::cpu_secs(std::process::id()).unwrap_or(0.0);
        let t0 = Instant::now();
        let unix0 = chrono::Utc::now().timestamp_millis();
        shared.measure_start_ns.store(now_ns(), Relaxed);
        set_phase(Phase::Measure);
        tokio::time::sleep(plan.duration).await;
        let cpu1 = cpu_each();
        let me1 = procfs::cpu_secs(std::process::id()).unwrap_or(0.0);
        result.measured_secs = t0.elapsed().as_secs_f64();
        result.window_unix_ms = (unix0, chrono::Utc::now().timestamp_millis());
        set_phase(Phase::Drain);
        // A process that vanished mid-window reads as zero: count it as no time, not negative.
        result.server_cpu_secs_each = cpu1.iter().zip(&cpu0).map(|(after, before)| (after - before).max(0.0)).collect();
        result.server_cpu_secs = result.server_cpu_secs_each.iter().sum();
        result.server_cpu_cores = result.server_cpu_secs / result.measured_secs;
        result.loadgen_cpu_cores = (me1 - me0) / result.measured_secs;

        let expected = || shared.acked.iter().map(|a| a.load(Relaxed)).sum::<u64>() * subs_per_room;
        wait_until(plan.drain, || shared.in_flight.load(Relaxed) <= 0 && shared.received.load(Relaxed) >= expected()).await;
        result.expected = expected();
    }
    result.server_rss_after_kib = procfs::rss_kib_sum(&plan.server_pids);

    // Collect, then close everything by ending the workers.
    let mut stats = LocalStats::new(plan.rooms);
    for tx in &cmds {
        let (reply, answer) = oneshot::channel();
        if tx.send(Cmd::Collect(reply)).is_ok()
            && let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(10), answer).await
        {
            stats.merge(s);
        }
    }
    drop(cmds);
    for h in handles {
        let _ = tokio::task::spawn_blocking(move || h.join()).await;
    }

    result.sent = shared.sent.load(Relaxed);
    result.acked = shared.acked.iter().map(|a| a.load(Relaxed)).sum();
    result.ack_errors = stats.ack_errors;
    result.send_skipped = shared.skipped.load(Relaxed);
    result.received = stats.room_received.iter().sum();
    result.lost = shared
        .acked
        .iter()
        .zip(&stats.room_received)
        .map(|(acked, &got)| (acked.load(Relaxed) * subs_per_room).saturating_sub(got))
        .sum();
    result.delivered_in_window = stats.delivered_in_window;
    if result.measured_secs > 0.0 {
        result.delivered_per_s = stats.delivered_in_window as f64 / result.measured_secs;
        result.acked_per_s = stats.acked_in_window as f64 / result.measured_secs;
        let per = |n: u64, secs: f64| (n > 0).then(|| secs * 1e6 / n as f64);
        result.server_cpu_us_per_delivery = per(stats.delivered_in_window, result.server_cpu_secs);
        result.server_cpu_us_per_ack = per(stats.acked_in_window, result.server_cpu_secs);
        result.loadgen_cpu_us_per_delivery = per(stats.delivered_in_window, result.loadgen_cpu_cores * result.measured_secs);
    }
    result.latency_us = Latency::of(&stats.latency);
    result.ack_latency_us = Latency::of(&stats.ack_latency);
    result.echo_latency_us = Latency::of(&stats.echo_latency);
    if joiners == 0 && total > 0 {
        let grown = result.server_rss_after_kib.saturating_sub(result.server_rss_before_kib);
        result.rss_per_connection_bytes = Some(grown as f64 * 1024.0 / shared.connected.load(Relaxed).max(1) as f64);
    }
    result.closes = stats.closes;
    result.errors = stats.errors;
    if stats.error_count > result.errors.len() {
        result.errors.push(format!("… {} errors in all", stats.error_count));
    }
    Ok(result)
}

/// Subscribers (room-major), then publishers, then idle connections; instances round-robin
/// within each role, so half the subscribers of every room sit on each of two instances.
fn specs(plan: &Plan) -> Vec<ConnSpec> {
    let mut specs = Vec::new();
    let endpoint = |i: usize| plan.endpoints[i % plan.endpoints.len()];
    for room in 0..plan.rooms {
        for s in 0..plan.subscribers_per_room {
            specs.push(ConnSpec { role: Role::Subscriber { room }, endpoint: endpoint(room * plan.subscribers_per_room + s), token: None });
        }
    }
    for p in 0..plan.publishers {
        specs.push(ConnSpec { role: Role::Publisher { room: p % plan.rooms.max(1) }, endpoint: endpoint(p), token: None });
    }
    for i in 0..plan.idle {
        specs.push(ConnSpec { role: Role::Idle, endpoint: endpoint(i), token: None });
    }
    if !plan.tokens.is_empty() {
        for (i, spec) in specs.iter_mut().enumerate() {
            spec.token = Some(plan.tokens[i % plan.tokens.len()].clone());
        }
    }
    specs
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a worker thread's connections share.
struct WorkerCtx {
    shared: Arc<Shared>,
    phase: watch::Receiver<Phase>,
    plan: Rc<Plan>,
}

/// [`WorkerCtx`] in a form that crosses threads (the plan is wrapped in an `Rc` there).
struct SendCtx {
    shared: Arc<Shared>,
    phase: watch::Receiver<Phase>,
    plan: Plan,
}

fn worker(ctx: SendCtx, mut rx: mpsc::UnboundedReceiver<Cmd>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("loadgen: worker runtime: {err}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let ctx = Rc::new(WorkerCtx { shared: ctx.shared, phase: ctx.phase, plan: Rc::new(ctx.plan) });
    let stats = Rc::new(RefCell::new(LocalStats::new(ctx.plan.rooms)));
    local.block_on(&runtime, async move {
        while let Some(cmd) = rx.recv().await {
            match cmd {
                Cmd::Open(specs) => {
                    for spec in specs {
                        match ctx.plan.transport {
                            Transport::Socket => tokio::task::spawn_local(connection(spec, ctx.clone(), stats.clone())),
                            Transport::Stream => tokio::task::spawn_local(stream_connection(spec, ctx.clone(), stats.clone())),
                        };
                    }
                }
                Cmd::Collect(reply) => {
                    let taken = std::mem::replace(&mut *stats.borrow_mut(), LocalStats::new(ctx.plan.rooms));
                    let _ = reply.send(taken);
                }
            }
        }
    });
    // Dropping the LocalSet drops every connection task, closing the sockets.
}

/// Frames waiting to be written; the connection's writer task sends them in one write.
struct Outbound {
    buf: RefCell<Vec<u8>>,
    ready: Notify,
    mask: [u8; 4],
}

impl Outbound {
    fn push(&self, opcode: Opcode, payload: &[u8]) {
        ws::encode(&mut self.buf.borrow_mut(), opcode, payload, self.mask);
        self.ready.notify_one();
    }
}

/// Where a publisher's sends go: frames on its socket, or POSTs on its stream's lanes.
#[derive(Clone)]
enum Outlet {
    Socket(Rc<Outbound>),
    Posts(Rc<Posts>),
}

impl Outlet {
    /// Sends the request `frame` whose id is `id`.
    fn send(&self, frame: &[u8], id: u64) {
        match self {
            Self::Socket(out) => out.push(Opcode::Text, frame),
            Self::Posts(posts) => posts.push(frame, id),
        }
    }
}

async fn write_loop(out: Rc<Outbound>, mut wr: OwnedWriteHalf) {
    let mut spare = Vec::with_capacity(256);
    loop {
        out.ready.notified().await;
        std::mem::swap(&mut *out.buf.borrow_mut(), &mut spare);
        if spare.is_empty() {
            continue;
        }
        if wr.write_all(&spare).await.is_err() {
            return;
        }
        spare.clear();
    }
}

/// A publisher's sends awaiting acknowledgement, oldest first.
struct Publisher {
    room: usize,
    room_name: String,
    /// Whether acknowledgements come back in send order (one socket), so a gap means a lost
    /// one; over several POST lanes they need not.
    ordered: bool,
    pending: RefCell<VecDeque<(u64, u64)>>,
    /// [`SendMode::Echo`]: send times of the messages whose echo has not come back, oldest first.
    echoes: RefCell<VecDeque<u64>>,
    next_id: Cell<u64>,
    acked: Notify,
}

impl Publisher {
    fn new(room: usize, room_name: String, ordered: bool) -> Self {
        Self { room, room_name, ordered, pending: RefCell::new(VecDeque::new()), echoes: RefCell::new(VecDeque::new()), next_id: Cell::new(2), acked: Notify::new() }
    }

    fn on_ack(&self, id: u64, ok: bool, now: u64, shared: &Shared, stats: &mut LocalStats) {
        let mut pending = self.pending.borrow_mut();
        let mut sent_at = None;
        if self.ordered {
            while let Some(&(pid, sent)) = pending.front() {
                if pid > id {
                    break;
                }
                pending.pop_front();
                shared.in_flight.fetch_sub(1, Relaxed);
                if pid < id {
                    stats.error(format!("no acknowledgement for send {pid}"));
                    continue;
                }
                sent_at = Some(sent);
                break;
            }
        } else if let Some((_, sent)) = pending.iter().position(|&(pid, _)| pid == id).and_then(|at| pending.remove(at)) {
            shared.in_flight.fetch_sub(1, Relaxed);
            sent_at = Some(sent);
        }
        drop(pending);
        if let Some(sent) = sent_at {
            if ok {
                shared.acked[self.room].fetch_add(1, Relaxed);
                let start = shared.measure_start_ns.load(Relaxed);
                if shared.phase() == Phase::Measure {
                    stats.acked_in_window += 1;
                }
                if start > 0 && sent >= start {
                    let _ = stats.ack_latency.record((now.saturating_sub(sent) / 1000).max(1));
                }
            } else {
                stats.ack_errors += 1;
            }
        }
        self.acked.notify_one();
    }

    /// A room message reached its publisher: if it is one of its own, its echo is in.
    fn on_echo(&self, sent_ns: u64, now: u64, shared: &Shared, stats: &mut LocalStats) {
        let mut echoes = self.echoes.borrow_mut();
        // Echoes come back in send order; anything older than this one is not coming.
        let Some(at) = echoes.iter().position(|&s| s == sent_ns) else { return };
        echoes.drain(..=at);
        drop(echoes);
        let start = shared.measure_start_ns.load(Relaxed);
        if start > 0 && sent_ns >= start {
            let _ = stats.echo_latency.record((now.saturating_sub(sent_ns) / 1000).max(1));
        }
        self.acked.notify_one();
    }
}

/// Read buffer per connection: large for busy ones (many frames per read), small for idle ones.
fn read_buffer(role: Role) -> usize {
    match role {
        Role::Idle => 2 * 1024,
        _ => 64 * 1024,
    }
}

async fn connection(spec: ConnSpec, ctx: Rc<WorkerCtx>, stats: Rc<RefCell<LocalStats>>) {
    let shared = &ctx.shared;
    let dialect = ctx.plan.dialect;
    let permit = shared.gate.acquire().await;
    let opened = open(&spec, &ctx).await;
    drop(permit);
    let (mut rd, mut reader, out) = match opened {
        Ok(parts) => parts,
        Err(err) => {
            shared.connect_failed.fetch_add(1, Relaxed);
            stats.borrow_mut().error(format!("{err:#}"));
            return;
        }
    };
    shared.connected.fetch_add(1, Relaxed);

    let room = match spec.role {
        Role::Subscriber { room } | Role::Publisher { room } => Some(room),
        Role::Idle => None,
    };
    let mut publisher = None;
    if let Some(room) = room {
        let mut phase = ctx.phase.clone();
        if phase.wait_for(|p| *p >= Phase::Join).await.is_err() {
            return;
        }
        let room_name = format!("{}{room}", ctx.plan.room_prefix);
        let mut frame = Vec::with_capacity(128);
        dialect.join(&mut frame, &room_name, 1);
        out.push(Opcode::Text, &frame);
        let joined = tokio::time::timeout(ctx.plan.phase_timeout, wait_for(&mut reader, &mut rd, &out, dialect, |i| matches!(i, Incoming::Ack { id: 1, .. }))).await;
        match joined {
            Ok(Ok(Incoming::Ack { ok: true, .. })) => {
                shared.joined.fetch_add(1, Relaxed);
            }
            other => {
                shared.join_failed.fetch_add(1, Relaxed);
                stats.borrow_mut().error(format!("join {room_name}: {other:?}"));
                return;
            }
        }
        if let Role::Publisher { room } = spec.role {
            let p = Rc::new(Publisher::new(room, room_name, true));
            tokio::task::spawn_local(publish(p.clone(), Outlet::Socket(out.clone()), ctx.clone()));
            publisher = Some(p);
        }
    }
    let subscriber_room = match spec.role {
        Role::Subscriber { room } => Some(room),
        _ => None,
    };
    if let Err(err) = read_loop(&mut reader, &mut rd, &out, &ctx, &stats, subscriber_room, publisher.as_deref()).await {
        stats.borrow_mut().error(format!("{err:#}"));
    }
}

type Opened = (OwnedReadHalf, FrameReader, Rc<Outbound>);

/// Upgrade, start the writer, and (Socket.IO) open the namespace.
async fn open(spec: &ConnSpec, ctx: &WorkerCtx) -> anyhow::Result<Opened> {
    let dialect = ctx.plan.dialect;
    let headers = dialect.headers(spec.token.as_deref());
    let (stream, leftover) = ws::connect(spec.endpoint, dialect.path(), &headers, ctx.plan.phase_timeout).await?;
    let (mut rd, wr) = stream.into_split();
    let mut reader = FrameReader::new(read_buffer(spec.role), &leftover);
    let out = Rc::new(Outbound { buf: RefCell::new(Vec::with_capacity(128)), ready: Notify::new(), mask: rand::random() });
    tokio::task::spawn_local(write_loop(out.clone(), wr));
    if let Some(frame) = dialect.open_frame() {
        out.push(Opcode::Text, frame);
        tokio::time::timeout(ctx.plan.phase_timeout, wait_for(&mut reader, &mut rd, &out, dialect, |i| matches!(i, Incoming::Opened)))
            .await
            .map_err(|_| anyhow::anyhow!("namespace open timed out"))??;
    }
    Ok((rd, reader, out))
}

/// Reads until a frame matches `want`, answering pings on the way.
async fn wait_for(
    reader: &mut FrameReader,
    rd: &mut OwnedReadHalf,
    out: &Outbound,
    dialect: Dialect,
    want: impl Fn(&Incoming) -> bool,
) -> anyhow::Result<Incoming> {
    loop {
        while let Some(frame) = reader.next_frame()? {
            match frame {
                Frame::Text(text) => {
                    let incoming = dialect.classify(text);
                    if want(&incoming) {
                        return Ok(incoming);
                    }
                    if let Incoming::Reply(reply) = incoming {
                        out.push(Opcode::Text, reply);
                    }
                }
                Frame::Ping(payload) => out.push(Opcode::Pong, payload),
                Frame::Close(code) => anyhow::bail!("closed by the server ({code})"),
                Frame::Binary(_) => {}
            }
        }
        if reader.fill(rd).await? == 0 {
            anyhow::bail!("connection closed");
        }
    }
}

/// The steady state: count and time every message, hand acknowledgements to the publisher.
async fn read_loop(
    reader: &mut FrameReader,
    rd: &mut OwnedReadHalf,
    out: &Outbound,
    ctx: &WorkerCtx,
    stats: &RefCell<LocalStats>,
    subscriber_room: Option<usize>,
    publisher: Option<&Publisher>,
) -> anyhow::Result<()> {
    loop {
        if drain_frames(reader, out, ctx, &mut stats.borrow_mut(), subscriber_room, publisher)? {
            return Ok(());
        }
        if reader.fill(rd).await? == 0 {
            return Ok(());
        }
    }
}

/// Handles every complete frame in the buffer (all arrived at once: one clock read for
/// them all); `true` when the server closed the connection.
fn drain_frames(
    reader: &mut FrameReader,
    out: &Outbound,
    ctx: &WorkerCtx,
    st: &mut LocalStats,
    subscriber_room: Option<usize>,
    publisher: Option<&Publisher>,
) -> anyhow::Result<bool> {
    let shared = &*ctx.shared;
    let dialect = ctx.plan.dialect;
    let now = now_ns();
    let measure_start = shared.measure_start_ns.load(Relaxed);
    let mut messages = 0u64;
    let mut closed = false;
    while let Some(frame) = reader.next_frame()? {
        match frame {
            Frame::Text(text) => match dialect.classify(text) {
                Incoming::Reply(reply) => out.push(Opcode::Text, reply),
                incoming => on_incoming(incoming, now, measure_start, ctx, st, subscriber_room, publisher, &mut messages),
            },
            Frame::Ping(payload) => out.push(Opcode::Pong, payload),
            Frame::Close(code) => {
                *st.closes.entry(code).or_default() += 1;
                closed = true;
                break;
            }
            Frame::Binary(_) => {}
        }
    }
    count_received(shared, st, subscriber_room, messages);
    Ok(closed)
}

/// A room message or an answer, as read at `now`: counted, timed, handed to the publisher.
#[expect(clippy::too_many_arguments, reason = "the per-message path's state, passed as it is rather than bundled per call")]
fn on_incoming(
    incoming: Incoming,
    now: u64,
    measure_start: u64,
    ctx: &WorkerCtx,
    st: &mut LocalStats,
    subscriber_room: Option<usize>,
    publisher: Option<&Publisher>,
    messages: &mut u64,
) {
    let shared = &*ctx.shared;
    match incoming {
        Incoming::Message { sent_ns } => {
            if let Some(p) = publisher.filter(|_| ctx.plan.mode == SendMode::Echo) {
                p.on_echo(sent_ns, now, shared, st);
            }
            if subscriber_room.is_some() {
                *messages += 1;
                if measure_start > 0 && sent_ns >= measure_start {
                    let _ = st.latency.record((now.saturating_sub(sent_ns) / 1000).max(1));
                }
            }
        }
        Incoming::Ack { id, ok } => {
            if let Some(p) = publisher {
                p.on_ack(id, ok, now, shared, st);
            }
        }
        Incoming::Reply(_) | Incoming::Opened | Incoming::Other => {}
    }
}

/// Adds a read's room messages to the subscriber's counts.
fn count_received(shared: &Shared, st: &mut LocalStats, subscriber_room: Option<usize>, messages: u64) {
    if let (Some(room), true) = (subscriber_room, messages > 0) {
        st.room_received[room] += messages;
        if shared.phase() == Phase::Measure {
            st.delivered_in_window += messages;
        }
        shared.received.fetch_add(messages, Relaxed);
    }
}

/// Sends from warm-up until the drain: flat out within the window, or at a fixed rate.
async fn publish(p: Rc<Publisher>, out: Outlet, ctx: Rc<WorkerCtx>) {
    let shared = &*ctx.shared;
    let dialect = ctx.plan.dialect;
    let window = ctx.plan.window.max(1);
    let mut phase = ctx.phase.clone();
    if phase.wait_for(|p| *p >= Phase::Warmup).await.is_err() {
        return;
    }
    let mut frame = Vec::with_capacity(256);
    let echo = ctx.plan.mode == SendMode::Echo;
    let mut send = |n: usize| {
        let mut pending = p.pending.borrow_mut();
        for _ in 0..n {
            let id = p.next_id.get();
            p.next_id.set(id + 1);
            let sent = now_ns();
            frame.clear();
            dialect.send(&mut frame, &p.room_name, id, sent);
            out.send(&frame, id);
            pending.push_back((id, sent));
            if echo {
                p.echoes.borrow_mut().push_back(sent);
            }
        }
        shared.sent.fetch_add(n as u64, Relaxed);
        shared.in_flight.fetch_add(n as i64, Relaxed);
    };
    match ctx.plan.mode {
        SendMode::FlatOut | SendMode::Echo => loop {
            if shared.phase() >= Phase::Drain {
                return;
            }
            let outstanding = if echo { p.echoes.borrow().len() } else { p.pending.borrow().len() };
            let free = window.saturating_sub(outstanding);
            if free > 0 {
                send(free);
            }
            tokio::select! {
                () = p.acked.notified() => {}
                changed = phase.changed() => if changed.is_err() { return },
            }
        },
        SendMode::Rate(per_sec) => {
            let period = Duration::from_secs_f64(1.0 / per_sec.max(1e-3));
            // Publishers start at random points of the period so they do not fire in step.
            let offset = period.mul_f64(rand::random::<f64>());
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if shared.phase() >= Phase::Drain {
                            return;
                        }
                        if p.pending.borrow().len() < window {
                            send(1);
                        } else {
                            shared.skipped.fetch_add(1, Relaxed);
                        }
                    }
                    changed = phase.changed() => if changed.is_err() || shared.phase() >= Phase::Drain { return },
                }
            }
        }
    }
}

/// A stream publisher's sends waiting for a lane, and what a new lane needs to connect.
struct Posts {
    /// Requests not posted yet, oldest first, with their ids.
    queue: RefCell<VecDeque<(u64, Vec<u8>)>>,
    /// Buffers of answered requests, reused for the next ones.
    spare: RefCell<Vec<Vec<u8>>>,
    ready: Notify,
    /// Lanes open (or opening), and those waiting for a request.
    lanes: Cell<usize>,
    idle: Cell<usize>,
    /// Most lanes: the window, at most [`POST_LANES`].
    max_lanes: usize,
    endpoint: SocketAddr,
    session: String,
    token: Option<String>,
}

impl Posts {
    fn push(&self, frame: &[u8], id: u64) {
        let mut buf = self.spare.borrow_mut().pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        self.queue.borrow_mut().push_back((id, buf));
        self.ready.notify_one();
    }
}

/// One keep-alive POST connection of a stream publisher, posting its requests one at a
/// time; when it takes a request while others wait and no lane is free, it opens another.
async fn lane(conn: Option<PostConn>, posts: Rc<Posts>, p: Rc<Publisher>, ctx: Rc<WorkerCtx>, stats: Rc<RefCell<LocalStats>>) {
    let shared = &*ctx.shared;
    let mut conn = match conn {
        Some(conn) => conn,
        None => match PostConn::connect(posts.endpoint, &posts.session, posts.token.as_deref(), ctx.plan.phase_timeout).await {
            Ok(conn) => conn,
            Err(err) => {
                posts.lanes.set(posts.lanes.get() - 1);
                stats.borrow_mut().error(format!("POST lane: {err:#}"));
                return;
            }
        },
    };
    loop {
        let next = posts.queue.borrow_mut().pop_front();
        let Some((id, frame)) = next else {
            posts.idle.set(posts.idle.get() + 1);
            posts.ready.notified().await;
            posts.idle.set(posts.idle.get() - 1);
            continue;
        };
        if !posts.queue.borrow().is_empty() && posts.idle.get() == 0 && posts.lanes.get() < posts.max_lanes {
            posts.lanes.set(posts.lanes.get() + 1);
            tokio::task::spawn_local(lane(None, posts.clone(), p.clone(), ctx.clone(), stats.clone()));
        }
        let answer = conn.call(&frame).await;
        let now = now_ns();
        let mut st = stats.borrow_mut();
        let ok = match answer {
            Ok((200, body)) => match ctx.plan.dialect.classify(body) {
                Incoming::Ack { id: answered, ok } if answered == id => ok,
                other => {
                    st.error(format!("answer to send {id}: {other:?}"));
                    false
                }
            },
            Ok((status, body)) => {
                st.error(format!("send {id}: HTTP {status} {}", String::from_utf8_lossy(body)));
                false
            }
            Err(err) => {
                st.error(format!("send {id}: {err:#}"));
                p.on_ack(id, false, now, shared, &mut st);
                posts.lanes.set(posts.lanes.get() - 1);
                return;
            }
        };
        p.on_ack(id, ok, now, shared, &mut st);
        drop(st);
        posts.spare.borrow_mut().push(frame);
    }
}

/// A connection over the HTTP stream: open it, join with a POST, then read its events; a
/// publisher keeps the join's POST connection as its first lane.
async fn stream_connection(spec: ConnSpec, ctx: Rc<WorkerCtx>, stats: Rc<RefCell<LocalStats>>) {
    let shared = &ctx.shared;
    let dialect = ctx.plan.dialect;
    let permit = shared.gate.acquire().await;
    let opened = http_stream::open(spec.endpoint, spec.token.as_deref(), read_buffer(spec.role), ctx.plan.phase_timeout).await;
    drop(permit);
    let http_stream::Opened { mut stream, mut reader, session } = match opened {
        Ok(opened) => opened,
        Err(err) => {
            shared.connect_failed.fetch_add(1, Relaxed);
            stats.borrow_mut().error(format!("{err:#}"));
            return;
        }
    };
    shared.connected.fetch_add(1, Relaxed);

    let (room, publishes) = match spec.role {
        Role::Subscriber { room } => (Some(room), false),
        Role::Publisher { room } => (Some(room), true),
        Role::Idle => (None, false),
    };
    let mut publisher = None;
    if let Some(room) = room {
        let mut phase = ctx.phase.clone();
        if phase.wait_for(|p| *p >= Phase::Join).await.is_err() {
            return;
        }
        let room_name = format!("{}{room}", ctx.plan.room_prefix);
        let join = async {
            let mut conn = PostConn::connect(spec.endpoint, &session, spec.token.as_deref(), ctx.plan.phase_timeout).await?;
            let mut frame = Vec::with_capacity(128);
            dialect.join(&mut frame, &room_name, 1);
            let (status, body) = conn.call(&frame).await?;
            let ok = status == 200 && matches!(dialect.classify(body), Incoming::Ack { id: 1, ok: true });
            anyhow::ensure!(ok, "join {room_name}: HTTP {status} {}", String::from_utf8_lossy(body));
            Ok(conn)
        };
        let conn = match tokio::time::timeout(ctx.plan.phase_timeout, join).await {
            Ok(Ok(conn)) => conn,
            other => {
                shared.join_failed.fetch_add(1, Relaxed);
                let err = other.map_or_else(|_| "join timed out".to_owned(), |r| r.err().map(|e| format!("{e:#}")).unwrap_or_default());
                stats.borrow_mut().error(err);
                return;
            }
        };
        shared.joined.fetch_add(1, Relaxed);
        if publishes {
            let p = Rc::new(Publisher::new(room, room_name, false));
            let posts = Rc::new(Posts {
                queue: RefCell::new(VecDeque::new()),
                spare: RefCell::new(Vec::new()),
                ready: Notify::new(),
                lanes: Cell::new(1),
                idle: Cell::new(0),
                max_lanes: POST_LANES.min(ctx.plan.window.max(1)),
                endpoint: spec.endpoint,
                session,
                token: spec.token.clone(),
            });
            tokio::task::spawn_local(lane(Some(conn), posts.clone(), p.clone(), ctx.clone(), stats.clone()));
            tokio::task::spawn_local(publish(p.clone(), Outlet::Posts(posts), ctx.clone()));
            publisher = Some(p);
        }
    }
    let subscriber_room = match spec.role {
        Role::Subscriber { room } => Some(room),
        _ => None,
    };
    loop {
        if drain_events(&mut reader, &ctx, &mut stats.borrow_mut(), subscriber_room, publisher.as_deref()) {
            return;
        }
        match reader.fill(&mut stream).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) => {
                stats.borrow_mut().error(format!("{err:#}"));
                return;
            }
        }
    }
}

/// [`drain_frames`] for a stream: every complete `data:` line in the buffer; `true` once
/// `stream.closed` came.
fn drain_events(reader: &mut EventReader, ctx: &WorkerCtx, st: &mut LocalStats, subscriber_room: Option<usize>, publisher: Option<&Publisher>) -> bool {
    let shared = &*ctx.shared;
    let dialect = ctx.plan.dialect;
    let now = now_ns();
    let measure_start = shared.measure_start_ns.load(Relaxed);
    let mut messages = 0u64;
    let mut closed = false;
    while let Some(Line::Data(text)) = reader.next_line() {
        if let Some(code) = http_stream::closed_code(text) {
            *st.closes.entry(code).or_default() += 1;
            closed = true;
            break;
        }
        on_incoming(dialect.classify(text), now, measure_start, ctx, st, subscriber_room, publisher, &mut messages);
    }
    count_received(shared, st, subscriber_room, messages);
    closed
}
