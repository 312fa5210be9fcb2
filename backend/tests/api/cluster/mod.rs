//! Scale-out tests: real `confab` processes sharing a real Redis and PostgreSQL.
//!
//! Each test starts its own Redis on free ports (so it can stop it), creates a fresh
//! PostgreSQL database on `CONFAB_TEST_PG_URL` (from `scripts/services.sh`), and runs the
//! `confab` binary two or three times, all at once on the fresh database. Every wait has a
//! timeout.
//!
//! The Redis is one redis-server, or with `CONFAB_TEST_REDIS=cluster` a Redis Cluster of
//! six nodes ([`redis_cluster`]): the same tests then run on sharded pub/sub. The tests in
//! [`failover`] always run on a Redis Cluster. [`tabs`] counts, with barriers instead of
//! quiet periods, the presence announcements of a user whose tabs come and go across
//! instances.

mod failover;
mod harness;
mod redis_cluster;
mod tabs;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use confab_shared::rpc::{
    DmSendParams, JoinParams, PresenceWatchParams, RoomsListParams, SendParams, SyncParams, TypingParams, UsersListParams,
};
use confab_shared::{Job, JobAccepted, JobState, Message};
use harness::{Client, Cluster};
use serde_json::json;

/// Users spread over three instances chat in one room: every client receives every
/// message exactly once, in id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_on_three_instances_receive_every_message_exactly_once_in_id_order() {
    let cluster = Cluster::start(3).await;
    let mut clients = Vec::new();
    for i in 0..6 {
        let name = format!("spread{i}_{}", cluster.tag);
        let token = cluster.login(i % 3, &name).await;
        let mut client = Client::connect(cluster.port(i % 3), &token).await;
        client.call(JoinParams { room: cluster.room("spread"), history: Some(0) }).await.expect("join");
        clients.push(client);
    }
    let room = cluster.room("spread");
    const PER_CLIENT: usize = 25;
    // Everyone sends concurrently, from every instance.
    let mut senders = Vec::new();
    for (i, mut client) in clients.into_iter().enumerate() {
        let room = room.clone();
        senders.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for n in 0..PER_CLIENT {
                let sent = client.call(SendParams { room: room.clone(), text: format!("{i}:{n}"), nonce: None }).await.expect("send");
                mine.push(sent.id);
            }
            (client, mine)
        }));
    }
    let mut all_ids = BTreeSet::new();
    let mut clients = Vec::new();
    for sender in senders {
        let (client, mine) = sender.await.expect("sender task");
        all_ids.extend(mine);
        clients.push(client);
    }
    assert_eq!(all_ids.len(), 6 * PER_CLIENT);
    for client in &mut clients {
        let received = client.room_messages_until(all_ids.len(), Duration::from_secs(20)).await;
        let ids: Vec<i64> = received.iter().map(|m| m.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids out of order or repeated: {ids:?}");
        assert_eq!(ids.iter().copied().collect::<BTreeSet<_>>(), all_ids, "a client missed or got extra messages");
        client.expect_no_room_message(Duration::from_millis(300)).await;
    }
}

