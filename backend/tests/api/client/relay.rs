//! A TCP proxy between a client and the test server, as the networks that break WebSockets
//! are: it relays every HTTP request byte for byte, and either answers a WebSocket upgrade
//! with 403 (a proxy that refuses upgrades) or passes it and cuts the socket after a short
//! silence from the server (a gateway that kills long-lived sockets, like nginx's
//! `proxy_read_timeout`); while the server is down it answers 502, as nginx does. The
//! TypeScript client's tests do the same with a real nginx.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Clone, Copy)]
pub enum Mode {
    /// Upgrades get `403 Forbidden` (until [`Relay::pass_upgrades`]).
    RefuseUpgrades,
    /// Upgrades pass; a socket the server says nothing on for this long is cut.
    CutSilentSockets(Duration),
}

/// The proxy, listening on a loopback port until dropped.
pub struct Relay {
    pub addr: SocketAddr,
    /// Set by [`Relay::pass_upgrades`]: the proxy was fixed.
    passing: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    pub async fn start(upstream: SocketAddr, mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let passing = Arc::new(AtomicBool::new(false));
        let fixed = passing.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let mode = if fixed.load(Ordering::Relaxed) { Mode::CutSilentSockets(Duration::MAX) } else { mode };
                connections.spawn(relay(client, upstream, mode));
                while connections.try_join_next().is_some() {}
            }
        });
        Self { addr, passing, task }
    }

    /// From now on upgrades pass and sockets are never cut.
    pub fn pass_upgrades(&self) {
        self.passing.store(true, Ordering::Relaxed);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, mode: Mode) {
    // The first request's head: enough to see whether it asks for an upgrade.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 << 10 {
            return;
        }
    }
    let upgrade = String::from_utf8_lossy(&head).to_ascii_lowercase().contains("upgrade: websocket");
    if upgrade && matches!(mode, Mode::RefuseUpgrades) {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        // As nginx answers while its server is down or restarting.
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    match mode {
        Mode::CutSilentSockets(silence) if upgrade => {
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let up = tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
            let mut buf = vec![0u8; 16 << 10];
            // Dropping both halves cuts the socket without a close frame, as the gateway does.
            while let Ok(Ok(n)) = tokio::time::timeout(silence, server_read.read(&mut buf)).await {
                if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            up.abort();
        }
        _ => {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        }
    }
}
