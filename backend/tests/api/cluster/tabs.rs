//! One `room.user_joined`, one `room.user_left` and one `presence.changed` each way per user,
//! however many tabs they open and on however many instances.
//!
//! A subject opens, joins, leaves and closes tabs on the instances in every order while one
//! watcher per instance sits in the room and watches the subject. After each step a barrier
//! ([`Stage::settle`]) proves that every instance has announced whatever the step caused: a
//! marker user per instance toggles (a new socket that joins the room, or that socket
//! closed), and every watcher waits for all the markers' room and presence notifications.
//! An instance announces in the order it recorded, and the subject's name sorts before the
//! markers' within one tick, so what the step caused has arrived before the markers' — the
//! counts are exact, with no quiet period to wait out.

use std::time::Duration;

use confab_shared::rpc::{JoinParams, LeaveParams, PresenceWatchParams};
use serde_json::Value;

use super::harness::{Client, Cluster};

/// How long a killed instance may take to be reaped (it is dead after 15 s of silence).
const REAPED_WITHIN: Duration = Duration::from_secs(40);

/// What one watcher heard about the subject between two barriers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heard {
    pub joined: usize,
    pub left: usize,
    pub online: usize,
    pub offline: usize,
}

pub const NOTHING: Heard = Heard { joined: 0, left: 0, online: 0, offline: 0 };
pub const ONLINE: Heard = Heard { online: 1, ..NOTHING };
pub const JOINED: Heard = Heard { joined: 1, ..NOTHING };
pub const LEFT: Heard = Heard { left: 1, ..NOTHING };
pub const OFFLINE: Heard = Heard { offline: 1, ..NOTHING };
pub const ONLINE_JOINED: Heard = Heard { online: 1, joined: 1, ..NOTHING };
pub const LEFT_OFFLINE: Heard = Heard { left: 1, offline: 1, ..NOTHING };

/// A user whose socket on one instance comes and goes to mark a point in that instance's
/// announcements.
struct Marker {
    name: String,
    token: String,
    tab: Option<Client>,
}

/// One of the subject's sockets.
pub struct Tab {
    pub instance: usize,
    client: Client,
}

/// The room, the subject, and per instance a watcher and a marker (`None`: killed).
pub struct Stage {
    pub room: String,
    pub subject: String,
    subject_token: String,
    /// Part of the watchers' and markers' names, so that a second cast can be signed up.
    cast: String,
    watchers: Vec<Option<Client>>,
    markers: Vec<Option<Marker>>,
    /// Sockets each instance had closed when it joined the stage, plus those this test
    /// closed since: to know when the instance is done with a close.
    closed: Vec<u64>,
}

impl Stage {
    /// Watchers and markers on every instance of `cluster`; the subject has no socket yet.
    pub async fn new(cluster: &Cluster, instances: usize, room: &str) -> Self {
        let subject = format!("ann_{}", cluster.tag);
        let subject_token = cluster.login(0, &subject).await;
        Self::cast(cluster, instances, cluster.room(room), subject, subject_token, "").await
    }

    /// New watchers and markers (their names marked with `cast`) for the same room and
    /// subject, after every socket of this stage was closed.
    pub async fn recast(&self, cluster: &Cluster, instances: usize, cast: &str) -> Self {
        Self::cast(cluster, instances, self.room.clone(), self.subject.clone(), self.subject_token.clone(), cast).await
    }

    async fn cast(cluster: &Cluster, instances: usize, room: String, subject: String, subject_token: String, cast: &str) -> Self {
        let mut stage =
            Self { room, subject, subject_token, cast: cast.to_owned(), watchers: Vec::new(), markers: Vec::new(), closed: Vec::new() };
        for i in 0..instances {
            stage.add_instance(cluster, i).await;
        }
        stage
    }

