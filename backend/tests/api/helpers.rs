//! What every test uses: a real server on an ephemeral port with a database of its own, an
//! HTTP client, and a JSON-RPC WebSocket client. Every wait is bounded by [`WAIT`], so a bug
//! fails the test with a message instead of hanging the suite.
//!
//! The database is SQLite in the test's temporary data dir, or, with
//! `CONFAB_TEST_DATABASE=postgres`, a fresh PostgreSQL database created on the server named by
//! `CONFAB_TEST_PG_URL` and dropped when the test ends. `TEST_LOG=1` prints the server's logs.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use confab::config::Config;
use confab::startup::Application;
use confab::state::AppState;
use confab_shared::rpc::{
    DmSendParams, ErrorObject, HistoryParams, JoinParams, LeaveParams, Method, SendParams, SyncParams,
};
use confab_shared::{Credentials, Problem, TokenPair};
use futures_util::{SinkExt, StreamExt};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Request, header};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

/// The longest any single wait may take before the test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a test watches for something that must *not* arrive.
pub const QUIET: Duration = Duration::from_millis(400);
/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery";

/// Awaits `fut`, failing the test after [`WAIT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// A username (or room name) unique to this test: `prefix` and a random suffix.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..8])
}

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
});

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    /// The configuration it runs with; `restart` reuses it (same data dir, same database).
    pub config: Config,
    pub data_dir: PathBuf,
    state: AppState,
    running: Option<Running>,
    // Dropped last, in this order: the database, then the data dir.
    _database: Option<PgDatabase>,
    _dir: tempfile::TempDir,
}

struct Running {
    stop: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server whose test configuration `configure` may adjust (TTLs, limits, origins, ...).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    LazyLock::force(&TRACING);
    let dir = tempfile::tempdir().expect("a temporary data dir");
    let mut config = Config::for_tests(dir.path().to_path_buf());
    let database = match std::env::var("CONFAB_TEST_DATABASE").as_deref() {
        Ok("postgres") => Some(PgDatabase::create().await),
        Ok("sqlite" | "") | Err(_) => None,
        Ok(other) => panic!("CONFAB_TEST_DATABASE must be `sqlite` or `postgres`, not {other:?}"),
    };
    config.database_url = database.as_ref().map(|db| db.url.clone());
    configure(&mut config);
    let (addr, state, running) = start(config.clone()).await;
    let http = confab::tls::client_builder().timeout(WAIT).build().expect("an HTTP client");
    TestApp {
        addr,
        http,
        data_dir: dir.path().to_path_buf(),
        config,
        state,
        running: Some(running),
        _database: database,
        _dir: dir,
    }
}

async fn start(config: Config) -> (SocketAddr, AppState, Running) {
    let app = within("the server to build", Application::build(config)).await.expect("the server builds");
    let addr = app.local_addr();
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        // A dropped sender (the test ended) stops the server as well.
        let _ = stopped.await;
    }));
    (addr, state, Running { stop, server })
}

impl TestApp {
    /// The server's shared state, for set-up a test cannot do over the wire (admin accounts).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Resolves the stop future and waits for `run_until_stopped` to return `Ok`.
    pub async fn stop(&mut self) {
        let running = self.running.take().expect("the server is running");
        let _ = running.stop.send(());
        let outcome = within("the server to stop", running.server).await.expect("the server task ends cleanly");
        outcome.expect("run_until_stopped returns Ok");
    }

    /// Stops the server (if running) and starts a new one on the same data dir and database.
    /// It listens on a new ephemeral port; `addr` is updated.
    pub async fn restart(&mut self) {
        if self.running.is_some() {
            self.stop().await;
        }
        let (addr, state, running) = start(self.config.clone()).await;
        self.addr = addr;
        self.state = state;
        self.running = Some(running);
    }

    // --- HTTP -------------------------------------------------------------------------------

