//! Who has joined which room, with their read cursor and whether they keep it quiet.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "memberships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: i64,
    pub joined_at: i64,
    /// The highest message id the user has read; only ever moves forward.
    pub last_read_id: i64,
    /// The member hears nothing of the room: no notification, no Web Push for a mention.
    pub quiet: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
