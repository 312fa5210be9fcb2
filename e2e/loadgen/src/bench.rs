//! The benchmark: every scenario against Confab and its peers, in one run, on one machine.
//!
//! Each run starts its own servers on free loopback ports (fresh data dirs, a fresh
//! PostgreSQL database where one is used, a private Redis where one is needed), pinned to
//! the server CPUs while the load generator runs on the others, drives the load, and stops
//! everything before the next run. A run that cannot be set up is recorded as skipped or
//! failed, with the reason, and the benchmark goes on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::dialect::Dialect;
use crate::load::{self, LoadResult, Plan, SendMode};
use crate::servers::{self, ConfabBacking, Env, PgDb, Proc};
use crate::{accounts, report};

/// How big and how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Every scenario at full size against every server (under 10 minutes).
    Full,
    /// Smaller and shorter; the peers only in (a) (under a minute).
    Quick,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Database {
    Sqlite,
    Postgres,
}

/// One scenario of the benchmark.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub servers: Vec<Dialect>,
    pub instances: usize,
    pub database: Database,
    pub rooms: usize,
    pub subscribers_per_room: usize,
    pub publishers: usize,
    pub idle: usize,
    pub mode: SendMode,
    pub window: usize,
}

pub const ALL_SERVERS: [Dialect; 3] = [Dialect::Confab, Dialect::Django, Dialect::Socketio];

/// The scenarios of a profile, in run order.
pub fn catalog(profile: Profile) -> Vec<Scenario> {
    let quick = profile == Profile::Quick;
    let peers_too = if quick { vec![Dialect::Confab] } else { ALL_SERVERS.to_vec() };
    let base = Scenario {
        id: String::new(),
        title: String::new(),
        servers: ALL_SERVERS.to_vec(),
        instances: 1,
        database: Database::Sqlite,
        rooms: 1,
        subscribers_per_room: 0,
        publishers: 0,
        idle: 0,
        mode: SendMode::FlatOut,
        window: 1,
    };
    let a = Scenario {
        id: "a".into(),
        title: "1 room × 100 subscribers, 1 publisher flat out".into(),
        subscribers_per_room: 100,
        publishers: 1,
        window: 32,
        ..base.clone()
    };
    let b_subs = if quick { 200 } else { 1000 };
    let b = Scenario {
        id: "b".into(),
        title: format!("1 room × {b_subs} subscribers, 1 publisher at 200 msg/s"),
        servers: peers_too.clone(),
        subscribers_per_room: b_subs,
        publishers: 1,
        mode: SendMode::Rate(200.0),
        window: 1000,
        ..base.clone()
    };
    let c = Scenario {
        id: "c".into(),
        title: "100 rooms × 10 subscribers, 100 publishers at 10 msg/s".into(),
        servers: peers_too.clone(),
        rooms: 100,
        subscribers_per_room: 10,
        publishers: 100,
        mode: SendMode::Rate(10.0),
        window: 100,
        ..base.clone()
    };
    let idle = if quick { 1_000 } else { 10_000 };
    let d = Scenario {
        id: "d".into(),
        title: format!("{idle} idle authenticated connections"),
        servers: peers_too.clone(),
        rooms: 0,
        idle,
        ..base.clone()
    };
    let e = |database: Database| Scenario {
        id: format!("e-{}", if database == Database::Sqlite { "sqlite" } else { "postgres" }),
        title: format!("persisted sends, 50 concurrent senders, {}", if database == Database::Sqlite { "SQLite" } else { "PostgreSQL" }),
        servers: vec![Dialect::Confab],
        database,
        rooms: 50,
        publishers: 50,
        window: 1,
        ..base.clone()
    };
    let f = |s: &Scenario| Scenario {
        id: format!("f-{}", s.id),
        title: format!("({}) across 2 instances on Redis", s.id),
        servers: peers_too.clone(),
        instances: 2,
        database: Database::Postgres,
        ..s.clone()
    };
    // (f) needs a shared database, so its single-instance baseline is (a) on PostgreSQL too:
    // a flat-out publisher is bound by its window over the commit round trip, which differs
    // between SQLite and PostgreSQL more than one layer differs from the other.
    let a_pg = Scenario {
        id: "a-pg".into(),
        title: "(a) on PostgreSQL, one instance: the baseline of (f-a)".into(),
        servers: vec![Dialect::Confab],
        database: Database::Postgres,
        ..a.clone()
    };
    let mut all = vec![a.clone(), b, c.clone(), d, e(Database::Sqlite)];
    if !quick {
        all.push(e(Database::Postgres));
    }
    all.push(a_pg);
    all.push(f(&a));
    if !quick {
        all.push(f(&c));
    }
    all.extend(crate::write_path::catalog(profile, &e, &c));
    all
}

