//! How an instance reaches Redis: one `redis-server`, or a Redis Cluster.
//!
//! `REDIS_URL` names a server; whether it is a cluster node is asked of the server itself
//! (`INFO cluster` → `cluster_enabled:1`), so pointing the URL at any node of a cluster
//! just works. `CONFAB_REDIS_MODE=single|cluster` overrides the detection. In cluster mode
//! the URL may list several nodes, comma-separated, so a start does not depend on one.
//!
//! [`RedisConn`] is the command connection presence and login throttling share: a
//! [`ConnectionManager`] on one server, a [`ClusterConnection`] (which follows `MOVED`/`ASK`
//! and refreshes the slot map after a failover) on a cluster. Every key a multi-key
//! command or script touches shares one hash tag, so it lives in one slot either way.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionAddr, ConnectionInfo, Pipeline, RedisFuture, Value};

/// Which kind of Redis deployment `REDIS_URL` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisMode {
    /// Ask the server (`INFO cluster`).
    #[default]
    Auto,
    /// One `redis-server` (or a proxy that behaves like one).
    Single,
    /// A Redis Cluster: sharded pub/sub, slot-aware commands.
    Cluster,
}

/// The nodes a `REDIS_URL` lists (one URL, or several separated by commas).
pub fn nodes(url: &str) -> Vec<String> {
    url.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Resolves [`RedisMode::Auto`] by asking the first node that answers.
pub async fn detect(url: &str, mode: RedisMode) -> anyhow::Result<RedisMode> {
    if mode != RedisMode::Auto {
        return Ok(mode);
    }
    let mut last_error = None;
    for node in nodes(url) {
        let client = redis::Client::open(node.as_str()).with_context(|| format!("parsing the Redis URL {node}"))?;
        let info = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("INFO").arg("cluster").query_async::<String>(&mut conn).await
        };
        match tokio::time::timeout(Duration::from_secs(3), info).await {
            Ok(Ok(info)) => {
                let cluster = info.lines().any(|l| l.trim() == "cluster_enabled:1");
                return Ok(if cluster { RedisMode::Cluster } else { RedisMode::Single });
            }
            Ok(Err(err)) => last_error = Some(anyhow::Error::new(err).context(format!("asking {node} for INFO cluster"))),
            Err(_) => last_error = Some(anyhow::anyhow!("{node} did not answer INFO cluster within 3 s")),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("REDIS_URL names no node")))
}

/// How every command connection of an instance talks to Redis: short timeouts and quick
/// retries, so a dead Redis turns into a prompt error (and the local fallback) instead of a
/// request that hangs while the connection manager backs off.
pub fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(Duration::from_secs(2))
        .set_number_of_retries(1)
        .set_max_delay(1000)
}

/// A command connection to a single server or a cluster; cheap to clone, multiplexed.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Connects in `mode` (already resolved: not [`RedisMode::Auto`]).
    pub async fn connect(url: &str, mode: RedisMode) -> anyhow::Result<Self> {
        match mode {
            RedisMode::Cluster => Self::cluster(&cluster_client(url).await?).await,
            RedisMode::Single | RedisMode::Auto => Self::single(single_client(url)?).await,
        }
    }

    /// A connection of its own from a single-server client already made.
    pub async fn single(client: redis::Client) -> anyhow::Result<Self> {
        Ok(Self::Single(ConnectionManager::new_with_config(client, manager_config()).await?))
    }

    /// A connection of its own from a cluster client already made.
    pub async fn cluster(client: &redis::cluster::ClusterClient) -> anyhow::Result<Self> {
        Ok(Self::Cluster(client.get_async_connection().await.context("connecting to the Redis Cluster")?))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// A client for the single server `url` names (its first node).
pub fn single_client(url: &str) -> anyhow::Result<redis::Client> {
    let first = nodes(url).into_iter().next().context("REDIS_URL is empty")?;
    redis::Client::open(first.as_str()).context("parsing REDIS_URL")
}

/// A cluster client with the same short timeouts as the single-server connections, so a
/// shard without a master turns into prompt errors (and the layer's "down") rather than
/// requests that hang through a long retry schedule.
///
/// Its seed nodes are the nodes `url` lists **and every node the cluster reported at start**
/// (masters and replicas, from `CLUSTER SLOTS`). The client falls back to its seeds when it
/// has lost every connection — which a failover can cause — so seeds that are only the one
/// node in `REDIS_URL` would strand an instance for good once that node died.
pub async fn cluster_client(url: &str) -> anyhow::Result<redis::cluster::ClusterClient> {
    let configured = nodes(url);
    let first: ConnectionInfo = configured.first().context("REDIS_URL is empty")?.parse().context("parsing REDIS_URL")?;
    let mut seeds = Vec::with_capacity(configured.len());
    for node in &configured {
        seeds.push(node.parse::<ConnectionInfo>().with_context(|| format!("parsing the Redis URL {node}"))?);
    }
    let mut known: HashSet<(String, u16)> = seeds.iter().filter_map(tcp_address).collect();
    for (host, port) in discover(&seeds).await {
        if known.insert((host.clone(), port)) {
            seeds.push(with_address(&first, host, port));
        }
    }
    ClusterClientBuilder::new(seeds)
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(2))
        .retries(3)
        .min_retry_wait(50)
        .max_retry_wait(500)
        .build()
        .context("parsing REDIS_URL as cluster nodes")
}

