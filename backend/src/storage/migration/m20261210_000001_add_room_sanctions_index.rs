//! An index for paging a room's bans and mutes newest first (`GET /api/rooms/{room}/bans`,
//! `.../mutes`): without it each page sorts every ban of the room.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000001_add_room_sanctions_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("room_sanctions_room_kind_created")
                .table(RoomSanctions::Table)
                .col(RoomSanctions::RoomId)
                .col(RoomSanctions::Kind)
                .col(RoomSanctions::CreatedAt)
                .col(RoomSanctions::UserId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("room_sanctions_room_kind_created").table(RoomSanctions::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum RoomSanctions {
    Table,
    RoomId,
    UserId,
    Kind,
    CreatedAt,
}
