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

use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

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
            RedisMode::Cluster => {
                let client = cluster_client(url)?;
                Ok(Self::Cluster(client.get_async_connection().await.context("connecting to the Redis Cluster")?))
            }
            RedisMode::Single | RedisMode::Auto => {
                let first = nodes(url).into_iter().next().context("REDIS_URL is empty")?;
                let client = redis::Client::open(first.as_str()).context("parsing REDIS_URL")?;
                let conn = ConnectionManager::new_with_config(client, crate::layer::redis::manager_config()).await?;
                Ok(Self::Single(conn))
            }
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// A cluster client with the same short timeouts as the single-server connections, so a
/// shard without a master turns into prompt errors (and the layer's "down") rather than
/// requests that hang through a long retry schedule.
pub fn cluster_client(url: &str) -> anyhow::Result<redis::cluster::ClusterClient> {
    ClusterClientBuilder::new(nodes(url))
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(2))
        .retries(3)
        .min_retry_wait(50)
        .max_retry_wait(500)
        .build()
        .context("parsing REDIS_URL as cluster nodes")
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
    fn a_url_may_list_several_nodes() {
        assert_eq!(nodes("redis://a:1, redis://b:2,"), ["redis://a:1", "redis://b:2"]);
        assert_eq!(nodes("redis://a:1"), ["redis://a:1"]);
    }
}
