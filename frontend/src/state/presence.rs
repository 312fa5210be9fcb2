//! Presence by interest, on the tab's side: the users whose presence it knows and the one
//! watch set it keeps on the server.
//!
//! The server sends `presence.changed` only for users a connection watches, so each part of
//! the UI that shows presence names its users as a *group* ("people": the visible rows of
//! the People page, "dm": conversation peers); the tab watches the union, replacing the
//! server's set whenever a group changes and again after every reconnect. Nothing else is
//! watched, so a tab costs the server what it shows, whatever the community's size.

use std::collections::{BTreeMap, BTreeSet};

use confab_shared::UserPresence;
use confab_shared::rpc::PresenceWatchParams;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::socket::Socket;

/// The server's default bound on one connection's watch set; the union is cut to it.
pub const WATCH_MAX: usize = 1000;
/// Conversation peers watched (the most recent ones).
pub const DM_PEERS_WATCHED: usize = 200;

/// Who is online, for the users this tab shows.
#[derive(Clone, Copy)]
pub struct Presence {
    socket: Socket,
    /// Last known presence by lower-case name: from lists, watch results and notifications.
    known: RwSignal<BTreeMap<String, UserPresence>>,
    /// Watch groups: name → usernames.
    groups: StoredValue<BTreeMap<&'static str, Vec<String>>>,
    /// The union last sent, so an unchanged set is not sent again.
    sent: StoredValue<Option<BTreeSet<String>>>,
}

impl Presence {
    pub fn new(socket: Socket) -> Self {
        Self {
            socket,
            known: RwSignal::new(BTreeMap::new()),
            groups: StoredValue::new(BTreeMap::new()),
            sent: StoredValue::new(None),
        }
    }

    /// Whether `username` is online, as far as this tab knows (tracked).
    pub fn is_online(&self, username: &str) -> bool {
        let key = username.to_lowercase();
        self.known.with(|k| k.get(&key).is_some_and(|u| u.online))
    }

    /// Records what a list or a watch result said.
    pub fn record(&self, users: &[UserPresence]) {
        if users.is_empty() {
            return;
        }
        self.known.update(|known| {
            for user in users {
                known.insert(user.username.to_lowercase(), user.clone());
            }
        });
    }

    /// Applies a `presence.changed`.
    pub fn apply(&self, change: UserPresence) {
        self.known.update(|known| {
            known.insert(change.username.to_lowercase(), change);
        });
    }

    /// Makes `users` the members of watch group `group` and updates the server's set.
    pub fn set_group(&self, group: &'static str, users: Vec<String>) {
        self.groups.update_value(|groups| {
            groups.insert(group, users);
        });
        self.sync(false);
    }

    /// After a reconnect: the new connection watches nobody yet.
    pub fn rewatch(&self) {
        self.sync(true);
    }

    fn sync(&self, force: bool) {
        let wanted: BTreeSet<String> = self.groups.with_value(|groups| {
            groups.values().flatten().map(|u| u.to_lowercase()).collect::<BTreeSet<_>>().into_iter().take(WATCH_MAX).collect()
        });
        if !force && self.sent.with_value(|s| s.as_ref() == Some(&wanted)) {
            return;
        }
        if !self.socket.is_open() {
            // `rewatch` sends it once the socket opens.
            return;
        }
        self.sent.set_value(Some(wanted.clone()));
        let this = *self;
        spawn_local(async move {
            let params = PresenceWatchParams { users: wanted.into_iter().collect(), replace: true };
            match this.socket.call(params).await {
                Ok(result) => this.record(&result.users),
                Err(err) => {
                    // Sent again with the next change or reconnect.
                    this.sent.set_value(None);
                    leptos::logging::warn!("confab: presence.watch failed: {}", err.message);
                }
            }
        });
    }
}
