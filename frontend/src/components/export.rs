//! "Export history" for a room: starts an export job, shows its live progress, then offers
//! the file (fetched with the bearer token, linked as a `blob:` URL).

use confab_shared::ExportFormat;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::state::Chat;
use crate::state::jobs::human_size;

/// The button and format choice, for the room header.
#[component]
pub fn ExportButton(#[prop(into)] room: Signal<String>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let format = RwSignal::new(ExportFormat::Json);
    let busy = RwSignal::new(false);
    let start = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let room = room.get_untracked();
        let format = format.get_untracked();
        spawn_local(async move {
            chat.jobs.start(room, format).await;
            busy.set(false);
        });
    };
    view! {
        <div class="export-start" role="group" aria-label="Export history">
            <label class="sr-only" for="export-format">
                "Export format"
            </label>
            <select
                id="export-format"
                class="small"
                data-testid="export-format"
                on:change=move |ev| {
                    format.set(if event_target_value(&ev) == "csv" { ExportFormat::Csv } else { ExportFormat::Json });
                }
            >
                <option value="json">"JSON"</option>
                <option value="csv">"CSV"</option>
            </select>
            <button
                class="secondary small"
                data-testid="export-button"
                disabled=move || busy.get()
                on:click=start
            >
                "Export history"
            </button>
        </div>
    }
}

/// The exports of one room started from this tab: progress bar, then the download link.
#[component]
pub fn ExportList(#[prop(into)] room: Signal<String>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let mine = move || {
        let room = room.get();
        chat.jobs
            .exports
            .with(|all| all.iter().filter(|e| e.room.eq_ignore_ascii_case(&room)).map(|e| e.job_id).collect::<Vec<_>>())
    };
    view! {
        <Show when=move || !mine().is_empty()>
            <ul class="exports" aria-label="Exports">
                <For each=mine key=|id| *id let:job_id>
                    <ExportRow job_id />
                </For>
            </ul>
        </Show>
    }
}

#[component]
fn ExportRow(job_id: i64) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let export = Memo::new(move |_| chat.jobs.exports.with(|all| all.iter().find(|e| e.job_id == job_id).cloned()));
    let percent = move || export.with(|e| e.as_ref().map_or(0, |e| e.percent));
    let state = move || export.with(|e| e.as_ref().map_or("queued", |e| e.state_str()));
    let status = move || {
        export.with(|e| {
            let Some(e) = e else { return String::new() };
            match e.state_str() {
                "queued" => "Export queued…".to_owned(),
                "running" => match &e.detail {
                    Some(detail) => format!("Exporting… {}% ({detail})", e.percent),
                    None => format!("Exporting… {}%", e.percent),
                },
                "done" if e.fetching => "Export finished. Preparing the download…".to_owned(),
                "done" => match &e.file {
                    Some(file) => format!("Export ready ({}).", human_size(file.bytes)),
                    None => "Export finished.".to_owned(),
                },
                "expired" => "This export expired and its file was deleted. Export again.".to_owned(),
                _ => format!("Export failed: {}", e.error.clone().unwrap_or_else(|| "unknown error".into())),
            }
        })
    };
    let file = move || export.with(|e| e.as_ref().and_then(|e| e.file.clone()));
    let download_error =
        move || export.with(|e| e.as_ref().filter(|e| e.state_str() == "done").and_then(|e| e.error.clone()));
    view! {
        <li class="export" data-testid="export" data-job=job_id.to_string() data-state=state>
            <div class="export-line">
                <span class="export-status" data-testid="export-status" role="status" aria-live="polite">
                    {status}
                </span>
                {move || {
                    file()
                        .map(|file| {
                            view! {
                                <a
                                    class="button primary small"
                                    data-testid="export-download"
                                    href=file.url.clone()
                                    download=file.filename.clone()
                                >
                                    {format!("Download {}", file.filename)}
                                </a>
                            }
                        })
                }}
                {move || {
                    download_error()
                        .map(|why| {
                            view! {
                                <span class="error-text" role="alert">{why}</span>
                                <button
                                    class="link"
                                    data-testid="export-retry"
                                    on:click=move |_| spawn_local(chat.jobs.fetch(job_id))
                                >
                                    "Retry download"
                                </button>
                            }
                        })
                }}
                <button
                    class="icon"
                    aria-label="Dismiss export"
                    data-testid="export-dismiss"
                    on:click=move |_| chat.jobs.dismiss(job_id)
                >
                    "×"
                </button>
            </div>
            <progress
                class="export-progress"
                data-testid="export-progress"
                max="100"
                value=move || percent().to_string()
                aria-label="Export progress"
            >
                {move || format!("{}%", percent())}
            </progress>
        </li>
    }
}
