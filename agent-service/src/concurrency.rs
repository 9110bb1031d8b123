//! The concurrency cap of this process (load shedding: refuse with 503 + Retry-After
//! instead of queueing), each API key's share of it (429), and the one WARN per interval
//! that reports what was shed. `routes::admission` applies it to `/v1/*`.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, ErrorCode};

/// How often at most the admission control logs that it shed load.
const SHED_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The concurrency cap of this process and how much of it each API key holds.
pub struct Admission {
    slots: Arc<Semaphore>,
    per_key_cap: u32,
    /// Slots held per key, by a hash of the presented bearer token (requests without one
    /// share the key `0`). A key is only the token's hash here: nothing is authenticated
    /// yet, and an unknown token is refused (401) as soon as the handler runs.
    held: Mutex<HashMap<u64, u32>>,
    hasher: RandomState,
    shed: ShedLog,
}

impl Admission {
    /// `max_concurrency` slots; one key may hold `key_percent` of them (at least one).
    pub fn new(max_concurrency: u32, key_percent: u32) -> Self {
        let per_key_cap = (u64::from(max_concurrency) * u64::from(key_percent)).div_ceil(100);
        Self {
            slots: Arc::new(Semaphore::new(max_concurrency as usize)),
            per_key_cap: per_key_cap.clamp(1, u64::from(u32::MAX)) as u32,
            held: Mutex::new(HashMap::new()),
            hasher: RandomState::new(),
            shed: ShedLog::new(),
        }
    }

    /// How many slots one key may hold.
    pub fn per_key_cap(&self) -> u32 {
        self.per_key_cap
    }

    /// The key a request's slots are counted under: its `Authorization` header value.
    pub fn key_of(&self, authorization: Option<&[u8]>) -> u64 {
        match authorization {
            // Never 0, so it cannot collide with the requests that present no key.
            Some(v) => self.hasher.hash_one(v) | 1,
            None => 0,
        }
    }

    /// A slot for `key`, or the error that refuses the request.
    pub fn admit(self: &Arc<Self>, key: u64) -> Result<Slot, Error> {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.shed.record();
            return Err(Error::new(
                ErrorCode::Overloaded,
                "the service is at its concurrency limit; retry shortly",
            )
            .retry_after(1));
        };
        {
            let mut held = self.held.lock().expect("admission lock");
            let n = held.entry(key).or_insert(0);
            if *n >= self.per_key_cap {
                if *n == 0 {
                    held.remove(&key);
                }
                return Err(Error::new(
                    ErrorCode::ConcurrencyLimited,
                    format!(
                        "this API key already has {} requests in progress, its share of the \
                         concurrency limit; retry when one has finished",
                        self.per_key_cap
                    ),
                )
                .retry_after(1));
            }
            *n += 1;
        }
        Ok(Slot {
            admission: self.clone(),
            key,
            _permit: permit,
        })
    }

    fn release(&self, key: u64) {
        let mut held = self.held.lock().expect("admission lock");
        if let Some(n) = held.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&key);
            }
        }
    }

    /// Counts a request refused because the process is shutting down.
    pub fn record_refused(&self) {
        self.shed.record();
    }
}

/// One admitted request's slot: its global permit and its key's count, both given back
/// when dropped.
pub struct Slot {
    admission: Arc<Admission>,
    key: u64,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.release(self.key);
    }
}

/// Counts refused requests and logs one WARN with the count at most once per interval.
/// The first refusal after a quiet interval is logged at once; refusals after the last
/// line are reported with the next one.
struct ShedLog {
    start: Instant,
    /// Refusals not yet reported.
    pending: AtomicU64,
    /// Milliseconds since `start` before which no line is written.
    next_line_ms: AtomicU64,
}

impl ShedLog {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            pending: AtomicU64::new(0),
            next_line_ms: AtomicU64::new(0),
        }
    }

    fn record(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let now = self.start.elapsed().as_millis() as u64;
        let due = self.next_line_ms.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        let next = now + SHED_LOG_INTERVAL.as_millis() as u64;
        if self
            .next_line_ms
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            let refused = self.pending.swap(0, Ordering::Relaxed);
            tracing::warn!(
                refused,
                interval_secs = SHED_LOG_INTERVAL.as_secs(),
                "shedding load: requests refused with 503 (overloaded or shutting down) since the last report; at most one such line per interval"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_share() {
        let admission = Arc::new(Admission::new(4, 50));
        assert_eq!(admission.per_key_cap(), 2);
        let a1 = admission.admit(7).expect("first");
        let _a2 = admission.admit(7).expect("second");
        let refused = admission.admit(7).err().expect("third is over the share");
        assert_eq!(refused.code, ErrorCode::ConcurrencyLimited);
        let _b1 = admission.admit(9).expect("another key");
        let _b2 = admission.admit(9).expect("another key's second");
        let full = admission.admit(11).err().expect("the cap is full");
        assert_eq!(full.code, ErrorCode::Overloaded);
        drop(a1);
        let _a3 = admission.admit(7).expect("a slot given back is free again");
        assert_eq!(admission.held.lock().unwrap().len(), 2);
    }

    #[test]
    fn the_share_rounds_up_to_at_least_one() {
        assert_eq!(Admission::new(1, 1).per_key_cap(), 1);
        assert_eq!(Admission::new(512, 50).per_key_cap(), 256);
        assert_eq!(Admission::new(3, 50).per_key_cap(), 2);
        assert_eq!(Admission::new(10, 100).per_key_cap(), 10);
    }

    #[test]
    fn the_shed_log_reports_counts_at_most_once_per_interval() {
        let log = ShedLog::new();
        log.record();
        assert_eq!(
            log.pending.load(Ordering::Relaxed),
            0,
            "the first is logged"
        );
        for _ in 0..1000 {
            log.record();
        }
        assert_eq!(
            log.pending.load(Ordering::Relaxed),
            1000,
            "the rest wait for the next interval"
        );
        log.next_line_ms.store(0, Ordering::Relaxed);
        log.record();
        assert_eq!(log.pending.load(Ordering::Relaxed), 0, "reported together");
    }
}
