//! Export files move into the database, in chunks, so that every instance can serve every
//! download (a file in one instance's data dir reached only that instance).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        // The name recorded in `seaql_migrations` by every database migrated so far; the file
        // was renamed so that file names sort in the order migrations apply, but the recorded
        // name must stay, or each existing database would try to apply this one again.
        "m20261201_000012_create_export_chunks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ExportChunks::Table)
                .col(ColumnDef::new(ExportChunks::JobId).big_integer().not_null())
                .col(ColumnDef::new(ExportChunks::Seq).integer().not_null())
                .col(ColumnDef::new(ExportChunks::Data).blob().not_null())
                .primary_key(Index::create().col(ExportChunks::JobId).col(ExportChunks::Seq))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ExportChunks::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ExportChunks {
    Table,
    JobId,
    Seq,
    Data,
}
