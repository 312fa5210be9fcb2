//! A real Confab server in the test process (the backend's `Application` on a loopback
//! port, SQLite in a temporary data dir), which a test can restart on the same port and data
//! dir as a deploy would; and the waits every test bounds with [`WAIT`].

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use confab::config::Config;
use confab::startup::Application;
use confab_client::{Event, Events, Rest};
use confab_shared::{Credentials, TokenPair};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The longest any single wait may take before the test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(10);
pub const PASSWORD: &str = "correct horse battery";

pub struct Server {
    pub addr: SocketAddr,
    pub rest: Rest,
    config: Config,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration `configure` adjusts (TTLs, ...).
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        // confab-client's REST client is a reqwest client: built after the provider is set.
        confab::tls::install();
        let dir = tempfile::tempdir().expect("a temporary data dir");
        let mut config = Config::for_tests(dir.path().to_path_buf());
        configure(&mut config);
        let (addr, running) = run(config.clone()).await;
        // Restarts come back on the same port, as a redeployed server would.
        config.bind = addr;
        let rest = Rest::new(&format!("http://{addr}")).expect("a REST client");
        Self { addr, rest, config, running: Some(running), _dir: dir }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server (its sockets close with 1001) and starts it again on the same port and data dir.
    pub async fn restart(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            within("the server to stop", task).await.expect("the server task ends");
        }
        self.running = Some(run(self.config.clone()).await.1);
    }

    /// A new account, logged in.
    pub async fn account(&self, prefix: &str) -> TokenPair {
        let credentials = Credentials { username: unique(prefix), password: PASSWORD.to_owned() };
        within("signup", self.rest.signup(&credentials)).await.expect("signup");
        within("login", self.rest.login(&credentials)).await.expect("login")
    }
}

async fn run(config: Config) -> (SocketAddr, (oneshot::Sender<()>, JoinHandle<()>)) {
    let app = within("the server to build", Application::build(config)).await.expect("the server builds");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let outcome = app
            .run_until_stopped(async move {
                let _ = stopped.await;
            })
            .await;
        outcome.expect("the server runs and stops cleanly");
    });
    (addr, (stop, task))
}

/// Awaits `fut`, failing the test after [`WAIT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// A name unique to this test: `prefix` and a random suffix.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// The next event matching `pick`, skipping the others; fails the test after `WAIT`.
pub async fn next_matching<T>(events: &mut Events, what: &str, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    within(what, async {
        loop {
            match events.recv().await {
                Some(event) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                None => panic!("the events ended while waiting for {what}"),
            }
        }
    })
    .await
}
