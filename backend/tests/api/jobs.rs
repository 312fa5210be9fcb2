//! Background jobs: room exports with live progress, polling, downloads, ownership, the
//! per-user limit, and what a shutdown does to a job in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use confab::storage::messages::{self, NewMessage};
use confab::features::jobs::expiry::expire_exports;
use confab::storage::{exports, jobs as job_rows, rooms};
use confab_shared::rpc::JobSubscribeParams;
use confab_shared::rpc::notify::JobProgress;
use confab_shared::{ExportFormat, Job, JobAccepted, JobState, Message, TokenPair};
use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient, assert_code, body, header, join, problem, send, spawn_app, spawn_app_with, text, unique, within};

/// Puts `n` messages by `author` into a new room through the server's message writer,
/// 1000 in flight at a time (sending 20k over a socket would take minutes under the rate
/// limit). Returns the room name and the messages' ids, oldest first.
async fn seed_room(app: &TestApp, author: &TokenPair, n: usize, text: impl Fn(usize) -> String) -> (String, Vec<i64>) {
    let state = app.state();
    let name = unique("archive");
    let room = rooms::create(&state.db, &name, false, Some(author.user.id)).await.expect("the room is created");
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(1000) {
        let mut receipts = Vec::with_capacity(1000);
        for i in start..n.min(start + 1000) {
            let message = NewMessage {
                room_id: room.id,
                author_id: author.user.id,
                author: author.user.username.clone(),
                text: text(i),
                nonce: None,
                mentions: Default::default(),
            };
            receipts.push(state.pipeline.submit(message, name.clone()).await.expect("the message is queued"));
        }
        for receipt in receipts {
            ids.push(receipt.wait().await.expect("the message is stored").message.id);
        }
    }
    (name, ids)
}

fn export(room: &str, format: &str) -> Value {
    json!({ "kind": "export_room", "room": room, "format": format })
}

/// `POST /api/jobs` that must be accepted; returns the job id.
async fn start_export(app: &TestApp, token: &str, room: &str, format: &str) -> i64 {
    let response = app.post_json("/api/jobs", &export(room, format), Some(token)).await;
    assert_eq!(response.status().as_u16(), 202, "POST /api/jobs answered {}", response.status());
    body::<JobAccepted>(response).await.job_id
}

/// The `job.progress` notifications of `job_id` up to its `job.finished`.
async fn follow(ws: &mut WsClient, job_id: i64) -> (Vec<JobProgress>, Job) {
    let mut progress = Vec::new();
    loop {
        let (method, params) = ws.next_among(&["job.progress", "job.finished"]).await;
        if method == "job.finished" {
            let job: Job = serde_json::from_value(params).expect("job.finished carries a Job");
            if job.id == job_id {
                return (progress, job);
            }
        } else {
            let step: JobProgress = serde_json::from_value(params).expect("job.progress params");
            if step.job_id == job_id {
                progress.push(step);
            }
        }
    }
}

