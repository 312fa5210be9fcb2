//! `/moderation`, for admins: the reports queue (open or resolved; resolve one with what was
//! done and a note), the audit log (filtered by actor, target, room and action) and the
//! accounts suspended now (suspend one, lift a suspension).
//!
//! Everything is REST with the session's access token; each list pages with the server's
//! cursor behind a "More" button, and an answer for an older question (the filters or the
//! state changed meanwhile) is dropped.

use confab_shared::moderation::{AuditEntry, ModerationAction, Report, ResolveReport, SanctionRequest, SuspendedAccount};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{LoginPrompt, set_title};
use crate::api::rest::{self, ApiError};
use crate::components::form::FormError;
use crate::components::paged::{Paged, list_footer};
use crate::session::Session;
use crate::state::moderation::DURATIONS;
use crate::state::{Chat, REFRESH_MARGIN_MS};
use crate::util::{long_time, short_time};

/// What a resolution can record (the server takes any short word; these are the usual ones).
const RESOLUTIONS: [&str; 6] = ["dismissed", "deleted", "warned", "muted", "kicked", "banned"];

/// A labelled one-line text box bound to `value`; `id` is also its test id.
fn text_field(id: &'static str, label: &'static str, value: RwSignal<String>) -> AnyView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type="text"
                autocapitalize="none"
                spellcheck="false"
                maxlength="500"
                data-testid=id
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
        </div>
    }
    .into_any()
}

/// The access token for a REST call of the page.
async fn token(session: Session) -> Result<String, ApiError> {
    session.access_token(REFRESH_MARGIN_MS).await
}

#[component]
pub fn ModerationPage() -> impl IntoView {
    set_title("Moderation");
    let session = expect_context::<Chat>().session;
    view! {
        <section class="page moderation-page" data-testid="moderation-page">
            <header class="page-head">
                <h1>"Moderation"</h1>
                <p class="muted">"Reports from members, the record of every moderation action, and suspended accounts."</p>
            </header>
            <Show
                when=move || session.is_admin()
                fallback=move || {
                    if session.is_logged_in() {
                        view! { <p class="card error" role="alert" data-testid="moderation-forbidden">"Only admins can see this page."</p> }.into_any()
                    } else {
                        view! { <LoginPrompt what="to moderate" /> }.into_any()
                    }
                }
            >
                <ReportsSection />
                <AuditSection />
                <SuspensionsSection />
            </Show>
        </section>
    }
}

#[component]
fn ReportsSection() -> impl IntoView {
    let list = Paged::<Report>::new();
    let state = RwSignal::new(String::from("open"));
    let load = move |more: bool| {
        let asked = state.get_untracked();
        list.load(more, move |token, cursor| async move {
            rest::reports(&token, &asked, &cursor).await.map(|page| (page.reports, page.next_cursor))
        });
    };
    load(false);
    view! {
        <section class="settings-section" aria-labelledby="reports-heading" data-testid="reports-section">
            <h2 id="reports-heading">"Reports"</h2>
            <div class="field inline">
                <label for="reports-state">"Show"</label>
                <select
                    id="reports-state"
                    data-testid="reports-state"
                    on:change=move |ev| {
                        state.set(event_target_value(&ev));
                        load(false);
                    }
                >
                    <option value="open">"Open reports"</option>
                    <option value="resolved">"Resolved reports"</option>
                </select>
            </div>
            <ul class="plain-list" data-testid="reports">
                {move || list.items.get().into_iter().map(|report| view! { <ReportItem report list /> }).collect_view()}
            </ul>
            {list_footer(list, "reports", "No reports here.", move || load(true))}
        </section>
    }
}

