//! The one shape of a conversation, shared by rooms and private conversations: the
//! messages we hold, how many of the newest are rendered, paging back, and the unsent
//! messages: those this tab sent that have not been confirmed ([`PendingSend`]).
//!
//! Messages are kept sorted by id and de-duplicated by id, because the same message can
//! arrive several times (the send result, the broadcast to the sender, `sync` after a
//! reconnect). Sends carry a client nonce, so retrying one cannot post it twice.

use std::future::Future;

use confab_shared::rpc::ErrorObject;
use confab_shared::{DirectMessage, validate};
use leptos::prelude::*;

use crate::components::toasts::Toasts;
use crate::util::{describe, nonce};

/// How many messages a log renders by default; older ones stay in memory (or on the
/// server) until "load earlier" reveals them, so a busy conversation stays fast.
pub const RENDER_WINDOW: usize = 500;
/// How many messages one "load earlier" adds (the protocol's maximum page).
pub const PAGE: u32 = 100;
/// What a history answer spends besides its messages: the envelope and a request id.
const ANSWER_SLACK: usize = 1024;

/// Whether the server may hold older messages than a history `page` asked with `limit`
/// brings (`largest`: the most bytes one such message takes). A full page says so. A shorter
/// one may have been cut to keep the answer within `MAX_ANSWER_BYTES`, but the server cuts
/// only when the next message does not fit, so a short page that is smaller than that by
/// more than one message reached the start. (The protocol's plain rule, "an empty page is the
/// start", would cost every short conversation one more call and a "load earlier" that shows
/// nothing.)
pub fn may_have_older<M: serde::Serialize>(page: &[M], limit: u32, largest: usize) -> bool {
    if page.len() >= limit as usize {
        return true;
    }
    if page.is_empty() {
        return false;
    }
    let bytes = page.iter().map(|m| serde_json::to_string(m).map_or(usize::MAX, |json| json.len() + 1)).fold(0, usize::saturating_add);
    bytes.saturating_add(largest).saturating_add(ANSWER_SLACK) > confab_shared::rpc::MAX_ANSWER_BYTES
}

/// A message of a log, known by its server id.
pub trait Entry: Clone + Send + Sync + 'static {
    fn id(&self) -> i64;
}

impl Entry for DirectMessage {
    fn id(&self) -> i64 {
        self.id
    }
}

/// A message this tab sent whose result has not come back (or that failed).
#[derive(Clone, Debug, PartialEq)]
pub struct PendingSend {
    /// Doubles as the de-duplication key: a retry with the same nonce cannot post twice.
    pub nonce: String,
    pub text: String,
    /// Why it failed, once it has.
    pub failed: Option<String>,
}

/// The messages of one conversation, cheap to clone (every field is a shared signal).
#[derive(Clone)]
pub struct Log<T: Entry> {
    pub messages: ArcRwSignal<Vec<T>>,
    /// How many of the newest messages to render.
    pub window: ArcRwSignal<usize>,
    /// Whether the server may hold messages older than the oldest we have.
    pub has_more: ArcRwSignal<bool>,
    pub loading_earlier: ArcRwSignal<bool>,
    pub pending: ArcRwSignal<Vec<PendingSend>>,
}

impl<T: Entry> Default for Log<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Entry> Log<T> {
    pub fn new() -> Self {
        Self {
            messages: ArcRwSignal::new(Vec::new()),
            window: ArcRwSignal::new(RENDER_WINDOW),
            has_more: ArcRwSignal::new(false),
            loading_earlier: ArcRwSignal::new(false),
            pending: ArcRwSignal::new(Vec::new()),
        }
    }

    /// Forgets every message and pending send.
    pub fn reset(&self) {
        self.messages.set(Vec::new());
        self.has_more.set(false);
        self.window.set(RENDER_WINDOW);
        self.pending.set(Vec::new());
    }

    /// The newest message id we hold.
    pub fn last_id(&self) -> Option<i64> {
        self.messages.with_untracked(|m| m.last().map(T::id))
    }

    /// The oldest message id we hold.
    pub fn first_id(&self) -> Option<i64> {
        self.messages.with_untracked(|m| m.first().map(T::id))
    }

    /// The message with `id`, if we hold it.
    pub fn get(&self, id: i64) -> Option<T> {
        self.messages
            .with_untracked(|list| list.binary_search_by_key(&id, T::id).ok().and_then(|at| list.get(at).cloned()))
    }

