//! Schema migrations, applied in order on start and by `confab migrate`.

use sea_orm_migration::prelude::*;

mod m20261123_000001_create_tables;
mod m20261124_000001_add_job_heartbeat;
mod m20261201_000012_create_export_chunks;
mod m20261201_000001_create_api_tokens;
mod m20261201_000001_add_name_indexes;
mod m20261201_000002_create_webhooks;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_tables::Migration),
            Box::new(m20261124_000001_add_job_heartbeat::Migration),
            Box::new(m20261201_000012_create_export_chunks::Migration),
            Box::new(m20261201_000001_create_api_tokens::Migration),
            Box::new(m20261201_000001_add_name_indexes::Migration),
            Box::new(m20261201_000002_create_webhooks::Migration),
        ]
    }
}
