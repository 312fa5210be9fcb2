//! The people-scale scenarios: many *distinct* users, one socket each.
//!
//! - (g) presence storm: N users (1 000, 10 000, 100 000) come online at once, each socket
//!   watching 50 others (`presence.watch`); server CPU per connecting user, and its ratio
//!   between sizes (flat = O(N × k) presence work, growing = O(N²)).
//! - (h) N idle authenticated connections of distinct users: RSS per connection and the time
//!   to connect them all.
//! - (r) a restart (SIGTERM, start again on the same port and data) with N connected
//!   clients that reconnect with the SPA's policy (`confab_shared::rpc::reconnect`): time
//!   until every client is back and the online count is right.
//!
//! Users are not signed up one by one (argon2 would dominate): the run writes a JSON-lines
//! file and runs `confab user import --sessions` before the server starts, which stores the
//! accounts and one session each in the server's database and writes their tokens, signed
//! with the secret the benchmark configures the server with. Nothing here is a server
//! backdoor: it is the import command an operator has.
//!
//! A process cannot hold more sockets than its descriptor limit (`RLIMIT_NOFILE`), and
//! both the server and the load generator hold one per connection: sizes above the limit
//! run at the largest size that fits, and the run says so.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use confab_shared::rpc::reconnect;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{Semaphore, watch};

use crate::bench::{Profile, Status, TargetCheck};
use crate::procfs;
use crate::servers::{self, ConfabBacking, Env};
use crate::ws::{self, Frame, FrameReader, Opcode};

/// Users each socket watches in (g) and (r).
pub const WATCH: usize = 50;
/// Client source addresses: ~28 000 ephemeral ports each towards one server port.
const SOURCES: u8 = 8;
/// Handshakes the load generator has in flight at once.
const CONNECT_CONCURRENCY: usize = 256;
/// Descriptors kept free for everything that is not a benchmark socket.
const FD_HEADROOM: usize = 1_000;
/// The password of every imported user (they share one hash: bench data only).
pub const PASSWORD: &str = "people-bench-password";
/// (l): REST clients signing up and logging in at once: more than the hashing queue
/// admits, so some are told 503 + `Retry-After` and retry, as a real client would.
const LOGIN_CLIENTS: usize = 64;

/// One people-scale scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeopleScenario {
    pub id: String,
    pub title: String,
    /// Distinct users, one socket each.
    pub users: usize,
    /// Users each socket watches.
    pub watch: usize,
    /// Restart the server once everyone is online and measure the way back.
    pub restart: bool,
    /// (l): instead of sockets, this many sign-ups and logins over REST, for the RSS they leave.
    #[serde(default)]
    pub logins: usize,
}

pub fn catalog(profile: Profile) -> Vec<PeopleScenario> {
    let g = |users: usize| PeopleScenario {
        id: format!("g-{}", short(users)),
        title: format!("presence storm: {users} distinct users come online, each watching {WATCH}"),
        users,
        watch: WATCH,
        restart: false,
        logins: 0,
    };
    let h = |users: usize| PeopleScenario {
        id: "h".into(),
        title: format!("{users} idle authenticated connections of distinct users"),
        users,
        watch: 0,
        restart: false,
        logins: 0,
    };
    let r = |users: usize| PeopleScenario {
        id: "r".into(),
        title: format!("restart with {users} connected clients (each watching {WATCH})"),
        users,
        watch: WATCH,
        restart: true,
        logins: 0,
    };
    let l = |logins: usize| PeopleScenario {
        id: "l".into(),
        title: format!("{logins} sign-ups and logins ({LOGIN_CLIENTS} clients at once), then RSS"),
        users: 0,
        watch: 0,
        restart: false,
        logins,
    };
    match profile {
        Profile::Full => vec![l(5_000), g(1_000), g(10_000), g(100_000), h(100_000), r(10_000)],
        Profile::Quick => vec![l(200), g(200), g(1_000), h(2_000), r(1_000)],
    }
}

fn short(n: usize) -> String {
    if n >= 1_000 && n.is_multiple_of(1_000) { format!("{}k", n / 1_000) } else { n.to_string() }
}

