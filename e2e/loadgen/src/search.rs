//! The search benchmark: query latency over a large generated corpus while messages are being
//! written, on SQLite and on PostgreSQL, and what the index costs on disk.
//!
//! The corpus: room messages in many rooms by many authors, and direct messages among those
//! authors. Latin-script words follow a Zipf distribution (a few hundred common English words,
//! then a long tail of made-up words from syllables, as a real chat's vocabulary has); a tenth of
//! the messages are Chinese (two-character words, no spaces) and a tenth Russian (stems with
//! their case endings). Everything is deterministic (one seed), so runs compare.
//!
//! It is written in bulk, not sent: the users through `confab user import` (so the searcher can
//! log in), the rooms and messages in one transaction (SQLite, through the SQLite the server
//! links) or with `psql`'s `\copy` (PostgreSQL), into a database the server's migrations made, so the search index is
//! built by the same triggers or expression indexes that keep it in step at run time.
//!
//! Then the server starts on it; a few clients send room messages at a steady rate (the write
//! path running) while one searcher asks each class of query in turn over `GET /api/search`,
//! one request at a time, and the latency of each is recorded. A word query draws its word by
//! the corpus's own frequencies with the hundred most common words left out (nobody searches
//! for "the"); those are measured apart as the worst case of a ranked search.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use confab_client::Options;
use confab_client::shared::rpc::{JoinParams, SendParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::bench::Profile;
use crate::servers::{self, ConfabBacking, Env, PgDb};

/// The corpus and the run's size.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Size {
    pub room_messages: usize,
    pub direct_messages: usize,
    pub rooms: usize,
    pub authors: usize,
    /// Requests per query class.
    pub queries: usize,
    /// Room messages per second sent while the queries run.
    pub write_rate: u32,
}

impl Size {
    pub fn of(profile: Profile) -> Self {
        match profile {
            Profile::Full => Self { room_messages: 1_000_000, direct_messages: 100_000, rooms: 200, authors: 1_000, queries: 300, write_rate: 200 },
            Profile::Quick => Self { room_messages: 100_000, direct_messages: 10_000, rooms: 50, authors: 200, queries: 100, write_rate: 100 },
        }
    }
}

/// Which database a run is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// One query class's latencies.
#[derive(Clone, Debug, Serialize)]
pub struct ClassResult {
    pub class: String,
    pub what: String,
    pub requests: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Mean hits on the first page, and mean `total_estimate`.
    pub mean_hits: f64,
    pub mean_total: f64,
}

/// One database's run.
#[derive(Clone, Debug, Serialize)]
pub struct EngineResult {
    pub engine: Engine,
    pub seed_secs: f64,
    /// Bytes of the search index (words and substrings, room and direct messages).
    pub index_bytes: u64,
    pub index_bytes_per_message: f64,
    /// The whole database, for scale.
    pub database_bytes: u64,
    /// Room messages acknowledged by the writers while the queries ran.
    pub written: u64,
    pub classes: Vec<ClassResult>,
    pub load_before: String,
    pub load_after: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SearchResults {
    pub commit: String,
    pub date: String,
    pub size: Size,
    pub runs: Vec<EngineResult>,
}

/// Runs the benchmark on each engine and writes `search.json` and `search.md` into `out`.
pub async fn run(env: &Env, profile: Profile, engines: &[Engine], out: &Path, commit: String) -> anyhow::Result<SearchResults> {
    let size = Size::of(profile);
    let corpus = Corpus::generate(size);
    let mut runs = Vec::new();
    for &engine in engines {
        eprintln!("search: {engine:?}, {} room and {} direct messages", size.room_messages, size.direct_messages);
        runs.push(run_one(env, engine, size, &corpus).await.with_context(|| format!("search on {engine:?}"))?);
    }
    let results = SearchResults { commit, date: chrono::Utc::now().format("%Y-%m-%d").to_string(), size, runs };
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("search.json"), serde_json::to_string_pretty(&results)?)?;
    std::fs::write(out.join("search.md"), markdown(&results))?;
    Ok(results)
}

