//! Login throttling: failed attempts counted per username and per client IP.
//!
//! Counts live in this instance's memory and, when the server runs on Redis, also in Redis
//! (`INCR` + `EXPIRE … NX`, fixed windows), so a cluster allows the same number of guesses
//! as one instance, not one allowance per instance. The keys share one hash tag, so on a
//! Redis Cluster the pipelines that read a username's and an IP's counts stay single-slot. Redis errors fall back to the local
//! counts: an outage never locks everyone out, nor lets a guesser in for free here.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::redis_link::RedisConn;

const WINDOW: Duration = Duration::from_secs(300);
const REDIS_PREFIX: &str = "confab:{confab:t}:throttle:";

/// Counts failures in fixed windows; a key over its limit is refused until the window ends.
pub struct LoginThrottle {
    per_user: u32,
    per_ip: u32,
    failures: DashMap<String, (u32, Instant)>,
    shared: Option<RedisConn>,
}

impl LoginThrottle {
    /// `per_user` failures per username (and 4× that per IP) every five minutes, counted in
    /// this instance only.
    pub fn new(per_user: u32) -> Self {
        Self { per_user: per_user.max(1), per_ip: per_user.max(1) * 4, failures: DashMap::new(), shared: None }
    }

    /// The same, with the counts shared through Redis by every instance.
    pub fn shared(per_user: u32, redis: RedisConn) -> Self {
        Self { shared: Some(redis), ..Self::new(per_user) }
    }

    fn keys(username: &str, ip: Option<IpAddr>) -> [(String, u32); 2] {
        [(Self::user_key(username), 1), (ip.map_or_else(|| "ip:unknown".to_owned(), |ip| format!("ip:{ip}")), 4)]
    }

    fn user_key(username: &str) -> String {
        format!("u:{}", username.to_ascii_lowercase())
    }

    fn limit(&self, per_user_multiple: u32) -> u32 {
        if per_user_multiple == 1 { self.per_user } else { self.per_ip }
    }

    /// `Err(retry_after)` when either key is over its limit.
    pub async fn check(&self, username: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        let keys = Self::keys(username, ip);
        let now = Instant::now();
        for (key, multiple) in &keys {
            if let Some(entry) = self.failures.get(key) {
                let (count, started) = *entry;
                let elapsed = now.duration_since(started);
                if elapsed < WINDOW && count >= self.limit(*multiple) {
                    return Err(WINDOW - elapsed);
                }
            }
        }
        let Some(redis) = &self.shared else { return Ok(()) };
        let mut pipe = redis::pipe();
        for (key, _) in &keys {
            pipe.get(format!("{REDIS_PREFIX}{key}")).pttl(format!("{REDIS_PREFIX}{key}"));
        }
        let answers: Vec<(Option<u32>, i64)> = match pipe.query_async(&mut redis.clone()).await {
            Ok(answers) => answers,
            Err(err) => {
                tracing::warn!(%err, "login throttle: shared counts unavailable, using this instance's");
                return Ok(());
            }
        };
        for ((_, multiple), (count, ttl_ms)) in keys.iter().zip(answers) {
            if count.unwrap_or(0) >= self.limit(*multiple) {
                return Err(Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0).max(1000)));
            }
        }
        Ok(())
    }

    /// Records a failed attempt.
    pub async fn failed(&self, username: &str, ip: Option<IpAddr>) {
        let keys = Self::keys(username, ip);
        let now = Instant::now();
        for (key, _) in &keys {
            let mut entry = self.failures.entry(key.clone()).or_insert((0, now));
            if now.duration_since(entry.1) >= WINDOW {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
        if self.failures.len() > 100_000 {
            self.failures.retain(|_, (_, started)| now.duration_since(*started) < WINDOW);
        }
        if let Some(redis) = &self.shared {
            let mut pipe = redis::pipe();
            for (key, _) in &keys {
                let key = format!("{REDIS_PREFIX}{key}");
                pipe.incr(&key, 1).ignore().cmd("EXPIRE").arg(&key).arg(WINDOW.as_secs()).arg("NX").ignore();
            }
            if let Err(err) = pipe.query_async::<()>(&mut redis.clone()).await {
                tracing::warn!(%err, "login throttle: failure counted on this instance only");
            }
        }
    }

    /// A successful login clears the username's count (not the IP's).
    pub async fn succeeded(&self, username: &str) {
        let key = Self::user_key(username);
        self.failures.remove(&key);
        if let Some(redis) = &self.shared {
            let result: redis::RedisResult<()> = redis::cmd("DEL").arg(format!("{REDIS_PREFIX}{key}")).query_async(&mut redis.clone()).await;
            if let Err(err) = result {
                tracing::warn!(%err, "login throttle: shared count not cleared");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_username_is_throttled_after_its_limit_and_success_resets_it() {
        let t = LoginThrottle::new(2);
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        assert!(t.check("Ann", ip).await.is_ok());
        t.failed("ann", ip).await;
        t.failed("ANN", ip).await;
        assert!(t.check("ann", ip).await.is_err());
        assert!(t.check("bob", ip).await.is_ok());
        t.succeeded("ann").await;
        assert!(t.check("ann", ip).await.is_ok());
    }

    #[tokio::test]
    async fn an_ip_is_throttled_across_usernames() {
        let t = LoginThrottle::new(1);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for name in ["a1", "a2", "a3", "a4"] {
            t.failed(name, ip).await;
        }
        assert!(t.check("fresh", ip).await.is_err());
        assert!(t.check("fresh", Some(IpAddr::from([10, 0, 0, 2]))).await.is_ok());
    }
}
