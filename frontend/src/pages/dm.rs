//! Private messages: the conversation list and one conversation.

use confab_shared::{DirectMessage, validate};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map};

use super::{LoginPrompt, set_title};
use crate::api::socket::ConnState;
use crate::components::composer::Composer;
use crate::components::message::PendingItem;
use crate::components::presence::PresenceBadge;
use crate::components::scroll_log::ScrollLog;
use crate::state::Chat;
use crate::state::dm::ConvoSummary;
use crate::util::{long_time, page_visible, short_time};

/// `/dm`: every conversation, newest first, with unread counts.
#[component]
pub fn DmListPage() -> impl IntoView {
    set_title("Messages");
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let navigate = use_navigate();
    let peer = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);

    let convos = move || {
        let mut list: Vec<ConvoSummary> = chat.dm_index.with(|i| i.convos.values().cloned().collect());
        list.sort_by_key(|c| std::cmp::Reverse(c.last_id));
        list
    };
    let start = move |ev: SubmitEvent| {
        ev.prevent_default();
        let name = peer.get_untracked().trim().trim_start_matches('@').to_owned();
        match validate::username(&name) {
            Ok(_) => navigate(&format!("/dm/{name}"), Default::default()),
            Err(why) => error.set(Some(format!("Username {why}."))),
        }
    };

    view! {
        <section class="page">
            <header class="page-head">
                <h1>"Messages"</h1>
            </header>
            <Show
                when=move || session.is_logged_in()
                fallback=|| view! { <LoginPrompt what="to send and read private messages" /> }
            >
                <form class="card join-form" on:submit=start.clone() novalidate>
                    <label for="dm-to">"Start a conversation"</label>
                    <div class="row">
                        <span class="prefix" aria-hidden="true">"@"</span>
                        <input
                            id="dm-to"
                            placeholder="username"
                            autocomplete="off"
                            autocapitalize="none"
                            spellcheck="false"
                            data-testid="dm-to-input"
                            prop:value=move || peer.get()
                            on:input=move |ev| peer.set(event_target_value(&ev))
                        />
                        <button type="submit" class="primary" data-testid="dm-to-submit">
                            "Open"
                        </button>
                    </div>
                    {move || {
                        error
                            .get()
                            .map(|e| view! { <p class="form-error" role="alert" data-testid="form-error">{e}</p> })
                    }}
                </form>
                <ul class="list convo-list" data-testid="dm-list">
                    <For
                        each=convos
                        key=|c| (c.with.to_lowercase(), c.last_id, c.unread)
                        children=move |convo| view! { <ConvoRow convo /> }
                    />
                </ul>
                <Show when=move || chat.dm_index.with(|i| i.convos.is_empty())>
                    <p class="muted" data-testid="dm-empty">
                        "No conversations yet. Pick someone in " <a href="/online">"People"</a>
                        ", or type " <code>"/pm user text"</code> " in a room."
                    </p>
                </Show>
            </Show>
        </section>
    }
}

#[component]
fn ConvoRow(convo: ConvoSummary) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let key = convo.with.to_lowercase();
    let online = Signal::derive(move || chat.presence.is_online(&key));
    let preview = if convo.last_from_me { format!("You: {}", convo.last_text) } else { convo.last_text.clone() };
    let unread = (convo.unread > 0).then_some(convo.unread);
    view! {
        <li class="list-item convo-item" class:has-unread=unread.is_some() data-testid="dm-item" data-with=convo.with.clone()>
            <a class="convo-link" href=format!("/dm/{}", convo.with)>
                <PresenceBadge online />
                <span class="convo-main">
                    <span class="convo-name">{convo.with.clone()}</span>
                    <span class="convo-preview muted">{preview}</span>
                </span>
                <time class="muted small" datetime=convo.last_at.to_string() title=long_time(convo.last_at)>
                    {short_time(convo.last_at)}
                </time>
                {unread
                    .map(|n| {
                        view! {
                            <span class="badge unread" data-testid="dm-unread" aria-label=format!("{n} unread")>
                                {n}
                            </span>
                        }
                    })}
            </a>
        </li>
    }
}

/// `/dm/:user`: one conversation.
#[component]
pub fn ConversationPage() -> impl IntoView {
    let params = use_params_map();
    let peer = Memo::new(move |_| params.with(|p| p.get("user").unwrap_or_default()));
    let chat = expect_context::<Chat>();
    move || {
        let peer = peer.get();
        if !chat.session.is_logged_in() {
            set_title("Messages");
            return view! {
                <section class="page narrow">
                    <LoginPrompt what="to send and read private messages" />
                </section>
            }
                .into_any();
        }
        view! { <ConversationView peer /> }.into_any()
    }
}

