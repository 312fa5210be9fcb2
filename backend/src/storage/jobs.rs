//! Background jobs (room exports).

use confab_shared::{Job, JobKind, JobState, Timestamp};
use sea_orm::EntityTrait;

use super::entity::jobs;
use super::{Db, StorageResult};

impl From<&jobs::Model> for Job {
    fn from(m: &jobs::Model) -> Self {
        Job {
            id: m.id,
            kind: JobKind::ExportRoom,
            state: match m.state.as_str() {
                "queued" => JobState::Queued,
                "running" => JobState::Running,
                "done" => JobState::Done,
                _ => JobState::Failed,
            },
            percent: m.percent.clamp(0, 100) as u8,
            error: m.error.clone(),
            created_at: Timestamp::from_millis(m.created_at),
            finished_at: m.finished_at.map(Timestamp::from_millis),
        }
    }
}

pub async fn by_id(db: &Db, id: i64) -> StorageResult<Option<jobs::Model>> {
    Ok(jobs::Entity::find_by_id(id).one(&db.conn).await?)
}
