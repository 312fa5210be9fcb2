//! Faults of a Redis Cluster: these tests start one whatever `CONFAB_TEST_REDIS` says.

use super::harness::{Cluster, RedisKind};
use super::tabs::{LEFT_OFFLINE, NOTHING, ONLINE_JOINED, Stage};
use super::{Fault, messages_survive};

/// A master is SIGKILLed mid-stream: its replica is promoted, the instances follow the new
/// topology, health reports the layer down and then up, and `sync` gives every client
/// exactly what it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_killed_mid_stream_is_replaced_and_nothing_is_lost_after_sync() {
    let mut cluster = Cluster::start_on(2, RedisKind::Cluster).await;
    messages_survive(&mut cluster, Fault::MasterKill).await;
}

/// A user with tabs on both instances while the master that holds presence is SIGKILLed
/// (once its replica has everything): before and after the failover, a second tab is
/// announced nowhere, and only the last tab closing announces the departure, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tabs_on_two_instances_are_announced_once_across_a_failover_of_the_presence_master() {
    let mut cluster = Cluster::start_on(2, RedisKind::Cluster).await;
    let mut stage = Stage::new(&cluster, 2, "presence-failover").await;
    let mut first = stage.open(&cluster, 0).await;
    stage.join(&mut first).await;
    stage.expect(&cluster, "a tab on instance 0 joins", ONLINE_JOINED).await;
    let mut second = stage.open(&cluster, 1).await;
    stage.join(&mut second).await;
    stage.expect(&cluster, "a tab on instance 1 joins", NOTHING).await;

    let presence = "confab:{confab:p}:instances";
    let master = cluster.redis_cluster().master_of(presence);
    cluster.redis_cluster().wait_replicated(master);
    cluster.redis_cluster().kill_master_of(presence);
    cluster.redis_cluster().wait_ok();
    cluster.wait_healthy(0).await;
    cluster.wait_healthy(1).await;

    stage.close(&cluster, first).await;
    stage.expect(&cluster, "after the failover, the tab on instance 0 closes", NOTHING).await;
    let mut third = stage.open(&cluster, 0).await;
    stage.join(&mut third).await;
    stage.expect(&cluster, "a new tab on instance 0 joins", NOTHING).await;
    stage.close(&cluster, second).await;
    stage.expect(&cluster, "the tab on instance 1 closes", NOTHING).await;
    stage.close(&cluster, third).await;
    stage.expect(&cluster, "the last tab closes", LEFT_OFFLINE).await;
}
