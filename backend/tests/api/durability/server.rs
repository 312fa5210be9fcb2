//! A `confab` process on a database that outlives it, and the little a test needs to talk to it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use confab_shared::TokenPair;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(15);
const SECRET: &str = "durability-test-secret-durability-test";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The database a server runs on: a SQLite file in a temp dir, or a fresh PostgreSQL database.
pub struct Database {
    pub url: String,
    pub dir: tempfile::TempDir,
    /// PostgreSQL: the server the database was created on, and its name (dropped at the end).
    pg: Option<(String, String)>,
}

impl Database {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("confab.db").display());
        Self { url, dir, pg: None }
    }

    /// A fresh database on `CONFAB_TEST_PG_URL` (scripts/services.sh start sets it).
    pub async fn postgres() -> Self {
        let admin = std::env::var("CONFAB_TEST_PG_URL").unwrap_or_else(|_| {
            panic!("CONFAB_TEST_PG_URL is not set: run `bash scripts/services.sh start && source /tmp/confab-services/env` (just test does)")
        });
        let name = format!("confab_durable_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        admin_sql(&admin, &format!("CREATE DATABASE {name}")).await;
        let (base, _) = admin.rsplit_once('/').expect("CONFAB_TEST_PG_URL must end with a database name");
        Self { url: format!("{base}/{name}"), dir: tempfile::tempdir().expect("temp dir"), pg: Some((admin.clone(), name)) }
    }

    /// PostgreSQL: refuses new connections and ends the open ones (`false`), or lets them in again.
    pub async fn allow_connections(&self, allow: bool) {
        let (admin, name) = self.pg.as_ref().expect("a PostgreSQL database");
        admin_sql(admin, &format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {allow}")).await;
        if !allow {
            admin_sql(admin, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")).await;
        }
    }

    /// Runs a statement straight on the database (set-up a test cannot do over the wire).
    pub async fn execute(&self, sql: &str) {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(&self.url).await.expect("connecting to the test database");
        db.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = db.close().await;
    }

    /// Rows of `sql` (selecting integers and text only), straight from the database.
    pub async fn rows(&self, sql: &str) -> Vec<Vec<Value>> {
        use sea_orm::{ConnectionTrait, Statement};
        let db = sea_orm::Database::connect(&self.url).await.expect("connecting to the test database");
        let backend = db.get_database_backend();
        let rows = db.query_all(Statement::from_string(backend, sql)).await.expect("the query runs");
        rows.iter()
            .map(|row| {
                (0..row.column_names().len())
                    .map(|i| match row.try_get_by_index::<i64>(i) {
                        Ok(n) => json!(n),
                        Err(_) => json!(row.try_get_by_index::<String>(i).expect("an integer or a text column")),
                    })
                    .collect()
            })
            .collect()
    }

    pub async fn drop_if_postgres(self) {
        if let Some((admin, name)) = &self.pg {
            admin_sql(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

async fn admin_sql(admin_url: &str, sql: &str) {
    use sea_orm::ConnectionTrait;
    let admin = sea_orm::Database::connect(admin_url).await.expect("connecting to PostgreSQL");
    admin.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = admin.close().await;
}

/// One `confab` child process; SIGKILLed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    http: reqwest::Client,
}

impl Server {
    pub async fn start(db: &Database) -> Self {
        Self::start_with(db, &[]).await
    }

    /// Starts the server with extra environment variables (settings under test).
    pub async fn start_with(db: &Database, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(db.dir.path().join("confab.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .env("CONFAB_BIND", format!("127.0.0.1:{port}"))
            .env("CONFAB_DATA_DIR", db.dir.path())
            .env("DATABASE_URL", &db.url)
            .env("CONFAB_JWT_SECRET", SECRET)
            .env("CONFAB_RATE_PER_SEC", "100000")
            .env("CONFAB_WRITE_BYTES_PER_SEC", "4000000000")
            // Webhook tests post to a receiver of their own on 127.0.0.1.
            .env("CONFAB_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning confab");
        let server = Self { child, port, http: confab::tls::client_builder().build().expect("an HTTP client") };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while server.status("/api/health").await != 200 {
            assert!(tokio::time::Instant::now() < deadline, "the server never became healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    /// The most memory the process has held so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmHWM line")
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The status of `GET path` (0: no answer within the wait).
    pub async fn status(&self, path: &str) -> u16 {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        match self.http.get(url).timeout(WAIT).send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Signs a user up and logs in; the access token.
    pub async fn login(&self, username: &str) -> String {
        let base = format!("http://127.0.0.1:{}", self.port);
        let body = json!({"username": username, "password": "correct horse"});
        let signup = self.http.post(format!("{base}/api/auth/signup")).json(&body).send().await.expect("signup");
        assert!(signup.status().is_success() || signup.status().as_u16() == 409, "signup of {username}: {}", signup.status());
        let login = self.http.post(format!("{base}/api/auth/login")).json(&body).send().await.expect("login");
        let pair: TokenPair = login.json().await.expect("a token pair");
        pair.access_token
    }

    /// Makes `username` an admin (straight in the database) and logs in again; the access token.
    pub async fn admin(&self, db: &Database, username: &str) -> String {
        self.login(username).await;
        db.execute(&format!("UPDATE users SET is_admin = TRUE WHERE username = '{username}'")).await;
        self.login(username).await
    }

    /// Registers a webhook (as an admin); its id.
    pub async fn webhook(&self, admin_token: &str, url: &str, events: &[&str]) -> i64 {
        let url_of = format!("http://127.0.0.1:{}/api/webhooks", self.port);
        let response = self.http.post(url_of).bearer_auth(admin_token).json(&json!({"url": url, "events": events})).send().await.expect("POST /api/webhooks");
        assert_eq!(response.status().as_u16(), 201, "webhook registration");
        let created: Value = response.json().await.expect("the webhook");
        created["id"].as_i64().expect("its id")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A webhook receiver on 127.0.0.1 that answers every POST with 200; its URL.
pub async fn receiver() -> String {
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { axum::http::StatusCode::OK }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

/// A JSON-RPC socket that can keep many calls in flight.
pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: i64,
}

impl Socket {
    pub async fn connect(port: u16, token: &str) -> Self {
        let mut request = format!("ws://127.0.0.1:{port}/ws").into_client_request().expect("a request");
        request.headers_mut().insert("Authorization", HeaderValue::from_str(&format!("Bearer {token}")).expect("header"));
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect timed out")
            .expect("websocket connect");
        Self { ws, next_id: 1 }
    }

    /// Sends a call without waiting; its id.
    pub async fn send(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        let frame = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.ws.send(Frame::text(frame.to_string())).await.expect("the frame is written");
        id
    }

    /// The next response (notifications are skipped); `None` once the socket is gone.
    pub async fn response(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("no frame within the wait") {
                Some(Ok(Frame::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON from the server");
                    if value.get("id").is_some() {
                        return Some(value);
                    }
                }
                Some(Ok(Frame::Close(_)) | Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// A call and its response.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params).await;
        let response = self.response().await.expect("the socket stays open");
        assert_eq!(response["id"], json!(id), "responses come in request order");
        response
    }
}
