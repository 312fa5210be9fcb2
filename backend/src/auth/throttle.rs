//! Login throttling: failed attempts counted per username and per client IP.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

const WINDOW: Duration = Duration::from_secs(300);

/// Counts failures in fixed windows; a key over its limit is refused until the window ends.
pub struct LoginThrottle {
    per_user: u32,
    per_ip: u32,
    failures: DashMap<String, (u32, Instant)>,
}

impl LoginThrottle {
    /// `per_user` failures per username (and 4× that per IP) every five minutes.
    pub fn new(per_user: u32) -> Self {
        Self { per_user: per_user.max(1), per_ip: per_user.max(1) * 4, failures: DashMap::new() }
    }

    fn keys(username: &str, ip: Option<IpAddr>) -> [(String, bool); 2] {
        [
            (format!("u:{}", username.to_ascii_lowercase()), true),
            (ip.map_or_else(|| "ip:unknown".to_owned(), |ip| format!("ip:{ip}")), false),
        ]
    }

    /// `Err(retry_after)` when either key is over its limit.
    pub fn check(&self, username: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        let now = Instant::now();
        for (key, is_user) in Self::keys(username, ip) {
            let limit = if is_user { self.per_user } else { self.per_ip };
            if let Some(entry) = self.failures.get(&key) {
                let (count, started) = *entry;
                let elapsed = now.duration_since(started);
                if elapsed < WINDOW && count >= limit {
                    return Err(WINDOW - elapsed);
                }
            }
        }
        Ok(())
    }

    /// Records a failed attempt.
    pub fn failed(&self, username: &str, ip: Option<IpAddr>) {
        let now = Instant::now();
        for (key, _) in Self::keys(username, ip) {
            let mut entry = self.failures.entry(key).or_insert((0, now));
            if now.duration_since(entry.1) >= WINDOW {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
        if self.failures.len() > 100_000 {
            self.failures.retain(|_, (_, started)| now.duration_since(*started) < WINDOW);
        }
    }

    /// A successful login clears the username's count (not the IP's).
    pub fn succeeded(&self, username: &str) {
        self.failures.remove(&format!("u:{}", username.to_ascii_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_throttled_after_its_limit_and_success_resets_it() {
        let t = LoginThrottle::new(2);
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        assert!(t.check("Ann", ip).is_ok());
        t.failed("ann", ip);
        t.failed("ANN", ip);
        assert!(t.check("ann", ip).is_err());
        assert!(t.check("bob", ip).is_ok());
        t.succeeded("ann");
        assert!(t.check("ann", ip).is_ok());
    }

    #[test]
    fn an_ip_is_throttled_across_usernames() {
        let t = LoginThrottle::new(1);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for name in ["a1", "a2", "a3", "a4"] {
            t.failed(name, ip);
        }
        assert!(t.check("fresh", ip).is_err());
        assert!(t.check("fresh", Some(IpAddr::from([10, 0, 0, 2]))).is_ok());
    }
}
