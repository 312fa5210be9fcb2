//! Logins, signups and handshakes under load: a full password hashing queue answers 503
//! with `Retry-After` at once, sockets (which authenticate with tokens) are not held up by
//! it, and handshakes beyond the limit in progress get 503 instead of piling up.

use confab_shared::rpc::EchoParams;

use crate::helpers::{PASSWORD, problem, spawn_app_with, unique};

#[tokio::test]
async fn logins_and_signups_get_503_with_retry_after_while_the_hashing_queue_is_full() {
    let app = spawn_app_with(|c| {
        c.hash_threads = 1;
        c.hash_queue = 1;
    })
    .await;
    let name = unique("ann");
    let pair = app.signup_and_login(&name).await;
    // Take every slot (one thread + one queued), as a burst of slow logins would.
    let held: Vec<_> = std::iter::from_fn(|| app.state().hasher.try_reserve()).take(10).collect();
    assert_eq!(held.len(), 2, "threads + queue slots, no more");

    for response in [app.login(&name, PASSWORD).await, app.signup(&unique("bob"), PASSWORD).await, app.login(&unique("nobody"), PASSWORD).await] {
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let p = problem(response, 503).await;
        assert_eq!(p.kind, "/problems/busy");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        let secs: u64 = retry_after.expect("a Retry-After header").parse().expect("Retry-After in seconds");
        assert!(secs >= 1);
    }

    // The socket path authenticates with the token and never queues behind a hash.
    let mut socket = app.ws(&pair.access_token).await;
    let echoed = socket.ok(EchoParams { text: "still here".into() }).await;
    assert_eq!(echoed.text, "still here");

    drop(held);
    assert_eq!(app.login(&name, PASSWORD).await.status().as_u16(), 200, "a freed queue admits logins again");
}

#[tokio::test]
async fn socket_handshakes_beyond_the_limit_in_progress_get_503_and_succeed_once_a_slot_frees() {
    let app = spawn_app_with(|c| c.max_pending_upgrades = 1).await;
    let pair = app.signup_and_login(&unique("cy")).await;
    // Stand in for a handshake in progress (a reconnect storm would fill the slots).
    let held = app.state().upgrades.clone().try_acquire_owned().expect("the only slot");

    let (status, body) = app.ws_refused(app.ws_bearer_request(&pair.access_token)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("/problems/busy"), "{body}");

    drop(held);
    let mut socket = app.ws(&pair.access_token).await;
    assert_eq!(socket.ok(EchoParams { text: "in".into() }).await.text, "in");
}
