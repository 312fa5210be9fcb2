//! Background jobs: `job.subscribe` (progress reaches the owner's connections through
//! their user group, so subscribing checks ownership and returns the current state).

use confab_shared::Job;
use confab_shared::rpc::JobSubscribeParams;

use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::storage::jobs;
use crate::ws::Conn;

/// `job.subscribe`: the owner only; others get "not found" so job ids reveal nothing.
pub async fn subscribe(state: &AppState, conn: &Conn, p: JobSubscribeParams) -> AppResult<Job> {
    let me = conn.user()?;
    let job = jobs::by_id(&state.db, p.job_id).await?.filter(|j| j.owner_id == me.user_id).ok_or(AppError::NotFound("job"))?;
    Ok(Job::from(&job))
}
