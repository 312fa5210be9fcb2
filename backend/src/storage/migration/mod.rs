//! Schema migrations, applied in order on start and by `confab migrate`.
//!
//! Files are named `mYYYYMMDD_NNNNNN_verb_noun` and sort in the order they apply. A
//! migration's name (what `seaql_migrations` records) is written out in its `name()` and
//! never changes once released, even when its file is renamed: a database knows which
//! migrations it has by those names.

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_tables;
mod m20261124_000001_add_job_heartbeat;
mod m20261201_000001_create_export_chunks;
mod m20261201_000002_create_api_tokens;
mod m20261201_000003_add_name_indexes;
mod m20261201_000004_create_webhooks;
mod m20261207_000001_create_external_identities;
mod m20261208_000001_create_moderation;
mod m20261209_000001_add_job_filter;
mod m20261210_000001_add_room_sanctions_index;
mod m20261210_000002_create_push;
mod m20261210_000003_create_mentions;
mod m20261211_000001_add_membership_quiet;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_tables::Migration),
            Box::new(m20261124_000001_add_job_heartbeat::Migration),
            Box::new(m20261201_000001_create_export_chunks::Migration),
            Box::new(m20261201_000002_create_api_tokens::Migration),
            Box::new(m20261201_000003_add_name_indexes::Migration),
            Box::new(m20261201_000004_create_webhooks::Migration),
            Box::new(m20261207_000001_create_external_identities::Migration),
            Box::new(m20261208_000001_create_moderation::Migration),
            Box::new(m20261209_000001_add_job_filter::Migration),
            Box::new(m20261210_000001_add_room_sanctions_index::Migration),
            Box::new(m20261210_000002_create_push::Migration),
            Box::new(m20261210_000003_create_mentions::Migration),
            Box::new(m20261211_000001_add_membership_quiet::Migration),
        ]
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::ConnectionTrait as _;

    use super::*;

    /// What every database migrated so far has recorded, in the order it was applied.
    const RECORDED: [&str; 13] = [
        "m20261123_000001_create_tables",
        "m20261124_000001_add_job_heartbeat",
        "m20261201_000012_create_export_chunks",
        "m20261201_000001_create_api_tokens",
        "m20261201_000001_add_name_indexes",
        "m20261201_000002_create_webhooks",
        "m20261207_000001_create_external_identities",
        "m20261208_000001_create_moderation",
        "m20261209_000001_add_job_filter",
        "m20261210_000001_add_room_sanctions_index",
        "m20261210_000002_create_push",
        "m20261210_000003_create_mentions",
        "m20261211_000001_add_membership_quiet",
    ];

    #[test]
    fn migration_files_sort_in_the_order_they_are_applied() {
        let source = include_str!("mod.rs");
        let applied: Vec<&str> = source.lines().filter_map(|l| l.trim().strip_prefix("Box::new(")?.strip_suffix("::Migration),")).collect();
        assert_eq!(applied.len(), Migrator::migrations().len(), "every migration is listed once: {applied:?}");
        let mut sorted = applied.clone();
        sorted.sort_unstable();
        assert_eq!(applied, sorted, "migration files are named in the order they apply");
    }

    #[tokio::test]
    async fn a_database_migrated_by_an_earlier_release_has_nothing_left_to_apply() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        let db = crate::storage::Db::connect(&url).await.expect("connect");
        // What an earlier release left: its schema and its names in seaql_migrations. The
        // schema is the same migrations' work, so apply them and then write the recorded
        // names over whatever this build recorded.
        db.migrate().await.expect("migrate");
        let conn = &db.conn;
        conn.execute_unprepared("DELETE FROM seaql_migrations").await.expect("clear");
        for (at, name) in RECORDED.iter().enumerate() {
            conn.execute_unprepared(&format!("INSERT INTO seaql_migrations (version, applied_at) VALUES ('{name}', {at})")).await.expect("record");
        }
        let pending: Vec<String> = Migrator::get_pending_migrations(conn).await.expect("status").iter().map(|m| m.name().to_owned()).collect();
        assert!(pending.is_empty(), "an up-to-date database would migrate again: {pending:?}");
        db.migrate().await.expect("starting again on it works");
        let names: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
        assert_eq!(names, RECORDED, "released migrations keep their recorded names, in their order");
    }
}