    /// A watcher and a marker on instance `i` (started after the others).
    pub async fn add_instance(&mut self, cluster: &Cluster, i: usize) {
        assert_eq!(i, self.watchers.len(), "instances are added in order");
        let cast = &self.cast;
        self.closed.push(cluster.closed_connections(i).await);
        // Markers sort after the subject, so a tick that holds both announces the subject first.
        let marker = format!("zmark{i}{cast}_{}", cluster.tag);
        let token = cluster.login(i, &marker).await;
        self.markers.push(Some(Marker { name: marker, token, tab: None }));
        let watcher_token = cluster.login(i, &format!("watch{i}{cast}_{}", cluster.tag)).await;
        let mut watcher = Client::connect(cluster.port(i), &watcher_token).await;
        watcher.call(JoinParams { room: self.room.clone(), history: Some(0) }).await.expect("the watcher joins");
        let mut watched: Vec<String> = self.markers.iter().flatten().map(|m| m.name.clone()).collect();
        watched.push(self.subject.clone());
        watcher.call(PresenceWatchParams { users: watched, replace: false }).await.expect("the watcher watches");
        // The earlier watchers watch the new marker too.
        let name = self.markers[i].as_ref().map(|m| m.name.clone()).unwrap_or_default();
        for earlier in self.watchers.iter_mut().flatten() {
            earlier.call(PresenceWatchParams { users: vec![name.clone()], replace: false }).await.expect("watch the new marker");
        }
        self.watchers.push(Some(watcher));
    }

    /// Waits until the server has closed every socket of this stage with `code`.
    pub async fn expect_all_closed_with(&mut self, code: u16) {
        let markers = self.markers.iter_mut().flatten().filter_map(|m| m.tab.as_mut());
        for client in self.watchers.iter_mut().flatten().chain(markers) {
            assert_eq!(client.expect_closed().await, Some(code));
        }
    }

    /// A new socket of the subject on instance `i`.
    pub async fn open(&self, cluster: &Cluster, i: usize) -> Tab {
        Tab { instance: i, client: Client::connect(cluster.port(i), &self.subject_token).await }
    }

    pub async fn join(&self, tab: &mut Tab) {
        tab.client.call(JoinParams { room: self.room.clone(), history: Some(0) }).await.expect("the subject joins");
    }

    /// Waits until the server has closed the tab's socket; its close code.
    pub async fn closed_by_server(&self, tab: &mut Tab) -> Option<u16> {
        tab.client.expect_closed().await
    }

    pub async fn leave(&self, tab: &mut Tab) {
        tab.client.call(LeaveParams { room: self.room.clone() }).await.expect("the subject leaves");
    }

    /// Closes the socket and waits until its instance has finished with it (rooms left,
    /// presence uncounted), so a barrier after this covers what the close caused.
    pub async fn close(&mut self, cluster: &Cluster, tab: Tab) {
        tab.client.close().await;
        self.closed[tab.instance] += 1;
        cluster.wait_closed(tab.instance, self.closed[tab.instance]).await;
    }

    /// SIGKILLs instance `i`: its watcher and marker go with it.
    pub fn kill(&mut self, cluster: &mut Cluster, i: usize) {
        cluster.kill(i);
        self.watchers[i] = None;
        self.markers[i] = None;
    }

    /// Waits until every live watcher heard `user` leave the room: a killed instance has
    /// been reaped (its departures are recorded together, so the barrier after this covers
    /// the rest of them).
    pub async fn wait_reaped(&mut self, user: &str) {
        for watcher in self.watchers.iter_mut().flatten() {
            let left = watcher.wait_notification("room.user_left", REAPED_WITHIN, |p| p["username"] == user).await;
            assert!(left.is_some(), "{user} on the killed instance never left the room");
        }
    }

    /// The barrier: toggles every live marker, waits for what that announces at every
    /// live watcher, and returns what each watcher heard about the subject before it.
    pub async fn settle(&mut self, cluster: &Cluster) -> Vec<Option<Heard>> {
        let mut toggled = Vec::new();
        for (i, marker) in self.markers.iter_mut().enumerate() {
            let Some(marker) = marker else { continue };
            match marker.tab.take() {
                None => {
                    let mut tab = Client::connect(cluster.port(i), &marker.token).await;
                    tab.call(JoinParams { room: self.room.clone(), history: Some(0) }).await.expect("the marker joins");
                    marker.tab = Some(tab);
                    toggled.push((marker.name.clone(), true));
                }
                Some(tab) => {
                    tab.close().await;
                    self.closed[i] += 1;
                    toggled.push((marker.name.clone(), false));
                }
            }
        }
        let (room, subject) = (self.room.as_str(), self.subject.as_str());
        let mut heard = Vec::new();
        for watcher in &mut self.watchers {
            let Some(watcher) = watcher else {
                heard.push(None);
                continue;
            };
            for (name, present) in &toggled {
                let method = if *present { "room.user_joined" } else { "room.user_left" };
                watcher.expect_notification(method, |p| p["username"] == name.as_str() && p["room"] == room).await;
                watcher.expect_presence(name, *present).await;
            }
            let about = |p: &Value| p["username"] == subject;
            let in_room = |p: &Value| p["username"] == subject && p["room"] == room;
            heard.push(Some(Heard {
                joined: watcher.take_arrived("room.user_joined", in_room).len(),
                left: watcher.take_arrived("room.user_left", in_room).len(),
                online: watcher.take_arrived("presence.changed", |p| about(p) && p["online"] == true).len(),
                offline: watcher.take_arrived("presence.changed", |p| about(p) && p["online"] == false).len(),
            }));
            let summaries = watcher.take_arrived("room.online_changed", |p| p["room"] == room);
            assert!(summaries.is_empty(), "a small room got summaries instead of names: {summaries:?}");
        }
        heard
    }