/// Presence, room membership and typing cross instances, and a user with tabs on two
/// instances goes offline only when the last one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_and_typing_cross_instances_and_respect_tabs_on_two_instances() {
    let cluster = Cluster::start(3).await;
    let (ann, bob) = (format!("ann_{}", cluster.tag), format!("bob_{}", cluster.tag));
    let room = cluster.room("presence");
    let bob_token = cluster.login(1, &bob).await;
    let ann_token = cluster.login(0, &ann).await;
    let mut watcher = Client::connect(cluster.port(1), &bob_token).await;
    watcher.call(JoinParams { room: room.clone(), history: None }).await.expect("bob joins");
    watcher.call(watch(&ann)).await.expect("bob watches ann");

    let mut tab1 = Client::connect(cluster.port(0), &ann_token).await;
    watcher.expect_presence(&ann, true).await;
    let mut tab2 = Client::connect(cluster.port(2), &ann_token).await;
    let joined = tab1.call(JoinParams { room: room.clone(), history: None }).await.expect("ann joins");
    assert_eq!(joined.online, vec![ann.clone(), bob.clone()]);
    watcher.expect_notification("room.user_joined", |p| p["username"] == ann.as_str()).await;
    tab2.call(JoinParams { room: room.clone(), history: None }).await.expect("ann joins in tab 2");

    let users = watcher.call(UsersListParams::default()).await.expect("users.list").users;
    assert!(users.iter().any(|u| u.username == ann && u.online));

    // Typing from instance 0 reaches bob on instance 1 but not ann's own tab on instance 2.
    tab1.call(TypingParams { room: room.clone() }).await.expect("typing");
    watcher.expect_notification("room.typing", |p| p["username"] == ann.as_str()).await;
    tab2.expect_no_notification("room.typing", Duration::from_millis(500), |_| true).await;

    // Closing one tab changes nothing; closing the last one announces the departure.
    tab1.close().await;
    watcher
        .expect_no_notification("presence.changed", Duration::from_millis(800), |p| p["username"] == ann.as_str())
        .await;
    tab2.close().await;
    watcher.expect_notification("room.user_left", |p| p["username"] == ann.as_str()).await;
    watcher.expect_presence(&ann, false).await;
}

fn watch(user: &str) -> PresenceWatchParams {
    PresenceWatchParams { users: vec![user.to_owned()], replace: false }
}

/// Presence by interest across instances: each watcher hears exactly the users it watches,
/// wherever they connect, from the one batched presence channel every instance expands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_watches_reach_across_instances_and_only_the_watchers() {
    let cluster = Cluster::start(3).await;
    let names: Vec<String> = ["wann", "wbob", "wcy", "wdee"].iter().map(|n| format!("{n}_{}", cluster.tag)).collect();
    let mut tokens = Vec::new();
    for (i, name) in names.iter().enumerate() {
        tokens.push(cluster.login(i % 3, name).await);
    }
    let (ann, bob) = (&names[0], &names[1]);
    // cy on instance 0 watches ann; dee on instance 2 watches bob and ann.
    let mut cy = Client::connect(cluster.port(0), &tokens[2]).await;
    cy.call(watch(ann)).await.expect("cy watches ann");
    let mut dee = Client::connect(cluster.port(2), &tokens[3]).await;
    let watched = dee.call(PresenceWatchParams { users: vec![bob.clone(), ann.clone()], replace: false }).await.expect("dee watches");
    assert_eq!(watched.watching, 2);
    assert!(watched.users.iter().all(|u| !u.online));

    let _bob_tab = Client::connect(cluster.port(1), &tokens[1]).await;
    dee.expect_presence(bob, true).await;
    let ann_tab = Client::connect(cluster.port(1), &tokens[0]).await;
    cy.expect_presence(ann, true).await;
    dee.expect_presence(ann, true).await;
    // bob's arrival came before ann's on the same instance: had cy been sent it, it would be here.
    cy.expect_no_notification("presence.changed", Duration::from_millis(500), |p| p["username"] == bob.as_str()).await;

    drop(ann_tab);
    cy.expect_presence(ann, false).await;
    dee.expect_presence(ann, false).await;
    // Watchers hear only the users they watch: dee's own arrival went to nobody.
    cy.expect_no_notification("presence.changed", Duration::from_millis(300), |p| p["username"] != ann.as_str()).await;
}

