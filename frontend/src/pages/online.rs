//! "People": one page of users at a time (search by name prefix, online only, previous and
//! next), with the community's online count; the rows on screen are exactly the users the
//! tab watches, so their badges stay live and nothing renders the whole community.

use confab_shared::rpc::UsersListParams;
use confab_shared::{UserPresence, UsersPage};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::set_title;
use crate::components::form::Toggle;
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
    let cursors = RwSignal::new(Cursors::default());
    let page = RwSignal::new(None::<UsersPage>);
    let error = RwSignal::new(None::<String>);
    // Answers to superseded requests (typing fast) are dropped.
    let generation = StoredValue::new(0u64);

    let load = move || {
        let prefix = filter.get_untracked().trim().to_owned();
        let params = UsersListParams {
            cursor: cursors.with_untracked(|c| c.shown.clone()),
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
    // A new search or filter starts over from the first page.
    Effect::watch(
        move || (filter.get(), online_only.get()),
        move |_, _, _| {
            cursors.set(Cursors::default());
            load();
        },
        false,
    );
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
    let next_cursor = move || page.with(|p| p.as_ref().and_then(|p| p.next_cursor.clone()));
    // One step either way: forward to the page the server named, or back to the last one.
    let step = move |forward: bool| {
        let moved = if forward {
            next_cursor().is_some_and(|next| cursors.try_update(|c| c.forward(next)).is_some())
        } else {
            cursors.try_update(Cursors::back).unwrap_or(false)
        };
        if moved {
            load();
        }
    };
    let pager_button = move |forward: bool| {
        let (testid, text) = if forward { ("people-next", "Next →") } else { ("people-prev", "← Previous") };
        let disabled = move || if forward { next_cursor().is_none() } else { cursors.with(|c| c.before.is_empty()) };
        view! {
            <button class="secondary small" data-testid=testid disabled=disabled on:click=move |_| step(forward)>
                {text}
            </button>
        }
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
                        on:input=move |ev| filter.set(event_target_value(&ev))
                    />
                </label>
                <Toggle testid="online-only" label=" Online only" checked=online_only />
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
                    {pager_button(false)}
                    {pager_button(true)}
                </nav>
            </Show>
        </section>
    }
}

/// Where the page is in the list: the cursor of the page shown and those of the pages
/// before it, for "previous".
#[derive(Clone, Debug, Default, PartialEq)]
struct Cursors {
    shown: Option<String>,
    before: Vec<Option<String>>,
}

impl Cursors {
    fn forward(&mut self, next: String) {
        self.before.push(self.shown.replace(next));
    }

    /// Whether there was a page to go back to.
    fn back(&mut self) -> bool {
        match self.before.pop() {
            Some(previous) => {
                self.shown = previous;
                true
            }
            None => false,
        }
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