    /// Any request with an optional bearer token and an optional JSON body.
    pub async fn request<T: Serialize + ?Sized>(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<&T>) -> reqwest::Response {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        within(&format!("{method} {path}"), request.send()).await.expect("the request reaches the server")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.request::<()>(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post_json<T: Serialize + ?Sized>(&self, path: &str, body: &T, token: Option<&str>) -> reqwest::Response {
        self.request(reqwest::Method::POST, path, token, Some(body)).await
    }

    /// A POST with a raw body and content type, for malformed requests.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> reqwest::Response {
        let request = self.http.post(self.url(path)).header("content-type", content_type).body(body.to_owned());
        within(&format!("POST {path}"), request.send()).await.expect("the request reaches the server")
    }

    pub async fn signup(&self, username: &str, password: &str) -> reqwest::Response {
        let body = Credentials { username: username.to_owned(), password: password.to_owned() };
        self.post_json("/api/auth/signup", &body, None).await
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        let body = Credentials { username: username.to_owned(), password: password.to_owned() };
        self.post_json("/api/auth/login", &body, None).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post_json("/api/auth/refresh", &json!({ "refresh_token": refresh_token }), None).await
    }

    /// Signs a new account up and logs it in, over REST.
    pub async fn signup_and_login(&self, username: &str) -> TokenPair {
        let created = self.signup(username, PASSWORD).await;
        assert_eq!(created.status().as_u16(), 201, "signup of {username}: {}", text(created).await);
        self.login_ok(username).await
    }

    /// Logs an existing account in (a new session).
    pub async fn login_ok(&self, username: &str) -> TokenPair {
        let response = self.login(username, PASSWORD).await;
        assert_eq!(response.status().as_u16(), 200, "login of {username}");
        body(response).await
    }

    /// An administrator (created in the database: there is no API for that) logged in over REST.
    pub async fn admin(&self, username: &str) -> TokenPair {
        let hash = self.state.hasher.hash(PASSWORD.to_owned()).await.expect("hashing works");
        confab::storage::users::create(&self.state.db, username, &hash, true).await.expect("the admin is created");
        self.login_ok(username).await
    }

    /// Runs raw SQL on the server's database (to break it on purpose).
    pub async fn execute_sql(&self, sql: &str) {
        self.state.db.conn.execute_unprepared(sql).await.expect("the statement runs");
    }

    // --- WebSocket --------------------------------------------------------------------------

    /// A handshake request for `/ws`, to which a test may add headers.
    pub fn ws_request(&self) -> Request<()> {
        format!("ws://{}/ws", self.addr).into_client_request().expect("a valid ws:// URL")
    }

    /// A handshake request carrying `Authorization: Bearer <token>`.
    pub fn ws_bearer_request(&self, token: &str) -> Request<()> {
        let mut request = self.ws_request();
        let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("a header-safe token");
        request.headers_mut().insert(header::AUTHORIZATION, value);
        request
    }

    /// A socket authenticated with the header (the programs' way).
    pub async fn ws(&self, token: &str) -> WsClient {
        WsClient::connect(self.addr, self.ws_bearer_request(token)).await.expect("the upgrade succeeds")
    }

    pub async fn ws_anonymous(&self) -> WsClient {
        WsClient::connect(self.addr, self.ws_request()).await.expect("the upgrade succeeds")
    }

    /// Expects the upgrade to be refused; returns the HTTP status and body.
    pub async fn ws_refused(&self, request: Request<()>) -> (u16, String) {
        match WsClient::connect(self.addr, request).await {
            Ok(_) => panic!("the upgrade was accepted"),
            Err(tungstenite::Error::Http(response)) => {
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
                (response.status().as_u16(), body)
            }
            Err(other) => panic!("the upgrade failed without an HTTP answer: {other}"),
        }
    }

    /// A new account with one open, authenticated socket.
    pub async fn user_online(&self, prefix: &str) -> (TokenPair, WsClient) {
        let tokens = self.signup_and_login(&unique(prefix)).await;
        let ws = self.ws(&tokens.access_token).await;
        (tokens, ws)
    }
}

/// The body of a successful response, typed.
pub async fn body<T: DeserializeOwned>(response: reqwest::Response) -> T {
    let status = response.status();
    let text = text(response).await;
    assert!(status.is_success(), "expected a success, got {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("the body does not match its type ({err}): {text}"))
}

/// A response header's value, if it has one.
pub fn header(response: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    response.headers().get(name).map(|v| v.to_str().expect("an ASCII header").to_owned())
}

pub async fn text(response: reqwest::Response) -> String {
    within("a response body", response.text()).await.expect("a readable body")
}

/// The claims of a JWT, decoded without checking anything.
pub fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

/// Signs `claims` (HS256) with the server's own generated secret, so only the claims decide.
pub fn sign(app: &TestApp, claims: &Value) -> String {
    let secret = std::fs::read_to_string(app.data_dir.join("jwt_secret")).expect("the server's generated secret");
    let key = jsonwebtoken::EncodingKey::from_secret(secret.trim().as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), claims, &key).expect("signing works")
}

/// Checks that `response` is an RFC 9457 problem with `status`, and returns it.
pub async fn problem(response: reqwest::Response, status: u16) -> Problem {
    assert_eq!(response.status().as_u16(), status, "status of {}", response.url());
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let raw: Value = serde_json::from_str(&text(response).await).expect("a JSON problem body");
    for member in ["type", "title", "status", "detail"] {
        assert!(raw.get(member).is_some(), "problem without `{member}`: {raw}");
    }
    let problem: Problem = serde_json::from_value(raw).expect("a problem document");
    assert_eq!(problem.status, status);
    assert!(problem.kind.starts_with("/problems/"), "type {}", problem.kind);
    problem
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL isolation
// ---------------------------------------------------------------------------------------------

/// A database created for one test and dropped (with its connections) when the test ends.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create() -> Self {
        let admin_url = std::env::var("CONFAB_TEST_PG_URL")
            .expect("CONFAB_TEST_DATABASE=postgres needs CONFAB_TEST_PG_URL (source /tmp/confab-services/env)");
        let name = format!("confab_test_{}", uuid::Uuid::new_v4().simple());
        let admin = pg_connect(&admin_url).await;
        within("CREATE DATABASE", admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("the test database is created");
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Self { admin_url, name, url }
    }
}

async fn pg_connect(url: &str) -> sea_orm::DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    options.max_connections(1).sqlx_logging(false);
    within("PostgreSQL", sea_orm::Database::connect(options)).await.expect("PostgreSQL is reachable")
}

