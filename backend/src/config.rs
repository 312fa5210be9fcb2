//! Server configuration: every setting is a flag and an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderName;
use clap::Args;
use clap::builder::TypedValueParser as _;

use confab_shared::hooks::HookName;

use crate::client_ip::IpNet;
use crate::redis_link::RedisMode;

/// Whether people may create accounts with `POST /api/auth/signup`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signup {
    On,
    Off,
}

/// How a Confab instance runs. Defaults give a working single instance on SQLite.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "CONFAB_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Folder for the SQLite database, the generated JWT secret and job exports.
    #[arg(long, env = "CONFAB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL; default `sqlite://<data dir>/confab.db`. `postgres://…` for scale-out.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Redis URL for the channel layer and presence; unset = in-process (one instance).
    /// Any node of a Redis Cluster works (or several, comma-separated).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// `auto` asks the server whether it is a cluster node; `single` or `cluster` say so.
    #[arg(long, env = "CONFAB_REDIS_MODE", value_enum, default_value_t = RedisMode::Auto)]
    pub redis_mode: RedisMode,

    /// HMAC secret for access tokens, at least 32 bytes (RFC 7518; shorter is refused at
    /// start); unset = generated once and kept in the data dir. Instances of a cluster share it.
    #[arg(long, env = "CONFAB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// A TOML file of trusted issuers whose tokens are accepted beside Confab's own (a
    /// team's backend signing with a shared key, an OpenID Connect provider): see
    /// docs/identity.md. Checked at start; a mistake stops the server naming the entry and field.
    #[arg(long, env = "CONFAB_ISSUERS_FILE")]
    pub issuers_file: Option<PathBuf>,

    /// `off` refuses sign-ups (403), for servers whose accounts come from trusted issuers.
    #[arg(long, env = "CONFAB_SIGNUP", value_enum, default_value_t = Signup::On)]
    pub signup: Signup,

    /// The team's backend URL every hook POSTs to (signed with `CONFAB_HOOK_SECRET`);
    /// `CONFAB_HOOKS` says which hooks ask it (docs/identity.md, "Backend hooks").
    #[arg(long, env = "CONFAB_HOOK_URL")]
    pub hook_url: Option<String>,

    /// The hooks that ask the backend, comma-separated: `connect`, `room.join`, `room.send`,
    /// `dm.send`, `message.edit`.
    #[arg(long, env = "CONFAB_HOOKS", value_delimiter = ',', value_parser = parse_hook)]
    pub hooks: Vec<HookName>,

    /// How long a hook waits for the backend's answer, in ms (1 to 60 000); then the
    /// `CONFAB_HOOK_ON_ERROR` policy decides.
    #[arg(long, env = "CONFAB_HOOK_TIMEOUT_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub hook_timeout_ms: u64,

    /// What a hook decides when the backend fails (timeout, unreachable, not 2xx, a malformed
    /// answer): `deny` or `allow`, for every hook or per hook, e.g. `deny,room.send=allow`.
    #[arg(long, env = "CONFAB_HOOK_ON_ERROR", default_value = "deny", value_parser = HookOnError::parse)]
    pub hook_on_error: HookOnError,

    /// The hooks' signing secret, `whsec_` + base64 of 24 to 64 random bytes (Standard
    /// Webhooks); required with `CONFAB_HOOK_URL`.
    #[arg(long, env = "CONFAB_HOOK_SECRET", hide_env_values = true)]
    pub hook_secret: Option<String>,

    /// Extra browser origins allowed to open sockets (comma-separated); the server's own origin
    /// always is, and `*` allows any.
    #[arg(long, env = "CONFAB_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Folder with the built SPA (`index.html`, `assets/`), served at `/`; the app's own routes
    /// (`/rooms/…`, `/login`) fall back to `index.html`.
    #[arg(long, env = "CONFAB_STATIC_DIR", default_value = "frontend/dist")]
    pub static_dir: PathBuf,

    /// Folder with the vendored Swagger UI assets of `/api/docs` (`just build-docs` fills it).
    #[arg(long, env = "CONFAB_DOCS_ASSETS_DIR", default_value = "docs/api-ui/dist")]
    pub docs_assets_dir: PathBuf,

    /// The server is reached over https (Confab speaks plain HTTP; a TLS proxy in front
    /// terminates it): every response carries `Strict-Transport-Security` and the web
    /// app's refresh cookie is `Secure`. Leave off when browsers reach it over http.
    #[arg(long, env = "CONFAB_HTTPS")]
    pub https: bool,

    /// Access token lifetime in seconds.
    #[arg(long, env = "CONFAB_ACCESS_TTL_SECS", default_value_t = 900)]
    pub access_ttl_secs: u64,

    /// Refresh token (and session) lifetime in seconds.
    #[arg(long, env = "CONFAB_REFRESH_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_ttl_secs: u64,

    /// Largest WebSocket frame accepted, in bytes; larger closes with 1009.
    #[arg(long, env = "CONFAB_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Frames queued per connection before a slow consumer is evicted with 1013.
    #[arg(long, env = "CONFAB_OUTBOX_CAPACITY", default_value_t = 1024)]
    pub outbox_capacity: usize,

    /// Bytes of notifications queued for one connection before it is evicted with 1013 as a
    /// slow consumer. While more than half of it is queued (answers included), the server
    /// reads no further requests from that connection, so a client that pipelines is slowed
    /// down, never evicted for its own answers. At least 256 KiB.
    #[arg(long, env = "CONFAB_OUTBOX_MAX_BYTES", default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(256 * 1024..=1 << 32).map(|v| v as usize))]
    pub outbox_max_bytes: usize,

    /// Calls per second a connection may make (burst = 2×); beyond that: -32029.
    #[arg(long, env = "CONFAB_RATE_PER_SEC", default_value_t = 50)]
    pub rate_per_sec: u32,

    /// Bytes of message text (JSON-escaped) a user may send per second across all their
    /// connections on this instance, in `room.send`, `dm.send` and `message.edit` (burst =
    /// 4×); beyond that: -32029. At least 24 000, so the largest message always fits.
    #[arg(long, env = "CONFAB_WRITE_BYTES_PER_SEC", default_value_t = 32 * 1024, value_parser = clap::value_parser!(u32).range(24_000..))]
    pub write_bytes_per_sec: u32,

    /// Seconds between server pings; a connection silent for 3 intervals is dropped.
    #[arg(long, env = "CONFAB_PING_SECS", default_value_t = 20)]
    pub ping_secs: u64,

    /// Milliseconds within which notifications to one connection are written together: a
    /// batch of them that follows the previous write sooner waits for the rest of the window
    /// (responses never wait; a connection receiving less than one frame per window never
    /// waits). 0 writes every batch at once; at most 60 000.
    #[arg(long, env = "CONFAB_FANOUT_WINDOW_MS", default_value_t = 16, value_parser = clap::value_parser!(u64).range(..=60_000))]
    pub fanout_window_ms: u64,

    /// Seconds before access-token expiry at which `session.expiring` is sent.
    #[arg(long, env = "CONFAB_EXPIRY_WARNING_SECS", default_value_t = 60)]
    pub expiry_warning_secs: u64,

    /// Login attempts per username (and 4× that per client address) in 5 minutes; beyond
    /// that 429 with `Retry-After`, before any password is hashed. A successful login clears
    /// the username's count and does not count against the address.
    #[arg(long, env = "CONFAB_LOGIN_ATTEMPTS", default_value_t = 5)]
    pub login_attempts: u32,

    /// Sign-ups per client address in 5 minutes; beyond that 429 with `Retry-After`.
    /// 0 = unlimited.
    #[arg(long, env = "CONFAB_SIGNUPS_PER_IP", default_value_t = 20)]
    pub signups_per_ip: u32,

    /// Open sockets per client address on this instance (IPv6: per /64); one more gets 429
    /// with `Retry-After` at the upgrade. 0 = unlimited.
    #[arg(long, env = "CONFAB_MAX_SOCKETS_PER_IP", default_value_t = 256)]
    pub max_sockets_per_ip: usize,

    /// Open sockets per user on this instance (logins and API tokens together); one more gets
    /// 429 with `Retry-After` at the upgrade. 0 = unlimited.
    #[arg(long, env = "CONFAB_MAX_SOCKETS_PER_USER", default_value_t = 32)]
    pub max_sockets_per_user: usize,

    /// Reverse proxies whose client-address header is believed: comma-separated addresses or
    /// CIDR blocks (`10.0.0.0/8,::1`). Unset = none: the client address is the TCP peer's,
    /// and the header is ignored (anyone can send it).
    #[arg(long, env = "CONFAB_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,

    /// The header a trusted proxy puts the client address in (`X-Forwarded-For`, `X-Real-IP`,
    /// or `Forwarded`); the client is its right-most hop that is not a trusted proxy. Read only
    /// on connections from `CONFAB_TRUSTED_PROXIES`. Per-address limits (sockets, logins,
    /// sign-ups) count this address, IPv6 by its /64.
    #[arg(long, env = "CONFAB_CLIENT_IP_HEADER", default_value = "X-Forwarded-For")]
    pub client_ip_header: HeaderName,

    /// Password hashing threads (each keeps a 19 MiB argon2 work area); 0 = one per core, at most 4.
    #[arg(long, env = "CONFAB_HASH_THREADS", default_value_t = 0)]
    pub hash_threads: usize,

    /// Logins and signups waiting for a hashing thread before more get 503 with `Retry-After`.
    #[arg(long, env = "CONFAB_HASH_QUEUE", default_value_t = 32)]
    pub hash_queue: usize,

    /// Socket handshakes (token check included) in progress at once; more wait up to a second
    /// in line, then get 503 with `Retry-After`, so a reconnect storm queues instead of piling up.
    #[arg(long, env = "CONFAB_MAX_PENDING_UPGRADES", default_value_t = 256)]
    pub max_pending_upgrades: usize,

    /// Most concurrent background jobs per user.
    #[arg(long, env = "CONFAB_JOBS_PER_USER", default_value_t = 2)]
    pub jobs_per_user: usize,

    /// Hours a finished export's file is kept; then a sweep deletes it and the job reads
    /// `expired` (downloads get 410). 0 keeps exports until the database is cleaned by hand.
    #[arg(long, env = "CONFAB_EXPORT_TTL_HOURS", default_value_t = 24)]
    pub export_ttl_hours: u64,

    /// Most reports one account may have open (not yet resolved) at once; beyond it
    /// `message.report` answers -32009 until moderators resolve some. 0: no cap.
    #[arg(long, env = "CONFAB_OPEN_REPORTS_PER_USER", default_value_t = 100)]
    pub open_reports_per_user: u64,

    /// Days a room message is kept in rooms whose owner set no retention of their own; older
    /// ones are deleted by a sweep every minute (text and reactions go). 0 keeps them forever.
    #[arg(long, env = "CONFAB_RETENTION_DAYS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub retention_days: u32,

    /// Milliseconds per presence tick: changes within one tick are coalesced (a flap sends nothing).
    #[arg(long, env = "CONFAB_PRESENCE_TICK_MS", default_value_t = 250)]
    pub presence_tick_ms: u64,

    /// Most users one connection may watch with `presence.watch`; more is refused with -32602
    /// (`field: "users"`).
    #[arg(long, env = "CONFAB_PRESENCE_WATCH_MAX", default_value_t = 1000)]
    pub presence_watch_max: usize,

    /// Rooms with more users present get `room.online_changed` per tick instead of each join and leave.
    #[arg(long, env = "CONFAB_ROOM_PRESENCE_DETAIL_MAX", default_value_t = 100)]
    pub room_presence_detail_max: u32,

    /// First delay before retrying a failed webhook delivery, in ms; it doubles per failure
    /// (with jitter), up to 6 h.
    #[arg(long, env = "CONFAB_WEBHOOK_RETRY_BASE_MS", default_value_t = 5000)]
    pub webhook_retry_base_ms: u64,

    /// Failed webhook deliveries in a row before the webhook is disabled (admins get a `notice`).
    #[arg(long, env = "CONFAB_WEBHOOK_MAX_FAILURES", default_value_t = 15)]
    pub webhook_max_failures: u32,

    /// Let webhooks post to loopback and private addresses (tests, private networks).
    #[arg(long, env = "CONFAB_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,

    /// Extra CA certificates (a PEM bundle) trusted for `https://` webhook destinations, next
    /// to the bundled Mozilla roots: for internal endpoints signed by a private CA.
    #[arg(long, env = "CONFAB_WEBHOOK_CA_FILE")]
    pub webhook_ca_file: Option<PathBuf>,

    /// The VAPID private key Web Push is signed with (PKCS#8 PEM, P-256); unset = generated
    /// once into the data dir (`vapid_private_key.pem`). Instances of a cluster share it:
    /// browsers bind each subscription to its public half.
    #[arg(long, env = "CONFAB_VAPID_PRIVATE_KEY_FILE")]
    pub vapid_private_key_file: Option<PathBuf>,

    /// The contact push services see in each push's VAPID claims (`mailto:` or `https:`).
    #[arg(long, env = "CONFAB_VAPID_SUBJECT", default_value = "mailto:admin@localhost")]
    pub vapid_subject: String,

    /// Seconds during which further messages of one conversation push nothing to a person
    /// without a connection (the first one did); 0 pushes every message.
    #[arg(long, env = "CONFAB_PUSH_COALESCE_SECS", default_value_t = 60)]
    pub push_coalesce_secs: u64,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "CONFAB_LOG_JSON")]
    pub log_json: bool,
}

