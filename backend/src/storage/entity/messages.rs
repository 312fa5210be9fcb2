//! Room messages. `author` and the room id are denormalised: names never change.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub room_id: i64,
    /// Position in the room (1, 2, …), assigned under the room's row lock.
    pub seq: i64,
    pub author_id: i64,
    pub author: String,
    pub text: String,
    pub sent_at: i64,
    pub edited_at: Option<i64>,
    pub deleted: bool,
    /// Client de-duplication key, unique per author.
    pub nonce: Option<String>,
    /// The usernames the text mentions (who existed and could read the room), separated by
    /// spaces, as the wire's `mentions` shows them; `None`: nobody.
    pub mentions: Option<String>,
    /// `room` or `here` when a moderator's `@room` / `@here` counted.
    pub mention_all: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
