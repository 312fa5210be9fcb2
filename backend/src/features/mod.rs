//! The chat features. Each module owns its REST routes (`router()`) and the JSON-RPC
//! methods of its area; REST and socket callers share the same functions and errors.
//!
//! # Layout
//! - [`users`]: who exists and who is online; presence announcements.
//! - [`rooms`]: listing, creating, joining and leaving rooms; history; typing; read cursors.
//! - [`chat`]: sending (through the group-commit [`chat::pipeline`]), editing, deleting, reacting,
//!   and whom a message mentions ([`chat::mentions`]).
//! - [`dm`]: private messages and their receipts.
//! - [`sync`]: catch-up after a reconnect.
//! - [`publish`]: notices to a room, a user or everyone, from outside (`POST /api/publish`).
//! - [`jobs`]: background jobs (room exports) with live progress.
//! - [`tokens`]: API tokens for programs (`/api/tokens`).
//! - [`hooks`]: the team's backend asked before a connect, a join or a send goes through.
//! - [`moderation`]: room roles, kicks, bans, mutes, slow mode, suspensions, purges, reports
//!   and the audit log.
//! - [`webhooks`]: signed outgoing events for admins' URLs (`/api/webhooks`), from a delivery queue in the database.
//! - [`push`]: Web Push to people with no connection (`/api/push/…`), from a queue in the database.
//! - [`system`]: health and the API documents.

pub mod chat;
pub mod dm;
pub mod hooks;
pub mod jobs;
pub mod moderation;
pub mod publish;
pub mod push;
pub mod rooms;
pub mod sync;
pub mod system;
pub mod tokens;
pub mod webhooks;
pub mod users;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;

use crate::error::AppError;

/// The `limit` of a list page (users, rooms, members): 1 to 200, `default` when absent.
pub fn list_limit(limit: Option<u32>, default: usize) -> Result<usize, AppError> {
    match limit {
        None => Ok(default),
        Some(n @ 1..=200) => Ok(n as usize),
        Some(_) => Err(AppError::invalid("limit", "must be 1 to 200")),
    }
}

/// Keyset cursors of the name-ordered lists: the last key of a page, opaque to clients
/// (base64url), so a page starts strictly after it and inserts never shift it.
///
/// Any base64url text (at most [`MAX_CURSOR_CHARS`], what the OpenAPI pattern states) is a
/// position: ours decode to a key, and any other decodes to some lower bound, which can only
/// start the list somewhere else. So a cursor is refused only when it is not base64url.
pub struct Page;

/// The longest cursor accepted (a 64-character room name encodes to 86).
pub const MAX_CURSOR_CHARS: usize = 100;

/// What decodes cursors: base64url without padding, tolerating the trailing bits a
/// canonical encoder would zero (the pattern cannot tell those apart).
const CURSOR: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

impl Page {
    /// The cursor after `key`.
    pub fn encode(key: &str) -> String {
        URL_SAFE_NO_PAD.encode(key)
    }

    /// The position a cursor stands for; -32602 / 422 `cursor` when it is not base64url. (An
    /// empty cursor is no cursor: callers filter it out, so it means the first page.)
    pub fn decode(cursor: &str) -> Result<String, AppError> {
        let bad = || AppError::invalid("cursor", "must be a next_cursor a list returned (base64url, at most 100 characters)");
        if cursor.len() > MAX_CURSOR_CHARS {
            return Err(bad());
        }
        let bytes = CURSOR.decode(cursor).map_err(|_| bad())?;
        // Text without NUL (PostgreSQL refuses it in a parameter); keys never hold either,
        // and cutting a forged bound there starts the page at the same place.
        let key = String::from_utf8_lossy(&bytes);
        Ok(key.split('\0').next().unwrap_or_default().to_owned())
    }

    /// Cuts `rows` (fetched with one extra) to `limit`, with the cursor of the next page when
    /// there is one.
    pub fn split<T>(rows: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
        Self::split_with(rows, limit, |row| Self::encode(&key(row)))
    }

    /// [`split`](Self::split) for the lists ordered by id, newest first (reports, the audit
    /// log): their cursor is the last id in decimal, which the OpenAPI pattern can state
    /// exactly (`^[0-9]{0,18}$`), so every cursor the schema allows is a position.
    pub fn split_by_id<T>(rows: Vec<T>, limit: usize, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
        Self::split_with(rows, limit, |row| id(row).to_string())
    }

