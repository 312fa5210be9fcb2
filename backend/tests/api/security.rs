//! What the server does for the safety of its users' data beyond the API's own rules: the
//! files it keeps are owner-only.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::helpers::{spawn_app_with, unique};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|err| panic!("{}: {err}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn a_new_data_dir_is_owner_only_and_so_are_the_database_its_journal_and_the_jwt_secret() {
    // A data dir that does not exist yet, under the test's own temporary folder.
    let app = spawn_app_with(|config| config.data_dir = config.data_dir.join("fresh/data")).await;
    // A write, so SQLite has its write-ahead log and shared-memory files.
    app.signup_and_login(&unique("perm")).await;
    let dir = &app.config.data_dir;
    assert_eq!(mode(dir), 0o700, "the data dir");
    assert_eq!(mode(&dir.join("jwt_secret")), 0o600, "the generated JWT secret");
    if app.config.database_url.is_none() {
        for file in ["confab.db", "confab.db-wal", "confab.db-shm"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
    }
}