/// `postgres://u@h:p/postgres?x` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let (server, _) = base.rsplit_once('/').expect("a postgres:// URL naming a database");
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which may be single-threaded: do the async
        // work on a thread of its own. FORCE ends the server's pooled connections.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async move {
                let admin = pg_connect(&admin_url).await;
                let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                let _ = admin.close().await;
            });
        });
        let _ = cleanup.join();
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON-RPC client
// ---------------------------------------------------------------------------------------------

/// A WebSocket speaking JSON-RPC 2.0 to the server.
///
/// Frames read while looking for something else wait in a backlog, in arrival order, so
/// `call` can skip notifications and `next_notification` can skip responses and unrelated
/// notifications without losing any of them.
pub struct WsClient {
    ws: WebSocketStream<TcpStream>,
    next_id: i64,
    backlog: VecDeque<Value>,
    /// The subprotocol the server selected (`Sec-WebSocket-Protocol` of the 101).
    pub protocol: Option<String>,
}

impl WsClient {
    pub async fn connect(addr: SocketAddr, request: Request<()>) -> Result<Self, tungstenite::Error> {
        let stream = within("a TCP connection", TcpStream::connect(addr)).await.map_err(tungstenite::Error::Io)?;
        Self::handshake(stream, request).await
    }

    /// A socket with a tiny kernel receive buffer, so a client that stops reading pushes back
    /// on the server quickly (slow-consumer tests).
    pub async fn connect_small_buffer(addr: SocketAddr, request: Request<()>) -> Result<Self, tungstenite::Error> {
        let socket = TcpSocket::new_v4().map_err(tungstenite::Error::Io)?;
        socket.set_recv_buffer_size(4096).map_err(tungstenite::Error::Io)?;
        let stream = within("a TCP connection", socket.connect(addr)).await.map_err(tungstenite::Error::Io)?;
        Self::handshake(stream, request).await
    }

