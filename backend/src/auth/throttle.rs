//! Login and sign-up throttling: attempts counted per username and per client address,
//! before any password is hashed.
//!
//! An attempt is counted when it arrives, and refused once its count passes the limit, so at
//! most the limit reach a hashing thread however many arrive at once. (Counting failures
//! after the hash let every guess that arrived while the first ones were hashing through:
//! about 30 concurrent guesses all reached argon2 under a limit of 5.) A refused attempt is
//! given back at once, so it spends nothing: a guesser whose address is spent does not use
//! up the username's allowance. A successful login clears its username's count and gives
//! its attempt back to the address, so an office behind one NAT can log in all morning; an
//! attempt that never got an answer from a hashing thread (503, a database error) is given
//! back to both.
//!
//! Keys are validated usernames (lowercased; the handlers refuse anything else with 422
//! first) and address buckets ([`IpBucket`]: an IPv4 address or an IPv6 /64), so no key is
//! longer than a few dozen bytes whatever a client sends, and none is worth hiding from a
//! log. Sign-ups are counted per address in a count of their own, and so are the code
//! exchanges of "Log in with" (each costs a call to the identity provider).
//!
//! Counts live in this instance's memory and, when the server runs on Redis, also in Redis
//! (`INCR` + `EXPIRE … NX`, fixed windows), so a cluster allows the same number of guesses
//! as one instance, not one allowance per instance. The keys share one hash tag, so on a
//! Redis Cluster every pipeline here stays single-slot. Redis errors fall back to the local
//! counts: an outage never locks everyone out, nor lets a guesser in for free here.

use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::client_ip::IpBucket;
use crate::redis_link::RedisConn;

const WINDOW: Duration = Duration::from_secs(300);
const REDIS_PREFIX: &str = "confab:{confab:t}:throttle:";
/// Gives one attempt back, never below zero, and never to a key whose window has ended (a
/// `DECR` there would create a key without an expiry).
const GIVE_BACK: &str = "if (tonumber(redis.call('GET', KEYS[1])) or 0) > 0 then return redis.call('DECR', KEYS[1]) end return 0";
/// Local counts kept before the expired ones are swept out.
const SWEEP_ABOVE: usize = 100_000;

/// Counts attempts in fixed windows; a key over its limit is refused until its window ends.
pub struct LoginThrottle {
    per_user: u32,
    per_ip: u32,
    /// 0: sign-ups are not counted.
    signups_per_ip: u32,
    counts: DashMap<String, (u32, Instant)>,
    shared: Option<RedisConn>,
}

impl LoginThrottle {
    /// `per_user` login attempts per username (and 4× that per address), and
    /// `signups_per_ip` sign-ups per address (0: unlimited), every five minutes, counted in
    /// this instance only.
    pub fn new(per_user: u32, signups_per_ip: u32) -> Self {
        let per_user = per_user.max(1);
        Self { per_user, per_ip: per_user.saturating_mul(4), signups_per_ip, counts: DashMap::new(), shared: None }
    }

    /// The same, with the counts shared through Redis by every instance.
    pub fn shared(per_user: u32, signups_per_ip: u32, redis: RedisConn) -> Self {
        Self { shared: Some(redis), ..Self::new(per_user, signups_per_ip) }
    }

    fn user_key(username: &str) -> String {
        format!("u:{}", username.to_ascii_lowercase())
    }

    fn ip_key(address: IpBucket) -> String {
        format!("ip:{address}")
    }

    fn signup_key(address: IpBucket) -> String {
        format!("signup:{address}")
    }

    fn exchange_key(address: IpBucket) -> String {
        format!("oidc:{address}")
    }

    /// Counts a login attempt for `username` (a validated name) from `address`;
    /// `Err(retry_after)` when either count is over its limit.
    pub async fn login_attempt(&self, username: &str, address: IpBucket) -> Result<(), Duration> {
        self.attempt(&[(Self::user_key(username), self.per_user), (Self::ip_key(address), self.per_ip)]).await
    }

    /// Counts a sign-up from `address`; `Err(retry_after)` when over the limit.
    pub async fn signup_attempt(&self, address: IpBucket) -> Result<(), Duration> {
        if self.signups_per_ip == 0 {
            return Ok(());
        }
        self.attempt(&[(Self::signup_key(address), self.signups_per_ip)]).await
    }

    /// Counts a "Log in with" code exchange from `address` (as many per window as failed
    /// logins from one address); `Err(retry_after)` when over the limit.
    pub async fn exchange_attempt(&self, address: IpBucket) -> Result<(), Duration> {
        self.attempt(&[(Self::exchange_key(address), self.per_ip)]).await
    }

