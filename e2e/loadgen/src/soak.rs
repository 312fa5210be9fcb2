//! The hostile-client soak (`loadgen soak --profile full|quick`, `just soak`).
//!
//! One release Confab server with its default limits (SQLite, in-process layer), started
//! here; its users are imported with `confab user import --sessions` (as in the people
//! scenarios), so no login is part of any measurement. Two phases with the same seed:
//!
//! - **baseline**: N well-behaved users in rooms of ~10, each sending a message every few
//!   seconds (the send time in the text, as the benchmark does) and reading everything;
//! - **attack**: the same, while the hostile clients of [`crate::hostile`] run every attack
//!   of the security model in a loop for the whole phase.
//!
//! At the end of a phase every well-behaved client waits for its answers and calls `sync`
//! with the last ids it saw live; the run checks that every room message acknowledged in
//! its room and every direct message acknowledged to it was delivered live or returned by
//! `sync` (lost: none), none twice live, and that no well-behaved socket was closed. The
//! server's peak RSS must stay under a stated bound. The attack phase's p99 delivery latency
//! over the baseline's is reported, and checked (≤ 2×) only in the full profile: it is a
//! timing figure. The soak is a load test, so `just test` does not run it: its checks hold
//! on a machine of its own, and a load beside it (a test suite, a build) is a load on them.
//!
//! The well-behaved clients run on the caller's single-threaded runtime, in one `LocalSet`;
//! the hostile clients on a thread and runtime of their own, so that their work (tens of
//! seconds of CPU in the attack phase) never delays the well-behaved clients' reads, whose
//! delivery latency the soak measures: the figure is the server's, not the load generator's.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rand::{Rng as _, SeedableRng as _};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, watch};

use crate::bench::Profile;
use crate::servers::{self, ConfabBacking, Env};
use crate::ws::{self, Frame, FrameReader, Opcode};
use crate::{clock, hostile, people, procfs};

/// Sizes of a profile.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub users: usize,
    pub hostile: usize,
    pub phase: Duration,
    pub room_size: usize,
    /// Each well-behaved user sends once per `send_every` on average (uniform 0.5× to 1.5×).
    pub send_every: Duration,
    /// Peak server RSS allowed (MiB), from measurement with margin (docs/bench/soak.md).
    pub rss_bound_mib: u64,
}

pub fn size(profile: Profile) -> Size {
    match profile {
        Profile::Full => Size { users: 1_000, hostile: 50, phase: Duration::from_secs(60), room_size: 10, send_every: Duration::from_secs(3), rss_bound_mib: 512 },
        Profile::Quick => Size { users: 200, hostile: 20, phase: Duration::from_secs(15), room_size: 10, send_every: Duration::from_secs(3), rss_bound_mib: 384 },
    }
}

pub struct SoakArgs {
    pub profile: Profile,
    pub env: Env,
    /// Also write the report here (Markdown).
    pub out: Option<PathBuf>,
    pub max_rss_mib: Option<u64>,
    pub seed: u64,
    /// The commit measured, for the report.
    pub commit: String,
    pub command: String,
}

/// Where well-behaved clients connect from: 8 loopback addresses, so that no address holds
/// more than 125 of 1 000 and the per-address socket cap never touches them.
const MEMBER_SOURCES: u8 = 8;
/// Handshakes in flight at once (below the server's 256 pending upgrades).
const CONNECT_CONCURRENCY: usize = 64;
/// How long stragglers have for their answers at the end of a phase, and for `sync`.
const DRAIN: Duration = Duration::from_secs(20);

pub fn member_source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(MEMBER_SOURCES)) as u8))
}

pub fn room_name(k: usize) -> String {
    format!("soak-{k:04}")
}

/// The server's settings: its defaults, over the benchmark environment that turns limits off.
fn default_limits() -> Vec<(&'static str, String)> {
    vec![
        ("CONFAB_RATE_PER_SEC", "50".to_owned()),
        ("CONFAB_WRITE_BYTES_PER_SEC", "32768".to_owned()),
        ("CONFAB_LOGIN_ATTEMPTS", "5".to_owned()),
        ("CONFAB_SIGNUPS_PER_IP", "20".to_owned()),
        ("CONFAB_MAX_SOCKETS_PER_IP", "256".to_owned()),
        ("CONFAB_MAX_SOCKETS_PER_USER", "32".to_owned()),
    ]
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// Where a phase is: the clients follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Connecting,
    Go,
    /// Senders stop; answers still arrive.
    Stop,
    /// Every well-behaved client calls `sync`.
    Sync,
}

/// What the clients of one phase share, across the two threads.
pub struct Phase {
    pub addr: SocketAddr,
    pub stage: watch::Receiver<Stage>,
    pub gate: Semaphore,
    pub rooms: Vec<String>,
    pub shared: std::sync::Mutex<Shared>,
}

