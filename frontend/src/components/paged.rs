//! A list paged with the server's cursor behind a "More" button, for the REST listings of
//! the moderation page and the room settings panel; an answer to an older question (the
//! filters changed, or the list was loaded afresh meanwhile) is dropped.

use std::future::Future;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::rest::ApiError;
use crate::session::Session;
use crate::state::{Chat, REFRESH_MARGIN_MS};

/// One paged list: its rows so far, where the next page starts, why it failed.
pub struct Paged<T: Send + Sync + 'static> {
    pub items: RwSignal<Vec<T>>,
    pub next: RwSignal<Option<String>>,
    pub loaded: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
    /// Bumped by every fresh load, so an answer to an older one is dropped.
    generation: StoredValue<u64>,
    session: Session,
}

impl<T: Send + Sync + 'static> Clone for Paged<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Paged<T> {}

impl<T: Clone + Send + Sync + 'static> Paged<T> {
    pub fn new() -> Self {
        Self {
            items: RwSignal::new(Vec::new()),
            next: RwSignal::new(None),
            loaded: RwSignal::new(false),
            error: RwSignal::new(None),
            generation: StoredValue::new(0),
            session: expect_context::<Chat>().session,
        }
    }

    /// Loads the first page (`more`: the next one) with `fetch(access_token, cursor)`.
    pub fn load<Fut>(self, more: bool, fetch: impl FnOnce(String, String) -> Fut + 'static)
    where
        Fut: Future<Output = Result<(Vec<T>, Option<String>), ApiError>> + 'static,
    {
        let session = self.session;
        let cursor = if more { self.next.get_untracked().unwrap_or_default() } else { String::new() };
        if !more {
            self.generation.update_value(|g| *g += 1);
        }
        let asked = self.generation.get_value();
        spawn_local(async move {
            let result = async {
                let token = session.access_token(REFRESH_MARGIN_MS).await?;
                fetch(token, cursor).await
            }
            .await;
            if self.generation.get_value() != asked {
                return;
            }
            match result {
                Ok((rows, next)) => {
                    if more {
                        self.items.update(|items| items.extend(rows));
                    } else {
                        self.items.set(rows);
                    }
                    self.next.set(next);
                    self.error.set(None);
                    self.loaded.set(true);
                }
                Err(err) => self.error.set(Some(err.message)),
            }
        });
    }
}

/// Below a list: why it failed, that it is empty, or a "More" button (`{what}-more`).
pub fn list_footer<T: Clone + Send + Sync + 'static>(
    list: Paged<T>,
    what: &'static str,
    empty: &'static str,
    more: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    move || {
        if let Some(err) = list.error.get() {
            return view! { <p class="form-error" role="alert" data-testid=format!("{what}-error")>{err}</p> }.into_any();
        }
        if list.loaded.get() && list.items.with(Vec::is_empty) {
            return view! { <p class="muted" data-testid=format!("{what}-empty")>{empty}</p> }.into_any();
        }
        let more = more.clone();
        list.next
            .with(Option::is_some)
            .then(|| {
                view! {
                    <button type="button" class="secondary small" data-testid=format!("{what}-more") on:click=move |_| more()>
                        "More"
                    </button>
                }
            })
            .into_any()
    }
}