    /// Merges messages in, keeping id order and ignoring ids we already have.
    pub fn merge(&self, mut batch: Vec<T>) {
        if batch.is_empty() {
            return;
        }
        batch.sort_by_key(T::id);
        self.messages.update(|list| {
            for item in batch {
                // The common case, a new message at the end, is O(1).
                if list.last().is_none_or(|last| last.id() < item.id()) {
                    list.push(item);
                } else if let Err(at) = list.binary_search_by_key(&item.id(), T::id) {
                    list.insert(at, item);
                }
            }
        });
    }

    /// The rendered tail (reactive).
    pub fn visible(&self) -> Vec<T> {
        let window = self.window.get();
        self.messages.with(|list| list[list.len().saturating_sub(window)..].to_vec())
    }

    /// Whether "load earlier" has anything to show (reactive).
    pub fn can_load_earlier(&self) -> bool {
        self.has_more.get() || self.messages.with(Vec::len) > self.window.get()
    }

    /// Whether there is nothing at all to show, sent or pending (reactive).
    pub fn is_empty(&self) -> bool {
        self.messages.with(Vec::is_empty) && self.pending.with(Vec::is_empty)
    }

    /// Changes whenever the rendered content does: rows shown (plus `extra` rows of the
    /// caller's) and the newest id; the scrolling log follows it (reactive).
    pub fn revision(&self, extra: usize) -> (usize, i64) {
        let newest = self.messages.with(|m| m.last().map_or(0, T::id));
        let shown = self.messages.with(Vec::len).min(self.window.get());
        (shown + self.pending.with(Vec::len) + extra, newest)
    }

    /// Reveals older messages: first those already in memory, then a page fetched with
    /// `fetch(before)`, which also says whether older ones may remain ([`may_have_older`]).
    pub async fn load_earlier<Fut>(&self, fetch: impl FnOnce(i64) -> Fut) -> Result<(), ErrorObject>
    where
        Fut: Future<Output = Result<(Vec<T>, bool), ErrorObject>>,
    {
        let len = self.messages.with_untracked(Vec::len);
        let window = self.window.get_untracked();
        if len > window {
            self.window.set(window + PAGE as usize);
            return Ok(());
        }
        let Some(before) = self.first_id() else { return Ok(()) };
        self.loading_earlier.set(true);
        let result = fetch(before).await;
        if let Ok((page, more)) = &result {
            self.has_more.set(*more);
            self.window.set(window + page.len());
        }
        self.loading_earlier.set(false);
        result.map(|(page, _)| self.merge(page))
    }

    // ----- the unsent messages ----------------------------------------------------------

    /// Checks typed text and queues it; `None` (with the reason as a toast) when it is
    /// refused before sending, so the composer keeps it.
    pub fn queue(&self, raw: &str, toasts: Toasts) -> Option<PendingSend> {
        match validate::message_text(raw) {
            Ok(text) => {
                let pending = PendingSend { nonce: nonce(), text: text.to_owned(), failed: None };
                self.pending.update(|p| p.push(pending.clone()));
                Some(pending)
            }
            Err(why) => {
                toasts.error(format!("Message {why}."));
                None
            }
        }
    }

    /// A failed send to try again (with the same nonce), marked as sending once more.
    pub fn retrying(&self, nonce: &str) -> Option<PendingSend> {
        let pending = self.pending.with_untracked(|p| p.iter().find(|p| p.nonce == nonce).cloned())?;
        self.set_failed(nonce, None);
        Some(pending)
    }

    /// Awaits one delivery attempt: on success the pending row goes (the caller files the
    /// result); on failure the row says why and a toast `"{what} not sent: …"` appears.
    pub async fn attempt<R>(
        &self,
        nonce: &str,
        toasts: Toasts,
        what: &str,
        call: impl Future<Output = Result<R, ErrorObject>>,
    ) -> Option<R> {
        match call.await {
            Ok(result) => {
                self.discard(nonce);
                Some(result)
            }
            Err(err) => {
                let why = describe(&err);
                self.set_failed(nonce, Some(why.clone()));
                toasts.error(format!("{what} not sent: {why}"));
                None
            }
        }
    }

    /// Drops a pending send (delivered, or given up on).
    pub fn discard(&self, nonce: &str) {
        self.pending.update(|p| p.retain(|p| p.nonce != nonce));
    }

    fn set_failed(&self, nonce: &str, why: Option<String>) {
        self.pending.update(|p| {
            if let Some(p) = p.iter_mut().find(|p| p.nonce == nonce) {
                p.failed = why;
            }
        });
    }
}