/// Timing of every run of a profile.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Timing {
    pub warmup_secs: f64,
    pub duration_secs: f64,
    pub drain_secs: f64,
    pub settle_secs: f64,
    pub phase_timeout_secs: f64,
    /// After this much time, runs not started yet are skipped.
    pub budget_secs: f64,
}

pub fn timing(profile: Profile) -> Timing {
    match profile {
        Profile::Full => Timing { warmup_secs: 1.0, duration_secs: 8.0, drain_secs: 5.0, settle_secs: 2.0, phase_timeout_secs: 60.0, budget_secs: 540.0 },
        Profile::Quick => Timing { warmup_secs: 0.3, duration_secs: 1.5, drain_secs: 2.0, settle_secs: 0.5, phase_timeout_secs: 15.0, budget_secs: 50.0 },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Skipped,
    Failed,
}

/// One scenario against one server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    pub scenario: String,
    pub server: Dialect,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Confab accounts whose tokens the connections share.
    pub users: usize,
    /// What backs the server: database and channel layer.
    pub backing: String,
    pub wall_secs: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<LoadResult>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub os: String,
    pub load_average_at_start: String,
    pub server_cpus: Option<String>,
    pub loadgen_cpus: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub generated_at: String,
    pub profile: Profile,
    pub command: String,
    pub git_rev: String,
    pub machine: Machine,
    pub timing: Timing,
    pub versions: BTreeMap<String, String>,
    pub wall_secs: f64,
    pub notes: Vec<String>,
}

/// A target from the issue, checked against a Confab run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetCheck {
    pub scenario: String,
    pub target: String,
    pub measured: String,
    /// `None`: could not be checked (run skipped or failed).
    pub met: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    pub meta: Meta,
    pub scenarios: Vec<Scenario>,
    pub runs: Vec<Run>,
    pub targets: Vec<TargetCheck>,
    /// The people-scale scenarios (g), (h), (r): distinct users, one socket each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<crate::people::PeopleRun>,
}

