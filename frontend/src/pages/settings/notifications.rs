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
use crate::notify::{self, Device};
use crate::state::{Chat, REFRESH_MARGIN_MS};

#[component]
pub fn NotificationsSection() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let session = chat.session;
    let on = RwSignal::new(notify::state() == "on");
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let devices = RwSignal::new(None::<Vec<Device>>);
    // An empty list says so in its place (style.css, `.device-list:empty`).
    let load = move || {
        spawn_local(async move {
            let Ok(token) = session.access_token(REFRESH_MARGIN_MS).await else { return };
            match notify::devices(&token).await {
                Ok(list) => devices.set(Some(list)),
                Err(why) => error.set(Some(format!("Could not load the devices: {why}"))),
            }
        });
    };
    load();
    // notify.js loads with `defer`: by the time a person reaches Settings it has run, but a
    // first paint straight onto /settings may come before it.
    set_timeout(move || on.set(notify::state() == "on"), std::time::Duration::from_millis(500));

    let switch = move |_| {
        if busy.get_untracked() {
            return;
        }
        error.set(None);
        busy.set(true);
        let turn_on = !on.get_untracked();
        spawn_local(async move {
            let outcome = match session.access_token(REFRESH_MARGIN_MS).await {
                Err(err) => Err(err.message),
                Ok(token) if turn_on => notify::enable(&token).await,
                Ok(token) => notify::disable(&token).await,
            };
            match outcome {
                Ok(()) => on.set(turn_on),
                Err(why) => {
                    error.set(Some(why));
                    on.set(notify::state() == "on");
                }
            }
            busy.set(false);
            load();
        });
    };
    let remove = move |id: f64| {
        error.set(None);
        spawn_local(async move {
            let Ok(token) = session.access_token(REFRESH_MARGIN_MS).await else { return };
            if let Err(why) = notify::remove(&token, id).await {
                error.set(Some(format!("Could not remove the device: {why}")));
            }
            on.set(notify::state() == "on");
            load();
        });
    };
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
            {move || {
                devices.get().map(|list| {
                    view! {
                        <ul class="device-list" data-testid="device-list">
                            {list
                                .into_iter()
                                .map(|device| {
                                    let Device { id, name, here: this } = device;
                                    view! {
                                        <li class="device" data-testid="device-row" data-id=id.to_string() data-this=this.to_string()>
                                            <span>{name.clone()}</span>
                                            {this.then(|| view! { <span class="badge" data-testid="device-this">"This device"</span> })}
                                            <button
                                                type="button"
                                                class="secondary small"
                                                data-testid="device-remove"
                                                aria-label=format!("Remove {name}")
                                                on:click=move |_| remove(id)
                                            >
                                                "Remove"
                                            </button>
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ul>
                    }
                })
            }}
        </Section>
    }
}
