//! What a connection's calls cost, and the budgets that pay for them.
//!
//! Two token buckets are charged before a call runs; a call either bucket cannot pay for is
//! answered -32029 with `retry_after_ms` and does nothing:
//!
//! - **Calls**, per connection (`CONFAB_RATE_PER_SEC`, bursts of twice that). A call costs
//!   one, whatever it is (a frame that is not JSON, a bad envelope or bad params included),
//!   and a `sync` one more per [`ROOMS_PER_CALL`] rooms it names: reading 5 000 cursors is
//!   not the price of an `echo`.
//! - **Message bytes**, per user across all of their connections on this instance
//!   (`CONFAB_WRITE_BYTES_PER_SEC`, bursts of [`WRITE_BURST`] times that): the text of
//!   `room.send`, `dm.send` and `message.edit`, counted as the fan-out carries it (JSON-escaped,
//!   so 4 000 control characters are 24 000 bytes, not 4 000). A person typing never comes
//!   near it; a script pasting the largest messages is slowed to a few per second however
//!   many sockets it opens, and the people it sends them to keep reading their rooms.
//!
//! A cost past a bucket's burst is charged as the burst, so any one call can always run once
//! the bucket is full.

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use confab_shared::rpc::{Request, SendParams, json_len};
use dashmap::DashMap;

/// A `sync` costs one call more for every this many rooms it names.
pub const ROOMS_PER_CALL: usize = 100;
/// The message-byte bucket holds this many seconds of its rate.
pub const WRITE_BURST: u32 = 4;

/// A token bucket: `rate` tokens per second on average, bursts up to `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self { rate: f64::from(rate_per_sec.max(1)), burst, tokens: burst, last: Instant::now() }
    }

    /// Takes `cost` tokens (at most the burst), or says how many milliseconds until they
    /// are there.
    pub fn take(&mut self, cost: f64) -> Result<(), u64> {
        let cost = cost.min(self.burst);
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(())
        } else {
            Err((((cost - self.tokens) / self.rate) * 1000.0).ceil() as u64)
        }
    }
}

/// The calls a request counts as on the connection's bucket.
pub fn call_cost(request: &Request) -> f64 {
    match request {
        Request::Sync(params) => 1.0 + (params.rooms.len() / ROOMS_PER_CALL) as f64,
        _ => 1.0,
    }
}

/// The message bytes a request writes: its text as JSON carries it; 0 for what writes none.
pub fn text_bytes(request: &Request) -> usize {
    match request {
        Request::RoomSend(params) => json_len(&params.text),
        Request::DmSend(params) => json_len(&params.text),
        Request::MessageEdit(params) => json_len(&params.text),
        _ => 0,
    }
}

/// The message-byte buckets of the users with a connection open on this instance.
pub struct WriteBudgets {
    bytes_per_sec: u32,
    users: Arc<DashMap<i64, Weak<Mutex<TokenBucket>>>>,
}

impl WriteBudgets {
    pub fn new(bytes_per_sec: u32) -> Self {
        Self { bytes_per_sec, users: Arc::default() }
    }

    /// The user's bucket, shared with their other connections here (a new one, full, when
    /// they have none open).
    pub fn for_user(&self, user_id: i64) -> WriteBudget {
        let mut entry = self.users.entry(user_id).or_default();
        let bucket = match entry.upgrade() {
            Some(bucket) => bucket,
            None => {
                let burst = self.bytes_per_sec.saturating_mul(WRITE_BURST);
                let bucket = Arc::new(Mutex::new(TokenBucket::new(self.bytes_per_sec, burst)));
                *entry = Arc::downgrade(&bucket);
                bucket
            }
        };
        WriteBudget { user_id, bucket: Some(bucket), users: self.users.clone() }
    }

