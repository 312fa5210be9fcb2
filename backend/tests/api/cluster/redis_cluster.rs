//! A real Redis Cluster for a test: six `redis-server --cluster-enabled yes` processes on
//! private loopback ports (three masters, three replicas, made by `redis-cli --cluster
//! create`), in a temporary directory, killed when the value is dropped.
//!
//! Ports (client and cluster bus port of each node) are free ports the system hands out, so
//! parallel tests and other suites on the machine never collide; `CONFAB_TEST_REDIS_CLUSTER_PORTS`
//! (e.g. `17101-17199`) confines them to a range instead. A short `cluster-node-timeout` makes a failover take
//! seconds, not the default 15 s.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NODES: usize = 6;
/// How long a master may be silent before its replica takes over.
const NODE_TIMEOUT_MS: u32 = 2000;
const WAIT: Duration = Duration::from_secs(30);

/// The next port of the configured range to try, shared by the tests of this process.
static NEXT_PORT: Mutex<Option<u16>> = Mutex::new(None);

/// The range `CONFAB_TEST_REDIS_CLUSTER_PORTS` names, if set.
fn port_range() -> Option<(u16, u16)> {
    let spec = std::env::var("CONFAB_TEST_REDIS_CLUSTER_PORTS").ok()?;
    let parsed = spec.split_once('-').and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    match parsed {
        Some((low, high)) if low < high => Some((low, high)),
        _ => panic!("CONFAB_TEST_REDIS_CLUSTER_PORTS must look like 17101-17199, not {spec:?}"),
    }
}

/// A port of the configured range free now (the counter keeps this process from reusing one).
fn take_port((low, high): (u16, u16)) -> u16 {
    let mut next = NEXT_PORT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in low..=high {
        let port = next.unwrap_or(low);
        *next = Some(if port >= high { low } else { port + 1 });
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port left in {low}-{high} for a Redis Cluster node");
}

struct Node {
    port: u16,
    bus: u16,
    child: Option<Child>,
}

pub struct RedisCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
}

impl RedisCluster {
    /// Starts six nodes and joins them into a cluster whose every slot is served.
    pub fn start(parent: &Path) -> Self {
        let dir = parent.join("redis-cluster");
        std::fs::create_dir_all(&dir).expect("a directory for the cluster");
        let nodes = match port_range() {
            Some(range) => (0..NODES).map(|_| Node { port: take_port(range), bus: take_port(range), child: None }).collect(),
            None => {
                // Every port stays bound until all are chosen, so the system hands out twelve
                // different ones.
                let held: Vec<TcpListener> =
                    (0..2 * NODES).map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
                let ports: Vec<u16> = held.iter().map(|l| l.local_addr().expect("a bound port").port()).collect();
                ports.chunks(2).map(|pair| Node { port: pair[0], bus: pair[1], child: None }).collect()
            }
        };
        let mut cluster = Self { dir, nodes };
        cluster.start_all();
        let addresses: Vec<String> = cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("running redis-cli --cluster create (install redis-tools)");
        assert!(
            created.status.success(),
            "redis-cli --cluster create {addresses:?} failed:\n{}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        cluster.wait_ok();
        cluster.wait_replicas_synced();
        cluster
    }

    /// A replica that has not finished its first sync cannot be promoted: wait for every
    /// replica's link to its master to be up before a test may kill a master.
    fn wait_replicas_synced(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let synced = self.nodes.iter().all(|n| {
                cli(n.port, &["INFO", "replication"]).is_some_and(|info| info.contains("role:master") || info.contains("master_link_status:up"))
            });
            if synced {
                return;
            }
            assert!(Instant::now() < deadline, "the replicas did not sync within {WAIT:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A URL naming one node (any works).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.nodes[0].port)
    }

    /// (Re)starts every node that is not running.
    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].child.is_none() {
                self.spawn(i);
            }
        }
        for node in &self.nodes {
            wait_for_port(node.port);
        }
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let child = Command::new("redis-server")
            .args(["--port", &node.port.to_string(), "--cluster-port", &node.bus.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("nodes-{}.conf", node.port)])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawning redis-server (install redis-server)");
        node.child = Some(child);
    }

    /// Kills every node abruptly (their data is lost; the cluster layout is kept on disk).
    pub fn stop_all(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// SIGKILLs the master that serves `key`'s slot; returns its port.
    pub fn kill_master_of(&mut self, key: &str) -> u16 {
        let port = self.master_of(key);
        let node = self.nodes.iter_mut().find(|n| n.port == port).expect("the master is one of ours");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        port
    }

    /// Waits until the replicas of the master on `port` have everything it had written when
    /// asked (so a failover loses none of it).
    pub fn wait_replicated(&self, port: u16) {
        let field = |info: &str, name: &str| -> Option<u64> {
            info.lines().find_map(|l| l.trim().strip_prefix(name)?.parse().ok())
        };
        let info = cli(port, &["INFO", "replication"]).expect("the master answers INFO replication");
        let written = field(&info, "master_repl_offset:").expect("master_repl_offset");
        let deadline = Instant::now() + WAIT;
        loop {
            let info = cli(port, &["INFO", "replication"]).unwrap_or_default();
            let offsets: Vec<u64> = info
                .lines()
                .filter(|l| l.starts_with("slave"))
                .filter_map(|l| l.split(',').find_map(|kv| kv.strip_prefix("offset=")?.parse().ok()))
                .collect();
            if !offsets.is_empty() && offsets.iter().all(|o| *o >= written) {
                return;
            }
            assert!(Instant::now() < deadline, "the replicas of port {port} did not reach offset {written}:\n{info}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port of the master that serves `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        let slot: u16 = self.cli_any(&["CLUSTER", "KEYSLOT", key]).trim().parse().expect("a slot number");
        let nodes = self.cli_any(&["CLUSTER", "NODES"]);
        nodes
            .lines()
            .filter(|line| line.split(' ').nth(2).is_some_and(|flags| flags.contains("master") && !flags.contains("fail")))
            .find(|line| line.split(' ').skip(8).any(|range| covers(range, slot)))
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|addr| addr.split('@').next()?.rsplit(':').next()?.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no master serves slot {slot}:\n{nodes}"))
    }

    /// Waits until every running node reports `cluster_state:ok` (after a failover: the
    /// replica has been promoted and every slot is served again).
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let ok = self
                .nodes
                .iter()
                .filter(|n| n.child.is_some())
                .all(|n| cli(n.port, &["CLUSTER", "INFO"]).is_some_and(|info| info.contains("cluster_state:ok")));
            if ok {
                return;
            }
            if Instant::now() >= deadline {
                let nodes = self.cli_any(&["CLUSTER", "NODES"]);
                panic!("the Redis Cluster did not reach cluster_state:ok within {WAIT:?}:\n{nodes}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn cli_any(&self, args: &[&str]) -> String {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .find_map(|n| cli(n.port, args))
            .unwrap_or_else(|| panic!("no cluster node answered {args:?}"))
    }
}

/// Whether a `CLUSTER NODES` slot field (`5461-10922`, `42`, or a migration marker) covers `slot`.
fn covers(range: &str, slot: u16) -> bool {
    if range.starts_with('[') {
        return false;
    }
    let (low, high) = range.split_once('-').unwrap_or((range, range));
    matches!((low.parse::<u16>(), high.parse::<u16>()), (Ok(low), Ok(high)) if low <= slot && slot <= high)
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server on port {port} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli").args(["-p", &port.to_string()]).args(args).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned()).filter(|s| !s.starts_with("ERR") && !s.is_empty())
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}
