//! The benchmark: every scenario against Confab and its peers, in one run, on one machine.
//!
//! Each run starts its own servers on free loopback ports (fresh data dirs, a fresh
//! PostgreSQL database where one is used, a private Redis where one is needed), pinned to
//! the server CPUs while the load generator runs on the others, drives the load, and stops
//! everything before the next run. A run that cannot be set up is recorded as skipped or
//! failed, with the reason, and the benchmark goes on.
//!
//! Scenario (f) runs (a) and (c) across Confab instances sharing PostgreSQL and Redis: on
//! one `redis-server` (`f-a`, `f-c`: 2 instances, peers too) and on a Redis Cluster of 3
//! shards, 3 masters + 3 replicas (`f-a-rc2`, `f-a-rc3`, `f-c-rc2`, `f-c-rc3`: 2 and 3
//! instances, Confab only, the peers as set up here having no cluster mode), with the Redis
//! CPU of every shard in the results.
//!
//! Beside (a) and (c), Confab only: `a-stream` and `c-stream` run them over the HTTP stream
//! instead of the socket, and `c-sweep` runs (c) while the retention sweep deletes a large
//! backlog of old messages in the same rooms ([`crate::sweep`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::dialect::Dialect;
use crate::load::{self, LoadResult, Plan, RedisShardCpu, SendMode, Transport};
use crate::servers::{self, ConfabBacking, Env, PgDb, Proc, RedisCluster};
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
    /// Shards of the Redis Cluster the instances share; 0: no cluster (one `redis-server`
    /// where Redis is needed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redis_cluster_shards: usize,
    /// Confab asks a `room.send` hook, answered by [`crate::hook_responder`], before each send.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hook: bool,
    /// One instance with a Redis channel layer all the same (Confab with `REDIS_URL`,
    /// Socket.IO with its Redis adapter): what a deployment ready to scale out pays on one node.
    #[serde(default, skip_serializing_if = "is_false")]
    pub redis: bool,
    /// Confab over its HTTP stream rather than the socket.
    #[serde(default, skip_serializing_if = "Transport::is_socket")]
    pub transport: Transport,
    /// Messages older than the retention in the scenario's rooms when the server starts
    /// (SQLite), which its retention sweep deletes during the run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub old_messages: usize,
}

