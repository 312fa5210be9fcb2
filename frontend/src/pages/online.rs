//! "Who's online": every user with a live Online/Offline badge; click one to message them.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::set_title;
use crate::components::presence::PresenceBadge;
use crate::state::Chat;

#[component]
pub fn OnlinePage() -> impl IntoView {
    set_title("People");
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let filter = RwSignal::new(String::new());
    if chat.socket.is_open() {
        spawn_local(chat.refresh_users());
    }

    let online_count = move || chat.users.with(|u| u.values().filter(|u| u.online).count());
    let total = move || chat.users.with(|u| u.len());
    let people = move || {
        let needle = filter.get().trim().to_lowercase();
        let mut list: Vec<_> = chat.users.with(|users| {
            users.iter().filter(|(key, _)| key.contains(&needle)).map(|(_, u)| u.clone()).collect()
        });
        // Online first, then by name.
        list.sort_by(|a, b| b.online.cmp(&a.online).then_with(|| a.username.to_lowercase().cmp(&b.username.to_lowercase())));
        list
    };

    view! {
        <section class="page">
            <header class="page-head">
                <h1>"People"</h1>
                <p class="muted" data-testid="online-summary">
                    {move || format!("{} online · {} members", online_count(), total())}
                </p>
            </header>
            <div class="toolbar">
                <label class="search">
                    <span class="sr-only">"Filter people"</span>
                    <input
                        type="search"
                        placeholder="Filter by name"
                        data-testid="user-filter"
                        prop:value=move || filter.get()
                        on:input=move |ev| filter.set(event_target_value(&ev))
                    />
                </label>
            </div>
            <Show
                when=move || chat.users_loaded.get()
                fallback=|| view! { <p class="muted">"Loading people…"</p> }
            >
                <ul class="list user-list" data-testid="user-list">
                    <For
                        each=people
                        key=|u| (u.username.clone(), u.online)
                        children=move |user| {
                            let name = user.username.clone();
                            // Reactive: logging in or out turns names into links and back.
                            let label = {
                                let name = name.clone();
                                move || {
                                    let name = name.clone();
                                    let me = session.is_me(&name);
                                    if me || !session.is_logged_in() {
                                        view! {
                                            <span class="user-name">{name} {me.then_some(" (you)")}</span>
                                        }
                                            .into_any()
                                    } else {
                                        view! {
                                            <a
                                                class="user-name"
                                                href=format!("/dm/{name}")
                                                data-testid="user-dm-link"
                                                aria-label=format!("Message {name}")
                                            >
                                                {name.clone()}
                                            </a>
                                        }
                                            .into_any()
                                    }
                                }
                            };
                            view! {
                                <li class="list-item user-item" data-testid="user-item" data-username=name.clone()>
                                    <PresenceBadge online=user.online />
                                    {label}
                                </li>
                            }
                        }
                    />
                </ul>
                <Show when=move || { total() == 0 }>
                    <p class="muted">"Nobody has signed up yet."</p>
                </Show>
            </Show>
        </section>
    }
}