/// What one scenario measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PeopleRun {
    pub scenario: String,
    pub title: String,
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The size asked for, and the size run (smaller when descriptors ran out).
    pub requested_users: usize,
    pub users: usize,
    pub watch: usize,
    /// `confab user import --sessions` of the users (not part of any measurement).
    pub import_secs: f64,
    /// From the first connect to the last `presence.watch` answer (or open socket).
    pub online_secs: f64,
    pub connected: usize,
    pub connect_failures: usize,
    pub watch_ok: usize,
    /// `presence.watch` answered -32601: the server does not have it yet.
    pub watch_unsupported: usize,
    pub watch_errors: usize,
    /// `presence.changed` frames received by all sockets during the phase.
    pub presence_frames: u64,
    /// Server CPU (utime + stime) from the first connect until presence traffic is quiet.
    pub server_cpu_secs: f64,
    pub server_cpu_us_per_user: Option<f64>,
    pub loadgen_cpu_secs: f64,
    /// The phase ended at its time limit before everyone was online.
    pub timed_out: bool,
    pub server_rss_idle_kib: u64,
    pub server_rss_online_kib: u64,
    pub rss_per_connection_bytes: Option<f64>,
    /// (r): SIGTERM → every client reconnected (and watching again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_secs: Option<f64>,
    /// (r): SIGTERM → the new instance reports every user online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_secs: Option<f64>,
    /// (r): the online count the new instance reported last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_after_restart: Option<u64>,
    /// (r): server CPU of the new instance while its clients came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_cpu_secs: Option<f64>,
    /// (l): sign-ups + logins done, and the 503 answers (hashing queue full) retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logins_done: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_answers: Option<usize>,
    pub closes: BTreeMap<u16, usize>,
    pub load_average: String,
    pub wall_secs: f64,
    pub errors: Vec<String>,
    pub notes: Vec<String>,
}

/// Runs the people scenarios `only` selects (all when it names none of them).
pub async fn run_all(env: &Env, profile: Profile, only: &[String], budget: Duration) -> Vec<PeopleRun> {
    let started = Instant::now();
    let mut scenarios = catalog(profile);
    if only.iter().any(|o| is_people_id(o)) {
        scenarios.retain(|s| only.iter().any(|o| o == &s.id || (o == "g" && s.id.starts_with("g-"))));
    } else if !only.is_empty() {
        return Vec::new();
    }
    let phase_limit = Duration::from_secs(if profile == Profile::Full { 120 } else { 30 });
    let mut runs = Vec::new();
    for scenario in &scenarios {
        let t = Instant::now();
        let mut run = PeopleRun {
            scenario: scenario.id.clone(),
            title: scenario.title.clone(),
            requested_users: scenario.users,
            watch: scenario.watch,
            load_average: load_average(),
            ..PeopleRun::default()
        };
        if started.elapsed() > budget {
            run.status = Some(Status::Skipped);
            run.reason = Some(format!("skipped: the people scenarios' time budget of {} s is used up", budget.as_secs()));
        } else {
            match one(env, scenario, phase_limit, &mut run).await {
                Ok(()) => run.status = Some(Status::Ok),
                Err(err) => {
                    let reason = format!("{err:#}");
                    run.status = Some(if reason.starts_with("skipped:") { Status::Skipped } else { Status::Failed });
                    run.reason = Some(reason);
                }
            }
        }
        run.wall_secs = t.elapsed().as_secs_f64();
        let end_load = load_average();
        run.load_average = format!("{} → {end_load}", run.load_average);
        eprintln!("{}", one_line(&run));
        runs.push(run);
    }
    runs
}

pub fn is_people_id(id: &str) -> bool {
    matches!(id, "g" | "h" | "r" | "l") || id.starts_with("g-")
}

