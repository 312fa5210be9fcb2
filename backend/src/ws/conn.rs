//! The per-connection state features read and update.

use std::collections::HashMap;
use std::time::Instant;

use confab_shared::rpc::MAX_ANSWER_BYTES;

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
    /// Bytes the current call's result may still take: what the frame's reply has left of
    /// [`MAX_ANSWER_BYTES`](confab_shared::rpc::MAX_ANSWER_BYTES) (the calls of one batch share
    /// it) less the call's own envelope. Paging answers stop short of it.
    pub answer_budget: usize,
}

impl Conn {
    pub fn new(id: ConnId, identity: Option<Identity>) -> Self {
        Self { id, identity, rooms: HashMap::new(), typing: HashMap::new(), answer_budget: MAX_ANSWER_BYTES }
    }

    /// The authenticated user, or -32001.
    pub fn user(&self) -> AppResult<&Identity> {
        self.identity.as_ref().ok_or(AppError::Unauthenticated)
    }
}
