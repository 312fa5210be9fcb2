//! Background jobs: `POST /api/jobs` starts one, `GET /api/jobs/{id}` polls it,
//! `GET /api/jobs/{id}/download` fetches its file, and `job.subscribe` returns its state
//! to a socket.
//!
//! A job runs on the instance that accepted it and outlives the request and any socket.
//! Its progress (`job.progress`, droppable) and its end (`job.finished`, reliable) go to the
//! owner's user group, so they reach every connection of the owner on every instance.
//! Only the owner can see a job; everyone else gets 404, so job ids reveal nothing.
//!
//! Export files live in the database ([`crate::storage::exports`]), so with several
//! instances any of them serves any download.
//!
//! # Layout
//! - this file: the routes and `job.subscribe`.
//! - [`runner`]: the tasks, their tracking for shutdown, progress pacing, the sweeper.
//! - [`export`]: `export_room` and `export_audit`, streaming a room's history or the audit
//!   log (started by `POST /api/audit/export`) to JSON or CSV.
//! - [`purge`]: `purge_messages`, deleting a user's messages in batches (moderation).
//! - [`expiry`]: the periodic sweep: interrupted jobs, and exports past their lifetime.

pub mod export;
pub mod expiry;
pub mod purge;
pub mod runner;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use confab_shared::rpc::JobSubscribeParams;
use confab_shared::{CreateJob, CreateJobKind, ExportFormat, Job, JobAccepted, Problem};
use tokio_util::io::ReaderStream;

pub use runner::JobRunner;

use crate::auth::Identity;
use crate::auth::extract::AuthUser;
use crate::error::{AppError, AppResult};
use crate::http::ApiJson;
use crate::state::AppState;
use crate::storage::entity::jobs as job_entity;
use crate::storage::{Db, exports, jobs};
use crate::ws::Conn;

/// What a client over the per-user limit is told to wait before trying again.
const RETRY_AFTER_MS: u64 = 5_000;
/// Read size when streaming a download from a file (exports of older versions).
const DOWNLOAD_CHUNK: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/jobs", post(create_job))
        .route("/api/jobs/{id}", get(get_job))
        .route("/api/jobs/{id}/download", get(download))
}

/// Start a background job: `export_room` writes a room's whole history to a JSON or CSV file.
///
/// Progress arrives on the owner's sockets as `job.progress` and `job.finished`.
#[utoipa::path(post, path = "/api/jobs", tag = "jobs", security(("bearer" = [])), request_body = CreateJob,
    responses(
        (status = 202, description = "Accepted; the job runs in the background", body = JobAccepted),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Admin-only room", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such room", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The caller already has `jobs_per_user` jobs queued or running", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_job(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    ApiJson(body): ApiJson<CreateJob>,
) -> AppResult<(StatusCode, Json<JobAccepted>)> {
    // One kind today; the match makes a new kind a compile error here until it is handled.
    let CreateJob { kind: CreateJobKind::ExportRoom, room, format } = body;
    let room = crate::features::rooms::readable(&state, Some(&caller), &room).await?;
    let job = jobs::create_export(&state.db, caller.user_id, jobs::Export::Room(&room.name), &format).await?;
    tracing::info!(job = job.id, user = %caller.username, room = %room.name, format = jobs::format_name(&format), "export queued");
    Ok((StatusCode::ACCEPTED, Json(admit(&state, job).await?)))
}

/// Runs a job just recorded, unless its owner already has `jobs_per_user` jobs queued or
/// running (429; the row is forgotten).
pub async fn admit(state: &AppState, job: job_entity::Model) -> AppResult<JobAccepted> {
    // Admission after the insert, counting every committed job on every instance: of two
    // racing requests at the limit the later counter sees both, so the limit is never
    // exceeded (at worst both are refused and one retries).
    if jobs::active_count(&state.db, job.owner_id).await? > state.config.jobs_per_user as u64 {
        jobs::delete(&state.db, job.id).await?;
        return Err(AppError::RateLimited { retry_after_ms: RETRY_AFTER_MS });
    }
    let job_id = job.id;
    state.jobs.spawn(state.db.clone(), state.layer.clone(), job);
    Ok(JobAccepted { job_id })
}

/// A job's state, for clients that poll.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job of the caller", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_job(State(state): State<AppState>, AuthUser(caller): AuthUser, Path(id): Path<String>) -> AppResult<Json<Job>> {
    let job = owned(&state, &caller, &id).await?;
    Ok(Json(Job::from(&job)))
}

