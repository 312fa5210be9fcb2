//! A server-side list the Settings page manages over REST, with a secret shown once.
//!
//! API tokens and webhooks work alike: `GET` lists them without their secrets, `POST`
//! creates one and answers with its secret (the only time the server sends it), `DELETE`
//! removes one. [`Registry`] holds that shape once: the list as last loaded, why loading
//! failed, and the secret of the item created last, which lives only in memory until it
//! is dismissed or someone else logs in.

use std::future::Future;

use leptos::prelude::*;

use crate::api::rest::ApiError;

/// An item with the server's id, so it can be replaced or removed in the list.
pub trait Keyed {
    fn key(&self) -> i64;
}

impl Keyed for confab_shared::ApiToken {
    fn key(&self) -> i64 {
        self.id
    }
}

impl Keyed for confab_shared::webhooks::Webhook {
    fn key(&self) -> i64 {
        self.id
    }
}

/// The list of `T` and the freshly created `C` (which carries the secret).
pub struct Registry<T: Send + Sync + 'static, C: Send + Sync + 'static> {
    /// `None` until the first answer for the current user.
    pub items: RwSignal<Option<Vec<T>>>,
    /// Why the list could not be loaded (shown in place of the list).
    pub load_error: RwSignal<Option<String>>,
    /// The item created last, with its secret; `None` once dismissed.
    pub created: RwSignal<Option<C>>,
    /// Bumped by [`Registry::reset`], so an answer for the previous user is dropped.
    generation: StoredValue<u64>,
}

impl<T: Send + Sync + 'static, C: Send + Sync + 'static> Clone for Registry<T, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static, C: Send + Sync + 'static> Copy for Registry<T, C> {}

impl<T: Keyed + Clone + Send + Sync + 'static, C: Clone + Send + Sync + 'static> Default for Registry<T, C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Keyed + Clone + Send + Sync + 'static, C: Clone + Send + Sync + 'static> Registry<T, C> {
    pub fn new() -> Self {
        Self {
            items: RwSignal::new(None),
            load_error: RwSignal::new(None),
            created: RwSignal::new(None),
            generation: StoredValue::new(0),
        }
    }

    /// Replaces the list with what `fetch` returns (or records why it failed).
    pub async fn load(self, fetch: impl Future<Output = Result<Vec<T>, ApiError>>) {
        let mine = self.generation.get_value();
        let result = fetch.await;
        if self.generation.get_value() != mine {
            return;
        }
        match result {
            Ok(items) => {
                self.items.set(Some(items));
                self.load_error.set(None);
            }
            Err(err) => self.load_error.set(Some(err.message)),
        }
    }

    /// Records a created item: appended to the list, its secret kept for showing once.
    pub fn added(&self, item: T, created: C) {
        let key = item.key();
        self.items.update(|items| {
            let items = items.get_or_insert_with(Vec::new);
            items.retain(|i| i.key() != key);
            items.push(item);
        });
        self.created.set(Some(created));
    }

    /// Drops an item that was removed on the server.
    pub fn removed(&self, key: i64) {
        self.items.update(|items| {
            if let Some(items) = items {
                items.retain(|i| i.key() != key);
            }
        });
    }

    /// Forgets the secret shown once.
    pub fn dismiss_secret(&self) {
        self.created.set(None);
    }

    /// Forgets everything (someone else logged in, or nobody is).
    pub fn reset(&self) {
        self.generation.update_value(|g| *g += 1);
        self.items.set(None);
        self.load_error.set(None);
        self.created.set(None);
    }
}
