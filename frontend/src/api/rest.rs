//! Typed helpers for the REST API. Every failure becomes an [`ApiError`] whose message is
//! the server's problem+json `detail`, so forms can show exactly what went wrong.

use confab_shared::moderation::{AuditPage, Report, ReportsPage, ResolveReport, RoomSanctionsPage, SanctionRequest, Suspension, SuspensionsPage};
use confab_shared::webhooks::{CreateWebhook, Webhook, WebhookCreated, WebhookDelivery};
use confab_shared::{
    ApiToken, ApiTokenCreated, CreateApiToken, CreateJob, CreateRoom, Credentials, JobAccepted, LoginProvider,
    OidcLogin, Problem, RoomSummary, SessionTokens, User,
};
use gloo_net::http::{Request, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A failed REST call, worded for people.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// The HTTP status; 0 when the server could not be reached at all.
    pub status: u16,
    /// What to show: the problem's `detail`, or a fallback for the status.
    pub message: String,
    /// For 422: the offending body or query field.
    pub field: Option<String>,
}

impl ApiError {
    fn unreachable() -> Self {
        Self { status: 0, message: "Cannot reach the server. Check your connection and try again.".into(), field: None }
    }

    /// The credentials were refused (bad token, revoked session, wrong password).
    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }

    /// Whether retrying later could help (network trouble, overload), as opposed to a refusal.
    pub fn is_transient(&self) -> bool {
        self.status == 0 || self.status >= 500
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn with_bearer(builder: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => builder.header("Authorization", &format!("Bearer {token}")),
        None => builder,
    }
}

async fn send(request: Result<Request, gloo_net::Error>) -> Result<Response, ApiError> {
    let request = request.map_err(|_| ApiError::unreachable())?;
    let response = request.send().await.map_err(|_| ApiError::unreachable())?;
    if response.ok() { Ok(response) } else { Err(problem(response).await) }
}

async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, ApiError> {
    let (status, text) = body_text(response).await;
    crate::util::from_json(&text).map_err(|_| ApiError {
        status,
        message: "The server sent an answer this page does not understand. Try reloading.".into(),
        field: None,
    })
}

/// The status and body of an answer. Not generic, so the WASM holds the wait for a body
/// once rather than once per answer type; a body that cannot be read counts as empty.
async fn body_text(response: Response) -> (u16, String) {
    (response.status(), response.text().await.unwrap_or_default())
}

/// Reads a problem+json body; a body that is not one still yields a sensible message.
async fn problem(response: Response) -> ApiError {
    let status = response.status();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
    let text = response.text().await.unwrap_or_default();
    let (mut message, field) = match crate::util::from_json::<Problem>(&text) {
        Ok(p) if !p.detail.trim().is_empty() => (crate::util::sentence(p.detail.trim()), p.field),
        Ok(p) if !p.title.trim().is_empty() => (crate::util::sentence(p.title.trim()), p.field),
        _ => (fallback(status).to_owned(), None),
    };
    if let Some(secs) = retry_after.filter(|_| status == 429) {
        message = format!("{}. Try again in {secs} s.", message.trim_end_matches('.'));
    }
    ApiError { status, message, field }
}

fn fallback(status: u16) -> &'static str {
    match status {
        400 | 422 => "The request was not valid.",
        401 => "Please log in again.",
        403 => "You are not allowed to do that.",
        404 => "Not found.",
        409 => "That already exists.",
        413 => "That is too large.",
        429 => "Too many attempts. Please wait a moment.",
        _ => "The server had a problem. Please try again.",
    }
}

async fn post_json<B: Serialize, T: DeserializeOwned>(
    path: &str,
    body: &B,
    token: Option<&str>,
) -> Result<T, ApiError> {
    decode(send(with_bearer(Request::post(path), token).json(body)).await?).await
}

async fn get_json<T: DeserializeOwned>(path: &str, token: &str) -> Result<T, ApiError> {
    decode(send(with_bearer(Request::get(path), Some(token)).build()).await?).await
}

async fn delete(path: &str, token: &str) -> Result<(), ApiError> {
    send(with_bearer(Request::delete(path), Some(token)).build()).await.map(drop)
}

/// `POST /api/auth/signup`.
pub async fn signup(credentials: &Credentials) -> Result<User, ApiError> {
    post_json("/api/auth/signup", credentials, None).await
}

/// The header the cookie session's routes need: a cross-site form cannot send it.
const CSRF_HEADER: &str = "Confab-CSRF";