// ---- The corpus ---------------------------------------------------------------------------

/// Common English words in roughly descending frequency: the head of the Zipf curve.
const ENGLISH: &str = "the i to you a and it is that of in we for on this be have with not \
    are do just so but can what my at was will if me all get think no yes they one like about \
    know there up out your it's don't now how good time see or then here would go new make \
    should when need today work from did some been us let's back also right any more thanks \
    still could build test fix merge deploy review release issue bug branch server client \
    message room chat meeting call tomorrow morning afternoon week update change config data \
    database query index cache memory disk network latency error warning log metrics alert \
    dashboard user account password token login session team project plan design draft \
    document report customer ticket support question answer problem solution idea feature \
    version upgrade rollback migration schema table column row backup restore monitor \
    incident outage pager oncall weekend holiday lunch coffee office remote home travel \
    flight hotel budget invoice contract deadline schedule priority sprint standup retro \
    roadmap launch demo slides notes agenda minutes follow thread reply mention channel \
    notification push email phone video screen share link file image upload download \
    browser mobile desktop app website page button form field search filter sort result \
    performance benchmark profile flame graph throughput latency percentile million \
    thousand hundred small large fast slow quick easy hard simple complex great nice cool \
    awesome thanks please sorry maybe probably definitely actually really very much many";

/// Syllables the long tail's made-up words are built from.
const SYLLABLES: [&str; 24] = ["ka", "lo", "mi", "ter", "van", "sul", "dre", "po", "nix", "qua", "ber", "tol", "zen", "ra", "fi", "gu", "mor", "lek", "sa", "dun", "pe", "wix", "ho", "tam"];

/// Russian stems and the case endings they take (`база` → `базами`).
const RUSSIAN: [(&str, &[&str]); 24] = [
    ("баз", &["а", "ы", "е", "у", "ой", "ами", "ах"]),
    ("сервер", &["", "а", "у", "ом", "е", "ы", "ов", "ами"]),
    ("сообщени", &["е", "я", "ю", "ем", "и", "й", "ями"]),
    ("комнат", &["а", "ы", "е", "у", "ой", "ами"]),
    ("пользовател", &["ь", "я", "ю", "ем", "е", "и", "ей"]),
    ("запрос", &["", "а", "у", "ом", "е", "ы", "ов"]),
    ("ошибк", &["а", "и", "е", "у", "ой", "ами"]),
    ("работ", &["а", "ы", "е", "у", "ой"]),
    ("задач", &["а", "и", "е", "у", "ей", "ами"]),
    ("встреч", &["а", "и", "е", "у", "ей"]),
    ("проект", &["", "а", "у", "ом", "е", "ы", "ов"]),
    ("команд", &["а", "ы", "е", "у", "ой"]),
    ("поиск", &["", "а", "у", "ом", "е"]),
    ("индекс", &["", "а", "у", "ом", "ы", "ов"]),
    ("данн", &["ые", "ых", "ым", "ыми"]),
    ("быстр", &["о", "ый", "ая", "ое", "ые"]),
    ("сегодня", &[""]),
    ("завтра", &[""]),
    ("спасибо", &[""]),
    ("привет", &["", "ствую"]),
    ("нов", &["ый", "ая", "ое", "ые", "ого"]),
    ("верси", &["я", "и", "ю", "ей"]),
    ("обновлени", &["е", "я", "ю", "ем"]),
    ("тест", &["", "а", "у", "ом", "ы", "ов"]),
];

/// Common Chinese words (two characters each; written with no spaces between them).
const CHINESE: [&str; 48] = [
    "我们", "数据", "服务", "消息", "房间", "用户", "今天", "明天", "问题", "测试", "版本", "更新", "系统", "搜索", "索引", "性能",
    "会议", "项目", "团队", "时间", "工作", "已经", "可以", "需要", "什么", "这个", "那个", "非常", "快速", "很快", "网络", "延迟",
    "错误", "日志", "部署", "发布", "代码", "分支", "合并", "审查", "客户", "支持", "文档", "设计", "计划", "数据库", "服务器", "聊天",
];