    /// Settles and checks that every live watcher heard exactly `expected` since the last
    /// barrier.
    pub async fn expect(&mut self, cluster: &Cluster, step: &str, expected: Heard) {
        for (i, heard) in self.settle(cluster).await.into_iter().enumerate() {
            if let Some(heard) = heard {
                assert_eq!(heard, expected, "after \"{step}\", the watcher on instance {i} heard this about the subject");
            }
        }
    }
}

/// How the subject's tabs leave in a round.
#[derive(Clone, Copy, Debug)]
enum Leaving {
    /// Each tab closes its socket (leaving the room and going offline together).
    Close,
    /// Each tab calls `room.leave`, then each closes.
    LeaveThenClose,
}

/// Two tabs of the subject, on instances `a` and `b` (the same or not): each connects and
/// joins, then they leave in the given order. The first arrival and the last departure
/// are each announced once, on every instance, and nothing in between.
async fn round(stage: &mut Stage, cluster: &Cluster, (a, b): (usize, usize), first_leaves_first: bool, leaving: Leaving) {
    let what = format!("tabs on instances {a} and {b}, {} leaves first, {leaving:?}", if first_leaves_first { "the first" } else { "the second" });
    let mut first = stage.open(cluster, a).await;
    stage.expect(cluster, &format!("{what}: the first tab connects"), ONLINE).await;
    stage.join(&mut first).await;
    stage.expect(cluster, &format!("{what}: the first tab joins"), JOINED).await;
    let mut second = stage.open(cluster, b).await;
    stage.expect(cluster, &format!("{what}: the second tab connects"), NOTHING).await;
    stage.join(&mut second).await;
    stage.expect(cluster, &format!("{what}: the second tab joins"), NOTHING).await;

    let (mut early, mut last) = if first_leaves_first { (first, second) } else { (second, first) };
    match leaving {
        Leaving::Close => {
            stage.close(cluster, early).await;
            stage.expect(cluster, &format!("{what}: one tab closes"), NOTHING).await;
            stage.close(cluster, last).await;
            stage.expect(cluster, &format!("{what}: the last tab closes"), LEFT_OFFLINE).await;
        }
        Leaving::LeaveThenClose => {
            stage.leave(&mut early).await;
            stage.expect(cluster, &format!("{what}: one tab leaves the room"), NOTHING).await;
            stage.leave(&mut last).await;
            stage.expect(cluster, &format!("{what}: the last tab leaves the room"), LEFT).await;
            stage.close(cluster, early).await;
            stage.expect(cluster, &format!("{what}: one tab closes"), NOTHING).await;
            stage.close(cluster, last).await;
            stage.expect(cluster, &format!("{what}: the last tab closes"), OFFLINE).await;
        }
    }
}

/// Tabs on one instance and on two, joining in both orders, the last one leaving on either
/// side, by closing the socket or by `room.leave`: each watcher on each instance hears one
/// `room.user_joined` and one `room.user_left`, one `presence.changed` online and one offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_with_tabs_on_one_or_two_instances_is_announced_once_per_arrival_and_departure() {
    let cluster = Cluster::start(2).await;
    let mut stage = Stage::new(&cluster, 2, "tabs").await;
    for instances in [(0, 0), (0, 1), (1, 0)] {
        for first_leaves_first in [true, false] {
            for leaving in [Leaving::Close, Leaving::LeaveThenClose] {
                round(&mut stage, &cluster, instances, first_leaves_first, leaving).await;
            }
        }
    }
}

