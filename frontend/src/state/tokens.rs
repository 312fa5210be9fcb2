//! The signed-in person's API tokens (`cfb_…`), for the Settings page: listing them,
//! creating one (its secret is shown once) and revoking one.
//!
//! Tokens need a login to manage (an API token cannot mint or list tokens), so every call
//! goes over REST with the session's access token, renewed first when it is about to expire.

use confab_shared::{ApiToken, ApiTokenCreated, CreateApiToken};
use leptos::prelude::*;

use super::REFRESH_MARGIN_MS;
use super::registry::Registry;
use crate::api::rest::{self, ApiError};
use crate::session::Session;

/// The API tokens of whoever is logged in; a copyable handle.
#[derive(Clone, Copy)]
pub struct ApiTokens {
    session: Session,
    /// The list, and the token created last with its secret.
    pub registry: Registry<ApiToken, ApiTokenCreated>,
    /// The token being revoked right now (its button is disabled meanwhile).
    pub revoking: RwSignal<Option<i64>>,
}

impl ApiTokens {
    pub fn new(session: Session) -> Self {
        Self { session, registry: Registry::new(), revoking: RwSignal::new(None) }
    }

    /// (Re)loads the list from `GET /api/tokens`.
    pub async fn load(self) {
        let session = self.session;
        self.registry
            .load(async move {
                let token = session.access_token(REFRESH_MARGIN_MS).await?;
                rest::list_tokens(&token).await
            })
            .await;
    }

    /// Creates a token; on success it joins the list and its secret is shown once.
    pub async fn create(self, body: CreateApiToken) -> Result<(), ApiError> {
        let token = self.session.access_token(REFRESH_MARGIN_MS).await?;
        let created = rest::create_token(&token, &body).await?;
        self.registry.added(ApiToken::from(created.clone()), created);
        Ok(())
    }

    /// Revokes a token: it stops working at once and its sockets close.
    pub async fn revoke(self, id: i64) -> Result<(), ApiError> {
        self.revoking.set(Some(id));
        let result = async {
            let token = self.session.access_token(REFRESH_MARGIN_MS).await?;
            rest::revoke_token(&token, id).await
        }
        .await;
        self.revoking.set(None);
        match result {
            // 404: revoked already (another tab); either way it is gone.
            Ok(()) => self.registry.removed(id),
            Err(err) if err.status == 404 => self.registry.removed(id),
            Err(err) => return Err(err),
        }
        if self.registry.created.with_untracked(|c| c.as_ref().is_some_and(|c| c.id == id)) {
            self.registry.dismiss_secret();
        }
        Ok(())
    }

    /// Forgets the list and any secret on screen (another user, or none).
    pub fn reset(&self) {
        self.registry.reset();
    }
}