    /// The id an id cursor stands for (the list continues below it); -32602 / 422 `cursor`
    /// when it is not 1 to 18 decimal digits. An empty cursor means the first page: `None`.
    pub fn decode_id(cursor: Option<&str>) -> Result<Option<i64>, AppError> {
        match cursor {
            None | Some("") => Ok(None),
            Some(digits) if digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse().map(Some).map_err(|_| AppError::invalid("cursor", "must be a next_cursor a list returned"))
            }
            Some(_) => Err(AppError::invalid("cursor", "must be a next_cursor a list returned (1 to 18 digits)")),
        }
    }

    fn split_with<T>(mut rows: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
        if rows.len() <= limit {
            return (rows, None);
        }
        rows.truncate(limit);
        let next = rows.last().map(cursor);
        (rows, next)
    }
}

/// The `limit` of a history page: 1 to 100, default 50.
pub fn page_limit(limit: Option<u32>) -> Result<u64, AppError> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=100) => Ok(u64::from(n)),
        Some(_) => Err(AppError::invalid("limit", "must be 1 to 100")),
    }
}

pub use confab_shared::rpc::json_len;

/// What is left of an answer's byte budget while its items are added, in the order the
/// answer must keep: once an item does not fit, the answer stops there (a page with a hole
/// in it could not be resumed), and [`Budget::cut`] says so.
pub struct Budget {
    left: usize,
    cut: bool,
}

impl Budget {
    /// `bytes` for the items, after the rest of the answer has been paid for.
    pub fn new(bytes: usize) -> Self {
        Self { left: bytes, cut: false }
    }

    /// The budget a result of `bytes` leaves for its items, when the result without them
    /// (`frame`) takes its own share.
    pub fn after<T: serde::Serialize + ?Sized>(bytes: usize, frame: &T) -> Self {
        Self::new(bytes.saturating_sub(json_len(frame)))
    }

    /// The budget of an answer that is a JSON array of `bytes` at most.
    pub fn array(bytes: usize) -> Self {
        Self::new(bytes.saturating_sub("[]".len()))
    }

    /// Whether `item` (and the comma before it) still fits; if so, it is paid for.
    pub fn admit<T: serde::Serialize + ?Sized>(&mut self, item: &T) -> bool {
        if self.cut {
            return false;
        }
        let cost = json_len(item).saturating_add(1);
        if cost > self.left {
            self.cut = true;
            return false;
        }
        self.left -= cost;
        true
    }

    /// Whether an item was turned away.
    pub fn cut(&self) -> bool {
        self.cut
    }

    /// The newest of `items` (oldest first) that fit, still oldest first: a history page
    /// keeps the end next to where the client is paging from.
    pub fn newest<T: serde::Serialize>(&mut self, items: Vec<T>) -> Vec<T> {
        let mut kept: Vec<T> = items.into_iter().rev().take_while(|item| self.admit(item)).collect();
        kept.reverse();
        kept
    }

    /// The oldest of `items` (oldest first) that fit: catching up keeps the start.
    pub fn oldest<T: serde::Serialize>(&mut self, items: Vec<T>) -> Vec<T> {
        items.into_iter().take_while(|item| self.admit(item)).collect()
    }
}

/// A numeric id from a REST path: anything that is not one names nothing there (404), as
/// an id that does not exist does.
pub fn path_id(raw: &str, what: &'static str) -> Result<i64, AppError> {
    raw.parse().map_err(|_| AppError::NotFound(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_len_is_the_length_of_the_json() {
        let value = serde_json::json!({"text": "a\u{1}\"é", "n": [1, 2]});
        assert_eq!(json_len(&value), serde_json::to_string(&value).map(|s| s.len()).unwrap_or_default());
    }

    #[test]
    fn a_budget_keeps_the_items_that_fit_at_the_end_it_is_asked_for_and_says_it_cut() {
        let items: Vec<String> = (0..10).map(|i| format!("{i}{}", "x".repeat(8))).collect();
        // Each item is 11 bytes of JSON and a comma: room for three.
        let mut budget = Budget::array(2 + 3 * 12);
        assert_eq!(budget.newest(items.clone()), items[7..]);
        assert!(budget.cut());
        let mut budget = Budget::array(2 + 3 * 12);
        assert_eq!(budget.oldest(items.clone()), items[..3]);
        assert!(!budget.admit(&""), "nothing after the first that did not fit");
        let mut roomy = Budget::array(1 << 20);
        assert_eq!(roomy.oldest(items.clone()), items);
        assert!(!roomy.cut());
        let kept = Budget::array(2 + 3 * 12).oldest(items.clone());
        let json = serde_json::to_string(&kept).unwrap_or_default();
        assert!(json.len() <= 2 + 3 * 12);
    }
}
