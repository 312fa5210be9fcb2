//! The OpenAPI 3.1 document of the REST API, generated from the handlers' annotations.
//!
//! `openapi/openapi.json` is this document, committed; a test fails when they differ
//! (`CONFAB_BLESS=1` rewrites it: see `committed.rs`).

use confab_shared::*;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{auth, features};

#[derive(OpenApi)]
#[openapi(
    info(title = "Confab", description = "Real-time chat and presence: REST API. The WebSocket JSON-RPC API is described at /api/asyncapi.json, and for people at /api/docs/protocol."),
    paths(
        auth::routes::signup,
        auth::routes::login,
        auth::routes::refresh,
        auth::routes::logout,
        auth::routes::me,
        auth::cookie::log_in,
        auth::cookie::refresh,
        auth::cookie::log_out,
        auth::oidc::providers,
        auth::oidc::log_in,
        auth::cookie::log_in_with,
        features::users::list_users,
        features::rooms::list_rooms,
        features::rooms::create_room,
        features::rooms::room_messages,
        features::rooms::put_quiet,
        features::publish::publish,
        features::jobs::create_job,
        features::jobs::get_job,
        features::jobs::download,
        features::tokens::create_token,
        features::tokens::list_tokens,
        features::tokens::revoke_token,
        features::webhooks::create_webhook,
        features::webhooks::list_webhooks,
        features::webhooks::delete_webhook,
        features::webhooks::list_deliveries,
        features::webhooks::retry_delivery,
        features::push::public_key,
        features::push::create_subscription,
        features::push::list_subscriptions,
        features::push::delete_subscription,
        features::moderation::room_routes::kick,
        features::moderation::room_routes::ban,
        features::moderation::room_routes::unban,
        features::moderation::room_routes::mute,
        features::moderation::room_routes::unmute,
        features::moderation::room_routes::set_role,
        features::moderation::room_routes::configure,
        features::moderation::room_routes::bans,
        features::moderation::room_routes::mutes,
        features::moderation::accounts::suspend,
        features::moderation::accounts::unsuspend,
        features::moderation::accounts::purge,
        features::moderation::accounts::list,
        features::moderation::reports::list,
        features::moderation::reports::resolve,
        features::moderation::audit::list,
        features::moderation::audit::export,
        features::system::health,
        features::system::openapi_json,
        features::system::asyncapi_json,
    ),
    components(schemas(User, UserPresence, UsersPage, Credentials, RefreshRequest, TokenPair, SessionTokens, LoginProvider, OidcLogin, RoomSummary, RoomsPage, CreateRoom, QuietRequest, Message, MentionAll, DirectMessage, PublishTarget, PublishRequest, PublishAccepted, JobKind, CreateJobKind, ExportFormat, CreateJob, JobAccepted, JobState, Job, Health, Status, Problem, Scope, CreateApiToken, ApiToken, ApiTokenCreated, webhooks::WebhookEvent, webhooks::CreateWebhook, webhooks::Webhook, webhooks::WebhookCreated, webhooks::DeliveryStatus, webhooks::WebhookDelivery, webhooks::WebhookBody, push::PushKey, push::PushSubscriptionKeys, push::CreatePushSubscription, push::PushSubscription, push::PushKind, push::PushMessage, moderation::Sanction, moderation::ModerationAction, moderation::SanctionRequest, moderation::KickRequest, moderation::RoleRequest, moderation::SettingsRequest, moderation::RoomSettings, moderation::ModerationResult, moderation::RoomRole, moderation::Suspension, moderation::SuspendedAccount, moderation::SuspensionsPage, moderation::RoomSanction, moderation::RoomSanctionsPage, moderation::PurgeRequest, moderation::ReportState, moderation::Report, moderation::ReportsPage, moderation::ResolveReport, moderation::AuditEntry, moderation::AuditPage, moderation::AuditExportRequest, features::jobs::ExportFile)),
    modifiers(&BearerAuth, &ProblemResponses),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "users", description = "Users and presence"),
        (name = "rooms", description = "Rooms and history"),
        (name = "publish", description = "Notices from outside to rooms, users or everyone"),
        (name = "jobs", description = "Background jobs (room exports) and their files"),
        (name = "tokens", description = "API tokens for programs: `Authorization: Bearer cfb_…`, scoped read / write / publish"),
        (name = "webhooks", description = "Signed outgoing events (Standard Webhooks) for admins' URLs"),
        (name = "push", description = "Web Push subscriptions of the caller's browsers, and the server's VAPID key"),
        (name = "moderation", description = "Suspensions, purges, the reports queue and the audit log"),
        (name = "system", description = "Health and the API documents"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT access token, or an API token cfb_…")
                    .description(Some("An access token from `POST /api/auth/login`, or an API token from `POST /api/tokens` (limited to its scopes: a route outside them answers 403 `/problems/insufficient-scope`)."))
                    .build(),
            ),
        );
    }
}

/// Documents the answers every operation of a kind can give, so no handler can forget them:
/// an operation with a JSON body can answer 400 (not JSON, or malformed), 413 (too large) and
/// 422 (a field is missing or invalid); an operation that reads a bearer token can answer 401
/// (a bad token is refused even where a token is optional).
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
            ResponseBuilder::new().description(description).content("application/problem+json", content).build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                if operation.request_body.is_some() {
                    for (status, description) in [
                        ("400", "The body is not JSON (or not sent as application/json)"),
                        ("413", "The body is too large"),
                        ("422", "A body field is missing or invalid; `field` names it"),
                    ] {
                        responses.entry(status.to_owned()).or_insert_with(|| problem(description).into());
                    }
                }
                let reads_token = operation.security.iter().flatten().any(|requirement| {
                    serde_json::to_value(requirement).is_ok_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                });
                if reads_token {
                    responses
                        .entry("401".to_owned())
                        .or_insert_with(|| problem("Missing, invalid, expired or revoked token").into());
                }
            }
        }
    }
}

/// The document as pretty JSON, exactly as committed.
pub fn openapi_json() -> String {
    let mut json = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_openapi_document_matches_the_code() {
        crate::committed::check("openapi/openapi.json", &super::openapi_json());
    }
}
