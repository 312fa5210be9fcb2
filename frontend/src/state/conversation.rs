//! Either kind of conversation, for what a room page and a private conversation page
//! share: the scrolling log, paging back, the unsent-message rows and the composer.

use leptos::prelude::*;

use super::dm_conversation::Conversation;
use super::log::PendingSend;
use super::room_state::{JoinStatus, RoomState};
use crate::components::toasts::Toasts;

/// Where a conversation's messages go: a room, or a private conversation with one person.
#[derive(Clone)]
pub enum Target {
    Room(RoomState),
    Dm(Conversation),
}

impl Target {
    /// The log's accessible name, the composer's, and the composer's placeholder.
    pub fn labels(&self) -> (String, String, String) {
        match self {
            Self::Room(state) => {
                let name = &state.name;
                (
                    format!("Messages in #{name}"),
                    format!("Message #{name}"),
                    format!("Message #{name}   (/pm user text for a private message)"),
                )
            }
            Self::Dm(convo) => {
                let peer = &convo.with;
                (format!("Conversation with {peer}"), format!("Message {peer}"), format!("Message {peer}"))
            }
        }
    }

    /// Changes whenever the rendered rows do (the scrolling log follows it; reactive).
    pub fn revision(&self) -> (usize, i64) {
        match self {
            // The "joined" / "left" lines are rows too.
            Self::Room(state) => state.log.revision(state.events.with(Vec::len)),
            Self::Dm(convo) => convo.log.revision(0),
        }
    }

    /// Whether "load earlier" has anything to show (reactive).
    pub fn can_load_earlier(&self) -> bool {
        match self {
            Self::Room(state) => state.log.can_load_earlier(),
            Self::Dm(convo) => convo.log.can_load_earlier(),
        }
    }

    /// Whether an earlier page is being fetched (reactive).
    pub fn loading_earlier(&self) -> bool {
        match self {
            Self::Room(state) => state.log.loading_earlier.get(),
            Self::Dm(convo) => convo.log.loading_earlier.get(),
        }
    }

    /// Sends of ours not yet confirmed (reactive).
    pub fn pending(&self) -> Vec<PendingSend> {
        match self {
            Self::Room(state) => state.log.pending.get(),
            Self::Dm(convo) => convo.log.pending.get(),
        }
    }

    /// Checks typed text and queues it (see [`super::log::Log::queue`]).
    pub fn queue(&self, raw: &str, toasts: Toasts) -> Option<PendingSend> {
        match self {
            Self::Room(state) => state.log.queue(raw, toasts),
            Self::Dm(convo) => convo.log.queue(raw, toasts),
        }
    }

    /// A failed send to try again, marked as sending once more.
    pub fn retrying(&self, nonce: &str) -> Option<PendingSend> {
        match self {
            Self::Room(state) => state.log.retrying(nonce),
            Self::Dm(convo) => convo.log.retrying(nonce),
        }
    }

    /// Whether what is on screen counts as read: a room once joined, a conversation always.
    /// Tracks the messages too, so an effect calling this reruns as they arrive (reactive).
    pub fn readable(&self) -> bool {
        match self {
            Self::Room(state) => {
                state.log.messages.track();
                state.status.get() == JoinStatus::Joined
            }
            Self::Dm(convo) => {
                convo.log.messages.track();
                true
            }
        }
    }

    /// Gives up on a failed send.
    pub fn discard(&self, nonce: &str) {
        match self {
            Self::Room(state) => state.log.discard(nonce),
            Self::Dm(convo) => convo.log.discard(nonce),
        }
    }

    /// What the log says instead of messages, while it has none to show (reactive).
    pub fn status(&self) -> Option<String> {
        let (empty, loading, error) = match self {
            Self::Room(state) => (state.log.is_empty(), state.status.get() == JoinStatus::Joining, None),
            Self::Dm(convo) => (convo.log.is_empty(), !convo.loaded.get(), convo.error.get()),
        };
        let text = match (error, loading, empty) {
            (Some(error), _, _) => error,
            (None, true, _) if matches!(self, Self::Dm(_)) => "Loading the conversation…".to_owned(),
            (None, true, true) => "Joining…".to_owned(),
            (None, _, true) => "No messages yet. Say hello!".to_owned(),
            (None, _, false) => return None,
        };
        Some(text)
    }
}
