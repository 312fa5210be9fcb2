//! The in-flight window: calls from many tasks pipeline on the one socket, and the client
//! holds at most `max_in_flight` of them at once (sent and unanswered, or waiting for a
//! reconnection); the rest wait their turn.

use std::time::Duration;

use confab_client::options::DEFAULT_MAX_IN_FLIGHT;
use confab_client::{Client, Options};
use confab_shared::rpc::EchoParams;

use super::server::Server;

/// Generous: a thousand round trips on a loaded two-core CI machine. Only a hang fails it.
const PATIENCE: Duration = Duration::from_secs(120);

/// A server whose call rate limit is far above the test's, so only the window shapes the traffic.
async fn unthrottled() -> Server {
    Server::start_with(|config| { config.rate_per_sec = 1_000_000; config.write_bytes_per_sec = u32::MAX }).await
}

/// Fires `count` echo calls from as many tasks at once; every one must come back with its text.
async fn echo_flood(client: &Client, count: usize) {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { (i, client.call(EchoParams { text: format!("call {i}") }).await) })
        })
        .collect();
    let all = async {
        for task in tasks {
            let (i, result) = task.await.expect("the calling task finishes");
            let echoed = result.unwrap_or_else(|err| panic!("call {i} failed: {err}"));
            assert_eq!(echoed.text, format!("call {i}"));
        }
    };
    tokio::time::timeout(PATIENCE, all).await.expect("every call answered in time");
}

#[tokio::test]
async fn a_thousand_concurrent_calls_all_succeed_with_at_most_sixty_four_in_flight() {
    let server = unthrottled().await;
    let alice = server.account("alice").await;
    let (client, _events) =
        Options::new(server.url()).token(&alice.access_token).call_timeout(PATIENCE).connect().await.expect("alice connects");
    assert_eq!(DEFAULT_MAX_IN_FLIGHT, 64);

    echo_flood(&client, 1_000).await;

    let peak = client.peak_in_flight();
    assert!((1..=DEFAULT_MAX_IN_FLIGHT).contains(&peak), "the client held {peak} calls at once");
    client.close().await;
}

#[tokio::test]
async fn a_smaller_window_is_respected_and_a_window_of_zero_means_one() {
    let server = unthrottled().await;
    let bob = server.account("bob").await;
    for (asked, allowed) in [(4, 4), (0, 1)] {
        let (client, _events) = Options::new(server.url())
            .token(&bob.access_token)
            .call_timeout(PATIENCE)
            .max_in_flight(asked)
            .connect()
            .await
            .expect("bob connects");
        echo_flood(&client, 200).await;
        let peak = client.peak_in_flight();
        assert!((1..=allowed).contains(&peak), "asked for {asked}, the client held {peak} calls at once");
        client.close().await;
    }
}
