//! Webhooks and their queue of deliveries.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        // The name recorded in `seaql_migrations` by every database migrated so far; the file
        // was renamed so that file names sort in the order migrations apply, but the recorded
        // name must stay, or each existing database would try to apply this one again.
        "m20261201_000002_create_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Webhooks::Table)
                .col(ColumnDef::new(Webhooks::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(Webhooks::Url).string().not_null())
                .col(ColumnDef::new(Webhooks::Events).string().not_null())
                .col(ColumnDef::new(Webhooks::Rooms).string().null())
                .col(ColumnDef::new(Webhooks::Secret).string().not_null())
                .col(ColumnDef::new(Webhooks::CreatedBy).big_integer().not_null())
                .col(ColumnDef::new(Webhooks::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Webhooks::DisabledAt).big_integer().null())
                .col(ColumnDef::new(Webhooks::DisabledReason).string().null())
                .col(ColumnDef::new(Webhooks::ConsecutiveFailures).integer().not_null().default(0))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Deliveries::Table)
                .col(ColumnDef::new(Deliveries::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(Deliveries::WebhookId).big_integer().not_null())
                .col(ColumnDef::new(Deliveries::EventId).string().not_null())
                .col(ColumnDef::new(Deliveries::EventType).string().not_null())
                .col(ColumnDef::new(Deliveries::OrderingKey).string().not_null())
                .col(ColumnDef::new(Deliveries::Body).text().not_null())
                .col(ColumnDef::new(Deliveries::Status).string().not_null())
                .col(ColumnDef::new(Deliveries::Attempts).integer().not_null().default(0))
                .col(ColumnDef::new(Deliveries::HttpStatus).integer().null())
                .col(ColumnDef::new(Deliveries::Error).string().null())
                .col(ColumnDef::new(Deliveries::NextAttemptAt).big_integer().null())
                .col(ColumnDef::new(Deliveries::LeaseUntil).big_integer().null())
                .col(ColumnDef::new(Deliveries::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Deliveries::DeliveredAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        // The worker's question: the oldest pending delivery of each (webhook, key).
        m.create_index(
            Index::create()
                .name("webhook_deliveries_queue")
                .table(Deliveries::Table)
                .col(Deliveries::Status)
                .col(Deliveries::WebhookId)
                .col(Deliveries::OrderingKey)
                .col(Deliveries::Id)
                .to_owned(),
        )
        .await?;
        // The deliveries page: a webhook's newest first.
        m.create_index(
            Index::create()
                .name("webhook_deliveries_recent")
                .table(Deliveries::Table)
                .col(Deliveries::WebhookId)
                .col(Deliveries::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Deliveries::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Webhooks::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Url,
    Events,
    Rooms,
    Secret,
    CreatedBy,
    CreatedAt,
    DisabledAt,
    DisabledReason,
    ConsecutiveFailures,
}

#[derive(DeriveIden)]
enum Deliveries {
    #[sea_orm(iden = "webhook_deliveries")]
    Table,
    Id,
    WebhookId,
    EventId,
    EventType,
    OrderingKey,
    Body,
    Status,
    Attempts,
    HttpStatus,
    Error,
    NextAttemptAt,
    LeaseUntil,
    CreatedAt,
    DeliveredAt,
}
