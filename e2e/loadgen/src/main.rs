//! `loadgen`: the Confab load generator and benchmark.
//!
//! - `loadgen bench --profile full|quick`: every scenario against Confab and its
//!   peers (Django Channels, Socket.IO), and (f) on a Redis Cluster too (Confab only),
//!   starting and stopping the servers itself; writes
//!   `results.json`, `results.md` and `chart.svg`. `just bench` / `just bench-quick`.
//! - `loadgen run …`: one load against servers that are already running.
//! - `loadgen report`: re-renders the Markdown and the chart from a `results.json`.
//! - `loadgen soak --profile full|quick`: well-behaved clients chatting while hostile ones
//!   attack; exits non-zero on any loss, closed well-behaved socket or RSS past its bound.
//!   `just soak` (full) and `just soak quick`.
//!
//! # Layout
//! - [`ws`]: a lean WebSocket client (many frames per read, no allocation per message).
//! - [`http_stream`]: the same for Confab's HTTP stream (chunked `data:` lines in, keep-alive POSTs out).
//! - [`dialect`]: Confab JSON-RPC, the Django consumer's JSON, Socket.IO; the send time in the text.
//! - [`load`]: connections, publishers, phases, histograms: one run, one [`load::LoadResult`].
//! - [`accounts`]: Confab users and their tokens.
//! - [`servers`]: the server processes (pinned, logged, killed on drop), Redis, a Redis
//!   Cluster (3 masters + 3 replicas on private ports), PostgreSQL databases.
//! - [`bench`]: the scenarios and the orchestration; [`report`]: JSON, Markdown, SVG.
//! - [`write_path`]: the persisted-send scenarios and targets of the write path.
//! - [`people`]: the scenarios with many distinct users: presence storm, idle
//!   connections, restart.
//! - [`soak`]: the hostile-client soak; [`hostile`]: its attacks.
//! - [`sweep`]: the old messages of (c-sweep) and what the retention sweep did with them.
//! - [`procfs`], [`clock`]: CPU time and RSS from `/proc`; one monotonic clock.