/// One scenario: import, start, connect everyone, measure (and restart), stop.
async fn one(env: &Env, s: &PeopleScenario, limit: Duration, run: &mut PeopleRun) -> anyhow::Result<()> {
    if s.logins > 0 {
        return logins(env, s, run).await;
    }
    let cap = descriptor_cap();
    run.users = s.users.min(cap);
    if run.users < s.users {
        run.notes.push(format!(
            "ran with {} users, not {}: the open-file limit here is {} descriptors (`ulimit -Hn`; raising it needs CAP_SYS_RESOURCE), and server and load generator each hold one per socket",
            run.users,
            s.users,
            cap + FD_HEADROOM
        ));
    }
    let n = run.users;
    let dir = env.work_dir.join(format!("people-{}", s.id));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let port = servers::free_port()?;
    let backing = ConfabBacking::default();

    let t = Instant::now();
    let people = import(env, &backing, port, &dir, n).await?;
    run.import_secs = t.elapsed().as_secs_f64();

    let (mut server, addr) = servers::confab_at(env, &format!("people-{}", s.id), &backing, port, &data, &[]).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.server_rss_idle_kib = procfs::rss_kib(server.pid).unwrap_or(0);

    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let plan = Arc::new(ConnPlan { endpoint: addr, watch: s.watch, reconnect: s.restart, timeout: limit, names: people.iter().map(|p| p.0.clone()).collect() });
    let cpu0 = procfs::cpu_secs(server.pid).unwrap_or(0.0);
    let me0 = procfs::cpu_secs(std::process::id()).unwrap_or(0.0);
    let t0 = Instant::now();
    let workers = spawn_workers(&plan, &counters, &stop_rx, people.into_iter().map(|p| p.1).collect());

    // Everyone online: connected and, when watching, answered.
    let online = |c: &Counters| if s.watch > 0 { c.answered() } else { c.opened.load(Relaxed) };
    let finished = wait_until(limit, || online(&counters) + counters.failed.load(Relaxed) >= n).await;
    run.online_secs = t0.elapsed().as_secs_f64();
    run.timed_out = !finished;
    // Then until presence traffic stops (a coalescing tick or two; the old fan-out far longer).
    let quiet_limit = if finished { Duration::from_secs(20) } else { Duration::ZERO };
    wait_quiet(&counters.presence_frames, Duration::from_millis(750), quiet_limit).await;
    run.server_cpu_secs = procfs::cpu_secs(server.pid).unwrap_or(0.0) - cpu0;
    run.loadgen_cpu_secs = procfs::cpu_secs(std::process::id()).unwrap_or(0.0) - me0;
    if s.watch == 0 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    run.server_rss_online_kib = procfs::rss_kib(server.pid).unwrap_or(0);
    run.connected = counters.opened.load(Relaxed);
    run.connect_failures = counters.failed.load(Relaxed);
    run.watch_ok = counters.watch_ok.load(Relaxed);
    run.watch_unsupported = counters.watch_unsupported.load(Relaxed);
    run.watch_errors = counters.watch_errors.load(Relaxed);
    run.presence_frames = counters.presence_frames.load(Relaxed);
    if run.connected > 0 {
        run.server_cpu_us_per_user = Some(run.server_cpu_secs * 1e6 / run.connected as f64);
        let grown = run.server_rss_online_kib.saturating_sub(run.server_rss_idle_kib);
        run.rss_per_connection_bytes = Some(grown as f64 * 1024.0 / run.connected as f64);
    }
    if run.watch_unsupported > 0 {
        run.notes.push(format!("presence.watch answered -32601 on {} sockets: this server has no presence by interest yet, so every socket got every presence change", run.watch_unsupported));
    }
    if run.timed_out {
        run.notes.push(format!("not everyone was online within {} s", limit.as_secs()));
    }
    if run.loadgen_cpu_secs > run.server_cpu_secs {
        run.notes.push(format!(
            "the load generator used more CPU ({:.2} s) than the server ({:.2} s): it may be the bottleneck of this run",
            run.loadgen_cpu_secs, run.server_cpu_secs
        ));
    }

    if s.restart && finished {
        restart(env, s, &backing, port, &data, &mut server, &counters, run, limit).await?;
    }
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = tokio::task::spawn_blocking(move || w.join()).await;
    }
    run.closes = counters.closes.lock().map(|c| c.clone()).unwrap_or_default();
    run.errors = counters.errors.lock().map(|e| e.clone()).unwrap_or_default();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Stops the server as a deploy would, starts it again, and waits for everyone to be back.
