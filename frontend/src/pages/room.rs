//! One room: the log, who is here, who is typing, and the composer.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;

use super::{LoginPrompt, set_title};
use crate::api::socket::ConnState;
use crate::components::composer::Composer;
use crate::components::export::{ExportButton, ExportList};
use crate::components::message::{MessageItem, PendingItem};
use crate::components::scroll_log::ScrollLog;
use crate::components::typing::TypingIndicator;
use crate::state::Chat;
use crate::state::room::{JoinStatus, Row, RoomState};
use crate::util::page_visible;
use confab_shared::validate;

/// The route: re-creates the room view when the name in the address changes.
#[component]
pub fn RoomPage() -> impl IntoView {
    let params = use_params_map();
    let name = Memo::new(move |_| params.with(|p| p.get("room").unwrap_or_default()));
    move || {
        let name = name.get();
        view! { <RoomView name /> }
    }
}

#[component]
fn RoomView(name: String) -> impl IntoView {
    set_title(&format!("#{name}"));
    if let Err(why) = validate::room_name(&name) {
        return view! {
            <section class="page narrow">
                <div class="card error" role="alert" data-testid="room-error">
                    {format!("“{name}” is not a valid room name: it {why}.")}
                    " "
                    <a href="/rooms">"Back to the rooms"</a>
                </div>
            </section>
        }
            .into_any();
    }
    let chat = expect_context::<Chat>();
    let state = chat.enter_room(&name);
    {
        let name = name.clone();
        on_cleanup(move || chat.exit_room(&name));
    }

    // Reading the room moves the read cursor, so unread counts elsewhere stay true.
    {
        let state = state.clone();
        Effect::new(move |_| {
            state.messages.track();
            if state.status.get() == JoinStatus::Joined && page_visible() {
                chat.mark_room_read(&state);
            }
        });
    }

    let members_open = RwSignal::new(false);
    let status = state.status.clone();
    let summary = state.summary.clone();
    let online_total = state.online_total.clone();
    let online_count = move || online_total.get();
    let admin_only = {
        let summary = summary.clone();
        move || summary.with(|s| s.as_ref().is_some_and(|s| s.admin_only))
    };
    // Exports name the room as the server spells it.
    let export_room = {
        let (summary, name) = (summary.clone(), name.clone());
        Signal::derive(move || summary.with(|s| s.as_ref().map_or_else(|| name.clone(), |s| s.name.clone())))
    };

    // A memo, so that re-joining after a reconnect (status set to Joined again) does not
    // rebuild the body and lose the scroll position and the half-typed message.
    let refusal = Memo::new(move |_| match status.get() {
        JoinStatus::Failed(why) => Some(why),
        _ => None,
    });
    let body = {
        let state = state.clone();
        let name = name.clone();
        move || match refusal.get() {
            Some(why) => view! {
                <div class="card error" role="alert" data-testid="room-error">
                    <p>{why}</p>
                    <p><a href="/rooms">"Back to the rooms"</a></p>
                </div>
            }
                .into_any(),
            None => view! { <RoomBody state=state.clone() name=name.clone() members_open /> }.into_any(),
        }
    };

    view! {
        <section class="page room-page" data-testid="room-page" data-room=name.clone()>
            <header class="page-head room-head">
                <h1>
                    <span class="muted">"#"</span>
                    {name.clone()}
                    <Show when=admin_only>
                        <span class="badge admin" title="Only admins can see and join">"admins"</span>
                    </Show>
                </h1>
                <span class="muted" data-testid="room-online-total">
                    {move || format!("{} online", online_count())}
                </span>
                <span class="spacer"></span>
                <Show when=move || chat.session.is_logged_in()>
                    <ExportButton room=export_room />
                </Show>
                <button
                    class="secondary small members-toggle"
                    aria-controls="room-members"
                    aria-expanded=move || members_open.get().to_string()
                    on:click=move |_| members_open.update(|o| *o = !*o)
                >
                    "Members"
                </button>
            </header>
            <ExportList room=export_room />
            {body}
        </section>
    }
    .into_any()
}

