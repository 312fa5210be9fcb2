//! Files kept in the repository but generated from the code (`docs/configuration.md`, the
//! OpenAPI and AsyncAPI documents, ...): a test renders each again and fails when the
//! committed copy differs, so a change to the code cannot leave its document behind.
//! `CONFAB_BLESS=1` rewrites them instead, with the test build's own selection (so nothing
//! is rebuilt); the result is committed with the change.

/// The one command that regenerates every generated file of this crate.
pub const BLESS: &str = "CONFAB_BLESS=1 cargo test --release --workspace --exclude confab-frontend --lib";

/// Fails unless the file at `path` (from the repository's root) holds exactly `fresh`;
/// under `CONFAB_BLESS` writes `fresh` there instead.
pub fn check(path: &str, fresh: &str) {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    if std::env::var_os("CONFAB_BLESS").is_some() {
        if let Err(err) = std::fs::write(&file, fresh) {
            panic!("writing {}: {err}", file.display());
        }
        return;
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(committed == fresh, "{path} is stale: run `{BLESS}` and commit");
}
