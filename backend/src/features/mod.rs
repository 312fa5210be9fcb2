//! The chat features. Each module owns its REST routes (`router()`) and the JSON-RPC
//! methods of its area; REST and socket callers share the same functions and errors.
//!
//! # Layout
//! - [`users`]: who exists and who is online; presence announcements.
//! - [`rooms`]: listing, creating, joining and leaving rooms; history; typing; read cursors.
//! - [`chat`]: sending (through the group-commit [`chat::writer`]), editing, deleting, reacting.
//! - [`dm`]: private messages and their receipts.
//! - [`sync`]: catch-up after a reconnect.
//! - [`publish`]: notices to a room, a user or everyone, from outside (`POST /api/publish`).
//! - [`jobs`]: background jobs (room exports) with live progress.
//! - [`tokens`]: API tokens for programs (`/api/tokens`).
//! - [`webhooks`]: signed outgoing events for admins' URLs (`/api/webhooks`), from an outbox.
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

use crate::error::AppError;

/// The `limit` of a history page: 1 to 100, default 50.
pub fn page_limit(limit: Option<u32>) -> Result<u64, AppError> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=100) => Ok(u64::from(n)),
        Some(_) => Err(AppError::invalid("limit", "must be 1 to 100")),
    }
}
