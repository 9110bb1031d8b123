//! `Idempotency-Key` storage: the first response to a key is kept and replayed for the
//! same request; the same key with a different request is refused.

use sqlx::Row;

use super::Db;
use crate::domain::TenantId;

pub enum Claim {
    /// First use: the caller runs the request and then calls [`complete`].
    Fresh,
    /// Same key, same request, finished: replay this.
    Replay { status: u16, body: String },
    /// Same key, same request, still running elsewhere.
    InProgress,
    /// Same key, different request.
    Mismatch,
}

/// `stale_before_ms`: an unfinished claim created before this instant was left by a
/// process that died mid-request; the same request may take it over.
pub async fn claim(
    db: &Db,
    tenant: &TenantId,
    key: &str,
    request_hash: &str,
    now_ms: i64,
    stale_before_ms: i64,
) -> Result<Claim, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (tenant, key, request_hash, status_code, response, created_at) \
         VALUES ($1, $2, $3, NULL, NULL, $4) ON CONFLICT (tenant, key) DO NOTHING",
    )
    .bind(tenant.as_str())
    .bind(key)
    .bind(request_hash)
    .bind(now_ms)
    .execute(db.pool())
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let row = sqlx::query("SELECT request_hash, status_code, response FROM idempotency_keys WHERE tenant = $1 AND key = $2")
        .bind(tenant.as_str())
        .bind(key)
        .fetch_one(db.pool())
        .await?;
    let stored_hash: String = row.try_get("request_hash")?;
    if stored_hash != request_hash {
        return Ok(Claim::Mismatch);
    }
    let status: Option<i64> = row.try_get("status_code")?;
    let body: Option<String> = row.try_get("response")?;
    Ok(match (status, body) {
        (Some(s), Some(b)) => Claim::Replay {
            status: s as u16,
            body: b,
        },
        _ => {
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET created_at = $1 WHERE tenant = $2 AND key = $3 \
                 AND status_code IS NULL AND created_at < $4",
            )
            .bind(now_ms)
            .bind(tenant.as_str())
            .bind(key)
            .bind(stale_before_ms)
            .execute(db.pool())
            .await?
            .rows_affected();
            if taken == 1 {
                Claim::Fresh
            } else {
                Claim::InProgress
            }
        }
    })
}

pub async fn complete(
    db: &Db,
    tenant: &TenantId,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE idempotency_keys SET status_code = $1, response = $2 WHERE tenant = $3 AND key = $4")
        .bind(i64::from(status))
        .bind(body)
        .bind(tenant.as_str())
        .bind(key)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Releases a claim whose request failed before producing a response worth keeping
/// (e.g. a 503), so the client can retry with the same key.
pub async fn release(db: &Db, tenant: &TenantId, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2 AND status_code IS NULL",
    )
    .bind(tenant.as_str())
    .bind(key)
    .execute(db.pool())
    .await?;
    Ok(())
}