/// Private messages, nonce de-duplication, logout and API token revocation cross instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_messages_nonces_and_logout_cross_instances() {
    let cluster = Cluster::start(3).await;
    let (ann, bob) = (format!("dann_{}", cluster.tag), format!("dbob_{}", cluster.tag));
    let ann_token = cluster.login(0, &ann).await;
    let bob_token = cluster.login(1, &bob).await;
    let mut ann_tab = Client::connect(cluster.port(0), &ann_token).await;
    let mut bob_tab = Client::connect(cluster.port(1), &bob_token).await;

    // A private message from instance 0 reaches bob on instance 1; ann gets the receipt.
    let receipt = ann_tab
        .call(DmSendParams { to: bob.clone(), text: "psst".into(), nonce: None })
        .await
        .expect("dm.send");
    assert_eq!((receipt.from.as_str(), receipt.to.as_str()), (ann.as_str(), bob.as_str()));
    let got = bob_tab.expect_notification("dm.message", |p| p["from"] == ann.as_str()).await;
    assert_eq!(got["id"], receipt.id);
    assert_eq!(got["text"], "psst");

    // The same nonce through another instance is the same message, delivered once.
    let room = cluster.room("nonce");
    bob_tab.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("bob joins");
    let mut ann_elsewhere = Client::connect(cluster.port(2), &ann_token).await;
    for tab in [&mut ann_tab, &mut ann_elsewhere] {
        tab.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("ann joins");
    }
    let send = SendParams { room: room.clone(), text: "once".into(), nonce: Some("retry-1".into()) };
    let first = ann_tab.call(send.clone()).await.expect("first send");
    let retry = ann_elsewhere.call(send).await.expect("retried send");
    assert_eq!(first.id, retry.id, "a retry on another instance persisted a second message");
    for tab in [&mut bob_tab, &mut ann_tab, &mut ann_elsewhere] {
        let live = tab.room_messages_until(1, Duration::from_secs(5)).await;
        assert_eq!(live[0].id, first.id);
        tab.expect_no_room_message(Duration::from_millis(300)).await;
    }

    // Logging out through instance 2 closes ann's sockets on instances 0 and 2 with 4003.
    assert_eq!(cluster.logout(2, &ann_token).await, 204);
    assert_eq!(ann_tab.expect_closed().await, Some(4003));
    assert_eq!(ann_elsewhere.expect_closed().await, Some(4003));

    // Revoking an API token through instance 1 closes its sockets on instances 0 and 2 with
    // 4003, and leaves its owner's login socket open.
    let (token_id, api_token) = cluster.create_token(0, &bob_token, &["read"]).await;
    let mut bot_here = Client::connect(cluster.port(0), &api_token).await;
    let mut bot_there = Client::connect(cluster.port(2), &api_token).await;
    for bot in [&mut bot_here, &mut bot_there] {
        bot.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("the bot joins");
    }
    assert_eq!(cluster.revoke_token(1, &bob_token, token_id).await, 204);
    assert_eq!(bot_here.expect_closed().await, Some(4003));
    assert_eq!(bot_there.expect_closed().await, Some(4003));
    bob_tab.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("bob's login socket stays open");
}

/// Failed logins count across instances: spreading guesses over the cluster does not
/// multiply the allowance, and a correct password is refused too once over the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_throttling_counts_failures_on_every_instance() {
    let cluster = Cluster::start(3).await;
    let name = format!("guess_{}", cluster.tag);
    cluster.login(0, &name).await;
    // The instances run with the default CONFAB_LOGIN_ATTEMPTS=5.
    for attempt in 0..5 {
        assert_eq!(cluster.login_status(attempt % 3, &name, "wrong password").await, 401, "attempt {attempt}");
    }
    for i in 0..3 {
        assert_eq!(cluster.login_status(i, &name, "wrong password").await, 429, "instance {i} let a 6th guess through");
        assert_eq!(cluster.login_status(i, &name, "correct horse").await, 429, "instance {i} ignored the shared count");
    }
}

/// An instance killed with SIGKILL takes its users offline on the others within 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_of_a_killed_instance_go_offline_elsewhere_within_thirty_seconds() {
    let mut cluster = Cluster::start(2).await;
    let (ann, bob) = (format!("kann_{}", cluster.tag), format!("kbob_{}", cluster.tag));
    let room = cluster.room("kill");
    let bob_token = cluster.login(1, &bob).await;
    let ann_token = cluster.login(0, &ann).await;
    let mut watcher = Client::connect(cluster.port(1), &bob_token).await;
    watcher.call(JoinParams { room: room.clone(), history: None }).await.expect("bob joins");
    watcher.call(watch(&ann)).await.expect("bob watches ann");
    let mut victim = Client::connect(cluster.port(0), &ann_token).await;
    victim.call(JoinParams { room: room.clone(), history: None }).await.expect("ann joins");
    watcher.expect_presence(&ann, true).await;

    cluster.kill(0);
    let killed = Instant::now();
    watcher.expect_presence_within(&ann, false, Duration::from_secs(30)).await;
    eprintln!("offline announced {:?} after SIGKILL", killed.elapsed());
    let users = watcher.call(UsersListParams { prefix: Some(ann.clone()), ..UsersListParams::default() }).await.expect("users.list").users;
    assert!(users.iter().any(|u| u.username == ann && !u.online), "ann still online: {users:?}");
    let joined = watcher.call(JoinParams { room, history: Some(0) }).await.expect("rejoin");
    assert_eq!(joined.online, vec![bob]);
}

