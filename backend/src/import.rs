//! `confab user import`: many accounts at once, for migrations and benchmarks.
//!
//! The file lists one account per line (JSON lines) or per row (CSV with a header): a
//! `username` and either a `password` (hashed here, on every core) or a `password_hash`
//! already made elsewhere (an argon2 PHC string, stored as it is: 100 000 accounts import in
//! seconds because nothing is hashed), and optionally `admin`. Every line is checked before
//! anything is written, and every bad line is reported with its number; then all accounts
//! are inserted in multi-row statements in one transaction.
//!
//! Names that exist already fail the import (`--on-duplicate fail`, the default) or are left
//! untouched (`skip`), so an import can be re-run. `--sessions <out>` also opens one session
//! per listed account and writes its tokens, signed with the server's JWT secret, so a load
//! test can connect 100 000 authenticated sockets without 100 000 logins.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::auth::password;
use crate::auth::token::{self, Keys};
use crate::config::Config;
use crate::storage::{Db, sessions, users};

/// How many bad lines are listed before the rest are only counted.
const ERRORS_SHOWN: usize = 50;

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// JSON lines (the default) or CSV with a header row: `username` and either `password`
    /// or `password_hash` (an argon2 PHC string), optionally `admin` (true/false).
    pub file: PathBuf,
    /// The file's format [default: csv for a `.csv` file, otherwise jsonl].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// What to do with names that exist already (case-insensitively).
    #[arg(long, value_enum, default_value_t = OnDuplicate::Fail)]
    pub on_duplicate: OnDuplicate,
    /// Also open one session per listed account and write its tokens to this file (JSON
    /// lines: `username`, `access_token`, `refresh_token`, `expires_in`; mode 0600). Access
    /// tokens last CONFAB_ACCESS_TTL_SECS and are signed with the server's secret.
    #[arg(long)]
    pub sessions: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDuplicate {
    /// Refuse the whole import, listing the names (nothing is written).
    Fail,
    /// Leave existing accounts as they are and import the others.
    Skip,
}

/// One line of the file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    username: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_hash: Option<String>,
    #[serde(default)]
    admin: Option<bool>,
}

/// A checked line.
struct Record {
    line: usize,
    username: String,
    secret: Secret,
    admin: bool,
}

enum Secret {
    Password(String),
    Hash(String),
}

/// What an import did.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub listed: usize,
    pub created: u64,
    pub skipped: usize,
    pub sessions: usize,
}

/// One account's tokens in the `--sessions` file.
#[derive(Serialize, Deserialize, Debug)]
pub struct SessionTokens {
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

/// Runs `confab user import` against the configured database.
pub async fn run(config: &Config, args: &ImportArgs) -> anyhow::Result<Report> {
    let started = Instant::now();
    let records = read(&args.file, args.format)?;
    crate::files::create_data_dir(&config.data_dir)?;
    let db = Db::connect(&config.database_url()).await.context("connecting to the database")?;
    db.migrate().await?;
    let keys: Vec<String> = records.iter().map(|r| r.username.to_ascii_lowercase()).collect();
    let existing: HashSet<String> = users::by_keys(&db, &keys).await?.into_iter().map(|(key, ..)| key).collect();
    if args.on_duplicate == OnDuplicate::Fail && !existing.is_empty() {
        let taken: Vec<String> = records
            .iter()
            .filter(|r| existing.contains(&r.username.to_ascii_lowercase()))
            .map(|r| format!("line {}: username {} exists already", r.line, r.username))
            .collect();
        anyhow::bail!("{}\n(nothing was imported; --on-duplicate skip leaves existing accounts as they are)", listing(&taken));
    }
    let new: Vec<&Record> = records.iter().filter(|r| !existing.contains(&r.username.to_ascii_lowercase())).collect();
    let rows = hash_passwords(&new)?;
    let created = users::create_many(&db, &rows).await?;
    let skipped = records.len() - new.len();
    let mut report = Report { listed: records.len(), created, skipped, sessions: 0 };
    if let Some(out) = &args.sessions {
        report.sessions = write_sessions(config, &db, &keys, out).await?;
    }
    tracing::info!(?report, elapsed_ms = started.elapsed().as_millis() as u64, "import done");
    Ok(report)
}

/// Reads and checks every line; all problems at once, numbered, or the records.
fn read(path: &Path, format: Option<Format>) -> anyhow::Result<Vec<Record>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let format = format.unwrap_or(if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) { Format::Csv } else { Format::Jsonl });
    let lines = match format {
        Format::Jsonl => jsonl_lines(BufReader::new(file))?,
        Format::Csv => csv_lines(file),
    };
    let mut errors = Vec::new();
    let mut records = Vec::with_capacity(lines.len());
    let mut first_seen: HashMap<String, usize> = HashMap::with_capacity(lines.len());
    for (number, line) in lines {
        match line.and_then(|line| check(line, number)) {
            Ok(record) => match first_seen.insert(record.username.to_ascii_lowercase(), number) {
                Some(earlier) => errors.push(format!("line {number}: username {} already appears on line {earlier}", record.username)),
                None => records.push(record),
            },
            Err(message) => errors.push(format!("line {number}: {message}")),
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("{}\n(nothing was imported)", listing(&errors));
    }
    if records.is_empty() {
        anyhow::bail!("{} lists no accounts", path.display());
    }
    Ok(records)
}

