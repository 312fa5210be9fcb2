//! A room's settings panel, for those who run it: slow mode (owner, moderators, admins),
//! retention and the moderators (owner and admins), and the bans and mutes in force, each
//! with a "Lift" button. Changes go through the socket (`room.configure`, `room.set_role`,
//! `room.unban`, `room.unmute`) and the room summary on screen follows the answers; the
//! bans and mutes are paged over REST (`GET /api/rooms/{room}/bans`, `.../mutes`), read
//! afresh each time the panel opens.

use confab_shared::moderation::{MAX_RETENTION_DAYS, MAX_SLOW_MODE_SECS, RoomRole, RoomSanction, Sanction};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::rest;
use crate::components::form::FormError;
use crate::components::paged::{Paged, list_footer};
use crate::state::Chat;
use crate::state::room_state::RoomState;
use crate::util::{describe, long_time, short_time};

/// Reads a whole number from a field, within `0..=max`.
fn whole(text: &str, max: u32, what: &str) -> Result<u32, String> {
    text.trim().parse::<u32>().ok().filter(|n| *n <= max).ok_or_else(|| format!("{what} must be a whole number from 0 to {max}."))
}

/// A labelled whole-number box from 0 to `max`, bound to `value`; `id` is also its test id.
fn number_field(id: &'static str, label: &'static str, max: u32, value: RwSignal<String>) -> AnyView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type="number"
                min="0"
                max=max.to_string()
                inputmode="numeric"
                data-testid=id
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
        </div>
    }
    .into_any()
}

#[component]
pub fn RoomSettingsPanel(state: RoomState) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let owns = {
        let state = state.clone();
        move || state.rank(session.is_admin()).owns()
    };
    let current = {
        let state = state.clone();
        move || state.summary.with(|s| s.as_ref().map(|s| (s.slow_mode_secs, s.retention_days)))
    };
    let slow = RwSignal::new(String::new());
    let retention = RwSignal::new(String::new());
    // The fields start from the room's settings, and follow them after a save.
    Effect::new({
        let current = current.clone();
        move |_| {
            if let Some((secs, days)) = current() {
                slow.set(secs.to_string());
                retention.set(days.unwrap_or(0).to_string());
            }
        }
    });
    let settings_error = RwSignal::new(None::<String>);
    let saved = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let save = {
        let (state, owns) = (state.clone(), owns.clone());
        move |ev: SubmitEvent| {
            ev.prevent_default();
            settings_error.set(None);
            saved.set(None);
            let secs = match whole(&slow.get_untracked(), MAX_SLOW_MODE_SECS, "Slow mode") {
                Ok(secs) => secs,
                Err(why) => return settings_error.set(Some(why)),
            };
            let days = if owns() {
                match whole(&retention.get_untracked(), MAX_RETENTION_DAYS, "Retention") {
                    Ok(days) => Some(days),
                    Err(why) => return settings_error.set(Some(why)),
                }
            } else {
                None
            };
            busy.set(true);
            let state = state.clone();
            spawn_local(async move {
                match chat.rooms.configure(state, Some(secs), days).await {
                    Ok(_) => saved.set(Some("Saved.".into())),
                    Err(err) => settings_error.set(Some(describe(&err))),
                }
                busy.set(false);
            });
        }
    };

    let moderators = {
        let state = state.clone();
        Signal::derive(move || state.summary.with(|s| s.as_ref().map(|s| s.moderators.clone()).unwrap_or_default()))
    };
    let appointee = RwSignal::new(String::new());
    let roles_error = RwSignal::new(None::<String>);
    let roles_busy = RwSignal::new(false);
    let set_role = {
        let state = state.clone();
        move |user: String, role: RoomRole| {
            roles_error.set(None);
            roles_busy.set(true);
            let state = state.clone();
            spawn_local(async move {
                match chat.rooms.set_role(state, user.clone(), role).await {
                    Ok(()) => {
                        if role == RoomRole::Moderator {
                            appointee.set(String::new());
                        }
                        let what = if role == RoomRole::Moderator { "is now a moderator" } else { "is no longer a moderator" };
                        chat.toasts.info(format!("{user} {what}."));
                    }
                    Err(err) => roles_error.set(Some(describe(&err))),
                }
                roles_busy.set(false);
            });
        }
    };
    let appoint = {
        let set_role = set_role.clone();
        move |ev: SubmitEvent| {
            ev.prevent_default();
            let user = appointee.get_untracked().trim().to_owned();
            if user.is_empty() {
                return roles_error.set(Some("Type the username of the person to appoint.".into()));
            }
            set_role(user, RoomRole::Moderator);
        }
    };
    let owner = {
        let state = state.clone();
        move || state.summary.with(|s| s.as_ref().and_then(|s| s.owner.clone()))
    };

    view! {
        <section id="room-settings" class="card room-settings" aria-labelledby="room-settings-heading" data-testid="room-settings">
            <h2 id="room-settings-heading">"Room settings"</h2>
            <p class="muted">
                {move || match owner() {
                    Some(owner) => format!("Owner: {owner}."),
                    None => "This room has no owner: admins run it.".to_owned(),
                }}
            </p>
            <form class="form settings-form" data-testid="room-settings-form" on:submit=save>
                {number_field("slow-mode-input", "Slow mode (seconds between a member's messages; 0 is off)", MAX_SLOW_MODE_SECS, slow)}
                <Show when=owns.clone()>
                    {number_field("retention-input", "Keep messages for (days; 0 is the server's default)", MAX_RETENTION_DAYS, retention)}
                </Show>
                <FormError error=settings_error />
                <div class="row">
                    <button type="submit" class="primary" data-testid="room-settings-save" disabled=move || busy.get()>
                        "Save settings"
                    </button>
                    <span class="muted" role="status" data-testid="room-settings-saved">{move || saved.get()}</span>
                </div>
            </form>
            <Show when=owns>
                <h3>"Moderators"</h3>
                <ul class="plain-list" data-testid="room-moderators">
                    {
                        let set_role = set_role.clone();
                        move || {
                            moderators
                                .get()
                                .into_iter()
                                .map(|name| {
                                    let set_role = set_role.clone();
                                    let user = name.clone();
                                    view! {
                                        <li class="row" data-testid="room-moderator" data-username=name.clone()>
                                            <span>{name.clone()}</span>
                                            <button
                                                type="button"
                                                class="secondary small danger"
                                                data-testid="moderator-remove"
                                                aria-label=format!("Remove {name} as moderator")
                                                disabled=move || roles_busy.get()
                                                on:click=move |_| set_role(user.clone(), RoomRole::Member)
                                            >
                                                "Remove"
                                            </button>
                                        </li>
                                    }
                                })
                                .collect_view()
                        }
                    }
                </ul>
                <Show when=move || moderators.with(Vec::is_empty)>
                    <p class="muted" data-testid="room-moderators-empty">"No moderators yet."</p>
                </Show>
                <form class="row" data-testid="moderator-form" on:submit=appoint.clone()>
                    <label class="sr-only" for="moderator-input">"Username to appoint as moderator"</label>
                    <input
                        id="moderator-input"
                        type="text"
                        autocomplete="off"
                        autocapitalize="none"
                        spellcheck="false"
                        placeholder="username"
                        data-testid="moderator-input"
                        prop:value=move || appointee.get()
                        on:input=move |ev| appointee.set(event_target_value(&ev))
                    />
                    <button type="submit" class="secondary" data-testid="moderator-add" disabled=move || roles_busy.get()>
                        "Appoint moderator"
                    </button>
                </form>
                <FormError error=roles_error />
            </Show>
            <SanctionList state=state.clone() kind=Sanction::Banned />
            <SanctionList state=state.clone() kind=Sanction::Muted />
        </section>
    }
}

