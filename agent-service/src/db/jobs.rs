//! The job queue's table: enqueue, claim under a lease (PostgreSQL `FOR UPDATE SKIP
//! LOCKED`, SQLite's single writer), heartbeats, outcomes, cancellation, reaping expired
//! leases, and the callback outbox.
//!
//! Every write a worker makes after its claim is guarded by the claim's `lease_token`, so a
//! worker that lost its lease (it stalled and another worker took the job) changes nothing.

use std::fmt;

use serde_json::Value;
use sqlx::Row;

use super::{Backend, Db};
use crate::domain::{JobId, TenantId};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Dead-lettered: every attempt failed (or its worker died on the last one).
    Dead,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Dead,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "status {s:?} is not one of queued, running, succeeded, failed, dead, cancelled"
                )
            })
    }

    /// No further transition is possible.
    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to enqueue. `input_text` is already redacted.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: JobId,
    pub tenant: TenantId,
    pub key_id: String,
    pub key_name: String,
    pub workflow: String,
    pub input_text: String,
    pub user_id: Option<String>,
    pub request_id: String,
    pub max_attempts: i64,
    pub callback_url: Option<String>,
    pub created_at: i64,
}

/// The lease of a running job.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// Which process and worker holds it (for people).
    pub owner: String,
    /// Unique per claim; guards every write of the holder.
    pub token: String,
    pub expires_at: i64,
    pub heartbeat_at: Option<i64>,
}

/// Why a job (or its last attempt) failed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

/// The callback of a job that named a `callback_url`.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub url: String,
    /// `None` until the job finishes; then `pending`, `delivered` or `failed`.
    pub state: Option<String>,
    pub attempts: i64,
    pub next_at: Option<i64>,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub at: Option<i64>,
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: JobId,
    pub tenant: String,
    pub key_id: String,
    pub key_name: String,
    pub workflow: String,
    pub input_text: String,
    pub user_id: Option<String>,
    pub request_id: String,
    pub status: JobStatus,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_after: i64,
    pub lease: Option<Lease>,
    pub cancel_requested: bool,
    /// The invoke-shaped reply of the run, once it succeeded.
    pub result: Option<Value>,
    /// The last error (of the job when it failed or is dead; of the last attempt otherwise).
    pub error: Option<JobError>,
    pub callback: Option<Callback>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant, key_id, key_name, workflow, input_text, user_id, request_id, \
    status, attempts, max_attempts, run_after, lease_owner, lease_token, lease_expires_at, \
    heartbeat_at, cancel_requested, result, error_code, error_message, callback_url, \
    callback_state, callback_attempts, callback_next_at, callback_status_code, callback_error, \
    callback_at, created_at, started_at, finished_at, updated_at";