type NumberedLine = (usize, Result<Line, String>);

fn jsonl_lines(reader: impl BufRead) -> anyhow::Result<Vec<NumberedLine>> {
    let mut lines = Vec::new();
    for (i, text) in reader.lines().enumerate() {
        let text = text.with_context(|| format!("reading line {}", i + 1))?;
        if text.trim().is_empty() {
            continue;
        }
        lines.push((i + 1, serde_json::from_str::<Line>(&text).map_err(|e| format!("not a valid account object: {e}"))));
    }
    Ok(lines)
}

fn csv_lines(reader: impl std::io::Read) -> Vec<NumberedLine> {
    let mut csv = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(reader);
    csv.deserialize::<Line>()
        .enumerate()
        .map(|(i, row)| {
            // Row numbers as an editor shows them: the header is line 1.
            let number = row.as_ref().err().and_then(|e| e.position()).map_or(i + 2, |p| p.line() as usize);
            (number, row.map_err(|e| format!("not a valid row: {e}")))
        })
        .collect()
}

/// The username and password rules of signup, and a hash this server can verify.
fn check(line: Line, number: usize) -> Result<Record, String> {
    confab_shared::validate::username(&line.username).map_err(|m| format!("username {m}"))?;
    let secret = match (line.password, line.password_hash) {
        (Some(password), None) => {
            confab_shared::validate::password(&password).map_err(|m| format!("password {m}"))?;
            Secret::Password(password)
        }
        (None, Some(hash)) => {
            let parsed = argon2::password_hash::PasswordHash::new(&hash).map_err(|e| format!("password_hash is not a PHC string: {e}"))?;
            password::supported(&parsed).map_err(|m| format!("password_hash: {m}"))?;
            Secret::Hash(hash)
        }
        (Some(_), Some(_)) => return Err("give either password or password_hash, not both".to_owned()),
        (None, None) => return Err("password or password_hash is required".to_owned()),
    };
    Ok(Record { line: number, username: line.username, secret, admin: line.admin.unwrap_or(false) })
}

/// The rows to insert, hashing plain passwords on every core (each thread with one argon2
/// work area, as the server does).
fn hash_passwords(records: &[&Record]) -> anyhow::Result<Vec<users::NewUser>> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let chunk = records.len().div_ceil(threads).max(1);
    let plain = records.iter().filter(|r| matches!(r.secret, Secret::Password(_))).count();
    if plain > 1000 {
        eprintln!("hashing {plain} passwords (argon2, ~{threads} at a time): this takes a while; password_hash skips it");
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = records
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut memory = Vec::new();
                    part.iter()
                        .map(|r| {
                            let password_hash = match &r.secret {
                                Secret::Hash(hash) => hash.clone(),
                                Secret::Password(pw) => password::hash_with(&mut memory, pw.as_bytes())?,
                            };
                            Ok(users::NewUser { username: r.username.clone(), password_hash, is_admin: r.admin })
                        })
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut rows = Vec::with_capacity(records.len());
        for worker in workers {
            rows.extend(worker.join().map_err(|_| anyhow::anyhow!("a hashing thread panicked"))??);
        }
        Ok(rows)
    })
}

