//! The per-key rate limit (`RATE_LIMIT_RPM` per API key), kept in the database — one GCRA
//! row per key, so every replica on it enforces one limit — or in this process
//! (governor), per `RATE_LIMIT_STORE`. The HTTP answer to a refusal (429 + Retry-After)
//! is `routes::limits`'.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::DefaultKeyedRateLimiter;

use crate::config::LimitConfig;
use crate::db::Db;
use crate::db::rate_limits::{self, Gcra};

/// The per-key rate limit: `RATE_LIMIT_RPM` requests per minute with a burst of a minute's
/// worth, kept in the database (one limit across every replica on it) or in this process.
pub struct RateLimit {
    rpm: u32,
    store: RateStore,
}

enum RateStore {
    /// This process only (governor): N replicas admit N times the rate.
    Process(DefaultKeyedRateLimiter<String>),
    /// The database's GCRA rows, shared by every replica on it.
    Database(Box<SharedRate>),
}

struct SharedRate {
    db: Db,
    quota: Gcra,
    /// Keys the database refused, until when: their TAT only grows, so nothing of theirs
    /// can pass before then, and a client hammering past its limit costs no query.
    refused_until: Mutex<HashMap<String, i64>>,
    /// The limit while the database cannot be reached: this process's own.
    fallback: DefaultKeyedRateLimiter<String>,
    failures: AtomicU64,
}

/// Refusals remembered beyond this many keys are pruned of those already over.
const REFUSED_KEYS_PRUNE: usize = 10_000;

impl RateLimit {
    /// The limit of `limits`, kept where `RATE_LIMIT_STORE` says for this database.
    pub fn new(limits: &LimitConfig, db: &Db, database_url: &str) -> Self {
        let rpm = limits.rate_limit_rpm.max(1);
        let local = || {
            governor::RateLimiter::keyed(governor::Quota::per_minute(
                NonZeroU32::new(rpm).unwrap_or(NonZeroU32::MIN),
            ))
        };
        let store = if limits.rate_limit_in_database(database_url) {
            RateStore::Database(Box::new(SharedRate {
                db: db.clone(),
                quota: Gcra::per_minute(rpm),
                refused_until: Mutex::new(HashMap::new()),
                fallback: local(),
                failures: AtomicU64::new(0),
            }))
        } else {
            RateStore::Process(local())
        };
        Self { rpm, store }
    }

    /// Requests per minute per key.
    pub fn rpm(&self) -> u32 {
        self.rpm
    }

    /// Whether the limit is one across every replica on the database.
    pub fn is_global(&self) -> bool {
        matches!(self.store, RateStore::Database(_))
    }

    /// Takes one request of `key`'s quota; `Err` holds the seconds until one may pass.
    pub async fn check(&self, key: &str) -> Result<(), u64> {
        match &self.store {
            RateStore::Process(limiter) => check_local(limiter, key),
            RateStore::Database(shared) => shared.check(key).await,
        }
    }
}

impl SharedRate {
    async fn check(&self, key: &str) -> Result<(), u64> {
        let now = unix_nanos();
        if let Some(until) = self.refused_until(key)
            && until > now
        {
            return Err(secs_until(until - now));
        }
        match rate_limits::take(&self.db, key, self.quota, now).await {
            Ok(None) => Ok(()),
            Ok(Some(until)) => {
                let mut refused = self.refused_until.lock().unwrap_or_else(|p| p.into_inner());
                if refused.len() >= REFUSED_KEYS_PRUNE {
                    refused.retain(|_, t| *t > now);
                }
                refused.insert(key.to_string(), until);
                Err(secs_until(until - now))
            }
            Err(e) => {
                let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(
                        error = %e,
                        failures_total = n,
                        "the shared rate limit could not be read; this replica's own limit applies meanwhile"
                    );
                }
                check_local(&self.fallback, key)
            }
        }
    }

    fn refused_until(&self, key: &str) -> Option<i64> {
        self.refused_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }
}

fn check_local(limiter: &DefaultKeyedRateLimiter<String>, key: &str) -> Result<(), u64> {
    // `check_key` takes a reference to the key type; the `String` is built only for it.
    limiter.check_key(&key.to_string()).map_err(|not_until| {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
    })
}

/// Whole seconds (rounded up) in `ns` nanoseconds.
fn secs_until(ns: i64) -> u64 {
    u64::try_from(ns).unwrap_or(0).div_ceil(1_000_000_000)
}

/// Now, in nanoseconds since the Unix epoch (the shared limit's clock).
fn unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
