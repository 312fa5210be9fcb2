//! The part a room page and a private conversation page share: the scrolling log with
//! "load earlier", the caller's message rows, our pending sends with Retry and Discard,
//! who is typing (rooms), and the composer (or a prompt to log in, or why a muted user
//! cannot write and how long slow mode makes them wait).

use leptos::prelude::*;
use leptos::task::spawn_local;

use confab_shared::moderation::Sanction;

use crate::api::socket::ConnState;
use crate::components::composer::Composer;
use crate::components::message::PendingItem;
use crate::components::scroll_log::ScrollLog;
use crate::components::typing::TypingIndicator;
use crate::pages::LoginPrompt;
use crate::state::Chat;
use crate::state::conversation::Target;
use crate::util::page_visible;

/// Reads the conversation as messages arrive while its page is shown and the tab is in
/// front, so unread counts elsewhere stay true.
pub fn read_while_shown(target: Target) {
    let chat = expect_context::<Chat>();
    Effect::new(move |_| {
        if target.readable() && page_visible() {
            chat.mark_read(&target);
        }
    });
}

#[component]
pub fn ConversationPane(
    target: Target,
    /// The message rows, rendered inside the log's list before the pending ones.
    children: Children,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let (label, composer_label, placeholder) = target.labels();
    let revision = {
        let target = target.clone();
        Signal::derive(move || target.revision())
    };
    let can_load_earlier = {
        let target = target.clone();
        Signal::derive(move || target.can_load_earlier())
    };
    let loading_earlier = {
        let target = target.clone();
        Signal::derive(move || target.loading_earlier())
    };
    let on_load_earlier = {
        let target = target.clone();
        Callback::new(move |()| spawn_local(chat.load_earlier(target.clone())))
    };
    let status = {
        let target = target.clone();
        move || target.status().map(|s| view! { <p class="log-empty muted" data-testid="log-empty">{s}</p> })
    };
    let pending = {
        let target = target.clone();
        move || target.pending()
    };
    let on_retry = {
        let target = target.clone();
        Callback::new(move |nonce: String| chat.retry(&target, &nonce))
    };
    let on_discard = {
        let target = target.clone();
        Callback::new(move |nonce: String| target.discard(&nonce))
    };
    let on_send = {
        let target = target.clone();
        Callback::new(move |text: String| chat.send(&target, &text))
    };
    let (typing, on_typing, members) = match &target {
        Target::Room(state) => {
            let typing_in = state.clone();
            let online = state.online.clone();
            (
                Some(view! { <TypingIndicator state=state.clone() /> }),
                Some(Callback::new(move |()| chat.rooms.typing(&typing_in))),
                Some(Signal::derive(move || online.with(|names| names.iter().cloned().collect::<Vec<_>>()))),
            )
        }
        Target::Dm(_) => (None, None, None),
    };
    let offline = Signal::derive(move || chat.socket.state() != ConnState::Connected);
    let composer = StoredValue::new((composer_label, placeholder));
    let restriction = {
        let target = target.clone();
        Signal::derive(move || match &target {
            Target::Room(state) => state.restriction.get(),
            Target::Dm(_) => None,
        })
    };
    let muted = move || restriction.with(|r| r.as_ref().is_some_and(|r| r.kind == Sanction::Muted));
    let held = Signal::derive(move || restriction.with(|r| r.as_ref().is_some_and(|r| r.kind == Sanction::SlowMode)));
    // Members of a room in slow mode are told before they hit it.
    let slow_mode = {
        let target = target.clone();
        Signal::derive(move || match &target {
            Target::Room(state) => {
                let secs = state.summary.with(|s| s.as_ref().map_or(0, |s| s.slow_mode_secs));
                (secs > 0 && !state.rank(session.is_admin()).moderates()).then_some(secs)
            }
            Target::Dm(_) => None,
        })
    };

    view! {
        <div class="room-main">
            <ScrollLog label revision can_load_earlier loading_earlier on_load_earlier>
                {status}
                <ol class="messages">
                    {children()}
                    <For
                        each=pending
                        key=|p| (p.nonce.clone(), p.failed.clone())
                        children=move |p| view! { <PendingItem pending=p on_retry on_discard /> }
                    />
                </ol>
            </ScrollLog>
            {typing}
            <Show
                when=move || session.is_logged_in()
                fallback=|| view! { <LoginPrompt what="to chat in this room" /> }
            >
                <Show
                    when=move || !muted()
                    fallback=move || {
                        view! {
                            <p class="card notice composer-notice" role="status" data-testid="composer-muted">
                                {move || restriction.with(|r| r.as_ref().map(|r| r.explain()))}
                            </p>
                        }
                    }
                >
                    {move || {
                        held.get().then(|| {
                            view! {
                                <p class="composer-wait" role="status" data-testid="composer-slow-mode">
                                    {move || restriction.with(|r| r.as_ref().map(|r| r.explain()))}
                                </p>
                            }
                        })
                    }}
                    {move || {
                        slow_mode
                            .get()
                            .filter(|_| !held.get())
                            .map(|secs| {
                                view! {
                                    <p class="composer-wait muted" data-testid="slow-mode-hint">
                                        {format!("Slow mode: one message every {secs} s.")}
                                    </p>
                                }
                            })
                    }}
                    {move || {
                        let (label, placeholder) = composer.get_value();
                        match (on_typing, members) {
                            (Some(on_typing), Some(members)) => {
                                view! { <Composer label placeholder on_send on_typing offline held members /> }.into_any()
                            }
                            _ => view! { <Composer label placeholder on_send offline held /> }.into_any(),
                        }
                    }}
                </Show>
            </Show>
        </div>
    }
}