/// Redis stops for 5 s during a stream of sends: instances keep serving, health says the
/// layer is down, and after Redis returns every client's `sync` yields exactly what it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_outage_delays_messages_but_loses_none() {
    let mut cluster = Cluster::start(2).await;
    messages_survive(&mut cluster, Fault::RedisRestart).await;
}

/// What goes wrong under a stream of sends.
pub enum Fault {
    /// All of Redis stops for 5 s (every node of a cluster), then starts empty.
    RedisRestart,
    /// The master serving the room's channel is SIGKILLed; its replica takes over.
    MasterKill,
}

/// Sends a stream of messages through instance 0 while `fault` happens; then every reader
/// (one per instance) must have seen no hole below its last live id, and `sync` must give
/// it exactly the rest of what was persisted.
pub async fn messages_survive(cluster: &mut Cluster, fault: Fault) {
    let room = cluster.room("outage");
    let names: Vec<String> = (0..2).map(|i| format!("out{i}_{}", cluster.tag)).collect();
    let mut readers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let token = cluster.login(i, name).await;
        let mut client = Client::connect(cluster.port(i), &token).await;
        client.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("join");
        readers.push((i, token, client));
    }
    let writer_token = cluster.login(0, &format!("outw_{}", cluster.tag)).await;
    let mut writer = Client::connect(cluster.port(0), &writer_token).await;
    writer.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("writer joins");

    let mut persisted = BTreeSet::new();
    let started = Instant::now();
    let mut stopped_at = None;
    let mut restarted = false;
    let mut saw_down = false;
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(10) {
        if stopped_at.is_none() && started.elapsed() > Duration::from_secs(2) {
            match fault {
                Fault::RedisRestart => cluster.stop_redis(),
                Fault::MasterKill => {
                    let port = cluster.redis_cluster().kill_master_of(&format!("confab:g:room:{room}"));
                    eprintln!("killed the master on port {port} at {:?}", started.elapsed());
                }
            }
            stopped_at = Some(Instant::now());
        }
        if let Some(at) = stopped_at {
            match fault {
                Fault::RedisRestart => {
                    if !restarted && at.elapsed() > Duration::from_secs(5) {
                        cluster.start_redis();
                        restarted = true;
                    }
                    if !restarted && at.elapsed() > Duration::from_secs(2) {
                        assert_eq!(cluster.health(1).await, 503, "health must report the layer down");
                        saw_down = true;
                    }
                }
                // Nothing to restart: the replica is promoted. Until then the shard has no
                // master, which the instances report (their shard connection is gone).
                Fault::MasterKill => {
                    restarted = true;
                    saw_down |= cluster.health(1).await == 503;
                }
            }
        }
        n += 1;
        // The writer may itself be asked to reconnect (1013) when Redis returns; it then
        // retries with the same nonce, which yields the one persisted message, never two.
        let send = SendParams { room: room.clone(), text: format!("m{n}"), nonce: Some(format!("n{n}")) };
        loop {
            match writer.try_call(send.clone()).await {
                Some(Ok(message)) => {
                    assert!(persisted.insert(message.id), "a nonce retry persisted a second message");
                    break;
                }
                Some(Err(err)) => panic!("send failed during the outage: {err:?}"),
                None => writer = rejoin(&cluster, 0, &writer_token, &room).await,
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(restarted, "the test must cover the restart");
    assert!(saw_down, "health never reported the layer down during the fault");
    eprintln!("{n} sends in {:?}", started.elapsed());
    if let Fault::MasterKill = fault {
        cluster.redis_cluster().wait_ok();
        eprintln!("the cluster is whole again {:?} after the start", started.elapsed());
    }
    cluster.wait_healthy(0).await;
    cluster.wait_healthy(1).await;
    eprintln!("both instances healthy {:?} after the start", started.elapsed());

    for (i, token, mut client) in readers {
        // What the client saw live (until the server asked it to reconnect).
        let live = client.drain_room_messages(Duration::from_millis(500)).await;
        let seen: BTreeSet<i64> = live.iter().map(|m| m.id).collect();
        let last_seen = live.last().map_or(0, |m| m.id);
        assert!(
            persisted.iter().filter(|id| **id <= last_seen).all(|id| seen.contains(id)),
            "client {i} saw a hole below its last-seen id"
        );
        // Reconnect and catch up.
        let mut fresh = Client::connect(cluster.port(i), &token).await;
        let mut missed = Vec::new();
        let mut cursor = last_seen;
        let mut reconnects = 0;
        loop {
            let params = SyncParams { rooms: [(room.clone(), cursor)].into(), dm_after: None };
            let Some(batch) = fresh.try_call(params).await else {
                // Closed by the instance's post-outage resync (1013): reconnect, keep the cursor.
                reconnects += 1;
                assert!(reconnects < 20, "client {i} could not stay connected to sync");
                tokio::time::sleep(Duration::from_millis(200)).await;
                fresh = Client::connect(cluster.port(i), &token).await;
                continue;
            };
            let batch = batch.expect("sync");
            cursor = batch.messages.last().map_or(cursor, |m| m.id);
            missed.extend(batch.messages.into_iter().map(|m| m.id));
            if batch.complete {
                break;
            }
        }
        let union: BTreeSet<i64> = seen.iter().copied().chain(missed.iter().copied()).collect();
        assert_eq!(missed.len() + seen.len(), union.len(), "client {i} got a message twice");
        assert!(persisted.is_subset(&union), "client {i} lost messages: {:?}", persisted.difference(&union).collect::<Vec<_>>());
        eprintln!("client {i} at {:?}: {} live, {} recovered by sync, {} persisted", started.elapsed(), seen.len(), missed.len(), persisted.len());
    }
}

/// A fresh connection to instance `index` that has joined `room`. Right after Redis returns,
/// an instance may still be closing its sockets (1013) to make clients resync, so a socket
/// closed during the join is retried a bounded number of times.
pub async fn rejoin(cluster: &Cluster, index: usize, token: &str, room: &str) -> Client {
    for _ in 0..20 {
        let mut client = Client::connect(cluster.port(index), token).await;
        match client.try_call(JoinParams { room: room.to_owned(), history: Some(0) }).await {
            Some(joined) => {
                joined.expect("join after reconnect");
                return client;
            }
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("could not rejoin {room} on instance {index}");
}

/// Four instances started at the same moment on a fresh database all come up (one
/// migrates, the others wait for its lock), and a fifth started later on the migrated
/// database too; every one of them serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_started_together_on_a_fresh_database_all_come_up() {
    let mut cluster = Cluster::start(4).await;
    let late = cluster.add_instance().await;
    for i in 0..=late {
        let token = cluster.login(i, &format!("fleet{i}_{}", cluster.tag)).await;
        let mut client = Client::connect(cluster.port(i), &token).await;
        client.call(JoinParams { room: cluster.room("fleet"), history: Some(0) }).await.expect("join");
    }
}

/// An export started through one instance is polled through a second and downloaded
/// through a third: the file lives in the database, not in one instance's data dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_started_on_one_instance_downloads_from_another() {
    let cluster = Cluster::start(3).await;
    let name = format!("exp_{}", cluster.tag);
    let token = cluster.login(0, &name).await;
    let room = cluster.room("export");
    let mut client = Client::connect(cluster.port(0), &token).await;
    client.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("join");
    let mut sent = Vec::new();
    for n in 0..80 {
        // Long texts, so that the file (≈ 320 KB) spans more than one stored chunk (256 KiB).
        let text = format!("{n}:{}", "x".repeat(3_900));
        sent.push(client.call(SendParams { room: room.clone(), text, nonce: None }).await.expect("send").id);
    }
    let accepted = cluster.post(0, "/api/jobs", &token, &json!({"kind": "export_room", "room": room, "format": "json"})).await;
    assert_eq!(accepted.status().as_u16(), 202);
    let job_id = accepted.json::<JobAccepted>().await.expect("a job id").job_id;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let job: Job = cluster.get(1, &format!("/api/jobs/{job_id}"), &token).await.json().await.expect("a job");
        match job.state {
            JobState::Done => break,
            JobState::Failed => panic!("the export failed: {:?}", job.error),
            _ => {}
        }
        assert!(tokio::time::Instant::now() < deadline, "the export did not finish within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let download = cluster.get(2, &format!("/api/jobs/{job_id}/download"), &token).await;
    assert_eq!(download.status().as_u16(), 200);
    let length: Option<usize> = download.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse().ok());
    let bytes = download.bytes().await.expect("the file");
    assert_eq!(length, Some(bytes.len()), "Content-Length must match the body");
    let messages: Vec<Message> = serde_json::from_slice(&bytes).expect("a JSON array of messages");
    assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), sent);
}