#[allow(clippy::too_many_arguments)]
async fn restart(
    env: &Env,
    s: &PeopleScenario,
    backing: &ConfabBacking,
    port: u16,
    data: &Path,
    server: &mut servers::Proc,
    counters: &Counters,
    run: &mut PeopleRun,
    limit: Duration,
) -> anyhow::Result<()> {
    let n = run.users;
    let t0 = Instant::now();
    server.terminate(Duration::from_secs(15));
    // From here on, a socket that comes online is on the new instance.
    counters.epoch.store(1, Relaxed);
    let (new_server, addr) = servers::confab_at(env, &format!("people-{}-restarted", s.id), backing, port, data, &[]).await?;
    *server = new_server;
    let cpu0 = procfs::cpu_secs(server.pid).unwrap_or(0.0);
    let back = wait_until(limit, || counters.settled.load(Relaxed) >= n).await;
    if back {
        run.reconnect_secs = Some(t0.elapsed().as_secs_f64());
    } else {
        run.notes.push(format!("after the restart only {} of {n} clients were back within {} s", counters.settled.load(Relaxed), limit.as_secs()));
    }
    // Presence is right when the new instance counts every user online.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let deadline = Instant::now() + limit;
    loop {
        let online = online_count(&http, addr).await;
        run.online_after_restart = online.as_ref().ok().copied();
        if online.as_ref().is_ok_and(|&o| o == n as u64) {
            run.settled_secs = Some(t0.elapsed().as_secs_f64());
            break;
        }
        if Instant::now() > deadline {
            run.notes.push(format!("the restarted instance reported {online:?} users online, not {n}"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run.restart_cpu_secs = Some(procfs::cpu_secs(server.pid).unwrap_or(0.0) - cpu0);
    Ok(())
}

/// (l): `s.logins` users sign up and log in over REST, [`LOGIN_CLIENTS`] at a time; the
/// server's RSS before and after is what argon2 leaves behind.
async fn logins(env: &Env, s: &PeopleScenario, run: &mut PeopleRun) -> anyhow::Result<()> {
    let (server, addr) = servers::confab(env, &format!("people-{}", s.id), &ConfabBacking::default()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.server_rss_idle_kib = procfs::rss_kib(server.pid).unwrap_or(0);
    let cpu0 = procfs::cpu_secs(server.pid).unwrap_or(0.0);
    let t0 = Instant::now();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let busy = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let total = s.logins;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..LOGIN_CLIENTS {
        let (http, next, busy, done) = (http.clone(), next.clone(), busy.clone(), done.clone());
        clients.spawn(async move {
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                let body = serde_json::json!({"username": format!("l{i:06}"), "password": PASSWORD});
                for path in ["/api/auth/signup", "/api/auth/login"] {
                    loop {
                        let response = http.post(format!("http://{addr}{path}")).json(&body).send().await?;
                        if response.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
                            anyhow::ensure!(response.status().is_success(), "{path}: {}", response.status());
                            break;
                        }
                        busy.fetch_add(1, Relaxed);
                        let wait = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<f64>().ok()).unwrap_or(1.0);
                        // Full jitter over the advised wait, so refused clients do not return together.
                        tokio::time::sleep(Duration::from_secs_f64(wait * rand::random::<f64>())).await;
                    }
                }
                done.fetch_add(1, Relaxed);
            }
        });
    }
    while let Some(outcome) = clients.join_next().await {
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(err)) if run.errors.len() < 5 => run.errors.push(format!("{err:#}")),
            Err(err) if run.errors.len() < 5 => run.errors.push(err.to_string()),
            _ => {}
        }
    }
    run.online_secs = t0.elapsed().as_secs_f64();
    run.server_cpu_secs = procfs::cpu_secs(server.pid).unwrap_or(0.0) - cpu0;
    tokio::time::sleep(Duration::from_secs(1)).await;
    run.server_rss_online_kib = procfs::rss_kib(server.pid).unwrap_or(0);
    run.logins_done = Some(done.load(Relaxed));
    run.busy_answers = Some(busy.load(Relaxed));
    if run.logins_done != Some(total) {
        bail!("only {} of {total} sign-ups and logins succeeded: {}", done.load(Relaxed), run.errors.join("; "));
    }
    Ok(())
}

/// How many users the server counts online: `GET /api/users` (a paged object with an
/// `online` count, or the seed's plain array of users).
async fn online_count(http: &reqwest::Client, addr: SocketAddr) -> anyhow::Result<u64> {
    let body: serde_json::Value = http.get(format!("http://{addr}/api/users?limit=1&online=true")).send().await?.error_for_status()?.json().await?;
    if let Some(online) = body.get("online").and_then(serde_json::Value::as_u64) {
        return Ok(online);
    }
    let list = body.as_array().context("GET /api/users: neither a list nor an object with `online`")?;
    Ok(list.iter().filter(|u| u.get("online").and_then(serde_json::Value::as_bool) == Some(true)).count() as u64)
}