/// A name of `CONFAB_HOOKS`.
fn parse_hook(name: &str) -> Result<HookName, String> {
    let names = HookName::ALL.map(HookName::as_str).join(", ");
    HookName::parse(name.trim()).ok_or_else(|| format!("`{name}` is not a hook (one of {names})"))
}

/// Whether a hook whose backend failed lets the call through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    Deny,
    Allow,
}

/// `CONFAB_HOOK_ON_ERROR`: a policy for every hook, and exceptions per hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookOnError {
    default: OnError,
    per_hook: Vec<(HookName, OnError)>,
}

impl HookOnError {
    /// `deny`, `allow`, `room.send=allow`, or a comma-separated mix (a bare policy sets the
    /// default, which is `deny`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let policy = |word: &str| match word.trim() {
            "deny" => Ok(OnError::Deny),
            "allow" => Ok(OnError::Allow),
            other => Err(format!("`{other}` is not a policy (deny or allow)")),
        };
        let mut parsed = Self { default: OnError::Deny, per_hook: Vec::new() };
        for item in raw.split(',').filter(|item| !item.trim().is_empty()) {
            match item.split_once('=') {
                None => parsed.default = policy(item)?,
                Some((hook, value)) => parsed.per_hook.push((parse_hook(hook)?, policy(value)?)),
            }
        }
        Ok(parsed)
    }

    /// The policy of `hook`.
    pub fn of(&self, hook: HookName) -> OnError {
        self.per_hook.iter().rev().find(|(h, _)| *h == hook).map_or(self.default, |(_, policy)| *policy)
    }
}

