//! Webhooks, for an admin's Settings page: listing, creating (the `whsec_…` signing
//! secret is shown once), deleting, and each webhook's recent deliveries with a retry.
//!
//! Deliveries change on the server without any notification (the delivery worker attempts
//! them in the background), so a webhook's list is loaded when it is opened, on request,
//! and followed for a short while after a retry until that delivery settles.

use std::collections::BTreeMap;
use std::time::Duration;

use confab_shared::webhooks::{CreateWebhook, DeliveryStatus, Webhook, WebhookCreated, WebhookDelivery};
use leptos::prelude::*;

use super::REFRESH_MARGIN_MS;
use super::registry::Registry;
use crate::api::rest::{self, ApiError};
use crate::session::Session;

/// How often, and how many times, a retried delivery is checked on until it settles.
const FOLLOW_EVERY: Duration = Duration::from_millis(1_000);
const FOLLOW_TIMES: u32 = 20;

/// The recent deliveries of one webhook whose list is open.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deliveries {
    /// `None` until loaded.
    pub items: Option<Vec<WebhookDelivery>>,
    pub loading: bool,
    /// Why loading or the last retry failed.
    pub error: Option<String>,
    /// The deliveries whose retry is being asked for.
    pub retrying: Vec<i64>,
}

/// Every webhook (admins only); a copyable handle.
#[derive(Clone, Copy)]
pub struct Webhooks {
    session: Session,
    /// The list, and the webhook created last with its secret.
    pub registry: Registry<Webhook, WebhookCreated>,
    /// The webhook being deleted right now.
    pub deleting: RwSignal<Option<i64>>,
    /// Open delivery lists by webhook id.
    pub deliveries: RwSignal<BTreeMap<i64, Deliveries>>,
}

impl Webhooks {
    pub fn new(session: Session) -> Self {
        Self {
            session,
            registry: Registry::new(),
            deleting: RwSignal::new(None),
            deliveries: RwSignal::new(BTreeMap::new()),
        }
    }

    async fn token(self) -> Result<String, ApiError> {
        self.session.access_token(REFRESH_MARGIN_MS).await
    }

    /// (Re)loads the list from `GET /api/webhooks`.
    pub async fn load(self) {
        self.registry.load(async move { rest::list_webhooks(&self.token().await?).await }).await;
    }

    /// Registers a webhook; on success it joins the list and its secret is shown once.
    pub async fn create(self, body: CreateWebhook) -> Result<(), ApiError> {
        let created = rest::create_webhook(&self.token().await?, &body).await?;
        let listed = Webhook {
            id: created.id,
            url: created.url.clone(),
            events: created.events.clone(),
            rooms: created.rooms.clone(),
            created_at: created.created_at,
            disabled_at: None,
            disabled_reason: None,
        };
        self.registry.added(listed, created);
        Ok(())
    }

    /// Removes a webhook and its pending deliveries.
    pub async fn delete(self, id: i64) -> Result<(), ApiError> {
        self.deleting.set(Some(id));
        let result = async { rest::delete_webhook(&self.token().await?, id).await }.await;
        self.deleting.set(None);
        match result {
            Ok(()) => {}
            Err(err) if err.status == 404 => {}
            Err(err) => return Err(err),
        }
        self.registry.removed(id);
        self.deliveries.update(|open| {
            open.remove(&id);
        });
        if self.registry.created.with_untracked(|c| c.as_ref().is_some_and(|c| c.id == id)) {
            self.registry.dismiss_secret();
        }
        Ok(())
    }

    /// Whether a webhook's delivery list is open (reactive).
    pub fn is_open(&self, id: i64) -> bool {
        self.deliveries.with(|open| open.contains_key(&id))
    }

    /// Opens a webhook's delivery list and loads it.
    pub async fn open(self, id: i64) {
        self.deliveries.update(|open| {
            open.entry(id).or_default();
        });
        self.refresh(id).await;
    }

    /// Closes a webhook's delivery list.
    pub fn close(&self, id: i64) {
        self.deliveries.update(|open| {
            open.remove(&id);
        });
    }

    fn change(&self, id: i64, change: impl FnOnce(&mut Deliveries)) {
        self.deliveries.update(|open| {
            if let Some(entry) = open.get_mut(&id) {
                change(entry);
            }
        });
    }

    /// Reloads an open delivery list.
    pub async fn refresh(self, id: i64) {
        self.change(id, |d| d.loading = true);
        let result = async { rest::list_deliveries(&self.token().await?, id).await }.await;
        self.change(id, |d| {
            d.loading = false;
            match result {
                Ok(items) => {
                    d.items = Some(items);
                    d.error = None;
                }
                Err(err) => d.error = Some(format!("Could not load the deliveries: {}", err.message)),
            }
        });
    }

    /// Asks for a delivery to be attempted again now, then follows it until it settles.
    pub async fn retry(self, id: i64, delivery_id: i64) {
        self.change(id, |d| d.retrying.push(delivery_id));
        let result = async { rest::retry_delivery(&self.token().await?, id, delivery_id).await }.await;
        self.change(id, |d| {
            d.retrying.retain(|r| *r != delivery_id);
            match &result {
                Ok(fresh) => {
                    d.error = None;
                    if let Some(item) = d.items.iter_mut().flatten().find(|i| i.id == delivery_id) {
                        *item = fresh.clone();
                    }
                }
                Err(err) => d.error = Some(format!("Could not retry delivery {delivery_id}: {}", err.message)),
            }
        });
        if result.is_err() {
            return;
        }
        for _ in 0..FOLLOW_TIMES {
            gloo_timers::future::sleep(FOLLOW_EVERY).await;
            if !self.deliveries.with_untracked(|open| open.contains_key(&id)) {
                return;
            }
            self.refresh(id).await;
            let settled = self.deliveries.with_untracked(|open| {
                open.get(&id)
                    .and_then(|d| d.items.as_ref())
                    .and_then(|items| items.iter().find(|i| i.id == delivery_id))
                    .is_none_or(|i| i.status != DeliveryStatus::Pending)
            });
            if settled {
                return;
            }
        }
    }

    /// Forgets everything (another user, or none).
    pub fn reset(&self) {
        self.registry.reset();
        self.deliveries.set(BTreeMap::new());
    }
}
