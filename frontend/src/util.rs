//! Small browser helpers: clock, randomness, local storage, focus, time formatting, error wording.

use confab_shared::Timestamp;
use confab_shared::rpc::{ErrorCode, ErrorObject};
use wasm_bindgen::JsValue;

use crate::api::socket::{CONNECTION_LOST, NOT_CONNECTED, TIMED_OUT};

/// Milliseconds since the Unix epoch, from the JS clock.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// A uniform random number in `[0, 1)`; good enough for jitter and nonces, not for secrets.
pub fn random() -> f64 {
    js_sys::Math::random()
}

/// A client-chosen de-duplication key for `room.send` / `dm.send` (well under 64 chars).
pub fn nonce() -> String {
    // Time plus 48 random bits: unique per tab in practice, and the server only compares
    // nonces of the same user.
    format!("{:x}-{:012x}", now_ms() as u64, (random() * 281_474_976_710_656.0) as u64)
}

/// Focuses the element with this id, if it is still there.
pub fn focus_by_id(id: &str) {
    use wasm_bindgen::JsCast;
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = el.focus();
    }
}

/// Whether the window is phone-sized (the stylesheet's 720 px breakpoint).
pub fn narrow_screen() -> bool {
    web_sys::window().and_then(|w| w.inner_width().ok()).and_then(|w| w.as_f64()).is_some_and(|w| w <= 720.0)
}

/// Whether the tab is in front (a message arriving in a hidden tab is not "read").
pub fn page_visible() -> bool {
    web_sys::window().and_then(|w| w.document()).is_none_or(|d| !d.hidden())
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Decodes JSON text into `T` through a `serde_json::Value`, as the socket decodes every
/// frame: one deserializer per type in the WASM (the `Value` one) instead of one per
/// reader, which keeps the download smaller for a parse a page never notices.
pub fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_str::<serde_json::Value>(text).and_then(serde_json::from_value)
}

/// Reads and decodes a JSON value from `localStorage`; anything unreadable counts as absent.
pub fn load_json<T: serde::de::DeserializeOwned>(key: &str) -> Option<T> {
    let text = storage()?.get_item(key).ok().flatten()?;
    from_json(&text).ok()
}

/// Stores a JSON value in `localStorage`; a full or disabled storage only costs persistence.
pub fn save_json<T: serde::Serialize>(key: &str, value: &T) {
    if let (Some(storage), Ok(text)) = (storage(), serde_json::to_string(value)) {
        let _ = storage.set_item(key, &text);
    }
}

/// The raw text of a `localStorage` entry.
pub fn load_text(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

/// Removes every `localStorage` entry whose key starts with `prefix` (other apps of the
/// origin keep theirs).
pub fn remove_keys_starting_with(prefix: &str) {
    let Some(storage) = storage() else { return };
    let count = storage.length().unwrap_or(0);
    // Keys first, removal after: removing shifts the indexes.
    let keys: Vec<String> = (0..count).filter_map(|i| storage.key(i).ok().flatten()).filter(|k| k.starts_with(prefix)).collect();
    for key in keys {
        let _ = storage.remove_item(&key);
    }
}

fn local_date(ts: Timestamp) -> js_sys::Date {
    js_sys::Date::new(&JsValue::from_f64(ts.millis() as f64))
}

/// A short local time for message lists: `14:05` today, `23 Nov 14:05` on other days.
pub fn short_time(ts: Timestamp) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let date = local_date(ts);
    let today = js_sys::Date::new_0();
    let hm = format!("{:02}:{:02}", date.get_hours(), date.get_minutes());
    let same_day = date.get_full_year() == today.get_full_year()
        && date.get_month() == today.get_month()
        && date.get_date() == today.get_date();
    if same_day {
        hm
    } else {
        let month = MONTHS.get(date.get_month() as usize).copied().unwrap_or("");
        format!("{} {month} {hm}", date.get_date())
    }
}

/// The full local date and time, for tooltips.
pub fn long_time(ts: Timestamp) -> String {
    String::from(local_date(ts).to_string())
}

/// Upper-cases the first letter so server phrases read as sentences.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Turns a JSON-RPC error into a message a person can act on.
pub fn describe(err: &ErrorObject) -> String {
    let data = err.data.as_ref();
    let standard = ErrorCode::ALL.iter().any(|c| c.code() == err.code && c.message() == err.message);
    let specific = (!standard && !err.message.is_empty()).then(|| sentence(&err.message));
    match err.code {
        NOT_CONNECTED => "Not connected to the server. Wait until it reconnects and try again.".into(),
        CONNECTION_LOST => "The connection dropped before the server answered. Please try again.".into(),
        TIMED_OUT => "The server did not answer in time. Please try again.".into(),
        -32001 => specific.unwrap_or_else(|| "Log in to do that.".into()),
        -32003 => specific.unwrap_or_else(|| "You are not allowed to do that.".into()),
        -32004 => specific.unwrap_or_else(|| "Not found.".into()),
        -32009 => specific.unwrap_or_else(|| "That conflicts with the current state.".into()),
        -32029 => {
            let wait = data.and_then(|d| d.get("retry_after_ms")).and_then(serde_json::Value::as_u64);
            match wait {
                Some(ms) => format!("Rate limited: slow down and try again in {} s.", ms.div_ceil(1000).max(1)),
                None => "Rate limited: slow down and try again in a moment.".into(),
            }
        }
        -32602 => {
            let field = data.and_then(|d| d.get("field")).and_then(serde_json::Value::as_str);
            match (field, specific) {
                (Some(field), Some(msg)) if !msg.to_lowercase().contains(&field.to_lowercase()) => {
                    format!("{}: {msg}", sentence(field))
                }
                (_, Some(msg)) => msg,
                (Some(field), None) => format!("{} is not valid.", sentence(field)),
                (None, None) => "The request was not valid.".into(),
            }
        }
        _ => specific.unwrap_or_else(|| "Something went wrong on the server. Please try again.".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_start_upper_case() {
        assert_eq!(sentence("name taken"), "Name taken");
        assert_eq!(sentence(""), "");
    }
}