    async fn handshake(stream: TcpStream, request: Request<()>) -> Result<Self, tungstenite::Error> {
        let (ws, response) = within("the WebSocket handshake", tokio_tungstenite::client_async(request, stream)).await?;
        let protocol = response
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self { ws, next_id: 0, backlog: VecDeque::new(), protocol })
    }

    // --- sending ----------------------------------------------------------------------------

    pub async fn send_text(&mut self, text: impl Into<String>) {
        let message = Message::text(text.into());
        within("a frame to be sent", self.ws.send(message)).await.expect("the frame is sent");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        within("a frame to be sent", self.ws.send(Message::binary(bytes))).await.expect("the frame is sent");
    }

    /// Starts a normal close handshake (1000).
    pub async fn close(&mut self) {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
        within("the close frame to be sent", self.ws.send(Message::Close(Some(frame)))).await.expect("the close is sent");
    }

    /// Sends a typed request without waiting; returns its id (for pipelining).
    pub async fn request<P: Method>(&mut self, params: P) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send_text(json!({ "jsonrpc": "2.0", "id": id, "method": P::NAME, "params": params }).to_string()).await;
        id
    }

    /// Sends a typed notification (a call without an id).
    pub async fn notify<P: Method>(&mut self, params: P) {
        self.send_text(json!({ "jsonrpc": "2.0", "method": P::NAME, "params": params }).to_string()).await;
    }

    // --- calls ------------------------------------------------------------------------------

    /// A typed call: the result, or the error object the server answered with.
    pub async fn call<P: Method>(&mut self, params: P) -> Result<P::Result, ErrorObject> {
        let id = self.request(params).await;
        self.outcome::<P::Result>(id).await
    }

    /// A call that must succeed.
    pub async fn ok<P: Method>(&mut self, params: P) -> P::Result {
        self.call(params).await.unwrap_or_else(|err| panic!("{} failed: {err:?}", P::NAME))
    }

    /// A call that must fail; returns the error.
    pub async fn fail<P: Method>(&mut self, params: P) -> ErrorObject {
        match self.call(params).await {
            Ok(_) => panic!("{} succeeded where an error was expected", P::NAME),
            Err(err) => err,
        }
    }

    /// The decoded response to request `id`.
    pub async fn outcome<T: DeserializeOwned>(&mut self, id: i64) -> Result<T, ErrorObject> {
        decode_response(self.response(id).await)
    }

    /// The raw response frame to request `id`.
    pub async fn response(&mut self, id: i64) -> Value {
        let is_it = |frame: &Value| !is_notification(frame) && frame.get("id") == Some(&json!(id));
        if let Some(frame) = take_first(&mut self.backlog, is_it) {
            return frame;
        }
        let backlog = &mut self.backlog;
        let ws = &mut self.ws;
        within(&format!("the response to call {id}"), async move {
            loop {
                let frame = read_frame(ws).await;
                if is_it(&frame) {
                    return frame;
                }
                backlog.push_back(frame);
            }
        })
        .await
    }

    /// Sends `text` as one frame and returns the next response frame (an object or a batch array).
    pub async fn call_raw(&mut self, text: &str) -> Value {
        self.send_text(text).await;
        self.next_response().await
    }

    /// The next frame that is not a notification.
    pub async fn next_response(&mut self) -> Value {
        if let Some(frame) = take_first(&mut self.backlog, |f| !is_notification(f)) {
            return frame;
        }
        let backlog = &mut self.backlog;
        let ws = &mut self.ws;
        within("a response", async move {
            loop {
                let frame = read_frame(ws).await;
                if !is_notification(&frame) {
                    return frame;
                }
                backlog.push_back(frame);
            }
        })
        .await
    }

    // --- notifications ----------------------------------------------------------------------

    /// The params of the next notification called `method`; other frames wait in the backlog.
    pub async fn next_notification(&mut self, method: &str) -> Value {
        self.next_among(&[method]).await.1
    }

    /// The next notification called `method`, typed.
    pub async fn next<T: DeserializeOwned>(&mut self, method: &str) -> T {
        let params = self.next_notification(method).await;
        serde_json::from_value(params.clone()).unwrap_or_else(|err| panic!("{method} params do not match ({err}): {params}"))
    }

    /// The next notification whose method is one of `methods`: `(method, params)`.
    pub async fn next_among(&mut self, methods: &[&str]) -> (String, Value) {
        let wanted = |f: &Value| notification_method(f).is_some_and(|m| methods.contains(&m));
        let frame = match take_first(&mut self.backlog, wanted) {
            Some(frame) => frame,
            None => {
                let backlog = &mut self.backlog;
                let ws = &mut self.ws;
                within(&format!("a notification among {methods:?}"), async move {
                    loop {
                        let frame = read_frame(ws).await;
                        if wanted(&frame) {
                            return frame;
                        }
                        backlog.push_back(frame);
                    }
                })
                .await
            }
        };
        assert_eq!(frame["jsonrpc"], "2.0", "{frame}");
        assert!(frame.get("id").is_none(), "a notification carries no id: {frame}");
        let method = notification_method(&frame).unwrap_or_default().to_owned();
        (method, frame.get("params").cloned().unwrap_or(Value::Null))
    }

    /// Fails if a `method` notification is waiting or arrives within [`QUIET`].
    pub async fn assert_no(&mut self, method: &str) {
        let matches = |f: &Value| notification_method(f) == Some(method);
        if let Some(frame) = self.backlog.iter().find(|f| matches(f)) {
            panic!("unexpected {method}: {frame}");
        }
        let deadline = tokio::time::Instant::now() + QUIET;
        while let Ok(frame) = tokio::time::timeout_at(deadline, read_frame(&mut self.ws)).await {
            assert!(!matches(&frame), "unexpected {method}: {frame}");
            self.backlog.push_back(frame);
        }
    }

    /// Keeps reading (answering the server's pings) for `duration`; frames go to the backlog.
    pub async fn read_for(&mut self, duration: Duration) {
        let deadline = tokio::time::Instant::now() + duration;
        while let Ok(frame) = tokio::time::timeout_at(deadline, read_frame(&mut self.ws)).await {
            self.backlog.push_back(frame);
        }
    }

    /// Fails if any frame is waiting or arrives within [`QUIET`].
    pub async fn assert_silent(&mut self) {
        if let Some(frame) = self.backlog.front() {
            panic!("unexpected frame: {frame}");
        }
        if let Ok(frame) = tokio::time::timeout(QUIET, read_frame(&mut self.ws)).await {
            panic!("unexpected frame: {frame}");
        }
    }

    /// The params of a `method` notification already read, if any (never waits).
    pub fn take_from_backlog(&mut self, method: &str) -> Option<Value> {
        take_first(&mut self.backlog, |f| notification_method(f) == Some(method)).map(|f| f["params"].clone())
    }

    /// Frames read so far but not yet consumed, oldest first.
    pub fn backlog(&self) -> &VecDeque<Value> {
        &self.backlog
    }

    pub fn clear_backlog(&mut self) {
        self.backlog.clear();
    }

    /// Reads (keeping text frames in the backlog) until the server's close frame; returns its code.
    pub async fn expect_close(&mut self) -> u16 {
        let backlog = &mut self.backlog;
        let ws = &mut self.ws;
        within("the server to close the socket", async move {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map_or(1005, |f| u16::from(f.code)),
                    Some(Ok(Message::Text(text))) => backlog.push_back(parse(&text)),
                    Some(Ok(_)) => {}
                    Some(Err(err)) => panic!("the socket failed before a close frame arrived: {err}"),
                    None => panic!("the socket ended without a close frame"),
                }
            }
        })
        .await
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("the server sent a frame that is not JSON ({err}): {text}"))
}