#[component]
fn ReportItem(report: Report, list: Paged<Report>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let id = report.id;
    let message = &report.message;
    let text = if message.deleted { "(deleted)".to_owned() } else { message.text.clone() };
    let resolution = report.resolved_by.clone().map(|by| {
        let what = report.resolution.clone().unwrap_or_default();
        let note = report.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        view! { <p data-testid="report-resolution">{format!("Resolved by {by}: {what}{note}")}</p> }
    });
    let action = RwSignal::new(String::from(RESOLUTIONS[0]));
    let note = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let resolve = move |ev: SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        let body = ResolveReport {
            action: action.get_untracked(),
            note: Some(note.get_untracked()).filter(|n| !n.trim().is_empty()),
        };
        spawn_local(async move {
            let done = async { rest::resolve_report(&token(chat.session).await?, id, &body).await }.await;
            busy.set(false);
            match done {
                Ok(_) => {
                    list.items.update(|items| items.retain(|r| r.id != id));
                    chat.toasts.info(format!("Report {id} resolved: {}.", body.action));
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    let open = report.resolved_by.is_none();
    let state = if open { "open" } else { "resolved" };
    view! {
        <li class="card report" data-testid="report" data-id=id.to_string() data-state=state>
            <p class="muted">
                {format!("#{} · {} · {}", message.room, message.author, short_time(message.sent_at))}
            </p>
            <blockquote class="excerpt" data-testid="report-message">{text}</blockquote>
            <p data-testid="report-reason">
                {format!("Reported by {} {}: {}", report.reporter, short_time(report.created_at), report.reason)}
            </p>
            {resolution}
            <Show when=move || open>
                <form class="row wrap" data-testid="report-resolve-form" on:submit=resolve>
                    <label class="sr-only" for=format!("report-{id}-action")>"What was done"</label>
                    <select
                        id=format!("report-{id}-action")
                        data-testid="report-action"
                        on:change=move |ev| action.set(event_target_value(&ev))
                    >
                        {RESOLUTIONS.iter().map(|r| view! { <option value=*r>{*r}</option> }).collect_view()}
                    </select>
                    <label class="sr-only" for=format!("report-{id}-note")>"Note for the other moderators"</label>
                    <input
                        id=format!("report-{id}-note")
                        type="text"
                        maxlength="500"
                        placeholder="Note (optional)"
                        data-testid="report-note"
                        prop:value=move || note.get()
                        on:input=move |ev| note.set(event_target_value(&ev))
                    />
                    <button type="submit" class="primary small" data-testid="report-resolve" disabled=move || busy.get()>
                        "Resolve"
                    </button>
                </form>
                <FormError error />
            </Show>
        </li>
    }
}

#[component]
fn AuditSection() -> impl IntoView {
    let list = Paged::<AuditEntry>::new();
    let actor = RwSignal::new(String::new());
    let target = RwSignal::new(String::new());
    let room = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let load = move |more: bool| {
        let filters = [actor, target, room, action].map(|f| f.get_untracked().trim().to_owned());
        list.load(more, move |token, cursor| async move {
            let [actor, target, room, action] = &filters;
            let named = [("actor", actor.as_str()), ("target", target.as_str()), ("room", room.as_str()), ("action", action.as_str())];
            rest::audit(&token, &named, &cursor).await.map(|page| (page.entries, page.next_cursor))
        });
    };
    load(false);
    view! {
        <section class="settings-section" aria-labelledby="audit-heading" data-testid="audit-section">
            <h2 id="audit-heading">"Audit log"</h2>
            <form
                class="row wrap filters"
                data-testid="audit-filters"
                on:submit=move |ev: SubmitEvent| {
                    ev.prevent_default();
                    load(false);
                }
            >
                {text_field("audit-actor", "Who", actor)}
                {text_field("audit-target", "To whom", target)}
                {text_field("audit-room", "Room", room)}
                <div class="field">
                    <label for="audit-action">"Action"</label>
                    <select id="audit-action" data-testid="audit-action" on:change=move |ev| action.set(event_target_value(&ev))>
                        <option value="">"Any"</option>
                        {ModerationAction::ALL
                            .iter()
                            .map(|a| view! { <option value=a.as_str()>{a.as_str().replace('_', " ")}</option> })
                            .collect_view()}
                    </select>
                </div>
                <button type="submit" class="secondary" data-testid="audit-apply">"Filter"</button>
            </form>
            <div class="table-wrap">
                <table class="settings-table" data-testid="audit-log">
                    <thead>
                        <tr>
                            <th scope="col">"When"</th>
                            <th scope="col">"Who"</th>
                            <th scope="col">"Action"</th>
                            <th scope="col">"To whom"</th>
                            <th scope="col">"Room"</th>
                            <th scope="col">"Reason"</th>
                            <th scope="col">"Detail"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || {
                            list.items.get().into_iter().map(|e| {
                                view! {
                                    <tr data-testid="audit-row" data-action=e.action.as_str()>
                                        <td title=long_time(e.at)>{short_time(e.at)}</td>
                                        <td>{e.actor}</td>
                                        <td>{e.action.as_str().replace('_', " ")}</td>
                                        <td>{e.target}</td>
                                        <td>{e.room}</td>
                                        <td>{e.reason}</td>
                                        <td>{e.detail}</td>
                                    </tr>
                                }
                            }).collect_view()
                        }}
                    </tbody>
                </table>
            </div>
            {list_footer(list, "audit", "Nothing recorded matches.", move || load(true))}
        </section>
    }
}

#[component]
fn SuspensionsSection() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let list = Paged::<SuspendedAccount>::new();
    let load = move |more: bool| {
        list.load(more, |token, cursor| async move {
            rest::suspensions(&token, &cursor).await.map(|page| (page.suspensions, page.next_cursor))
        });
    };
    load(false);
    let username = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let duration = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let suspend = move |ev: SubmitEvent| {
        ev.prevent_default();
        let who = username.get_untracked().trim().to_owned();
        if who.is_empty() {
            return error.set(Some("Type the username of the account to suspend.".into()));
        }
        let body = SanctionRequest {
            reason: Some(reason.get_untracked()).filter(|r| !r.trim().is_empty()),
            duration_secs: duration.get_untracked().parse().ok(),
        };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let done = async { rest::suspend(&token(chat.session).await?, &who, &body).await }.await;
            busy.set(false);
            match done {
                Ok(s) => {
                    username.set(String::new());
                    reason.set(String::new());
                    chat.toasts.info(format!("{} is suspended.", s.username));
                    load(false);
                }
                Err(err) => error.set(Some(err.message)),
            }
        });
    };
    let lift = move |who: String| {
        spawn_local(async move {
            match async { rest::unsuspend(&token(chat.session).await?, &who).await }.await {
                Ok(_) => {
                    list.items.update(|items| items.retain(|s| s.username != who));
                    chat.toasts.info(format!("{who} may log in again."));
                }
                Err(err) => chat.toasts.error(format!("Could not lift the suspension: {err}")),
            }
        });
    };
    view! {
        <section class="settings-section" aria-labelledby="suspensions-heading" data-testid="suspensions-section">
            <h2 id="suspensions-heading">"Suspended accounts"</h2>
            <p class="muted">"A suspended account is logged out everywhere and cannot log in or use its API tokens until the suspension ends or is lifted. Nothing of theirs is deleted."</p>
            <form class="row wrap filters" data-testid="suspend-form" on:submit=suspend>
                {text_field("suspend-username", "Username", username)}
                {text_field("suspend-reason", "Reason (shown to them)", reason)}
                <div class="field">
                    <label for="suspend-duration">"For how long"</label>
                    <select id="suspend-duration" data-testid="suspend-duration" on:change=move |ev| duration.set(event_target_value(&ev))>
                        {DURATIONS
                            .iter()
                            .rev()
                            .map(|(label, secs)| view! { <option value=secs.map(|s| s.to_string()).unwrap_or_default()>{*label}</option> })
                            .collect_view()}
                    </select>
                </div>
                <button type="submit" class="primary danger" data-testid="suspend-submit" disabled=move || busy.get()>
                    "Suspend"
                </button>
            </form>
            <FormError error />
            <div class="table-wrap">
                <table class="settings-table" data-testid="suspensions">
                    <thead>
                        <tr>
                            <th scope="col">"Account"</th>
                            <th scope="col">"Reason"</th>
                            <th scope="col">"Until"</th>
                            <th scope="col">"By"</th>
                            <th scope="col">"Since"</th>
                            <th scope="col" class="actions">
                                <span class="sr-only">"Actions"</span>
                            </th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || {
                            list.items.get().into_iter().map(|s| {
                                let who = s.username.clone();
                                view! {
                                    <tr data-testid="suspension" data-username=s.username.clone()>
                                        <td>{s.username.clone()}</td>
                                        <td>{s.reason}</td>
                                        <td>{s.until.map_or_else(|| "until lifted".to_owned(), short_time)}</td>
                                        <td>{s.by}</td>
                                        <td title=long_time(s.at)>{short_time(s.at)}</td>
                                        <td class="actions">
                                            <button
                                                type="button"
                                                class="secondary small"
                                                data-testid="unsuspend-button"
                                                aria-label=format!("Lift {}'s suspension", s.username)
                                                on:click=move |_| lift(who.clone())
                                            >
                                                "Lift"
                                            </button>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()
                        }}
                    </tbody>
                </table>
            </div>
            {list_footer(list, "suspensions", "No account is suspended.", move || load(true))}
        </section>
    }
}