#[component]
fn RoomBody(state: RoomState, name: String, members_open: RwSignal<bool>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let session = chat.session;

    let rows = {
        let state = state.clone();
        move || state.rows()
    };
    let revision = {
        let state = state.clone();
        Signal::derive(move || {
            let newest = state.messages.with(|m| m.last().map_or(0, |i| i.id));
            let shown = state.messages.with(Vec::len).min(state.window.get());
            let extra = state.events.with(Vec::len) + state.pending.with(Vec::len);
            (shown + extra, newest)
        })
    };
    let can_load_earlier = {
        let state = state.clone();
        Signal::derive(move || state.can_load_earlier())
    };
    let loading_earlier = {
        let loading = state.loading_earlier.clone();
        Signal::derive(move || loading.get())
    };
    let on_load_earlier = {
        let state = state.clone();
        Callback::new(move |()| spawn_local(chat.load_earlier(state.clone())))
    };
    let empty = {
        let state = state.clone();
        move || state.messages.with(Vec::is_empty) && state.pending.with(Vec::is_empty)
    };
    let joining = {
        let status = state.status.clone();
        move || status.get() == JoinStatus::Joining
    };
    let pending = {
        let pending = state.pending.clone();
        move || pending.get()
    };
    let on_retry = {
        let state = state.clone();
        Callback::new(move |nonce: String| chat.retry_room(&state, &nonce))
    };
    let on_discard = {
        let pending = state.pending.clone();
        Callback::new(move |nonce: String| Chat::discard_pending(&pending, &nonce))
    };
    let on_send = {
        let state = state.clone();
        Callback::new(move |text: String| chat.send_to_room(&state, &text))
    };
    let on_typing = {
        let state = state.clone();
        Callback::new(move |()| chat.typing(&state))
    };
    let offline = Signal::derive(move || chat.socket.state() != ConnState::Connected);
    let members = {
        let online = state.online.clone();
        move || online.get().into_iter().collect::<Vec<_>>()
    };
    let more_members = {
        let cursor = state.members_cursor.clone();
        move || cursor.with(Option::is_some)
    };
    let load_more = {
        let state = state.clone();
        move |_| spawn_local(chat.more_members(state.clone()))
    };
    let item_state = state.clone();

    view! {
        <div class="room-body">
            <div class="room-main">
                <ScrollLog
                    label=format!("Messages in #{name}")
                    revision
                    can_load_earlier
                    loading_earlier
                    on_load_earlier
                >
                    <Show when=empty.clone()>
                        <p class="log-empty muted" data-testid="log-empty">
                            {
                                let joining = joining.clone();
                                move || if joining() { "Joining…" } else { "No messages yet. Say hello!" }
                            }
                        </p>
                    </Show>
                    <ol class="messages">
                        <For
                            each=rows
                            key=Row::key
                            children=move |row| match row {
                                Row::Msg(item) => view! { <MessageItem item state=item_state.clone() /> }.into_any(),
                                Row::Event(line) => view! {
                                    <li class="event" data-testid="room-event">
                                        {line.text}
                                    </li>
                                }
                                    .into_any(),
                            }
                        />
                        <For
                            each=pending
                            key=|p| (p.nonce.clone(), p.failed.clone())
                            children=move |p| view! { <PendingItem pending=p on_retry on_discard /> }
                        />
                    </ol>
                </ScrollLog>
                <TypingIndicator state=state.clone() />
                <Show
                    when=move || session.is_logged_in()
                    fallback=|| view! { <LoginPrompt what="to chat in this room" /> }
                >
                    <Composer
                        label=format!("Message #{name}")
                        placeholder=format!("Message #{name}   (/pm user text for a private message)")
                        on_send
                        on_typing
                        offline
                    />
                </Show>
            </div>
            <aside
                id="room-members"
                class="members"
                class:open=move || members_open.get()
                aria-label="People in this room"
            >
                <h2>"In this room"</h2>
                <ul class="member-list" data-testid="room-members">
                    <For
                        each=members.clone()
                        key=|n| n.clone()
                        children=move |member| {
                            let me = session.is_me_untracked(&member);
                            view! {
                                <li class="member" data-testid="room-member" data-username=member.clone()>
                                    <span class="presence-dot online" aria-hidden="true"></span>
                                    {if me {
                                        view! { <span>{member.clone()} " (you)"</span> }.into_any()
                                    } else {
                                        view! {
                                            <a href=format!("/dm/{member}") aria-label=format!("Message {member}")>
                                                {member.clone()}
                                            </a>
                                        }
                                            .into_any()
                                    }}
                                </li>
                            }
                        }
                    />
                </ul>
                <Show when=more_members.clone()>
                    <button class="secondary small" data-testid="room-members-more" on:click=load_more.clone()>
                        "More people"
                    </button>
                </Show>
            </aside>
        </div>
    }
}
