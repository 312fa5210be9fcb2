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

/// A user with tabs on both instances, before and after the master that holds presence is
/// SIGKILLed (once its replica has everything): before, the second tab is announced nowhere;
/// when Redis is back every socket is asked to reconnect (1013), which takes the user away;
/// after, a new cast of watchers hears the user arrive once, a second tab nothing, and only
/// the last tab leave, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tabs_on_two_instances_are_announced_once_before_and_after_a_failover_of_the_presence_master() {
    let mut cluster = Cluster::start_on(2, RedisKind::Cluster).await;
    let mut before = Stage::new(&cluster, 2, "presence-failover").await;
    let mut first = before.open(&cluster, 0).await;
    before.join(&mut first).await;
    before.expect(&cluster, "before the failover, a tab on instance 0 joins", ONLINE_JOINED).await;
    let mut second = before.open(&cluster, 1).await;
    before.join(&mut second).await;
    before.expect(&cluster, "before the failover, a tab on instance 1 joins", NOTHING).await;

    let presence = "confab:{confab:p}:instances";
    let master = cluster.redis_cluster().master_of(presence);
    cluster.redis_cluster().wait_replicated(master);
    cluster.redis_cluster().kill_master_of(presence);
    cluster.redis_cluster().wait_ok();
    for tab in [&mut first, &mut second] {
        assert_eq!(before.closed_by_server(tab).await, Some(1013), "a socket kept across the failover");
    }
    before.expect_all_closed_with(1013).await;
    for i in 0..2 {
        cluster.wait_healthy(i).await;
        cluster.wait_all_closed(i).await;
    }

    let mut after = before.recast(&cluster, 2, "b").await;
    // The markers' first decisions make each instance write its presence back if it still
    // has to: whatever that announces about the closed tabs is heard before the barrier.
    after.settle(&cluster).await;
    let mut first = after.open(&cluster, 1).await;
    after.join(&mut first).await;
    after.expect(&cluster, "after the failover, a tab on instance 1 joins", ONLINE_JOINED).await;
    let mut second = after.open(&cluster, 0).await;
    after.join(&mut second).await;
    after.expect(&cluster, "after the failover, a tab on instance 0 joins", NOTHING).await;
    after.close(&cluster, first).await;
    after.expect(&cluster, "the tab on instance 1 closes", NOTHING).await;
    after.close(&cluster, second).await;
    after.expect(&cluster, "the last tab closes", LEFT_OFFLINE).await;
}
