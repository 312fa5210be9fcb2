//! One room message: author, time, text, reactions, and (for its author) edit and delete;
//! a menu with every action the caller may take on it (report, delete, and for the room's
//! moderators kick, ban or mute its author).

use confab_shared::Message;
use leptos::ev::KeyboardEvent;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::components::moderation::{Act, ActionMenu, Ask, MenuItem};
use crate::state::Chat;
use crate::state::log::PendingSend;
use crate::state::room_state::{MsgItem, RoomState};
use crate::util::{long_time, short_time};

/// The quick reactions offered by the picker.
pub const EMOJI: [&str; 6] = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

#[component]
pub fn MessageItem(item: MsgItem, state: RoomState) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let id = item.id;
    let msg = item.msg;
    // The author and send time never change; read them once.
    let (author, sent_at) = msg.with_untracked(|m| (m.author.clone(), m.sent_at));

    let mine = {
        let author = author.clone();
        move || session.is_me(&author)
    };
    let deleted = {
        let msg = msg.clone();
        move || msg.with(|m| m.deleted)
    };
    // The server says whom a message mentions; an edit may change it.
    let mentions_me = {
        let msg = msg.clone();
        move || {
            session.username().is_some_and(|me| {
                msg.with(|m| {
                    !m.author.eq_ignore_ascii_case(&me) && (m.mention_all.is_some() || m.mentions.iter().any(|n| n.eq_ignore_ascii_case(&me)))
                })
            })
        }
    };
    let can_edit = {
        let (mine, deleted) = (mine.clone(), deleted.clone());
        move || mine() && !deleted()
    };
    // Ours, or anyone's for an admin, or a lower rank's for the room's owner and moderators.
    let may_delete = {
        let (mine, state, author) = (mine.clone(), state.clone(), author.clone());
        move || mine() || session.is_admin() || state.rank(session.is_admin()).may_act_on(state.rank_of(&author))
    };
    let can_delete = {
        let (may_delete, deleted) = (may_delete.clone(), deleted.clone());
        move || may_delete() && !deleted()
    };
    let can_react = {
        let deleted = deleted.clone();
        move || session.is_logged_in() && !deleted()
    };

    let editing = RwSignal::new(false);
    let draft = RwSignal::new(String::new());
    let picker_open = RwSignal::new(false);
    let edit_box = NodeRef::<html::Textarea>::new();

    Effect::new(move |_| {
        if editing.get()
            && let Some(el) = edit_box.get()
        {
            let _ = el.focus();
        }
    });

    let start_edit = {
        let msg = msg.clone();
        move |_| {
            draft.set(msg.with_untracked(|m| m.text.clone()));
            editing.set(true);
        }
    };
    let save = {
        let state = state.clone();
        move || {
            let text = draft.get_untracked();
            let state = state.clone();
            spawn_local(async move {
                if chat.rooms.edit(state, id, text).await {
                    editing.set(false);
                }
            });
        }
    };
    let on_edit_key = {
        let save = save.clone();
        move |ev: KeyboardEvent| match ev.key().as_str() {
            "Enter" if !ev.shift_key() && !ev.is_composing() => {
                ev.prevent_default();
                save();
            }
            "Escape" => {
                ev.prevent_default();
                editing.set(false);
            }
            _ => {}
        }
    };
    let delete = {
        let state = state.clone();
        move |_| spawn_local(chat.rooms.delete(state.clone(), id))
    };

    let menu_id = format!("msg-{id}-actions");
    let menu_items = {
        let ask = expect_context::<RoomDialog>().0;
        let (state, author, msg, mine, deleted) = (state.clone(), author.clone(), msg.clone(), mine.clone(), deleted.clone());
        let asking = {
            let (state, author, menu_id) = (state.clone(), author.clone(), menu_id.clone());
            move |act: Act| {
                let ask_for = Ask { act, user: author.clone(), room: state.wire_name(), return_to: menu_id.clone() };
                Callback::new(move |()| ask.set(Some(ask_for.clone())))
            }
        };
        let excerpt = msg.with_untracked(|m| m.text.chars().take(140).collect::<String>());
        let report = asking(Act::Report { id, excerpt });
        let (kick, ban, mute) = (asking(Act::Kick), asking(Act::Ban), asking(Act::Mute));
        let delete = {
            let state = state.clone();
            Callback::new(move |()| spawn_local(chat.rooms.delete(state.clone(), id)))
        };
        Signal::derive(move || {
            let mut items = Vec::new();
            if deleted() || !session.is_logged_in() {
                return items;
            }
            let item = |label: String, testid, danger, run| MenuItem { label, testid, danger, run };
            let mine = mine();
            if !mine {
                items.push(item("Report message".into(), "report-button", false, report));
            }
            if may_delete() {
                items.push(item("Delete message".into(), "menu-delete", true, delete));
            }
            if !mine && state.rank(session.is_admin()).may_act_on(state.rank_of(&author)) {
                items.push(item(format!("Mute {author}"), "mute-button", true, mute));
                items.push(item(format!("Remove {author} from the room"), "kick-button", true, kick));
                items.push(item(format!("Ban {author}"), "ban-button", true, ban));
            }
            items
        })
    };

    let body = {
        let msg = msg.clone();
        move || {
            msg.with(|m| {
                if m.deleted { "This message was deleted.".to_owned() } else { m.text.clone() }
            })
        }
    };
    let edited_at = {
        let msg = msg.clone();
        move || msg.with(|m| m.edited_at.filter(|_| !m.deleted))
    };

    view! {
        <li
            class="msg"
            class:mine=mine.clone()
            class:deleted=deleted.clone()
            class:mentioned=mentions_me
            data-testid="message"
            data-id=id.to_string()
            data-author=author.clone()
        >
            <div class="msg-head">
                <span class="msg-author" data-testid="message-author">
                    {author.clone()}
                </span>
                <time
                    class="msg-time"
                    data-testid="message-time"
                    datetime=sent_at.to_string()
                    title=long_time(sent_at)
                >
                    {short_time(sent_at)}
                </time>
                {move || {
                    edited_at()
                        .map(|at| {
                            view! {
                                <span
                                    class="msg-edited"
                                    data-testid="message-edited"
                                    title=format!("Edited {}", long_time(at))
                                >
                                    "(edited)"
                                </span>
                            }
                        })
                }}
            </div>
            <Show
                when=move || editing.get()
                fallback=move || {
                    view! {
                        <p class="msg-text" data-testid="message-text">
                            {body.clone()}
                        </p>
                    }
                }
            >
                <form
                    class="msg-edit"
                    on:submit={
                        let save = save.clone();
                        move |ev| {
                            ev.prevent_default();
                            save();
                        }
                    }
                >
                    <label class="sr-only" for=format!("edit-{id}")>
                        "Edit message"
                    </label>
                    <textarea
                        id=format!("edit-{id}")
                        data-testid="edit-input"
                        node_ref=edit_box
                        prop:value=move || draft.get()
                        on:input=move |ev| draft.set(event_target_value(&ev))
                        on:keydown=on_edit_key.clone()
                    ></textarea>
                    <div class="msg-edit-actions">
                        <button type="submit" class="primary small" data-testid="edit-save">
                            "Save"
                        </button>
                        <button
                            type="button"
                            class="secondary small"
                            data-testid="edit-cancel"
                            on:click=move |_| editing.set(false)
                        >
                            "Cancel"
                        </button>
                        <span class="hint">"Enter to save · Esc to cancel"</span>
                    </div>
                </form>
            </Show>
            <Reactions msg=msg.clone() state=state.clone() />
            <div class="msg-actions">
                <Show when=can_react.clone()>
                    <button
                        class="icon"
                        data-testid="react-button"
                        aria-label="Add reaction"
                        aria-expanded=move || picker_open.get().to_string()
                        on:click=move |_| picker_open.update(|open| *open = !*open)
                    >
                        "☺"
                    </button>
                </Show>
                <Show when=can_edit.clone()>
                    <button
                        class="icon"
                        data-testid="edit-button"
                        aria-label="Edit message"
                        on:click=start_edit.clone()
                    >
                        "✎"
                    </button>
                </Show>
                <Show when=can_delete.clone()>
                    <button
                        class="icon danger"
                        data-testid="delete-button"
                        aria-label="Delete message"
                        on:click=delete.clone()
                    >
                        <svg class="icon-svg" viewBox="0 0 24 24" width="14" height="14" aria-hidden="true">
                            <path
                                d="M4 7h16M10 11v6M14 11v6M5 7l1 12a2 2 0 0 0 2 2h8a2 2 0 0 0 2-2l1-12M9 7V4h6v3"
                                fill="none"
                                stroke="currentColor"
                                stroke-width="2"
                                stroke-linecap="round"
                                stroke-linejoin="round"
                            />
                        </svg>
                    </button>
                </Show>
                <ActionMenu
                    id=menu_id.clone()
                    label=format!("More actions on {author}'s message")
                    testid="message-menu"
                    items=menu_items
                />
            </div>
            <Show when=move || picker_open.get()>
                <EmojiPicker msg=msg.clone() state=state.clone() open=picker_open />
            </Show>
        </li>
    }
}