mod accounts;
mod bench;
mod clock;
mod dialect;
mod hook_responder;
mod hostile;
mod http_stream;
mod load;
mod people;
mod procfs;
mod report;
mod servers;
mod soak;
mod sweep;
mod write_path;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::dialect::Dialect;
use crate::load::{Plan, SendMode};

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "Load generator and benchmark for Confab")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the benchmark: start servers, run every scenario, write results.
    Bench(BenchCmd),
    /// One load against running servers; prints the result as JSON.
    Run(RunCmd),
    /// Well-behaved clients chatting while hostile ones attack (starts its own server).
    Soak(SoakCmd),
    /// Re-render results.md and chart.svg from a results.json.
    Report {
        /// The results file.
        #[arg(long, default_value = "docs/bench/results.json")]
        results: PathBuf,
        /// Where to write results.md and chart.svg (default: next to the results file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
struct BenchCmd {
    #[arg(long, value_enum, default_value = "full")]
    profile: bench::Profile,
    /// Where results.json, results.md and chart.svg go.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// Only these scenarios (a, b, c, d, e-sqlite, e-postgres, a-pg, f-a, f-c; on a 3-shard Redis
    /// Cluster: f-a-rc2, f-a-rc3, f-c-rc2, f-c-rc3; write path: e16-sqlite, s-sqlite, c-pg, …;
    /// people: g (all sizes), g-1k, g-10k, g-100k, h, r).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only these servers.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "confab,django,socketio")]
    servers: Vec<Dialect>,
    #[arg(long, default_value = "target/release/confab")]
    confab_bin: PathBuf,
    #[arg(long, default_value = "e2e/bench/peers")]
    peers_dir: PathBuf,
    /// The Django peer's virtualenv (made by e2e/bench/setup-peers.sh).
    #[arg(long, env = "CONFAB_BENCH_VENV", default_value = "target/bench/venv")]
    venv: PathBuf,
    /// Logs and temporary data dirs.
    #[arg(long, default_value = "target/bench/work")]
    work_dir: PathBuf,
    /// CPUs for the servers (`taskset -c` list); default: the first half; `none`: unpinned.
    #[arg(long)]
    server_cpus: Option<String>,
    /// CPUs for the load generator; default: the second half; `none`: unpinned.
    #[arg(long)]
    loadgen_cpus: Option<String>,
    /// An existing PostgreSQL to create databases in (scripts/services.sh start gives one).
    #[arg(long, env = "CONFAB_BENCH_PG_URL", default_value = "postgres://postgres@127.0.0.1:15432/postgres")]
    pg_url: String,
    /// Loopback ports for the Redis Cluster nodes of the f-*-rc* scenarios (client and bus
    /// ports), apart from the test suites' 17101-17199.
    #[arg(long, env = "CONFAB_BENCH_REDIS_CLUSTER_PORTS", default_value = "17301-17399", value_parser = servers::parse_port_range)]
    redis_cluster_ports: (u16, u16),
    /// How to reproduce this run, for the report.
    #[arg(long, default_value = "just bench")]
    command_line: String,
    /// A note for the report (repeatable), e.g. what else the machine was doing.
    #[arg(long = "note", env = "BENCH_NOTE")]
    notes: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct SoakCmd {
    /// full: 1 000 well-behaved + 50 hostile, 60 s per phase; quick: 200 + 20, 15 s.
    #[arg(long, value_enum, default_value = "quick")]
    profile: bench::Profile,
    #[arg(long, env = "CONFAB_BIN", default_value = "target/release/confab")]
    confab_bin: PathBuf,
    /// Logs and the server's data dir.
    #[arg(long, default_value = "target/soak/work")]
    work_dir: PathBuf,
    /// Also write the report (Markdown) here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The server's peak RSS allowed, MiB (default: the profile's stated bound).
    #[arg(long)]
    max_rss_mib: Option<u64>,
    /// Seed of the well-behaved clients' schedule (both phases use it).
    #[arg(long, default_value_t = 19)]
    seed: u64,
    /// The commit measured, for the report.
    #[arg(long, default_value = "unknown")]
    commit: String,
    /// How to reproduce this run, for the report.
    #[arg(long, default_value = "loadgen soak")]
    command_line: String,
}

#[derive(clap::Args, Debug)]
struct RunCmd {
    #[arg(long, value_enum, default_value = "confab")]
    dialect: Dialect,
    /// Confab only: over a WebSocket or over the HTTP stream.
    #[arg(long, value_enum, default_value = "socket")]
    transport: load::Transport,
    /// Server address(es); connections are spread over them.
    #[arg(long = "endpoint", required = true)]
    endpoints: Vec<SocketAddr>,
    /// Confab: create this many users on the first endpoint and share their tokens.
    #[arg(long, default_value_t = 10)]
    users: usize,
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Messages per second per publisher; absent: flat out.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value_t = 32)]
    window: usize,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Server pids whose CPU and memory to measure.
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    #[arg(long, default_value_t = 0)]
    workers: usize,
    #[arg(long, default_value = "bench-run-")]
    room_prefix: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any reqwest client (see the rustls entry of Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("loadgen: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Bench(cmd) => {
            let (server_cpus, loadgen_cpus) = cpu_split(cmd.server_cpus.clone(), cmd.loadgen_cpus.clone());
            // Pin before any worker thread exists, so they all inherit it.
            if let Some(cpus) = &loadgen_cpus {
                pin_self(cpus);
            }
            runtime.block_on(bench_cmd(cmd, server_cpus, loadgen_cpus))
        }
        Command::Run(cmd) => runtime.block_on(run_cmd(cmd)),
        Command::Soak(cmd) => match runtime.block_on(soak_cmd(cmd)) {
            Ok(true) => Ok(()),
            Ok(false) => Err(anyhow::anyhow!("the soak failed a check (see above)")),
            Err(err) => Err(err),
        },
        Command::Report { results, out } => report_cmd(&results, out),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadgen: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Default: servers on the first half of the CPUs, the load generator on the rest.
fn cpu_split(server: Option<String>, loadgen: Option<String>) -> (Option<String>, Option<String>) {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let half = |from: usize, to: usize| if to - from == 1 { from.to_string() } else { format!("{from}-{}", to - 1) };
    let (ds, dl) = if n >= 2 { (Some(half(0, n / 2)), Some(half(n / 2, n))) } else { (None, None) };
    let pick = |given: Option<String>, default: Option<String>| match given.as_deref() {
        Some("none") => None,
        Some(_) => given,
        None => default,
    };
    (pick(server, ds), pick(loadgen, dl))
}

fn pin_self(cpus: &str) {
    let pid = std::process::id().to_string();
    match std::process::Command::new("taskset").args(["-a", "-p", "-c", cpus, &pid]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => eprintln!("loadgen: could not pin to CPUs {cpus}: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(err) => eprintln!("loadgen: could not pin to CPUs {cpus}: {err}"),
    }
}

async fn bench_cmd(cmd: BenchCmd, server_cpus: Option<String>, loadgen_cpus: Option<String>) -> anyhow::Result<()> {
    // Servers run in other working directories: make every path absolute.
    std::fs::create_dir_all(&cmd.work_dir)?;
    let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    let env = servers::Env {
        confab_bin: absolute(cmd.confab_bin),
        peers_dir: absolute(cmd.peers_dir),
        venv: absolute(cmd.venv),
        work_dir: absolute(cmd.work_dir),
        server_cpus,
        pg_url: Some(cmd.pg_url),
        cluster_ports: cmd.redis_cluster_ports,
    };
    let args = bench::BenchArgs {
        profile: cmd.profile,
        out: cmd.out.clone(),
        only: cmd.only,
        servers: cmd.servers,
        env,
        loadgen_cpus,
        command: cmd.command_line,
        notes: cmd.notes,
    };
    // Ctrl-C drops the benchmark future, and with it every server process it started.
    let results = tokio::select! {
        r = bench::run(args) => r?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    };
    let failed = results.runs.iter().filter(|r| r.status == bench::Status::Failed).count();
    eprintln!(
        "wrote {0}/results.json, {0}/results.md, {0}/chart.svg ({1} runs, {2} failed, {3:.0} s)",
        cmd.out.display(),
        results.runs.len(),
        failed,
        results.meta.wall_secs
    );
    Ok(())
}

async fn soak_cmd(cmd: SoakCmd) -> anyhow::Result<bool> {
    std::fs::create_dir_all(&cmd.work_dir)?;
    let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    let env = servers::Env {
        confab_bin: absolute(cmd.confab_bin),
        peers_dir: PathBuf::new(),
        venv: PathBuf::new(),
        work_dir: absolute(cmd.work_dir),
        server_cpus: None,
        pg_url: None,
        cluster_ports: (17301, 17399),
    };
    let args = soak::SoakArgs { profile: cmd.profile, env, out: cmd.out, max_rss_mib: cmd.max_rss_mib, seed: cmd.seed, commit: cmd.commit, command: cmd.command_line };
    tokio::select! {
        r = soak::run(args) => r,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    }
}

async fn run_cmd(cmd: RunCmd) -> anyhow::Result<()> {
    let tokens = if cmd.dialect == Dialect::Confab && cmd.users > 0 {
        accounts::tokens(&format!("http://{}", cmd.endpoints[0]), "loadgen", cmd.users).await?
    } else {
        Vec::new()
    };
    let secs = Duration::from_secs_f64;
    let plan = Plan {
        dialect: cmd.dialect,
        transport: cmd.transport,
        endpoints: cmd.endpoints,
        tokens,
        rooms: cmd.rooms,
        room_prefix: cmd.room_prefix,
        subscribers_per_room: cmd.subscribers,
        publishers: cmd.publishers,
        idle: cmd.idle,
        mode: cmd.rate.map_or(SendMode::FlatOut, SendMode::Rate),
        window: cmd.window,
        warmup: secs(cmd.warmup),
        duration: secs(cmd.duration),
        drain: secs(cmd.drain),
        settle: secs(1.0),
        connect_concurrency: 256,
        phase_timeout: secs(60.0),
        server_pids: cmd.server_pids,
        workers: cmd.workers,
    };
    let result = load::run(plan).await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

fn report_cmd(results: &std::path::Path, out: Option<PathBuf>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(results).with_context(|| format!("reading {}", results.display()))?;
    let parsed: bench::Results = serde_json::from_str(&text).with_context(|| format!("parsing {}", results.display()))?;
    let out = out.unwrap_or_else(|| results.parent().map_or_else(|| PathBuf::from("."), PathBuf::from));
    report::write_all(&parsed, &out)
}