/// Every node address in the first answer to `CLUSTER SLOTS` from one of `seeds`; none when
/// no seed answers (the client then starts from the seeds alone and reports their errors).
async fn discover(seeds: &[ConnectionInfo]) -> Vec<(String, u16)> {
    for seed in seeds {
        let Some((seed_host, _)) = tcp_address(seed) else { continue };
        let asked = async {
            let mut conn = redis::Client::open(seed.clone())?.get_multiplexed_async_connection().await?;
            redis::cmd("CLUSTER").arg("SLOTS").query_async::<Value>(&mut conn).await
        };
        match tokio::time::timeout(Duration::from_secs(3), asked).await {
            Ok(Ok(slots)) => return slot_nodes(&slots, &seed_host),
            Ok(Err(err)) => tracing::debug!(%err, "CLUSTER SLOTS failed on a seed node"),
            Err(_) => tracing::debug!("CLUSTER SLOTS timed out on a seed node"),
        }
    }
    Vec::new()
}

/// The `host:port` of every master and replica in a `CLUSTER SLOTS` answer. An empty host
/// means "the node you asked" (`asked_host`). Malformed entries are skipped: this list only
/// widens the seeds.
pub fn slot_nodes(slots: &Value, asked_host: &str) -> Vec<(String, u16)> {
    let Value::Array(ranges) = slots else { return Vec::new() };
    let mut out = Vec::new();
    for range in ranges {
        let Value::Array(fields) = range else { continue };
        for node in fields.iter().skip(2) {
            let Value::Array(node) = node else { continue };
            let [host, port, ..] = node.as_slice() else { continue };
            let (Ok(host), Ok(port)) = (redis::from_redis_value::<String>(host), redis::from_redis_value::<u16>(port)) else { continue };
            let host = if host.is_empty() || host == "?" { asked_host.to_owned() } else { host };
            if !out.contains(&(host.clone(), port)) {
                out.push((host, port));
            }
        }
    }
    out
}

fn tcp_address(info: &ConnectionInfo) -> Option<(String, u16)> {
    match &info.addr {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), *port)),
        _ => None,
    }
}

/// `base` (credentials, TLS, protocol) pointed at another node.
pub fn with_address(base: &ConnectionInfo, host: String, port: u16) -> ConnectionInfo {
    let mut info = base.clone();
    info.addr = match &base.addr {
        ConnectionAddr::TcpTls { insecure, tls_params, .. } => ConnectionAddr::TcpTls { host, port, insecure: *insecure, tls_params: tls_params.clone() },
        _ => ConnectionAddr::Tcp(host, port),
    };
    info
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, cmd: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// The cluster slot of a key or channel name (CRC16/XMODEM of the name, or of its
/// `{hash tag}`, modulo 16384), as every cluster node computes it.
pub fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| key[open + 1..].iter().position(|&b| b == b'}').map(|len| &key[open + 1..open + 1 + len]))
        .filter(|tag| !tag.is_empty());
    crc16_xmodem(tagged.unwrap_or(key)) % 16384
}

fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_redis_cluster_specification() {
        // The specification's check value, and slots redis-cli reports (`CLUSTER KEYSLOT`).
        assert_eq!(crc16_xmodem(b"123456789"), 0x31c3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"), "an empty tag means the whole name");
        assert_eq!(slot(b"confab:{confab:p}:instances"), slot(b"confab:p"));
    }

    #[test]
    fn every_node_of_the_slot_map_becomes_a_seed() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let node = |host: &str, port: i64| Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]);
        let answer = Value::Array(vec![
            Value::Array(vec![Value::Int(0), Value::Int(5460), node("10.0.0.1", 7001), node("10.0.0.4", 7004)]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("", 7002), node("10.0.0.1", 7001)]),
            Value::Array(vec![Value::Int(1)]),
        ]);
        let got = slot_nodes(&answer, "10.0.0.9");
        assert_eq!(got, [("10.0.0.1".to_owned(), 7001), ("10.0.0.4".to_owned(), 7004), ("10.0.0.9".to_owned(), 7002)]);
        assert!(slot_nodes(&Value::Int(1), "h").is_empty());
    }

    #[test]
    fn a_url_may_list_several_nodes() {
        assert_eq!(nodes("redis://a:1, redis://b:2,"), ["redis://a:1", "redis://b:2"]);
        assert_eq!(nodes("redis://a:1"), ["redis://a:1"]);
    }
}
