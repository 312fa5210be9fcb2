//! The processes a benchmark run talks to: Confab instances, the peers, Redis (one
//! `redis-server`, or a Redis Cluster of masters and replicas), and a fresh PostgreSQL
//! database. Each is a child of the load generator, pinned with `taskset` to the server
//! CPUs, logging to a file, and killed when its handle drops.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Where things are and how to pin them.
#[derive(Clone, Debug)]
pub struct Env {
    pub confab_bin: PathBuf,
    pub peers_dir: PathBuf,
    pub venv: PathBuf,
    /// Folder for logs and temporary data dirs of this run.
    pub work_dir: PathBuf,
    /// `taskset -c` list for servers; `None`: not pinned.
    pub server_cpus: Option<String>,
    pub pg_url: Option<String>,
    /// Loopback ports (inclusive) for Redis Cluster nodes, client and bus ports alike: apart
    /// from the test suites' 17101–17199 and the services' 16379/15432 (default 17301–17399,
    /// `--redis-cluster-ports`).
    pub cluster_ports: (u16, u16),
}

/// Parses a port range such as `17301-17399`.
pub fn parse_port_range(spec: &str) -> Result<(u16, u16), String> {
    let parsed = spec.split_once('-').and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)));
    match parsed {
        Some((low, high)) if low > 0 && low < high => Ok((low, high)),
        _ => Err(format!("expected a port range such as 17301-17399, not {spec:?}")),
    }
}

/// A running child process; killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub name: String,
    pub pid: u32,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn spawn(env: &Env, name: &str, program: &Path, args: &[String], envs: &[(&str, String)], cwd: Option<&Path>) -> anyhow::Result<Self> {
        let log = env.work_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let mut cmd = match &env.server_cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let child = cmd.spawn().with_context(|| format!("start {name} ({})", program.display()))?;
        // taskset execs the program, so the pid is the server's own.
        Ok(Self { name: name.to_owned(), pid: child.id(), child })
    }

    /// Stops the process as a deployment would (SIGTERM: Confab closes its sockets with 1001
    /// and exits), SIGKILL after `grace`; returns once it is gone.
    pub fn terminate(&mut self, grace: Duration) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Fails if the process has exited (with the tail of its log).
    fn check_alive(&mut self, env: &Env) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(env.work_dir.join(format!("{}.log", self.name))).unwrap_or_default();
            let tail: String = log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            bail!("{} exited ({status}):\n{tail}", self.name);
        }
        Ok(())
    }
}

/// A free loopback port (bound, read, released: the server binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn wait_listening(proc: &mut Proc, env: &Env, addr: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        proc.check_alive(env)?;
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} did not listen on {addr} within {limit:?}", proc.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A private redis-server (no persistence).
pub async fn redis(env: &Env, name: &str) -> anyhow::Result<(Proc, String)> {
    let port = free_port()?;
    let dir = env.work_dir.join(name);
    std::fs::create_dir_all(&dir)?;
    let args = ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxclients", "10000"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(["--dir".to_owned(), dir.display().to_string()])
        .collect::<Vec<_>>();
    let mut proc = Proc::spawn(env, name, Path::new("redis-server"), &args, &[], None)?;
    wait_listening(&mut proc, env, loopback(port), Duration::from_secs(10)).await?;
    Ok((proc, format!("redis://127.0.0.1:{port}")))
}

/// A Redis Cluster of `masters` shards, each a master and one replica: `2 × masters`
/// `redis-server --cluster-enabled yes` processes on private loopback ports (client and bus
/// port from [`Env::cluster_ports`]) with their files in a fresh directory, joined by
/// `redis-cli --cluster create … --cluster-replicas 1`. Every node is killed, and the
/// directory removed, when the value drops.
pub struct RedisCluster {
    /// Killed before `dir` is removed (see `Drop`).
    nodes: Vec<ClusterNode>,
    dir: PathBuf,
    shards: Vec<Shard>,
}

struct ClusterNode {
    port: u16,
    proc: Proc,
}

/// One shard as `CLUSTER NODES` reported it once the cluster was up.
#[derive(Clone, Debug)]
pub struct Shard {
    /// `127.0.0.1:<port>` of the master.
    pub master: String,
    pub master_pid: u32,
    /// The slot ranges the master serves, e.g. `0-5460`.
    pub slots: String,
    pub replica_pids: Vec<u32>,
}

