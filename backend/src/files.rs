//! Files Confab keeps to itself: the data directory is created `0700`, and what it holds
//! (the SQLite database and its `-wal` / `-shm`, the generated JWT secret, session dumps)
//! is `0600`, whatever the process's umask. They hold password hashes, private messages,
//! webhook secrets and the key that signs every access token.
//!
//! Files Confab made are tightened again at start when a looser mode is found (an older
//! version created them with the umask); a data directory that already existed is only
//! reported, since an operator may have pointed `CONFAB_DATA_DIR` at a folder shared with
//! other things.

use std::io;
use std::path::Path;

/// The mode of the data directory Confab creates.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file Confab creates in it.
pub const FILE_MODE: u32 = 0o600;

/// Creates the data directory (and missing parents) owner-only; an existing one is left as
/// it is, with a warning when other users may read it.
pub fn create_data_dir(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        warn_if_open(path);
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(path)?;
    // The mode given to mkdir is masked by the umask; owner-only bits never are, but say so.
    restrict(path, DIR_MODE)
}

/// Creates (or truncates) a file only its owner can read or write: it will hold secrets.
/// An existing file's mode is corrected too (the creation mode applies to new files only).
pub fn create_private(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(<std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Makes sure a SQLite database file exists owner-only before SQLite opens it (SQLite gives
/// its `-wal` and `-shm` the database file's mode), and tightens the database and those two
/// when an earlier run left them readable by others.
pub fn prepare_sqlite(db: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options.open(db)?;
    restrict(db, FILE_MODE)?;
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        // SQLite deletes these when its last connection to the file closes, which another
        // process may do at any moment: one that is gone needs no tightening.
        match restrict(Path::new(&name), FILE_MODE) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Makes an existing file of Confab's (a secret it wrote earlier) owner-only again.
pub fn tighten(path: &Path) -> io::Result<()> {
    restrict(path, FILE_MODE)
}

/// Sets `mode` on a file or directory of Confab's when it grants anything more.
fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if current & !mode != 0 {
            tracing::info!(path = %path.display(), from = %format_args!("{current:o}"), to = %format_args!("{mode:o}"), "tightened permissions");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn warn_if_open(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %dir.display(),
                mode = %format_args!("{:o}", meta.permissions().mode() & 0o777),
                "the data dir is open to other users; its files are owner-only, but consider chmod 700"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn a_new_data_dir_and_private_files_are_owner_only_whatever_the_umask() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("a/b/data");
        create_data_dir(&dir).expect("created");
        assert_eq!(mode(&dir), 0o700);
        let secret = dir.join("secret");
        std::fs::write(&secret, "old").expect("write");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        create_private(&secret).expect("rewritten");
        assert_eq!(mode(&secret), 0o600, "an existing file is tightened when rewritten");
    }

    #[test]
    fn a_loose_database_and_its_journal_are_tightened() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("confab.db");
        prepare_sqlite(&db).expect("created");
        assert_eq!(mode(&db), 0o600);
        let wal = dir.path().join("confab.db-wal");
        std::fs::write(&wal, "").expect("write");
        for path in [&db, &wal] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        }
        prepare_sqlite(&db).expect("prepared");
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
    }
}
