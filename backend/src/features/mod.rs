//! The chat features. Each module owns its REST routes (`router()`) and the JSON-RPC
//! methods of its area; REST and socket callers share the same functions and errors.
//!
//! # Layout
//! - [`users`]: who exists and who is online; presence announcements.
//! - [`rooms`]: listing, creating, joining and leaving rooms; history; typing; read cursors.
//! - [`chat`]: sending (through the group-commit [`chat::pipeline`]), editing, deleting, reacting.
//! - [`dm`]: private messages and their receipts.
//! - [`sync`]: catch-up after a reconnect.
//! - [`publish`]: notices to a room, a user or everyone, from outside (`POST /api/publish`).
//! - [`jobs`]: background jobs (room exports) with live progress.
//! - [`tokens`]: API tokens for programs (`/api/tokens`).
//! - [`webhooks`]: signed outgoing events for admins' URLs (`/api/webhooks`), from a delivery queue in the database.
//! - [`system`]: health and the API documents.

pub mod chat;
pub mod dm;
pub mod jobs;
pub mod publish;
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
    pub fn split<T>(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
        if rows.len() <= limit {
            return (rows, None);
        }
        rows.truncate(limit);
        let next = rows.last().map(|last| Self::encode(&key(last)));
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

/// A numeric id from a REST path: anything that is not one names nothing there (404), as
/// an id that does not exist does.
pub fn path_id(raw: &str, what: &'static str) -> Result<i64, AppError> {
    raw.parse().map_err(|_| AppError::NotFound(what))
}