/// The next cluster port to try: the counter makes consecutive runs use fresh ports, so a
/// node never binds one that the previous run's node may still hold in `TIME_WAIT`.
static NEXT_CLUSTER_PORT: Mutex<Option<u16>> = Mutex::new(None);

/// A port of the range that is free now.
fn cluster_port((low, high): (u16, u16)) -> anyhow::Result<u16> {
    // No lock spans an `.await`: a std Mutex is the right tool.
    let mut next = NEXT_CLUSTER_PORT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in low..=high {
        let port = next.filter(|p| (low..=high).contains(p)).unwrap_or(low);
        *next = Some(if port >= high { low } else { port + 1 });
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port left in {low}-{high} for a Redis Cluster node (--redis-cluster-ports)")
}

/// How long the cluster may take to form (create, `cluster_state:ok`, replicas in sync).
const CLUSTER_WAIT: Duration = Duration::from_secs(30);

impl RedisCluster {
    pub async fn start(env: &Env, name: &str, masters: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(masters >= 3, "a Redis Cluster needs at least 3 masters, not {masters}");
        let dir = env.work_dir.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut cluster = Self { nodes: Vec::new(), dir, shards: Vec::new() };
        for _ in 0..2 * masters {
            let (port, bus) = (cluster_port(env.cluster_ports)?, cluster_port(env.cluster_ports)?);
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--cluster-port",
                &bus.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &format!("nodes-{port}.conf"),
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxclients",
                "10000",
                // A replica's first sync waits 5 s by default for more replicas to share it.
                "--repl-diskless-sync-delay",
                "0",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .chain(["--dir".to_owned(), cluster.dir.display().to_string()])
            .collect();
            let proc = Proc::spawn(env, &format!("{name}-{port}"), Path::new("redis-server"), &args, &[], None)?;
            cluster.nodes.push(ClusterNode { port, proc });
        }
        for node in &mut cluster.nodes {
            wait_listening(&mut node.proc, env, loopback(node.port), Duration::from_secs(10)).await?;
        }
        let addresses: Vec<String> = cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create").args(&addresses).args(["--cluster-replicas", "1", "--cluster-yes"]);
        run_logged(env, &format!("{name}-create"), create, CLUSTER_WAIT).await?;
        cluster.wait_formed(env, masters).await?;
        cluster.shards = cluster.read_shards().await?;
        anyhow::ensure!(cluster.shards.len() == masters, "the cluster has {} shards, not {masters}", cluster.shards.len());
        Ok(cluster)
    }

    /// `REDIS_URL` for Confab: the masters, comma-separated (any one would do; the list
    /// means the start does not depend on one node).
    pub fn url(&self) -> String {
        self.shards.iter().map(|s| format!("redis://{}", s.master)).collect::<Vec<_>>().join(",")
    }

    /// Every node's pid, masters and replicas.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.proc.pid).collect()
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Waits until every node reports `cluster_state:ok`, sees `masters` masters serving
    /// slots and `masters` replicas (right after `--cluster create`, gossip may still show a
    /// replica as an empty master), and every replica's link to its master is up: then each
    /// node serves the same slot map, and no first sync runs during the measurement.
    async fn wait_formed(&mut self, env: &Env, masters: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + CLUSTER_WAIT;
        loop {
            let mut pending = None;
            for node in &self.nodes {
                if !node_formed(node.port, masters).await {
                    pending = Some(node.port);
                    break;
                }
            }
            let Some(port) = pending else { return Ok(()) };
            for node in &mut self.nodes {
                node.proc.check_alive(env)?;
            }
            if Instant::now() > deadline {
                let nodes = command(port, &["CLUSTER", "NODES"]).await.unwrap_or_default();
                bail!("the Redis Cluster node on port {port} did not reach cluster_state:ok with synced replicas within {CLUSTER_WAIT:?}:\n{nodes}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The shards from `CLUSTER NODES` (masters serving slots), in port order.
    async fn read_shards(&self) -> anyhow::Result<Vec<Shard>> {
        let first = self.nodes.first().context("a cluster without nodes")?;
        let text = command(first.port, &["CLUSTER", "NODES"]).await?;
        let pid_of = |addr: &str| -> anyhow::Result<u32> {
            let port: u16 = addr.rsplit(':').next().and_then(|p| p.parse().ok()).with_context(|| format!("a node address without a port: {addr}"))?;
            self.nodes.iter().find(|n| n.port == port).map(|n| n.proc.pid).with_context(|| format!("CLUSTER NODES names {addr}, which is not one of ours"))
        };
        let parsed = parse_cluster_nodes(&text)?;
        let mut shards = Vec::new();
        for master in parsed.iter().filter(|n| n.role == NodeRole::Master && !n.slots.is_empty()) {
            let replica_pids = parsed
                .iter()
                .filter(|r| r.role == NodeRole::Replica && r.master_id.as_deref() == Some(master.id.as_str()))
                .map(|r| pid_of(&r.addr))
                .collect::<anyhow::Result<Vec<_>>>()?;
            shards.push(Shard { master: master.addr.clone(), master_pid: pid_of(&master.addr)?, slots: master.slots.clone(), replica_pids });
        }
        shards.sort_by_key(|s| s.master.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()));
        Ok(shards)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        // Each Proc is SIGKILLed and reaped as it drops; then nothing holds the files.
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum NodeRole {
    Master,
    Replica,
}

/// A master or replica line of `CLUSTER NODES`.
#[derive(Debug)]
struct NodeLine {
    id: String,
    /// `ip:port`, without the bus port.
    addr: String,
    role: NodeRole,
    /// A replica's master.
    master_id: Option<String>,
    /// A master's slot ranges, space-separated.
    slots: String,
}

/// Every master and replica of `CLUSTER NODES`:
/// `<id> <ip:port@bus> <flags> <master-id|-> <ping> <pong> <epoch> <link> <slot>…`.
fn parse_cluster_nodes(text: &str) -> anyhow::Result<Vec<NodeLine>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        anyhow::ensure!(fields.len() >= 8, "unexpected CLUSTER NODES line: {line}");
        let addr = fields[1].split('@').next().unwrap_or(fields[1]).to_owned();
        let flags = fields[2];
        let role = if flags.split(',').any(|f| f == "master") {
            NodeRole::Master
        } else if flags.split(',').any(|f| f == "slave") {
            NodeRole::Replica
        } else {
            continue;
        };
        let master_id = (fields[3] != "-").then(|| fields[3].to_owned());
        // Slot ranges; migration markers (`[…]`) are not ranges a master serves.
        let slots = fields[8..].iter().filter(|f| !f.starts_with('[')).copied().collect::<Vec<_>>().join(" ");
        out.push(NodeLine { id: fields[0].to_owned(), addr, role, master_id, slots });
    }
    Ok(out)
}

/// Whether the node on `port` is in a formed cluster of `masters` shards (see `wait_formed`).
async fn node_formed(port: u16, masters: usize) -> bool {
    let info = command(port, &["CLUSTER", "INFO"]).await.unwrap_or_default();
    let replication = command(port, &["INFO", "replication"]).await.unwrap_or_default();
    let nodes = command(port, &["CLUSTER", "NODES"]).await.ok().and_then(|t| parse_cluster_nodes(&t).ok()).unwrap_or_default();
    let serving = nodes.iter().filter(|n| n.role == NodeRole::Master && !n.slots.is_empty()).count();
    let replicas = nodes.iter().filter(|n| n.role == NodeRole::Replica).count();
    info.contains("cluster_state:ok")
        && (replication.contains("role:master") || replication.contains("master_link_status:up"))
        && serving == masters
        && replicas == masters
}

/// One Redis command on a fresh connection (RESP2), answered with a simple or bulk string;
/// bounded by a timeout, so a hung node fails the start instead of hanging it.
async fn command(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(loopback(port)).await?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(4096);
        loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "connection closed before a whole reply");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(reply) = parse_reply(&buf)? {
                return Ok(reply);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), exchange).await.with_context(|| format!("redis on port {port}: {args:?} timed out"))?
}

/// A complete simple-string or bulk-string reply; `None` while more bytes are needed.
fn parse_reply(buf: &[u8]) -> anyhow::Result<Option<String>> {
    let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
    let line = String::from_utf8_lossy(&buf[1..line_end]).into_owned();
    match buf.first() {
        Some(b'+') => Ok(Some(line)),
        Some(b'-') => bail!("redis error: {line}"),
        Some(b'$') => {
            let len: usize = line.parse().with_context(|| format!("bad bulk length {line:?}"))?;
            let start = line_end + 2;
            if buf.len() < start + len {
                return Ok(None);
            }
            Ok(Some(String::from_utf8_lossy(&buf[start..start + len]).into_owned()))
        }
        _ => bail!("unexpected redis reply: {:?}", String::from_utf8_lossy(buf)),
    }
}

/// Runs a helper command to completion with its output in `<name>.log`, killing it after `limit`.
async fn run_logged(env: &Env, name: &str, mut cmd: Command, limit: Duration) -> anyhow::Result<()> {
    let log = env.work_dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).spawn().with_context(|| format!("start {program}"))?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            bail!("{name} ({program}) failed ({status}):\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{name} ({program}) did not finish within {limit:?} (see {})", log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How a Confab instance is backed.
#[derive(Clone, Debug, Default)]
pub struct ConfabBacking {
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
}

/// The JWT secret of every benchmark instance: instances of one run share it, so a token
/// works on either, and `confab user import --sessions` signs with it.
pub const BENCH_JWT_SECRET: &str = "confab-bench-secret-0123456789abcdef0123456789abcdef";

/// A Confab instance with a fresh data dir; ready once `/api/health` answers 200.
pub async fn confab(env: &Env, name: &str, backing: &ConfabBacking) -> anyhow::Result<(Proc, SocketAddr)> {
    confab_with(env, name, backing, &[]).await
}

/// [`confab`] with `extra` environment.
pub async fn confab_with(env: &Env, name: &str, backing: &ConfabBacking, extra: &[(&'static str, String)]) -> anyhow::Result<(Proc, SocketAddr)> {
    let data = env.work_dir.join(format!("{name}-data"));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let port = free_port()?;
    confab_at(env, name, backing, port, &data, extra).await
}

/// The environment of a benchmark instance with data in `data` (also what
/// `confab user import` runs with, so it writes the same database with the same secret).
pub fn confab_env(backing: &ConfabBacking, port: u16, data: &Path) -> Vec<(&'static str, String)> {
    let mut envs = vec![
        ("CONFAB_BIND", format!("127.0.0.1:{port}")),
        ("CONFAB_DATA_DIR", data.display().to_string()),
        ("CONFAB_JWT_SECRET", BENCH_JWT_SECRET.to_owned()),
        // The benchmark is the load: no per-connection call limit nor message-byte limit, no login or sign-up throttle,
        // no socket caps (every client comes from 127.0.0.1, users reuse tokens across many
        // sockets), no expiry mid-run.
        ("CONFAB_RATE_PER_SEC", "1000000000".to_owned()),
        ("CONFAB_WRITE_BYTES_PER_SEC", "4000000000".to_owned()),
        ("CONFAB_LOGIN_ATTEMPTS", "1000000".to_owned()),
        ("CONFAB_SIGNUPS_PER_IP", "0".to_owned()),
        ("CONFAB_MAX_SOCKETS_PER_IP", "0".to_owned()),
        ("CONFAB_MAX_SOCKETS_PER_USER", "0".to_owned()),
        ("CONFAB_ACCESS_TTL_SECS", "7200".to_owned()),
        ("CONFAB_STATIC_DIR", data.join("no-spa").display().to_string()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    if let Some(url) = &backing.database_url {
        envs.push(("DATABASE_URL", url.clone()));
    }
    if let Some(url) = &backing.redis_url {
        envs.push(("REDIS_URL", url.clone()));
    }
    envs
}

/// A Confab instance on `port` with the data dir `data` as it is (a restart keeps both),
/// with `extra` environment on top of [`confab_env`].
pub async fn confab_at(env: &Env, name: &str, backing: &ConfabBacking, port: u16, data: &Path, extra: &[(&'static str, String)]) -> anyhow::Result<(Proc, SocketAddr)> {
    if !env.confab_bin.exists() {
        bail!("{} not found (bash scripts/build.sh server)", env.confab_bin.display());
    }
    let mut envs = confab_env(backing, port, data);
    envs.extend(extra.iter().cloned());
    let mut proc = Proc::spawn(env, name, &env.confab_bin, &[], &envs, None)?;
    let addr = loopback(port);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        proc.check_alive(env)?;
        if let Ok(resp) = client.get(format!("http://{addr}/api/health")).send().await
            && resp.status().is_success()
        {
            return Ok((proc, addr));
        }
        if Instant::now() > deadline {
            bail!("{name} not healthy within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Django Channels peer under daphne, with its channel layer on `redis_url`.
pub async fn django(env: &Env, name: &str, redis_url: &str) -> anyhow::Result<(Proc, SocketAddr)> {
    let daphne = env.venv.join("bin/daphne");
    if !daphne.exists() {
        bail!("{} not found (bash e2e/bench/setup-peers.sh)", daphne.display());
    }
    let port = free_port()?;
    let dir = env.peers_dir.join("django");
    let args = ["-v", "0", "-b", "127.0.0.1", "-p", &port.to_string(), "benchsite.asgi:application"].map(str::to_owned);
    let envs = [("REDIS_URL", redis_url.to_owned()), ("DJANGO_SETTINGS_MODULE", "benchsite.settings".to_owned()), ("PYTHONPATH", dir.display().to_string())];
    let mut proc = Proc::spawn(env, name, &daphne, &args, &envs, Some(&dir))?;
    let addr = loopback(port);
    wait_listening(&mut proc, env, addr, Duration::from_secs(30)).await?;
    Ok((proc, addr))
}

/// The Socket.IO peer under node; with `redis_url`, instances share rooms via the Redis adapter.
pub async fn socketio(env: &Env, name: &str, redis_url: Option<&str>) -> anyhow::Result<(Proc, SocketAddr)> {
    let dir = env.peers_dir.join("socketio");
    if !dir.join("node_modules/socket.io").exists() {
        bail!("{}/node_modules missing (bash e2e/bench/setup-peers.sh)", dir.display());
    }
    let port = free_port()?;
    let mut envs = vec![("PORT", port.to_string())];
    if let Some(url) = redis_url {
        envs.push(("REDIS_URL", url.to_owned()));
    }
    let mut proc = Proc::spawn(env, name, Path::new("node"), &["server.js".to_owned()], &envs, Some(&dir))?;
    let addr = loopback(port);
    wait_listening(&mut proc, env, addr, Duration::from_secs(30)).await?;
    Ok((proc, addr))
}

/// A fresh PostgreSQL database, dropped on drop.
pub struct PgDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDb {
    pub fn create(admin_url: &str, name: &str) -> anyhow::Result<Self> {
        psql(admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        psql(admin_url, &format!("CREATE DATABASE {name}"))?;
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(base, _)| base);
        Ok(Self { admin_url: admin_url.to_owned(), name: name.to_owned(), url: format!("{base}/{name}") })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = psql(&self.admin_url, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql").arg(url).arg("-v").arg("ON_ERROR_STOP=1").arg("-qc").arg(sql).output().context("psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Whether PostgreSQL answers at `url`.
pub fn pg_available(url: &str) -> bool {
    psql(url, "SELECT 1").is_ok()
}

#[cfg(test)]
mod tests {
    use super::{NodeRole, parse_cluster_nodes, parse_port_range, parse_reply};

    #[test]
    fn cluster_nodes_are_read_as_masters_with_slots_and_replicas_with_their_master() {
        let text = "\
07c3 127.0.0.1:17301@17302 myself,master - 0 0 1 connected 0-5460
9a1f 127.0.0.1:17303@17304 master - 0 1700000000000 2 connected 5461-10922 [5500->-abc]
e2b4 127.0.0.1:17305@17306 slave 07c3 0 1700000000000 1 connected
";
        let nodes = parse_cluster_nodes(text).expect("parsed");
        assert_eq!(nodes.len(), 3);
        assert_eq!((nodes[0].addr.as_str(), &nodes[0].role, nodes[0].slots.as_str()), ("127.0.0.1:17301", &NodeRole::Master, "0-5460"));
        assert_eq!(nodes[1].slots, "5461-10922");
        assert_eq!((&nodes[2].role, nodes[2].master_id.as_deref()), (&NodeRole::Replica, Some("07c3")));
    }

    #[test]
    fn replies_are_complete_only_with_their_whole_bulk() {
        assert_eq!(parse_reply(b"+OK\r\n").expect("ok"), Some("OK".to_owned()));
        assert_eq!(parse_reply(b"$5\r\nhel").expect("partial"), None);
        assert_eq!(parse_reply(b"$5\r\nhello\r\n").expect("bulk"), Some("hello".to_owned()));
        assert!(parse_reply(b"-ERR no\r\n").is_err());
    }

    #[test]
    fn a_port_range_has_a_low_and_a_higher_end() {
        assert_eq!(parse_port_range("17301-17399"), Ok((17301, 17399)));
        assert!(parse_port_range("17399-17301").is_err());
        assert!(parse_port_range("17301").is_err());
    }
}
