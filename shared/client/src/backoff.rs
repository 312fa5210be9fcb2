//! When to try again after a connection is lost: exponential backoff with full jitter (a
//! random wait between zero and the current ceiling, which doubles per failed attempt), so a
//! fleet of clients dropped at once by a restart does not come back in lockstep.

use std::time::Duration;

use confab_shared::rpc::close;

/// 1012 (Service Restart, RFC 6455 registry): not sent by Confab today, but by proxies in front of it.
const SERVICE_RESTART: u16 = 1012;

/// Close codes meaning "this server is going away; another (or the same, restarted) one is coming".
pub const RESTART_CLOSE_CODES: [u16; 2] = [close::GOING_AWAY, SERVICE_RESTART];

/// The reconnection schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The ceiling of the first wait (default 500 ms); it doubles per failed attempt.
    pub initial: Duration,
    /// The largest ceiling (default 30 s).
    pub max: Duration,
    /// After a "server restarting" close (1001, 1012) the first attempt comes within this (default 1 s).
    pub restart_jitter: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_millis(500), max: Duration::from_secs(30), restart_jitter: Duration::from_secs(1) }
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
        if close_code.is_some_and(|code| RESTART_CLOSE_CODES.contains(&code)) {
            // A planned restart: a prompt retry will likely find the new process, and the
            // backoff starts over if it does not.
            self.failed = 0;
            return self.schedule.restart_jitter.mul_f64(random);
        }
        // Past the cap the exponent no longer matters; bounding it keeps the shift defined.
        let ceiling = self.schedule.initial.saturating_mul(1 << self.failed.min(20)).min(self.schedule.max);
        self.failed = self.failed.saturating_add(1);
        ceiling.mul_f64(random)
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
    fn a_restart_close_retries_within_the_jitter_and_starts_over() {
        let mut attempts = Attempts::new(schedule());
        for _ in 0..5 {
            attempts.next(None, 0.5);
        }
        assert_eq!(millis(attempts.next(Some(1001), 0.5)), 150);
        assert_eq!(millis(attempts.next(None, 0.5)), 50, "the next failure waits as if it were the first");
        assert_eq!(millis(attempts.next(Some(1012), 0.5)), 150);
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