/// The room page's moderation dialog, which message and member menus open.
#[derive(Clone, Copy)]
pub struct RoomDialog(pub RwSignal<Option<Ask>>);

/// The row of quick reactions; Esc closes it.
#[component]
fn EmojiPicker(msg: ArcRwSignal<Message>, state: RoomState, open: RwSignal<bool>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let id = msg.with_untracked(|m| m.id);
    let me = chat.session.username().unwrap_or_default();
    view! {
        <div
            class="emoji-picker"
            role="group"
            aria-label="Pick a reaction"
            on:keydown=move |ev: KeyboardEvent| {
                if ev.key() == "Escape" {
                    open.set(false);
                }
            }
        >
            {EMOJI
                .iter()
                .map(|emoji| {
                    let emoji = (*emoji).to_owned();
                    let (msg, state, me) = (msg.clone(), state.clone(), me.clone());
                    let label = format!("React with {emoji}");
                    view! {
                        <button
                            class="emoji"
                            data-testid="react-option"
                            data-emoji=emoji.clone()
                            aria-label=label
                            on:click=move |_| {
                                let on = !reacted(&msg, &emoji, &me);
                                open.set(false);
                                spawn_local(chat.rooms.react(state.clone(), id, emoji.clone(), on));
                            }
                        >
                            {emoji.clone()}
                        </button>
                    }
                })
                .collect_view()}
        </div>
    }
}

