//! Web Push subscriptions and their outbox of pushes.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000002_create_push"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Subscriptions::Table)
                .col(ColumnDef::new(Subscriptions::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(Subscriptions::UserId).big_integer().not_null())
                .col(ColumnDef::new(Subscriptions::Endpoint).string().not_null().unique_key())
                .col(ColumnDef::new(Subscriptions::P256dh).string().not_null())
                .col(ColumnDef::new(Subscriptions::Auth).string().not_null())
                .col(ColumnDef::new(Subscriptions::Device).string().null())
                .col(ColumnDef::new(Subscriptions::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Subscriptions::LastPushAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        // A person's devices, for the list and for each push.
        m.create_index(
            Index::create().name("push_subscriptions_user").table(Subscriptions::Table).col(Subscriptions::UserId).to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Deliveries::Table)
                .col(ColumnDef::new(Deliveries::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(Deliveries::SubscriptionId).big_integer().not_null())
                .col(ColumnDef::new(Deliveries::UserId).big_integer().not_null())
                .col(ColumnDef::new(Deliveries::Topic).string().not_null())
                .col(ColumnDef::new(Deliveries::Body).text().not_null())
                .col(ColumnDef::new(Deliveries::Status).string().not_null())
                .col(ColumnDef::new(Deliveries::Attempts).integer().not_null().default(0))
                .col(ColumnDef::new(Deliveries::HttpStatus).integer().null())
                .col(ColumnDef::new(Deliveries::Error).string().null())
                .col(ColumnDef::new(Deliveries::NextAttemptAt).big_integer().null())
                .col(ColumnDef::new(Deliveries::LeaseUntil).big_integer().null())
                .col(ColumnDef::new(Deliveries::CreatedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        // The worker's question: pending pushes by due time.
        m.create_index(
            Index::create()
                .name("push_deliveries_due")
                .table(Deliveries::Table)
                .col(Deliveries::Status)
                .col(Deliveries::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        // Coalescing's question: this person's latest push of this conversation.
        m.create_index(
            Index::create()
                .name("push_deliveries_topic")
                .table(Deliveries::Table)
                .col(Deliveries::UserId)
                .col(Deliveries::Topic)
                .col(Deliveries::CreatedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Deliveries::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Subscriptions::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Subscriptions {
    #[sea_orm(iden = "push_subscriptions")]
    Table,
    Id,
    UserId,
    Endpoint,
    P256dh,
    Auth,
    Device,
    CreatedAt,
    LastPushAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    #[sea_orm(iden = "push_deliveries")]
    Table,
    Id,
    SubscriptionId,
    UserId,
    Topic,
    Body,
    Status,
    Attempts,
    HttpStatus,
    Error,
    NextAttemptAt,
    LeaseUntil,
    CreatedAt,
}
