//! A bot that answers `!ping` with `pong` in a room, and keeps doing so across network
//! failures and server restarts (the client reconnects and catches up by itself).
//!
//! ```sh
//! CONFAB_TOKEN=cfb_… cargo run -p confab-client --example echo_bot
//! ```
//!
//! Environment: `CONFAB_TOKEN` (an API token, or any access token; required), `CONFAB_URL`
//! (default `http://127.0.0.1:8000`), `CONFAB_ROOM` (default `lobby`).

use std::process::ExitCode;

use confab_client::shared::rpc::{JoinParams, Notification, SendParams};
use confab_client::{Event, Options};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("echo_bot: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::var("CONFAB_TOKEN").map_err(|_| "set CONFAB_TOKEN to an API token (cfb_…)")?;
    let url = std::env::var("CONFAB_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".to_owned());
    let room = std::env::var("CONFAB_ROOM").unwrap_or_else(|_| "lobby".to_owned());

    let (client, mut events) = Options::new(url).token(token).connect().await?;
    client.call(JoinParams { room: room.clone(), history: Some(0) }).await?;
    println!("echo_bot: answering !ping in {room}");
    while let Some(event) = events.recv().await {
        match event {
            Event::Notification(Notification::RoomMessage(message)) if message.text.trim() == "!ping" => {
                // The nonce makes a retried answer (after a lost connection) land only once.
                let nonce = Some(format!("pong-{}", message.id));
                client.call(SendParams { room: message.room, text: "pong".to_owned(), nonce }).await?;
            }
            Event::Disconnected { close_code } => println!("echo_bot: disconnected ({close_code:?}), reconnecting"),
            Event::Reconnected(resync) => println!("echo_bot: back, {} missed messages", resync.messages.len()),
            Event::Closed { close_code, error } => {
                return Err(format!("closed ({close_code:?}): {}", error.map(|e| e.to_string()).unwrap_or_default()).into());
            }
            _ => {}
        }
    }
    Ok(())
}