/// What the `bench` command was asked to do.
pub struct BenchArgs {
    pub profile: Profile,
    pub out: PathBuf,
    pub only: Vec<String>,
    pub servers: Vec<Dialect>,
    pub env: Env,
    pub loadgen_cpus: Option<String>,
    pub command: String,
    /// Extra notes for the report.
    pub notes: Vec<String>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<Results> {
    let started = Instant::now();
    let timing = timing(args.profile);
    std::fs::create_dir_all(&args.env.work_dir)?;
    std::fs::create_dir_all(&args.out)?;
    let mut scenarios = catalog(args.profile);
    if !args.only.is_empty() {
        scenarios.retain(|s| args.only.iter().any(|o| o == &s.id));
    }
    let pg_ok = args.env.pg_url.as_deref().is_some_and(servers::pg_available);
    let mut runs = Vec::new();
    for scenario in &scenarios {
        for &server in scenario.servers.iter().filter(|s| args.servers.contains(s)) {
            let run_started = Instant::now();
            let mut run = Run {
                scenario: scenario.id.clone(),
                server,
                status: Status::Ok,
                reason: None,
                users: 0,
                backing: backing_of(scenario, server),
                wall_secs: 0.0,
                result: None,
            };
            if started.elapsed().as_secs_f64() > timing.budget_secs {
                run.status = Status::Skipped;
                run.reason = Some(format!("skipped: time budget of {} s used up", timing.budget_secs));
            } else if scenario.database == Database::Postgres && server == Dialect::Confab && !pg_ok {
                run.status = Status::Skipped;
                run.reason = Some(format!(
                    "skipped: PostgreSQL not reachable at {} (scripts/services.sh start)",
                    args.env.pg_url.as_deref().unwrap_or("(no URL)")
                ));
            } else {
                match one(&args.env, scenario, server, timing, args.profile).await {
                    Ok((result, users)) => {
                        run.users = users;
                        run.result = Some(result);
                    }
                    Err(err) => {
                        let reason = format!("{err:#}");
                        run.status = if reason.starts_with("skipped:") { Status::Skipped } else { Status::Failed };
                        run.reason = Some(reason);
                    }
                }
            }
            run.wall_secs = run_started.elapsed().as_secs_f64();
            eprintln!("{}", report::one_line(scenario, &run));
            runs.push(run);
        }
    }
    let people_budget = Duration::from_secs(if args.profile == Profile::Full { 900 } else { 180 });
    let people = crate::people::run_all(&args.env, args.profile, &args.only, people_budget).await;
    let meta = Meta {
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        profile: args.profile,
        command: args.command.clone(),
        git_rev: git_rev(),
        machine: machine(args.env.server_cpus.clone(), args.loadgen_cpus.clone()),
        timing,
        versions: versions(&args.env),
        wall_secs: started.elapsed().as_secs_f64(),
        notes: notes(args.profile).into_iter().chain(args.notes.iter().cloned()).collect(),
    };
    let mut targets = report::check_targets(&scenarios, &runs);
    targets.extend(crate::people::targets(&people));
    let results = Results { meta, scenarios, runs, targets, people };
    report::write_all(&results, &args.out)?;
    Ok(results)
}

fn backing_of(s: &Scenario, server: Dialect) -> String {
    match server {
        Dialect::Confab => {
            let db = if s.database == Database::Sqlite { "SQLite" } else { "PostgreSQL" };
            if s.instances > 1 { format!("{db}, Redis layer") } else { format!("{db}, in-process layer") }
        }
        Dialect::Django => "daphne, channels_redis".into(),
        Dialect::Socketio => {
            if s.instances > 1 { "node, Redis adapter".into() } else { "node, in-memory adapter".into() }
        }
    }
}

/// Users to create for a Confab run: tokens are shared by ~50 connections each.
fn users_for(s: &Scenario, profile: Profile) -> usize {
    let conns = s.rooms * s.subscribers_per_room + s.publishers + s.idle;
    let cap = if profile == Profile::Quick { 20 } else { 100 };
    conns.div_ceil(50).clamp(1, cap)
}

/// Sets up the servers for one run, drives the load, tears everything down.
async fn one(env: &Env, s: &Scenario, server: Dialect, timing: Timing, profile: Profile) -> anyhow::Result<(LoadResult, usize)> {
    let tag = format!("{}-{}", s.id, server.name());
    let mut procs: Vec<Proc> = Vec::new();
    let mut server_pids = Vec::new();
    let mut endpoints: Vec<SocketAddr> = Vec::new();
    let mut tokens = Vec::new();
    let mut users = 0;
    let needs_redis = s.instances > 1 || server == Dialect::Django;
    let redis_url = if needs_redis {
        let (proc, url) = servers::redis(env, &format!("{tag}-redis")).await?;
        server_pids.push(proc.pid);
        procs.push(proc);
        Some(url)
    } else {
        None
    };
    // Dropped (database removed) after the servers stop.
    let mut _pg = None;
    match server {
        Dialect::Confab => {
            let mut backing = ConfabBacking { database_url: None, redis_url: redis_url.clone() };
            if s.database == Database::Postgres {
                let admin = env.pg_url.as_deref().ok_or_else(|| anyhow::anyhow!("skipped: no PostgreSQL URL"))?;
                let db = PgDb::create(admin, &format!("confab_bench_{}", tag.replace('-', "_")))?;
                backing.database_url = Some(db.url.clone());
                _pg = Some(db);
            }
            for i in 0..s.instances {
                let (proc, addr) = servers::confab(env, &format!("{tag}-{i}"), &backing).await?;
                server_pids.push(proc.pid);
                procs.push(proc);
                endpoints.push(addr);
            }
            users = users_for(s, profile);
            tokens = accounts::tokens(&format!("http://{}", endpoints[0]), "bench", users).await?;
        }
        Dialect::Django => {
            let url = redis_url.clone().unwrap_or_default();
            for i in 0..s.instances {
                let (proc, addr) = servers::django(env, &format!("{tag}-{i}"), &url).await.map_err(skip_if_missing)?;
                server_pids.push(proc.pid);
                procs.push(proc);
                endpoints.push(addr);
            }
        }
        Dialect::Socketio => {
            for i in 0..s.instances {
                let (proc, addr) = servers::socketio(env, &format!("{tag}-{i}"), redis_url.as_deref()).await.map_err(skip_if_missing)?;
                server_pids.push(proc.pid);
                procs.push(proc);
                endpoints.push(addr);
            }
        }
    }
    let secs = Duration::from_secs_f64;
    let plan = Plan {
        dialect: server,
        endpoints,
        tokens,
        rooms: s.rooms,
        room_prefix: format!("bench-{}-", s.id),
        subscribers_per_room: s.subscribers_per_room,
        publishers: s.publishers,
        idle: s.idle,
        mode: s.mode,
        window: s.window,
        warmup: secs(timing.warmup_secs),
        duration: secs(timing.duration_secs),
        drain: secs(timing.drain_secs),
        settle: secs(timing.settle_secs),
        connect_concurrency: 256,
        phase_timeout: secs(timing.phase_timeout_secs),
        server_pids,
        workers: 0,
    };
    let result = load::run(plan).await?;
    drop(procs);
    Ok((result, users))
}

/// A peer that was never installed is a skip, not a failure.
fn skip_if_missing(err: anyhow::Error) -> anyhow::Error {
    let text = format!("{err:#}");
    if text.contains("not found") || text.contains("missing") {
        anyhow::anyhow!("skipped: {text}")
    } else {
        err
    }
}

fn notes(profile: Profile) -> Vec<String> {
    let mut notes = vec![
        "Server CPU is utime+stime of the server processes (and of Redis where one is used) over the measured window, from /proc/<pid>/stat.".to_owned(),
        "Latency is send → receipt at each subscriber, timed by one monotonic clock in the load generator; lost = deliveries owed for acknowledged sends minus deliveries received.".to_owned(),
        "Confab persists every message (SQLite WAL, or PostgreSQL) before broadcasting it and authenticates every socket with a JWT; the peers persist nothing and authenticate nothing.".to_owned(),
        "Scenario f runs Confab on PostgreSQL (two instances need a shared database); (a) and (c) run on SQLite, and (a-pg) is (a) on PostgreSQL with one instance, the baseline (f-a) is checked against.".to_owned(),
    ];
    if profile == Profile::Quick {
        notes.push("Quick profile: shorter windows and smaller (b) and (d); the peers run only in (a). Targets are checked against the scaled-down runs.".to_owned());
    }
    notes
}

fn git_rev() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git").args(args).output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let rev = run(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{rev}+dirty") } else { rev }
}

