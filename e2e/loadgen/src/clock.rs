//! One monotonic clock for the whole process.
//!
//! Every sender and receiver lives in this process, so a send time taken from this clock
//! and carried in the message text is directly comparable with the receive time: no
//! wall-clock skew, no NTP steps.

use std::sync::LazyLock;
use std::time::Instant;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds since the process's first call to the clock.
pub fn now_ns() -> u64 {
    EPOCH.elapsed().as_nanos() as u64
}

/// Starts the clock (call early, so the first message does not pay for it).
pub fn init() {
    LazyLock::force(&EPOCH);
}