    /// The exchange logged someone in, or was not refused by the provider or the token's
    /// checks (the provider was down, nothing was sent to it): its attempt is given back, so
    /// only refused codes and tokens count.
    pub async fn exchange_given_back(&self, address: IpBucket) {
        self.give_back(&[Self::exchange_key(address)]).await;
    }

    /// The login succeeded: the username's count starts over, and the address gets its
    /// attempt back.
    pub async fn login_succeeded(&self, username: &str, address: IpBucket) {
        let user = Self::user_key(username);
        self.counts.remove(&user);
        self.give_back_locally(&[Self::ip_key(address)]);
        let mut pipe = redis::pipe();
        pipe.del(format!("{REDIS_PREFIX}{user}")).ignore();
        give_back_in(&mut pipe, &Self::ip_key(address));
        self.run_shared(pipe, "login throttle: shared count not cleared").await;
    }

    /// The login got no answer (hashing at capacity, a database error): the attempt is
    /// given back to both counts, so an overloaded server does not lock anyone out.
    pub async fn login_abandoned(&self, username: &str, address: IpBucket) {
        let keys = [Self::user_key(username), Self::ip_key(address)];
        self.give_back(&keys).await;
    }

    /// The sign-up got no answer (hashing at capacity, a database error): given back.
    pub async fn signup_abandoned(&self, address: IpBucket) {
        if self.signups_per_ip > 0 {
            self.give_back(&[Self::signup_key(address)]).await;
        }
    }

    /// Counts one attempt on every key (locally, then in Redis). When any key is over its
    /// limit the attempt is refused, with the longest wait of those keys, and given back to
    /// every key: a refused attempt spends nothing, so a guesser at a spent address does
    /// not use up the username's allowance from elsewhere.
    async fn attempt(&self, keys: &[(String, u32)]) -> Result<(), Duration> {
        let names: Vec<String> = keys.iter().map(|(key, _)| key.clone()).collect();
        let now = Instant::now();
        let mut wait = None;
        for (key, limit) in keys {
            // The entry's lock makes the increment and the comparison one step: each of a
            // burst of racing attempts sees a count of its own, and only `limit` pass.
            let mut entry = self.counts.entry(key.clone()).or_insert((0, now));
            if now.duration_since(entry.1) >= WINDOW {
                *entry = (0, now);
            }
            entry.0 = entry.0.saturating_add(1);
            if entry.0 > *limit {
                wait = wait.max(Some(WINDOW.saturating_sub(now.duration_since(entry.1))));
            }
        }
        if self.counts.len() > SWEEP_ABOVE {
            self.counts.retain(|_, (_, started)| now.duration_since(*started) < WINDOW);
        }
        if let Some(wait) = wait {
            self.give_back_locally(&names);
            return Err(wait.max(Duration::from_secs(1)));
        }
        let Some(redis) = &self.shared else { return Ok(()) };
        let mut pipe = redis::pipe();
        for key in &names {
            let key = format!("{REDIS_PREFIX}{key}");
            pipe.incr(&key, 1).cmd("EXPIRE").arg(&key).arg(WINDOW.as_secs()).arg("NX").ignore().pttl(&key);
        }
        let answers: Vec<(u32, i64)> = match pipe.query_async(&mut redis.clone()).await {
            Ok(answers) => answers,
            Err(err) => {
                tracing::warn!(%err, "login throttle: shared counts unavailable, using this instance's");
                return Ok(());
            }
        };
        let over = keys.iter().zip(answers).filter(|((_, limit), (count, _))| count > limit);
        match over.map(|(_, (_, ttl_ms))| Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0))).max() {
            Some(wait) => {
                self.give_back(&names).await;
                Err(wait.max(Duration::from_secs(1)))
            }
            None => Ok(()),
        }
    }

    async fn give_back(&self, keys: &[String]) {
        self.give_back_locally(keys);
        let mut pipe = redis::pipe();
        for key in keys {
            give_back_in(&mut pipe, key);
        }
        self.run_shared(pipe, "login throttle: attempt not given back").await;
    }

    fn give_back_locally(&self, keys: &[String]) {
        for key in keys {
            if let Some(mut entry) = self.counts.get_mut(key) {
                entry.0 = entry.0.saturating_sub(1);
            }
        }
    }

    async fn run_shared(&self, pipe: redis::Pipeline, failure: &str) {
        let Some(redis) = &self.shared else { return };
        if let Err(err) = pipe.query_async::<()>(&mut redis.clone()).await {
            tracing::warn!(%err, "{failure}");
        }
    }

    /// How many attempts `username` has made in its current window on this instance (tests).
    pub fn local_count(&self, username: &str) -> u32 {
        self.counts.get(&Self::user_key(username)).map_or(0, |entry| entry.0)
    }
}

