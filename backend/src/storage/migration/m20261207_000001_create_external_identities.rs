//! Accounts of trusted issuers: the pair (issuer, subject) names one Confab account, for good.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000001_create_external_identities"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ExternalIdentities::Table)
                .col(ColumnDef::new(ExternalIdentities::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(ExternalIdentities::Issuer).string().not_null())
                .col(ColumnDef::new(ExternalIdentities::Subject).string().not_null())
                .col(ColumnDef::new(ExternalIdentities::UserId).big_integer().not_null().unique_key())
                .col(ColumnDef::new(ExternalIdentities::CreatedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("external_identities_issuer_subject")
                .table(ExternalIdentities::Table)
                .col(ExternalIdentities::Issuer)
                .col(ExternalIdentities::Subject)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ExternalIdentities::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ExternalIdentities {
    Table,
    Id,
    Issuer,
    Subject,
    UserId,
    CreatedAt,
}
