//! Chat rooms. `last_seq` is the per-room counter bumped under the row lock of every insert
//! transaction, which makes commit order and id order agree within a room.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rooms")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub admin_only: bool,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub last_message_at: Option<i64>,
    pub last_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
