//! Background jobs (exports and purges) and their progress.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub owner_id: i64,
    /// `export_room`, `export_audit` or `purge_messages`.
    pub kind: String,
    pub room: String,
    /// `json` or `csv`.
    pub format: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub percent: i32,
    pub error: Option<String>,
    /// Where the finished file is, relative to the data dir.
    pub file: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// Last sign of life from the instance running it; a queued or running job whose
    /// heartbeat is stale belongs to a dead instance and is marked failed.
    pub heartbeat_at: Option<i64>,
    /// Whose messages a purge deletes.
    pub target_id: Option<i64>,
    /// What an audit export selects: JSON of [`crate::storage::moderation::AuditFilter`].
    pub filter: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