/// `POST /api/auth/session`: logs in; the refresh token goes into an `HttpOnly` cookie that
/// no script of the page can read, the access token comes back.
pub async fn login(credentials: &Credentials) -> Result<SessionTokens, ApiError> {
    decode(send(Request::post("/api/auth/session").header(CSRF_HEADER, "1").json(credentials)).await?).await
}

/// `GET /api/auth/providers`: the identity providers offered for "Log in with".
pub async fn providers() -> Result<Vec<LoginProvider>, ApiError> {
    decode(send(Request::get("/api/auth/providers").build()).await?).await
}

/// `POST /api/auth/session/oidc/{provider}`: logs in with the code of the provider's
/// redirect; the session is then the same as after [`login`] (refresh token in the cookie).
pub async fn login_with(provider: &str, body: &OidcLogin) -> Result<SessionTokens, ApiError> {
    let path = format!("/api/auth/session/oidc/{}", String::from(js_sys::encode_uri_component(provider)));
    decode(send(Request::post(&path).header(CSRF_HEADER, "1").json(body)).await?).await
}

/// `POST /api/auth/session/refresh`: rotates the cookie's refresh token (the browser sends
/// and stores it) and returns a fresh access token.
pub async fn refresh() -> Result<SessionTokens, ApiError> {
    decode(send(Request::post("/api/auth/session/refresh").header(CSRF_HEADER, "1").build()).await?).await
}

/// `POST /api/auth/session/logout`: revokes the cookie's session (its sockets close with
/// 4003) and deletes the cookie; works with an expired access token.
pub async fn logout() -> Result<(), ApiError> {
    send(Request::post("/api/auth/session/logout").header(CSRF_HEADER, "1").build()).await.map(drop)
}

/// `GET /api/me`: used to tell a refused WebSocket upgrade (401) from a server that is down.
pub async fn me(access_token: &str) -> Result<User, ApiError> {
    decode(send(with_bearer(Request::get("/api/me"), Some(access_token)).build()).await?).await
}

/// `POST /api/rooms`: the only way to create an admin-only room.
pub async fn create_room(access_token: &str, body: &CreateRoom) -> Result<RoomSummary, ApiError> {
    post_json("/api/rooms", body, Some(access_token)).await
}

/// `POST /api/jobs`: starts exporting a room's history; progress arrives on the socket.
pub async fn create_export(access_token: &str, body: &CreateJob) -> Result<JobAccepted, ApiError> {
    post_json("/api/jobs", body, Some(access_token)).await
}

/// `POST /api/tokens`: the answer carries the `cfb_…` secret, the only time it is sent.
pub async fn create_token(access_token: &str, body: &CreateApiToken) -> Result<ApiTokenCreated, ApiError> {
    post_json("/api/tokens", body, Some(access_token)).await
}

/// `GET /api/tokens`: the caller's tokens, without their secrets.
pub async fn list_tokens(access_token: &str) -> Result<Vec<ApiToken>, ApiError> {
    get_json("/api/tokens", access_token).await
}

/// `DELETE /api/tokens/{id}`: the token stops working and its sockets close with 4003.
pub async fn revoke_token(access_token: &str, id: i64) -> Result<(), ApiError> {
    delete(&format!("/api/tokens/{id}"), access_token).await
}

/// `POST /api/webhooks` (admins): the answer carries the `whsec_…` secret, the only time it is sent.
pub async fn create_webhook(access_token: &str, body: &CreateWebhook) -> Result<WebhookCreated, ApiError> {
    post_json("/api/webhooks", body, Some(access_token)).await
}

/// `GET /api/webhooks` (admins): every webhook, oldest first.
pub async fn list_webhooks(access_token: &str) -> Result<Vec<Webhook>, ApiError> {
    get_json("/api/webhooks", access_token).await
}

/// `DELETE /api/webhooks/{id}` (admins): removes it with its pending deliveries.
pub async fn delete_webhook(access_token: &str, id: i64) -> Result<(), ApiError> {
    delete(&format!("/api/webhooks/{id}"), access_token).await
}

/// `GET /api/webhooks/{id}/deliveries` (admins): the newest deliveries first.
pub async fn list_deliveries(access_token: &str, webhook_id: i64) -> Result<Vec<WebhookDelivery>, ApiError> {
    get_json(&format!("/api/webhooks/{webhook_id}/deliveries"), access_token).await
}