/// The next text frame, parsed. Cancel-safe: the only await is the stream's `next`.
async fn read_frame(ws: &mut WebSocketStream<TcpStream>) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return parse(&text),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Binary(_))) => panic!("the server sent a binary frame"),
            Some(Ok(Message::Close(frame))) => {
                panic!("the socket closed ({:?}) while a frame was expected", frame.map(|f| u16::from(f.code)))
            }
            Some(Err(err)) => panic!("the socket failed while a frame was expected: {err}"),
            None => panic!("the socket ended while a frame was expected"),
        }
    }
}

fn is_notification(frame: &Value) -> bool {
    frame.get("method").is_some()
}

fn notification_method(frame: &Value) -> Option<&str> {
    frame.get("method").and_then(Value::as_str)
}

fn take_first(backlog: &mut VecDeque<Value>, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    let position = backlog.iter().position(pred)?;
    backlog.remove(position)
}

/// A response frame as `Ok(result)` or `Err(error)`, checking the envelope on the way.
pub fn decode_response<T: DeserializeOwned>(response: Value) -> Result<T, ErrorObject> {
    assert_eq!(response["jsonrpc"], "2.0", "{response}");
    match (response.get("result"), response.get("error")) {
        (Some(result), None) => Ok(serde_json::from_value(result.clone())
            .unwrap_or_else(|err| panic!("the result does not match its type ({err}): {response}"))),
        (None, Some(error)) => {
            Err(serde_json::from_value(error.clone()).unwrap_or_else(|err| panic!("a malformed error ({err}): {response}")))
        }
        _ => panic!("a response holds exactly one of `result` and `error`: {response}"),
    }
}

