//! The per-connection state features read and update.

use std::collections::HashMap;
use std::time::Instant;

use crate::auth::Identity;
use crate::error::{AppError, AppResult};
use crate::layer::ConnId;

/// One socket's view of itself. Owned by its session task, so features get `&mut` access
/// without locks.
pub struct Conn {
    pub id: ConnId,
    /// `None` for an anonymous observer.
    pub identity: Option<Identity>,
    /// Rooms joined on this connection: name → id.
    pub rooms: HashMap<String, i64>,
    /// When this connection last sent `room.typing` per room.
    pub typing: HashMap<String, Instant>,
}

impl Conn {
    pub fn new(id: ConnId, identity: Option<Identity>) -> Self {
        Self { id, identity, rooms: HashMap::new(), typing: HashMap::new() }
    }

    /// The authenticated user, or -32001.
    pub fn user(&self) -> AppResult<&Identity> {
        self.identity.as_ref().ok_or(AppError::Unauthenticated)
    }
}