/// Connectives between Chinese words.
const CHINESE_GLUE: [&str; 6] = ["的", "了", "在", "是", "和", "很"];

/// Words in Zipf order and a sampler over them.
struct Vocabulary {
    words: Vec<String>,
    /// Cumulative weights, for sampling by binary search.
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new(tail: usize) -> Self {
        let mut seen = std::collections::HashSet::new();
        let mut words: Vec<String> = ENGLISH.split_whitespace().filter(|w| seen.insert(*w)).map(str::to_owned).collect();
        let head = words.len();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        // The tail: two- and three-syllable words, in a fixed order.
        let n = SYLLABLES.len();
        'outer: for a in 0..n {
            for b in 0..n {
                for c in 0..=n {
                    if words.len() >= head + tail {
                        break 'outer;
                    }
                    let word = if c == n { format!("{}{}", SYLLABLES[a], SYLLABLES[b]) } else { format!("{}{}{}", SYLLABLES[a], SYLLABLES[(b + a) % n], SYLLABLES[c]) };
                    if seen.insert(word.clone()) {
                        words.push(word);
                    }
                }
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(1.07);
                total
            })
            .collect();
        Self { words, cumulative }
    }

    fn rank(&self, rng: &mut StdRng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.r#gen::<f64>() * total;
        self.cumulative.partition_point(|&c| c < x).min(self.words.len() - 1)
    }

    fn sample(&self, rng: &mut StdRng) -> &str {
        &self.words[self.rank(rng)]
    }

    /// A word whose rank is at least `from` (by the same distribution, conditioned).
    fn sample_from(&self, rng: &mut StdRng, from: usize) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let low = self.cumulative[from.min(self.words.len() - 1)];
        let x = low + rng.r#gen::<f64>() * (total - low);
        &self.words[self.cumulative.partition_point(|&c| c < x).min(self.words.len() - 1)]
    }
}

/// The generated messages, as tab-separated lines for the database shells.
struct Corpus {
    vocabulary: Vocabulary,
    /// `room index \t author index \t text`.
    rooms_tsv: String,
    /// `from index \t to index \t text`.
    dms_tsv: String,
}

impl Corpus {
    fn generate(size: Size) -> Self {
        let vocabulary = Vocabulary::new(30_000);
        let mut rng = StdRng::seed_from_u64(23);
        let mut rooms_tsv = String::with_capacity(size.room_messages * 70);
        for _ in 0..size.room_messages {
            let (room, author) = (rng.gen_range(0..size.rooms), rng.gen_range(0..size.authors));
            let text = text(&vocabulary, &mut rng);
            let _ = writeln!(rooms_tsv, "{room}\t{author}\t{text}");
        }
        let mut dms_tsv = String::with_capacity(size.direct_messages * 70);
        for _ in 0..size.direct_messages {
            let from = rng.gen_range(0..size.authors);
            let to = (from + rng.gen_range(1..size.authors)) % size.authors;
            let text = text(&vocabulary, &mut rng);
            let _ = writeln!(dms_tsv, "{from}\t{to}\t{text}");
        }
        Self { vocabulary, rooms_tsv, dms_tsv }
    }
}

/// One message: 80 % Latin words, 10 % Chinese, 10 % Russian.
fn text(vocabulary: &Vocabulary, rng: &mut StdRng) -> String {
    let script = rng.gen_range(0..10);
    let words = rng.gen_range(3..=18);
    let mut out = String::new();
    match script {
        0 => {
            for i in 0..words {
                out.push_str(CHINESE[rng.gen_range(0..CHINESE.len())]);
                if i + 1 < words && rng.gen_bool(0.4) {
                    out.push_str(CHINESE_GLUE[rng.gen_range(0..CHINESE_GLUE.len())]);
                }
            }
            out.push('。');
        }
        1 => {
            for i in 0..words {
                let (stem, endings) = RUSSIAN[rng.gen_range(0..RUSSIAN.len())];
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(stem);
                out.push_str(endings[rng.gen_range(0..endings.len())]);
            }
        }
        _ => {
            for i in 0..words {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(vocabulary.sample(rng));
            }
        }
    }
    out
}