/// SIGTERM stops one instance: its sockets close with 1001 (reconnect now, elsewhere),
/// every send it answered is committed, and the other instance keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminated_instance_closes_with_1001_and_loses_nothing_it_answered() {
    let mut cluster = Cluster::start(2).await;
    let room = cluster.room("sigterm");
    let token = cluster.login(0, &format!("term_{}", cluster.tag)).await;
    let mut leaving = Client::connect(cluster.port(0), &token).await;
    leaving.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("join");
    let mut answered = BTreeSet::new();
    for n in 0..20 {
        let sent = leaving.call(SendParams { room: room.clone(), text: format!("t{n}"), nonce: None }).await.expect("send");
        answered.insert(sent.id);
    }
    let status = cluster.terminate(0).await;
    assert!(status.success(), "the instance exited with {status} after SIGTERM");
    assert_eq!(leaving.expect_closed().await, Some(1001));

    let mut moved = Client::connect(cluster.port(1), &token).await;
    moved.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("join elsewhere");
    let synced = moved.call(SyncParams { rooms: [(room.clone(), 0)].into(), dm_after: None }).await.expect("sync");
    let ids: BTreeSet<i64> = synced.messages.iter().map(|m| m.id).collect();
    assert!(answered.is_subset(&ids), "answered sends missing after the stop");
}

