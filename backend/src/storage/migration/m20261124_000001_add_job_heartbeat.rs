//! Jobs get a heartbeat, so an instance can tell a job another live instance is running
//! from one whose instance died (and mark only the latter failed).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000001_add_job_heartbeat"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(Jobs::Table).add_column(ColumnDef::new(Jobs::HeartbeatAt).big_integer().null()).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Jobs::Table).drop_column(Jobs::HeartbeatAt).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    HeartbeatAt,
}
