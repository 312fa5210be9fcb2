//! Private messages: the conversation list and one conversation.

use confab_shared::{DirectMessage, validate};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

use super::{InvalidAddress, LoginPrompt, set_title};
use crate::components::conversation::{ConversationPane, read_while_shown};
use crate::components::form::FormError;
use crate::components::presence::PresenceBadge;
use crate::state::Chat;
use crate::state::conversation::Target;
use crate::state::dm_index::ConvoSummary;
use crate::util::{long_time, short_time};

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
        let mut list: Vec<ConvoSummary> = chat.dms.index.with(|i| i.convos.values().cloned().collect());
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
                    <FormError error />
                </form>
                <ul class="list convo-list" data-testid="dm-list">
                    <For
                        each=convos
                        key=|c| (c.with.to_lowercase(), c.last_id, c.unread)
                        children=move |convo| view! { <ConvoRow convo /> }
                    />
                </ul>
                <Show when=move || chat.dms.index.with(|i| i.convos.is_empty())>
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
        view! { <DmView peer /> }.into_any()
    }
}

#[component]
fn DmView(peer: String) -> impl IntoView {
    set_title(&format!("@{peer}"));
    if let Err(why) = validate::username(&peer) {
        let message = format!("“{peer}” is not a valid username: it {why}.");
        return view! { <InvalidAddress testid="dm-error" message /> }.into_any();
    }
    let chat = expect_context::<Chat>();
    let convo = chat.dms.open(&peer);
    {
        let peer = peer.clone();
        on_cleanup(move || chat.dms.close(&peer));
    }
    read_while_shown(Target::Dm(convo.clone()));

    let key = peer.to_lowercase();
    let online = Signal::derive(move || chat.presence.is_online(&key));
    let me = chat.session.username().unwrap_or_default();
    // The delivery receipt sits under our newest message.
    let last_mine = {
        let messages = convo.log.messages.clone();
        Memo::new(move |_| messages.with(|m| m.iter().rev().find(|m| m.from.eq_ignore_ascii_case(&me)).map(|m| m.id)))
    };
    let visible = {
        let log = convo.log.clone();
        move || log.visible()
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
                <ConversationPane target=Target::Dm(convo)>
                    <For each=visible key=|m| m.id children=move |dm| view! { <DmItem dm last_mine /> } />
                </ConversationPane>
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
