//! Faults of a Redis Cluster: these tests start one whatever `CONFAB_TEST_REDIS` says.

use super::harness::{Cluster, RedisKind};
use super::{Fault, messages_survive};

/// A master is SIGKILLed mid-stream: its replica is promoted, the instances follow the new
/// topology, health reports the layer down and then up, and `sync` gives every client
/// exactly what it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_killed_mid_stream_is_replaced_and_nothing_is_lost_after_sync() {
    let mut cluster = Cluster::start_on(2, RedisKind::Cluster).await;
    messages_survive(&mut cluster, Fault::MasterKill).await;
}