impl Scenario {
    /// Whether the servers share a Redis channel layer: several instances, or one on Redis.
    fn on_redis(&self) -> bool {
        self.instances > 1 || self.redis
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Shards of the Redis Cluster of the `f-*-rc*` scenarios (each a master and a replica).
pub const CLUSTER_SHARDS: usize = 3;

/// Old messages of (c-sweep), full and quick profile.
pub const SWEEP_MESSAGES_FULL: usize = 2_000_000;
pub const SWEEP_MESSAGES_QUICK: usize = 600_000;

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
        redis_cluster_shards: 0,
        hook: false,
        redis: false,
        transport: Transport::Socket,
        old_messages: 0,
    };
    let a = Scenario {
        id: "a".into(),
        title: "1 room × 100 subscribers, 1 publisher flat out".into(),
        subscribers_per_room: 100,
        publishers: 1,
        window: 32,
        ..base.clone()
    };
    // (a) as a chat client sends: a member of the room that counts a message as sent when the
    // room's broadcast of it comes back, 16 in flight, so every echo's delay is the sender's.
    let a_echo = Scenario {
        id: "a-echo".into(),
        title: "1 room × 100 subscribers, 1 member sending as fast as its own echoes come back (16 in flight)".into(),
        servers: vec![Dialect::Confab, Dialect::Socketio],
        mode: SendMode::Echo,
        window: 16,
        ..a.clone()
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
    let c_hook = Scenario {
        id: "c-hook".into(),
        title: "(c) with a room.send hook answered by a local responder".into(),
        servers: vec![Dialect::Confab],
        hook: true,
        ..c.clone()
    };
    // (c) while the sweep deletes old messages from its rooms: enough that it is still at it
    // when the window ends (it starts with the server and deleted ~20 k/s beside (c) on the
    // shared 2-core machine; a quiet one may be several times faster).
    let old = if quick { SWEEP_MESSAGES_QUICK } else { SWEEP_MESSAGES_FULL };
    let c_sweep = Scenario {
        id: "c-sweep".into(),
        title: format!("(c) while the retention sweep deletes {} k old messages from its rooms", old / 1000),
        servers: vec![Dialect::Confab],
        old_messages: old,
        ..c.clone()
    };
    let over_stream = |s: &Scenario| Scenario {
        id: format!("{}-stream", s.id),
        title: format!("({}) over the HTTP stream", s.id),
        servers: vec![Dialect::Confab],
        transport: Transport::Stream,
        ..s.clone()
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
    // The same on one node with a Redis channel layer: every message goes through Redis and
    // back (against Socket.IO with its Redis adapter; Django Channels, always on Redis, sits out).
    let with_redis = |s: &Scenario| Scenario {
        id: format!("{}-redis", s.id),
        title: format!("({}) on one instance with a Redis channel layer", s.id),
        servers: s.servers.iter().copied().filter(|d| *d != Dialect::Django).collect(),
        redis: true,
        ..s.clone()
    };
    // Beside (a) and (c) in the full profile; in the quick one last, so that they use what is
    // left of its minute rather than push the others out of it.
    let mut all = if quick {
        vec![a.clone(), a_echo, b, c.clone(), c_hook, d, e(Database::Sqlite)]
    } else {
        vec![a.clone(), over_stream(&a), a_echo, b, c.clone(), over_stream(&c), c_sweep.clone(), c_hook, d, e(Database::Sqlite)]
    };
    if !quick {
        all.push(e(Database::Postgres));
    }
    all.push(a_pg);
    all.push(f(&a));
    if !quick {
        all.push(f(&c));
    }
    // (f) on a Redis Cluster: Django Channels' channels_redis and the Socket.IO peer's
    // single-node Redis adapter have no cluster mode, so Confab only.
    let rc = |s: &Scenario, instances: usize| Scenario {
        id: format!("f-{}-rc{instances}", s.id),
        title: format!("({}) across {instances} instances on a Redis Cluster ({CLUSTER_SHARDS} shards)", s.id),
        servers: vec![Dialect::Confab],
        instances,
        database: Database::Postgres,
        redis_cluster_shards: CLUSTER_SHARDS,
        ..s.clone()
    };
    // Not in quick: six Redis nodes and three instances take ~10 s to start, a fifth of its budget.
    if !quick {
        all.extend([rc(&a, 2), rc(&a, 3), rc(&c, 2), rc(&c, 3)]);
    }
    all.extend(crate::write_path::catalog(profile, &e, &c));
    if !quick {
        let redis: Vec<Scenario> = all.iter().filter(|s| ["a", "a-echo", "b", "c", "e16-sqlite"].contains(&s.id.as_str())).map(with_redis).collect();
        all.extend(redis);
    } else {
        all.extend([over_stream(&a), over_stream(&c), c_sweep]);
    }
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
        // The budget has room for (a-stream), (c-stream) and (c-sweep) with its seeding (~60 s).
        Profile::Full => Timing { warmup_secs: 1.0, duration_secs: 8.0, drain_secs: 5.0, settle_secs: 2.0, phase_timeout_secs: 60.0, budget_secs: 780.0 },
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
    /// The machine's load average (1, 5, 15 min) when the run started: the machine may be shared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub load_average: String,
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

/// One of Confab's targets, checked against a Confab run.
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
                load_average: load_average(),
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
            if s.redis_cluster_shards > 0 {
                format!("{db}, Redis Cluster layer ({} shards, SPUBLISH/SSUBSCRIBE)", s.redis_cluster_shards)
            } else if s.on_redis() {
                format!("{db}, Redis layer")
            } else {
                format!("{db}, in-process layer")
            }
        }
        Dialect::Django => "daphne, channels_redis".into(),
        Dialect::Socketio => {
            if s.on_redis() { "node, Redis adapter".into() } else { "node, in-memory adapter".into() }
        }
    }
}

