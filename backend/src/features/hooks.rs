//! Backend hooks: the team's own backend decides before a socket is accepted, a room is
//! joined or a message is stored or edited (`CONFAB_HOOK_URL`, `CONFAB_HOOKS`).
//!
//! A hook is a synchronous `POST` of the typed [`HookRequest`] to the one hook URL, signed
//! as webhook deliveries are ([`crate::signing`]: `webhook-id`, `webhook-timestamp`,
//! `webhook-signature`), answered with a [`HookAnswer`]: allow, deny with a reason shown to
//! the caller, and for sends a replacement text, for connects more rooms. The answer is
//! bounded in time (`CONFAB_HOOK_TIMEOUT_MS`) and in bytes ([`MAX_HOOK_ANSWER_BYTES`]); a
//! backend that fails (timeout, refused connection, not 2xx, an answer that breaks the
//! rules) is decided by the hook's `CONFAB_HOOK_ON_ERROR` policy, never by waiting longer.
//!
//! The caller asks only when its hook is on ([`Hooks::is_on`]); with no hook configured a
//! call costs one branch. Each hook's outcomes and latency are Prometheus series.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use base64::Engine as _;
use confab_shared::hooks::{HookAnswer, HookName, HookRequest, HookResult, HookUser, MAX_HOOK_ANSWER_BYTES, MAX_HOOK_REASON_CHARS, MAX_HOOK_ROOMS};
use confab_shared::validate;
use confab_shared::webhooks::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, WEBHOOK_SECRET_PREFIX};

use crate::auth::token::Identity;
use crate::config::{Config, HookOnError, OnError};
use crate::error::AppError;
use crate::metrics::{self, Counter, Histogram};

/// Decoded secret bytes the Standard Webhooks specification asks for.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
/// The least time between two log lines about a failing backend (per hook).
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What a hook decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on; for a send, with `text` instead of the sender's; for a connect, also join `rooms`.
    Allow { text: Option<String>, rooms: Vec<String> },
    /// Stop, telling the caller `reason`.
    Deny { reason: String },
}

impl Verdict {
    fn allow() -> Self {
        Self::Allow { text: None, rooms: Vec::new() }
    }
}

/// What an allowing hook may add: a replacement text (sends and edits), rooms (connect).
#[derive(Debug, Default)]
pub struct Allowed {
    pub text: Option<String>,
    pub rooms: Vec<String>,
}

/// The configured hooks (none by default) and their counters.
pub struct Hooks {
    endpoint: Option<Endpoint>,
    stats: [Stats; HookName::ALL.len()],
}

struct Endpoint {
    url: reqwest::Url,
    secret: String,
    timeout: Duration,
    on: Vec<HookName>,
    on_error: HookOnError,
    client: reqwest::Client,
}

/// One hook's series.
#[derive(Default)]
struct Stats {
    allowed: Counter,
    denied: Counter,
    /// Failures the policy let through / refused.
    failed_allowed: Counter,
    failed_denied: Counter,
    latency: Histogram,
    /// Seconds since `started` of the last failure logged.
    last_logged: AtomicU64,
}

/// Why asking failed (logged, never shown to the caller).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach the backend: {0}")]
    Unreachable(String),
    #[error("the backend answered {0}")]
    Status(u16),
    #[error("the answer is larger than {MAX_HOOK_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("the answer breaks the rules: {0}")]
    Malformed(String),
}

impl Hooks {
    /// The hooks of `config`, checked: a URL needs hooks and a secret, hooks need a URL.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let stats = Default::default();
        let Some(raw) = &config.hook_url else {
            if !config.hooks.is_empty() {
                bail!("CONFAB_HOOKS names hooks but CONFAB_HOOK_URL is not set");
            }
            return Ok(Self { endpoint: None, stats });
        };
        let url = reqwest::Url::parse(raw).map_err(|e| anyhow!("CONFAB_HOOK_URL is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("CONFAB_HOOK_URL must be an http:// or https:// URL");
        }
        if config.hooks.is_empty() {
            bail!("CONFAB_HOOK_URL is set but CONFAB_HOOKS names no hook (connect, room.join, room.send, dm.send, message.edit)");
        }
        let secret = config.hook_secret.clone().ok_or_else(|| anyhow!("CONFAB_HOOK_SECRET is required with CONFAB_HOOK_URL"))?;
        let key_len = secret
            .strip_prefix(WEBHOOK_SECRET_PREFIX)
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .map(|key| key.len());
        if !key_len.is_some_and(|len| SECRET_BYTES.contains(&len)) {
            bail!("CONFAB_HOOK_SECRET must be `{WEBHOOK_SECRET_PREFIX}` followed by base64 of 24 to 64 random bytes");
        }
        let timeout = Duration::from_millis(config.hook_timeout_ms);
        // No redirects: a hook answers where it was asked, or it failed.
        let client = crate::tls::client_builder().redirect(reqwest::redirect::Policy::none()).timeout(timeout).build()?;
        let endpoint = Endpoint { url, secret, timeout, on: config.hooks.clone(), on_error: config.hook_on_error.clone(), client };
        Ok(Self { endpoint: Some(endpoint), stats })
    }