// ---- Seeding ------------------------------------------------------------------------------

/// Where the corpus is loaded first: `room \t author \t text` and `from \t to \t text`, by index.
const CORPUS_TABLES: &str = "CREATE TEMP TABLE corpus_rooms (room INTEGER, author INTEGER, text TEXT);
CREATE TEMP TABLE corpus_dms (from_i INTEGER, to_i INTEGER, text TEXT);";

/// The name of the `i`th author (imported with a password, so the searcher can log in).
fn author(i: usize) -> String {
    crate::people::name(i)
}

/// Writes the corpus into the database of `backing` (whose schema the server's migrations
/// made); returns the searcher's access token (author 0).
async fn seed(env: &Env, engine: Engine, backing: &ConfabBacking, port: u16, dir: &Path, size: Size, corpus: &Corpus) -> anyhow::Result<Vec<String>> {
    // The users first: `confab user import` runs the migrations, then imports.
    let tokens = crate::people::import(env, backing, port, dir, size.authors).await?;
    let rooms = dir.join("rooms.tsv");
    let dms = dir.join("dms.tsv");
    std::fs::write(&rooms, &corpus.rooms_tsv)?;
    std::fs::write(&dms, &corpus.dms_tsv)?;
    let now = chrono::Utc::now().timestamp_millis();
    // Sent over the last 30 days, in file order (ids follow send order as the server's do).
    let step = (30 * 86_400_000 / size.room_messages.max(1)).max(1);
    let dm_step = (30 * 86_400_000 / size.direct_messages.max(1)).max(1);
    let start = now - 30 * 86_400_000;
    // From the corpus tables (filled by the caller) into Confab's.
    let sql = |preamble: String| {
        format!(
            "{preamble}
BEGIN;
CREATE TEMP TABLE corpus_room_lines AS SELECT row_number() OVER (ORDER BY {order}) AS line, room, author, text FROM corpus_rooms;
CREATE TEMP TABLE corpus_dm_lines AS SELECT row_number() OVER (ORDER BY {order}) AS line, from_i, to_i, text FROM corpus_dms;
INSERT INTO rooms (name, admin_only, created_by, created_at, last_message_at, last_seq, owner_id, slow_mode_secs, retention_days)
  SELECT 'search-' || i, FALSE, u.id, {start}, {now}, 0, u.id, 0, NULL
  FROM (SELECT DISTINCT room AS i FROM corpus_rooms) r, users u WHERE u.username = '{first}';
INSERT INTO messages (room_id, seq, author_id, author, text, sent_at, deleted)
  SELECT r.id, row_number() OVER (PARTITION BY c.room ORDER BY c.line), u.id, u.username, c.text, {start} + c.line * {step}, FALSE
  FROM corpus_room_lines c JOIN rooms r ON r.name = 'search-' || c.room JOIN users u ON u.username = 'p' || {pad}
  ORDER BY c.line;
UPDATE rooms SET last_seq = (SELECT max(seq) FROM messages WHERE room_id = rooms.id) WHERE name LIKE 'search-%';
INSERT INTO direct_messages (from_id, to_id, from_name, to_name, text, sent_at)
  SELECT f.id, t.id, f.username, t.username, c.text, {start} + c.line * {dm_step}
  FROM corpus_dm_lines c JOIN users f ON f.username = 'p' || {pad_from} JOIN users t ON t.username = 'p' || {pad_to}
  ORDER BY c.line;
COMMIT;
",
            first = author(0),
            // The file's order: SQLite's rowid; PostgreSQL's physical order of a table only
            // ever appended to.
            order = if engine == Engine::Sqlite { "rowid" } else { "ctid" },
            pad = pad(engine, "c.author"),
            pad_from = pad(engine, "c.from_i"),
            pad_to = pad(engine, "c.to_i"),
        )
    };
    match engine {
        Engine::Sqlite => {
            let db = dir.join("data").join("confab.db");
            let mut conn = rusqlite::Connection::open(&db).with_context(|| format!("open {}", db.display()))?;
            conn.execute_batch(CORPUS_TABLES)?;
            let txn = conn.transaction()?;
            for (table, tsv) in [("corpus_rooms", &corpus.rooms_tsv), ("corpus_dms", &corpus.dms_tsv)] {
                let mut insert = txn.prepare(&format!("INSERT INTO {table} VALUES (?1, ?2, ?3)"))?;
                for line in tsv.lines() {
                    let mut fields = line.splitn(3, '\t');
                    let (Some(a), Some(b), Some(text)) = (fields.next(), fields.next(), fields.next()) else { bail!("a corpus line: {line:?}") };
                    insert.execute(rusqlite::params![a.parse::<i64>()?, b.parse::<i64>()?, text])?;
                }
            }
            txn.commit()?;
            conn.execute_batch(&sql(String::new()))?;
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")?;
        }
        Engine::Postgres => {
            let url = backing.database_url.as_deref().context("a PostgreSQL URL")?;
            let script = sql(format!(
                "{CORPUS_TABLES}\n\\copy corpus_rooms FROM '{}' WITH (FORMAT text)\n\\copy corpus_dms FROM '{}' WITH (FORMAT text)",
                rooms.display(),
                dms.display()
            ));
            shell("psql", &[url, "-v", "ON_ERROR_STOP=1", "-q"], &script)?;
            shell("psql", &[url, "-q"], "VACUUM ANALYZE;")?;
        }
    }
    Ok(tokens.into_iter().map(|(_, token)| token).collect())
}

