//! Who is logged in: the user and a short-lived access token, kept in `localStorage` so a
//! reload stays logged in. The refresh token is not here: the server keeps it in an
//! `HttpOnly` cookie (`POST /api/auth/session`), which no script of the page can read, so
//! a script that ever ran in the page cannot carry the session away.
//!
//! Refresh tokens rotate and *reusing* an old one revokes the whole session, so two tabs
//! must never refresh at once (the browser would send both the same cookie). Every refresh
//! therefore runs under a Web Lock shared by the origin's tabs and first re-reads storage:
//! if another tab already refreshed, we adopt its access token instead of refreshing again.
//!
//! Logging out (or the session ending) removes every `confab.*` key of `localStorage`: the
//! direct-message index with its previews, and whatever else is kept per user.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use confab_shared::{SessionTokens, User};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::api::rest::{self, ApiError};
use crate::util::{load_json, now_ms, remove_keys_starting_with, save_json};

/// The `localStorage` key of the current session.
pub const STORAGE_KEY: &str = "confab.session";
/// The prefix of every `localStorage` key the app writes; all go at logout.
pub const STORAGE_PREFIX: &str = "confab.";
const REFRESH_LOCK: &str = "confab.refresh";

/// An access token as stored, with its absolute expiry and its user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    /// When the access token expires, in ms since the epoch (by our clock, from `expires_in`).
    pub expires_at_ms: f64,
    pub user: User,
}

impl Tokens {
    fn from_pair(pair: SessionTokens) -> Self {
        Self { access_token: pair.access_token, expires_at_ms: now_ms() + pair.expires_in as f64 * 1000.0, user: pair.user }
    }

    /// Whether the access token expires within `margin_ms`.
    pub fn expires_within(&self, margin_ms: f64) -> bool {
        self.expires_at_ms - now_ms() <= margin_ms
    }
}

/// A copyable handle on the session.
#[derive(Clone, Copy)]
pub struct Session {
    tokens: RwSignal<Option<Tokens>>,
    /// The user alone, so views do not re-render when only the tokens rotate.
    user: Memo<Option<User>>,
}

impl Session {
    /// The session saved by an earlier visit, if any.
    pub fn load() -> Self {
        let stored = load_json::<Tokens>(STORAGE_KEY);
        // An earlier version kept the refresh token here too: saving the entry again drops it
        // (that session ends when its access token does; then the user logs in again).
        if let Some(tokens) = &stored
            && crate::util::load_text(STORAGE_KEY).is_some_and(|raw| raw.contains("\"refresh_token\""))
        {
            save_json(STORAGE_KEY, tokens);
        }
        let tokens = RwSignal::new(stored);
        let user = Memo::new(move |_| tokens.with(|t| t.as_ref().map(|t| t.user.clone())));
        Self { tokens, user }
    }

    /// The logged-in user (reactive).
    pub fn user(&self) -> Option<User> {
        self.user.get()
    }

    /// The logged-in user's name (reactive).
    pub fn username(&self) -> Option<String> {
        self.user.with(|u| u.as_ref().map(|u| u.username.clone()))
    }

    /// Whether someone is logged in (reactive).
    pub fn is_logged_in(&self) -> bool {
        self.user.with(Option::is_some)
    }

    /// Whether the logged-in user is an admin (reactive).
    pub fn is_admin(&self) -> bool {
        self.user.with(|u| u.as_ref().is_some_and(|u| u.is_admin))
    }

    /// Whether `name` is the logged-in user (usernames are case-insensitive; reactive).
    pub fn is_me(&self, name: &str) -> bool {
        self.user.with(|u| u.as_ref().is_some_and(|u| u.username.eq_ignore_ascii_case(name)))
    }

    /// Whether someone is logged in, without subscribing.
    pub fn is_logged_in_untracked(&self) -> bool {
        self.tokens.with_untracked(Option::is_some)
    }

    /// Whether `name` is the logged-in user, without subscribing.
    pub fn is_me_untracked(&self, name: &str) -> bool {
        self.tokens.with_untracked(|t| t.as_ref().is_some_and(|t| t.user.username.eq_ignore_ascii_case(name)))
    }

    /// The current tokens, without subscribing.
    pub fn tokens_untracked(&self) -> Option<Tokens> {
        self.tokens.get_untracked()
    }

