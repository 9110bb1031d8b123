//! The per-key rate limit shared by every process on the database: the generic cell rate
//! algorithm (GCRA) with one row per API key holding its theoretical arrival time (TAT),
//! advanced by one conditional upsert per admitted request.
//!
//! A request at `now` is admitted when `TAT - now <= tolerance`; admitting it moves the TAT
//! to `max(TAT, now) + interval`. With `interval = 60 s / rpm` and `tolerance = (rpm - 1) ×
//! interval` that is a bucket of a minute's requests refilled one at a time — the same
//! quota the in-process limiter (governor) keeps. Times are nanoseconds since the Unix
//! epoch on the callers' clocks, so replicas should keep their clocks in sync (NTP): a
//! replica whose clock is ahead by `d` finds the bucket `d / interval` requests fuller.

use sqlx::Row;

use super::Db;

/// The quota of one key, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Time between two requests at the sustained rate.
    pub interval_ns: i64,
    /// How far ahead of `now` the TAT may be for a request to pass (the burst less one).
    pub tolerance_ns: i64,
}

impl Gcra {
    /// `rpm` requests per minute with a burst of `rpm` (a minute's worth).
    pub fn per_minute(rpm: u32) -> Self {
        let rpm = i64::from(rpm.max(1));
        let interval_ns = (60_000_000_000 / rpm).max(1);
        Self {
            interval_ns,
            tolerance_ns: interval_ns * (rpm - 1),
        }
    }
}

/// Takes one request of `key`'s quota at `now_ns`. `Ok(None)`: admitted; `Ok(Some(at))`:
/// refused, and no request of this key can pass before `at` (nanoseconds since the epoch).
pub async fn take(
    db: &Db,
    key: &str,
    quota: Gcra,
    now_ns: i64,
) -> Result<Option<i64>, sqlx::Error> {
    // The guard reads the row's TAT before the update; when it fails no row is written or
    // returned. PostgreSQL re-checks the guard on the locked row, so concurrent requests
    // of one key from any replica are admitted one after another, never both on one TAT.
    let admitted = sqlx::query(
        "INSERT INTO rate_limits (key_id, tat_ns) VALUES ($1, $2 + $3) \
         ON CONFLICT (key_id) DO UPDATE SET tat_ns = \
         (CASE WHEN rate_limits.tat_ns > $2 THEN rate_limits.tat_ns ELSE $2 END) + $3 \
         WHERE rate_limits.tat_ns - $2 <= $4",
    )
    .bind(key)
    .bind(now_ns)
    .bind(quota.interval_ns)
    .bind(quota.tolerance_ns)
    .execute(db.pool())
    .await?
    .rows_affected();
    if admitted == 1 {
        return Ok(None);
    }
    let tat: i64 = sqlx::query("SELECT tat_ns FROM rate_limits WHERE key_id = $1")
        .bind(key)
        .fetch_one(db.pool())
        .await?
        .try_get("tat_ns")?;
    Ok(Some(tat - quota.tolerance_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_quota_refills_one_request_per_interval() {
        let q = Gcra::per_minute(60);
        assert_eq!(q.interval_ns, 1_000_000_000);
        assert_eq!(q.tolerance_ns, 59_000_000_000);
        // A rate too high for nanoseconds still passes (one per nanosecond).
        assert_eq!(Gcra::per_minute(u32::MAX).interval_ns, 13);
        assert_eq!(Gcra::per_minute(0), Gcra::per_minute(1));
    }

    #[tokio::test]
    async fn admits_the_burst_then_one_per_interval_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let a = Db::connect(&url).await.unwrap();
        a.migrate().await.unwrap();
        // A second pool on the same file: another process sharing the database.
        let b = Db::connect(&url).await.unwrap();
        let q = Gcra::per_minute(3);
        let t0 = 1_700_000_000_000_000_000;
        assert_eq!(take(&a, "k", q, t0).await.unwrap(), None);
        assert_eq!(take(&b, "k", q, t0).await.unwrap(), None);
        assert_eq!(take(&a, "k", q, t0).await.unwrap(), None);
        // The burst of three is spent: the next may pass one interval later.
        let next = take(&b, "k", q, t0).await.unwrap().expect("refused");
        assert_eq!(next, t0 + q.interval_ns);
        assert_eq!(take(&a, "k", q, next - 1).await.unwrap(), Some(next));
        assert_eq!(take(&a, "k", q, next).await.unwrap(), None);
        assert!(take(&b, "k", q, next).await.unwrap().is_some());
        // Keys are separate; a refusal writes nothing.
        assert_eq!(take(&b, "other", q, t0).await.unwrap(), None);
        assert_eq!(
            take(&a, "k", q, next + q.interval_ns).await.unwrap(),
            None,
            "the refused attempts did not use the quota"
        );
    }
}