impl Config {
    /// The database URL, defaulting to SQLite (WAL) in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}?mode=rwc", self.data_dir.join("confab.db").display())
        })
    }

    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.access_ttl_secs)
    }

    pub fn refresh_ttl(&self) -> Duration {
        Duration::from_secs(self.refresh_ttl_secs)
    }

    pub fn fanout_window(&self) -> Duration {
        Duration::from_millis(self.fanout_window_ms)
    }

    /// How long a finished export is kept; `None`: for ever.
    pub fn export_ttl(&self) -> Option<Duration> {
        (self.export_ttl_hours > 0).then(|| Duration::from_secs(self.export_ttl_hours.saturating_mul(3600)))
    }

    pub fn presence_tick(&self) -> Duration {
        Duration::from_millis(self.presence_tick_ms)
    }

    /// How the client address of a request is found.
    pub fn client_ip_policy(&self) -> crate::client_ip::ClientIpPolicy {
        crate::client_ip::ClientIpPolicy::new(self.trusted_proxies.clone(), self.client_ip_header.clone())
    }

    /// A configuration for tests: ephemeral port, the given data dir, in-process layer.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url: None,
            redis_url: None,
            redis_mode: RedisMode::Auto,
            jwt_secret: None,
            issuers_file: None,
            signup: Signup::On,
            hook_url: None,
            hooks: Vec::new(),
            hook_timeout_ms: 1000,
            hook_on_error: HookOnError { default: OnError::Deny, per_hook: Vec::new() },
            hook_secret: None,
            allowed_origins: Vec::new(),
            static_dir: PathBuf::from("frontend/dist"),
            docs_assets_dir: PathBuf::from("docs/api-ui/dist"),
            https: false,
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            max_frame_bytes: 64 * 1024,
            outbox_capacity: 1024,
            outbox_max_bytes: 4 << 20,
            rate_per_sec: 50,
            write_bytes_per_sec: 32 * 1024,
            ping_secs: 20,
            fanout_window_ms: 16,
            expiry_warning_secs: 60,
            login_attempts: 5,
            signups_per_ip: 20,
            max_sockets_per_ip: 256,
            max_sockets_per_user: 32,
            trusted_proxies: Vec::new(),
            client_ip_header: HeaderName::from_static("x-forwarded-for"),
            hash_threads: 1,
            hash_queue: 32,
            max_pending_upgrades: 256,
            jobs_per_user: 2,
            export_ttl_hours: 24,
            retention_days: 0,
            open_reports_per_user: 100,
            // Short, so tests see announcements promptly; coalescing tests flush by hand.
            presence_tick_ms: 10,
            presence_watch_max: 1000,
            room_presence_detail_max: 100,
            // Tests post to a receiver on 127.0.0.1, and retry fast.
            webhook_retry_base_ms: 50,
            webhook_max_failures: 15,
            webhook_allow_private: true,
            webhook_ca_file: None,
            vapid_private_key_file: None,
            vapid_subject: "mailto:admin@localhost".to_owned(),
            // Every message pushes: coalescing tests set a window of their own.
            push_coalesce_secs: 0,
            log_json: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn a_fanout_window_beyond_a_minute_is_refused_at_start() {
        let parse = |value: &str| Flags::try_parse_from(["confab", "--fanout-window-ms", value]).map(|f| f.config.fanout_window_ms);
        assert_eq!(parse("0").ok(), Some(0));
        assert_eq!(parse("60000").ok(), Some(60_000));
        for bad in ["60001", "18446744073709551615", "-1", "abc"] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn hooks_and_their_error_policies_are_checked_at_start() {
        let parse = |args: &[&str]| Flags::try_parse_from(std::iter::once("confab").chain(args.iter().copied())).map(|f| f.config);
        let defaults = parse(&[]).unwrap();
        assert!(defaults.hooks.is_empty() && defaults.hook_url.is_none());
        assert_eq!(defaults.hook_on_error.of(HookName::RoomSend), OnError::Deny);

        let set = parse(&["--hooks", "connect,room.send", "--hook-on-error", "allow,room.send=deny"]).unwrap();
        assert_eq!(set.hooks, [HookName::Connect, HookName::RoomSend]);
        assert_eq!(set.hook_on_error.of(HookName::RoomSend), OnError::Deny);
        assert_eq!(set.hook_on_error.of(HookName::Connect), OnError::Allow);
        assert_eq!(parse(&["--hook-on-error", "dm.send=allow"]).unwrap().hook_on_error.of(HookName::RoomJoin), OnError::Deny);

        for bad in [&["--hooks", "room.leave"][..], &["--hook-on-error", "maybe"], &["--hook-on-error", "room.sent=allow"], &["--hook-timeout-ms", "0"], &["--hook-timeout-ms", "60001"]] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn trusted_proxies_and_the_client_ip_header_are_checked_at_start() {
        let parse = |args: &[&str]| Flags::try_parse_from(std::iter::once("confab").chain(args.iter().copied())).map(|f| f.config);
        let defaults = parse(&[]).unwrap();
        assert!(defaults.trusted_proxies.is_empty());
        assert_eq!(defaults.client_ip_header.as_str(), "x-forwarded-for");
        assert_eq!((defaults.max_sockets_per_ip, defaults.max_sockets_per_user, defaults.signups_per_ip), (256, 32, 20));

        let set = parse(&["--trusted-proxies", "10.0.0.0/8, ::1,192.168.1.7", "--client-ip-header", "X-Real-IP"]).unwrap();
        let shown: Vec<String> = set.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "::1/128", "192.168.1.7/32"]);
        assert_eq!(set.client_ip_header.as_str(), "x-real-ip");

        for bad in [&["--trusted-proxies", "10.0.0.0/33"][..], &["--trusted-proxies", "proxy.local"], &["--client-ip-header", "bad header"]] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