    /// The user id of the session, without subscribing; identifies "the same person" across reconnects.
    pub fn user_id_untracked(&self) -> Option<i64> {
        self.tokens.with_untracked(|t| t.as_ref().map(|t| t.user.id))
    }

    /// Saves the tokens of a login or refresh.
    pub fn store(&self, pair: SessionTokens) {
        let tokens = Tokens::from_pair(pair);
        save_json(STORAGE_KEY, &tokens);
        self.tokens.set(Some(tokens));
    }

    /// Forgets the session (logout, or the server revoked it), and everything this browser
    /// kept for the user (direct-message previews and read cursors): the next person at
    /// this browser finds nothing of theirs.
    pub fn clear(&self) {
        remove_keys_starting_with(STORAGE_PREFIX);
        self.tokens.set(None);
    }

    /// Re-reads storage after another tab changed it; returns whether the *user* changed
    /// (a rotated token of the same user is adopted silently).
    pub fn reload(&self) -> bool {
        let fresh: Option<Tokens> = load_json(STORAGE_KEY);
        let before = self.user_id_untracked();
        let after = fresh.as_ref().map(|t| t.user.id);
        self.tokens.set(fresh);
        before != after
    }

    /// A usable access token for a REST call, refreshed first when it has less than
    /// `margin_ms` left (a REST call cannot answer `session.expiring` as the socket does).
    pub async fn access_token(&self, margin_ms: f64) -> Result<String, ApiError> {
        let Some(tokens) = self.tokens_untracked() else {
            return Err(ApiError { status: 401, message: "Log in to do that.".into(), field: None });
        };
        if !tokens.expires_within(margin_ms) {
            return Ok(tokens.access_token);
        }
        self.refresh().await
    }

    /// Gets a fresh access token with the refresh cookie, coordinated across tabs.
    ///
    /// An error with [`ApiError::is_unauthorized`] means the session is over.
    pub async fn refresh(&self) -> Result<String, ApiError> {
        let Some(stale) = self.tokens_untracked() else {
            return Err(ApiError { status: 401, message: "Not logged in.".into(), field: None });
        };
        let outcome: Rc<RefCell<Option<Result<Tokens, ApiError>>>> = Rc::default();
        let slot = outcome.clone();
        with_lock(REFRESH_LOCK, async move {
            let current: Option<Tokens> = load_json(STORAGE_KEY);
            if let Some(current) = current.filter(|c| c.user.id == stale.user.id && c.access_token != stale.access_token)
            {
                // Another tab refreshed while we waited for the lock.
                *slot.borrow_mut() = Some(Ok(current));
                return;
            }
            let result = rest::refresh().await.map(Tokens::from_pair);
            if let Ok(tokens) = &result {
                save_json(STORAGE_KEY, tokens);
            }
            *slot.borrow_mut() = Some(result);
        })
        .await;
        let result = outcome.borrow_mut().take();
        match result {
            Some(Ok(tokens)) => {
                let access = tokens.access_token.clone();
                self.tokens.set(Some(tokens));
                Ok(access)
            }
            Some(Err(err)) => Err(err),
            None => Err(ApiError { status: 0, message: "Could not refresh the session.".into(), field: None }),
        }
    }
}

/// Runs `task` while holding the origin-wide Web Lock `name`; without the Web Locks API
/// (insecure origins, old browsers) it just runs it.
async fn with_lock(name: &str, task: impl Future<Output = ()> + 'static) {
    let locks = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w.navigator(), &"locks".into()).ok())
        .filter(|locks| locks.is_object());
    let request = locks
        .as_ref()
        .and_then(|locks| js_sys::Reflect::get(locks, &"request".into()).ok())
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    let (Some(locks), Some(request)) = (locks, request) else {
        task.await;
        return;
    };
    let mut task = Some(task);
    // The lock is held until the promise returned by this callback settles.
    let callback = Closure::<dyn FnMut(JsValue) -> js_sys::Promise>::new(move |_lock: JsValue| {
        let task = task.take();
        wasm_bindgen_futures::future_to_promise(async move {
            if let Some(task) = task {
                task.await;
            }
            Ok(JsValue::UNDEFINED)
        })
    });
    let granted = request.call2(&locks, &JsValue::from_str(name), callback.as_ref().unchecked_ref());
    if let Ok(promise) = granted.and_then(|p| p.dyn_into::<js_sys::Promise>()) {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    drop(callback);
}