/// Writes `n` users to a JSON-lines file and runs `confab user import --sessions` on the
/// server's data dir; returns each user's name and access token.
pub async fn import(env: &Env, backing: &ConfabBacking, port: u16, dir: &Path, n: usize) -> anyhow::Result<Vec<(String, String)>> {
    let hash = bench_hash()?;
    let users = dir.join("users.jsonl");
    let mut text = String::with_capacity(n * (hash.len() + 48));
    for i in 0..n {
        let _ = writeln!(text, "{{\"username\":\"{}\",\"password_hash\":\"{hash}\"}}", name(i));
    }
    std::fs::write(&users, text)?;
    let tokens = dir.join("tokens.jsonl");
    let data = dir.join("data");
    // Blocking is fine: nothing else runs on the runtime before the server starts.
    let output = std::process::Command::new(&env.confab_bin)
        .args(["user", "import"])
        .arg(&users)
        .arg("--sessions")
        .arg(&tokens)
        .envs(servers::confab_env(backing, port, &data))
        .output()
        .with_context(|| format!("running {} user import", env.confab_bin.display()))?;
    if !output.status.success() {
        bail!("confab user import failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    #[derive(Deserialize)]
    struct Tokens {
        username: String,
        access_token: String,
    }
    let mut by_name = std::collections::HashMap::with_capacity(n);
    for line in std::fs::read_to_string(&tokens)?.lines() {
        let t: Tokens = serde_json::from_str(line).context("a line of the sessions file")?;
        by_name.insert(t.username, t.access_token);
    }
    (0..n)
        .map(|i| {
            let username = name(i);
            let token = by_name.remove(&username).with_context(|| format!("no token for {username}"))?;
            Ok((username, token))
        })
        .collect()
}

pub fn name(i: usize) -> String {
    format!("p{i:06}")
}

/// One argon2id hash of [`PASSWORD`] for every imported user, made once per run.
fn bench_hash() -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    argon2::Argon2::default()
        .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the bench password: {e}"))
}

/// The largest number of sockets this process (and a server it starts) can hold.
fn descriptor_cap() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1024);
    soft.saturating_sub(FD_HEADROOM).max(1)
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Waits until `counter` has not moved for `quiet`, at most `limit`.
async fn wait_quiet(counter: &AtomicU64, quiet: Duration, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = counter.load(Relaxed);
    let mut since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = counter.load(Relaxed);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The sockets
// ---------------------------------------------------------------------------------------------

/// What every socket of a run shares.
#[derive(Default)]
struct Counters {
    opened: AtomicUsize,
    failed: AtomicUsize,
    watch_ok: AtomicUsize,
    watch_unsupported: AtomicUsize,
    watch_errors: AtomicUsize,
    presence_frames: AtomicU64,
    /// Bumped at a restart; a socket that is online again in the new epoch counts in `settled`.
    epoch: AtomicUsize,
    settled: AtomicUsize,
    closes: Mutex<BTreeMap<u16, usize>>,
    errors: Mutex<Vec<String>>,
}

impl Counters {
    fn answered(&self) -> usize {
        self.watch_ok.load(Relaxed) + self.watch_unsupported.load(Relaxed) + self.watch_errors.load(Relaxed)
    }

    fn error(&self, err: impl std::fmt::Display) {
        if let Ok(mut errors) = self.errors.lock()
            && errors.len() < 20
        {
            errors.push(err.to_string());
        }
    }

    fn closed(&self, code: u16) {
        if let Ok(mut closes) = self.closes.lock() {
            *closes.entry(code).or_default() += 1;
        }
    }
}

struct ConnPlan {
    endpoint: SocketAddr,
    watch: usize,
    reconnect: bool,
    timeout: Duration,
    /// Every user's name, by index: socket i watches the `watch` users after it.
    names: Vec<String>,
}

/// Spreads the sockets over a worker thread per core, each with its own runtime.
fn spawn_workers(plan: &Arc<ConnPlan>, counters: &Arc<Counters>, stop: &watch::Receiver<bool>, tokens: Vec<String>) -> Vec<std::thread::JoinHandle<()>> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 4);
    let mut shares: Vec<Vec<(usize, String)>> = vec![Vec::new(); workers];
    for (i, token) in tokens.into_iter().enumerate() {
        shares[i % workers].push((i, token));
    }
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    shares
        .into_iter()
        .enumerate()
        .filter_map(|(w, share)| {
            let (plan, counters, stop, gate) = (plan.clone(), counters.clone(), stop.clone(), gate.clone());
            std::thread::Builder::new()
                .name(format!("people-{w}"))
                .spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&runtime, async move {
                        let mut tasks = Vec::with_capacity(share.len());
                        for (i, token) in share {
                            let ctx = Rc::new(SocketCtx { plan: plan.clone(), counters: counters.clone(), stop: stop.clone(), gate: gate.clone() });
                            tasks.push(tokio::task::spawn_local(socket(i, token, ctx)));
                        }
                        for t in tasks {
                            let _ = t.await;
                        }
                    });
                })
                .ok()
        })
        .collect()
}

struct SocketCtx {
    plan: Arc<ConnPlan>,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
    gate: Arc<Semaphore>,
}

/// How one connection ended.
struct Ended {
    code: u16,
    was_open: bool,
}