/// `POST /api/webhooks/{id}/deliveries/{delivery_id}/retry` (admins): attempts it again now.
pub async fn retry_delivery(
    access_token: &str,
    webhook_id: i64,
    delivery_id: i64,
) -> Result<WebhookDelivery, ApiError> {
    let path = format!("/api/webhooks/{webhook_id}/deliveries/{delivery_id}/retry");
    decode(send(with_bearer(Request::post(&path), Some(access_token)).build()).await?).await
}

/// `path?name=value&…` with each value encoded; empty values are left out.
fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", String::from(js_sys::encode_uri_component(value))))
        .collect();
    if query.is_empty() { path.to_owned() } else { format!("{path}?{}", query.join("&")) }
}

/// `GET /api/reports` (admins see every room): `state` is `open` or `resolved`.
pub async fn reports(access_token: &str, state: &str, cursor: &str) -> Result<ReportsPage, ApiError> {
    get_json(&with_query("/api/reports", &[("state", state), ("cursor", cursor)]), access_token).await
}

/// `POST /api/reports/{id}/resolve`: records what was done; the report as it is now.
pub async fn resolve_report(access_token: &str, id: i64, body: &ResolveReport) -> Result<Report, ApiError> {
    post_json(&format!("/api/reports/{id}/resolve"), body, Some(access_token)).await
}

/// `GET /api/audit` (admins) with its filters (`actor`, `target`, `room`, `action`), newest first.
pub async fn audit(access_token: &str, filters: &[(&str, &str)], cursor: &str) -> Result<AuditPage, ApiError> {
    let mut params = filters.to_vec();
    params.push(("cursor", cursor));
    get_json(&with_query("/api/audit", &params), access_token).await
}

/// `GET /api/suspensions` (admins): the accounts suspended now, newest first.
pub async fn suspensions(access_token: &str, cursor: &str) -> Result<SuspensionsPage, ApiError> {
    get_json(&with_query("/api/suspensions", &[("cursor", cursor)]), access_token).await
}

/// `GET /api/rooms/{room}/bans` or `.../mutes` (`what`; the room's owner, moderators and
/// admins): what is in force, newest first, `limit` at a time (empty: the server's 50).
pub async fn room_sanctions(access_token: &str, room: &str, what: &str, cursor: &str, limit: &str) -> Result<RoomSanctionsPage, ApiError> {
    get_json(&with_query(&format!("/api/rooms/{room}/{what}"), &[("cursor", cursor), ("limit", limit)]), access_token).await
}

fn user_path(username: &str, what: &str) -> String {
    format!("/api/users/{}/{what}", String::from(js_sys::encode_uri_component(username)))
}

/// `POST /api/users/{username}/suspend` (admins).
pub async fn suspend(access_token: &str, username: &str, body: &SanctionRequest) -> Result<Suspension, ApiError> {
    post_json(&user_path(username, "suspend"), body, Some(access_token)).await
}

/// `POST /api/users/{username}/unsuspend` (admins).
pub async fn unsuspend(access_token: &str, username: &str) -> Result<Suspension, ApiError> {
    decode(send(with_bearer(Request::post(&user_path(username, "unsuspend")), Some(access_token)).build()).await?).await
}

/// A finished export, fetched with the bearer token (a plain link cannot send the header).
pub struct ExportFile {
    pub bytes: Vec<u8>,
    pub content_type: String,
    /// From `Content-Disposition`, e.g. `lobby-export-3.json`.
    pub filename: Option<String>,
}

/// `GET /api/jobs/{id}/download`.
pub async fn download_export(access_token: &str, job_id: i64) -> Result<ExportFile, ApiError> {
    let path = format!("/api/jobs/{job_id}/download");
    let response = send(with_bearer(Request::get(&path), Some(access_token)).build()).await?;
    let headers = response.headers();
    let content_type = headers.get("content-type").unwrap_or_else(|| "application/octet-stream".to_owned());
    let filename = headers.get("content-disposition").and_then(|d| disposition_filename(&d));
    let bytes = response.binary().await.map_err(|_| ApiError::unreachable())?;
    Ok(ExportFile { bytes, content_type, filename })
}

/// The `filename="…"` of a `Content-Disposition` header.
fn disposition_filename(value: &str) -> Option<String> {
    let start = value.find("filename=")? + "filename=".len();
    let name = value[start..].split(';').next()?.trim().trim_matches('"');
    (!name.is_empty()).then(|| name.to_owned())
}