/// Polls `GET /api/jobs/{id}` until the job is done or failed.
async fn poll_until_finished(app: &TestApp, token: &str, job_id: i64) -> Job {
    within("the job to finish", async {
        loop {
            let job: Job = body(app.get(&format!("/api/jobs/{job_id}"), Some(token)).await).await;
            if matches!(job.state, JobState::Done | JobState::Failed) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

async fn download(app: &TestApp, token: &str, job_id: i64) -> reqwest::Response {
    app.get(&format!("/api/jobs/{job_id}/download"), Some(token)).await
}

/// p50 and max of some durations, in milliseconds.
fn summary(samples: &mut [Duration]) -> String {
    if samples.is_empty() {
        return "no samples".to_owned();
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "n={} p50={:.1}ms p95={:.1}ms max={:.1}ms",
        samples.len(),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 95 / 100]),
        ms(samples[samples.len() - 1])
    )
}

/// What a chatter measured: `room.send` round trips and the ids it sent.
struct Chatter {
    ws: WsClient,
    timings: Vec<Duration>,
    ids: Vec<i64>,
}

/// Joins `room` and sends chat messages to it (about 40 a second, under the rate limit)
/// until `stop`, timing each `room.send` round trip.
fn chat_until(mut ws: WsClient, room: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Chatter> {
    tokio::spawn(async move {
        ws.ok(join(&room)).await;
        let (mut timings, mut ids) = (Vec::new(), Vec::new());
        while !stop.load(Ordering::Acquire) {
            let sent = Instant::now();
            let message = ws.ok(send(&room, "still chatting")).await;
            timings.push(sent.elapsed());
            ids.push(message.id);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Chatter { ws, timings, ids }
    })
}

/// Runs an export of `n` seeded messages while another user chats in the same room, checks
/// progress and the file, and prints what it measured.
async fn export_while_chatting(n: usize) {
    let app = spawn_app().await;
    let (owner, mut owner_ws) = app.user_online("ann").await;
    let seeding = Instant::now();
    let (room, ids) = seed_room(&app, &owner, n, |i| format!("message {i}")).await;
    eprintln!("seeded {n} messages in {:?}", seeding.elapsed());
    let (_bob, chatter) = app.user_online("bob").await;
    owner_ws.ok(confab_shared::rpc::EchoParams { text: "ready".into() }).await;

    // Chat latency without an export (in another room), then in the room being exported.
    let stop = Arc::new(AtomicBool::new(false));
    let idle = chat_until(chatter, unique("lounge"), stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);
    let mut idle = idle.await.expect("the chatter ran");

    let started = Instant::now();
    let job_id = start_export(&app, &owner.access_token, &room, "json").await;
    // Once the first progress arrives the export's extent is fixed; from then on the chatter
    // talks in the room being exported, and none of that may end up in the file.
    let first: JobProgress = owner_ws.next("job.progress").await;
    assert_eq!(first.job_id, job_id);
    let stop = Arc::new(AtomicBool::new(false));
    let busy = chat_until(idle.ws, room.clone(), stop.clone());
    let (rest, finished) = within("the export to finish", follow(&mut owner_ws, job_id)).await;
    let took = started.elapsed();
    let progress: Vec<JobProgress> = std::iter::once(first).chain(rest).collect();
    stop.store(true, Ordering::Release);
    let mut busy = busy.await.expect("the chatter ran");
    eprintln!("export of {n} messages: {took:?}, {} progress notifications", progress.len());
    eprintln!("room.send round trip, idle:          {}", summary(&mut idle.timings));
    eprintln!("room.send round trip, during export: {}", summary(&mut busy.timings));

    assert_eq!(finished.state, JobState::Done, "{finished:?}");
    assert_eq!((finished.percent, finished.error.as_deref()), (100, None));
    assert!(finished.finished_at.is_some());
    assert!(!progress.is_empty(), "no job.progress before job.finished");
    assert!(progress.windows(2).all(|w| w[0].percent < w[1].percent), "progress is not monotonic: {progress:?}");
    assert!(progress.iter().all(|p| p.percent <= 100));
    // Paced, not per row: at most one per page of 1000.
    assert!(progress.len() <= n.div_ceil(1000), "{} progress notifications for {n} rows", progress.len());
    let detail = progress.last().and_then(|p| p.detail.clone()).unwrap_or_default();
    assert!(detail.ends_with(&format!(" of {n} messages")), "detail {detail:?}");
    let polled: Job = body(app.get(&format!("/api/jobs/{job_id}"), Some(&owner.access_token)).await).await;
    assert_eq!(polled, finished);

    let file = download(&app, &owner.access_token, job_id).await;
    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(header(&file, "content-type").as_deref(), Some("application/json"));
    assert_eq!(header(&file, "content-disposition").unwrap_or_default(), format!("attachment; filename=\"{room}-export-{job_id}.json\""));
    let exported: Vec<Message> = serde_json::from_str(&text(file).await).expect("the file is a JSON array of messages");
    // Every seeded message exactly once, in order, and nothing sent after the export began.
    assert_eq!(exported.len(), ids.len());
    assert!(exported.iter().map(|m| m.id).eq(ids.iter().copied()), "the export's ids differ from the room's");
    assert!(exported.iter().enumerate().all(|(i, m)| m.text == format!("message {i}") && m.room == room));
    assert!(!idle.ids.is_empty(), "the chatter sent nothing");
    // Nothing the chatter sent while the export ran is in the file (the ids check says so
    // too; this names the cause if it fails).
    assert!(!exported.iter().any(|m| busy.ids.contains(&m.id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_20k_messages_reports_monotonic_progress_and_holds_every_message_once() {
    export_while_chatting(20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow (a minute of seeding): run with --ignored to measure a 100k export"]
async fn an_export_of_100k_messages_streams_while_chat_goes_on() {
    export_while_chatting(100_000).await;
}

#[tokio::test]
async fn a_csv_export_quotes_every_field_and_holds_every_message_once() {
    let app = spawn_app().await;
    let owner = app.signup_and_login(&unique("ann")).await;
    let tricky = ["plain", "comma, inside", "a \"quoted\" word", "two\nlines", "crlf\r\nline", "unicode ✓ 日本語", "=1+2", " padded "];
    let (room, ids) = seed_room(&app, &owner, 2_500, |i| tricky[i % tricky.len()].to_owned()).await;
    let db = &app.state().db;
    messages::edit(db, ids[1], "edited, with a comma").await.expect("the edit is stored");
    messages::delete(db, ids[2]).await.expect("the delete is stored");

    let job_id = start_export(&app, &owner.access_token, &room, "csv").await;
    let job = poll_until_finished(&app, &owner.access_token, job_id).await;

    assert_eq!(job.state, JobState::Done, "{job:?}");
    let file = download(&app, &owner.access_token, job_id).await;
    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(header(&file, "content-type").as_deref(), Some("text/csv; charset=utf-8"));
    assert!(header(&file, "content-disposition").unwrap_or_default().ends_with(&format!("filename=\"{room}-export-{job_id}.csv\"")));
    let csv_text = text(file).await;
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers: Vec<String> = reader.headers().expect("a header row").iter().map(str::to_owned).collect();
    assert_eq!(headers, ["id", "room", "author", "text", "sent_at", "edited_at", "deleted"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a well-formed CSV row")).collect();
    assert_eq!(rows.len(), ids.len());
    for (i, (row, id)) in rows.iter().zip(&ids).enumerate() {
        assert_eq!(row[0].parse::<i64>().ok(), Some(*id));
        assert_eq!((&row[1], &row[2]), (room.as_str(), owner.user.username.as_str()));
        let (text, edited, deleted) = match i {
            1 => ("edited, with a comma", true, "false"),
            2 => ("", false, "true"),
            _ => (tricky[i % tricky.len()], false, "false"),
        };
        // A cell a spreadsheet would evaluate is prefixed with a quote.
        let text = if text.starts_with('=') { format!("'{text}") } else { text.to_owned() };
        assert_eq!(&row[3], text, "row {i}");
        assert!(row[4].ends_with('Z'), "sent_at {:?}", &row[4]);
        assert_eq!(!row[5].is_empty(), edited, "edited_at of row {i}");
        assert_eq!(&row[6], deleted);
    }
}

#[tokio::test]
async fn a_download_is_sent_as_stored_with_its_length_even_to_a_client_that_accepts_gzip() {
    let app = spawn_app().await;
    let owner = app.signup_and_login(&unique("ann")).await;
    let (room, ids) = seed_room(&app, &owner, 500, |i| format!("message number {i}")).await;
    let job_id = start_export(&app, &owner.access_token, &room, "json").await;
    assert_eq!(poll_until_finished(&app, &owner.access_token, job_id).await.state, JobState::Done);

    let request = app.http.get(app.url(&format!("/api/jobs/{job_id}/download"))).bearer_auth(&owner.access_token);
    let file = within("the download", request.header("accept-encoding", "gzip, br").send()).await.expect("the request reaches the server");

    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(header(&file, "content-encoding"), None, "downloads are not compressed on the fly");
    let length: usize = header(&file, "content-length").unwrap_or_default().parse().expect("a Content-Length");
    let exported: Vec<Message> = body(file).await;
    assert_eq!(exported.len(), ids.len());
    assert!(length > 500 * "message number".len());
}

#[tokio::test]
async fn only_the_owner_sees_a_job_and_downloads_its_file() {
    let app = spawn_app().await;
    let (owner, mut owner_ws) = app.user_online("ann").await;
    let (other, mut other_ws) = app.user_online("bob").await;
    let (room, _) = seed_room(&app, &owner, 10, |i| format!("m{i}")).await;
    let job_id = start_export(&app, &owner.access_token, &room, "json").await;
    let job = poll_until_finished(&app, &owner.access_token, job_id).await;
    assert_eq!(job.state, JobState::Done);

    problem(app.get(&format!("/api/jobs/{job_id}"), Some(&other.access_token)).await, 404).await;
    problem(download(&app, &other.access_token, job_id).await, 404).await;
    problem(app.get(&format!("/api/jobs/{job_id}"), None).await, 401).await;
    problem(app.get("/api/jobs/not-a-number", Some(&owner.access_token)).await, 404).await;
    problem(app.get(&format!("/api/jobs/{}", job_id + 1000), Some(&owner.access_token)).await, 404).await;
    assert_code(&other_ws.fail(JobSubscribeParams { job_id }).await, -32004);
    assert_eq!(owner_ws.ok(JobSubscribeParams { job_id }).await, job);
    other_ws.assert_no("job.finished").await;
}

/// A server keeping exports `ttl_hours`, and a finished CSV export of a small room by its owner.
async fn finished_export(ttl_hours: u64) -> (TestApp, TokenPair, Job) {
    let app = spawn_app_with(|config| config.export_ttl_hours = ttl_hours).await;
    let owner = app.signup_and_login(&unique("ann")).await;
    let (room, _) = seed_room(&app, &owner, 3, |i| format!("message {i}")).await;
    let job_id = start_export(&app, &owner.access_token, &room, "csv").await;
    let job = poll_until_finished(&app, &owner.access_token, job_id).await;
    assert_eq!(job.state, JobState::Done, "{job:?}");
    (app, owner, job)
}

#[tokio::test]
async fn an_export_past_its_lifetime_loses_its_file_and_its_download_is_gone() {
    let (app, owner, job) = finished_export(24).await;
    let job_id = job.id;
    let finished = job.finished_at.expect("a finished job says when").millis();
    let day = 24 * 3600 * 1000;

    // The sweep runs with a clock of the test's choosing: a second before the end of the
    // lifetime the file stays, a millisecond after it it goes.
    assert_eq!(expire_exports(app.state(), finished + day - 1000).await, 0);
    assert_eq!(download(&app, &owner.access_token, job_id).await.status().as_u16(), 200);
    assert_eq!(expire_exports(app.state(), finished + day + 1).await, 1);

    let gone = problem(download(&app, &owner.access_token, job_id).await, 410).await;
    assert_eq!(gone.kind, "/problems/gone");
    assert!(gone.detail.contains("expired"), "{gone:?}");
    let job: Job = body(app.get(&format!("/api/jobs/{job_id}"), Some(&owner.access_token)).await).await;
    assert_eq!(job.state, JobState::Expired);
    assert_eq!(exports::size(&app.state().db, job_id).await.expect("size"), None, "the stored file is deleted");
    // Once is enough: a later sweep (another instance's) finds nothing to do.
    assert_eq!(expire_exports(app.state(), finished + 2 * day).await, 0);
    // Someone else still learns nothing about the job.
    let other = app.signup_and_login(&unique("bob")).await;
    problem(download(&app, &other.access_token, job_id).await, 404).await;
}

#[tokio::test]
async fn exports_never_expire_when_their_lifetime_is_zero() {
    let (app, owner, job) = finished_export(0).await;
    assert_eq!(expire_exports(app.state(), i64::MAX).await, 0);
    assert_eq!(download(&app, &owner.access_token, job.id).await.status().as_u16(), 200);
}

#[tokio::test]
async fn a_download_of_an_unfinished_or_failed_job_is_a_conflict() {
    let app = spawn_app().await;
    let owner = app.signup_and_login(&unique("ann")).await;
    let db = &app.state().db;
    // Rows no runner picks up: one stays queued, the other is failed.
    let queued = job_rows::create_export(db, owner.user.id, job_rows::Export::Room("anywhere"), &ExportFormat::Json).await.expect("a job row");
    let failed = job_rows::create_export(db, owner.user.id, job_rows::Export::Room("anywhere"), &ExportFormat::Csv).await.expect("a job row");
    job_rows::fail(db, failed.id, "broken").await.expect("the job is failed");

    assert_eq!(problem(download(&app, &owner.access_token, queued.id).await, 409).await.kind, "/problems/conflict");
    problem(download(&app, &owner.access_token, failed.id).await, 409).await;
    let job: Job = body(app.get(&format!("/api/jobs/{}", failed.id), Some(&owner.access_token)).await).await;
    assert_eq!((job.state, job.error.as_deref()), (JobState::Failed, Some("broken")));
}

#[tokio::test]
async fn an_export_needs_a_readable_room_and_respects_the_per_user_limit() {
    let app = spawn_app_with(|config| config.jobs_per_user = 1).await;
    let owner = app.signup_and_login(&unique("ann")).await;
    let other = app.signup_and_login(&unique("bob")).await;
    let token = owner.access_token.as_str();
    let (room, _) = seed_room(&app, &owner, 5, |i| format!("m{i}")).await;
    let db = &app.state().db;
    let secret = unique("staff");
    rooms::create(db, &secret, true, None).await.expect("an admin-only room");

    problem(app.post_json("/api/jobs", &export(&unique("nowhere"), "json"), Some(token)).await, 404).await;
    problem(app.post_json("/api/jobs", &export(&secret, "json"), Some(token)).await, 403).await;
    problem(app.post_json("/api/jobs", &export(&room, "json"), None).await, 401).await;
    let bad_format = problem(app.post_json("/api/jobs", &export(&room, "xml"), Some(token)).await, 422).await;
    assert_eq!(bad_format.field.as_deref(), Some("format"));
    let bad_kind = json!({ "kind": "export_everything", "room": room, "format": "json" });
    assert_eq!(problem(app.post_json("/api/jobs", &bad_kind, Some(token)).await, 422).await.field.as_deref(), Some("kind"));

    // One job in flight (a row no runner picks up) is the limit here.
    let busy = job_rows::create_export(db, owner.user.id, job_rows::Export::Room(&room), &ExportFormat::Json).await.expect("a job row");
    let refused = app.post_json("/api/jobs", &export(&room, "json"), Some(token)).await;
    assert!(refused.headers().contains_key("retry-after"));
    problem(refused, 429).await;
    // The limit is per user; and a finished job no longer counts.
    start_export(&app, &other.access_token, &room, "json").await;
    job_rows::fail(db, busy.id, "gave up").await.expect("the job is failed");
    let job_id = start_export(&app, token, &room, "json").await;
    assert_eq!(poll_until_finished(&app, token, job_id).await.state, JobState::Done);
}

#[tokio::test]
async fn an_export_outlives_the_socket_that_watched_it() {
    let app = spawn_app().await;
    let (owner, mut ws) = app.user_online("ann").await;
    let (room, ids) = seed_room(&app, &owner, 3_000, |i| format!("m{i}")).await;
    let job_id = start_export(&app, &owner.access_token, &room, "json").await;
    ws.ok(JobSubscribeParams { job_id }).await;
    ws.close().await;
    drop(ws);

    let job = poll_until_finished(&app, &owner.access_token, job_id).await;

    assert_eq!(job.state, JobState::Done);
    let mut back = app.ws(&owner.access_token).await;
    assert_eq!(back.ok(JobSubscribeParams { job_id }).await, job);
    let exported: Vec<Message> = body(download(&app, &owner.access_token, job_id).await).await;
    assert_eq!(exported.len(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_running_when_the_server_stops_is_failed_after_restart() {
    let mut app = spawn_app().await;
    let (owner, mut ws) = app.user_online("ann").await;
    let (room, _) = seed_room(&app, &owner, 20_000, |i| format!("message {i}")).await;
    let db = app.state().db.clone();
    // A job a crashed process left "running": no runner here knows it.
    let orphan = job_rows::create_export(&db, owner.user.id, job_rows::Export::Room(&room), &ExportFormat::Csv).await.expect("a job row");
    assert!(job_rows::start(&db, orphan.id).await.expect("the job starts"));
    let job_id = start_export(&app, &owner.access_token, &room, "json").await;
    let (_, first) = ws.next_among(&["job.progress", "job.finished"]).await;
    assert!(first["percent"].as_u64().is_some_and(|p| p < 100), "the export finished before the server stopped: {first}");

    app.stop().await;
    // What the stopped server left behind, before anything restarts.
    let stopped: Job = (&job_rows::by_id(&db, job_id).await.expect("a query").expect("the job")).into();
    app.restart().await;

    let interrupted = "interrupted by server shutdown";
    assert_eq!((stopped.state, stopped.error.as_deref()), (JobState::Failed, Some(interrupted)), "on shutdown");
    let after: Job = body(app.get(&format!("/api/jobs/{job_id}"), Some(&owner.access_token)).await).await;
    assert_eq!((after.state, after.error.as_deref()), (JobState::Failed, Some(interrupted)));
    assert!(after.finished_at.is_some());
    let orphaned: Job = body(app.get(&format!("/api/jobs/{}", orphan.id), Some(&owner.access_token)).await).await;
    assert_eq!((orphaned.state, orphaned.error.as_deref()), (JobState::Failed, Some(interrupted)), "after restart");
    problem(download(&app, &owner.access_token, job_id).await, 409).await;
    // No half-written file is left behind.
    for id in [job_id, orphan.id] {
        let left = confab::storage::exports::size(&db, id).await.expect("a query");
        assert_eq!(left, None, "chunks of job {id} left in the database");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_owner_connected_to_another_instance() {
    let Ok(redis) = std::env::var("CONFAB_TEST_REDIS_URL") else {
        eprintln!("skipped: needs CONFAB_TEST_REDIS_URL (source /tmp/confab-services/env)");
        return;
    };
    let secret = uuid::Uuid::new_v4().simple().to_string().repeat(2);
    let cluster = |config: &mut confab::config::Config| {
        config.redis_url = Some(redis.clone());
        config.jwt_secret = Some(secret.clone());
    };
    let a = spawn_app_with(cluster).await;
    let database_url = a.config.database_url();
    let b = spawn_app_with(|config| {
        cluster(config);
        config.database_url = Some(database_url);
    })
    .await;
    let owner = a.signup_and_login(&unique("ann")).await;
    let (room, ids) = seed_room(&a, &owner, 5_000, |i| format!("m{i}")).await;
    // Connected to B only; the job runs on A.
    let mut on_b = b.ws(&owner.access_token).await;
    on_b.ok(confab_shared::rpc::EchoParams { text: "ready".into() }).await;

    let job_id = start_export(&a, &owner.access_token, &room, "csv").await;
    let (progress, finished) = within("job.finished on the other instance", follow(&mut on_b, job_id)).await;

    assert_eq!(finished.state, JobState::Done, "{finished:?}");
    assert!(progress.windows(2).all(|w| w[0].percent < w[1].percent), "{progress:?}");
    let polled: Job = body(b.get(&format!("/api/jobs/{job_id}"), Some(&owner.access_token)).await).await;
    assert_eq!(polled.state, JobState::Done);
    let csv_text = text(download(&a, &owner.access_token, job_id).await).await;
    assert_eq!(csv::Reader::from_reader(csv_text.as_bytes()).records().count(), ids.len());
}