/// `column` as the six-digit number of [`crate::people::name`].
fn pad(engine: Engine, column: &str) -> String {
    match engine {
        Engine::Sqlite => format!("printf('%06d', {column})"),
        Engine::Postgres => format!("lpad({column}::text, 6, '0')"),
    }
}

/// Runs `psql args…` with `script` on its standard input; fails with its error output.
fn shell(program: &str, args: &[&str], script: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    child.stdin.take().context("stdin")?.write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{program}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The search index's bytes, and the whole database's.
fn sizes(engine: Engine, dir: &Path, backing: &ConfabBacking) -> anyhow::Result<(u64, u64)> {
    match engine {
        // The FTS5 tables and their shadow tables (`*_data`, `*_idx`, `*_docsize`, `*_config`).
        Engine::Sqlite => {
            let conn = rusqlite::Connection::open(dir.join("data").join("confab.db"))?;
            Ok(conn.query_row(
                "SELECT (SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name GLOB '*_words*' OR name GLOB '*_grams*'), \
                 (SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size())",
                [],
                |row| Ok((row.get::<_, i64>(0)?.max(0) as u64, row.get::<_, i64>(1)?.max(0) as u64)),
            )?)
        }
        Engine::Postgres => {
            let out = shell(
                "psql",
                &[backing.database_url.as_deref().unwrap_or_default(), "-qtA"],
                "SELECT (SELECT coalesce(sum(pg_relation_size(oid)), 0) FROM pg_class WHERE relname LIKE '%search%' AND relkind = 'i') \
                 || '|' || pg_database_size(current_database());",
            )?;
            let mut fields = out.trim().split('|').map(|f| f.trim().parse::<u64>().unwrap_or(0));
            Ok((fields.next().unwrap_or(0), fields.next().unwrap_or(0)))
        }
    }
}

// ---- The run ------------------------------------------------------------------------------

/// A query class: a name, what it asks, and how to draw one query.
struct Class {
    name: &'static str,
    what: &'static str,
    draw: fn(&Corpus, &mut StdRng, Size) -> Vec<(&'static str, String)>,
}

/// Words ranked below the hundred most common, by the corpus's frequencies.
fn word(c: &Corpus, rng: &mut StdRng) -> String {
    c.vocabulary.sample_from(rng, 100).to_owned()
}

fn classes() -> Vec<Class> {
    vec![
        Class { name: "word", what: "one word (not among the 100 most common), by relevance", draw: |c, r, _| vec![("q", word(c, r))] },
        Class { name: "word-newest", what: "one word, newest first", draw: |c, r, _| vec![("q", word(c, r)), ("sort", "newest".into())] },
        Class { name: "two-words", what: "two words (both must match)", draw: |c, r, _| vec![("q", format!("{} {}", c.vocabulary.sample_from(r, 30), word(c, r)))] },
        Class {
            name: "phrase",
            what: "an exact two-word phrase",
            draw: |c, r, _| vec![("q", format!("\"{} {}\"", c.vocabulary.sample(r), c.vocabulary.sample(r)))],
        },
        Class {
            name: "prefix",
            what: "a prefix (`ter*`)",
            draw: |c, r, _| {
                let w = word(c, r);
                vec![("q", format!("{}*", w.chars().take(3).collect::<String>()))]
            },
        },
        Class { name: "excluded", what: "a word without another (`a -b`)", draw: |c, r, _| vec![("q", format!("{} -{}", word(c, r), c.vocabulary.sample(r)))] },
        Class {
            name: "russian-prefix",
            what: "a Russian stem as a prefix (`баз*` finds `базами`)",
            draw: |_, r, _| vec![("q", format!("{}*", RUSSIAN[r.gen_range(0..RUSSIAN.len())].0))],
        },
        Class {
            name: "cjk",
            what: "a Chinese substring of two to four characters",
            draw: |_, r, _| {
                let a = CHINESE[r.gen_range(0..CHINESE.len())];
                let q = if r.gen_bool(0.5) { a.to_owned() } else { format!("{a}{}", CHINESE_GLUE[r.gen_range(0..CHINESE_GLUE.len())]) };
                vec![("q", q)]
            },
        },
        Class { name: "word-room", what: "one word in one room", draw: |c, r, s| vec![("q", word(c, r)), ("room", format!("search-{}", r.gen_range(0..s.rooms)))] },
        Class { name: "word-from", what: "one word by one author", draw: |c, r, s| vec![("q", word(c, r)), ("from", author(r.gen_range(0..s.authors)))] },
        Class { name: "word-dms", what: "one word in the searcher's direct messages", draw: |c, r, _| vec![("q", word(c, r)), ("dms", "true".into())] },
        Class {
            name: "common",
            what: "one of the 100 most common words (hundreds of thousands of hits, ranked)",
            draw: |c, r, _| vec![("q", c.vocabulary.words[r.gen_range(0..100)].clone())],
        },
    ]
}

async fn run_one(env: &Env, engine: Engine, size: Size, corpus: &Corpus) -> anyhow::Result<EngineResult> {
    let dir = env.work_dir.join(format!("search-{engine:?}").to_lowercase());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data"))?;
    let pg = match engine {
        Engine::Postgres => {
            let admin = env.pg_url.as_deref().context("no PostgreSQL (--pg-url)")?;
            if !servers::pg_available(admin) {
                bail!("PostgreSQL does not answer at {admin}");
            }
            Some(PgDb::create(admin, "confab_search_bench")?)
        }
        Engine::Sqlite => None,
    };
    let backing = ConfabBacking { database_url: pg.as_ref().map(|db| db.url.clone()), redis_url: None };
    let port = servers::free_port()?;
    let started = Instant::now();
    let tokens = seed(env, engine, &backing, port, &dir, size, corpus).await?;
    let seed_secs = started.elapsed().as_secs_f64();
    let (index_bytes, database_bytes) = sizes(engine, &dir, &backing)?;
    let messages = (size.room_messages + size.direct_messages) as f64;
    eprintln!("search: seeded in {seed_secs:.0} s; index {index_bytes} bytes ({:.0} per message)", index_bytes as f64 / messages);

    let (mut proc, addr) = servers::confab_at(env, &format!("search-{engine:?}").to_lowercase(), &backing, port, &dir.join("data"), &[]).await?;
    let base = format!("http://{addr}");
    let load_before = crate::people::load_average();
    // The write path: ten authors, each in its own room, at a steady rate.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut writers = tokio::task::JoinSet::new();
    let writers_n = 10usize;
    for (i, token) in tokens.iter().skip(1).take(writers_n).enumerate() {
        let (base, token, mut stopped) = (base.clone(), token.clone(), stopped.clone());
        let every = Duration::from_secs_f64(writers_n as f64 / f64::from(size.write_rate.max(1)));
        writers.spawn(async move {
            let (client, _events) = Options::new(&base).token(token).connect().await?;
            let room = format!("search-{i}");
            client.call(JoinParams { room: room.clone(), history: Some(0) }).await?;
            let mut tick = tokio::time::interval(every);
            let mut sent = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                client.call(SendParams { room: room.clone(), text: format!("written while searching, number {sent}: deploy the index"), nonce: None }).await?;
                sent += 1;
            }
            client.close().await;
            anyhow::Ok(sent)
        });
    }
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let searcher = &tokens[0];
    let mut rng = StdRng::seed_from_u64(5);
    let mut results = Vec::new();
    for class in classes() {
        // A few unmeasured requests first (connection, statement caches).
        for _ in 0..5 {
            let params = (class.draw)(corpus, &mut rng, size);
            let _ = search(&http, &base, searcher, &params).await;
        }
        let mut latencies = Vec::with_capacity(size.queries);
        let (mut errors, mut hits, mut total) = (0usize, 0u64, 0u64);
        for _ in 0..size.queries {
            let params = (class.draw)(corpus, &mut rng, size);
            let at = Instant::now();
            match search(&http, &base, searcher, &params).await {
                Ok((h, t)) => {
                    latencies.push(at.elapsed().as_secs_f64() * 1e3);
                    hits += h;
                    total += t;
                }
                Err(err) => {
                    if errors == 0 {
                        eprintln!("search: {} {params:?}: {err:#}", class.name);
                    }
                    errors += 1;
                }
            }
        }
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| latencies.get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
        let ok = latencies.len().max(1) as f64;
        let result = ClassResult {
            class: class.name.into(),
            what: class.what.into(),
            requests: size.queries,
            errors,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: latencies.last().copied().unwrap_or(f64::NAN),
            mean_hits: hits as f64 / ok,
            mean_total: total as f64 / ok,
        };
        eprintln!("search: {engine:?} {:<15} p50 {:>7.2} ms  p99 {:>7.2} ms  hits {:>5.1}  errors {}", result.class, result.p50_ms, result.p99_ms, result.mean_hits, errors);
        results.push(result);
    }
    let _ = stop.send(true);
    let mut written = 0;
    while let Some(done) = writers.join_next().await {
        match done {
            Ok(Ok(sent)) => written += sent,
            Ok(Err(err)) => eprintln!("search: a writer failed: {err:#}"),
            Err(err) => eprintln!("search: a writer panicked: {err}"),
        }
    }
    let load_after = crate::people::load_average();
    proc.terminate(Duration::from_secs(10));
    drop(pg);
    Ok(EngineResult {
        engine,
        seed_secs,
        index_bytes,
        index_bytes_per_message: index_bytes as f64 / messages,
        database_bytes,
        written,
        classes: results,
        load_before,
        load_after,
    })
}

/// One `GET /api/search`; the hits on the page and the `total_estimate`.
async fn search(http: &reqwest::Client, base: &str, token: &str, params: &[(&str, String)]) -> anyhow::Result<(u64, u64)> {
    let url = reqwest::Url::parse_with_params(&format!("{base}/api/search"), params)?;
    let response = http.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    if !status.is_success() {
        bail!("{status}: {}", response.text().await.unwrap_or_default());
    }
    let body: serde_json::Value = response.json().await?;
    let hits = body.get("hits").and_then(serde_json::Value::as_array).context("no hits")?.len() as u64;
    Ok((hits, body.get("total_estimate").and_then(serde_json::Value::as_u64).unwrap_or(0)))
}

// ---- The report ---------------------------------------------------------------------------

fn markdown(r: &SearchResults) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Search benchmark\n");
    let _ = writeln!(
        s,
        "Commit `{}`, {}. Corpus: {} room messages in {} rooms by {} authors and {} direct messages (80 % Latin-script words \
         by a Zipf distribution, 10 % Chinese, 10 % Russian); {} requests per class, one at a time, while {} room messages/s \
         are written. Latencies are the client's, over loopback HTTP.\n",
        r.commit, r.date, r.size.room_messages, r.size.rooms, r.size.authors, r.size.direct_messages, r.size.queries, r.size.write_rate
    );
    let mut by_class: BTreeMap<&str, Vec<(Engine, &ClassResult)>> = BTreeMap::new();
    let order: Vec<&str> = r.runs.first().map(|e| e.classes.iter().map(|c| c.class.as_str()).collect()).unwrap_or_default();
    for run in &r.runs {
        for c in &run.classes {
            by_class.entry(c.class.as_str()).or_default().push((run.engine, c));
        }
    }
    let _ = write!(s, "| query | what |");
    for run in &r.runs {
        let _ = write!(s, " {:?}: p50 / p99 ms (hits, errors) |", run.engine);
    }
    let _ = write!(s, "\n|---|---|");
    for _ in &r.runs {
        let _ = write!(s, "---|");
    }
    s.push('\n');
    for class in order {
        let rows = &by_class[class];
        let _ = write!(s, "| {class} | {} |", rows[0].1.what);
        for (_, c) in rows {
            let _ = write!(s, " {:.2} / {:.2} ({:.1}, {}) |", c.p50_ms, c.p99_ms, c.mean_hits, c.errors);
        }
        s.push('\n');
    }
    let _ = writeln!(s, "\n| database | seeding | index bytes (per message) | database bytes | written during the queries | load before → after |\n|---|---|---|---|---|---|");
    for run in &r.runs {
        let _ = writeln!(
            s,
            "| {:?} | {:.0} s | {} ({:.0}) | {} | {} | {} → {} |",
            run.engine, run.seed_secs, run.index_bytes, run.index_bytes_per_message, run.database_bytes, run.written, run.load_before, run.load_after
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_is_zipf_ordered_and_the_corpus_is_deterministic() {
        let v = Vocabulary::new(1_000);
        assert!(v.words.len() > 1_000);
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = vec![0u32; v.words.len()];
        for _ in 0..100_000 {
            counts[v.rank(&mut rng)] += 1;
        }
        assert!(counts[0] > counts[10] && counts[10] > counts[500], "the head is the most frequent");
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..1000 {
            let word = v.sample_from(&mut rng, 100);
            assert!(v.words.iter().position(|w| w == word).is_some_and(|p| p >= 100), "{word} is among the 100 most common");
        }
        let size = Size { room_messages: 500, direct_messages: 50, rooms: 5, authors: 10, queries: 1, write_rate: 1 };
        let (a, b) = (Corpus::generate(size), Corpus::generate(size));
        assert_eq!(a.rooms_tsv, b.rooms_tsv);
        assert_eq!(a.rooms_tsv.lines().count(), 500);
        assert!(a.rooms_tsv.lines().all(|l| l.split('\t').count() == 3), "no tab inside a text");
        assert!(a.rooms_tsv.contains("数") && a.rooms_tsv.contains("баз"), "Chinese and Russian texts are in");
        assert!(!a.rooms_tsv.contains('"') && !a.rooms_tsv.contains('\\'), "nothing the shells' import formats would read as quoting");
    }
}