    /// Users with a bucket (with a connection open).
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// One connection's hold on its user's message-byte bucket; the last one dropped removes it.
pub struct WriteBudget {
    user_id: i64,
    bucket: Option<Arc<Mutex<TokenBucket>>>,
    users: Arc<DashMap<i64, Weak<Mutex<TokenBucket>>>>,
}

impl WriteBudget {
    /// Takes `bytes` from the user's bucket, or says how many milliseconds until they are there.
    pub fn take(&self, bytes: usize) -> Result<(), u64> {
        match &self.bucket {
            // A poisoned lock only means another connection panicked mid-charge; the count is
            // still a number.
            Some(bucket) => bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take(bytes as f64),
            None => Ok(()),
        }
    }
}

impl Drop for WriteBudget {
    fn drop(&mut self) {
        drop(self.bucket.take());
        self.users.remove_if(&self.user_id, |_, bucket| bucket.strong_count() == 0);
    }
}

/// What one connection's calls are charged to.
pub struct CallLimits {
    calls: TokenBucket,
    /// `None` for an anonymous connection, which writes no messages.
    writes: Option<WriteBudget>,
}

impl CallLimits {
    pub fn new(calls_per_sec: u32, writes: Option<WriteBudget>) -> Self {
        Self { calls: TokenBucket::new(calls_per_sec, calls_per_sec.saturating_mul(2)), writes }
    }

    /// Charges a call (`None`: one that did not decode) or says how long to wait.
    pub fn charge(&mut self, request: Option<&Request>) -> Result<(), u64> {
        self.pay(request.map_or(1.0, call_cost), request.map_or(0, text_bytes))
    }

    /// Charges a `room.send` (the pipelined path, which has its params only).
    pub fn charge_send(&mut self, params: &SendParams) -> Result<(), u64> {
        self.pay(1.0, json_len(&params.text))
    }

    /// Message bytes are charged only once the call itself is paid for.
    fn pay(&mut self, calls: f64, bytes: usize) -> Result<(), u64> {
        self.calls.take(calls)?;
        match (bytes, &self.writes) {
            (0, _) | (_, None) => Ok(()),
            (bytes, Some(writes)) => writes.take(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use confab_shared::rpc::{DmSendParams, SyncParams};

    use super::*;

    #[test]
    fn a_burst_is_allowed_then_calls_are_refused_with_a_wait() {
        let mut bucket = TokenBucket::new(10, 3);
        assert!(bucket.take(1.0).is_ok());
        assert!(bucket.take(1.0).is_ok());
        assert!(bucket.take(1.0).is_ok());
        let wait = bucket.take(1.0).unwrap_err();
        assert!(wait > 0 && wait <= 100, "wait {wait} ms");
    }

    #[test]
    fn a_cost_past_the_burst_runs_on_a_full_bucket_and_empties_it() {
        let mut bucket = TokenBucket::new(10, 20);
        assert!(bucket.take(51.0).is_ok());
        assert!(bucket.take(1.0).is_err());
    }

    #[test]
    fn a_sync_costs_one_call_more_per_hundred_rooms() {
        let sync = |rooms: usize| Request::Sync(SyncParams { rooms: (0..rooms).map(|k| (format!("r{k}"), 0)).collect::<BTreeMap<_, _>>(), dm_after: None });
        assert_eq!(call_cost(&sync(0)), 1.0);
        assert_eq!(call_cost(&sync(99)), 1.0);
        assert_eq!(call_cost(&sync(100)), 2.0);
        assert_eq!(call_cost(&sync(5000)), 51.0);
    }

    #[test]
    fn text_is_counted_as_json_carries_it() {
        let dm = |text: &str| Request::DmSend(DmSendParams { to: "bob".into(), text: text.into(), nonce: None });
        assert_eq!(text_bytes(&dm("hi")), 4);
        // A control character is six bytes escaped.
        assert_eq!(text_bytes(&dm(&"\u{1}".repeat(4000))), 24_002);
    }

    #[test]
    fn connections_of_one_user_share_a_bucket_and_the_last_one_gone_removes_it() {
        let budgets = WriteBudgets::new(1000);
        let (a, b) = (budgets.for_user(7), budgets.for_user(7));
        assert!(a.take(3000).is_ok());
        assert!(b.take(1000).is_ok());
        assert!(a.take(1000).is_err(), "the 4 000-byte burst is shared");
        assert!(budgets.for_user(8).take(4000).is_ok(), "another user has a bucket of their own");
        assert_eq!(budgets.len(), 1, "user 8's bucket went with its only holder");
        drop(a);
        assert_eq!(budgets.len(), 1, "b still holds user 7's");
        drop(b);
        assert!(budgets.is_empty());
    }
}