/// The bans (`kind` `Banned`) or mutes in force in the room, newest first, each with a
/// "Lift" button; `{bans,mutes}` name its test ids.
#[component]
fn SanctionList(state: RoomState, kind: Sanction) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let (what, heading, empty, lifted) = match kind {
        Sanction::Banned => ("bans", "Banned", "Nobody is banned from this room.", "may join the room again"),
        _ => ("mutes", "Muted", "Nobody is muted in this room.", "may write again"),
    };
    let list = Paged::<RoomSanction>::new();
    let load = {
        let state = state.clone();
        move |more: bool| {
            let room = state.wire_name();
            list.load(more, move |token, cursor| async move {
                rest::room_sanctions(&token, &room, what, &cursor, "").await.map(|page| (page.sanctions, page.next_cursor))
            });
        }
    };
    load(false);
    let lift = move |user: String| {
        let state = state.clone();
        spawn_local(async move {
            match chat.rooms.lift(state, kind, user.clone()).await {
                Ok(()) => {
                    list.items.update(|items| items.retain(|s| s.user != user));
                    chat.toasts.info(format!("{user} {lifted}."));
                }
                Err(err) => chat.toasts.error(format!("Could not lift it: {}", describe(&err))),
            }
        });
    };
    let heading_id = format!("room-{what}-heading");
    view! {
        <h3 id=heading_id.clone()>{heading}</h3>
        <div class="table-wrap">
            <table class="settings-table" aria-labelledby=heading_id data-testid=format!("room-{what}")>
                <thead>
                    <tr>
                        <th scope="col">"Who"</th>
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
                        let lift = lift.clone();
                        list.items
                            .get()
                            .into_iter()
                            .map(|s| {
                                let (lift, who) = (lift.clone(), s.user.clone());
                                view! {
                                    <tr data-testid="room-sanction" data-username=s.user.clone()>
                                        <td>{s.user.clone()}</td>
                                        <td>{s.reason}</td>
                                        <td>{s.until.map_or_else(|| "until lifted".to_owned(), short_time)}</td>
                                        <td>{s.by}</td>
                                        <td title=long_time(s.at)>{short_time(s.at)}</td>
                                        <td class="actions">
                                            <button
                                                type="button"
                                                class="secondary small"
                                                data-testid="room-sanction-lift"
                                                aria-label=format!("Lift {}'s {}", s.user, if what == "bans" { "ban" } else { "mute" })
                                                on:click=move |_| lift(who.clone())
                                            >
                                                "Lift"
                                            </button>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
        </div>
        {list_footer(list, what, empty, move || load(true))}
    }
}
