//! API tokens for programs: one row per token, looked up by the hash of its secret.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        // The name recorded in `seaql_migrations` by every database migrated so far; the file
        // was renamed so that file names sort in the order migrations apply, but the recorded
        // name must stay, or each existing database would try to apply this one again.
        "m20261201_000001_create_api_tokens"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(ColumnDef::new(ApiTokens::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(ApiTokens::UserId).big_integer().not_null())
                .col(ColumnDef::new(ApiTokens::Name).string().not_null())
                .col(ColumnDef::new(ApiTokens::Scopes).string().not_null())
                .col(ColumnDef::new(ApiTokens::TokenHash).string().not_null().unique_key())
                .col(ColumnDef::new(ApiTokens::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(ApiTokens::ExpiresAt).big_integer().null())
                .col(ColumnDef::new(ApiTokens::LastUsedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("api_tokens_user").table(ApiTokens::Table).col(ApiTokens::UserId).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ApiTokens::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    UserId,
    Name,
    Scopes,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
}
