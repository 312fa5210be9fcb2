//! Mentions: a message keeps whom it mentions (`mentions`: usernames separated by spaces,
//! `mention_all`: `room` or `here`), and `mentions` holds one row per (mentioned user,
//! message), the index unread mention counts are read from.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000003_create_mentions"
    }
}

fn big(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        m.alter_table(Table::alter().table(Messages::Table).add_column(ColumnDef::new(Messages::Mentions).text().null()).to_owned()).await?;
        m.alter_table(Table::alter().table(Messages::Table).add_column(ColumnDef::new(Messages::MentionAll).string().null()).to_owned()).await?;
        m.create_table(
            Table::create()
                .table(Mentions::Table)
                .col(big(Mentions::UserId))
                .col(big(Mentions::MessageId))
                .col(big(Mentions::RoomId))
                .primary_key(Index::create().col(Mentions::UserId).col(Mentions::MessageId))
                .to_owned(),
        )
        .await?;
        // Unread mentions per room: a user's rows of one room after the read cursor.
        m.create_index(
            Index::create().name("idx_mentions_user_room").table(Mentions::Table).col(Mentions::UserId).col(Mentions::RoomId).col(Mentions::MessageId).to_owned(),
        )
        .await?;
        // An edit or a delete finds the rows of its message.
        m.create_index(Index::create().name("idx_mentions_message").table(Mentions::Table).col(Mentions::MessageId).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Mentions::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(Messages::Table).drop_column(Messages::MentionAll).to_owned()).await?;
        m.alter_table(Table::alter().table(Messages::Table).drop_column(Messages::Mentions).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Mentions,
    MentionAll,
}

#[derive(DeriveIden)]
enum Mentions {
    Table,
    UserId,
    MessageId,
    RoomId,
}