/// An instance killed with SIGKILL while the subject has a tab there: when another of the
/// subject's tabs is still in the room elsewhere, the reaping announces nothing about the
/// subject, and the last tab leaving later announces once; when the killed instance held
/// the last tab, the reaping announces the departure exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_instance_takes_the_subject_away_only_with_its_last_tab() {
    let mut cluster = Cluster::start(3).await;
    let mut stage = Stage::new(&cluster, 3, "killed").await;
    // A bystander on each doomed instance: their departure shows the reaping is over.
    let kim = format!("kim_{}", cluster.tag);
    let kim_token = cluster.login(0, &kim).await;

    // The killed instance held one of two tabs.
    let mut doomed = stage.open(&cluster, 0).await;
    stage.join(&mut doomed).await;
    stage.expect(&cluster, "a tab on instance 0 joins", ONLINE_JOINED).await;
    let mut survivor = stage.open(&cluster, 1).await;
    stage.join(&mut survivor).await;
    stage.expect(&cluster, "a tab on instance 1 joins", NOTHING).await;
    let mut bystander = Client::connect(cluster.port(0), &kim_token).await;
    bystander.call(JoinParams { room: stage.room.clone(), history: Some(0) }).await.expect("kim joins");
    stage.kill(&mut cluster, 0);
    drop((doomed, bystander));
    stage.wait_reaped(&kim).await;
    stage.expect(&cluster, "instance 0 is killed and reaped", NOTHING).await;
    stage.close(&cluster, survivor).await;
    stage.expect(&cluster, "the tab on instance 1 closes", LEFT_OFFLINE).await;

    // The killed instance held the last tab.
    let late = cluster.add_instance().await;
    stage.add_instance(&cluster, late).await;
    let mut doomed = stage.open(&cluster, late).await;
    stage.join(&mut doomed).await;
    stage.expect(&cluster, "a tab on the new instance joins", ONLINE_JOINED).await;
    let mut early = stage.open(&cluster, 2).await;
    stage.join(&mut early).await;
    stage.expect(&cluster, "a tab on instance 2 joins", NOTHING).await;
    stage.close(&cluster, early).await;
    stage.expect(&cluster, "the tab on instance 2 closes", NOTHING).await;
    let mut bystander = Client::connect(cluster.port(late), &kim_token).await;
    bystander.call(JoinParams { room: stage.room.clone(), history: Some(0) }).await.expect("kim joins again");
    stage.expect(&cluster, "kim joins on the new instance", NOTHING).await;
    stage.kill(&mut cluster, late);
    drop((doomed, bystander));
    stage.wait_reaped(&kim).await;
    stage.expect(&cluster, "the new instance is killed and reaped", LEFT_OFFLINE).await;
}

/// While Redis refuses presence writes (out of memory), an instance cannot know whether a
/// tab is the user's first or last anywhere, and announces nothing from its own counts;
/// once Redis takes writes again, the instance writes its counts back and what happened
/// meanwhile is announced once: a second tab elsewhere nothing, the last tab closed one
/// departure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_redis_refuses_presence_writes_nothing_is_guessed_and_the_truth_is_announced_once() {
    let cluster = Cluster::start(2).await;
    let mut stage = Stage::new(&cluster, 2, "refused").await;

    let mut first = stage.open(&cluster, 0).await;
    stage.join(&mut first).await;
    stage.expect(&cluster, "a tab on instance 0 joins", ONLINE_JOINED).await;
    cluster.refuse_presence_writes(true);
    let mut second = stage.open(&cluster, 1).await;
    stage.join(&mut second).await;
    cluster.refuse_presence_writes(false);
    stage.expect(&cluster, "a tab on instance 1 joins while Redis refuses writes", NOTHING).await;
    stage.close(&cluster, first).await;
    stage.expect(&cluster, "the tab on instance 0 closes", NOTHING).await;
    stage.close(&cluster, second).await;
    stage.expect(&cluster, "the tab on instance 1 closes", LEFT_OFFLINE).await;

    let mut first = stage.open(&cluster, 0).await;
    stage.join(&mut first).await;
    let mut second = stage.open(&cluster, 1).await;
    stage.join(&mut second).await;
    stage.expect(&cluster, "tabs on instances 0 and 1 join", ONLINE_JOINED).await;
    cluster.refuse_presence_writes(true);
    stage.close(&cluster, first).await;
    stage.close(&cluster, second).await;
    cluster.refuse_presence_writes(false);
    stage.expect(&cluster, "both tabs close while Redis refuses writes", LEFT_OFFLINE).await;
}
