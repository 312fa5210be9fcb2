//! The moderation controls of a room: a keyboard-usable action menu (on messages and on
//! members) and the one dialog that asks for a reason and a duration before a report, a
//! kick, a ban or a mute.
//!
//! The menu follows the WAI-ARIA menu button pattern: a real button (`aria-haspopup`,
//! `aria-expanded`) opens a `role="menu"` whose items take focus with the arrow keys, Home
//! and End; Escape closes it and gives focus back to the button, as does choosing an item.
//! The dialog is a native modal `<dialog>` (the page behind it is inert); Escape or Cancel
//! closes it, and focus returns to the menu button it was opened from.

use confab_shared::moderation::{BanParams, KickParams, MuteParams, ReportParams};
use confab_shared::rpc::ErrorObject;
use leptos::ev::{FocusEvent, KeyboardEvent, SubmitEvent};
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::state::Chat;
use crate::state::moderation::DURATIONS;
use crate::util::{describe, focus_by_id, short_time};

/// One entry of an [`ActionMenu`].
#[derive(Clone)]
pub struct MenuItem {
    pub label: String,
    pub testid: &'static str,
    /// Shown in the danger colour (removes or silences someone).
    pub danger: bool,
    pub run: Callback<()>,
}

/// A "⋯" button opening a menu of `items`; hidden when there are none.
#[component]
pub fn ActionMenu(
    /// The button's element id: focus comes back to it after the menu or a dialog closes.
    id: String,
    /// The button's accessible name, naming what the actions are about.
    #[prop(into)]
    label: Signal<String>,
    testid: &'static str,
    #[prop(into)] items: Signal<Vec<MenuItem>>,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let button = NodeRef::<html::Button>::new();
    let menu = NodeRef::<html::Div>::new();
    let menu_id = StoredValue::new(format!("{id}-menu"));
    Effect::new(move |_| {
        if open.get()
            && let Some(menu) = menu.get()
        {
            move_focus(&menu, |_, _| 0);
        }
    });
    let close = move |refocus: bool| {
        open.set(false);
        if refocus && let Some(button) = button.get_untracked() {
            let _ = button.focus();
        }
    };
    let on_key = move |ev: KeyboardEvent| {
        let Some(el) = menu.get_untracked() else { return };
        let step: Option<fn(usize, usize) -> usize> = match ev.key().as_str() {
            "ArrowDown" => Some(|at, n| (at + 1) % n),
            "ArrowUp" => Some(|at, n| (at + n - 1) % n),
            "Home" => Some(|_, _| 0),
            "End" => Some(|_, n| n - 1),
            "Escape" => {
                ev.prevent_default();
                ev.stop_propagation();
                close(true);
                None
            }
            "Tab" => {
                close(false);
                None
            }
            _ => None,
        };
        if let Some(step) = step {
            ev.prevent_default();
            move_focus(&el, step);
        }
    };
    // Focus leaving the menu (a click elsewhere, Shift+Tab) closes it.
    let on_focus_out = move |ev: FocusEvent| {
        let inside = ev
            .related_target()
            .and_then(|t| t.dyn_into::<web_sys::Node>().ok())
            .is_some_and(|node| menu.get_untracked().is_some_and(|m| m.contains(Some(&node))));
        if !inside {
            open.set(false);
        }
    };
    let menu_label = label;
    view! {
        <Show when=move || items.with(|i| !i.is_empty())>
            <span class="menu-wrap">
                <button
                    id=id.clone()
                    class="icon"
                    type="button"
                    node_ref=button
                    data-testid=testid
                    aria-label=move || label.get()
                    aria-haspopup="menu"
                    aria-controls=menu_id.get_value()
                    aria-expanded=move || open.get().to_string()
                    on:click=move |_| open.update(|o| *o = !*o)
                >
                    <span aria-hidden="true">"⋯"</span>
                </button>
                <Show when=move || open.get()>
                    <div
                        class="menu"
                        role="menu"
                        id=menu_id.get_value()
                        node_ref=menu
                        aria-label=move || menu_label.get()
                        on:keydown=on_key
                        on:focusout=on_focus_out
                    >
                        {move || {
                            items
                                .get()
                                .into_iter()
                                .map(|item| {
                                    view! {
                                        <button
                                            type="button"
                                            role="menuitem"
                                            tabindex="-1"
                                            class="menu-item"
                                            class:danger=item.danger
                                            data-testid=item.testid
                                            on:click=move |_| {
                                                close(true);
                                                item.run.run(());
                                            }
                                        >
                                            {item.label}
                                        </button>
                                    }
                                })
                                .collect_view()
                        }}
                    </div>
                </Show>
            </span>
        </Show>
    }
}

