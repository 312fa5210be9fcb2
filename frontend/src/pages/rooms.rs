//! The room picker: active rooms with their online counts; type a name to join or create.

use std::time::Duration;

use confab_shared::{CreateRoom, RoomSummary, validate};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;

use super::set_title;
use crate::api::rest;
use crate::components::form::{FormError, Toggle};
use crate::state::Chat;
use crate::util::{long_time, short_time};

/// Online counts change without notifications to non-members; poll while the picker is up.
const REFRESH_EVERY: Duration = Duration::from_secs(10);

#[component]
pub fn RoomsPage() -> impl IntoView {
    set_title("Rooms");
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let navigate = use_navigate();
    let name = RwSignal::new(String::new());
    let admin_only = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    if chat.socket.is_open() {
        spawn_local(chat.rooms.refresh());
    }
    if let Ok(poll) = set_interval_with_handle(
        move || {
            if chat.socket.is_open() {
                spawn_local(chat.rooms.refresh());
            }
        },
        REFRESH_EVERY,
    ) {
        on_cleanup(move || poll.clear());
    }

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let room = name.get_untracked().trim().trim_start_matches('#').to_owned();
        if let Err(why) = validate::room_name(&room) {
            error.set(Some(format!("Room name {why}.")));
            return;
        }
        error.set(None);
        let navigate = navigate.clone();
        let target = format!("/rooms/{room}");
        let restricted = admin_only.get_untracked() && session.is_admin();
        if !restricted {
            // Joining an unknown room creates it.
            navigate(&target, Default::default());
            return;
        }
        let Some(tokens) = session.tokens_untracked() else { return };
        busy.set(true);
        spawn_local(async move {
            let body = CreateRoom { name: room, admin_only: true };
            match rest::create_room(&tokens.access_token, &body).await {
                // 409: it exists already; joining it is what was asked for anyway.
                Ok(_) => navigate(&target, Default::default()),
                Err(err) if err.status == 409 => {
                    chat.toasts.info("That room already exists; joining it.");
                    navigate(&target, Default::default());
                }
                Err(err) => {
                    error.set(Some(err.message));
                    busy.set(false);
                }
            }
        });
    };

    let rooms = move || {
        let needle = name.get().trim().trim_start_matches('#').to_lowercase();
        let mut rooms: Vec<RoomSummary> =
            chat.rooms.list.with(|r| r.iter().filter(|r| r.name.to_lowercase().contains(&needle)).cloned().collect());
        // Busy rooms first, then by name.
        rooms.sort_by(|a, b| b.online.cmp(&a.online).then_with(|| a.name.cmp(&b.name)));
        rooms
    };

    view! {
        <section class="page">
            <header class="page-head">
                <h1>"Rooms"</h1>
                <p class="muted">"Pick a room, or type a name to start a new one."</p>
            </header>
            <form class="card join-form" on:submit=submit data-testid="room-form" novalidate>
                <label for="room-name">"Join or create a room"</label>
                <div class="row">
                    <span class="prefix" aria-hidden="true">"#"</span>
                    <input
                        id="room-name"
                        placeholder="lobby"
                        autocomplete="off"
                        autocapitalize="none"
                        spellcheck="false"
                        data-testid="room-name-input"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev))
                    />
                    <button type="submit" class="primary" data-testid="room-join-submit" disabled=move || busy.get()>
                        "Go"
                    </button>
                </div>
                <Show when=move || session.is_admin()>
                    <Toggle
                        testid="room-admin-only"
                        label="Admins only (create a room only admins can see and join)"
                        checked=admin_only
                    />
                </Show>
                <Show when=move || !session.is_logged_in()>
                    <p class="hint">"You can watch existing rooms. Log in to chat or create rooms."</p>
                </Show>
                <FormError error />
            </form>
            <Show
                when=move || chat.rooms.loaded.get()
                fallback=|| view! { <p class="muted">"Loading rooms…"</p> }
            >
                <ul class="list room-list" data-testid="room-list">
                    <For
                        each=rooms
                        key=|r| (r.name.clone(), r.online, r.unread, r.mentions, r.last_message_at, r.admin_only)
                        children=move |room| view! { <RoomRow room /> }
                    />
                </ul>
                <Show when=move || chat.rooms.list.with(Vec::is_empty)>
                    <p class="muted" data-testid="rooms-empty">"No rooms yet. Type a name above to open the first one."</p>
                </Show>
            </Show>
        </section>
    }
}

#[component]
fn RoomRow(room: RoomSummary) -> impl IntoView {
    let href = format!("/rooms/{}", room.name);
    let unread = room.unread.filter(|n| *n > 0);
    let mentions = room.mentions.filter(|n| *n > 0);
    view! {
        <li class="list-item room-item" data-testid="room-item" data-room=room.name.clone()>
            <a class="room-link" href=href>
                <span class="room-name">"#" {room.name.clone()}</span>
                {room
                    .admin_only
                    .then(|| {
                        view! {
                            <span class="badge admin" data-testid="room-admin-badge" title="Only admins can see and join">
                                "admins"
                            </span>
                        }
                    })}
                {unread
                    .map(|n| {
                        view! {
                            <span class="badge unread" data-testid="room-unread" aria-label=format!("{n} unread")>
                                {n}
                            </span>
                        }
                    })}
                {mentions
                    .map(|n| {
                        let label = if n == 1 { "1 mention".to_owned() } else { format!("{n} mentions") };
                        view! {
                            <span class="badge mention" data-testid="room-mentions" aria-label=label>
                                "@"
                                {n}
                            </span>
                        }
                    })}
                <span class="spacer"></span>
                {room
                    .last_message_at
                    .map(|at| {
                        view! {
                            <time class="muted small" datetime=at.to_string() title=long_time(at)>
                                {short_time(at)}
                            </time>
                        }
                    })}
                <span class="room-online" class:active={room.online > 0} data-testid="room-online-count" data-count=room.online.to_string()>
                    {format!("{} online", room.online)}
                </span>
            </a>
        </li>
    }
}
