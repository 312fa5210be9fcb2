//! When to try again after a connection is lost: exponential backoff with full jitter (a
//! random wait between zero and the current ceiling, which doubles per failed attempt), so a
//! fleet of clients dropped at once by a restart does not come back in lockstep.

use std::time::Duration;

use confab_shared::rpc::reconnect::{self, Policy};

/// Close codes meaning "this server is going away; another (or the same, restarted) one is
/// coming": 1001 and 1012 (Service Restart, sent by proxies in front of Confab).
pub const RESTART_CLOSE_CODES: [u16; 2] = reconnect::SPREAD_CLOSE_CODES;

/// The reconnection schedule: the numbers of Confab's policy
/// ([`confab_shared::rpc::reconnect`]), which [`Backoff::default`] takes as they are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The ceiling of the first wait (default 500 ms); it doubles per failed attempt.
    pub initial: Duration,
    /// The largest ceiling (default 30 s).
    pub max: Duration,
    /// After a "server restarting" close (1001, 1012) the first attempt comes within this
    /// (default 5 s, so the clients of a restarted instance come back spread out).
    pub restart_jitter: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        let millis = |ms: f64| Duration::from_millis(ms as u64);
        Self {
            initial: millis(reconnect::BASE_MS),
            max: millis(reconnect::CAP_MS),
            restart_jitter: millis(reconnect::GOING_AWAY_SPREAD_MS),
        }
    }
}

impl Backoff {
    fn policy(&self) -> Policy {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Policy { base_ms: ms(self.initial), cap_ms: ms(self.max), going_away_spread_ms: ms(self.restart_jitter) }
    }
}

/// A backoff in progress: how many attempts failed since the last success.
#[derive(Debug)]
pub(crate) struct Attempts {
    schedule: Backoff,
    failed: u32,
}

impl Attempts {
    pub(crate) fn new(schedule: Backoff) -> Self {
        Self { schedule, failed: 0 }
    }

    /// The wait before the next attempt; `close_code` is the close that lost the connection,
    /// if one did. `random` is uniform in [0, 1) (tests pass fixed values).
    pub(crate) fn next(&mut self, close_code: Option<u16>, random: f64) -> Duration {
        let wait = self.schedule.policy().delay_ms(self.failed, close_code.unwrap_or(0), random);
        self.failed = self.failed.saturating_add(1);
        Duration::from_secs_f64(wait / 1000.0)
    }

    /// A connection succeeded: the next loss starts from the first ceiling again.
    pub(crate) fn reset(&mut self) {
        self.failed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEARLY_ONE: f64 = 0.999_999;

    fn schedule() -> Backoff {
        Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1), restart_jitter: Duration::from_millis(300) }
    }

    fn millis(d: Duration) -> u128 {
        (d.as_secs_f64() * 1000.0).round() as u128
    }

    #[test]
    fn the_ceiling_doubles_per_failure_up_to_the_cap() {
        let mut attempts = Attempts::new(schedule());
        let ceilings: Vec<u128> = (0..6).map(|_| millis(attempts.next(None, NEARLY_ONE))).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn full_jitter_waits_anywhere_between_zero_and_the_ceiling() {
        let mut attempts = Attempts::new(schedule());
        let waits: Vec<u128> = [0.0, 0.25, 0.5].iter().map(|r| millis(attempts.next(None, *r))).collect();
        assert_eq!(waits, [0, 50, 200]);
    }

    #[test]
    fn the_first_attempt_after_a_restart_close_comes_within_the_spread_then_backs_off_as_usual() {
        let mut attempts = Attempts::new(schedule());
        for code in [1001, 1012] {
            attempts.reset();
            assert_eq!(millis(attempts.next(Some(code), 0.5)), 150);
            assert_eq!(millis(attempts.next(None, 0.5)), 100, "the second attempt is the policy's attempt 1");
        }
    }

    #[test]
    fn the_default_schedule_is_the_shared_policy() {
        let mut attempts = Attempts::new(Backoff::default());
        for (attempt, code, random) in [(0, 1001, 0.7), (1, 0, 0.7), (2, 0, 0.3), (3, 0, 0.9)] {
            let expected = reconnect::delay_ms(attempt, code, random);
            let got = attempts.next((attempt == 0).then_some(code), random);
            assert_eq!(millis(got), expected.round() as u128, "attempt {attempt}");
        }
        assert_eq!(RESTART_CLOSE_CODES, [1001, 1012]);
    }

    #[test]
    fn other_closes_back_off_like_failures_and_reset_starts_over() {
        let mut attempts = Attempts::new(schedule());
        attempts.next(Some(1006), NEARLY_ONE);
        assert_eq!(millis(attempts.next(Some(1013), NEARLY_ONE)), 200);
        attempts.reset();
        assert_eq!(millis(attempts.next(None, NEARLY_ONE)), 100);
    }

    #[test]
    fn a_long_outage_never_overflows() {
        let mut attempts = Attempts::new(schedule());
        for _ in 0..10_000 {
            attempts.next(None, NEARLY_ONE);
        }
        assert_eq!(millis(attempts.next(None, NEARLY_ONE)), 1000);
    }
}