#[component]
fn ConversationView(peer: String) -> impl IntoView {
    set_title(&format!("@{peer}"));
    if let Err(why) = validate::username(&peer) {
        return view! {
            <section class="page narrow">
                <div class="card error" role="alert" data-testid="dm-error">
                    {format!("“{peer}” is not a valid username: it {why}.")}
                </div>
            </section>
        }
            .into_any();
    }
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let convo = chat.open_conversation(&peer);
    {
        let peer = peer.clone();
        on_cleanup(move || chat.close_conversation(&peer));
    }
    {
        let convo = convo.clone();
        Effect::new(move |_| {
            convo.messages.track();
            if page_visible() {
                chat.mark_dm_read(&convo);
            }
        });
    }

    let key = peer.to_lowercase();
    let online = Signal::derive(move || chat.presence.is_online(&key));
    let me = session.username().unwrap_or_default();
    // The delivery receipt sits under our newest message.
    let last_mine = {
        let (messages, me) = (convo.messages.clone(), me.clone());
        Memo::new(move |_| messages.with(|m| m.iter().rev().find(|m| m.from.eq_ignore_ascii_case(&me)).map(|m| m.id)))
    };
    let visible = {
        let convo = convo.clone();
        move || convo.visible()
    };
    let revision = {
        let convo = convo.clone();
        Signal::derive(move || {
            let newest = convo.messages.with(|m| m.last().map_or(0, |m| m.id));
            let shown = convo.messages.with(Vec::len).min(convo.window.get());
            (shown + convo.pending.with(Vec::len), newest)
        })
    };
    let can_load_earlier = {
        let convo = convo.clone();
        Signal::derive(move || convo.can_load_earlier())
    };
    let loading_earlier = {
        let loading = convo.loading_earlier.clone();
        Signal::derive(move || loading.get())
    };
    let on_load_earlier = {
        let convo = convo.clone();
        Callback::new(move |()| spawn_local(chat.load_earlier_dms(convo.clone())))
    };
    let pending = {
        let pending = convo.pending.clone();
        move || pending.get()
    };
    let on_retry = {
        let convo = convo.clone();
        Callback::new(move |nonce: String| chat.retry_dm(&convo, &nonce))
    };
    let on_discard = {
        let pending = convo.pending.clone();
        Callback::new(move |nonce: String| Chat::discard_pending(&pending, &nonce))
    };
    let on_send = {
        let convo = convo.clone();
        Callback::new(move |text: String| chat.send_dm(&convo, &text))
    };
    let offline = Signal::derive(move || chat.socket.state() != ConnState::Connected);
    let status = {
        let convo = convo.clone();
        move || {
            if let Some(err) = convo.error.get() {
                Some(err)
            } else if !convo.loaded.get() {
                Some("Loading the conversation…".to_owned())
            } else if convo.messages.with(Vec::is_empty) && convo.pending.with(Vec::is_empty) {
                Some("No messages yet. Say hello!".to_owned())
            } else {
                None
            }
        }
    };

    view! {
        <section class="page room-page" data-testid="dm-page" data-with=peer.clone()>
            <header class="page-head room-head">
                <h1>
                    <a class="back" href="/dm" aria-label="All conversations">"←"</a>
                    {peer.clone()}
                </h1>
                <PresenceBadge online />
            </header>
            <div class="room-body">
                <div class="room-main">
                    <ScrollLog
                        label=format!("Conversation with {peer}")
                        revision
                        can_load_earlier
                        loading_earlier
                        on_load_earlier
                    >
                        {move || status().map(|s| view! { <p class="log-empty muted" data-testid="log-empty">{s}</p> })}
                        <ol class="messages">
                            <For
                                each=visible
                                key=|m| m.id
                                children=move |dm| view! { <DmItem dm last_mine /> }
                            />
                            <For
                                each=pending
                                key=|p| (p.nonce.clone(), p.failed.clone())
                                children=move |p| view! { <PendingItem pending=p on_retry on_discard /> }
                            />
                        </ol>
                    </ScrollLog>
                    <Composer label=format!("Message {peer}") placeholder=format!("Message {peer}") on_send offline />
                </div>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn DmItem(dm: DirectMessage, last_mine: Memo<Option<i64>>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let mine = chat.session.is_me_untracked(&dm.from);
    let id = dm.id;
    let receipt = move || {
        (mine && last_mine.get() == Some(id)).then(|| {
            view! {
                <span class="receipt" data-testid="dm-receipt" title=format!("Delivered {}", long_time(dm.sent_at))>
                    "✓ Delivered"
                </span>
            }
        })
    };
    view! {
        <li class="msg" class:mine=mine data-testid="dm-message" data-id=id.to_string() data-author=dm.from.clone()>
            <div class="msg-head">
                <span class="msg-author" data-testid="message-author">{dm.from.clone()}</span>
                <time class="msg-time" datetime=dm.sent_at.to_string() title=long_time(dm.sent_at)>
                    {short_time(dm.sent_at)}
                </time>
            </div>
            <p class="msg-text" data-testid="message-text">{dm.text.clone()}</p>
            {receipt}
        </li>
    }
}
