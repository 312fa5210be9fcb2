//! Room exports: the background jobs this tab started, their live progress, and the
//! finished file.
//!
//! `POST /api/jobs` starts one; the tab then calls `job.subscribe` (which also returns the
//! job's current state, so a job that finished before the call is not missed) and follows
//! `job.progress` / `job.finished`. After a reconnect every unfinished job is subscribed
//! again, which doubles as catching up on a `job.finished` sent while we were away.
//!
//! The download needs the bearer token, which a plain `<a href>` cannot send, so the
//! finished file is fetched with it and offered as a `blob:` URL.

use confab_shared::rpc::notify::JobProgress;
use confab_shared::{ExportFormat, Job, JobState};
use wasm_bindgen::JsValue;

use crate::api::rest::ExportFile;

/// One export started from this tab.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    pub job_id: i64,
    /// The room, as the server spells it.
    pub room: String,
    pub format: ExportFormat,
    pub state: JobState,
    pub percent: u8,
    /// The latest `detail` of `job.progress`, e.g. "1200 of 5000 messages".
    pub detail: Option<String>,
    /// Why the job or the download failed.
    pub error: Option<String>,
    /// The fetched file, once the job is done.
    pub file: Option<Downloaded>,
    /// Whether the file is being fetched right now.
    pub fetching: bool,
}

/// A finished export held by the page as a `blob:` URL.
#[derive(Clone, Debug, PartialEq)]
pub struct Downloaded {
    pub url: String,
    pub filename: String,
    pub bytes: usize,
}

impl Export {
    pub fn new(job_id: i64, room: String, format: ExportFormat) -> Self {
        Self {
            job_id,
            room,
            format,
            state: JobState::Queued,
            percent: 0,
            detail: None,
            error: None,
            file: None,
            fetching: false,
        }
    }

    /// Whether the job may still report progress.
    pub fn is_active(&self) -> bool {
        matches!(self.state, JobState::Queued | JobState::Running)
    }

    /// Applies the job's state as `job.subscribe` or `job.finished` reports it.
    pub fn apply_job(&mut self, job: &Job) {
        // Progress never goes back (a late `job.progress` can arrive after a subscribe answer).
        self.percent = self.percent.max(job.percent).min(100);
        self.state = job.state.clone();
        if job.state == JobState::Done {
            self.percent = 100;
        }
        if let Some(error) = &job.error {
            self.error = Some(error.clone());
        }
    }

    /// Applies a `job.progress` notification.
    pub fn apply_progress(&mut self, progress: &JobProgress) {
        if !self.is_active() {
            return;
        }
        self.state = JobState::Running;
        self.percent = self.percent.max(progress.percent).min(100);
        if progress.detail.is_some() {
            self.detail = progress.detail.clone();
        }
    }

    /// A stable token for `data-state` and CSS.
    pub fn state_str(&self) -> &'static str {
        match self.state {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    /// The file name offered when the server did not name one.
    pub fn fallback_filename(&self) -> String {
        let extension = match self.format {
            ExportFormat::Json => "json",
            ExportFormat::Csv => "csv",
        };
        format!("{}-export-{}.{extension}", self.room, self.job_id)
    }
}

/// Turns a fetched file into a `blob:` URL the page can link to.
pub fn blob_url(file: &ExportFile) -> Result<String, String> {
    let bytes = js_sys::Uint8Array::from(file.bytes.as_slice());
    let parts = js_sys::Array::new();
    parts.push(&bytes.buffer());
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(&file.content_type);
    let blob = web_sys::Blob::new_with_buffer_source_sequence_and_options(&parts, &options).map_err(js_error)?;
    web_sys::Url::create_object_url_with_blob(&blob).map_err(js_error)
}

/// Frees a `blob:` URL made by [`blob_url`].
pub fn revoke(url: &str) {
    let _ = web_sys::Url::revoke_object_url(url);
}

fn js_error(value: JsValue) -> String {
    value.as_string().unwrap_or_else(|| "the browser could not hold the file".to_owned())
}

/// "12.3 KB" and the like.
pub fn human_size(bytes: usize) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} KB", bytes as f64 / 1_000.0),
        _ => format!("{:.1} MB", bytes as f64 / 1_000_000.0),
    }
}