/// Asserts an error's code (and, for -32602, the param it names).
#[track_caller]
pub fn assert_code(err: &ErrorObject, code: i32) {
    assert_eq!(err.code, code, "unexpected error {err:?}");
}

#[track_caller]
pub fn assert_invalid_param(err: &ErrorObject, field: &str) {
    assert_eq!(err.code, -32602, "unexpected error {err:?}");
    assert_eq!(err.data.as_ref().and_then(|d| d.get("field")), Some(&json!(field)), "data.field of {err:?}");
}

// ---------------------------------------------------------------------------------------------
// Params, briefly
// ---------------------------------------------------------------------------------------------

pub fn join(room: &str) -> JoinParams {
    JoinParams { room: room.to_owned(), history: None }
}

pub fn leave(room: &str) -> LeaveParams {
    LeaveParams { room: room.to_owned() }
}

pub fn send(room: &str, text: &str) -> SendParams {
    SendParams { room: room.to_owned(), text: text.to_owned(), nonce: None }
}

pub fn history(room: &str, before: Option<i64>, limit: Option<u32>) -> HistoryParams {
    HistoryParams { room: room.to_owned(), before, limit }
}

pub fn dm(to: &str, text: &str) -> DmSendParams {
    DmSendParams { to: to.to_owned(), text: text.to_owned(), nonce: None }
}

pub fn sync_rooms(rooms: &[(&str, i64)], dm_after: Option<i64>) -> SyncParams {
    let rooms: BTreeMap<String, i64> = rooms.iter().map(|(r, id)| ((*r).to_owned(), *id)).collect();
    SyncParams { rooms, dm_after }
}

// ---------------------------------------------------------------------------------------------
// The HTTP stream client
// ---------------------------------------------------------------------------------------------

/// A client of the HTTP streaming transport: the event stream of `GET /api/stream` read as it
/// arrives, and calls POSTed to its session. Events read while looking for something else
/// wait in a backlog, in arrival order.
pub struct StreamClient {
    response: reqwest::Response,
    /// Bytes of the body not yet parsed into events.
    pending: Vec<u8>,
    backlog: VecDeque<Value>,
    /// A client with no overall timeout (a stream outlives any one request); waits are bounded by [`within`].
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    next_id: i64,
    /// The session named by `stream.opened`.
    pub session: String,
    /// Comment lines read so far (the keep-alive).
    pub comments: usize,
}

impl TestApp {
    /// `GET /api/stream` as it answers, for refusals.
    pub async fn stream_response(&self, token: Option<&str>, origin: Option<&str>) -> reqwest::Response {
        let http = confab::tls::client_builder().build().expect("an HTTP client");
        let mut request = http.get(self.url("/api/stream"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        within("the stream's response", request.send()).await.expect("the stream request is answered")
    }

    /// An open stream (of the token's user, or anonymous), its `stream.opened` read.
    pub async fn stream(&self, token: Option<&str>) -> StreamClient {
        let response = self.stream_response(token, None).await;
        assert_eq!(response.status().as_u16(), 200, "the stream opens");
        let http = confab::tls::client_builder().build().expect("an HTTP client");
        let mut client = StreamClient {
            response,
            pending: Vec::new(),
            backlog: VecDeque::new(),
            http,
            base: self.url("/api/stream/"),
            token: token.map(str::to_owned),
            next_id: 0,
            session: String::new(),
            comments: 0,
        };
        let first = within("stream.opened", client.read_event()).await.expect("a first event");
        assert_eq!(first["method"], "stream.opened", "the first event: {first}");
        client.session = first["params"]["session"].as_str().expect("a session id").to_owned();
        client
    }
}

impl StreamClient {
    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        self.response.headers()
    }

    /// The next event's data, parsed (`None`: the body ended). Comments are counted.
    /// Cancel-safe: bytes read are kept in `pending` until a whole event is there.
    async fn read_event(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.pending.drain(..end + 2).collect();
                let block = String::from_utf8(block).expect("the stream is UTF-8");
                let mut data: Vec<&str> = Vec::new();
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some(rest) = line.strip_prefix("data: ") {
                        data.push(rest);
                    } else if !line.is_empty() {
                        panic!("an unexpected line in the stream: {line:?}");
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(parse(&data.join("\n")));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.pending.extend_from_slice(&chunk),
                Ok(None) => {
                    assert!(self.pending.is_empty(), "the stream ended inside an event: {:?}", String::from_utf8_lossy(&self.pending));
                    return None;
                }
                Err(err) => panic!("the stream failed: {err}"),
            }
        }
    }