fn give_back_in(pipe: &mut redis::Pipeline, key: &str) {
    pipe.cmd("EVAL").arg(GIVE_BACK).arg(1).arg(format!("{REDIS_PREFIX}{key}")).ignore();
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;

    use super::*;

    fn at(ip: [u8; 4]) -> IpBucket {
        IpBucket::of(IpAddr::from(ip))
    }

    #[tokio::test]
    async fn a_username_gets_its_limit_of_attempts_and_success_resets_it() {
        let t = LoginThrottle::new(2, 0);
        let ip = at([127, 0, 0, 1]);
        assert!(t.login_attempt("Ann", ip).await.is_ok());
        assert!(t.login_attempt("ann", ip).await.is_ok());
        assert!(t.login_attempt("ANN", ip).await.is_err(), "the third attempt is over a limit of two");
        assert!(t.login_attempt("bob", ip).await.is_ok());
        t.login_succeeded("ann", ip).await;
        assert!(t.login_attempt("ann", ip).await.is_ok());
    }

    #[tokio::test]
    async fn an_address_is_throttled_across_usernames_and_gets_successes_back() {
        let t = LoginThrottle::new(1, 0);
        let ip = at([10, 0, 0, 1]);
        for name in ["a1", "a2", "a3", "a4"] {
            assert!(t.login_attempt(name, ip).await.is_ok());
        }
        assert!(t.login_attempt("fresh", ip).await.is_err());
        assert_eq!(t.local_count("fresh"), 0, "an attempt refused for its address spends nothing of the username's");
        assert!(t.login_attempt("fresh", at([10, 0, 0, 2])).await.is_ok());

        // Successes do not use up an address: a NAT full of people logging in.
        let office = at([10, 0, 0, 3]);
        for name in ["b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"] {
            assert!(t.login_attempt(name, office).await.is_ok(), "{name}");
            t.login_succeeded(name, office).await;
        }
    }

    #[tokio::test]
    async fn concurrent_attempts_are_admitted_up_to_the_limit_exactly() {
        let t = Arc::new(LoginThrottle::new(5, 0));
        let ip = at([192, 0, 2, 1]);
        let tries: Vec<_> = (0..30).map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.login_attempt("target", ip).await.is_ok() })
        }).collect();
        let mut admitted = 0;
        for attempt in tries {
            admitted += usize::from(attempt.await.unwrap());
        }
        assert_eq!(admitted, 5);
    }

    #[tokio::test]
    async fn an_abandoned_attempt_is_given_back() {
        let t = LoginThrottle::new(1, 1);
        let ip = at([192, 0, 2, 9]);
        assert!(t.login_attempt("cy", ip).await.is_ok());
        t.login_abandoned("cy", ip).await;
        assert_eq!(t.local_count("cy"), 0);
        assert!(t.login_attempt("cy", ip).await.is_ok());

        assert!(t.signup_attempt(ip).await.is_ok());
        t.signup_abandoned(ip).await;
        assert!(t.signup_attempt(ip).await.is_ok());
        assert!(t.signup_attempt(ip).await.is_err(), "one sign-up per window");
        assert!(t.login_attempt("dee", ip).await.is_ok(), "sign-ups have a count of their own");
    }

    #[tokio::test]
    async fn sign_ups_are_unlimited_when_their_limit_is_zero() {
        let t = LoginThrottle::new(1, 0);
        for _ in 0..100 {
            assert!(t.signup_attempt(at([192, 0, 2, 5])).await.is_ok());
        }
    }

    #[tokio::test]
    async fn an_ipv6_address_counts_for_its_whole_64() {
        let t = LoginThrottle::new(1, 0);
        for i in 1..=4u16 {
            let ip = IpBucket::of(IpAddr::from([0x2001, 0xdb8, 7, 7, 0, 0, 0, i]));
            assert!(t.login_attempt(&format!("n{i}"), ip).await.is_ok());
        }
        let same_64 = IpBucket::of(IpAddr::from([0x2001, 0xdb8, 7, 7, 0xffff, 1, 2, 3]));
        assert!(t.login_attempt("n5", same_64).await.is_err());
        let next_64 = IpBucket::of(IpAddr::from([0x2001, 0xdb8, 7, 8, 0, 0, 0, 1]));
        assert!(t.login_attempt("n5", next_64).await.is_ok());
    }
}
