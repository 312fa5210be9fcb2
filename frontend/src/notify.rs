//! Telling the reader what arrived while they looked elsewhere: the favicon's dot, desktop
//! notifications while the tab is hidden, and this browser's Web Push subscription.
//!
//! The browser side is plain JS (`/notify.js`, `window.confabNotify`, and the service
//! worker `/sw.js`), so the WASM carries no Notification, ServiceWorker or PushManager
//! bindings: this module only calls it by name. Nothing asks for permission until the
//! person turns notifications on in Settings; `notify.js` remembers the choice in
//! `localStorage` and shows a notification only while the tab is hidden.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use confab_shared::{DirectMessage, Message};

/// The favicon with a dot, shown while something waits for the reader.
const ICON_UNREAD: &str = "/favicon-unread.svg";
const ICON: &str = "/favicon.svg";

/// Swaps the favicon for the one with a dot while `waiting` is above zero.
pub fn show_waiting(waiting: i64) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    if let Ok(Some(link)) = document.query_selector("link[rel=icon]") {
        let _ = link.set_attribute("href", if waiting > 0 { ICON_UNREAD } else { ICON });
    }
}

/// `window.confabNotify`, once `notify.js` has run.
fn bridge() -> Option<JsValue> {
    let window = web_sys::window()?;
    Reflect::get(&window, &JsValue::from_str("confabNotify")).ok().filter(|b| b.is_object())
}

/// Calls `confabNotify[name](...args)`.
fn call(name: &str, args: &[JsValue]) -> Result<JsValue, String> {
    let bridge = bridge().ok_or("This page could not load its notification script; reload it.")?;
    let function: Function = Reflect::get(&bridge, &JsValue::from_str(name)).ok().and_then(|f| f.dyn_into().ok()).ok_or("notify.js is out of date; reload the page.")?;
    let args: js_sys::Array = args.iter().collect();
    function.apply(&bridge, &args).map_err(|e| js_message(&e))
}

fn js_message(err: &JsValue) -> String {
    Reflect::get(err, &JsValue::from_str("message")).ok().and_then(|m| m.as_string()).unwrap_or_else(|| "The browser refused.".to_owned())
}

/// `on`, `off`, `denied` or `unsupported`.
pub fn state() -> String {
    call("state", &[]).ok().and_then(|s| s.as_string()).unwrap_or_else(|| "unsupported".to_owned())
}

/// Calls `confabNotify[name](token, id)` and waits for its promise: `enable` (asks for
/// permission, subscribes to Web Push and stores the subscription on the server, named
/// after the browser: `Chrome on Linux`), `disable` (ends it here and removes it there),
/// `remove` (the device `id`; this browser's turns notifications off here too), `devices`
/// (the caller's: `[{id, name, here}]`, for [`fill`]).
pub async fn ask(name: &str, token: &str, id: f64) -> Result<JsValue, String> {
    match call(name, &[token.into(), id.into()])?.dyn_into::<Promise>() {
        Ok(promise) => JsFuture::from(promise).await.map_err(|e| js_message(&e)),
        Err(value) => Ok(value),
    }
}

/// Fills Settings' list of devices (`ul`) with `list` (what [`ask`]`("devices", …)` gave);
/// each row's Remove button carries the device's id in `data-id`.
pub fn fill(ul: &web_sys::HtmlUListElement, list: &JsValue) {
    let _ = call("fill", &[JsValue::from(ul.clone()), list.clone()]);
}

/// Shows a notification of `kind` (`dm`, `mention`) in `conversation` when notify.js
/// allows it (notifications on, tab hidden); it words it and cuts the text.
fn show(kind: &str, conversation: &str, from: &str, text: &str) {
    let _ = call("show", &[kind.into(), conversation.into(), from.into(), text.into()]);
}

/// A private message: a notification unless the reader wrote it (`mine`: from another tab).
pub fn dm(message: &DirectMessage, mine: bool) {
    if !mine {
        show("dm", &message.from, &message.from, &message.text);
    }
}

/// A mention of the reader in a room they do not keep quiet.
pub fn mention(message: &Message, quiet: bool) {
    if !quiet {
        show("mention", &message.room, &message.author, &message.text);
    }
}
