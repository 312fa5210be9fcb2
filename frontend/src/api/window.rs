//! The socket's in-flight window: at most [`MAX_CALLS_IN_FLIGHT`] calls await their answers
//! at once; a call beyond it waits its turn, first come first served.
//!
//! The server never evicts a connection for its own answers (it stops reading while they are
//! queued), so the window is not what keeps the tab connected. It keeps a page that fires many
//! calls at once (a burst of clicks, re-joining every room after a reconnect) from queueing
//! them all in the socket, where they would wait behind each other with their timeouts
//! running; the client libraries keep the same window.
//!
//! A turn is a [`Permit`]: dropping it (the answer came, the call failed or timed out, or the
//! caller went away) hands the turn to the next waiter, or frees it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

pub use confab_shared::rpc::MAX_CALLS_IN_FLIGHT;
use futures::channel::oneshot;

/// The turns of one socket.
pub struct Window {
    limit: usize,
    used: Cell<usize>,
    waiting: RefCell<VecDeque<oneshot::Sender<Permit>>>,
}

/// One call's turn in the window, held until its answer.
pub struct Permit {
    /// `None` once the turn was handed on.
    window: Option<Rc<Window>>,
}

impl Window {
    /// A window of `limit` turns (at least one).
    pub fn new(limit: usize) -> Rc<Self> {
        Rc::new(Self { limit: limit.max(1), used: Cell::new(0), waiting: RefCell::new(VecDeque::new()) })
    }

    /// Waits for a turn. Cancel-safe: a waiter that goes away after being handed a turn
    /// drops it unopened, which hands it on.
    pub async fn turn(self: &Rc<Self>) -> Permit {
        loop {
            if self.used.get() < self.limit && self.waiting.borrow().is_empty() {
                self.used.set(self.used.get() + 1);
                return Permit { window: Some(self.clone()) };
            }
            let (tx, rx) = oneshot::channel();
            self.waiting.borrow_mut().push_back(tx);
            if let Ok(permit) = rx.await {
                return permit;
            }
            // The sender went away without a turn (not done by this module): ask again.
        }
    }

    /// Hands a finished turn to the first waiter still waiting, or frees it.
    fn hand_on(self: &Rc<Self>) {
        let mut permit = Permit { window: Some(self.clone()) };
        loop {
            let next = self.waiting.borrow_mut().pop_front();
            let Some(waiter) = next else { break };
            match waiter.send(permit) {
                Ok(()) => return,
                // That waiter is gone (its call timed out or was dropped): the next one.
                Err(back) => permit = back,
            }
        }
        permit.window = None;
        self.used.set(self.used.get().saturating_sub(1));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(window) = self.window.take() {
            window.hand_on();
        }
    }
}
