//! The quick switcher: Ctrl+K (Cmd+K) anywhere, or the sidebar's "Jump to…", opens a
//! dialog whose box filters the rooms and conversations this tab knows by name; arrows pick,
//! Enter goes, Escape closes and gives focus back. A name that matches nothing can still be
//! opened as a room (joining creates it) or as a private conversation.
//!
//! The box is an ARIA combobox over a listbox (`aria-activedescendant`), so a screen reader
//! follows the choice while focus stays in the box.

use leptos::ev::{KeyboardEvent, SubmitEvent};
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use confab_shared::validate;

use crate::state::Chat;

/// Choices the list shows at most.
const SHOWN: usize = 12;

/// Whether the switcher is open; whatever sets it opens the dialog.
#[derive(Clone, Copy)]
pub struct Switcher(pub RwSignal<bool>);

/// One place to go.
#[derive(Clone, PartialEq)]
struct Choice {
    label: String,
    /// What kind of place, read after the label ("room", "conversation", …).
    kind: &'static str,
    href: String,
}

#[component]
pub fn QuickSwitcher() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let Switcher(open) = expect_context::<Switcher>();
    let navigate = use_navigate();
    let dialog = NodeRef::<html::Dialog>::new();
    let input = NodeRef::<html::Input>::new();
    let query = RwSignal::new(String::new());
    let active = RwSignal::new(0usize);
    // The element focused before opening gets focus back.
    let return_to = StoredValue::new(None::<web_sys::HtmlElement>);

    let shortcut = window_event_listener(leptos::ev::keydown, move |ev| {
        if (ev.ctrl_key() || ev.meta_key()) && !ev.alt_key() && ev.key().eq_ignore_ascii_case("k") {
            ev.prevent_default();
            open.set(true);
        }
    });
    on_cleanup(move || shortcut.remove());

    Effect::new(move |_| {
        let Some(el) = dialog.get() else { return };
        if open.get() {
            let focused = web_sys::window().and_then(|w| w.document()).and_then(|d| d.active_element());
            return_to.set_value(focused.and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok()));
            query.set(String::new());
            active.set(0);
            if !el.open() {
                let _ = el.show_modal();
            }
            if let Some(input) = input.get_untracked() {
                let _ = input.focus();
            }
        } else {
            if el.open() {
                el.close();
            }
            if let Some(previous) = return_to.get_value() {
                let _ = previous.focus();
                return_to.set_value(None);
            }
        }
    });

    let choices = Memo::new(move |_| query.with(|q| choices(&chat, q)));
    let go = move |choice: &Choice| {
        open.set(false);
        navigate(&choice.href, Default::default());
    };
    let go_active = {
        let go = go.clone();
        move || {
            if let Some(choice) = choices.with_untracked(|c| c.get(active.get_untracked()).cloned()) {
                go(&choice);
            }
        }
    };
    let on_key = move |ev: KeyboardEvent| {
        let count = choices.with_untracked(Vec::len);
        if count == 0 {
            return;
        }
        match ev.key().as_str() {
            "ArrowDown" => active.update(|a| *a = (*a + 1) % count),
            "ArrowUp" => active.update(|a| *a = (*a + count - 1) % count),
            "Home" => active.set(0),
            "End" => active.set(count - 1),
            _ => return,
        }
        ev.prevent_default();
    };
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        go_active();
    };
    let option_id = |i: usize| format!("switcher-option-{i}");

    view! {
        <dialog
            class="dialog switcher"
            node_ref=dialog
            aria-labelledby="switcher-title"
            data-testid="switcher"
            on:cancel=move |_: web_sys::Event| open.set(false)
            on:close=move |_: web_sys::Event| open.set(false)
        >
            <form class="form" on:submit=submit>
                <h2 id="switcher-title">"Jump to a room or conversation"</h2>
                <input
                    node_ref=input
                    type="text"
                    role="combobox"
                    autocomplete="off"
                    spellcheck="false"
                    aria-label="Room or person"
                    aria-autocomplete="list"
                    aria-expanded="true"
                    aria-controls="switcher-options"
                    aria-activedescendant=move || (!choices.with(Vec::is_empty)).then(|| option_id(active.get()))
                    data-testid="switcher-input"
                    placeholder="Type a room or a name"
                    prop:value=move || query.get()
                    on:input=move |ev| {
                        query.set(event_target_value(&ev));
                        active.set(0);
                    }
                    on:keydown=on_key
                />
                <ul id="switcher-options" class="switcher-options" role="listbox" aria-label="Places" data-testid="switcher-options">
                    {move || {
                        choices
                            .get()
                            .into_iter()
                            .enumerate()
                            .map(|(i, choice)| {
                                let go = go.clone();
                                let picked = choice.clone();
                                view! {
                                    <li
                                        id=option_id(i)
                                        role="option"
                                        class="switcher-option"
                                        aria-selected=move || (active.get() == i).to_string()
                                        data-testid="switcher-option"
                                        data-href=choice.href.clone()
                                        on:mousedown=move |ev| ev.prevent_default()
                                        on:click=move |_| go(&picked)
                                    >
                                        <span>{choice.label}</span>
                                        <span class="muted">{choice.kind}</span>
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
                <p class="muted switcher-hint">"↑ ↓ to choose, Enter to go, Esc to close"</p>
            </form>
        </dialog>
    }
}

/// What the switcher offers for `query`: the joined rooms, the conversations and the listed
/// rooms whose names contain it (joined rooms and unread first), then the typed name itself
/// as a room and as a person when it is a valid name that matched nothing exactly.
fn choices(chat: &Chat, query: &str) -> Vec<Choice> {
    let needle = query.trim().trim_start_matches(['#', '@']).to_lowercase();
    let matches = |name: &str| name.to_lowercase().contains(&needle);
    let mut out: Vec<(bool, Choice)> = Vec::new();
    let seen_room = |out: &[(bool, Choice)], href: &str| out.iter().any(|(_, c)| c.href.eq_ignore_ascii_case(href));
    let rooms = chat.rooms.mine.get().into_iter().map(|r| (r.name, r.unread.unwrap_or(0) > 0));
    let listed = chat.rooms.list.get().into_iter().map(|r| (r.name, false));
    for (name, unread) in rooms.chain(listed) {
        let href = format!("/rooms/{name}");
        if matches(&name) && !seen_room(&out, &href) {
            out.push((unread, Choice { label: format!("#{name}"), kind: "room", href }));
        }
    }
    chat.dms.index.with(|index| {
        for convo in index.convos.values() {
            if matches(&convo.with) {
                let href = format!("/dm/{}", convo.with);
                out.push((convo.unread > 0, Choice { label: convo.with.clone(), kind: "conversation", href }));
            }
        }
    });
    // Unread first, then as listed (the sort is stable).
    out.sort_by_key(|(unread, _)| !unread);
    let mut out: Vec<Choice> = out.into_iter().map(|(_, c)| c).take(SHOWN).collect();
    if !needle.is_empty() {
        let exact = |out: &[Choice], href: &str| out.iter().any(|c| c.href.eq_ignore_ascii_case(href));
        let typed = query.trim().trim_start_matches(['#', '@']);
        let room = format!("/rooms/{typed}");
        if validate::room_name(typed).is_ok() && !exact(&out, &room) {
            out.push(Choice { label: format!("#{typed}"), kind: "open or create room", href: room });
        }
        let person = format!("/dm/{typed}");
        if validate::username(typed).is_ok() && !exact(&out, &person) {
            out.push(Choice { label: typed.to_owned(), kind: "message", href: person });
        }
    }
    out
}