/// Opens a session for each listed account and writes the tokens to `out`.
async fn write_sessions(config: &Config, db: &Db, keys: &[String], out: &Path) -> anyhow::Result<usize> {
    let secret = Keys::load_secret(config.jwt_secret.as_deref(), &config.data_dir)?;
    let signing = Keys::new(&secret, config.access_ttl());
    let accounts = users::by_keys(db, keys).await?;
    let mut rows = Vec::with_capacity(accounts.len());
    let mut tokens = Vec::with_capacity(accounts.len());
    for (_, user_id, username, is_admin) in accounts {
        let session_id = uuid::Uuid::new_v4().simple().to_string();
        let refresh_token = token::new_refresh_token();
        let (access_token, _) = signing.issue(user_id, &username, is_admin, &session_id)?;
        rows.push(sessions::NewSession { session_id, user_id, token_hash: token::hash_refresh_token(&refresh_token) });
        tokens.push(SessionTokens { username, access_token, refresh_token, expires_in: config.access_ttl_secs });
    }
    sessions::open_many(db, &rows, config.refresh_ttl().as_millis() as i64).await?;
    let mut file = std::io::BufWriter::new(crate::files::create_private(out).with_context(|| format!("creating {}", out.display()))?);
    for entry in &tokens {
        serde_json::to_writer(&mut file, entry)?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    Ok(tokens.len())
}

fn listing(lines: &[String]) -> String {
    let mut text = lines.iter().take(ERRORS_SHOWN).cloned().collect::<Vec<_>>().join("\n");
    if lines.len() > ERRORS_SHOWN {
        text.push_str(&format!("\n… and {} more", lines.len() - ERRORS_SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::Hasher;

    struct Setup {
        config: Config,
        dir: tempfile::TempDir,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        Setup { config: Config::for_tests(dir.path().to_path_buf()), dir }
    }

    impl Setup {
        fn file(&self, name: &str, text: &str) -> ImportArgs {
            let path = self.dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            ImportArgs { file: path, format: None, on_duplicate: OnDuplicate::Fail, sessions: None }
        }

        async fn db(&self) -> Db {
            let db = Db::connect(&self.config.database_url()).await.unwrap();
            db.migrate().await.unwrap();
            db
        }
    }

    /// A hash of `pw` made the way another system would (the argon2 crate's own API).
    fn foreign_hash(pw: &str) -> String {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        argon2::Argon2::default().hash_password(pw.as_bytes(), &SaltString::generate(&mut OsRng)).unwrap().to_string()
    }

    #[tokio::test]
    async fn accounts_with_hashes_or_passwords_import_and_can_log_in() {
        let s = setup();
        let hash = foreign_hash("imported password");
        let text = format!(
            "{{\"username\":\"ann\",\"password_hash\":\"{hash}\"}}\n\n{{\"username\":\"Bob\",\"password\":\"bob's password\",\"admin\":true}}\n"
        );
        let report = run(&s.config, &s.file("people.jsonl", &text)).await.unwrap();
        assert_eq!(report, Report { listed: 2, created: 2, skipped: 0, sessions: 0 });

        let db = s.db().await;
        let hasher = Hasher::start(1, 2);
        let ann = users::by_name(&db, "ANN").await.unwrap().unwrap();
        assert_eq!(ann.password_hash, hash, "a given hash is stored as it is");
        assert!(hasher.verify("imported password".into(), ann.password_hash).await.unwrap());
        let bob = users::by_name(&db, "bob").await.unwrap().unwrap();
        assert!(bob.is_admin && bob.username == "Bob");
        assert!(bob.password_hash.starts_with("$argon2id$"));
        assert!(hasher.verify("bob's password".into(), bob.password_hash).await.unwrap());
    }

    #[tokio::test]
    async fn csv_with_a_header_imports_hashes_containing_commas() {
        let s = setup();
        let hash = foreign_hash("csv password");
        assert!(hash.contains(','), "PHC parameters are comma-separated: {hash}");
        let text = format!("username,password_hash,admin\ncarla,\"{hash}\",false\ndan,\"{hash}\",\n");
        let report = run(&s.config, &s.file("people.csv", &text)).await.unwrap();
        assert_eq!(report.created, 2);
        assert_eq!(users::by_name(&s.db().await, "dan").await.unwrap().unwrap().password_hash, hash);
    }

    #[tokio::test]
    async fn every_bad_line_is_reported_with_its_number_and_nothing_is_written() {
        let s = setup();
        let good = foreign_hash("a password");
        let text = [
            format!(r#"{{"username":"fine","password_hash":"{good}"}}"#),
            r#"{"username":"no spaces allowed","password":"long enough pw"}"#.to_owned(),
            r#"{"username":"short_pw","password":"short"}"#.to_owned(),
            r#"{"username":"nosecret"}"#.to_owned(),
            r#"{"username":"both","password":"long enough pw","password_hash":"x"}"#.to_owned(),
            r#"{"username":"badhash","password_hash":"$2b$12$notargon"}"#.to_owned(),
            r#"{"username":"FINE","password":"long enough pw"}"#.to_owned(),
            "not json".to_owned(),
            r#"{"username":"extra","password":"long enough pw","role":"x"}"#.to_owned(),
        ]
        .join("\n");
        let err = run(&s.config, &s.file("bad.jsonl", &text)).await.unwrap_err().to_string();
        for expected in [
            "line 2: username may contain only",
            "line 3: password must be 8 to 128",
            "line 4: password or password_hash is required",
            "line 5: give either password or password_hash",
            "line 6: password_hash",
            "line 7: username FINE already appears on line 1",
            "line 8: not a valid account object",
            "line 9: not a valid account object: unknown field `role`",
            "nothing was imported",
        ] {
            assert!(err.contains(expected), "{expected:?} missing from:\n{err}");
        }
        assert!(!err.contains("line 1:"), "the good line is not reported:\n{err}");
        assert!(users::by_name(&s.db().await, "fine").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn existing_names_fail_the_import_unless_skipped_so_a_rerun_is_idempotent() {
        let s = setup();
        let hash = foreign_hash("a password");
        let first = s.file("one.jsonl", &format!(r#"{{"username":"ann","password_hash":"{hash}"}}"#));
        run(&s.config, &first).await.unwrap();
        let both = format!("{{\"username\":\"Ann\",\"password\":\"a new password\"}}\n{{\"username\":\"eve\",\"password_hash\":\"{hash}\"}}");
        let mut args = s.file("two.jsonl", &both);

        let err = run(&s.config, &args).await.unwrap_err().to_string();
        assert!(err.contains("line 1: username Ann exists already"), "{err}");
        assert!(users::by_name(&s.db().await, "eve").await.unwrap().is_none(), "a refused import writes nothing");

        args.on_duplicate = OnDuplicate::Skip;
        assert_eq!(run(&s.config, &args).await.unwrap(), Report { listed: 2, created: 1, skipped: 1, sessions: 0 });
        assert_eq!(run(&s.config, &args).await.unwrap(), Report { listed: 2, created: 0, skipped: 2, sessions: 0 });
        let ann = users::by_name(&s.db().await, "ann").await.unwrap().unwrap();
        assert_eq!(ann.password_hash, hash, "a skipped account keeps its password");
    }

    #[tokio::test]
    async fn sessions_out_holds_a_working_token_pair_per_account() {
        let s = setup();
        let hash = foreign_hash("a password");
        let text: String = (0..2500).map(|i| format!("{{\"username\":\"user{i:05}\",\"password_hash\":\"{hash}\"}}\n")).collect();
        let out = s.dir.path().join("tokens.jsonl");
        let mut args = s.file("many.jsonl", &text);
        args.sessions = Some(out.clone());
        let report = run(&s.config, &args).await.unwrap();
        assert_eq!(report, Report { listed: 2500, created: 2500, skipped: 0, sessions: 2500 });

        let tokens: Vec<SessionTokens> =
            std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(tokens.len(), 2500);
        let secret = Keys::load_secret(None, &s.config.data_dir).unwrap();
        let keys = Keys::new(&secret, s.config.access_ttl());
        let db = s.db().await;
        for entry in [&tokens[0], &tokens[2499]] {
            let identity = keys.verify(&entry.access_token).expect("signed with the server's secret");
            assert_eq!(identity.username, entry.username);
            assert_eq!(sessions::active_owner(&db, &identity.session_id).await.unwrap(), Some(identity.user_id));
            let next = token::hash_refresh_token(&token::new_refresh_token());
            let rotated = sessions::rotate(&db, &token::hash_refresh_token(&entry.refresh_token), &next, 60_000).await.unwrap();
            assert!(matches!(rotated, sessions::Rotation::Rotated { .. }), "the refresh token works");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