    /// Whether `hook` asks the backend.
    pub fn is_on(&self, hook: HookName) -> bool {
        self.endpoint.as_ref().is_some_and(|e| e.on.contains(&hook))
    }

    /// Asks the backend (or, when it fails, the hook's policy) and counts the outcome. Call
    /// only when [`Hooks::is_on`]; otherwise this allows without asking.
    pub async fn ask(&self, request: &HookRequest) -> Verdict {
        let hook = request.name();
        let Some(endpoint) = self.endpoint.as_ref().filter(|e| e.on.contains(&hook)) else { return Verdict::allow() };
        let stats = &self.stats[index(hook)];
        let started = Instant::now();
        let outcome = endpoint.post(request).await.and_then(|answer| verdict(hook, answer));
        stats.latency.observe(started.elapsed());
        match outcome {
            Ok(verdict) => {
                let counter = if matches!(verdict, Verdict::Allow { .. }) { &stats.allowed } else { &stats.denied };
                counter.fetch_add(1, Ordering::Relaxed);
                verdict
            }
            Err(failure) => {
                let policy = endpoint.on_error.of(hook);
                log_failure(stats, hook, &failure, policy);
                match policy {
                    OnError::Allow => {
                        stats.failed_allowed.fetch_add(1, Ordering::Relaxed);
                        Verdict::allow()
                    }
                    OnError::Deny => {
                        stats.failed_denied.fetch_add(1, Ordering::Relaxed);
                        Verdict::Deny { reason: "the application could not be asked; try again later".to_owned() }
                    }
                }
            }
        }
    }

    /// [`Hooks::ask`], with a deny as the caller's error (403 / -32003 with `data.reason`).
    pub async fn allowed(&self, request: &HookRequest) -> Result<Allowed, AppError> {
        match self.ask(request).await {
            Verdict::Allow { text, rooms } => Ok(Allowed { text, rooms }),
            Verdict::Deny { reason } => Err(AppError::Denied { hook: request.name(), reason }),
        }
    }

    /// Appends the hooks' series in Prometheus text format (nothing without hooks).
    pub fn render_metrics(&self, out: &mut String) {
        let Some(endpoint) = &self.endpoint else { return };
        metrics::header(out, "confab_hook_requests_total", "counter", "Hook calls by outcome: the backend's allow or deny, or a failure decided by the policy");
        for hook in &endpoint.on {
            let stats = &self.stats[index(*hook)];
            for (outcome, counter) in [("allow", &stats.allowed), ("deny", &stats.denied), ("failed_allow", &stats.failed_allowed), ("failed_deny", &stats.failed_denied)] {
                let labels = format!("hook=\"{}\",outcome=\"{outcome}\"", hook.as_str());
                metrics::counter_line(out, "confab_hook_requests_total", &labels, counter.load(Ordering::Relaxed));
            }
        }
        metrics::header(out, "confab_hook_duration_seconds", "histogram", "Time from a hook's request to its answer or failure");
        for hook in &endpoint.on {
            self.stats[index(*hook)].latency.render(out, "confab_hook_duration_seconds", &format!("hook=\"{}\"", hook.as_str()));
        }
    }
}

