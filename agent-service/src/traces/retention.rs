//! Trace retention: a background task that deletes traces (and their spans) older than
//! `TRACE_RETENTION_DAYS`, at start and then every [`INTERVAL`], in batches of
//! [`BATCH`] traces so it never holds the database's write lock for long. It walks the
//! tenants and uses the `(tenant, started_at)` index, so inserts pay for no extra index.

use std::time::Duration;

use std::sync::Arc;

use super::repository;
use crate::clock::Clock;
use crate::db::Db;
use crate::shutdown::Shutdown;

pub const INTERVAL: Duration = Duration::from_secs(600);
pub const BATCH: i64 = 1000;
/// Pause between two batches, so other writers get the lock.
const PAUSE: Duration = Duration::from_millis(20);
const DAY_MS: i64 = 86_400_000;

/// The retention task of a serving process: keeps `retention_days` days of traces until
/// `stop`.
pub async fn run(db: Db, clock: Arc<dyn Clock>, retention_days: u64, stop: Shutdown) {
    let days = i64::try_from(retention_days).unwrap_or(i64::MAX / DAY_MS);
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.wait() => return,
        }
        let cutoff = clock.now().timestamp_millis() - days.saturating_mul(DAY_MS);
        let purge = purge_older_than(&db, cutoff);
        tokio::select! {
            r = purge => match r {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, retention_days = days, "old traces deleted"),
                Err(e) => tracing::warn!(error = %e, "deleting old traces failed; will retry"),
            },
            () = stop.wait() => return,
        }
    }
}

/// Deletes every trace started before `cutoff_ms`, tenant by tenant and batch by batch;
/// returns how many.
pub async fn purge_older_than(db: &Db, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    for tenant in repository::tenants(db).await? {
        loop {
            let n = repository::delete_older_than(db, &tenant, cutoff_ms, BATCH).await?;
            total += n;
            if n < BATCH as u64 {
                break;
            }
            tokio::time::sleep(PAUSE).await;
        }
    }
    Ok(total)
}