/// The finished job's file, streamed: JSON (an array of `Message`, or of `AuditEntry` for an
/// audit export) or CSV. Files are kept
/// for the server's export lifetime (24 hours by default), then deleted. In CSV, a cell
/// that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`,
/// so that a spreadsheet shows it as text instead of evaluating it.
#[utoipa::path(get, path = "/api/jobs/{id}/download", tag = "jobs", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Job id")),
    responses(
        (status = 200, description = "The export; `Content-Disposition` names the file",
            content((ExportFile = "application/json"), (String = "text/csv"))),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job of the caller, or its file is gone", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has not finished, or failed", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The export expired (`CONFAB_EXPORT_TTL_HOURS` after it finished, 24 by default) and its file was deleted", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn download(State(state): State<AppState>, AuthUser(caller): AuthUser, Path(id): Path<String>) -> AppResult<Response> {
    let job = owned(&state, &caller, &id).await?;
    if job.kind == jobs::PURGE {
        return Err(AppError::NotFound("export file"));
    }
    match job.state.as_str() {
        jobs::DONE => {}
        jobs::FAILED => return Err(AppError::Conflict("the job failed; it has no file")),
        jobs::EXPIRED => return Err(AppError::Gone("the export expired and its file was deleted; start a new export")),
        _ => return Err(AppError::Conflict("the job has not finished")),
    }
    let file = job.file.as_deref().ok_or(AppError::NotFound("export file"))?;
    let (length, body) = if file == exports::IN_DATABASE {
        let length = exports::size(&state.db, job.id).await?.ok_or(AppError::NotFound("export file"))?;
        (length, Body::from_stream(chunks(state.db.clone(), job.id)))
    } else {
        // Written by a version that kept exports in the data dir of the instance that ran them.
        let path = state.config.data_dir.join(file);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(AppError::NotFound("export file")),
            Err(err) => return Err(AppError::Internal(anyhow::Error::new(err).context(format!("opening {}", path.display())))),
        };
        let length = file.metadata().await.map_err(|e| AppError::Internal(e.into()))?.len();
        (length, Body::from_stream(ReaderStream::with_capacity(file, DOWNLOAD_CHUNK)))
    };
    let format = jobs::format_of(&job);
    let content_type = match format {
        ExportFormat::Json => "application/json",
        ExportFormat::Csv => "text/csv; charset=utf-8",
    };
    // Room names are [A-Za-z0-9_-], so the filename needs no quoting beyond the quotes.
    let subject = if job.kind == jobs::EXPORT_AUDIT { "audit" } else { job.room.as_str() };
    let disposition = format!("attachment; filename=\"{subject}-export-{}.{}\"", job.id, export::extension(&format));
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_LENGTH, HeaderValue::from(length)),
        (header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(|e| AppError::Internal(e.into()))?),
    ];
    Ok((headers, body).into_response())
}

/// The JSON of an export file, for the OpenAPI document: an array of `Message` (a room
/// export) or of `AuditEntry` (an audit export).
pub struct ExportFile;

impl utoipa::PartialSchema for ExportFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder};
        AnyOfBuilder::new()
            .item(ArrayBuilder::new().items(Ref::from_schema_name("Message")))
            .item(ArrayBuilder::new().items(Ref::from_schema_name("AuditEntry")))
            .into()
    }
}

impl utoipa::ToSchema for ExportFile {}

/// A stored export, one chunk read per item: memory holds one chunk whatever the file's size.
fn chunks(db: Db, job_id: i64) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    futures_util::stream::try_unfold(0i32, move |seq| {
        let db = db.clone();
        async move {
            match exports::chunk(&db, job_id, seq).await {
                Ok(Some(data)) => Ok(Some((data, seq + 1))),
                Ok(None) => Ok(None),
                Err(err) => {
                    tracing::error!(job = job_id, %err, "export download interrupted");
                    Err(std::io::Error::other(err))
                }
            }
        }
    })
}

/// `job.subscribe`: the owner only; others get "not found" so job ids reveal nothing.
pub async fn subscribe(state: &AppState, conn: &Conn, p: JobSubscribeParams) -> AppResult<Job> {
    let me = conn.user()?;
    let job = jobs::by_id(&state.db, p.job_id).await?.filter(|j| j.owner_id == me.user_id).ok_or(AppError::NotFound("job"))?;
    Ok(Job::from(&job))
}

/// The caller's job with this id (a path segment that is not an id names no job).
async fn owned(state: &AppState, caller: &Identity, id: &str) -> AppResult<job_entity::Model> {
    let id: i64 = id.parse().map_err(|_| AppError::NotFound("job"))?;
    jobs::by_id(&state.db, id).await?.filter(|j| j.owner_id == caller.user_id).ok_or(AppError::NotFound("job"))
}