    async fn next_event(&mut self) -> Value {
        self.read_event().await.unwrap_or_else(|| panic!("the stream ended while an event was expected"))
    }

    /// POSTs `body` to this stream's session with `token` (`None`: no `Authorization`).
    pub async fn post_as(&self, body: impl Into<String>, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{}", self.base, self.session)).header("content-type", "application/json").body(body.into());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        within("a POST to the stream", request.send()).await.expect("the POST is answered")
    }

    /// POSTs `body` with the stream's own credentials.
    pub async fn post(&self, body: impl Into<String>) -> reqwest::Response {
        let token = self.token.clone();
        self.post_as(body, token.as_deref()).await
    }

    /// A typed call: the result, or the error object the server answered with.
    pub async fn call<P: Method>(&mut self, params: P) -> Result<P::Result, ErrorObject> {
        self.next_id += 1;
        let response = self.post(json!({ "jsonrpc": "2.0", "id": self.next_id, "method": P::NAME, "params": params }).to_string()).await;
        assert_eq!(response.status().as_u16(), 200, "{} over the stream", P::NAME);
        let answer: Value = within("the POST's answer", response.json()).await.expect("a JSON answer");
        assert_eq!(answer["id"], json!(self.next_id), "{answer}");
        decode_response(answer)
    }

    pub async fn ok<P: Method>(&mut self, params: P) -> P::Result {
        self.call(params).await.unwrap_or_else(|err| panic!("{} failed: {err:?}", P::NAME))
    }

    pub async fn fail<P: Method>(&mut self, params: P) -> ErrorObject {
        match self.call(params).await {
            Ok(_) => panic!("{} succeeded where an error was expected", P::NAME),
            Err(err) => err,
        }
    }

    /// The next event called `method`, typed; other events wait in the backlog.
    pub async fn next<T: DeserializeOwned>(&mut self, method: &str) -> T {
        let params = self.next_notification(method).await;
        serde_json::from_value(params.clone()).unwrap_or_else(|err| panic!("{method} params do not match ({err}): {params}"))
    }

    /// The params of the next event called `method`.
    pub async fn next_notification(&mut self, method: &str) -> Value {
        let wanted = |f: &Value| notification_method(f) == Some(method);
        if let Some(frame) = take_first(&mut self.backlog, wanted) {
            return frame["params"].clone();
        }
        let frame = within(&format!("{method} on the stream"), async {
            loop {
                let frame = self.next_event().await;
                if wanted(&frame) {
                    return frame;
                }
                self.backlog.push_back(frame);
            }
        })
        .await;
        assert_eq!(frame["jsonrpc"], "2.0", "{frame}");
        assert!(frame.get("id").is_none(), "a notification carries no id: {frame}");
        frame["params"].clone()
    }

    /// Reads (keeping events in the backlog) up to `stream.closed`, checks that the body ends
    /// right after it, and returns its code.
    pub async fn expect_closed(&mut self) -> u16 {
        let closed = within("stream.closed", async {
            loop {
                let frame = self.next_event().await;
                if notification_method(&frame) == Some("stream.closed") {
                    return frame;
                }
                self.backlog.push_back(frame);
            }
        })
        .await;
        let after = within("the end of the stream", self.read_event()).await;
        assert!(after.is_none(), "an event after stream.closed: {after:?}");
        let code = closed["params"]["code"].as_u64().expect("a code") as u16;
        assert!(closed["params"]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{closed}");
        code
    }
}
