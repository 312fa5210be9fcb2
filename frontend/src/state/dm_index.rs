//! The list of private conversations: one summary per peer, the last DM id seen and the
//! read cursors (one conversation's messages are [`super::dm_conversation`]).
//!
//! The protocol has no "list my conversations" call, so the SPA builds the list itself
//! from every direct message it sees (`sync` with `dm_after`, `dm.message`, `dm.send`
//! receipts) and keeps that index, the last DM id seen and the read cursors in
//! `localStorage` per user. A reload then only asks `sync` for what is new.

use std::collections::BTreeMap;

use confab_shared::{DirectMessage, Timestamp};
use serde::{Deserialize, Serialize};

/// What the conversation list shows for one peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvoSummary {
    /// The peer's name as the server spells it.
    pub with: String,
    pub last_id: i64,
    pub last_at: Timestamp,
    /// The start of the last message, for the list preview.
    pub last_text: String,
    pub last_from_me: bool,
    /// Messages from the peer after our read cursor.
    pub unread: u32,
}

/// The persisted DM index of one user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DmIndex {
    /// The newest DM id seen: `sync`'s `dm_after`.
    pub after: i64,
    /// Peer (lower-case) to the newest DM id read in that conversation.
    pub read: BTreeMap<String, i64>,
    /// Peer (lower-case) to its summary.
    pub convos: BTreeMap<String, ConvoSummary>,
}

impl DmIndex {
    /// The `localStorage` key for a user's index.
    pub fn storage_key(user_id: i64) -> String {
        format!("confab.dm.{user_id}")
    }

    /// Total unread messages over all conversations.
    pub fn total_unread(&self) -> u32 {
        self.convos.values().map(|c| c.unread).sum()
    }

    /// Records a DM; returns whether it is a new, unread message from `peer`
    /// (`viewing`: the conversation is on screen, so it is read as it arrives).
    pub fn record(&mut self, dm: &DirectMessage, peer: &str, from_me: bool, viewing: bool) -> bool {
        let key = peer.to_lowercase();
        self.after = self.after.max(dm.id);
        let read = self.read.get(&key).copied().unwrap_or(0);
        let convo = self.convos.entry(key.clone()).or_insert_with(|| ConvoSummary {
            with: peer.to_owned(),
            last_id: 0,
            last_at: dm.sent_at,
            last_text: String::new(),
            last_from_me: from_me,
            unread: 0,
        });
        if dm.id <= convo.last_id {
            return false; // seen before (sync overlap, our own receipt echoed)
        }
        convo.last_id = dm.id;
        convo.last_at = dm.sent_at;
        convo.last_text = dm.text.chars().take(80).collect();
        convo.last_from_me = from_me;
        if from_me || viewing || dm.id <= read {
            if viewing && !from_me {
                self.read.insert(key, dm.id);
            }
            return false;
        }
        convo.unread += 1;
        true
    }

    /// Moves the read cursor of `peer` to `id` (never back); clears the unread count when
    /// that covers the newest message.
    pub fn mark_read(&mut self, peer: &str, id: i64) {
        let key = peer.to_lowercase();
        let cursor = self.read.entry(key.clone()).or_insert(0);
        *cursor = (*cursor).max(id);
        if let Some(convo) = self.convos.get_mut(&key)
            && id >= convo.last_id
        {
            convo.unread = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(id: i64, from: &str, to: &str) -> DirectMessage {
        DirectMessage { id, from: from.into(), to: to.into(), text: "hi".into(), sent_at: Timestamp::from_millis(id) }
    }

    #[test]
    fn incoming_messages_count_as_unread_once() {
        let mut index = DmIndex::default();
        assert!(index.record(&dm(5, "bob", "ann"), "bob", false, false));
        assert!(!index.record(&dm(5, "bob", "ann"), "bob", false, false));
        assert!(!index.record(&dm(6, "ann", "bob"), "bob", true, false));
        assert_eq!(index.total_unread(), 1);
        assert_eq!(index.after, 6);
        index.mark_read("Bob", 6);
        assert_eq!(index.total_unread(), 0);
    }

    #[test]
    fn messages_read_on_screen_move_the_cursor() {
        let mut index = DmIndex::default();
        assert!(!index.record(&dm(3, "bob", "ann"), "bob", false, true));
        assert_eq!(index.read.get("bob"), Some(&3));
        assert!(!index.record(&dm(2, "bob", "ann"), "bob", false, false));
    }
}