/// What one socket remembers across its reconnects.
#[derive(Default)]
struct SocketState {
    /// It has been open once (counted in `opened`).
    opened: Cell<bool>,
    /// Its first `presence.watch` answer has been counted.
    counted: Cell<bool>,
    /// The last epoch it was online in.
    epoch: Cell<usize>,
}

/// One user's socket for the whole run: connects, watches, answers pings, and (in (r))
/// reconnects with the SPA's backoff when the server goes away.
async fn socket(i: usize, token: String, ctx: Rc<SocketCtx>) {
    let headers = format!("Sec-WebSocket-Protocol: confab.v1\r\nAuthorization: Bearer {token}\r\n");
    let watch_frame = watch_request(&ctx.plan, i);
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(SOURCES)) as u8));
    let state = SocketState::default();
    let mut attempt = 0u32;
    loop {
        let ended = once(&ctx, source, &headers, watch_frame.as_deref(), &state).await;
        if *ctx.stop.borrow() {
            return;
        }
        ctx.counters.closed(ended.code);
        if !ctx.plan.reconnect {
            if !state.opened.get() {
                ctx.counters.failed.fetch_add(1, Relaxed);
            }
            return;
        }
        if ended.was_open {
            attempt = 0;
        }
        let delay = reconnect::delay_ms(attempt, ended.code, rand::random::<f64>());
        attempt = attempt.saturating_add(1);
        let mut stop = ctx.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(delay as u64)) => {}
            _ = stop.changed() => return,
        }
    }
}

fn watch_request(plan: &ConnPlan, i: usize) -> Option<Vec<u8>> {
    if plan.watch == 0 {
        return None;
    }
    let n = plan.names.len();
    let users: Vec<&str> = (1..=plan.watch.min(n.saturating_sub(1))).map(|k| plan.names[(i + k) % n].as_str()).collect();
    let text = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "presence.watch", "params": {"users": users}}).to_string();
    let mut frame = Vec::with_capacity(text.len() + 16);
    ws::encode(&mut frame, Opcode::Text, text.as_bytes(), rand::random());
    Some(frame)
}

