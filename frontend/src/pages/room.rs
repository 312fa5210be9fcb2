//! One room: the log, who is here, who is typing, and the composer; the reader's "Quiet
//! room" toggle (no notification, no Web Push for a mention here); for those who run the
//! room, its settings panel, and moderation actions on messages and members.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;

use super::{InvalidAddress, set_title};
use crate::components::conversation::{ConversationPane, read_while_shown};
use crate::components::export::{ExportButton, ExportList};
use crate::components::message::{MessageItem, RoomDialog};
use crate::components::moderation::{Act, ActionDialog, ActionMenu, Ask, MenuItem};
use crate::components::room_settings::RoomSettingsPanel;
use crate::state::Chat;
use crate::state::conversation::Target;
use crate::state::room_state::{JoinStatus, Row, RoomState};
use confab_shared::moderation::{RoomRole, Sanction};
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
        let message = format!("“{name}” is not a valid room name: it {why}.");
        let back = ("/rooms", "Back to the rooms");
        return view! { <InvalidAddress testid="room-error" message back /> }.into_any();
    }
    let chat = expect_context::<Chat>();
    let state = chat.rooms.enter(&name);
    {
        let name = name.clone();
        on_cleanup(move || chat.rooms.exit(&name));
    }
    read_while_shown(Target::Room(state.clone()));

    // Beside the conversation on a wide screen; a panel to open on a phone.
    let members_open = RwSignal::new(!crate::util::narrow_screen());
    let settings_open = RwSignal::new(false);
    let ask = RwSignal::new(None::<Ask>);
    provide_context(RoomDialog(ask));
    let runs_room = {
        let state = state.clone();
        move || chat.session.is_logged_in() && state.rank(chat.session.is_admin()).moderates()
    };
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
        JoinStatus::Failed(why) => Some((why, None)),
        JoinStatus::Removed { why, rejoin_at } => Some((why, Some(rejoin_at))),
        _ => None,
    });
    let settings_state = state.clone();
    let quiet_state = state.clone();
    let body = {
        let state = state.clone();
        move || match refusal.get() {
            Some((why, None)) => view! {
                <div class="card error" role="alert" data-testid="room-error">
                    <p>{why}</p>
                    <p><a href="/rooms">"Back to the rooms"</a></p>
                </div>
            }
                .into_any(),
            Some((why, Some(rejoin_at))) => view! { <Removed state=state.clone() why rejoin_at /> }.into_any(),
            None => view! { <RoomBody state=state.clone() members_open /> }.into_any(),
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
                    <QuietToggle state=quiet_state.clone() />
                    <ExportButton room=export_room />
                </Show>
                <Show when=runs_room.clone()>
                    <button
                        class="secondary small"
                        data-testid="room-settings-button"
                        aria-controls="room-settings"
                        aria-expanded=move || settings_open.get().to_string()
                        on:click=move |_| settings_open.update(|o| *o = !*o)
                    >
                        "Room settings"
                    </button>
                </Show>
                <button
                    class="secondary small members-toggle"
                    aria-controls="room-members"
                    aria-expanded=move || members_open.get().to_string()
                    data-testid="members-toggle"
                    on:click=move |_| members_open.update(|o| *o = !*o)
                >
                    {move || if members_open.get() { "Hide members" } else { "Members" }}
                </button>
            </header>
            <ExportList room=export_room />
            <Show when={
                let runs_room = runs_room.clone();
                move || settings_open.get() && runs_room() && refusal.with(Option::is_none)
            }>
                <RoomSettingsPanel state=settings_state.clone() />
            </Show>
            {body}
            <ActionDialog ask />
        </section>
    }
    .into_any()
}

/// The bell in the room's header: pressed, the room is quiet for the reader (`room.set_quiet`).
/// The name stays "Quiet room" (a toggle button says its state with `aria-pressed`, which
/// style.css also draws as the bell); the tooltip says what pressing it means.
#[component]
fn QuietToggle(state: RoomState) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let summary = state.summary.clone();
    let quiet = Signal::derive(move || summary.with(|s| s.as_ref().is_some_and(|s| s.quiet)));
    let toggle = move |_| {
        let (state, to) = (state.clone(), !quiet.get_untracked());
        spawn_local(async move {
            if let Err(err) = chat.rooms.set_quiet(state, to).await {
                chat.report(&err);
            }
        });
    };
    view! {
        <button
            type="button"
            class="secondary small quiet-toggle"
            data-testid="room-quiet"
            aria-pressed=move || quiet.get().to_string()
            title="No notification or push for this room while pressed"
            on:click=toggle
        >
            // The bell is drawn by style.css from `aria-pressed`.
            "Quiet room"
        </button>
    }
}