/// Focuses the menu item `step(current, count)` of `menu`.
fn move_focus(menu: &web_sys::HtmlDivElement, step: impl Fn(usize, usize) -> usize) {
    let Ok(items) = menu.query_selector_all("[role=menuitem]") else { return };
    let count = items.length() as usize;
    if count == 0 {
        return;
    }
    let active = web_sys::window().and_then(|w| w.document()).and_then(|d| d.active_element());
    let at = (0..count)
        .find(|i| {
            let item = items.item(*i as u32);
            matches!((&item, &active), (Some(a), Some(b)) if a.is_same_node(Some(b)))
        })
        .unwrap_or(count - 1);
    if let Some(next) = items.item(step(at, count) as u32).and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok()) {
        let _ = next.focus();
    }
}


/// What the dialog is about to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Act {
    /// Report message `id` (its text, shortened, reminds the reporter which one).
    Report { id: i64, excerpt: String },
    Kick,
    Ban,
    Mute,
}

/// A question for the dialog: an action on `user` in `room`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ask {
    pub act: Act,
    /// The user acted on (the message's author for a report).
    pub user: String,
    pub room: String,
    /// The id of the element that gets focus back when the dialog closes.
    pub return_to: String,
}

/// The room's dialog; whatever sets `ask` opens it, closing it sets `ask` back to `None`.
#[component]
pub fn ActionDialog(ask: RwSignal<Option<Ask>>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let dialog = NodeRef::<html::Dialog>::new();
    let reason_box = NodeRef::<html::Textarea>::new();
    let reason = RwSignal::new(String::new());
    let duration = RwSignal::new(String::from("3600"));
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let return_to = StoredValue::new(String::new());
    Effect::new(move |_| {
        let Some(el) = dialog.get() else { return };
        match ask.get() {
            Some(asked) => {
                reason.set(String::new());
                duration.set("3600".into());
                error.set(None);
                return_to.set_value(asked.return_to);
                if !el.open() {
                    let _ = el.show_modal();
                }
                if let Some(text) = reason_box.get_untracked() {
                    let _ = text.focus();
                }
            }
            None => {
                if el.open() {
                    el.close();
                }
                let id = return_to.get_value();
                if !id.is_empty() {
                    focus_by_id(&id);
                    return_to.set_value(String::new());
                }
            }
        }
    });

    let act = move || ask.with(|a| a.as_ref().map(|a| a.act.clone()));
    let title = move || {
        ask.with(|a| match a {
            None => String::new(),
            Some(Ask { act: Act::Report { .. }, user, .. }) => format!("Report {user}'s message"),
            Some(Ask { act: Act::Kick, user, room, .. }) => format!("Remove {user} from #{room}"),
            Some(Ask { act: Act::Ban, user, room, .. }) => format!("Ban {user} from #{room}"),
            Some(Ask { act: Act::Mute, user, room, .. }) => format!("Mute {user} in #{room}"),
        })
    };
    let excerpt = move || match act() {
        Some(Act::Report { excerpt, .. }) => Some(view! { <blockquote class="excerpt">{excerpt}</blockquote> }),
        _ => None,
    };
    let reporting = move || matches!(act(), Some(Act::Report { .. }));
    let timed = move || matches!(act(), Some(Act::Ban | Act::Mute));
    let submit_label = move || match act() {
        Some(Act::Report { .. }) => "Report",
        Some(Act::Kick) => "Remove",
        Some(Act::Ban) => "Ban",
        Some(Act::Mute) => "Mute",
        None => "OK",
    };

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let Some(asked) = ask.get_untracked() else { return };
        let text = reason.get_untracked().trim().to_owned();
        if matches!(asked.act, Act::Report { .. }) && text.is_empty() {
            error.set(Some("Say what is wrong with the message.".into()));
            return;
        }
        let why = (!text.is_empty()).then(|| text.clone());
        let secs = duration.get_untracked().parse::<u64>().ok();
        busy.set(true);
        spawn_local(async move {
            let socket = chat.socket;
            let Ask { act, user, room, .. } = asked;
            let ends = |until: Option<confab_shared::Timestamp>| match until {
                Some(at) => format!(" until {}", short_time(at)),
                None => " until lifted".to_owned(),
            };
            let done: Result<String, ErrorObject> = match act {
                Act::Report { id, .. } => socket
                    .call(ReportParams { id, reason: text })
                    .await
                    .map(|_| "Reported. The room's moderators will look at it.".to_owned()),
                Act::Kick => socket
                    .call(KickParams { room: room.clone(), user: user.clone(), reason: why })
                    .await
                    .map(|_| format!("{user} was removed from #{room}.")),
                Act::Ban => socket
                    .call(BanParams { room: room.clone(), user: user.clone(), reason: why, duration_secs: secs })
                    .await
                    .map(|r| format!("{user} is banned from #{room}{}.", ends(r.until))),
                Act::Mute => socket.call(MuteParams { room: room.clone(), user: user.clone(), reason: why, duration_secs: secs }).await.map(|r| {
                    if let Some(state) = chat.rooms.get(&room) {
                        state.set_muted(&user, true);
                    }
                    format!("{user} is muted in #{room}{}.", ends(r.until))
                }),
            };
            busy.set(false);
            match done {
                Ok(text) => {
                    ask.set(None);
                    chat.toasts.info(text);
                }
                Err(err) => error.set(Some(describe(&err))),
            }
        });
    };

    view! {
        <dialog
            class="dialog"
            node_ref=dialog
            aria-labelledby="action-dialog-title"
            data-testid="action-dialog"
            on:cancel=move |_: web_sys::Event| ask.set(None)
        >
            <form class="form" on:submit=submit>
                <h2 id="action-dialog-title">{title}</h2>
                {excerpt}
                <label class="field">
                    <span>{move || if reporting() { "What is wrong with it?" } else { "Reason (shown to them; optional)" }}</span>
                    <textarea
                        data-testid="dialog-reason"
                        node_ref=reason_box
                        maxlength="500"
                        aria-required=move || reporting().to_string()
                        prop:value=move || reason.get()
                        on:input=move |ev| reason.set(event_target_value(&ev))
                    ></textarea>
                </label>
                <Show when=timed>
                    <label class="field">
                        <span>"For how long"</span>
                        <select
                            data-testid="dialog-duration"
                            prop:value=move || duration.get()
                            on:change=move |ev| duration.set(event_target_value(&ev))
                        >
                            {DURATIONS
                                .iter()
                                .map(|(label, secs)| {
                                    let value = secs.map(|s| s.to_string()).unwrap_or_default();
                                    view! { <option value=value>{*label}</option> }
                                })
                                .collect_view()}
                        </select>
                    </label>
                </Show>
                {move || {
                    error.get().map(|e| view! { <p class="form-error" role="alert" data-testid="dialog-error">{e}</p> })
                }}
                <div class="dialog-actions">
                    <button type="submit" class="primary" class:danger=move || !reporting() data-testid="dialog-submit" disabled=move || busy.get()>
                        {move || if busy.get() { "Working…" } else { submit_label() }}
                    </button>
                    <button type="button" class="secondary" data-testid="dialog-cancel" on:click=move |_| ask.set(None)>
                        "Cancel"
                    </button>
                </div>
            </form>
        </dialog>
    }
}
