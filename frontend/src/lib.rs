//! The Confab single-page app: Leptos, client-side rendered, compiled to WebAssembly and
//! served by the Confab server itself. It speaks only the REST + WebSocket contract,
//! through the types of `confab-shared`.
//!
//! # Layout
//! - [`api`]: the wire: typed REST helpers and the tab's single WebSocket.
//! - [`session`]: the logged-in user and tokens, persisted and refreshed across tabs.
//! - [`state`]: live app state (presence, rooms, messages, conversations) and the policy
//!   around the socket: reconnect, re-join, `sync`, token renewal.
//! - [`components`]: reusable UI pieces; [`pages`]: one module per route.
//! - [`oidc`]: "Log in with <provider>": PKCE, `state` and `nonce` around the provider's redirect.
//! - [`notify`]: the favicon's dot, desktop notifications and Web Push (through `/notify.js`).
//! - [`util`]: clock, storage, time formatting, error wording.

pub mod api;
pub mod components;
pub mod notify;
pub mod oidc;
pub mod pages;
pub mod session;
pub mod state;
pub mod util;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::api::socket::Socket;
use crate::components::shell::Header;
use crate::components::sidebar::{Drawer, Sidebar};
use crate::components::switcher::{QuickSwitcher, Switcher};
use crate::components::toasts::{ToastHost, Toasts};
use crate::pages::NotFound;
use crate::pages::dm::{ConversationPage, DmListPage};
use crate::pages::login::{LoginCallbackPage, LoginPage};
use crate::pages::moderation::ModerationPage;
use crate::pages::online::OnlinePage;
use crate::pages::room::RoomPage;
use crate::pages::rooms::RoomsPage;
use crate::pages::settings::SettingsPage;
use crate::pages::signup::SignupPage;
use crate::session::Session;
use crate::state::Chat;

/// The root: creates the shared state (one socket per tab), then routes.
#[component]
pub fn App() -> impl IntoView {
    let toasts = Toasts::new();
    let session = Session::load();
    let socket = Socket::new();
    let chat = Chat::new(socket, session, toasts);
    provide_context(toasts);
    provide_context(session);
    provide_context(socket);
    provide_context(chat);
    provide_context(Drawer(RwSignal::new(false)));
    provide_context(Switcher(RwSignal::new(false)));
    chat.start();

    view! {
        <Router>
            <a class="skip-link" href="#main">
                "Skip to content"
            </a>
            <Header />
            <div class="layout">
                <Show when=move || session.is_logged_in()>
                    <Sidebar />
                </Show>
                <main id="main" class="main">
                <Routes fallback=|| view! { <NotFound /> }>
                    <Route path=path!("/") view=RoomsPage />
                    <Route path=path!("/rooms") view=RoomsPage />
                    <Route path=path!("/rooms/:room") view=RoomPage />
                    <Route path=path!("/login") view=LoginPage />
                    <Route path=path!("/login/callback") view=LoginCallbackPage />
                    <Route path=path!("/signup") view=SignupPage />
                    <Route path=path!("/online") view=OnlinePage />
                    <Route path=path!("/dm") view=DmListPage />
                    <Route path=path!("/dm/:user") view=ConversationPage />
                    <Route path=path!("/settings") view=SettingsPage />
                    <Route path=path!("/moderation") view=ModerationPage />
                </Routes>
                </main>
            </div>
            <QuickSwitcher />
            <ToastHost />
        </Router>
    }
}
