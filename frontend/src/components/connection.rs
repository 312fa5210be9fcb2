//! The connection badge: people should know when what they see may be stale, and, once
//! connected, which transport carries it ("Connected · HTTP stream" behind a network that
//! breaks WebSockets), read out by screen readers like the rest of the label.

use leptos::prelude::*;

use crate::api::socket::ConnState;
use crate::state::Chat;

#[component]
pub fn ConnectionBadge() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let state = move || chat.socket.state();
    let stalled = move || matches!(state(), ConnState::Reconnecting | ConnState::Offline);
    let transport = move || chat.socket.transport();
    let label = move || match state() {
        ConnState::Connected => format!("{} · {}", state().label(), transport().label()),
        other => other.label().to_owned(),
    };
    view! {
        <div
            class="conn"
            data-testid="connection-state"
            data-state=move || state().as_str()
            data-transport=move || transport().as_str()
            role="status"
            aria-live="polite"
        >
            <span class="conn-dot" aria-hidden="true"></span>
            <span class="conn-label">{label}</span>
            <Show when=stalled>
                <button
                    class="link conn-retry"
                    data-testid="connection-retry"
                    on:click=move |_| chat.socket.connect()
                >
                    "Retry now"
                </button>
            </Show>
        </div>
    }
}
