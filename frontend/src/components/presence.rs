//! The Online/Offline badge.

use leptos::prelude::*;

#[component]
pub fn PresenceBadge(#[prop(into)] online: Signal<bool>) -> impl IntoView {
    view! {
        <span
            class="presence"
            class:online=move || online.get()
            data-testid="presence-badge"
            data-online=move || online.get().to_string()
        >
            <span class="presence-dot" aria-hidden="true"></span>
            {move || if online.get() { "Online" } else { "Offline" }}
        </span>
    }
}
