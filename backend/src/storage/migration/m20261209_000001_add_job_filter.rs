//! Jobs get a `filter`: what an audit export selects (JSON of the storage's `AuditFilter`),
//! kept with the job so that whichever instance runs it reads the same rows.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261209_000001_add_job_filter"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Jobs::Table).add_column(ColumnDef::new(Jobs::Filter).text().null()).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Jobs::Table).drop_column(Jobs::Filter).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Filter,
}
