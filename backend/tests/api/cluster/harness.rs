//! Processes and clients for the cluster tests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use super::redis_cluster::RedisCluster;

use confab_shared::rpc::{EchoParams, ErrorObject, Method, Response};
use confab_shared::{Message, TokenPair};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(10);
const SECRET: &str = "cluster-test-secret-cluster-test-secret";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `bash scripts/services.sh start && source /tmp/confab-services/env` (just test does)")
    })
}

struct Instance {
    child: Child,
    port: u16,
    data: tempfile::TempDir,
}

/// Which Redis the instances share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisKind {
    /// One redis-server.
    Single,
    /// A Redis Cluster of three masters and three replicas ([`RedisCluster`]).
    Cluster,
}

impl RedisKind {
    /// `CONFAB_TEST_REDIS=cluster` runs the whole suite on a Redis Cluster.
    pub fn from_env() -> Self {
        match std::env::var("CONFAB_TEST_REDIS").as_deref() {
            Ok("cluster") => Self::Cluster,
            _ => Self::Single,
        }
    }
}

enum Redis {
    Single { port: u16, child: Option<Child> },
    Cluster(RedisCluster),
}

pub struct Cluster {
    /// A short random tag that keeps names unique across tests.
    pub tag: String,
    redis: Redis,
    redis_dir: tempfile::TempDir,
    db_url: String,
    instances: Vec<Instance>,
    http: reqwest::Client,
}

impl Cluster {
    /// A private Redis (of the kind `CONFAB_TEST_REDIS` names), a fresh PostgreSQL database
    /// and `n` instances, all started at once: they race to migrate the fresh database.
    pub async fn start(n: usize) -> Self {
        Self::start_on(n, RedisKind::from_env()).await
    }

