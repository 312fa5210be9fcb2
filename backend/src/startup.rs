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
use tower_http::trace::TraceLayer;

use crate::auth::password::Hasher;
use crate::auth::throttle::LoginThrottle;
use crate::auth::token::Keys;
use crate::config::Config;
use crate::error::AppError;
use crate::features::chat::pipeline::MessagePipeline;
use crate::features::jobs::{self, JobRunner};
use crate::features::moderation::sanctions::Sanctions;
use crate::features::{publish, rooms, system, tokens, users, webhooks};
use crate::layer::ChannelLayer;
use crate::layer::memory::MemoryLayer;
use crate::layer::redis::RedisLayer;
use crate::presence::batch::{Batcher, RoomRule};
use crate::presence::redis::RedisPresence;
use crate::redis_link::{self, RedisConn, RedisMode};
use crate::presence::PresenceStore;
use crate::presence::memory::MemoryPresence;
use crate::state::AppState;
use crate::storage::Db;
use crate::{auth, compression, headers, http, spa, ws};

/// How long sockets get to close (1001) when the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A bound, ready-to-run instance. Tests build one on port 0 and talk to it over sockets.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        crate::files::create_data_dir(&config.data_dir)
            .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
        let db = Db::connect(&config.database_url()).await.context("connecting to the database")?;
        db.migrate().await.context("migrating the database")?;
        crate::storage::users::Names::load(&db).await.context("reading the user names")?;
        let secret = Keys::load_secret(config.jwt_secret.as_deref(), &config.data_dir)?;
        let keys = Arc::new(Keys::new(&secret, config.access_ttl()));
        let issuers = crate::auth::issuers::Issuers::load(config.issuers_file.as_deref())?;
        let hooks = crate::features::hooks::Hooks::from_config(&config)?;
        if !issuers.is_empty() {
            tracing::info!(issuers = ?issuers.names(), "trusting the tokens of these issuers");
        }
        let shutdown = CancellationToken::new();
        let Shared { layer, presence, throttle, presence_batch } = shared_state(&config, &shutdown).await?;
        let webhooks = crate::storage::webhook_queue::WebhookQueue::default();
        webhooks.reload(&db).await.context("reading the webhooks")?;
        // A bad CONFAB_WEBHOOK_CA_FILE stops the start here, not every delivery later.
        crate::features::webhooks::destination::client(config.webhook_allow_private, config.webhook_ca_file.as_deref())?;
        let vapid = crate::webpush::Vapid::load(config.vapid_private_key_file.as_deref(), &config.data_dir, &config.vapid_subject)?;
        let sanctions = Arc::new(Sanctions::default());
        sanctions.replace(Sanctions::load(&db).await.context("reading the moderation decisions")?);
        let push_alerts = crate::storage::push::Alerts::default();
        let pipeline = MessagePipeline::spawn(db.clone(), &config.database_url(), layer.clone(), webhooks.clone(), push_alerts.clone())
            .context("starting the message pipeline")?;
        // Jobs left unfinished by an earlier run (or, with Redis, by a dead instance) are failed.
        jobs::runner::sweep(&db, layer.as_ref(), config.redis_url.is_none()).await;
        let listener = TcpListener::bind(config.bind).await.with_context(|| format!("binding {}", config.bind))?;
        let threads = if config.hash_threads == 0 { Hasher::default_threads() } else { config.hash_threads };
        let hasher = Hasher::start(threads, config.hash_queue);
        let state = AppState {
            throttle,
            hasher,
            upgrades: Arc::new(tokio::sync::Semaphore::new(config.max_pending_upgrades.max(1))),
            sockets: Arc::new(ws::caps::SocketCaps::new(config.max_sockets_per_ip, config.max_sockets_per_user)),
            streams: Arc::default(),
            write_budgets: Arc::new(ws::limits::WriteBudgets::new(config.write_bytes_per_sec)),
            client_ip: Arc::new(config.client_ip_policy()),
            token_usage: Arc::default(),
            config: Arc::new(config),
            db,
            keys,
            issuers: Arc::new(issuers),
            hooks: Arc::new(hooks),
            layer,
            presence,
            presence_batch,
            pipeline,
            sanctions,
            webhooks,
            vapid: Arc::new(vapid),
            push_queue: crate::storage::push::PushQueue::default(),
            push_alerts,
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
        tokio::spawn(jobs::expiry::sweep_periodically(state.clone()));
        tokio::spawn(crate::features::moderation::retention::sweep_periodically(state.clone()));
        if state.config.redis_url.is_some() {
            let tick = state.config.presence_tick();
            let (db, sanctions, layer) = (state.db.clone(), state.sanctions.clone(), state.layer.clone());
            tokio::spawn(crate::features::moderation::refresh::run(db, sanctions, layer, tick, shutdown.clone()));
        }
        let deliveries = tokio::spawn(crate::features::webhooks::worker::run(state.clone()));
        let pushes = tokio::spawn(crate::features::push::worker::run(state.clone()));
        tokio::spawn(crate::features::push::offline::run(state.clone()));
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
        if let Err(err) = pushes.await {
            tracing::warn!(%err, "push worker failed");
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
    presence_batch: Arc<Batcher>,
}

/// The presence batcher for this layer and store, ticking until shutdown.
fn batcher(config: &Config, layer: &Arc<dyn ChannelLayer>, presence: &Arc<dyn PresenceStore>, shutdown: &CancellationToken) -> Arc<Batcher> {
    let rule = RoomRule { detail_max_members: config.room_presence_detail_max, ..RoomRule::default() };
    let batch = Batcher::new(layer.clone(), presence.clone(), rule);
    tokio::spawn(batch.clone().run(config.presence_tick(), shutdown.clone()));
    batch
}

/// The channel layer, presence store and login throttle `REDIS_URL` selects.
async fn shared_state(config: &Config, shutdown: &CancellationToken) -> anyhow::Result<Shared> {
    let Some(url) = &config.redis_url else {
        let layer: Arc<dyn ChannelLayer> = Arc::new(MemoryLayer::new());
        let presence: Arc<dyn PresenceStore> = Arc::new(MemoryPresence::default());
        let presence_batch = batcher(config, &layer, &presence, shutdown);
        let throttle = Arc::new(LoginThrottle::new(config.login_attempts, config.signups_per_ip));
        return Ok(Shared { layer, presence, throttle, presence_batch });
    };
    let mode = redis_link::detect(url, config.redis_mode).await.context("reaching redis")?;
    // The layer and the command connection (presence, throttle) each have a connection of
    // their own; on a cluster both come from one client, so the slot map is read once.
    let (layer, conn): (Arc<dyn ChannelLayer>, RedisConn) = if mode == RedisMode::Cluster {
        let client = redis_link::cluster_client(url).await.context("reaching the redis cluster")?;
        let layer = RedisLayer::start_cluster(&client, url).await.context("connecting to the redis cluster")?;
        (Arc::new(layer), RedisConn::cluster(&client).await?)
    } else {
        let client = redis_link::single_client(url)?;
        let layer = RedisLayer::start(client.clone()).await.context("connecting to redis")?;
        (Arc::new(layer), RedisConn::single(client).await?)
    };
    tracing::info!(?mode, "channel layer on redis");
    let presence = RedisPresence::start(conn, layer.hub().instance(), shutdown.clone()).await?;
    let throttle = Arc::new(LoginThrottle::shared(config.login_attempts, config.signups_per_ip, presence.connection()));
    let store: Arc<dyn PresenceStore> = presence.clone();
    let presence_batch = batcher(config, &layer, &store, shutdown);
    // Departures of dead instances' users and what a rewrite after an outage finds are
    // announced like a connection's own arrivals and departures.
    let announcer = presence_batch.clone();
    presence.announce_with(Arc::new(move |found| announcer.apply(&found)));
    Ok(Shared { layer, presence: store, throttle, presence_batch })
}

/// Every route, the SPA as the fallback, and the cross-cutting layers.
pub fn router(state: AppState) -> Router {
    // REST answers are compressed; the socket and the (precompressed) SPA files are not.
    let rest = Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(rooms::router())
        .merge(publish::router())
        .merge(jobs::router())
        .merge(system::router(&state.config.docs_assets_dir))
        .merge(tokens::router())
        .merge(webhooks::router())
        .merge(crate::features::push::router())
        .merge(crate::features::moderation::router())
        // Every route above checks API tokens against its scope before its handler runs.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::extract::enforce_rest))
        .route("/api", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .layer(compression::layer());
    Router::new()
        .merge(rest)
        .merge(ws::router())
        .merge(spa::router(&state.config.static_dir))
        .layer(DefaultBodyLimit::max(http::MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            axum::response::IntoResponse::into_response(AppError::Internal(anyhow::anyhow!("handler panicked")))
        }))
        .layer(axum::middleware::from_fn_with_state(
            headers::BrowserHeaders::new(&state.config.static_dir, state.config.https),
            headers::set,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn api_not_found() -> AppError {
    AppError::NotFound("API route")
}
