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
    /// The room's owner (`None`: admins only); whoever created it, unless an admin handed it on.
    pub owner_id: Option<i64>,
    /// Slow mode: at most one message per this many seconds per member (0: off).
    pub slow_mode_secs: i32,
    /// Messages older than this many days are deleted (`None`: the server's default).
    pub retention_days: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