/// The scenario's rooms are `<prefix><i>`.
fn room_prefix(s: &Scenario) -> String {
    format!("bench-{}-", s.id)
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
    // Declared before `procs`, so on every path the cluster is killed after the servers.
    let mut cluster: Option<RedisCluster> = None;
    let mut procs: Vec<Proc> = Vec::new();
    let mut server_pids = Vec::new();
    let mut endpoints: Vec<SocketAddr> = Vec::new();
    let mut tokens = Vec::new();
    let mut users = 0;
    // The single redis-server's address and pid, for its CPU line.
    let mut single_redis = None;
    let needs_redis = s.on_redis() || server == Dialect::Django;
    let redis_url = if s.redis_cluster_shards > 0 {
        let started = RedisCluster::start(env, &format!("{tag}-redis-cluster"), s.redis_cluster_shards).await?;
        server_pids.extend(started.pids());
        let url = started.url();
        cluster = Some(started);
        Some(url)
    } else if needs_redis {
        let (proc, url) = servers::redis(env, &format!("{tag}-redis")).await?;
        server_pids.push(proc.pid);
        single_redis = Some((url.trim_start_matches("redis://").to_owned(), proc.pid));
        procs.push(proc);
        Some(url)
    } else {
        None
    };
    // Dropped (database removed) after the servers stop.
    let mut _pg = None;
    // (c-sweep): the instance's database, the seconds seeding took, and when it started.
    let mut sweep = None;
    match server {
        Dialect::Confab => {
            let mut backing = ConfabBacking { database_url: None, redis_url: redis_url.clone() };
            if s.database == Database::Postgres {
                let admin = env.pg_url.as_deref().ok_or_else(|| anyhow::anyhow!("skipped: no PostgreSQL URL"))?;
                let db = PgDb::create(admin, &format!("confab_bench_{}", tag.replace('-', "_")))?;
                backing.database_url = Some(db.url.clone());
                _pg = Some(db);
            }
            let mut extra = if s.hook { crate::hook_responder::env(crate::hook_responder::start().await?) } else { Vec::new() };
            if s.old_messages > 0 {
                anyhow::ensure!(s.database == Database::Sqlite && s.instances == 1, "old messages are seeded for one instance on SQLite");
                let (file, secs) = crate::sweep::seed(env, s.rooms, &room_prefix(s), s.old_messages).await?;
                let data = env.work_dir.join(format!("{tag}-0-data"));
                crate::sweep::data_dir_from(&file, &data)?;
                extra.push(("CONFAB_RETENTION_DAYS", crate::sweep::RETENTION_DAYS.to_string()));
                let started_ms = chrono::Utc::now().timestamp_millis();
                let (proc, addr) = servers::confab_at(env, &format!("{tag}-0"), &backing, servers::free_port()?, &data, &extra).await?;
                server_pids.push(proc.pid);
                procs.push(proc);
                endpoints.push(addr);
                sweep = Some((data.join("confab.db"), secs, started_ms));
            } else {
                for i in 0..s.instances {
                    let (proc, addr) = servers::confab_with(env, &format!("{tag}-{i}"), &backing, &extra).await?;
                    server_pids.push(proc.pid);
                    procs.push(proc);
                    endpoints.push(addr);
                }
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
        transport: s.transport,
        endpoints,
        tokens,
        rooms: s.rooms,
        room_prefix: room_prefix(s),
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
        server_pids: server_pids.clone(),
        workers: 0,
    };
    let mut result = load::run(plan).await?;
    drop(procs);
    if let Some((db, seed_secs, started_ms)) = sweep {
        result.sweep = Some(crate::sweep::read_back(&db, s.old_messages as u64, seed_secs, started_ms, result.window_unix_ms)?);
    }
    if let Some(c) = &cluster {
        result.redis = redis_cpu(&result, &server_pids, c.shards());
    }
    if let Some((addr, pid)) = single_redis {
        let shard = servers::Shard { master: addr, master_pid: pid, slots: String::new(), replica_pids: Vec::new() };
        result.redis = redis_cpu(&result, &server_pids, &[shard]);
    }
    Ok((result, users))
}

/// Each shard's Redis CPU in the window, from the run's per-process CPU (`server_pids` order).
fn redis_cpu(result: &LoadResult, server_pids: &[u32], shards: &[servers::Shard]) -> Vec<RedisShardCpu> {
    let secs = |pid: u32| server_pids.iter().position(|&p| p == pid).and_then(|i| result.server_cpu_secs_each.get(i)).copied().unwrap_or(0.0);
    let window = result.measured_secs.max(1e-9);
    shards
        .iter()
        .map(|shard| {
            let master = secs(shard.master_pid);
            RedisShardCpu {
                master: shard.master.clone(),
                slots: shard.slots.clone(),
                master_cpu_cores: master / window,
                master_cpu_us_per_delivery: (result.delivered_in_window > 0).then(|| master * 1e6 / result.delivered_in_window as f64),
                // A fold from +0.0: an empty float `sum()` is -0.0, printed "-0.00".
                replica_cpu_cores: shard.replica_pids.iter().fold(0.0, |sum, &p| sum + secs(p)) / window,
            }
        })
        .collect()
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
        format!(
            "Scenarios f-*-rc2 and f-*-rc3 run (f) with 2 and 3 Confab instances on a Redis Cluster of {CLUSTER_SHARDS} shards (3 masters + 3 replicas, \
             redis-server --cluster-enabled yes on private loopback ports, joined by redis-cli --cluster create --cluster-replicas 1), REDIS_URL listing the masters; \
             Confab finds the cluster mode by itself and fans out with SPUBLISH/SSUBSCRIBE. Redis CPU is reported per shard (master, and its replica, which applies \
             the shard's replication stream) and counted in the server CPU; with one room, (a) puts all its traffic on the one shard that owns the room's slot. \
             Confab only: the peers as set up here have no Redis Cluster mode (channels_redis does not support Redis Cluster; the Socket.IO peer's \
             @socket.io/redis-adapter is wired to one node)."
        ),
    ];
    if profile == Profile::Quick {
        notes.push("Quick profile: shorter windows and smaller (b) and (d); the peers run only in (a). Targets are checked against the scaled-down runs.".to_owned());
    }
    notes
}

/// `/proc/loadavg`'s three averages, e.g. `3.42 4.02 5.70`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
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
        load_average_at_start: load_average(),
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

#[cfg(test)]
mod tests {
    use super::{CLUSTER_SHARDS, Database, Profile, Transport, catalog};
    use crate::dialect::Dialect;

    #[test]
    fn the_full_profile_runs_f_on_a_redis_cluster_with_two_and_three_instances_of_confab_only() {
        let full = catalog(Profile::Full);
        let rc: Vec<_> = full.iter().filter(|s| s.redis_cluster_shards > 0).collect();
        let ids: Vec<&str> = rc.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["f-a-rc2", "f-a-rc3", "f-c-rc2", "f-c-rc3"]);
        for s in rc {
            assert_eq!(s.redis_cluster_shards, CLUSTER_SHARDS);
            assert_eq!(s.database, Database::Postgres, "{} shares PostgreSQL like (f)", s.id);
            assert_eq!(s.servers, [Dialect::Confab]);
            assert_eq!(s.instances, if s.id.ends_with("rc2") { 2 } else { 3 });
        }
        assert!(catalog(Profile::Quick).iter().all(|s| s.redis_cluster_shards == 0));
    }

    #[test]
    fn a_and_c_run_over_the_http_stream_and_c_under_the_retention_sweep_against_confab_only() {
        for profile in [Profile::Full, Profile::Quick] {
            let all = catalog(profile);
            let find = |id: &str| all.iter().find(|s| s.id == id).unwrap_or_else(|| panic!("no scenario {id} in {profile:?}"));
            for base in ["a", "c"] {
                let (plain, stream) = (find(base), find(&format!("{base}-stream")));
                assert_eq!(stream.transport, Transport::Stream);
                assert_eq!(stream.servers, [Dialect::Confab]);
                assert_eq!((plain.rooms, plain.subscribers_per_room, plain.publishers, plain.mode, plain.window), (stream.rooms, stream.subscribers_per_room, stream.publishers, stream.mode, stream.window));
            }
            let (c, sweep) = (find("c"), find("c-sweep"));
            assert!(sweep.old_messages >= 100_000 && c.old_messages == 0);
            assert_eq!((sweep.database, sweep.instances, sweep.servers.as_slice()), (Database::Sqlite, 1, [Dialect::Confab].as_slice()));
            assert_eq!((c.rooms, c.subscribers_per_room, c.publishers, c.mode), (sweep.rooms, sweep.subscribers_per_room, sweep.publishers, sweep.mode));
            assert!(all.iter().filter(|s| s.id != "a-stream" && s.id != "c-stream").all(|s| s.transport == Transport::Socket));
        }
    }

    #[test]
    fn the_full_profile_runs_the_socketio_comparisons_on_one_node_with_and_without_redis() {
        let full = catalog(Profile::Full);
        let find = |id: &str| full.iter().find(|s| s.id == id).unwrap_or_else(|| panic!("no scenario {id}"));
        assert_eq!(find("a-echo").mode, crate::load::SendMode::Echo);
        for base in ["a", "a-echo", "b", "c", "e16-sqlite"] {
            let plain = find(base);
            let redis = find(&format!("{base}-redis"));
            assert!(!plain.redis && redis.redis, "{base}");
            assert_eq!(redis.instances, 1, "{base}: one node");
            assert!(plain.servers.contains(&Dialect::Socketio) && redis.servers.contains(&Dialect::Socketio), "{base} runs against Socket.IO");
            assert!(!redis.servers.contains(&Dialect::Django), "{base}-redis: Django Channels is always on Redis");
            assert_eq!((plain.rooms, plain.subscribers_per_room, plain.window), (redis.rooms, redis.subscribers_per_room, redis.window));
        }
        assert!(catalog(Profile::Quick).iter().all(|s| !s.redis));
    }
}