impl Endpoint {
    async fn post(&self, request: &HookRequest) -> Result<HookAnswer, Failure> {
        let body = serde_json::to_string(request).map_err(|e| Failure::Malformed(e.to_string()))?;
        let id = format!("hook_{}", uuid::Uuid::new_v4().simple());
        let timestamp = chrono::Utc::now().timestamp();
        let signature = crate::signing::signature(&self.secret, &id, timestamp, &body).ok_or(Failure::Malformed("unusable secret".into()))?;
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_ID, id)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(body);
        let mut response = sent.send().await.map_err(|e| self.failure(e))?;
        if !response.status().is_success() {
            return Err(Failure::Status(response.status().as_u16()));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failure(e))? {
            if bytes.len() + chunk.len() > MAX_HOOK_ANSWER_BYTES {
                return Err(Failure::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&bytes).map_err(|e| Failure::Malformed(e.to_string()))
    }

    fn failure(&self, err: reqwest::Error) -> Failure {
        if err.is_timeout() { Failure::Timeout(self.timeout) } else { Failure::Unreachable(without_url(err)) }
    }
}

/// The error's description without the URL (which may carry credentials in its query).
fn without_url(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The answer as a verdict, checked against the rules of what it may say for `hook`.
fn verdict(hook: HookName, answer: HookAnswer) -> Result<Verdict, Failure> {
    if answer.result == HookResult::Deny {
        let reason = answer.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or("refused by the application");
        return Ok(Verdict::Deny { reason: reason.chars().take(MAX_HOOK_REASON_CHARS).collect() });
    }
    let text = match (answer.text, hook) {
        (None, _) => None,
        (Some(text), HookName::RoomSend | HookName::DmSend | HookName::MessageEdit) => {
            Some(validate::message_text(&text).map_err(|m| Failure::Malformed(format!("text: {m}")))?.to_owned())
        }
        (Some(_), _) => return Err(Failure::Malformed(format!("text is for room.send, dm.send and message.edit, not {}", hook.as_str()))),
    };
    let rooms = match (answer.rooms, hook) {
        (None, _) => Vec::new(),
        (Some(rooms), HookName::Connect) => {
            if rooms.len() > MAX_HOOK_ROOMS {
                return Err(Failure::Malformed(format!("rooms: at most {MAX_HOOK_ROOMS}")));
            }
            for room in &rooms {
                validate::room_name(room).map_err(|m| Failure::Malformed(format!("rooms: {m}")))?;
            }
            rooms
        }
        (Some(_), _) => return Err(Failure::Malformed(format!("rooms is for connect, not {}", hook.as_str()))),
    };
    Ok(Verdict::Allow { text, rooms })
}

/// Logs a failure, at most once per [`LOG_EVERY`] per hook: a backend that is down would
/// otherwise log once per call.
fn log_failure(stats: &Stats, hook: HookName, failure: &Failure, policy: OnError) {
    static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let now = STARTED.get_or_init(Instant::now).elapsed().as_secs() + 1;
    let last = stats.last_logged.load(Ordering::Relaxed);
    if (last == 0 || now >= last + LOG_EVERY.as_secs()) && stats.last_logged.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        tracing::warn!(hook = hook.as_str(), %failure, ?policy, "a hook failed; its policy decided (logged at most once a minute)");
    }
}

fn index(hook: HookName) -> usize {
    HookName::ALL.iter().position(|h| *h == hook).unwrap_or(0)
}

/// Who is calling, as a hook's body names them.
pub fn user(identity: &Identity) -> HookUser {
    HookUser {
        username: identity.username.clone(),
        admin: identity.is_admin,
        issuer: identity.external.as_ref().map(|e| e.issuer.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> HookAnswer {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_answer_may_replace_only_a_sends_text_and_add_rooms_only_at_connect() {
        let replaced = verdict(HookName::RoomSend, answer(r#"{"result":"allow","text":"  [link] "}"#)).unwrap();
        assert_eq!(replaced, Verdict::Allow { text: Some("[link]".into()), rooms: vec![] });
        assert!(verdict(HookName::RoomJoin, answer(r#"{"result":"allow","text":"x"}"#)).is_err());
        assert!(verdict(HookName::DmSend, answer(r#"{"result":"allow","text":"   "}"#)).is_err(), "an empty text breaks the message rules");
        let rooms = verdict(HookName::Connect, answer(r#"{"result":"allow","rooms":["team-1"]}"#)).unwrap();
        assert_eq!(rooms, Verdict::Allow { text: None, rooms: vec!["team-1".into()] });
        assert!(verdict(HookName::Connect, answer(r#"{"result":"allow","rooms":["bad room"]}"#)).is_err());
        assert!(verdict(HookName::RoomSend, answer(r#"{"result":"allow","rooms":["a"]}"#)).is_err());
    }

    #[test]
    fn a_deny_carries_a_bounded_reason_and_a_default_one() {
        let long = "x".repeat(MAX_HOOK_REASON_CHARS + 10);
        let Verdict::Deny { reason } = verdict(HookName::RoomSend, answer(&format!(r#"{{"result":"deny","reason":"{long}"}}"#))).unwrap() else {
            panic!("not a deny");
        };
        assert_eq!(reason.chars().count(), MAX_HOOK_REASON_CHARS);
        assert_eq!(verdict(HookName::Connect, answer(r#"{"result":"deny"}"#)).unwrap(), Verdict::Deny { reason: "refused by the application".into() });
    }

    #[test]
    fn a_url_needs_hooks_and_a_secret_and_hooks_need_a_url() {
        let mut config = Config::for_tests(std::path::PathBuf::from("."));
        assert!(!Hooks::from_config(&config).unwrap().is_on(HookName::RoomSend));
        config.hooks = vec![HookName::RoomSend];
        assert!(Hooks::from_config(&config).is_err(), "hooks without a URL");
        config.hook_url = Some("http://127.0.0.1:9/hooks".into());
        assert!(Hooks::from_config(&config).is_err(), "no secret");
        config.hook_secret = Some("whsec_c2hvcnQ=".into());
        assert!(Hooks::from_config(&config).is_err(), "a secret of 5 bytes");
        config.hook_secret = Some(crate::signing::new_secret());
        let hooks = Hooks::from_config(&config).unwrap();
        assert!(hooks.is_on(HookName::RoomSend) && !hooks.is_on(HookName::Connect));
        config.hook_url = Some("ftp://127.0.0.1/hooks".into());
        assert!(Hooks::from_config(&config).is_err(), "not http");
        config.hook_url = Some("http://127.0.0.1:9/hooks".into());
        config.hooks.clear();
        assert!(Hooks::from_config(&config).is_err(), "a URL without hooks");
    }
}