/// In place of the room after a kick or a ban: why, and a "Rejoin" button once joining
/// may succeed again (at once after a kick; when a timed ban ends; never for a ban until
/// lifted, whose end only a reload or a moderator brings).
#[component]
fn Removed(state: RoomState, why: String, rejoin_at: Option<f64>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let wait = rejoin_at.map(|at| at - crate::util::now_ms());
    let may_rejoin = RwSignal::new(wait.is_some_and(|ms| ms <= 0.0));
    // Timers cannot wait longer than about 24 days; a longer ban shows the button after a reload.
    if let Some(ms) = wait.filter(|ms| *ms > 0.0 && *ms < 2_000_000_000.0) {
        set_timeout(move || may_rejoin.set(true), std::time::Duration::from_millis(ms as u64 + 50));
    }
    let button = NodeRef::<leptos::html::Button>::new();
    // The button takes focus as it appears, so a keyboard user is one Enter from the room.
    Effect::new(move |_| {
        if may_rejoin.get()
            && let Some(button) = button.get()
        {
            let _ = button.focus();
        }
    });
    view! {
        <div class="card error" role="alert" data-testid="room-removed">
            <p data-testid="room-removed-why">{why}</p>
            <p class="row">
                <Show when=move || may_rejoin.get()>
                    <button
                        type="button"
                        class="primary"
                        data-testid="room-rejoin"
                        node_ref=button
                        on:click={
                            let state = state.clone();
                            move |_| chat.rooms.join_again(state.clone())
                        }
                    >
                        "Rejoin"
                    </button>
                </Show>
                <a href="/rooms">"Back to the rooms"</a>
            </p>
        </div>
    }
}

#[component]
fn RoomBody(state: RoomState, members_open: RwSignal<bool>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let rows = {
        let state = state.clone();
        move || state.rows()
    };
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
        move |_| spawn_local(chat.rooms.more_members(state.clone()))
    };
    let item_state = state.clone();
    let menu_state = state.clone();

    view! {
        <div class="room-body">
            <ConversationPane target=Target::Room(state)>
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
            </ConversationPane>
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
                            let actions = (!me).then(|| member_actions(&menu_state, &member));
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
                                    {actions}
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

/// The menu on a member of the room: what the caller may do to them (mute or unmute, remove,
/// ban; appoint or remove as moderator for the owner and admins).
fn member_actions(state: &RoomState, member: &str) -> AnyView {
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let ask = expect_context::<RoomDialog>().0;
    let menu_id = format!("member-{member}-actions");
    let asking = {
        let (state, member, menu_id) = (state.clone(), member.to_owned(), menu_id.clone());
        move |act: Act| {
            let ask_for = Ask { act, user: member.clone(), room: state.wire_name(), return_to: menu_id.clone() };
            Callback::new(move |()| ask.set(Some(ask_for.clone())))
        }
    };
    let (kick, ban, mute) = (asking(Act::Kick), asking(Act::Ban), asking(Act::Mute));
    let set_role = |role: RoomRole| {
        let (state, member) = (state.clone(), member.to_owned());
        Callback::new(move |()| {
            let (state, member) = (state.clone(), member.clone());
            spawn_local(async move {
                match chat.rooms.set_role(state, member.clone(), role).await {
                    Ok(()) => chat.toasts.info(match role {
                        RoomRole::Moderator => format!("{member} is now a moderator."),
                        _ => format!("{member} is no longer a moderator."),
                    }),
                    Err(err) => chat.report(&err),
                }
            });
        })
    };
    let (appoint, dismiss) = (set_role(RoomRole::Moderator), set_role(RoomRole::Member));
    let unmute = {
        let (state, member) = (state.clone(), member.to_owned());
        Callback::new(move |()| {
            let (state, member) = (state.clone(), member.clone());
            spawn_local(async move {
                match chat.rooms.lift(state, Sanction::Muted, member.clone()).await {
                    Ok(()) => chat.toasts.info(format!("{member} may write again.")),
                    Err(err) => chat.report(&err),
                }
            });
        })
    };
    let items = {
        let (state, member) = (state.clone(), member.to_owned());
        Signal::derive(move || {
            let mine = state.rank(session.is_admin());
            let theirs = state.rank_of(&member);
            let mut items = Vec::new();
            if !session.is_logged_in() || !mine.may_act_on(theirs) {
                return items;
            }
            let item = |label: String, testid, danger, run| MenuItem { label, testid, danger, run };
            if state.is_muted(&member) {
                items.push(item(format!("Unmute {member}"), "unmute-button", false, unmute));
            } else {
                items.push(item(format!("Mute {member}"), "mute-button", true, mute));
            }
            items.push(item(format!("Remove {member} from the room"), "kick-button", true, kick));
            items.push(item(format!("Ban {member}"), "ban-button", true, ban));
            if mine.owns() {
                match theirs {
                    crate::state::moderation::Rank::Moderator => items.push(item("Remove as moderator".into(), "dismiss-moderator", false, dismiss)),
                    _ => items.push(item("Make moderator".into(), "appoint-moderator", false, appoint)),
                }
            }
            items
        })
    };
    view! { <ActionMenu id=menu_id label=format!("Actions for {member}") testid="member-menu" items /> }.into_any()
}
