//! The one error type of the client: what failed, with what a caller needs to react (the
//! HTTP status and problem document, the JSON-RPC error, the method whose answer never came).

use std::time::Duration;

use confab_shared::Problem;
use confab_shared::rpc::ErrorObject;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered a call with a JSON-RPC error (see [`Error::rpc_code`]).
    #[error("{method}: {} ({})", .error.message, .error.code)]
    Rpc { method: String, error: ErrorObject },
    /// A non-2xx answer of the REST API or of the socket upgrade (401: the token was refused).
    #[error("HTTP {status}{}", problem_suffix(.problem))]
    Http { status: u16, problem: Option<Problem> },
    /// The server refused the username and password (or throttled the login): retrying at once cannot help.
    #[error("login refused: HTTP {status}{}", problem_suffix(.problem))]
    AuthFailed { status: u16, problem: Option<Problem> },
    /// The connection went away after the call was sent and before its answer arrived: it may
    /// or may not have taken effect (retry sends with the same `nonce`).
    #[error("{method}: the connection closed before the answer arrived")]
    ConnectionLost { method: String },
    /// No answer (or no open connection to send on) within the call timeout.
    #[error("{method}: no answer within {timeout:?}")]
    Timeout { method: String, timeout: Duration },
    /// The client is closed for good: by `close()`, because every handle was dropped, or
    /// because the server ended the session (`close_code` 4001, 4003).
    #[error("the client is closed{}", close_suffix(*.close_code))]
    Closed { close_code: Option<u16> },
    /// The network or the WebSocket layer failed (refused, reset, malformed frames).
    #[error("transport: {0}")]
    Transport(String),
    /// An answer that does not have the shape the protocol says.
    #[error("unexpected answer: {0}")]
    Decode(#[from] serde_json::Error),
    /// The server URL is not one this client can use.
    #[error("invalid server URL {url:?}: {reason}")]
    Url { url: String, reason: &'static str },
}

impl Error {
    /// The JSON-RPC error code (`ErrorCode`'s numbers), for an [`Error::Rpc`].
    pub fn rpc_code(&self) -> Option<i32> {
        match self {
            Self::Rpc { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// The offending param of an invalid-params error (`data.field`).
    pub fn field(&self) -> Option<&str> {
        self.rpc_data("field")
    }

    /// The scope an API token lacks for the call (`data.scope`).
    pub fn scope(&self) -> Option<&str> {
        self.rpc_data("scope")
    }

    /// The HTTP status of a refused request or upgrade.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } | Self::AuthFailed { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn rpc_data(&self, key: &str) -> Option<&str> {
        match self {
            Self::Rpc { error, .. } => error.data.as_ref()?.get(key)?.as_str(),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(err: reqwest::Error) -> Self {
        Self::Transport(error_chain(&err))
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(err: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error as WsError;
        match err {
            // The upgrade was answered with something other than 101: keep the status and
            // the problem document, so that a refused token reads as a 401.
            WsError::Http(response) => {
                let problem = response.body().as_deref().and_then(|body| serde_json::from_slice(body).ok());
                Self::Http { status: response.status().as_u16(), problem }
            }
            other => Self::Transport(error_chain(&other)),
        }
    }
}

/// The error and its sources, e.g. "error sending request: connection refused".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn problem_suffix(problem: &Option<Problem>) -> String {
    problem.as_ref().map(|p| format!(" {}: {}", p.title, p.detail)).unwrap_or_default()
}

fn close_suffix(code: Option<u16>) -> String {
    code.map(|c| format!(" (close code {c})")).unwrap_or_default()
}