fn decode_err(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Job, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let status = JobStatus::parse(&status).map_err(decode_err)?;
    let lease = match (
        row.try_get::<Option<String>, _>("lease_owner")?,
        row.try_get::<Option<String>, _>("lease_token")?,
        row.try_get::<Option<i64>, _>("lease_expires_at")?,
    ) {
        (Some(owner), Some(token), Some(expires_at)) => Some(Lease {
            owner,
            token,
            expires_at,
            heartbeat_at: row.try_get("heartbeat_at")?,
        }),
        _ => None,
    };
    let result = match row.try_get::<Option<String>, _>("result")? {
        Some(text) => Some(
            serde_json::from_str(&text)
                .map_err(|e| decode_err(format!("jobs.result is not JSON: {e}")))?,
        ),
        None => None,
    };
    let error = match (
        row.try_get::<Option<String>, _>("error_code")?,
        row.try_get::<Option<String>, _>("error_message")?,
    ) {
        (Some(code), message) => Some(JobError {
            code,
            message: message.unwrap_or_default(),
        }),
        _ => None,
    };
    let callback = match row.try_get::<Option<String>, _>("callback_url")? {
        Some(url) => Some(Callback {
            url,
            state: row.try_get("callback_state")?,
            attempts: row.try_get("callback_attempts")?,
            next_at: row.try_get("callback_next_at")?,
            status_code: row.try_get("callback_status_code")?,
            error: row.try_get("callback_error")?,
            at: row.try_get("callback_at")?,
        }),
        None => None,
    };
    Ok(Job {
        id: JobId::parse(&row.try_get::<String, _>("id")?).map_err(decode_err)?,
        tenant: row.try_get("tenant")?,
        key_id: row.try_get("key_id")?,
        key_name: row.try_get("key_name")?,
        workflow: row.try_get("workflow")?,
        input_text: row.try_get("input_text")?,
        user_id: row.try_get("user_id")?,
        request_id: row.try_get("request_id")?,
        status,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_after: row.try_get("run_after")?,
        lease,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        result,
        error,
        callback,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// `FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent claimers never wait on each
/// other; nothing on SQLite, where the single writer already serializes the UPDATE.
fn skip_locked(db: &Db) -> &'static str {
    match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    }
}

/// What a finished job's callback becomes: pending when it has a URL.
const CALLBACK_DUE: &str =
    "callback_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END";

pub async fn insert(db: &Db, j: &NewJob) -> Result<Job, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO jobs (id, tenant, key_id, key_name, workflow, input_text, user_id, request_id, \
         status, attempts, max_attempts, run_after, cancel_requested, callback_url, \
         callback_attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, $9, $10, 0, $11, 0, $10, $10) \
         RETURNING {COLUMNS}"
    ))
    .bind(j.id.as_str())
    .bind(j.tenant.as_str())
    .bind(&j.key_id)
    .bind(&j.key_name)
    .bind(&j.workflow)
    .bind(&j.input_text)
    .bind(&j.user_id)
    .bind(&j.request_id)
    .bind(j.max_attempts)
    .bind(j.created_at)
    .bind(&j.callback_url)
    .fetch_one(db.pool())
    .await?;
    from_row(&row)
}

/// One job of the caller's tenant; another tenant's id is simply not found.
pub async fn get(db: &Db, tenant: &TenantId, id: &JobId) -> Result<Option<Job>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE tenant = $1 AND id = $2"
    ))
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A tenant's jobs, newest first: at most `limit`, with ids below `before` when given.
pub async fn list(
    db: &Db,
    tenant: &TenantId,
    status: Option<JobStatus>,
    before: Option<&JobId>,
    limit: i64,
) -> Result<Vec<Job>, sqlx::Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM jobs WHERE tenant = $1");
    let mut n = 1;
    if status.is_some() {
        n += 1;
        sql.push_str(&format!(" AND status = ${n}"));
    }
    if before.is_some() {
        n += 1;
        sql.push_str(&format!(" AND id < ${n}"));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", n + 1));
    let mut q = sqlx::query(&sql).bind(tenant.as_str());
    if let Some(s) = status {
        q = q.bind(s.as_str());
    }
    if let Some(b) = before {
        q = q.bind(b.as_str());
    }
    let rows = q.bind(limit).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// Takes the oldest due queued job: it becomes `running` under a fresh lease and its
/// attempt is counted. `None` when nothing is due.
pub async fn claim(
    db: &Db,
    owner: &str,
    token: &str,
    now: i64,
    lease_ms: i64,
) -> Result<Option<Job>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1, \
         lease_token = $2, lease_expires_at = $3, heartbeat_at = $4, \
         started_at = COALESCE(started_at, $4), updated_at = $4 \
         WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_after <= $4 \
                     ORDER BY run_after, id LIMIT 1{}) \
         RETURNING {COLUMNS}",
        skip_locked(db)
    ))
    .bind(owner)
    .bind(token)
    .bind(now + lease_ms)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Extends the lease. `Some(cancel_requested)` while the lease is held, `None` once it
/// was lost.
pub async fn heartbeat(
    db: &Db,
    id: &JobId,
    token: &str,
    now: i64,
    lease_ms: i64,
) -> Result<Option<bool>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE jobs SET lease_expires_at = $1, heartbeat_at = $2, updated_at = $2 \
         WHERE id = $3 AND lease_token = $4 AND status = 'running' \
         RETURNING cancel_requested",
    )
    .bind(now + lease_ms)
    .bind(now)
    .bind(id.as_str())
    .bind(token)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| r.try_get::<i64, _>("cancel_requested").map(|c| c != 0))
        .transpose()
}