#[derive(Default)]
pub struct Shared {
    /// Room message ids the server acknowledged, by room.
    pub acked_room: HashMap<String, Vec<i64>>,
    /// Direct message ids acknowledged to well-behaved users, by recipient.
    pub acked_dm: HashMap<String, Vec<i64>>,
    pub latency_us: Option<Histogram<u64>>,
    pub deliveries: u64,
    /// Well-behaved clients joined and ready; answers still awaited after the stop.
    pub ready: usize,
    pub pending: usize,
    /// Hostile behaviour → what the server did → how often.
    pub tally: BTreeMap<&'static str, BTreeMap<String, u64>>,
    pub errors: Vec<String>,
}

impl Phase {
    /// The shared figures (a panicked client leaves them usable).
    pub fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn count(&self, behaviour: &'static str, outcome: impl Into<String>) {
        *self.shared().tally.entry(behaviour).or_default().entry(outcome.into()).or_default() += 1;
    }

    pub fn error(&self, err: impl std::fmt::Display) {
        let mut shared = self.shared();
        if shared.errors.len() < 20 {
            shared.errors.push(err.to_string());
        }
    }

    pub fn stage(&self) -> Stage {
        *self.stage.borrow()
    }
}

/// One phase's figures.
#[derive(Debug, Default)]
pub struct PhaseReport {
    pub name: &'static str,
    pub deliveries: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub acked_room: usize,
    pub acked_dm: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub returned_by_sync: usize,
    pub member_closes: BTreeMap<u16, usize>,
    pub member_failures: usize,
    pub rss_start_mib: f64,
    pub rss_peak_mib: f64,
    /// The peak of each quarter of the phase.
    pub rss_quarters_mib: [f64; 4],
    pub server_cpu_secs: f64,
    pub loadgen_cpu_secs: f64,
    pub cpu_us_per_delivery: Option<f64>,
    pub tally: BTreeMap<&'static str, BTreeMap<String, u64>>,
    pub real_login: Option<String>,
    /// The server's own counters (`/metrics`) over the phase: evictions, refusals, …
    pub server_counters: BTreeMap<String, u64>,
    pub load_average: String,
    pub errors: Vec<String>,
    pub examples_lost: Vec<String>,
}

