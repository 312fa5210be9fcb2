//! The header on every page: brand, navigation, connection state, who you are.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_location, use_navigate};

use crate::components::connection::ConnectionBadge;
use crate::components::sidebar::DrawerToggle;
use crate::state::Chat;

#[component]
pub fn Header() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let location = use_location();
    let path = location.pathname;
    let section = move || {
        let path = path.get();
        if path.starts_with("/online") {
            "people"
        } else if path.starts_with("/dm") {
            "dm"
        } else if path.starts_with("/settings") {
            "settings"
        } else if path.starts_with("/moderation") {
            "moderation"
        } else if path == "/" || path.starts_with("/rooms") {
            "rooms"
        } else {
            ""
        }
    };
    let current = move |name: &'static str| move || (section() == name).then_some("page");
    let dm_unread = move || chat.dms.index.with(|i| i.total_unread());
    // The tab title counts what waits: unread private messages and mentions.
    Effect::new(move |_| crate::pages::set_waiting(i64::from(dm_unread()) + chat.rooms.total_mentions()));
    // Come back to the page you were on after logging in.
    let login_href = move || {
        let here = path.get();
        if here.starts_with("/login") || here.starts_with("/signup") {
            "/login".to_owned()
        } else {
            format!("/login?next={}", String::from(js_sys::encode_uri_component(&here)))
        }
    };
    let navigate = use_navigate();
    let logout = move |_| {
        let navigate = navigate.clone();
        spawn_local(async move {
            chat.logout().await;
            navigate("/rooms", Default::default());
        });
    };

    view! {
        <header class="topbar">
            <Show when=move || session.is_logged_in()>
                <DrawerToggle />
            </Show>
            <a class="brand" href="/rooms" aria-label="Confab home">
                <span class="brand-mark" aria-hidden="true">"◆"</span>
                "Confab"
            </a>
            <nav class="nav" aria-label="Main">
                <a href="/rooms" data-testid="nav-rooms" aria-current=current("rooms")>
                    "Rooms"
                </a>
                <a href="/online" data-testid="nav-people" aria-current=current("people")>
                    "People"
                </a>
                <a href="/dm" data-testid="nav-dm" aria-current=current("dm")>
                    "Messages"
                    <Show when=move || { dm_unread() > 0 }>
                        <span
                            class="badge unread"
                            data-testid="dm-unread-total"
                            aria-label=move || format!("{} unread", dm_unread())
                        >
                            {dm_unread}
                        </span>
                    </Show>
                </a>
                <Show when=move || session.is_logged_in()>
                    <a href="/settings" data-testid="nav-settings" aria-current=current("settings")>
                        "Settings"
                    </a>
                </Show>
                <Show when=move || session.is_admin()>
                    <a href="/moderation" data-testid="nav-moderation" aria-current=current("moderation")>
                        "Moderation"
                    </a>
                </Show>
            </nav>
            <ConnectionBadge />
            <div class="account">
                {move || match session.user() {
                    Some(user) => {
                        view! {
                            <span class="whoami" data-testid="current-user">
                                {user.username.clone()}
                                {user.is_admin.then(|| view! { <span class="badge admin">"admin"</span> })}
                            </span>
                            <button class="secondary small" data-testid="logout-button" on:click=logout.clone()>
                                "Log out"
                            </button>
                        }
                            .into_any()
                    }
                    None => {
                        view! {
                            <a class="button secondary small" href=login_href data-testid="login-link">
                                "Log in"
                            </a>
                            <a class="button primary small" href="/signup" data-testid="signup-link">
                                "Sign up"
                            </a>
                        }
                            .into_any()
                    }
                }}
            </div>
        </header>
    }
}