fn reacted(msg: &ArcRwSignal<Message>, emoji: &str, me: &str) -> bool {
    msg.with_untracked(|m| m.reactions.get(emoji).is_some_and(|users| users.iter().any(|u| u.eq_ignore_ascii_case(me))))
}

/// The reactions under a message; each chip toggles your own.
#[component]
fn Reactions(msg: ArcRwSignal<Message>, state: RoomState) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let id = msg.with_untracked(|m| m.id);
    let chips = move || {
        let me = chat.session.username().unwrap_or_default();
        let logged_in = chat.session.is_logged_in();
        msg.with(|m| {
            m.reactions
                .iter()
                .filter(|(_, users)| !users.is_empty())
                .map(|(emoji, users)| {
                    let mine = users.iter().any(|u| u.eq_ignore_ascii_case(&me));
                    let count = users.len();
                    let who = users.join(", ");
                    let emoji = emoji.clone();
                    let state = state.clone();
                    let label = format!("{emoji} {count}: {who}");
                    view! {
                        <button
                            class="reaction"
                            class:mine=mine
                            data-testid="reaction"
                            data-emoji=emoji.clone()
                            data-count=count.to_string()
                            aria-pressed=mine.to_string()
                            aria-label=label
                            title=who
                            disabled=!logged_in
                            on:click=move |_| spawn_local(chat.rooms.react(state.clone(), id, emoji.clone(), !mine))
                        >
                            <span aria-hidden="true">{emoji.clone()}</span>
                            <span class="reaction-count" aria-hidden="true">{count}</span>
                        </button>
                    }
                })
                .collect_view()
        })
    };
    view! { <div class="reactions">{chips}</div> }
}

/// A message of ours still on its way, or refused (with Retry and Discard).
#[component]
pub fn PendingItem(
    pending: PendingSend,
    on_retry: Callback<String>,
    on_discard: Callback<String>,
) -> impl IntoView {
    let nonce = pending.nonce.clone();
    let failed = pending.failed.clone();
    let failed_flag = failed.is_some();
    view! {
        <li
            class="msg mine pending"
            class:failed=failed_flag
            data-testid="message-pending"
            data-state=if failed_flag { "failed" } else { "sending" }
        >
            <p class="msg-text">{pending.text.clone()}</p>
            {match failed {
                None => view! { <span class="pending-note">"Sending…"</span> }.into_any(),
                Some(why) => {
                    let (retry, discard) = (nonce.clone(), nonce.clone());
                    view! {
                        <span class="pending-note error" role="alert">
                            {format!("Not sent: {why}")}
                        </span>
                        <button
                            class="link"
                            data-testid="pending-retry"
                            on:click=move |_| on_retry.run(retry.clone())
                        >
                            "Retry"
                        </button>
                        <button
                            class="link"
                            data-testid="pending-discard"
                            on:click=move |_| on_discard.run(discard.clone())
                        >
                            "Discard"
                        </button>
                    }
                        .into_any()
                }
            }}
        </li>
    }
}
