//! The notifications section: the "Desktop notifications" switch of this browser, and the
//! devices that get Web Push.
//!
//! Turning it on is the only place the browser is asked for permission (on that click). It
//! also registers the service worker and stores its push subscription on the server (all
//! in `notify.js`), so private messages and mentions reach this browser with no tab open;
//! the id the server gives it is kept, to mark "This device" and to remove it when the
//! switch goes off.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::Section;
use leptos::html;
use wasm_bindgen::{JsCast, JsValue};

use crate::notify;
use crate::state::{Chat, REFRESH_MARGIN_MS};

#[component]
pub fn NotificationsSection() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let on = RwSignal::new(notify::state() == "on");
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    // notify.js fills the list; an empty one says so in its place (style.css,
    // `.device-list:empty`).
    let list = NodeRef::<html::Ul>::new();
    // One way for every click: `act` (if any) through notify.js, then the list afresh.
    let run = move |act: Option<&'static str>, id: f64| {
        error.set(None);
        busy.set(true);
        spawn_local(async move {
            let mut outcome = Ok(JsValue::NULL);
            match session.access_token(REFRESH_MARGIN_MS).await {
                Err(err) => outcome = Err(err.message),
                Ok(token) => {
                    if let Some(act) = act {
                        outcome = notify::ask(act, &token, id).await;
                    }
                    match notify::ask("devices", &token, 0.0).await {
                        Ok(devices) => {
                            if let Some(ul) = list.get_untracked() {
                                notify::fill(&ul, &devices);
                            }
                        }
                        Err(why) if outcome.is_ok() => outcome = Err(format!("Could not load the devices: {why}")),
                        Err(_) => {}
                    }
                }
            }
            if let Err(why) = outcome {
                error.set(Some(why));
            }
            on.set(notify::state() == "on");
            busy.set(false);
        });
    };
    run(None, 0.0);
    let switch = move |_| {
        if !busy.get_untracked() {
            run(Some(if on.get_untracked() { "disable" } else { "enable" }), 0.0);
        }
    };
    let remove = move |id: f64| run(Some("remove"), id);
    let blocked = move || notify::state() == "denied";

    view! {
        <Section
            id="notifications"
            title="Notifications"
            intro="Private messages and mentions, as desktop notifications while Confab is in the background, and as pushes to this device when no tab is open. Rooms you keep quiet stay silent."
        >
            <label class="switch-row">
                <input
                    type="checkbox"
                    role="switch"
                    data-testid="notifications-toggle"
                    prop:checked=move || on.get()
                    aria-describedby="notifications-status"
                    disabled=move || busy.get()
                    on:change=switch
                />
                <span>"Desktop notifications"</span>
            </label>
            <p id="notifications-status" class="muted" data-testid="notifications-status">
                {move || {
                    if busy.get() {
                        "Asking the browser…"
                    } else if blocked() {
                        "Blocked in this browser's site settings: allow notifications there first."
                    } else if on.get() {
                        "On in this browser."
                    } else {
                        "Off in this browser."
                    }
                }}
            </p>
            {move || error.get().map(|why| view! { <p class="form-error" role="alert" data-testid="notifications-error">{why}</p> })}
            <h3>"Devices that get pushes"</h3>
            // One handler for the rows' Remove buttons, which carry the device's id.
            <ul
                class="device-list"
                data-testid="device-list"
                node_ref=list
                on:click=move |ev| {
                    let id = ev
                        .target()
                        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                        .and_then(|e| e.closest("button[data-id]").ok().flatten())
                        .and_then(|b| b.get_attribute("data-id"))
                        .and_then(|id| id.parse::<i64>().ok());
                    if let Some(id) = id {
                        remove(id as f64);
                    }
                }
            ></ul>
        </Section>
    }
}
