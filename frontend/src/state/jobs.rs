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

use confab_shared::rpc::JobSubscribeParams;
use confab_shared::rpc::notify::JobProgress;
use confab_shared::{CreateJob, CreateJobKind, ExportFormat, Job, JobState};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsValue;

use super::{REFRESH_MARGIN_MS, is_connection_error};
use crate::api::rest::{self, ExportFile};
use crate::api::socket::Socket;
use crate::components::toasts::Toasts;
use crate::session::Session;
use crate::util::describe;

/// The exports started from this tab; a copyable handle.
#[derive(Clone, Copy)]
pub struct Jobs {
    socket: Socket,
    session: Session,
    toasts: Toasts,
    /// Newest last.
    pub exports: RwSignal<Vec<Export>>,
}

impl Jobs {
    pub fn new(socket: Socket, session: Session, toasts: Toasts) -> Self {
        Self { socket, session, toasts, exports: RwSignal::new(Vec::new()) }
    }

    async fn access_token(self) -> Result<String, String> {
        self.session.access_token(REFRESH_MARGIN_MS).await.map_err(|e| e.message)
    }

    /// Starts exporting a room's history and follows its progress.
    pub async fn start(self, room: String, format: ExportFormat) {
        let body = CreateJob { kind: CreateJobKind::ExportRoom, room: room.clone(), format: format.clone() };
        let token = match self.access_token().await {
            Ok(token) => token,
            Err(why) => return self.toasts.error(format!("Could not start the export: {why}")),
        };
        let accepted = match rest::create_export(&token, &body).await {
            Ok(accepted) => accepted,
            Err(err) => return self.toasts.error(format!("Could not start the export: {}", err.message)),
        };
        let job_id = accepted.job_id;
        self.exports.update(|all| all.push(Export::new(job_id, room, format)));
        self.subscribe(job_id).await;
    }

    /// `job.subscribe`: its answer is the job's state now, which may already be final.
    async fn subscribe(self, job_id: i64) {
        match self.socket.call(JobSubscribeParams { job_id }).await {
            Ok(job) => self.update(job),
            // The reconnect subscribes again.
            Err(err) if is_connection_error(&err) => {}
            Err(err) => {
                let why = describe(&err);
                self.set(job_id, |e| e.error = Some(why.clone()));
                self.toasts.error(format!("Cannot follow the export: {why}"));
            }
        }
    }

    /// After a reconnect as the same person: a `job.finished` may have been sent while we were away.
    pub async fn resubscribe(self) {
        let active: Vec<i64> =
            self.exports.with_untracked(|all| all.iter().filter(|e| e.is_active()).map(|e| e.job_id).collect());
        for job_id in active {
            self.subscribe(job_id).await;
        }
    }

    /// A `job.progress`; jobs this tab did not start (another tab's) are not ours to show.
    pub fn progress(&self, progress: &JobProgress) {
        self.set(progress.job_id, |e| e.apply_progress(progress));
    }

    /// A job's state from `job.subscribe` or `job.finished`; a finished export is fetched.
    pub fn update(&self, job: Job) {
        let mut fetch = false;
        self.set(job.id, |export| {
            export.apply_job(&job);
            if export.state == JobState::Done && export.file.is_none() && !export.fetching {
                export.fetching = true;
                fetch = true;
            }
        });
        if fetch {
            spawn_local(self.fetch(job.id));
        }
    }

    /// Downloads a finished export with the bearer token and keeps it as a `blob:` URL.
    pub async fn fetch(self, job_id: i64) {
        let Some(export) = self.exports.with_untracked(|all| all.iter().find(|e| e.job_id == job_id).cloned()) else {
            return;
        };
        self.set(job_id, |e| {
            e.fetching = true;
            e.error = None;
        });
        let outcome = match self.access_token().await {
            Ok(token) => match rest::download_export(&token, job_id).await {
                Ok(file) => blob_url(&file).map(|url| Downloaded {
                    url,
                    filename: file.filename.clone().unwrap_or_else(|| export.fallback_filename()),
                    bytes: file.bytes.len(),
                }),
                Err(err) => Err(err.message),
            },
            Err(why) => Err(why),
        };
        self.set(job_id, |e| {
            e.fetching = false;
            match outcome {
                Ok(file) => e.file = Some(file),
                Err(why) => e.error = Some(format!("Could not download the export: {why}")),
            }
        });
    }

    fn set(&self, job_id: i64, change: impl FnOnce(&mut Export)) {
        self.exports.update(|all| {
            if let Some(export) = all.iter_mut().find(|e| e.job_id == job_id) {
                change(export);
            }
        });
    }

    /// Forgets every export (another user logged in); frees their files.
    pub fn clear(&self) {
        let old = self.exports.try_update(std::mem::take).unwrap_or_default();
        for export in old {
            if let Some(file) = export.file {
                revoke(&file.url);
            }
        }
    }

    /// Removes one finished export from the list.
    pub fn dismiss(&self, job_id: i64) {
        let mut removed = None;
        self.exports.update(|all| {
            if let Some(at) = all.iter().position(|e| e.job_id == job_id) {
                removed = Some(all.remove(at));
            }
        });
        if let Some(file) = removed.and_then(|e| e.file) {
            revoke(&file.url);
        }
    }
}

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
            JobState::Expired => "expired",
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