/// A mention written on one instance reaches every tab of the mentioned user on the others,
/// and the count their room list shows is the same through any instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mention_reaches_the_mentioned_users_tabs_on_every_instance() {
    let cluster = Cluster::start(2).await;
    let (ann, bob) = (format!("mann_{}", cluster.tag), format!("mbob_{}", cluster.tag));
    let ann_token = cluster.login(0, &ann).await;
    let bob_token = cluster.login(1, &bob).await;
    let room = cluster.room("mention");
    let mut ann_tab = Client::connect(cluster.port(0), &ann_token).await;
    ann_tab.call(JoinParams { room: room.clone(), history: Some(0) }).await.expect("ann joins");
    let mut bob_tabs = [Client::connect(cluster.port(0), &bob_token).await, Client::connect(cluster.port(1), &bob_token).await];

    let sent = ann_tab.call(SendParams { room: room.clone(), text: format!("@{bob} ping"), nonce: None }).await.expect("send");

    assert_eq!(sent.mentions, vec![bob.clone()]);
    for tab in &mut bob_tabs {
        let got = tab.expect_notification("mention", |p| p["id"] == sent.id).await;
        assert_eq!(got["room"], room.as_str());
    }
    for tab in &mut bob_tabs {
        let page = tab.call(RoomsListParams { prefix: Some(room.clone()), ..RoomsListParams::default() }).await.expect("rooms.list");
        assert_eq!(page.rooms.iter().find(|r| r.name == room).and_then(|r| r.mentions), Some(1));
    }
}