/// How an attempt ended, as the worker records it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The run ended (in any run status); `result` is the invoke-shaped reply as JSON.
    Succeeded {
        result: String,
    },
    /// A failure that retrying cannot fix.
    Failed(JobError),
    /// A retryable failure on the last attempt.
    Dead(JobError),
    /// A retryable failure with attempts left: queued again, due at `run_after`.
    Retry {
        error: JobError,
        run_after: i64,
    },
    Cancelled,
}

/// Records the end of an attempt, if `token` still holds the lease. Returns whether it did.
pub async fn finish(
    db: &Db,
    id: &JobId,
    token: &str,
    now: i64,
    outcome: &Outcome,
) -> Result<bool, sqlx::Error> {
    const CLEAR_LEASE: &str =
        "lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, heartbeat_at = NULL";
    let guard = "WHERE id = $1 AND lease_token = $2 AND status = 'running'";
    let pool = db.pool();
    let done = match outcome {
        Outcome::Succeeded { result } => {
            let sql = format!(
                "UPDATE jobs SET status = 'succeeded', result = $4, error_code = NULL, \
                 error_message = NULL, {CLEAR_LEASE}, finished_at = $3, updated_at = $3, \
                 {CALLBACK_DUE}, callback_next_at = $3 {guard}"
            );
            sqlx::query(&sql)
                .bind(id.as_str())
                .bind(token)
                .bind(now)
                .bind(result.as_str())
                .execute(pool)
                .await?
        }
        Outcome::Failed(e) | Outcome::Dead(e) => {
            let status = if matches!(outcome, Outcome::Failed(_)) {
                "failed"
            } else {
                "dead"
            };
            let sql = format!(
                "UPDATE jobs SET status = '{status}', error_code = $4, error_message = $5, \
                 {CLEAR_LEASE}, finished_at = $3, updated_at = $3, {CALLBACK_DUE}, \
                 callback_next_at = $3 {guard}"
            );
            sqlx::query(&sql)
                .bind(id.as_str())
                .bind(token)
                .bind(now)
                .bind(e.code.as_str())
                .bind(e.message.as_str())
                .execute(pool)
                .await?
        }
        Outcome::Retry { error, run_after } => {
            let sql = format!(
                "UPDATE jobs SET status = 'queued', error_code = $4, error_message = $5, \
                 run_after = $6, {CLEAR_LEASE}, updated_at = $3 {guard}"
            );
            sqlx::query(&sql)
                .bind(id.as_str())
                .bind(token)
                .bind(now)
                .bind(error.code.as_str())
                .bind(error.message.as_str())
                .bind(*run_after)
                .execute(pool)
                .await?
        }
        Outcome::Cancelled => {
            let sql = format!(
                "UPDATE jobs SET status = 'cancelled', {CLEAR_LEASE}, finished_at = $3, \
                 updated_at = $3, {CALLBACK_DUE}, callback_next_at = $3 {guard}"
            );
            sqlx::query(&sql)
                .bind(id.as_str())
                .bind(token)
                .bind(now)
                .execute(pool)
                .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Hands a running job back to the queue without counting the attempt (graceful
/// shutdown). Returns whether `token` still held it.
pub async fn release(db: &Db, id: &JobId, token: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_after = $1, \
         lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, heartbeat_at = NULL, \
         updated_at = $1 WHERE id = $2 AND lease_token = $3 AND status = 'running'",
    )
    .bind(now)
    .bind(id.as_str())
    .bind(token)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Cancels a queued job of the tenant at once. Returns the job when it was queued.
pub async fn cancel_queued(
    db: &Db,
    tenant: &TenantId,
    id: &JobId,
    now: i64,
) -> Result<Option<Job>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_at = $1, \
         updated_at = $1, {CALLBACK_DUE}, callback_next_at = $1 \
         WHERE tenant = $2 AND id = $3 AND status = 'queued' RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Asks the worker of a running job to stop. Returns the job when it was running.
pub async fn request_cancel(
    db: &Db,
    tenant: &TenantId,
    id: &JobId,
    now: i64,
) -> Result<Option<Job>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE jobs SET cancel_requested = 1, updated_at = $1 \
         WHERE tenant = $2 AND id = $3 AND status = 'running' RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Running jobs whose lease expired (their worker died or stalled): back to the queue,
/// or dead when that was their last attempt, or cancelled when a cancel was asked for.
/// Returns the new status of each job it touched.
pub async fn reap_expired(db: &Db, now: i64) -> Result<Vec<(JobId, JobStatus)>, sqlx::Error> {
    let rows = sqlx::query(
        "UPDATE jobs SET \
           status = CASE WHEN cancel_requested = 1 THEN 'cancelled' \
                         WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
           error_code = CASE WHEN cancel_requested = 1 THEN error_code ELSE 'lease_expired' END, \
           error_message = CASE WHEN cancel_requested = 1 THEN error_message \
             ELSE 'the worker running this job stopped renewing its lease (it died or stalled)' END, \
           finished_at = CASE WHEN cancel_requested = 1 OR attempts >= max_attempts THEN $1 \
                              ELSE NULL END, \
           callback_state = CASE WHEN callback_url IS NOT NULL \
             AND (cancel_requested = 1 OR attempts >= max_attempts) THEN 'pending' ELSE NULL END, \
           callback_next_at = $1, run_after = $1, \
           lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, heartbeat_at = NULL, \
           updated_at = $1 \
         WHERE status = 'running' AND lease_expires_at < $1 RETURNING id, status"
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            Ok((
                JobId::parse(&r.try_get::<String, _>("id")?).map_err(decode_err)?,
                JobStatus::parse(&status).map_err(decode_err)?,
            ))
        })
        .collect()
}

/// Jobs waiting in the queue, across tenants (the `agent_queue_depth` gauge).
pub async fn count_queued(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE status = 'queued'")
        .fetch_one(db.pool())
        .await?
        .try_get("n")
}

/// Takes the next due callback: counts the attempt and holds it until `hold_until`, so no
/// other sender takes it meanwhile (and a sender that dies leaves it for another).
pub async fn claim_callback(
    db: &Db,
    now: i64,
    hold_until: i64,
) -> Result<Option<Job>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE jobs SET callback_attempts = callback_attempts + 1, callback_next_at = $1 \
         WHERE id = (SELECT id FROM jobs WHERE callback_state = 'pending' AND callback_next_at <= $2 \
                     ORDER BY callback_next_at, id LIMIT 1{}) \
         RETURNING {COLUMNS}",
        skip_locked(db)
    ))
    .bind(hold_until)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// How one callback attempt went.
#[derive(Debug, Clone, PartialEq)]
pub enum CallbackOutcome {
    Delivered {
        status_code: i64,
    },
    /// Failed; tried again at `next_at`.
    Retry {
        status_code: Option<i64>,
        error: String,
        next_at: i64,
    },
    /// Failed for good.
    Failed {
        status_code: Option<i64>,
        error: String,
    },
}

pub async fn record_callback(
    db: &Db,
    id: &JobId,
    now: i64,
    outcome: &CallbackOutcome,
) -> Result<(), sqlx::Error> {
    let q = match outcome {
        CallbackOutcome::Delivered { status_code } => sqlx::query(
            "UPDATE jobs SET callback_state = 'delivered', callback_status_code = $1, \
             callback_error = NULL, callback_at = $2, callback_next_at = NULL WHERE id = $3",
        )
        .bind(*status_code)
        .bind(now)
        .bind(id.as_str()),
        CallbackOutcome::Retry {
            status_code,
            error,
            next_at,
        } => sqlx::query(
            "UPDATE jobs SET callback_status_code = $1, callback_error = $2, callback_next_at = $3 \
             WHERE id = $4",
        )
        .bind(*status_code)
        .bind(error.as_str())
        .bind(*next_at)
        .bind(id.as_str()),
        CallbackOutcome::Failed { status_code, error } => sqlx::query(
            "UPDATE jobs SET callback_state = 'failed', callback_status_code = $1, \
             callback_error = $2, callback_at = $3, callback_next_at = NULL WHERE id = $4",
        )
        .bind(*status_code)
        .bind(error.as_str())
        .bind(now)
        .bind(id.as_str()),
    };
    q.execute(db.pool()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_named() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Ok(s));
        }
        let err = JobStatus::parse("done").expect_err("not a status");
        assert!(
            err.contains("\"done\"") && err.contains("succeeded"),
            "{err}"
        );
        assert!(!JobStatus::Queued.is_final() && !JobStatus::Running.is_final());
        assert!(JobStatus::Dead.is_final() && JobStatus::Cancelled.is_final());
    }
}
