//! Byte-order indexes for the paged name lists on PostgreSQL.
//!
//! `users.list` and `rooms.list` page by keyset and search by prefix in byte order
//! (`COLLATE "C"`, see `storage::byte_order`): a locale collation would ignore punctuation and
//! make a prefix range include names that do not start with the prefix. The unique indexes
//! use the database's collation, so PostgreSQL gets a second, byte-order index on each name;
//! SQLite compares bytes already and its unique indexes serve.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        // The name recorded in `seaql_migrations` by every database migrated so far; the file
        // was renamed so that file names sort in the order migrations apply, but the recorded
        // name must stay, or each existing database would try to apply this one again.
        "m20261201_000001_add_name_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared(r#"CREATE INDEX IF NOT EXISTS users_username_key_bytes ON users (username_key COLLATE "C")"#)
            .await?;
        db.execute_unprepared(r#"CREATE INDEX IF NOT EXISTS rooms_name_bytes ON rooms (name COLLATE "C")"#).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS users_username_key_bytes").await?;
        db.execute_unprepared("DROP INDEX IF EXISTS rooms_name_bytes").await?;
        Ok(())
    }
}