/// Runs the soak; `Ok(false)` when a check failed (the report says which).
pub async fn run(args: SoakArgs) -> anyhow::Result<bool> {
    clock::init();
    let size = size(args.profile);
    let bound = args.max_rss_mib.unwrap_or(size.rss_bound_mib);
    let env = &args.env;
    anyhow::ensure!(env.confab_bin.exists(), "{} not found (bash scripts/build.sh server)", env.confab_bin.display());
    let dir = env.work_dir.join("soak");
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let backing = ConfabBacking::default();
    let port = servers::free_port()?;
    let started = Instant::now();
    let people = people::import(env, &backing, port, &dir, size.users + size.hostile).await.context("importing the users")?;
    let (server, addr) = servers::confab_at(env, "soak", &backing, port, &data, &default_limits()).await?;
    let (members, hostiles) = people.split_at(size.users);
    let rooms: Vec<String> = (0..size.users.div_ceil(size.room_size)).map(room_name).collect();

    let mut reports = Vec::new();
    for (name, attack) in [("baseline", false), ("attack", true)] {
        eprintln!("soak: {name} phase, {} well-behaved{} for {} s", members.len(), if attack { format!(" + {} hostile", hostiles.len()) } else { String::new() }, size.phase.as_secs());
        let local = tokio::task::LocalSet::new();
        let report = local.run_until(phase(name, addr, server.pid, &size, &rooms, members, if attack { hostiles } else { &[] }, args.seed)).await?;
        eprintln!("{}", one_line(&report));
        reports.push(report);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    let checks = checks(&reports, bound, args.profile);
    let md = markdown(&args, &size, bound, &reports, &checks, started.elapsed());
    println!("{md}");
    if let Some(out) = &args.out {
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(out, &md).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("soak: wrote {}", out.display());
    }
    let failed: Vec<&Check> = checks.iter().filter(|c| c.met == Some(false)).collect();
    for c in &failed {
        eprintln!("soak: FAILED: {}: {}", c.what, c.measured);
    }
    Ok(failed.is_empty())
}

#[allow(clippy::too_many_arguments)]
async fn phase(
    name: &'static str,
    addr: SocketAddr,
    server_pid: u32,
    size: &Size,
    rooms: &[String],
    members: &[(String, String)],
    hostiles: &[(String, String)],
    seed: u64,
) -> anyhow::Result<PhaseReport> {
    let (stage_tx, stage_rx) = watch::channel(Stage::Connecting);
    let shared = Shared { latency_us: Histogram::new_with_bounds(1, 100_000_000, 3).ok(), ..Shared::default() };
    let ctx = Arc::new(Phase { addr, stage: stage_rx, gate: Semaphore::new(CONNECT_CONCURRENCY), rooms: rooms.to_vec(), shared: std::sync::Mutex::new(shared) });
    let mut report = PhaseReport { name, load_average: people::load_average(), ..PhaseReport::default() };
    report.rss_start_mib = procfs::rss_kib(server_pid).unwrap_or(0) as f64 / 1024.0;

    // Victims of the direct-message flood: one well-behaved user in twenty.
    let victims: Vec<String> = members.iter().step_by(20).map(|m| m.0.clone()).collect();
    let tasks: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(i, (user, token))| {
            let plan = MemberPlan { i, user: user.clone(), token: token.clone(), room: rooms[i / size.room_size % rooms.len()].clone(), send_every: size.send_every, seed: seed.wrapping_add(i as u64) };
            tokio::task::spawn_local(member(plan, ctx.clone()))
        })
        .collect();
    let limit = Instant::now() + Duration::from_secs(120);
    while ctx.shared().ready < members.len() {
        if tasks.iter().any(tokio::task::JoinHandle::is_finished) || Instant::now() > limit {
            let ready = ctx.shared().ready;
            ctx.error(format!("only {ready} of {} well-behaved clients joined before the phase started", members.len()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Sampled from here: RSS every 100 ms, CPU over the phase.
    // The peak of each quarter of the phase (and of the drain after it, in the last):
    // a bound that holds reaches a plateau rather than climbing to the end.
    let quarters = Rc::new(RefCell::new([0u64; 4]));
    let sampler = {
        let (quarters, t0, phase) = (quarters.clone(), Instant::now(), size.phase);
        tokio::task::spawn_local(async move {
            loop {
                let q = ((t0.elapsed().as_secs_f64() / phase.as_secs_f64() * 4.0) as usize).min(3);
                let rss = procfs::rss_kib(server_pid).unwrap_or(0);
                let mut quarters = quarters.borrow_mut();
                quarters[q] = quarters[q].max(rss);
                drop(quarters);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let counters0 = server_counters(addr).await;
    let cpu0 = procfs::cpu_secs(server_pid).unwrap_or(0.0);
    let me0 = procfs::cpu_secs(std::process::id()).unwrap_or(0.0);
    let _ = stage_tx.send(Stage::Go);
    let attackers = if hostiles.is_empty() { None } else { Some(attack(ctx.clone(), victims.clone(), hostiles.to_vec())?) };
    if !hostiles.is_empty() {
        // Halfway through the attack a real user logs in from an address of its own.
        tokio::time::sleep(size.phase / 2).await;
        let user = &members[members.len() - 1].0;
        report.real_login = Some(hostile::real_login(addr, user).await);
        tokio::time::sleep(size.phase / 2).await;
    } else {
        tokio::time::sleep(size.phase).await;
    }
    let _ = stage_tx.send(Stage::Stop);
    report.server_cpu_secs = procfs::cpu_secs(server_pid).unwrap_or(0.0) - cpu0;
    report.loadgen_cpu_secs = procfs::cpu_secs(std::process::id()).unwrap_or(0.0) - me0;
    if let Some(done) = attackers {
        if tokio::time::timeout(Duration::from_secs(15), done).await.is_err() {
            ctx.error("the hostile clients did not stop within 15 s");
        }
    }
    let deadline = Instant::now() + DRAIN;
    while ctx.shared().pending > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stage_tx.send(Stage::Sync);
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        match tokio::time::timeout(DRAIN + Duration::from_secs(10), t).await {
            Ok(Ok(outcome)) => outcomes.push(outcome),
            Ok(Err(err)) => ctx.error(format!("a well-behaved client panicked: {err}")),
            Err(_) => ctx.error("a well-behaved client did not finish its sync in time"),
        }
    }
    sampler.abort();
    for (k, v) in server_counters(addr).await {
        let delta = v.saturating_sub(counters0.get(&k).copied().unwrap_or(0));
        if delta > 0 {
            report.server_counters.insert(k, delta);
        }
    }
    let quarters = *quarters.borrow();
    report.rss_quarters_mib = quarters.map(|k| k as f64 / 1024.0);
    report.rss_peak_mib = quarters.into_iter().max().unwrap_or(0).max(procfs::rss_kib(server_pid).unwrap_or(0)) as f64 / 1024.0;

    let shared = std::mem::take(&mut *ctx.shared());
    tally_losses(&shared, &outcomes, &mut report);
    report.member_failures += members.len() - outcomes.len();
    report.deliveries = shared.deliveries;
    if let Some(h) = &shared.latency_us {
        report.p50_ms = h.value_at_quantile(0.5) as f64 / 1000.0;
        report.p99_ms = h.value_at_quantile(0.99) as f64 / 1000.0;
        report.max_ms = h.max() as f64 / 1000.0;
    }
    if report.deliveries > 0 {
        report.cpu_us_per_delivery = Some(report.server_cpu_secs * 1e6 / report.deliveries as f64);
    }
    report.tally = shared.tally;
    report.errors = shared.errors;
    report.load_average = format!("{} → {}", report.load_average, people::load_average());
    Ok(report)
}

/// The server's counters from `GET /metrics` that say what it refused or closed.
/// Starts the hostile clients on a thread and runtime of their own; the receiver hears when
/// all of them have stopped (after the stage turns to `Stop`).
fn attack(ctx: Arc<Phase>, victims: Vec<String>, hostiles: Vec<(String, String)>) -> anyhow::Result<tokio::sync::oneshot::Receiver<()>> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("hostile".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(err) => return ctx.error(format!("the hostile clients' runtime did not start: {err}")),
        };
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let tasks: Vec<_> = hostiles
                .iter()
                .enumerate()
                .map(|(h, (user, token))| tokio::task::spawn_local(hostile::run(h, user.clone(), token.clone(), ctx.clone(), victims.clone(), hostiles.clone())))
                .collect();
            for task in tasks {
                if let Err(err) = task.await {
                    ctx.error(format!("a hostile client panicked: {err}"));
                }
            }
        });
        let _ = done_tx.send(());
    })?;
    Ok(done_rx)
}

async fn server_counters(addr: SocketAddr) -> BTreeMap<String, u64> {
    const WANTED: [&str; 4] = ["confab_evictions_total", "confab_dropped_frames_total", "confab_sockets_refused_total", "confab_rpc_errors_total"];
    let Ok(http) = reqwest::Client::builder().timeout(Duration::from_secs(10)).build() else { return BTreeMap::new() };
    let text = match http.get(format!("http://{addr}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => return BTreeMap::new(),
    };
    text.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            WANTED.contains(&name).then(|| Some((name.to_owned(), value.trim().parse().ok()?)))?
        })
        .collect()
}

/// Lost: acknowledged, but neither delivered live nor returned by `sync`.
fn tally_losses(shared: &Shared, outcomes: &[MemberOutcome], report: &mut PhaseReport) {
    report.acked_room = shared.acked_room.values().map(Vec::len).sum();
    report.acked_dm = shared.acked_dm.values().map(Vec::len).sum();
    for o in outcomes {
        report.duplicated += o.duplicated;
        if let Some(code) = o.closed {
            *report.member_closes.entry(code).or_default() += 1;
        }
        if !o.synced {
            report.member_failures += 1;
        }
        let expected_room = shared.acked_room.get(&o.room).map_or(&[][..], Vec::as_slice);
        let expected_dm = shared.acked_dm.get(&o.user).map_or(&[][..], Vec::as_slice);
        for (kind, expected, live, synced) in [("room", expected_room, &o.live_room, &o.synced_room), ("dm", expected_dm, &o.live_dm, &o.synced_dm)] {
            for id in expected {
                if !live.contains(id) {
                    if synced.contains(id) {
                        report.returned_by_sync += 1;
                    } else {
                        report.lost += 1;
                        if report.examples_lost.len() < 5 {
                            report.examples_lost.push(format!("{kind} message {id} to {} ({})", o.user, o.room));
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A connection
// ---------------------------------------------------------------------------------------------

/// One WebSocket of the soak: frames in as owned bytes, masked frames out.
pub struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    reader: FrameReader,
    out: Vec<u8>,
}

pub enum Event {
    Text(Vec<u8>),
    Ping(Vec<u8>),
    Closed(u16),
}

impl Conn {
    /// Opens a socket from `source`, authenticated with `token` or anonymous; the error
    /// names the refusal (`429`, `503`, …) when the upgrade was refused.
    pub async fn open(ctx: &Phase, source: IpAddr, token: Option<&str>, recv_buffer: Option<u32>) -> Result<Self, String> {
        let headers = match token {
            Some(t) => format!("Sec-WebSocket-Protocol: confab.v1\r\nAuthorization: Bearer {t}\r\n"),
            None => "Sec-WebSocket-Protocol: confab.v1\r\n".to_owned(),
        };
        let connected = {
            let _permit = ctx.gate.acquire().await.map_err(|e| e.to_string())?;
            ws::connect_tuned(Some(source), recv_buffer, ctx.addr, "/ws", &headers, Duration::from_secs(30)).await
        };
        let (stream, leftover) = connected.map_err(|err| refusal(&format!("{err:#}")))?;
        let (rd, wr) = stream.into_split();
        Ok(Self { rd, wr, reader: FrameReader::new(64 * 1024, &leftover), out: Vec::with_capacity(1024) })
    }

    pub async fn send(&mut self, text: &[u8]) -> std::io::Result<()> {
        self.out.clear();
        ws::encode(&mut self.out, Opcode::Text, text, rand::random());
        self.wr.write_all(&self.out).await
    }

    pub async fn pong(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.out.clear();
        ws::encode(&mut self.out, Opcode::Pong, payload, rand::random());
        self.wr.write_all(&self.out).await
    }

    /// The next frame; cancel-safe (a cancelled call loses nothing: reads are).
    pub async fn next(&mut self) -> Event {
        loop {
            match self.reader.next_frame() {
                Ok(Some(Frame::Text(t))) => return Event::Text(t.to_vec()),
                Ok(Some(Frame::Ping(p))) => return Event::Ping(p.to_vec()),
                Ok(Some(Frame::Close(code))) => return Event::Closed(code),
                Ok(Some(Frame::Binary(_))) => continue,
                Ok(None) => {}
                Err(_) => return Event::Closed(1002),
            }
            match self.reader.fill(&mut self.rd).await {
                Ok(0) | Err(_) => return Event::Closed(1006),
                Ok(_) => {}
            }
        }
    }

    /// Reads (and drops) everything until the close frame or the end of the stream, at most
    /// `limit`: how a socket that stopped reading learns why it was closed.
    pub async fn close_code(&mut self, limit: Duration) -> Option<u16> {
        tokio::time::timeout(limit, async {
            loop {
                match self.next().await {
                    Event::Closed(code) => return code,
                    Event::Text(_) | Event::Ping(_) => {}
                }
            }
        })
        .await
        .ok()
    }
}

/// `upgrade refused: HTTP/1.1 429 Too Many Requests` → `429`.
fn refusal(err: &str) -> String {
    match err.split_once("upgrade refused: HTTP/1.1 ") {
        Some((_, rest)) => format!("upgrade {}", rest.split_whitespace().next().unwrap_or("?")),
        None => format!("connect failed: {}", err.lines().next().unwrap_or(err)),
    }
}

pub fn request(id: u64, method: &str, params: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string().into_bytes()
}

/// A frame from the server: an answer or a notification.
#[derive(Deserialize, Debug)]
pub struct Reply {
    pub id: Option<u64>,
    pub method: Option<String>,
    pub params: Option<Value>,
    pub result: Option<Value>,
    pub error: Option<RpcError>,
}

#[derive(Deserialize, Debug)]
pub struct RpcError {
    pub code: i64,
}

/// The answers and notifications in a frame (a batch's answer is an array).
pub fn replies(text: &[u8]) -> Vec<Reply> {
    if text.first() == Some(&b'[') {
        serde_json::from_slice(text).unwrap_or_default()
    } else {
        serde_json::from_slice(text).map(|r| vec![r]).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Well-behaved clients
// ---------------------------------------------------------------------------------------------

struct MemberPlan {
    i: usize,
    user: String,
    token: String,
    room: String,
    send_every: Duration,
    seed: u64,
}

/// What one well-behaved client saw.
#[derive(Default)]
struct MemberOutcome {
    user: String,
    room: String,
    live_room: HashSet<i64>,
    live_dm: HashSet<i64>,
    synced_room: HashSet<i64>,
    synced_dm: HashSet<i64>,
    duplicated: usize,
    closed: Option<u16>,
    synced: bool,
}

const JOIN_ID: u64 = 1;
const SYNC_ID: u64 = 2;

/// One well-behaved user: joins its room, sends every few seconds, reads everything, and
/// at the end calls `sync` with the last ids it saw.
async fn member(plan: MemberPlan, ctx: Arc<Phase>) -> MemberOutcome {
    let mut o = MemberOutcome { user: plan.user.clone(), room: plan.room.clone(), ..MemberOutcome::default() };
    let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed);
    let mut conn = match Conn::open(&ctx, member_source(plan.i), Some(&plan.token), None).await {
        Ok(c) => c,
        Err(err) => {
            ctx.error(format!("{}: {err}", plan.user));
            return o;
        }
    };
    let mut stage = ctx.stage.clone();
    if conn.send(&request(JOIN_ID, "room.join", json!({"room": plan.room, "history": 1}))).await.is_err() {
        o.closed = Some(1006);
        return o;
    }
    let (mut room_after, mut dm_after) = (None::<i64>, 0i64);
    let mut next_id = 10u64;
    let mut pending: HashSet<u64> = HashSet::new();
    let mut joined = false;
    let mut syncing = false;
    let mut next_send = tokio::time::Instant::now() + plan.send_every.mul_f64(rng.r#gen::<f64>());
    loop {
        let sending = joined && ctx.stage() == Stage::Go;
        let event = tokio::select! {
            ev = conn.next() => ev,
            () = tokio::time::sleep_until(next_send), if sending => {
                let text = format!("lg:{}{}", clock::now_ns(), crate::dialect::TEXT_TAIL);
                next_id += 1;
                if conn.send(&request(next_id, "room.send", json!({"room": plan.room, "text": text}))).await.is_err() {
                    o.closed = Some(1006);
                    break;
                }
                pending.insert(next_id);
                ctx.shared().pending += 1;
                next_send += plan.send_every.mul_f64(0.5 + rng.r#gen::<f64>());
                continue;
            }
            changed = stage.changed() => {
                if changed.is_err() {
                    break;
                }
                if *stage.borrow() == Stage::Sync && !syncing {
                    syncing = true;
                    let after = room_after.unwrap_or(0);
                    if conn.send(&request(SYNC_ID, "sync", json!({"rooms": {plan.room.as_str(): after}, "dm_after": dm_after}))).await.is_err() {
                        o.closed = Some(1006);
                        break;
                    }
                }
                continue;
            }
        };
        let text = match event {
            Event::Text(t) => t,
            Event::Ping(p) => {
                if conn.pong(&p).await.is_err() {
                    o.closed = Some(1006);
                    break;
                }
                continue;
            }
            Event::Closed(code) => {
                o.closed = Some(code);
                break;
            }
        };
        for reply in replies(&text) {
            match (reply.id, reply.method.as_deref()) {
                (Some(JOIN_ID), _) => {
                    joined = true;
                    // The newest message before the phase: `sync` starts after it.
                    let last = reply.result.as_ref().and_then(|r| r.get("history")).and_then(Value::as_array).and_then(|h| h.iter().filter_map(|m| m.get("id")?.as_i64()).max());
                    room_after = Some(last.unwrap_or(0));
                    if reply.error.is_some() {
                        ctx.error(format!("{} could not join {}: {:?}", plan.user, plan.room, reply.error));
                    }
                    ctx.shared().ready += 1;
                }
                (Some(SYNC_ID), _) => {
                    let Some(result) = reply.result else {
                        ctx.error(format!("{}: sync failed: {:?}", plan.user, reply.error));
                        return finish(o, pending.len(), &ctx);
                    };
                    for m in result.get("messages").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(id) = m.get("id").and_then(Value::as_i64) {
                            o.synced_room.insert(id);
                            room_after = Some(room_after.unwrap_or(0).max(id));
                        }
                    }
                    for m in result.get("dms").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(id) = m.get("id").and_then(Value::as_i64) {
                            o.synced_dm.insert(id);
                            dm_after = dm_after.max(id);
                        }
                    }
                    if result.get("complete").and_then(Value::as_bool) == Some(false) {
                        let after = room_after.unwrap_or(0);
                        if conn.send(&request(SYNC_ID, "sync", json!({"rooms": {plan.room.as_str(): after}, "dm_after": dm_after}))).await.is_err() {
                            o.closed = Some(1006);
                            break;
                        }
                    } else {
                        o.synced = true;
                        return finish(o, pending.len(), &ctx);
                    }
                }
                (Some(id), _) => {
                    if pending.remove(&id) {
                        ctx.shared().pending -= 1;
                    }
                    match reply.result.as_ref().and_then(|r| r.get("id")).and_then(Value::as_i64) {
                        Some(mid) => ctx.shared().acked_room.entry(plan.room.clone()).or_default().push(mid),
                        None => ctx.error(format!("{}: room.send failed: {:?}", plan.user, reply.error)),
                    }
                }
                (None, Some("room.message")) => {
                    let Some(params) = reply.params else { continue };
                    let Some(id) = params.get("id").and_then(Value::as_i64) else { continue };
                    if !o.live_room.insert(id) {
                        o.duplicated += 1;
                    }
                    room_after = Some(room_after.unwrap_or(0).max(id));
                    let sent = params.get("text").and_then(Value::as_str).and_then(|t| t.strip_prefix("lg:")?.split(':').next()?.parse::<u64>().ok());
                    let mut shared = ctx.shared();
                    shared.deliveries += 1;
                    if let (Some(sent), Some(h)) = (sent, shared.latency_us.as_mut()) {
                        let _ = h.record((clock::now_ns().saturating_sub(sent) / 1000).max(1));
                    }
                }
                (None, Some("dm.message")) => {
                    let Some(params) = reply.params else { continue };
                    if params.get("to").and_then(Value::as_str) != Some(plan.user.as_str()) {
                        continue;
                    }
                    if let Some(id) = params.get("id").and_then(Value::as_i64) {
                        if !o.live_dm.insert(id) {
                            o.duplicated += 1;
                        }
                        dm_after = dm_after.max(id);
                    }
                }
                _ => {}
            }
        }
    }
    finish(o, pending.len(), &ctx)
}

fn finish(o: MemberOutcome, pending: usize, ctx: &Phase) -> MemberOutcome {
    let mut shared = ctx.shared();
    shared.pending = shared.pending.saturating_sub(pending);
    o
}

// ---------------------------------------------------------------------------------------------
// Checks and the report
// ---------------------------------------------------------------------------------------------

pub struct Check {
    pub what: String,
    pub measured: String,
    /// `None`: reported, not checked.
    pub met: Option<bool>,
}

fn checks(reports: &[PhaseReport], bound: u64, profile: Profile) -> Vec<Check> {
    let mut out = Vec::new();
    for r in reports {
        out.push(Check { what: format!("{}: nothing lost", r.name), measured: format!("{} lost of {} room + {} direct messages ({} returned by sync){}", r.lost, r.acked_room, r.acked_dm, r.returned_by_sync, if r.examples_lost.is_empty() { String::new() } else { format!(", e.g. {}", r.examples_lost.join("; ")) }), met: Some(r.lost == 0) });
        out.push(Check { what: format!("{}: nothing delivered twice live", r.name), measured: r.duplicated.to_string(), met: Some(r.duplicated == 0) });
        let closes: usize = r.member_closes.values().sum();
        out.push(Check {
            what: format!("{}: no well-behaved socket closed or failed", r.name),
            measured: format!("{closes} closed {:?}, {} failed (connect, join or sync)", r.member_closes, r.member_failures),
            met: Some(closes == 0 && r.member_failures == 0),
        });
        out.push(Check { what: format!("{}: server peak RSS ≤ {bound} MiB", r.name), measured: format!("{:.0} MiB", r.rss_peak_mib), met: Some(r.rss_peak_mib <= bound as f64) });
        if let Some(login) = &r.real_login {
            out.push(Check { what: format!("{}: a real login succeeds during the attack", r.name), measured: login.clone(), met: Some(login.starts_with("ok")) });
        }
    }
    if let [base, attack] = reports {
        let ratio = attack.p99_ms / base.p99_ms.max(0.001);
        out.push(Check {
            what: "attack p99 ≤ 2× baseline p99".to_owned(),
            measured: format!("{:.1} ms / {:.1} ms = {ratio:.2}×", attack.p99_ms, base.p99_ms),
            met: (profile == Profile::Full).then_some(ratio <= 2.0),
        });
    }
    out
}

fn one_line(r: &PhaseReport) -> String {
    format!(
        "soak: {}: {} deliveries, p50 {:.1} ms, p99 {:.1} ms, lost {}, dup {}, closes {:?}, failures {}, RSS {:.0} → peak {:.0} MiB, server CPU {:.1} s, loadgen CPU {:.1} s",
        r.name, r.deliveries, r.p50_ms, r.p99_ms, r.lost, r.duplicated, r.member_closes, r.member_failures, r.rss_start_mib, r.rss_peak_mib, r.server_cpu_secs, r.loadgen_cpu_secs
    )
}

fn markdown(args: &SoakArgs, size: &Size, bound: u64, reports: &[PhaseReport], checks: &[Check], wall: Duration) -> String {
    let mut md = String::from("# Soak: well-behaved clients under attack\n\n");
    let profile = if args.profile == Profile::Full { "full" } else { "quick" };
    let _ = writeln!(
        md,
        "`{}` (profile {profile}), commit `{}`, {}, {} s in all. One release Confab server, SQLite, in-process layer, default limits (50 calls/s per socket, 32 KiB/s of message text per user, 256 sockets per address, 32 per user, 5 failed logins, 20 sign-ups per address, 4 MiB queued per socket); {} well-behaved users in rooms of {}, each sending every {:.1} s on average and reading everything; {} hostile clients in the attack phase; {} s per phase, seed {}. Server and load generator unpinned on {} CPUs. The RSS bound, {bound} MiB, is the measured peak with a wide margin (the peak of each quarter of the attack phase, below, shows it levels off).\n",
        args.command,
        args.commit,
        chrono::Local::now().format("%Y-%m-%d %H:%M"),
        wall.as_secs(),
        size.users,
        size.room_size,
        size.send_every.as_secs_f64(),
        size.hostile,
        size.phase.as_secs(),
        args.seed,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    md.push_str("## Checks\n\n| check | measured | met |\n|---|---|---|\n");
    for c in checks {
        let met = match c.met {
            Some(true) => "yes",
            Some(false) => "**NO**",
            None => "reported only",
        };
        let _ = writeln!(md, "| {} | {} | {met} |", c.what, c.measured.replace('|', "/"));
    }
    md.push_str("\n## Phases\n\n| phase | deliveries | p50 | p99 | max | acked room / DM | by sync | peak RSS | server CPU | per delivery | load generator CPU | load average |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in reports {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} / {} | {} | {:.0} MiB (from {:.0}) | {:.1} s | {} | {:.1} s | {} |",
            r.name,
            r.deliveries,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.acked_room,
            r.acked_dm,
            r.returned_by_sync,
            r.rss_peak_mib,
            r.rss_start_mib,
            r.server_cpu_secs,
            r.cpu_us_per_delivery.map_or("-".into(), |v| format!("{v:.0} µs")),
            r.loadgen_cpu_secs,
            r.load_average
        );
    }
    for r in reports {
        let q = r.rss_quarters_mib;
        let _ = writeln!(md, "\nServer RSS ({}), peak of each quarter of the phase: {:.0}, {:.0}, {:.0}, {:.0} MiB.", r.name, q[0], q[1], q[2], q[3]);
    }
    for r in reports {
        let phase_secs = args_phase_secs(size);
        if r.loadgen_cpu_secs > 0.9 * phase_secs {
            let _ = writeln!(md, "\nThe load generator ({}) used {:.1} s of CPU in {phase_secs:.0} s, nearly a whole core: it may have been the bottleneck, and latencies include its queueing.", r.name, r.loadgen_cpu_secs);
        }
    }
    if let Some(attack) = reports.iter().find(|r| !r.tally.is_empty()) {
        md.push_str("\n## What the server did to each attack\n\n| behaviour | outcome: count |\n|---|---|\n");
        for (behaviour, outcomes) in &attack.tally {
            let list: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = writeln!(md, "| {behaviour} | {} |", list.join(", ").replace('|', "/"));
        }
        let counters: Vec<String> = attack.server_counters.iter().map(|(k, v)| format!("`{k}` +{v}")).collect();
        let _ = writeln!(md, "| the server's counters (`/metrics`) over the phase | {} |", counters.join(", "));
        md.push_str(&hostile::legend());
    }
    for r in reports {
        for e in &r.errors {
            let _ = writeln!(md, "\n- ({}) {}", r.name, e.replace('\n', " "));
        }
    }
    md
}

fn args_phase_secs(size: &Size) -> f64 {
    size.phase.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(user: &str, room: &str, live: &[i64], synced: &[i64]) -> MemberOutcome {
        MemberOutcome {
            user: user.to_owned(),
            room: room.to_owned(),
            live_room: live.iter().copied().collect(),
            synced_room: synced.iter().copied().collect(),
            synced: true,
            ..MemberOutcome::default()
        }
    }

    #[test]
    fn a_message_neither_delivered_live_nor_returned_by_sync_is_lost() {
        let mut shared = Shared::default();
        shared.acked_room.insert("r".into(), vec![1, 2, 3]);
        shared.acked_dm.insert("v".into(), vec![7]);
        let outcomes = [outcome("a", "r", &[1, 2], &[3]), outcome("b", "r", &[1], &[]), outcome("v", "other", &[], &[])];
        let mut report = PhaseReport::default();
        tally_losses(&shared, &outcomes, &mut report);
        // b misses 2 and 3; v misses its direct message 7; a got 3 by sync.
        assert_eq!((report.lost, report.returned_by_sync), (3, 1));
        assert_eq!(report.examples_lost.len(), 3);
    }

    #[test]
    fn a_client_that_never_finished_its_sync_counts_as_failed() {
        let mut unsynced = outcome("a", "r", &[], &[]);
        unsynced.synced = false;
        unsynced.closed = Some(1013);
        let mut report = PhaseReport::default();
        tally_losses(&Shared::default(), &[unsynced], &mut report);
        assert_eq!(report.member_failures, 1);
        assert_eq!(report.member_closes.get(&1013), Some(&1));
    }

    #[test]
    fn a_refused_upgrade_is_named_by_its_status() {
        assert_eq!(refusal("upgrade refused: HTTP/1.1 429 Too Many Requests"), "upgrade 429");
        assert!(refusal("connect 127.0.0.1:1: refused").starts_with("connect failed"));
    }

    #[test]
    fn a_batch_answer_is_read_as_its_replies_and_garbage_as_none() {
        let batch = br#"[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"error":{"code":-32029,"message":"rate limited"}}]"#;
        let got = replies(batch);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].error.as_ref().map(|e| e.code), Some(-32029));
        assert!(replies(b"not json").is_empty());
    }

    #[test]
    fn the_attack_p99_ratio_is_checked_only_in_the_full_profile() {
        let base = PhaseReport { name: "baseline", p99_ms: 10.0, ..PhaseReport::default() };
        let attack = PhaseReport { name: "attack", p99_ms: 50.0, ..PhaseReport::default() };
        let reports = [base, attack];
        let ratio = |p| checks(&reports, 1_000, p).into_iter().find(|c| c.what.contains("p99")).and_then(|c| c.met);
        assert_eq!(ratio(Profile::Quick), None);
        assert_eq!(ratio(Profile::Full), Some(false));
    }
}
