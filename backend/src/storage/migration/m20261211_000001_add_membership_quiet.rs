//! Quiet rooms: `memberships.quiet`, a member's choice to hear nothing of a room (no desktop
//! notification, no Web Push for a mention) while still reading it and counting its unread
//! messages. Not moderation: `room.mute` silences a member, this silences the room for one.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261211_000001_add_membership_quiet"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table(Memberships::Table).add_column(ColumnDef::new(Memberships::Quiet).boolean().not_null().default(false)).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Memberships::Table).drop_column(Memberships::Quiet).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Quiet,
}
