//! The initial schema: accounts, sessions, rooms, messages, direct messages, jobs.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_create_tables"
    }
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().auto_increment().primary_key().take()
}

fn big(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().take()
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().not_null().take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(id(Users::Id))
                .col(text(Users::Username))
                .col(text(Users::UsernameKey).unique_key().take())
                .col(text(Users::PasswordHash))
                .col(ColumnDef::new(Users::IsAdmin).boolean().not_null().default(false))
                .col(big(Users::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(text(Sessions::Id).primary_key().take())
                .col(big(Sessions::UserId))
                .col(big(Sessions::CreatedAt))
                .col(big(Sessions::ExpiresAt))
                .col(ColumnDef::new(Sessions::RevokedAt).big_integer().null())
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RefreshTokens::Table)
                .col(text(RefreshTokens::TokenHash).primary_key().take())
                .col(text(RefreshTokens::SessionId))
                .col(big(RefreshTokens::CreatedAt))
                .col(big(RefreshTokens::ExpiresAt))
                .col(ColumnDef::new(RefreshTokens::UsedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("refresh_tokens_session")
                .table(RefreshTokens::Table)
                .col(RefreshTokens::SessionId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Rooms::Table)
                .col(id(Rooms::Id))
                .col(text(Rooms::Name).unique_key().take())
                .col(ColumnDef::new(Rooms::AdminOnly).boolean().not_null().default(false))
                .col(ColumnDef::new(Rooms::CreatedBy).big_integer().null())
                .col(big(Rooms::CreatedAt))
                .col(ColumnDef::new(Rooms::LastMessageAt).big_integer().null())
                .col(ColumnDef::new(Rooms::LastSeq).big_integer().not_null().default(0))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Memberships::Table)
                .col(big(Memberships::UserId))
                .col(big(Memberships::RoomId))
                .col(big(Memberships::JoinedAt))
                .col(ColumnDef::new(Memberships::LastReadId).big_integer().not_null().default(0))
                .primary_key(Index::create().col(Memberships::UserId).col(Memberships::RoomId))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Messages::Table)
                .col(id(Messages::Id))
                .col(big(Messages::RoomId))
                .col(big(Messages::Seq))
                .col(big(Messages::AuthorId))
                .col(text(Messages::Author))
                .col(ColumnDef::new(Messages::Text).text().not_null())
                .col(big(Messages::SentAt))
                .col(ColumnDef::new(Messages::EditedAt).big_integer().null())
                .col(ColumnDef::new(Messages::Deleted).boolean().not_null().default(false))
                .col(ColumnDef::new(Messages::Nonce).string().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("messages_room_id").table(Messages::Table).col(Messages::RoomId).col(Messages::Id).to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("messages_author_nonce")
                .table(Messages::Table)
                .col(Messages::AuthorId)
                .col(Messages::Nonce)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Reactions::Table)
                .col(big(Reactions::MessageId))
                .col(big(Reactions::UserId))
                .col(text(Reactions::Emoji))
                .col(text(Reactions::Username))
                .col(big(Reactions::CreatedAt))
                .primary_key(Index::create().col(Reactions::MessageId).col(Reactions::UserId).col(Reactions::Emoji))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(DirectMessages::Table)
                .col(id(DirectMessages::Id))
                .col(big(DirectMessages::FromId))
                .col(big(DirectMessages::ToId))
                .col(text(DirectMessages::FromName))
                .col(text(DirectMessages::ToName))
                .col(ColumnDef::new(DirectMessages::Text).text().not_null())
                .col(big(DirectMessages::SentAt))
                .col(ColumnDef::new(DirectMessages::Nonce).string().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("dms_to").table(DirectMessages::Table).col(DirectMessages::ToId).col(DirectMessages::Id).to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("dms_from")
                .table(DirectMessages::Table)
                .col(DirectMessages::FromId)
                .col(DirectMessages::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("dms_from_nonce")
                .table(DirectMessages::Table)
                .col(DirectMessages::FromId)
                .col(DirectMessages::Nonce)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(DmReads::Table)
                .col(big(DmReads::UserId))
                .col(big(DmReads::PeerId))
                .col(ColumnDef::new(DmReads::LastReadId).big_integer().not_null().default(0))
                .primary_key(Index::create().col(DmReads::UserId).col(DmReads::PeerId))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .col(id(Jobs::Id))
                .col(big(Jobs::OwnerId))
                .col(text(Jobs::Kind))
                .col(text(Jobs::Room))
                .col(text(Jobs::Format))
                .col(text(Jobs::State))
                .col(ColumnDef::new(Jobs::Percent).integer().not_null().default(0))
                .col(ColumnDef::new(Jobs::Error).text().null())
                .col(ColumnDef::new(Jobs::File).string().null())
                .col(big(Jobs::CreatedAt))
                .col(ColumnDef::new(Jobs::FinishedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Jobs::Table.into_iden(),
            DmReads::Table.into_iden(),
            DirectMessages::Table.into_iden(),
            Reactions::Table.into_iden(),
            Messages::Table.into_iden(),
            Memberships::Table.into_iden(),
            Rooms::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users { Table, Id, Username, UsernameKey, PasswordHash, IsAdmin, CreatedAt }
#[derive(DeriveIden)]
enum Sessions { Table, Id, UserId, CreatedAt, ExpiresAt, RevokedAt }
#[derive(DeriveIden)]
enum RefreshTokens { Table, TokenHash, SessionId, CreatedAt, ExpiresAt, UsedAt }
#[derive(DeriveIden)]
enum Rooms { Table, Id, Name, AdminOnly, CreatedBy, CreatedAt, LastMessageAt, LastSeq }
#[derive(DeriveIden)]
enum Memberships { Table, UserId, RoomId, JoinedAt, LastReadId }
#[derive(DeriveIden)]
enum Messages { Table, Id, RoomId, Seq, AuthorId, Author, Text, SentAt, EditedAt, Deleted, Nonce }
#[derive(DeriveIden)]
enum Reactions { Table, MessageId, UserId, Emoji, Username, CreatedAt }
#[derive(DeriveIden)]
enum DirectMessages { Table, Id, FromId, ToId, FromName, ToName, Text, SentAt, Nonce }
#[derive(DeriveIden)]
enum DmReads { Table, UserId, PeerId, LastReadId }
#[derive(DeriveIden)]
enum Jobs { Table, Id, OwnerId, Kind, Room, Format, State, Percent, Error, File, CreatedAt, FinishedAt }
