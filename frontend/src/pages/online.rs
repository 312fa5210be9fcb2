//! "People": one page of users at a time (search by name prefix, online only, previous and
//! next), with the community's online count; the rows on screen are exactly the users the
//! tab watches, so their badges stay live and nothing renders the whole community.

use confab_shared::rpc::UsersListParams;
use confab_shared::{UserPresence, UsersPage};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::set_title;
use crate::components::presence::PresenceBadge;
use crate::state::Chat;

/// Users per page.
const PAGE_SIZE: u32 = 50;

#[component]
pub fn OnlinePage() -> impl IntoView {
    set_title("People");
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let filter = RwSignal::new(String::new());
    let online_only = RwSignal::new(false);
    // The cursors of the pages before the one shown (for "previous"), and the one shown.
    let back = RwSignal::new(Vec::<Option<String>>::new());
    let cursor = RwSignal::new(None::<String>);
    let page = RwSignal::new(None::<UsersPage>);
    let error = RwSignal::new(None::<String>);
    // Answers to superseded requests (typing fast) are dropped.
    let generation = StoredValue::new(0u64);

    let load = move || {
        let prefix = filter.get_untracked().trim().to_owned();
        let params = UsersListParams {
            cursor: cursor.get_untracked(),
            limit: Some(PAGE_SIZE),
            prefix: (!prefix.is_empty()).then_some(prefix),
            online: online_only.get_untracked().then_some(true),
        };
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        spawn_local(async move {
            let result = chat.socket.call(params).await;
            if generation.get_value() != mine {
                return;
            }
            match result {
                Ok(result) => {
                    chat.presence.record(&result.users);
                    chat.presence.set_group("people", result.users.iter().map(|u| u.username.clone()).collect());
                    error.set(None);
                    page.set(Some(result));
                }
                Err(err) if err.code == -32602 => error.set(Some(err.message.clone())),
                Err(err) => chat.report(&err),
            }
        });
    };
    let restart = move || {
        back.set(Vec::new());
        cursor.set(None);
        load();
    };
    // Every (re)connect reloads the page shown (and the connection watches it again).
    Effect::new(move |_| {
        chat.connection_epoch.track();
        if chat.socket.is_open() {
            load();
        }
    });
    on_cleanup(move || chat.presence.set_group("people", Vec::new()));

    let rows = move || {
        page.with(|p| p.as_ref().map(|p| p.users.clone()).unwrap_or_default())
    };
    let summary = move || {
        page.with(|p| match p {
            Some(p) => format!("{} online · {} members", p.online, p.total),
            None => String::new(),
        })
    };
    let has_next = move || page.with(|p| p.as_ref().is_some_and(|p| p.next_cursor.is_some()));
    let has_prev = move || back.with(|b| !b.is_empty());
    let next = move |_| {
        let Some(next) = page.with_untracked(|p| p.as_ref().and_then(|p| p.next_cursor.clone())) else { return };
        back.update(|b| b.push(cursor.get_untracked()));
        cursor.set(Some(next));
        load();
    };
    let prev = move |_| {
        let Some(previous) = back.try_update(|b| b.pop()).flatten() else { return };
        cursor.set(previous);
        load();
    };

    view! {
        <section class="page">
            <header class="page-head">
                <h1>"People"</h1>
                <p class="muted" data-testid="online-summary">{summary}</p>
            </header>
            <div class="toolbar">
                <label class="search">
                    <span class="sr-only">"Search people by name"</span>
                    <input
                        type="search"
                        placeholder="Search by name"
                        data-testid="user-filter"
                        prop:value=move || filter.get()
                        on:input=move |ev| {
                            filter.set(event_target_value(&ev));
                            restart();
                        }
                    />
                </label>
                <label class="check">
                    <input
                        type="checkbox"
                        data-testid="online-only"
                        prop:checked=move || online_only.get()
                        on:change=move |ev| {
                            online_only.set(event_target_checked(&ev));
                            restart();
                        }
                    />
                    " Online only"
                </label>
                <button class="secondary small" data-testid="people-refresh" on:click=move |_| load()>
                    "Refresh"
                </button>
            </div>
            <Show when=move || error.with(Option::is_some)>
                <p class="form-error" role="alert" data-testid="people-error">{move || error.get()}</p>
            </Show>
            <Show
                when=move || page.with(Option::is_some)
                fallback=|| view! { <p class="muted">"Loading people…"</p> }
            >
                <ul class="list user-list" data-testid="user-list">
                    <For
                        each=rows
                        key=|u| u.username.clone()
                        children=move |user| view! { <UserRow user session /> }
                    />
                </ul>
                <Show when=move || page.with(|p| p.as_ref().is_some_and(|p| p.users.is_empty()))>
                    <p class="muted" data-testid="people-empty">
                        {move || if filter.with(|f| f.trim().is_empty()) && !online_only.get() {
                            "Nobody has signed up yet."
                        } else {
                            "Nobody matches."
                        }}
                    </p>
                </Show>
                <nav class="pager" aria-label="Pages of people">
                    <button class="secondary small" data-testid="people-prev" disabled=move || !has_prev() on:click=prev>
                        "← Previous"
                    </button>
                    <button class="secondary small" data-testid="people-next" disabled=move || !has_next() on:click=next>
                        "Next →"
                    </button>
                </nav>
            </Show>
        </section>
    }
}

/// One person: a live badge (the row is watched) and a link to message them.
#[component]
fn UserRow(user: UserPresence, session: crate::session::Session) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let name = user.username.clone();
    let online = {
        let name = name.clone();
        Signal::derive(move || chat.presence.is_online(&name))
    };
    // Reactive: logging in or out turns names into links and back.
    let label = {
        let name = name.clone();
        move || {
            let name = name.clone();
            let me = session.is_me(&name);
            if me || !session.is_logged_in() {
                view! { <span class="user-name">{name} {me.then_some(" (you)")}</span> }.into_any()
            } else {
                view! {
                    <a class="user-name" href=format!("/dm/{name}") data-testid="user-dm-link" aria-label=format!("Message {name}")>
                        {name.clone()}
                    </a>
                }
                    .into_any()
            }
        }
    };
    view! {
        <li class="list-item user-item" data-testid="user-item" data-username=name.clone()>
            <PresenceBadge online />
            {label}
        </li>
    }
}
