//! The shared state every handler and socket session receives: cheap handles only.

use std::sync::Arc;

use axum::extract::FromRef;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::password::Hasher;
use crate::auth::api_tokens::TokenUsage;
use crate::auth::throttle::LoginThrottle;
use crate::auth::token::Keys;
use crate::client_ip::ClientIpPolicy;
use crate::config::Config;
use crate::features::chat::pipeline::MessagePipeline;
use crate::features::jobs::JobRunner;
use crate::layer::ChannelLayer;
use crate::presence::PresenceStore;
use crate::presence::batch::Batcher;
use crate::storage::Db;
use crate::ws::caps::SocketCaps;
use crate::ws::limits::WriteBudgets;
use crate::ws::streams::Streams;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    /// JWT signing/verification with the pinned validation.
    pub keys: Arc<Keys>,
    /// Trusted issuers whose tokens are accepted beside Confab's own.
    pub issuers: Arc<crate::auth::issuers::Issuers>,
    /// The team's backend, asked before a connect, a join or a send (`CONFAB_HOOK_URL`).
    pub hooks: Arc<crate::features::hooks::Hooks>,
    /// Group membership and delivery, local or through Redis.
    pub layer: Arc<dyn ChannelLayer>,
    /// Connection counts per user and per room, local or in Redis.
    pub presence: Arc<dyn PresenceStore>,
    /// This instance's presence announcements, coalesced per tick.
    pub presence_batch: Arc<Batcher>,
    pub throttle: Arc<LoginThrottle>,
    /// The argon2 threads logins and signups queue on (bounded; full = 503).
    pub hasher: Arc<Hasher>,
    /// Permits for socket handshakes in progress (`CONFAB_MAX_PENDING_UPGRADES`).
    pub upgrades: Arc<Semaphore>,
    /// Open sockets per client address and per user (`CONFAB_MAX_SOCKETS_PER_*`).
    pub sockets: Arc<SocketCaps>,
    /// The open HTTP streams' sessions by id, where their POSTs find them.
    pub streams: Arc<Streams>,
    /// Message bytes per user across their sockets (`CONFAB_WRITE_BYTES_PER_SEC`).
    pub write_budgets: Arc<WriteBudgets>,
    /// How a request's client address is found (`CONFAB_TRUSTED_PROXIES`).
    pub client_ip: Arc<ClientIpPolicy>,
    /// API token `last_used_at` times waiting for their coalesced write.
    pub token_usage: Arc<TokenUsage>,
    /// The webhook delivery queue's hooks and the list of webhooks they consult.
    pub webhooks: crate::storage::webhook_queue::WebhookQueue,
    /// The server's VAPID key pair, which signs every Web Push.
    pub vapid: Arc<crate::webpush::Vapid>,
    /// Wakes the Web Push worker when pushes are queued.
    pub push_queue: crate::storage::push::PushQueue,
    /// Where private messages and mentions are handed over for people with no connection.
    pub push_alerts: crate::storage::push::Alerts,
    /// The group-commit pipeline every `room.send` goes through (batch, append, broadcast, answer).
    pub pipeline: MessagePipeline,
    /// What moderation forbids now (bans, mutes, suspensions, slow mode): this instance's
    /// copy of the stored decisions, read by every check on a hot path.
    pub sanctions: Arc<crate::features::moderation::sanctions::Sanctions>,
    /// Background jobs running on this instance, failed on shutdown.
    pub jobs: JobRunner,
    /// Cancelled when the server begins shutting down.
    pub shutdown: CancellationToken,
    /// Socket sessions, awaited on shutdown so each can say goodbye (1001).
    pub sessions: TaskTracker,
}

/// What the `ClientIp` extractor needs.
impl FromRef<AppState> for Arc<ClientIpPolicy> {
    fn from_ref(state: &AppState) -> Self {
        state.client_ip.clone()
    }
}
