//! The sessions of this instance's open HTTP streams, by id: where a `POST /api/stream/{id}`
//! finds the session its calls go to.
//!
//! An id is 128 random bits, made when the stream opens and removed when its session ends,
//! so it names one stream only and is worthless once that stream is gone. It is bound to
//! the credentials' user (or to no user, for an anonymous stream): the POST handler compares
//! them before anything else happens. Each session takes at most [`POSTS_IN_LINE`] frames
//! waiting to be read; a POST beyond that is refused at once, so a client cannot make the
//! server hold more bodies than that per stream (the session reads one frame at a time).
//!
//! A stream lives on the instance that opened it: its POSTs must reach that instance (a load
//! balancer with sticky sessions, or one address per instance). A POST that lands elsewhere
//! gets 404, as for a stream that ended, and the client opens a new one.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::{mpsc, oneshot};

/// Frames of one stream waiting for its session to read them.
pub const POSTS_IN_LINE: usize = 8;

/// One POSTed frame and where its answer goes (`None`: it held only notifications).
pub struct Post {
    pub text: Utf8Bytes,
    pub reply: oneshot::Sender<Option<String>>,
}

/// A stream's entry: whose it is and the line its frames wait in.
#[derive(Clone)]
pub struct StreamEntry {
    /// The user who opened it (`None`: anonymous).
    pub user_id: Option<i64>,
    pub posts: mpsc::Sender<Post>,
}

/// The open streams of this instance.
#[derive(Default)]
pub struct Streams {
    open: Arc<DashMap<String, StreamEntry>>,
}

impl Streams {
    /// Registers a new stream of `user_id`: its id (held by the registration, which removes
    /// it when dropped) and the frames POSTed to it.
    pub fn open(&self, user_id: Option<i64>) -> (Registration, mpsc::Receiver<Post>) {
        let (posts, received) = mpsc::channel(POSTS_IN_LINE);
        loop {
            // 2^-128 per id: a repeat is not expected, but would hand one stream's calls to another.
            let id = format!("{:032x}", rand::random::<u128>());
            if let Entry::Vacant(slot) = self.open.entry(id.clone()) {
                slot.insert(StreamEntry { user_id, posts });
                return (Registration { id, open: self.open.clone() }, received);
            }
        }
    }

    /// The open stream called `id`.
    pub fn find(&self, id: &str) -> Option<StreamEntry> {
        self.open.get(id).map(|entry| entry.clone())
    }

    /// Streams open now.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// A stream's place in [`Streams`]; dropping it (when the session ends, however it ends)
/// removes the id, so later POSTs to it get 404.
pub struct Registration {
    id: String,
    open: Arc<DashMap<String, StreamEntry>>,
}

impl Registration {
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.open.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_bit_hex_and_a_dropped_registration_removes_its_stream() {
        let streams = Streams::default();
        let (first, _posts) = streams.open(Some(7));
        let (second, _more) = streams.open(None);
        assert_eq!(first.id().len(), 32);
        assert!(first.id().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(first.id(), second.id());
        assert_eq!(streams.find(first.id()).map(|e| e.user_id), Some(Some(7)));
        assert_eq!(streams.find(second.id()).map(|e| e.user_id), Some(None));
        let id = first.id().to_owned();
        drop(first);
        assert!(streams.find(&id).is_none());
        assert_eq!(streams.len(), 1);
    }
}