    pub async fn start_on(n: usize, kind: RedisKind) -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let admin_url = required_env("CONFAB_TEST_PG_URL");
        let db_name = format!("confab_cluster_{tag}");
        let admin = sea_orm::Database::connect(&admin_url).await.expect("connecting to PostgreSQL");
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE DATABASE {db_name}")).await.expect("creating the database");
        let db_url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{db_name}"),
            None => panic!("CONFAB_TEST_PG_URL must end with a database name"),
        };
        let redis_dir = tempfile::tempdir().expect("temp dir");
        let redis = match kind {
            RedisKind::Single => Redis::Single { port: free_port(), child: None },
            RedisKind::Cluster => Redis::Cluster(RedisCluster::start(redis_dir.path())),
        };
        let mut cluster = Self { tag, redis, redis_dir, db_url, instances: Vec::new(), http: confab::tls::client_builder().build().expect("an HTTP client") };
        if kind == RedisKind::Single {
            cluster.start_redis();
        }
        // No `confab migrate` first: instances started together on a fresh database must
        // all come up (the migrations run under a lock).
        for _ in 0..n {
            let instance = cluster.spawn_instance();
            cluster.instances.push(instance);
        }
        for i in 0..n {
            cluster.wait_healthy(i).await;
        }
        cluster
    }

    /// Starts one more instance on the same Redis and database; its index.
    pub async fn add_instance(&mut self) -> usize {
        let instance = self.spawn_instance();
        self.instances.push(instance);
        let i = self.instances.len() - 1;
        self.wait_healthy(i).await;
        i
    }

    pub fn redis_url(&self) -> String {
        match &self.redis {
            Redis::Single { port, .. } => format!("redis://127.0.0.1:{port}"),
            Redis::Cluster(cluster) => cluster.url(),
        }
    }

    /// The Redis Cluster under the instances (panics on a single redis-server).
    pub fn redis_cluster(&mut self) -> &mut RedisCluster {
        match &mut self.redis {
            Redis::Cluster(cluster) => cluster,
            Redis::Single { .. } => panic!("this test needs a Redis Cluster"),
        }
    }

    fn spawn_instance(&self) -> Instance {
        let db_url = &self.db_url;
        let port = free_port();
        let data = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(data.path().join("confab.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .env("CONFAB_BIND", format!("127.0.0.1:{port}"))
            .env("CONFAB_DATA_DIR", data.path())
            .env("DATABASE_URL", db_url)
            .env("REDIS_URL", self.redis_url())
            .env("CONFAB_JWT_SECRET", SECRET)
            .env("CONFAB_RATE_PER_SEC", "1000")
            .env("CONFAB_WRITE_BYTES_PER_SEC", "4000000000")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning confab");
        Instance { child, port, data }
    }

    /// Starts Redis again: the redis-server (empty), or every cluster node (empty, with
    /// the cluster configuration they kept in their `nodes.conf`).
    pub fn start_redis(&mut self) {
        match &mut self.redis {
            Redis::Single { port, child } => {
                let spawned = Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .current_dir(self.redis_dir.path())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("spawning redis-server (install redis-server)");
                *child = Some(spawned);
                wait_for_port(*port);
            }
            Redis::Cluster(cluster) => cluster.start_all(),
        }
    }

    /// Stops Redis abruptly, losing all its data (no persistence).
    pub fn stop_redis(&mut self) {
        match &mut self.redis {
            Redis::Single { child, .. } => {
                if let Some(mut child) = child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            Redis::Cluster(cluster) => cluster.stop_all(),
        }
    }

    /// Makes the Redis node that holds presence (its keys share the `{confab:p}` hash tag)
    /// refuse every write as out of memory (`maxmemory` of one byte), or accept them again.
    /// Reads and publishes still work: instances keep delivering while presence cannot count.
    pub fn refuse_presence_writes(&self, refuse: bool) {
        let port = match &self.redis {
            Redis::Single { port, .. } => *port,
            Redis::Cluster(cluster) => cluster.master_of("confab:{confab:p}:instances"),
        };
        let limit = if refuse { "1" } else { "0" };
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "CONFIG", "SET", "maxmemory", limit])
            .output()
            .expect("running redis-cli");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK", "CONFIG SET maxmemory {limit} on port {port}");
    }

    /// SIGKILL: no goodbye, no presence cleanup; the survivors must notice.
    pub fn kill(&mut self, i: usize) {
        let _ = self.instances[i].child.kill();
        let _ = self.instances[i].child.wait();
    }

    /// SIGTERM, as an orchestrator stops an instance; its exit status once it is gone.
    pub async fn terminate(&mut self, i: usize) -> std::process::ExitStatus {
        let pid = self.instances[i].child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("running kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.instances[i].child.try_wait().expect("waiting for the instance") {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "instance {i} did not stop within 20 s of SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET` through instance `i` with a bearer token.
    pub async fn get(&self, i: usize, path: &str, token: &str) -> reqwest::Response {
        let url = format!("http://127.0.0.1:{}{path}", self.port(i));
        self.http.get(url).bearer_auth(token).timeout(WAIT).send().await.expect("GET request")
    }

    /// `POST` of a JSON body through instance `i` with a bearer token.
    pub async fn post(&self, i: usize, path: &str, token: &str, body: &Value) -> reqwest::Response {
        let url = format!("http://127.0.0.1:{}{path}", self.port(i));
        self.http.post(url).bearer_auth(token).json(body).timeout(WAIT).send().await.expect("POST request")
    }

    pub fn port(&self, i: usize) -> u16 {
        self.instances[i].port
    }

    pub fn room(&self, name: &str) -> String {
        format!("{name}-{}", self.tag)
    }

    pub async fn health(&self, i: usize) -> u16 {
        let url = format!("http://127.0.0.1:{}/api/health", self.port(i));
        match self.http.get(url).timeout(Duration::from_secs(3)).send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }

    pub async fn wait_healthy(&self, i: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.health(i).await != 200 {
            assert!(tokio::time::Instant::now() < deadline, "instance {i} never became healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One counter of instance `i`'s `/metrics`.
    pub async fn metric(&self, i: usize, name: &str) -> u64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.port(i));
        let text = self.http.get(url).timeout(WAIT).send().await.expect("GET /metrics").text().await.expect("metrics text");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    }

    /// Sockets instance `i` has finished closing (their rooms left, their presence uncounted).
    pub async fn closed_connections(&self, i: usize) -> u64 {
        self.metric(i, "confab_connections_closed_total").await
    }

    /// Waits until instance `i` has finished closing at least `count` sockets.
    pub async fn wait_closed(&self, i: usize, count: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.closed_connections(i).await < count {
            assert!(tokio::time::Instant::now() < deadline, "instance {i} had not closed {count} sockets within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until instance `i` has finished closing every socket it opened.
    pub async fn wait_all_closed(&self, i: usize) {
        let opened = self.metric(i, "confab_connections_opened_total").await;
        self.wait_closed(i, opened).await;
    }

    /// `POST /api/auth/logout` through instance `i`; its status.
    pub async fn logout(&self, i: usize, token: &str) -> u16 {
        let url = format!("http://127.0.0.1:{}/api/auth/logout", self.port(i));
        self.http.post(url).bearer_auth(token).send().await.expect("logout request").status().as_u16()
    }

    /// `POST /api/tokens` through instance `i` with a login: the new API token's id and secret.
    pub async fn create_token(&self, i: usize, access_token: &str, scopes: &[&str]) -> (i64, String) {
        let url = format!("http://127.0.0.1:{}/api/tokens", self.port(i));
        let body = json!({"name": "cluster-bot", "scopes": scopes});
        let response = self.http.post(url).bearer_auth(access_token).json(&body).send().await.expect("token request");
        assert_eq!(response.status().as_u16(), 201, "token creation");
        let created: Value = response.json().await.expect("a created token");
        (created["id"].as_i64().expect("an id"), created["token"].as_str().expect("a secret").to_owned())
    }

    /// `DELETE /api/tokens/{id}` through instance `i`; its status.
    pub async fn revoke_token(&self, i: usize, access_token: &str, id: i64) -> u16 {
        let url = format!("http://127.0.0.1:{}/api/tokens/{id}", self.port(i));
        self.http.delete(url).bearer_auth(access_token).send().await.expect("revoke request").status().as_u16()
    }

    /// The status of one login attempt through instance `i`.
    pub async fn login_status(&self, i: usize, username: &str, password: &str) -> u16 {
        let url = format!("http://127.0.0.1:{}/api/auth/login", self.port(i));
        let body = json!({"username": username, "password": password});
        self.http.post(url).json(&body).send().await.expect("login request").status().as_u16()
    }

    /// Signs up (through instance `i`) and logs in.
    pub async fn login(&self, i: usize, username: &str) -> String {
        let base = format!("http://127.0.0.1:{}", self.port(i));
        let body = json!({"username": username, "password": "correct horse"});
        let signup = self.http.post(format!("{base}/api/auth/signup")).json(&body).send().await.expect("signup");
        assert_eq!(signup.status().as_u16(), 201, "signup of {username}");
        let login = self.http.post(format!("{base}/api/auth/login")).json(&body).send().await.expect("login");
        let pair: TokenPair = login.json().await.expect("a token pair");
        pair.access_token
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for instance in &mut self.instances {
            let _ = instance.child.kill();
            let _ = instance.child.wait();
        }
        self.stop_redis();
        // A failed test shows what the instances logged before their temp dirs go away.
        if std::thread::panicking() {
            for (i, instance) in self.instances.iter().enumerate() {
                let log = std::fs::read_to_string(instance.data.path().join("confab.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("--- instance {i} (port {}), last log lines:", instance.port);
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// A JSON-RPC client over a real socket.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: i64,
    /// Notifications that arrived while waiting for something else.
    backlog: Vec<Value>,
    closed: bool,
    /// The code of the server's close frame, once closed.
    close_code: Option<u16>,
}

impl Client {
    pub async fn connect(port: u16, token: &str) -> Self {
        let mut request = format!("ws://127.0.0.1:{port}/ws").into_client_request().expect("a request");
        let headers = request.headers_mut();
        headers.insert("Authorization", HeaderValue::from_str(&format!("Bearer {token}")).expect("header"));
        headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static("confab.v1"));
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect timed out")
            .expect("websocket connect");
        let mut client = Self { ws, next_id: 1, backlog: Vec::new(), closed: false, close_code: None };
        // Live from the first answer (docs/protocol.md, Delivery): once a call is answered the
        // instance has subscribed the connection, so what another instance publishes next
        // reaches it. (A socket the server closes at once answers nothing; that is kept.)
        let _ = client.try_call(EchoParams { text: "ready".into() }).await;
        client
    }

    async fn next_value(&mut self, timeout: Duration) -> Option<Value> {
        loop {
            match tokio::time::timeout(timeout, self.ws.next()).await {
                Err(_) => return None,
                Ok(None | Some(Err(_))) => {
                    self.closed = true;
                    return None;
                }
                Ok(Some(Ok(Frame::Text(text)))) => return serde_json::from_str(&text).ok(),
                Ok(Some(Ok(Frame::Close(frame)))) => {
                    self.closed = true;
                    self.close_code = frame.map(|f| u16::from(f.code));
                    return None;
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Calls a method; `None` when the socket closed before the answer.
    pub async fn try_call<P: Method>(&mut self, params: P) -> Option<Result<P::Result, ErrorObject>> {
        if self.closed {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        let frame = json!({"jsonrpc": "2.0", "id": id, "method": P::NAME, "params": params});
        self.ws.send(Frame::text(frame.to_string())).await.ok()?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "no answer to {} within {WAIT:?}", P::NAME);
            let Some(value) = self.next_value(left).await else {
                assert!(self.closed, "no answer to {} within {WAIT:?}", P::NAME);
                return None;
            };
            if value.get("id") == Some(&json!(id)) {
                let response: Response = serde_json::from_value(value).expect("a JSON-RPC response");
                return Some(match (response.result, response.error) {
                    (Some(result), None) => Ok(serde_json::from_value(result).expect("a typed result")),
                    (_, Some(error)) => Err(error),
                    _ => panic!("a response with neither result nor error"),
                });
            }
            self.backlog.push(value);
        }
    }

    pub async fn call<P: Method>(&mut self, params: P) -> Result<P::Result, ErrorObject> {
        let method = P::NAME;
        self.try_call(params).await.unwrap_or_else(|| panic!("socket closed during {method}"))
    }

    /// The next notification `method` whose params satisfy `pred`, within `within`.
    pub async fn wait_notification(&mut self, method: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let matches = |v: &Value| v["method"] == method && pred(&v["params"]);
        if let Some(pos) = self.backlog.iter().position(matches) {
            return Some(self.backlog.remove(pos)["params"].clone());
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            let value = self.next_value(left).await?;
            if matches(&value) {
                return Some(value["params"].clone());
            }
            self.backlog.push(value);
        }
    }

    /// Takes every notification `method` whose params satisfy `pred` out of what arrived
    /// while waiting for something else (after a barrier: all that came before it).
    pub fn take_arrived(&mut self, method: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let (taken, kept) = std::mem::take(&mut self.backlog).into_iter().partition(|v| v["method"] == method && pred(&v["params"]));
        self.backlog = kept;
        taken.into_iter().map(|v: Value| v["params"].clone()).collect()
    }

    pub async fn expect_notification(&mut self, method: &str, pred: impl Fn(&Value) -> bool) -> Value {
        match self.wait_notification(method, WAIT, pred).await {
            Some(params) => params,
            None => panic!("no {method} notification within {WAIT:?}"),
        }
    }

    /// Fails if a notification `method` whose params satisfy `pred` arrives within `within`.
    pub async fn expect_no_notification(&mut self, method: &str, within: Duration, pred: impl Fn(&Value) -> bool) {
        if let Some(params) = self.wait_notification(method, within, pred).await {
            panic!("unexpected {method}: {params}");
        }
    }

    pub async fn expect_presence(&mut self, username: &str, online: bool) {
        self.expect_presence_within(username, online, WAIT).await;
    }

    pub async fn expect_presence_within(&mut self, username: &str, online: bool, within: Duration) {
        let found = self
            .wait_notification("presence.changed", within, |p| p["username"] == username && p["online"] == online)
            .await;
        assert!(found.is_some(), "no presence.changed {username} online={online} within {within:?}");
    }

    /// Collects `room.message`s until `count` have arrived (panics after `within`).
    pub async fn room_messages_until(&mut self, count: usize, within: Duration) -> Vec<Message> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        while out.len() < count {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "only {} of {count} room messages within {within:?}", out.len());
            match self.wait_notification("room.message", left, |_| true).await {
                Some(params) => out.push(serde_json::from_value(params).expect("a Message")),
                None => panic!("only {} of {count} room messages (socket closed or timed out)", out.len()),
            }
        }
        out
    }

    /// Every `room.message` that arrives until the socket is quiet for `quiet` or closes.
    pub async fn drain_room_messages(&mut self, quiet: Duration) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(params) = self.wait_notification("room.message", quiet, |_| true).await {
            out.push(serde_json::from_value(params).expect("a Message"));
        }
        out
    }

    pub async fn expect_no_room_message(&mut self, within: Duration) {
        self.expect_no_notification("room.message", within, |_| true).await;
    }

    /// Reads (keeping notifications) until the server closes the socket; its close code.
    pub async fn expect_closed(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.closed {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "the socket was not closed within {WAIT:?}");
            if let Some(value) = self.next_value(left).await {
                self.backlog.push(value);
            }
        }
        self.close_code
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