async fn once(ctx: &SocketCtx, source: IpAddr, headers: &str, watch_frame: Option<&[u8]>, state: &SocketState) -> Ended {
    let counters = &ctx.counters;
    let connected = {
        let Ok(_permit) = ctx.gate.acquire().await else { return Ended { code: 1006, was_open: false } };
        ws::connect_from(Some(source), ctx.plan.endpoint, "/ws", headers, ctx.plan.timeout).await
    };
    let (stream, leftover) = match connected {
        Ok(c) => c,
        Err(err) => {
            if !ctx.plan.reconnect {
                counters.error(format!("{err:#}"));
            }
            return Ended { code: 1006, was_open: false };
        }
    };
    if !state.opened.replace(true) {
        counters.opened.fetch_add(1, Relaxed);
    }
    // Online again after a restart: counted once per socket and epoch.
    let online = || {
        let now = counters.epoch.load(Relaxed);
        if now > state.epoch.get() {
            state.epoch.set(now);
            counters.settled.fetch_add(1, Relaxed);
        }
    };
    let (mut rd, mut wr) = stream.into_split();
    match watch_frame {
        Some(frame) => {
            if wr.write_all(frame).await.is_err() {
                return Ended { code: 1006, was_open: true };
            }
        }
        None => online(),
    }
    let mut answered = watch_frame.is_none();
    let mut reader = FrameReader::new(4096, &leftover);
    let mut stop = ctx.stop.clone();
    let mut pong = Vec::with_capacity(64);
    loop {
        loop {
            let frame = match reader.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => {
                    counters.error(format!("{err:#}"));
                    return Ended { code: 1002, was_open: true };
                }
            };
            match frame {
                Frame::Text(text) => {
                    if !answered && memchr::memmem::find(text, b"\"id\":1").is_some() {
                        answered = true;
                        // Counted once per socket (the first time), not on every reconnect.
                        if !state.counted.replace(true) {
                            if memchr::memmem::find(text, b"\"result\"").is_some() {
                                counters.watch_ok.fetch_add(1, Relaxed);
                            } else if memchr::memmem::find(text, b"-32601").is_some() {
                                counters.watch_unsupported.fetch_add(1, Relaxed);
                            } else {
                                counters.watch_errors.fetch_add(1, Relaxed);
                                counters.error(String::from_utf8_lossy(text));
                            }
                        }
                        online();
                    } else if memchr::memmem::find(text, b"presence.changed").is_some() {
                        counters.presence_frames.fetch_add(1, Relaxed);
                    }
                }
                Frame::Ping(payload) => {
                    pong.clear();
                    ws::encode(&mut pong, Opcode::Pong, payload, rand::random());
                    if wr.write_all(&pong).await.is_err() {
                        return Ended { code: 1006, was_open: true };
                    }
                }
                Frame::Close(code) => return Ended { code, was_open: true },
                Frame::Binary(_) => {}
            }
        }
        tokio::select! {
            read = reader.fill(&mut rd) => match read {
                Ok(0) | Err(_) => return Ended { code: 1006, was_open: true },
                Ok(_) => {}
            },
            _ = stop.changed() => return Ended { code: 1000, was_open: true },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

pub fn one_line(run: &PeopleRun) -> String {
    let head = format!("({}) {:>5.1}s", run.scenario, run.wall_secs);
    if run.status != Some(Status::Ok) {
        return format!("{head}  {}", run.reason.as_deref().unwrap_or("no result"));
    }
    let mut line = format!(
        "{head}  {} users online in {:.2} s ({} failed), server {:.2} s CPU = {} µs/user, loadgen {:.2} s, {} presence frames, RSS {} → {} KiB ({} B/conn), load {}",
        run.connected,
        run.online_secs,
        run.connect_failures,
        run.server_cpu_secs,
        run.server_cpu_us_per_user.map_or("-".into(), |v| format!("{v:.0}")),
        run.loadgen_cpu_secs,
        run.presence_frames,
        run.server_rss_idle_kib,
        run.server_rss_online_kib,
        run.rss_per_connection_bytes.map_or("-".into(), |v| format!("{v:.0}")),
        run.load_average
    );
    if let Some(secs) = run.reconnect_secs {
        let _ = write!(line, "; restart: all back in {secs:.1} s, presence right after {}", run.settled_secs.map_or("-".into(), |s| format!("{s:.1} s")));
    }
    line
}

/// Confab's targets for these scenarios.
pub fn targets(runs: &[PeopleRun]) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    let ok = |id: &str| runs.iter().find(|r| r.scenario == id && r.status == Some(Status::Ok));
    let mut push = |scenario: &str, target: &str, measured: Option<(String, bool)>| {
        let (measured, met) = match measured {
            Some((m, met)) => (m, Some(met)),
            None => (runs.iter().find(|r| r.scenario == scenario).and_then(|r| r.reason.clone()).unwrap_or_else(|| "not run".into()), None),
        };
        out.push(TargetCheck { scenario: scenario.to_owned(), target: target.to_owned(), measured, met });
    };
    let g: Vec<&PeopleRun> = runs.iter().filter(|r| r.scenario.starts_with("g-") && r.status == Some(Status::Ok)).collect();
    if let (Some(small), Some(large)) = (g.first(), g.last())
        && g.len() > 1
    {
        let (a, b) = (small.server_cpu_us_per_user.unwrap_or(f64::INFINITY), large.server_cpu_us_per_user.unwrap_or(f64::INFINITY));
        let ratio = b / a;
        let complete = !large.timed_out && large.watch_ok == large.users;
        push(
            &large.scenario,
            &format!("server CPU per connecting user flat within 1.5× from {} to {} users", small.users, large.users),
            Some((format!("{a:.0} → {b:.0} µs/user ({ratio:.2}×){}", if complete { "" } else { ", incomplete run" }), ratio <= 1.5 && complete)),
        );
    }
    let g10 = ok("g-10k").map(|r| {
        let ok = !r.timed_out && r.online_secs <= 5.0 && r.server_cpu_secs <= 5.0 && r.watch_ok == r.users;
        (format!("{:.2} s, {:.2} s CPU, {} of {} watching", r.online_secs, r.server_cpu_secs, r.watch_ok, r.users), ok)
    });
    if runs.iter().any(|r| r.scenario == "g-10k") {
        push("g-10k", "10 000 users online in ≤ 5 s with ≤ 5 s of server CPU", g10);
    }
    if let Some(h) = runs.iter().find(|r| r.scenario == "h") {
        let measured = ok("h").map(|r| {
            let per = r.rss_per_connection_bytes.unwrap_or(f64::INFINITY);
            let at_100k = per * 100_000.0 / 1e9 + r.server_rss_idle_kib as f64 * 1024.0 / 1e9;
            let full = r.users >= 100_000 && r.connect_failures == 0;
            (
                format!(
                    "{} connections: {} KiB RSS ({per:.0} B/conn){}",
                    r.connected,
                    r.server_rss_online_kib,
                    if full { String::new() } else { format!(", {at_100k:.2} GB extrapolated to 100 000") }
                ),
                full && r.server_rss_online_kib as f64 * 1024.0 <= 1.2e9,
            )
        });
        push(&h.scenario, "100 000 idle authenticated connections with ≤ 1.2 GB RSS", measured);
    }
    if runs.iter().any(|r| r.scenario == "r") {
        let measured = ok("r").map(|r| {
            let settled = r.settled_secs.unwrap_or(f64::INFINITY);
            (format!("all back in {}, presence right after {}", r.reconnect_secs.map_or("-".into(), |s| format!("{s:.1} s")), r.settled_secs.map_or("never".into(), |s| format!("{s:.1} s"))), settled <= 30.0 && r.users >= 10_000)
        });
        push("r", "a restart with 10 000 connected clients settles within 30 s", measured);
    }
    out
}

/// The people section of results.md.
pub fn markdown(runs: &[PeopleRun]) -> String {
    if runs.is_empty() {
        return String::new();
    }
    let mut md = String::from("\n## People scale: distinct users, presence by interest, restarts\n\n");
    md.push_str(
        "Every socket is a different user (imported with `confab user import --sessions`, so no login is measured). \
         Server CPU is utime+stime of the server from the first connect until presence traffic has been quiet for 0.75 s. \
         Confab only: Socket.IO (rooms as presence) and Django Channels have no global presence to compare with.\n\n",
    );
    md.push_str("| run | users | watching | online in | server CPU | per user | loadgen CPU | presence frames | RSS idle → online | per conn | load avg |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in runs {
        if r.status != Some(Status::Ok) {
            let _ = writeln!(md, "| {} | {} | | {} | | | | | | | {} |", r.scenario, r.requested_users, r.reason.as_deref().unwrap_or("-").replace('|', "/"), r.load_average);
            continue;
        }
        let watching = if r.watch == 0 {
            "-".to_owned()
        } else if r.watch_unsupported > 0 {
            format!("{} (-32601 on {})", r.watch, r.watch_unsupported)
        } else {
            format!("{} ({} ok)", r.watch, r.watch_ok)
        };
        let _ = writeln!(
            md,
            "| {} | {}{} | {watching} | {:.2} s{} | {:.2} s | {} µs | {:.2} s | {} | {:.0} → {:.0} MiB | {} | {} |",
            r.scenario,
            r.connected,
            if r.users < r.requested_users { format!(" (of {} asked)", r.requested_users) } else { String::new() },
            r.online_secs,
            if r.timed_out { " (timed out)" } else { "" },
            r.server_cpu_secs,
            r.server_cpu_us_per_user.map_or("-".into(), |v| format!("{v:.0}")),
            r.loadgen_cpu_secs,
            r.presence_frames,
            r.server_rss_idle_kib as f64 / 1024.0,
            r.server_rss_online_kib as f64 / 1024.0,
            r.rss_per_connection_bytes.map_or("-".into(), |v| format!("{:.1} KiB", v / 1024.0)),
            r.load_average
        );
    }
    let g: Vec<&PeopleRun> = runs.iter().filter(|r| r.scenario.starts_with("g-") && r.status == Some(Status::Ok)).collect();
    if let Some(first) = g.first().and_then(|r| r.server_cpu_us_per_user) {
        let ratios: Vec<String> =
            g.iter().filter_map(|r| r.server_cpu_us_per_user.map(|v| format!("{}: {:.2}×", r.scenario, v / first))).collect();
        let _ = writeln!(md, "\nCPU per connecting user relative to {}: {}.", g[0].scenario, ratios.join(", "));
    }
    for r in runs.iter().filter(|r| r.reconnect_secs.is_some() || r.scenario == "r") {
        let _ = writeln!(
            md,
            "\nRestart ({}): SIGTERM → every client back: {}; → the new instance counts everyone online: {} ({} online reported); its CPU meanwhile {}. Clients reconnect with full jitter (first retry after 1001 within 5 s).",
            r.scenario,
            r.reconnect_secs.map_or("not within the limit".into(), |s| format!("{s:.1} s")),
            r.settled_secs.map_or("not within the limit".into(), |s| format!("{s:.1} s")),
            r.online_after_restart.map_or("-".into(), |o| o.to_string()),
            r.restart_cpu_secs.map_or("-".into(), |c| format!("{c:.2} s"))
        );
    }
    for r in runs {
        for note in r.notes.iter().chain(&r.errors) {
            let _ = writeln!(md, "\n- ({}) {}", r.scenario, note.replace('\n', " "));
        }
    }
    md
}