fn machine(server_cpus: Option<String>, loadgen_cpus: Option<String>) -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_default();
    let cpus = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let memory_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_default();
    Machine {
        cpu_model,
        cpus,
        memory_gib,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        os,
        load_average_at_start: read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        server_cpus,
        loadgen_cpus,
    }
}

fn versions(env: &Env) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let out = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd).args(args).output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).filter(|s| !s.is_empty())
    };
    if let Some(s) = out("rustc", &["--version"]) {
        v.insert("rustc".into(), s);
    }
    if let Some(s) = out("node", &["--version"]) {
        v.insert("node".into(), s);
    }
    if let Some(s) = out(&env.venv.join("bin/python").display().to_string(), &["--version"]) {
        v.insert("python".into(), s);
    }
    if let Some(s) = out("redis-server", &["--version"]) {
        v.insert("redis".into(), s.split_whitespace().find(|w| w.starts_with("v=")).unwrap_or(&s).trim_start_matches("v=").to_owned());
    }
    let req = std::fs::read_to_string(env.peers_dir.join("django/requirements.txt")).unwrap_or_default();
    for line in req.lines().filter(|l| !l.starts_with('#')) {
        if let Some((name, version)) = line.split_once("==") {
            v.insert(name.trim().to_owned(), version.trim().to_owned());
        }
    }
    let sio = std::fs::read_to_string(env.peers_dir.join("socketio/node_modules/socket.io/package.json")).unwrap_or_default();
    if let Some(version) = serde_json::from_str::<serde_json::Value>(&sio).ok().and_then(|j| j["version"].as_str().map(str::to_owned)) {
        v.insert("socket.io".into(), version);
    }
    v
}
