//! Moderation: room owners, moderators, bans and mutes, account suspensions, room settings
//! (slow mode, retention), reports and the audit log. Existing rooms get the user who
//! created them as owner (rooms nobody is known to have created stay ownerless: admins only).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000001_create_moderation"
    }
}

fn big(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().auto_increment().primary_key().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        m.alter_table(Table::alter().table(Rooms::Table).add_column(ColumnDef::new(Rooms::OwnerId).big_integer().null()).to_owned()).await?;
        m.alter_table(
            Table::alter().table(Rooms::Table).add_column(ColumnDef::new(Rooms::SlowModeSecs).integer().not_null().default(0)).to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table(Rooms::Table).add_column(ColumnDef::new(Rooms::RetentionDays).integer().null()).to_owned()).await?;
        m.get_connection().execute_unprepared("UPDATE rooms SET owner_id = created_by WHERE created_by IS NOT NULL").await?;
        // A purge job's user (its `room` is the one room, or empty for every room).
        m.alter_table(Table::alter().table(Jobs::Table).add_column(ColumnDef::new(Jobs::TargetId).big_integer().null()).to_owned()).await?;

        m.create_table(
            Table::create()
                .table(RoomModerators::Table)
                .col(big(RoomModerators::RoomId))
                .col(big(RoomModerators::UserId))
                .col(ColumnDef::new(RoomModerators::AppointedBy).big_integer().null())
                .col(big(RoomModerators::CreatedAt))
                .primary_key(Index::create().col(RoomModerators::RoomId).col(RoomModerators::UserId))
                .to_owned(),
        )
        .await?;

        // One row per (room, user, kind): a ban or a mute, ending at `ends_at` (null: until lifted).
        m.create_table(
            Table::create()
                .table(RoomSanctions::Table)
                .col(big(RoomSanctions::RoomId))
                .col(big(RoomSanctions::UserId))
                .col(ColumnDef::new(RoomSanctions::Kind).string().not_null())
                .col(ColumnDef::new(RoomSanctions::Reason).text().null())
                .col(ColumnDef::new(RoomSanctions::EndsAt).big_integer().null())
                .col(ColumnDef::new(RoomSanctions::ById).big_integer().null())
                .col(big(RoomSanctions::CreatedAt))
                .primary_key(Index::create().col(RoomSanctions::RoomId).col(RoomSanctions::UserId).col(RoomSanctions::Kind))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Suspensions::Table)
                .col(ColumnDef::new(Suspensions::UserId).big_integer().not_null().primary_key())
                .col(ColumnDef::new(Suspensions::Reason).text().null())
                .col(ColumnDef::new(Suspensions::EndsAt).big_integer().null())
                .col(ColumnDef::new(Suspensions::ById).big_integer().null())
                .col(big(Suspensions::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Reports::Table)
                .col(id(Reports::Id))
                .col(big(Reports::MessageId))
                .col(big(Reports::RoomId))
                .col(big(Reports::ReporterId))
                .col(ColumnDef::new(Reports::Reason).text().not_null())
                .col(ColumnDef::new(Reports::State).string().not_null())
                .col(big(Reports::CreatedAt))
                .col(ColumnDef::new(Reports::ResolvedBy).big_integer().null())
                .col(ColumnDef::new(Reports::ResolvedAt).big_integer().null())
                .col(ColumnDef::new(Reports::Resolution).text().null())
                .col(ColumnDef::new(Reports::Note).text().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("reports_message_reporter").table(Reports::Table).col(Reports::MessageId).col(Reports::ReporterId).unique().to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("reports_state_room").table(Reports::Table).col(Reports::State).col(Reports::RoomId).col(Reports::Id).to_owned()).await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(id(AuditLog::Id))
                .col(big(AuditLog::CreatedAt))
                .col(ColumnDef::new(AuditLog::ActorId).big_integer().null())
                .col(ColumnDef::new(AuditLog::Actor).string().not_null())
                .col(ColumnDef::new(AuditLog::Action).string().not_null())
                .col(ColumnDef::new(AuditLog::Target).string().null())
                .col(ColumnDef::new(AuditLog::Room).string().null())
                .col(ColumnDef::new(AuditLog::Reason).text().null())
                .col(ColumnDef::new(AuditLog::Detail).text().null())
                .col(ColumnDef::new(AuditLog::Instance).string().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("audit_log_created_at").table(AuditLog::Table).col(AuditLog::CreatedAt).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [AuditLog::Table.into_iden(), Reports::Table.into_iden(), Suspensions::Table.into_iden(), RoomSanctions::Table.into_iden(), RoomModerators::Table.into_iden()] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        m.alter_table(Table::alter().table(Jobs::Table).drop_column(Jobs::TargetId).to_owned()).await?;
        for col in [Rooms::RetentionDays, Rooms::SlowModeSecs, Rooms::OwnerId] {
            m.alter_table(Table::alter().table(Rooms::Table).drop_column(col).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Rooms {
    Table,
    OwnerId,
    SlowModeSecs,
    RetentionDays,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    TargetId,
}

#[derive(DeriveIden)]
enum RoomModerators {
    Table,
    RoomId,
    UserId,
    AppointedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RoomSanctions {
    Table,
    RoomId,
    UserId,
    Kind,
    Reason,
    EndsAt,
    ById,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Suspensions {
    Table,
    UserId,
    Reason,
    EndsAt,
    ById,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Reports {
    Table,
    Id,
    MessageId,
    RoomId,
    ReporterId,
    Reason,
    State,
    CreatedAt,
    ResolvedBy,
    ResolvedAt,
    Resolution,
    Note,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    CreatedAt,
    ActorId,
    Actor,
    Action,
    Target,
    Room,
    Reason,
    Detail,
    Instance,
}
