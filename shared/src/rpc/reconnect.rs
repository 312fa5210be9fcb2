//! When a client reconnects: exponential backoff with full jitter, and a prompt but spread
//! out first retry when the server says it is going away.
//!
//! A restart closes every socket of an instance at once; if each client waited the same
//! delay, they would all come back in the same few milliseconds. Drawing each delay
//! uniformly from `[0, ceiling)` ("full jitter") spreads N clients evenly over the window,
//! so the server sees a steady rate instead of a wall. The policy is defined here once; the
//! SPA, the Rust client and the load generator call [`delay_ms`], and the TypeScript
//! client follows the same numbers, exported to it as `Reconnect` in `@confab/types`.

use super::close::GOING_AWAY;

/// RFC 6455 "Service Restart", which proxies and load balancers send; Confab itself closes
/// with 1001 when it stops.
pub const SERVICE_RESTART: u16 = 1012;
/// The first backoff ceiling; it doubles per failed attempt.
pub const BASE_MS: f64 = 500.0;
/// The largest backoff ceiling.
pub const CAP_MS: f64 = 30_000.0;
/// After 1001 or 1012 the first retry is drawn from `[0, GOING_AWAY_SPREAD_MS)`: a restart
/// takes a few seconds anyway, and 10 000 clients spread over 5 s arrive at 2 000 per second.
pub const GOING_AWAY_SPREAD_MS: f64 = 5_000.0;

/// The rule as the protocol reference states it.
pub const RULE: &str = "Reconnecting. After a connection ends, wait a delay drawn uniformly from [0, c) before the \
    next attempt (full jitter), where c is 500 ms doubled per failed attempt, at most 30 s; a connection that lived \
    long enough starts over at 500 ms. After 1001 (the server is stopping) or 1012 (service restart), the first \
    attempt waits a delay drawn from [0, 5 s), so that the clients of a restarted instance come back spread out \
    rather than all at once. A 503 from the upgrade (the server is at its limit of handshakes in progress) counts \
    as a failed attempt; its `Retry-After` is a lower bound.";

/// Close codes after which the first attempt is spread over [`GOING_AWAY_SPREAD_MS`].
pub const SPREAD_CLOSE_CODES: [u16; 2] = [GOING_AWAY, SERVICE_RESTART];

/// The policy's numbers. [`Policy::DEFAULT`] is Confab's, which every client follows (the
/// SPA, the Rust and TypeScript clients, the load generator); a client may let its user
/// scale them (tests shorten them), never change the rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// The first backoff ceiling (ms); it doubles per failed attempt.
    pub base_ms: f64,
    /// The largest backoff ceiling (ms).
    pub cap_ms: f64,
    /// The window (ms) of the first attempt after a [`SPREAD_CLOSE_CODES`] close.
    pub going_away_spread_ms: f64,
}

impl Policy {
    pub const DEFAULT: Self = Self { base_ms: BASE_MS, cap_ms: CAP_MS, going_away_spread_ms: GOING_AWAY_SPREAD_MS };

    /// The delay (ms) before reconnect attempt `attempt` (0 = the first after a drop), given
    /// the close code that ended the last connection and `unit`, a uniform random number in
    /// `[0, 1)`.
    pub fn delay_ms(&self, attempt: u32, code: u16, unit: f64) -> f64 {
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.5 };
        if attempt == 0 && SPREAD_CLOSE_CODES.contains(&code) {
            return unit * self.going_away_spread_ms;
        }
        let ceiling = (self.base_ms * 2f64.powi(attempt.min(16) as i32)).min(self.cap_ms);
        unit * ceiling
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// [`Policy::delay_ms`] of [`Policy::DEFAULT`].
pub fn delay_ms(attempt: u32, code: u16, unit: f64) -> f64 {
    Policy::DEFAULT.delay_ms(attempt, code, unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_span_the_whole_window_and_double_up_to_the_cap() {
        assert_eq!(delay_ms(0, 1006, 0.0), 0.0, "full jitter starts at zero");
        assert_eq!(delay_ms(0, 1006, 1.0), BASE_MS);
        assert_eq!(delay_ms(3, 1006, 1.0), BASE_MS * 8.0);
        assert_eq!(delay_ms(30, 1006, 1.0), CAP_MS);
        assert_eq!(delay_ms(3, 1006, 0.5), BASE_MS * 4.0);
    }

    #[test]
    fn going_away_retries_within_the_spread_then_backs_off_as_usual() {
        for code in [GOING_AWAY, SERVICE_RESTART] {
            assert_eq!(delay_ms(0, code, 0.999), 0.999 * GOING_AWAY_SPREAD_MS);
            assert_eq!(delay_ms(1, code, 1.0), BASE_MS * 2.0);
        }
    }

    #[test]
    fn many_clients_are_spread_evenly_over_the_window() {
        // 10 000 clients closed by one restart, with evenly spaced random draws: every
        // 500 ms slice of the 5 s window gets a tenth of them.
        let mut slices = [0usize; 10];
        for i in 0..10_000 {
            let delay = delay_ms(0, GOING_AWAY, f64::from(i) / 10_000.0);
            slices[(delay / 500.0) as usize] += 1;
        }
        assert!(slices.iter().all(|&n| n == 1000), "{slices:?}");
    }

    #[test]
    fn a_scaled_policy_keeps_the_rule() {
        let quick = Policy { base_ms: 100.0, cap_ms: 1_000.0, going_away_spread_ms: 300.0 };
        assert_eq!(quick.delay_ms(0, SERVICE_RESTART, 0.5), 150.0);
        assert_eq!(quick.delay_ms(1, GOING_AWAY, 0.5), 100.0, "only the first attempt is spread");
        assert_eq!(quick.delay_ms(4, 1006, 1.0), 1_000.0);
        assert_eq!(Policy::default(), Policy::DEFAULT);
    }

    #[test]
    fn out_of_range_randomness_stays_within_the_window() {
        assert_eq!(delay_ms(0, 1006, 7.0), BASE_MS);
        assert_eq!(delay_ms(0, 1006, -1.0), 0.0);
        assert_eq!(delay_ms(0, 1006, f64::NAN), BASE_MS / 2.0);
    }
}
