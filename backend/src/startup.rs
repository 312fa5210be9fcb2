//! Building and running an instance: storage, keys, channel layer, router, listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt as _;
use axum::routing::any;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::auth::throttle::LoginThrottle;
use crate::auth::token::Keys;
use crate::config::Config;
use crate::error::AppError;
use crate::features::chat::writer::MessageWriter;
use crate::features::jobs::{self, JobRunner};
use crate::features::{publish, rooms, system, tokens, users, webhooks};
use crate::layer::ChannelLayer;
use crate::layer::memory::MemoryLayer;
use crate::layer::redis::RedisLayer;
use crate::layer::Class;
use confab_shared::rpc::Notification;
use confab_shared::rpc::notify::RoomUser;
use crate::presence::redis::RedisPresence;
use crate::presence::PresenceStore;
use crate::presence::memory::MemoryPresence;
use crate::state::AppState;
use crate::storage::Db;
use crate::{auth, http, ws};

/// How long sockets get to close (1001) when the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A bound, ready-to-run instance. Tests build one on port 0 and talk to it over sockets.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
        let db = Db::connect(&config.database_url()).await.context("connecting to the database")?;
        db.migrate().await.context("migrating the database")?;
        let secret = Keys::load_secret(config.jwt_secret.as_deref(), &config.data_dir)?;
        let keys = Arc::new(Keys::new(&secret, config.access_ttl()));
        let shutdown = CancellationToken::new();
        let Shared { layer, presence, throttle } = shared_state(&config, &shutdown).await?;
        let webhooks = crate::features::webhooks::Outbox::default();
        webhooks.reload(&db).await.context("reading the webhooks")?;
        let writer = MessageWriter::spawn(db.clone(), layer.clone(), webhooks.clone());
        // Jobs left unfinished by an earlier run (or, with Redis, by a dead instance) are failed.
        jobs::runner::sweep(&db, layer.as_ref(), config.redis_url.is_none()).await;
        let listener = TcpListener::bind(config.bind).await.with_context(|| format!("binding {}", config.bind))?;
        let state = AppState {
            throttle,
            token_usage: Arc::default(),
            config: Arc::new(config),
            db,
            keys,
            layer,
            presence,
            writer,
            webhooks,
            jobs: JobRunner::new(shutdown.clone()),
            shutdown,
            sessions: TaskTracker::new(),
        };
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| self.state.config.bind)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `stop` resolves, then closes every socket with 1001, and waits for the
    /// sessions to finish and for running jobs to record themselves failed (both bounded).
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let state = self.state.clone();
        let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let shutdown = state.shutdown.clone();
        tokio::spawn(jobs::runner::sweep_periodically(state.db.clone(), state.layer.clone(), shutdown.clone()));
        let deliveries = tokio::spawn(crate::features::webhooks::worker::run(state.clone()));
        let usage = {
            let (usage, db, shutdown) = (state.token_usage.clone(), state.db.clone(), shutdown.clone());
            tokio::spawn(async move { usage.flush_periodically(db, shutdown).await })
        };
        // Frames are small and latency-bound: no Nagle delay (40 ms with a delayed ACK).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%err, "TCP_NODELAY not set");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                stop.await;
                shutdown.cancel();
            })
            .await?;
        state.shutdown.cancel();
        state.sessions.close();
        let sessions = async {
            if tokio::time::timeout(SHUTDOWN_GRACE, state.sessions.wait()).await.is_err() {
                tracing::warn!("some sockets did not close within the grace period");
            }
        };
        tokio::join!(sessions, state.jobs.shutdown(&state.db));
        if let Err(err) = deliveries.await {
            tracing::warn!(%err, "webhook worker failed");
        }
        // The last token usage times are written once the sockets and requests are done.
        if let Err(err) = usage.await {
            tracing::warn!(%err, "token usage flusher failed");
        }
        Ok(())
    }
}

/// What instances share, or keep to themselves without Redis.
struct Shared {
    layer: Arc<dyn ChannelLayer>,
    presence: Arc<dyn PresenceStore>,
    throttle: Arc<LoginThrottle>,
}

/// The channel layer, presence store and login throttle `REDIS_URL` selects.
async fn shared_state(config: &Config, shutdown: &CancellationToken) -> anyhow::Result<Shared> {
    let Some(url) = &config.redis_url else {
        return Ok(Shared {
            layer: Arc::new(MemoryLayer::new()),
            presence: Arc::new(MemoryPresence::default()),
            throttle: Arc::new(LoginThrottle::new(config.login_attempts)),
        });
    };
    let client = redis::Client::open(url.as_str()).context("parsing REDIS_URL")?;
    let layer: Arc<dyn ChannelLayer> = Arc::new(RedisLayer::start(client.clone()).await.context("connecting to redis")?);
    let (reaped_tx, mut reaped) = tokio::sync::mpsc::unbounded_channel();
    let presence = RedisPresence::start(&client, layer.hub().instance(), reaped_tx, shutdown.clone()).await?;
    let throttle = Arc::new(LoginThrottle::shared(config.login_attempts, presence.connection()));
    // Announce the departures of users whose instance died (SIGKILL) as if they had left.
    let announcer = layer.clone();
    tokio::spawn(async move {
        while let Some(departures) = reaped.recv().await {
            for (room, username) in departures.left {
                let event = Notification::UserLeft(RoomUser { room: room.clone(), username });
                rooms::broadcast_on(announcer.as_ref(), &room, &event, Class::Droppable);
            }
            for username in departures.offline {
                users::announce_on(announcer.as_ref(), &username, false);
            }
        }
    });
    Ok(Shared { layer, presence, throttle })
}

/// Every route, the SPA as the fallback, and the cross-cutting layers.
pub fn router(state: AppState) -> Router {
    let static_dir = &state.config.static_dir;
    let index = static_dir.join("index.html");
    if !index.exists() {
        tracing::warn!(path = %index.display(), "the SPA is not built (run `just build-spa`); only the API is served");
    }
    let spa = ServeDir::new(static_dir).fallback(ServeFile::new(index));
    Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(rooms::router())
        .merge(publish::router())
        .merge(jobs::router())
        .merge(system::router(&state.config.docs_assets_dir))
        .merge(tokens::router())
        .merge(webhooks::router())
        .merge(ws::router())
        // Every route above checks API tokens against its scope before its handler runs.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::scopes::enforce_rest))
        .route("/api", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .fallback_service(spa)
        .layer(DefaultBodyLimit::max(http::MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            axum::response::IntoResponse::into_response(AppError::Internal(anyhow::anyhow!("handler panicked")))
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn api_not_found() -> AppError {
    AppError::NotFound("API route")
}
