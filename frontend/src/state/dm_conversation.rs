//! One private conversation as a page shows it: its message log and whether its history
//! has loaded (the list of conversations is [`super::dm_index`]).

use confab_shared::DirectMessage;
use leptos::prelude::*;

use super::log::Log;

/// One private conversation: its message [`Log`] and whether its history has loaded;
/// cheap to clone.
#[derive(Clone)]
pub struct Conversation {
    /// The peer as first addressed (the URL); the server's spelling comes with messages.
    pub with: String,
    pub log: Log<DirectMessage>,
    /// Whether the newest page of history has been fetched.
    pub loaded: ArcRwSignal<bool>,
    /// Why the history could not be loaded, if it could not.
    pub error: ArcRwSignal<Option<String>>,
}

impl Conversation {
    pub fn new(with: &str) -> Self {
        Self { with: with.to_owned(), log: Log::new(), loaded: ArcRwSignal::new(false), error: ArcRwSignal::new(None) }
    }

    /// Forgets what was loaded (another user logged in); the next open loads afresh.
    pub fn reset(&self) {
        self.log.reset();
        self.loaded.set(false);
        self.error.set(None);
    }

    /// Merges DMs in, sorted and de-duplicated by id.
    pub fn insert(&self, batch: impl IntoIterator<Item = DirectMessage>) {
        self.log.merge(batch.into_iter().collect());
    }

    /// The newest message from the peer (what a read cursor should point at).
    pub fn last_incoming_id(&self, me: &str) -> Option<i64> {
        self.log.messages.with_untracked(|m| m.iter().rev().find(|m| !m.from.eq_ignore_ascii_case(me)).map(|m| m.id))
    }
}
