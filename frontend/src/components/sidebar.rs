//! The sidebar beside every page of a logged-in user, as chat products keep it: the rooms
//! they have joined and their private conversations, each with its unread count, the
//! current one marked, and the quick switcher's button. At phone width it is a drawer that
//! the top bar's "Conversations" button opens; following a link or Escape closes it.
//!
//! Unread counts of rooms without an open page change without notifications, so the list
//! is reloaded on every (re)connection, on every move to another page, and every
//! [`REFRESH_EVERY`] while the tab is visible.

use std::time::Duration;

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_location;

use crate::components::switcher::Switcher;
use crate::state::Chat;
use crate::util::{focus_by_id, page_visible};

/// How often the joined rooms' unread counts are reloaded while the tab is visible.
const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// Conversations the sidebar lists, newest first (the Messages page lists them all).
const CONVERSATIONS: usize = 30;

/// Whether the phone-width drawer is open; shared by the sidebar and the top bar's button.
#[derive(Clone, Copy)]
pub struct Drawer(pub RwSignal<bool>);

#[component]
pub fn Sidebar() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let Drawer(open) = expect_context::<Drawer>();
    let Switcher(switcher) = expect_context::<Switcher>();
    let path = use_location().pathname;

    Effect::new(move |_| {
        chat.connection_epoch.track();
        if chat.session.is_logged_in() && chat.socket.is_open() {
            spawn_local(chat.rooms.refresh_mine());
        }
    });
    if let Ok(poll) = set_interval_with_handle(
        move || {
            if page_visible() && chat.socket.is_open() {
                spawn_local(chat.rooms.refresh_mine());
            }
        },
        REFRESH_EVERY,
    ) {
        on_cleanup(move || poll.clear());
    }
    // Moving to another page closes the drawer and brings the counts up to date.
    Effect::new(move |first: Option<()>| {
        path.track();
        open.set(false);
        if first.is_some() && chat.socket.is_open() {
            spawn_local(chat.rooms.refresh_mine());
        }
    });

    let rooms = Signal::derive(move || {
        chat.rooms.mine.with(|rooms| rooms.iter().map(|r| Place { name: r.name.clone(), href: format!("/rooms/{}", r.name), unread: r.unread.unwrap_or(0) }).collect())
    });
    let conversations = Signal::derive(move || {
        chat.dms.index.with(|index| {
            let mut convos: Vec<_> = index.convos.values().collect();
            convos.sort_by_key(|c| std::cmp::Reverse(c.last_id));
            convos.iter().take(CONVERSATIONS).map(|c| Place { name: c.with.clone(), href: format!("/dm/{}", c.with), unread: c.unread.into() }).collect()
        })
    });
    let close_on_escape = move |ev: KeyboardEvent| {
        if ev.key() == "Escape" && open.get_untracked() {
            open.set(false);
            focus_by_id("drawer-toggle");
        }
    };

    view! {
        <nav
            id="sidebar"
            class="sidebar"
            class:open=move || open.get()
            aria-label="Rooms and conversations"
            data-testid="sidebar"
            on:keydown=close_on_escape
        >
            <button
                type="button"
                class="secondary small switcher-button"
                data-testid="switcher-button"
                aria-keyshortcuts="Control+K Meta+K"
                on:click=move |_| switcher.set(true)
            >
                "Jump to…"
                <kbd aria-hidden="true">"Ctrl K"</kbd>
            </button>
            <h2 id="sidebar-rooms">"Rooms"</h2>
            <PlaceList labelled_by="sidebar-rooms" places=rooms sigil="#" testid="sidebar-rooms" />
            <a class="sidebar-more" href="/rooms">
                "Browse rooms"
            </a>
            <h2 id="sidebar-dms">"Direct messages"</h2>
            <PlaceList labelled_by="sidebar-dms" places=conversations sigil="" testid="sidebar-dms" />
            <a class="sidebar-more" href="/online">
                "Find people"
            </a>
        </nav>
    }
}

/// A room or conversation the sidebar links to.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Place {
    name: String,
    href: String,
    unread: i64,
}

/// One of the sidebar's lists; the current page's entry is marked, unread counts are read
/// out as "N unread".
#[component]
fn PlaceList(labelled_by: &'static str, places: Signal<Vec<Place>>, sigil: &'static str, testid: &'static str) -> impl IntoView {
    let path = use_location().pathname;
    view! {
        <ul class="sidebar-list" aria-labelledby=labelled_by data-testid=testid>
            <For
                each=move || places.get()
                key=Place::clone
                children=move |place| {
                    let href = place.href.clone();
                    let current = move || path.with(|p| p.eq_ignore_ascii_case(&href)).then_some("page");
                    let unread = place.unread;
                    let name = place.name.clone();
                    view! {
                        <li>
                            <a href=place.href aria-current=current data-testid="sidebar-place" data-name=name>
                                <span class="sidebar-name">
                                    <span class="muted" aria-hidden="true">{sigil}</span>
                                    {place.name}
                                </span>
                                {(unread > 0).then(|| view! {
                                    <span class="badge unread" data-testid="sidebar-unread">
                                        <span aria-hidden="true">{unread}</span>
                                        <span class="sr-only">{format!(", {unread} unread")}</span>
                                    </span>
                                })}
                            </a>
                        </li>
                    }
                }
            />
        </ul>
    }
}

/// The top bar's drawer button, at phone width.
#[component]
pub fn DrawerToggle() -> impl IntoView {
    let Drawer(open) = expect_context::<Drawer>();
    view! {
        <button
            type="button"
            id="drawer-toggle"
            class="secondary small drawer-toggle"
            data-testid="drawer-toggle"
            aria-controls="sidebar"
            aria-expanded=move || open.get().to_string()
            on:click=move |_| open.update(|o| *o = !*o)
        >
            "Conversations"
        </button>
    }
}
