//! The error of the feature layer, mapped once to problem+json and once to JSON-RPC.
//!
//! Features return [`AppError`] whether they were called over REST or over the socket; the
//! two transports differ only in these two mappings. Internal causes are logged where the
//! mapping happens and never shown to the client.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use confab_shared::moderation::Sanction;
use confab_shared::{Problem, Scope, Timestamp};
use confab_shared::rpc::{ErrorCode, ErrorObject};

use crate::auth::password::HashError;
use crate::storage::StorageError;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 401 / -32001: no valid credentials for something that needs them.
    #[error("authentication required")]
    Unauthenticated,
    /// 401 / -32001: a bearer token was refused; the detail names the rule it broke (and
    /// never repeats the token).
    #[error("token refused: {0}")]
    TokenRefused(String),
    /// 401 on login: unknown user or wrong password, deliberately indistinguishable.
    #[error("invalid username or password")]
    BadCredentials,
    /// 403 / -32003.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 403 / -32003 with `data.scope`: an API token called outside its scopes.
    #[error("this API token lacks the `{}` scope", .0.as_str())]
    MissingScope(Scope),
    /// 403 / -32003 with `data.reason` and `data.hook`: the application's backend refused
    /// the call (a hook's deny); the reason is the backend's.
    #[error("refused by the application: {reason}")]
    Denied { hook: confab_shared::hooks::HookName, reason: String },
    /// 403 / -32003 with `data.reason` (`muted`, `banned`, `suspended`) and `data.until`: a
    /// moderation decision refuses the call; the detail says which in words.
    #[error("{detail}")]
    Sanctioned { reason: Sanction, until: Option<i64>, detail: String },
    /// 429 / -32029 with `data.reason = "slow_mode"`: the room is in slow mode and the
    /// caller's last message there is too recent.
    #[error("the room is in slow mode: wait before sending again")]
    SlowMode { retry_after_ms: u64 },
    /// 404 / -32004.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 / -32009.
    #[error("{0}")]
    Conflict(&'static str),
    /// 410 / -32004: it existed and was removed for good (an expired export file).
    #[error("{0}")]
    Gone(&'static str),
    /// 409 / -32009 naming the field whose value conflicts (`field` / `data.field`): a nonce
    /// already used for a different message.
    #[error("{message}")]
    ConflictOn { field: &'static str, message: &'static str },
    /// 422 / -32602, naming the offending field or param: one of ours, or the path serde
    /// found a body's fault at (`scopes[0]`).
    #[error("{field}: {message}")]
    Invalid { field: Cow<'static, str>, message: String },
    /// 400: malformed JSON or the wrong content type.
    #[error("{0}")]
    BadRequest(String),
    /// 413: a body over its limit.
    #[error("{0}")]
    TooLarge(&'static str),
    /// 429 / -32029.
    #[error("too many requests")]
    RateLimited { retry_after_ms: u64 },
    /// 429 / -32029 with `Retry-After`: a cap on what one client may hold at once (open
    /// sockets per address or per user) is reached; the detail says which. Retrying helps
    /// only once the client has let go of something.
    #[error("{detail}")]
    AtCap { detail: String, retry_after_secs: u64 },
    /// 503 with `Retry-After`: the server is at capacity for this work (password hashing);
    /// retrying after the given wait may succeed.
    #[error("the server is busy; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// 503: a dependency is down; the client may retry.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    /// 500 / -32603: logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// 409 / -32009 for a `nonce` its sender already used for a different message.
    pub fn nonce_reused() -> Self {
        Self::ConflictOn { field: "nonce", message: "nonce already used for a different message" }
    }

    /// 429 for a wait the throttles computed.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        Self::RateLimited { retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX) }
    }

    /// A validation failure of `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { field: Cow::Borrowed(field), message: message.into() }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated | Self::TokenRefused(_) | Self::BadCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::MissingScope(_) | Self::Denied { .. } | Self::Sanctioned { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Gone(_) => StatusCode::GONE,
            Self::Conflict(_) | Self::ConflictOn { .. } => StatusCode::CONFLICT,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } | Self::AtCap { .. } | Self::SlowMode { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy { .. } | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem `type` slug.
    fn slug(&self) -> &'static str {
        match self {
            Self::Unauthenticated | Self::TokenRefused(_) => "unauthenticated",
            Self::BadCredentials => "bad-credentials",
            Self::Forbidden(_) | Self::Denied { .. } => "forbidden",
            Self::Sanctioned { reason, .. } => match reason {
                Sanction::Suspended => "suspended",
                Sanction::Banned => "banned",
                Sanction::Muted => "muted",
                Sanction::SlowMode => "slow-mode",
            },
            Self::SlowMode { .. } => "slow-mode",
            Self::MissingScope(_) => "insufficient-scope",
            Self::NotFound(_) => "not-found",
            Self::Gone(_) => "gone",
            Self::Conflict(_) | Self::ConflictOn { .. } => "conflict",
            Self::Invalid { .. } => "validation",
            Self::BadRequest(_) => "bad-request",
            Self::TooLarge(_) => "too-large",
            Self::RateLimited { .. } | Self::AtCap { .. } => "rate-limited",
            Self::Busy { .. } => "busy",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// What the client may read: internals are replaced by a generic sentence.
    fn public_detail(&self) -> String {
        match self {
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                "an internal error occurred; it has been logged".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The problem+json body for this error.
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        Problem {
            kind: format!("/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail: self.public_detail(),
            field: match self {
                Self::Invalid { field, .. } => Some(field.clone().into_owned()),
                Self::ConflictOn { field, .. } => Some((*field).to_owned()),
                _ => None,
            },
            reason: match self {
                Self::Sanctioned { reason, .. } => Some(*reason),
                Self::SlowMode { .. } => Some(Sanction::SlowMode),
                _ => None,
            },
            until: match self {
                Self::Sanctioned { until, .. } => until.map(Timestamp::from_millis),
                _ => None,
            },
        }
    }
}

impl From<HashError> for AppError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => Self::Busy { retry_after_secs: crate::auth::password::RETRY_AFTER_SECS },
            HashError::Failed(cause) => Self::Internal(cause),
        }
    }
}

impl From<StorageError> for AppError {
    fn from(err: StorageError) -> Self {
        match err {
            // The cause was logged where the write failed (once per batch, not per caller).
            StorageError::Unavailable(_) => Self::Unavailable("database"),
            StorageError::Full(_) => Self::Unavailable("the database is full"),
            other => Self::Internal(other.into()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let problem = self.to_problem();
        let status = self.status();
        let mut response = (status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        let retry_after_secs = match self {
            Self::RateLimited { retry_after_ms } | Self::SlowMode { retry_after_ms } => Some(retry_after_ms.div_ceil(1000).max(1)),
            Self::Busy { retry_after_secs } | Self::AtCap { retry_after_secs, .. } => Some(retry_after_secs.max(1)),
            _ => None,
        };
        if let Some(secs) = retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<AppError> for ErrorObject {
    fn from(err: AppError) -> Self {
        match &err {
            AppError::Unauthenticated | AppError::TokenRefused(_) | AppError::BadCredentials => {
                ErrorObject::with_message(ErrorCode::Unauthenticated, err.to_string())
            }
            AppError::Forbidden(_) => ErrorObject::with_message(ErrorCode::Forbidden, err.to_string()),
            AppError::MissingScope(scope) => ErrorObject::missing_scope(*scope),
            AppError::Denied { hook, reason } => ErrorObject::denied(*hook, reason),
            AppError::Sanctioned { reason, until, detail } => ErrorObject::sanctioned(*reason, until.map(Timestamp::from_millis), detail.clone()),
            AppError::SlowMode { retry_after_ms } => ErrorObject::slow_mode(*retry_after_ms),
            AppError::NotFound(_) | AppError::Gone(_) => ErrorObject::with_message(ErrorCode::NotFound, err.to_string()),
            AppError::Conflict(_) => ErrorObject::with_message(ErrorCode::Conflict, err.to_string()),
            AppError::ConflictOn { field, message } => ErrorObject::conflict_on(field, *message),
            AppError::Invalid { field, message } => ErrorObject::invalid_param(field, format!("{field}: {message}")),
            AppError::BadRequest(_) => ErrorObject::with_message(ErrorCode::InvalidRequest, err.to_string()),
            AppError::TooLarge(_) => ErrorObject::with_message(ErrorCode::InvalidParams, err.to_string()),
            AppError::RateLimited { retry_after_ms } => ErrorObject::rate_limited(*retry_after_ms),
            AppError::Busy { retry_after_secs } | AppError::AtCap { retry_after_secs, .. } => {
                ErrorObject::rate_limited(retry_after_secs.saturating_mul(1000))
            }
            AppError::Unavailable(_) | AppError::Internal(_) => {
                ErrorObject::with_message(ErrorCode::Internal, err.public_detail())
            }
        }
    }
}
