//! The application backend of the `c-hook` scenario: answers every hook with
//! `{"result":"allow"}` at once, on the load generator's runtime, so the server pays for
//! asking a hook (the signed POST, the answer's parsing) and the backend's own work is as
//! small as it gets. It does not verify signatures: that would be the backend's CPU, which
//! is not what the scenario measures.

use std::net::SocketAddr;

use axum::routing::post;

/// A hook secret for the benchmark (`whsec_` + base64 of 32 bytes).
pub const SECRET: &str = "whsec_Y29uZmFiLWJlbmNoLWhvb2stc2VjcmV0LTAxMjM0NTY3";

/// Starts the responder on a free loopback port; it runs until the process ends.
pub async fn start() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = axum::Router::new().route("/hooks", post(|| async { ([("content-type", "application/json")], r#"{"result":"allow"}"#) }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

/// The server's environment for asking the responder at `addr` before every `room.send`.
pub fn env(addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("CONFAB_HOOK_URL", format!("http://{addr}/hooks")),
        ("CONFAB_HOOKS", "room.send".to_owned()),
        ("CONFAB_HOOK_SECRET", SECRET.to_owned()),
    ]
}
