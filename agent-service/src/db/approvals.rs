//! Approval requests: a write tool call becomes a pending row here; nothing executes a
//! write without one. Decisions, the execution claim and its outcome are transitions of
//! the same row, each a conditional `UPDATE` run inside the caller's transaction (where
//! the matching audit event is appended too). The state machine is in `crate::approvals`.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::Db;
use crate::domain::{ApprovalId, TenantId, TraceId};

/// The release that proposed an approval.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Release {
    pub version: String,
    pub git_sha: String,
    pub track: String,
}

#[derive(Debug, Clone)]
pub struct NewApproval {
    pub id: ApprovalId,
    pub tenant: TenantId,
    pub workflow: String,
    pub tool: String,
    /// Already redacted.
    pub arguments: Value,
    /// `{resource, before, after, diff}`, already redacted.
    pub proposed_change: Value,
    pub evidence: Value,
    pub risk_tier: i64,
    pub requested_by: String,
    pub requested_by_user: Option<String>,
    pub request_id: String,
    pub trace_id: TraceId,
    pub required_approvals: i64,
    pub release: Release,
    pub policy_version: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An approval as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Approval {
    pub id: ApprovalId,
    pub tenant: String,
    pub workflow: String,
    pub tool: String,
    pub arguments: Value,
    pub proposed_change: Value,
    pub evidence: Value,
    pub risk_tier: i64,
    pub requested_by: String,
    pub requested_by_user: Option<String>,
    pub request_id: String,
    pub trace_id: TraceId,
    pub required_approvals: i64,
    /// Approve decisions so far.
    pub approvals_count: i64,
    pub status: String,
    pub release: Release,
    pub policy_version: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub updated_at: i64,
    /// When the request was approved, rejected, cancelled or expired.
    pub decided_at: Option<i64>,
    /// Execution attempts (claims) so far.
    pub attempts: i64,
    /// While an HTTP write is `executing`: until when this attempt holds it.
    pub lease_until: Option<i64>,
    /// The record after the write (`executed`), redacted.
    pub result: Option<Value>,
    /// Why the write failed (`failed`) or why the request was cancelled.
    pub error: Option<String>,
    pub executed_at: Option<i64>,
}

/// Every status, in lifecycle order.
pub const STATUSES: [&str; 8] = [
    "pending",
    "approved",
    "executing",
    "executed",
    "failed",
    "rejected",
    "expired",
    "cancelled",
];

const COLUMNS: &str = "id, tenant, workflow, tool, arguments, proposed_change, evidence, risk_tier, \
    requested_by, requested_by_user, request_id, trace_id, required_approvals, approvals_count, status, \
    release_version, release_git_sha, release_track, policy_version, created_at, expires_at, updated_at, \
    decided_at, attempts, lease_until, result, error, executed_at";

/// A stored value that does not parse as its type.
fn decode_err(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn json_col(row: &sqlx::any::AnyRow, col: &str) -> Result<Value, sqlx::Error> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Approval, sqlx::Error> {
    let result: Option<String> = row.try_get("result")?;
    Ok(Approval {
        id: ApprovalId::parse(&row.try_get::<String, _>("id")?).map_err(decode_err)?,
        tenant: row.try_get("tenant")?,
        workflow: row.try_get("workflow")?,
        tool: row.try_get("tool")?,
        arguments: json_col(row, "arguments")?,
        proposed_change: json_col(row, "proposed_change")?,
        evidence: json_col(row, "evidence")?,
        risk_tier: row.try_get("risk_tier")?,
        requested_by: row.try_get("requested_by")?,
        requested_by_user: row.try_get("requested_by_user")?,
        request_id: row.try_get("request_id")?,
        trace_id: TraceId::parse(&row.try_get::<String, _>("trace_id")?).map_err(decode_err)?,
        required_approvals: row.try_get("required_approvals")?,
        approvals_count: row.try_get("approvals_count")?,
        status: row.try_get("status")?,
        release: Release {
            version: row.try_get("release_version")?,
            git_sha: row.try_get("release_git_sha")?,
            track: row.try_get("release_track")?,
        },
        policy_version: row.try_get("policy_version")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        updated_at: row.try_get("updated_at")?,
        decided_at: row.try_get("decided_at")?,
        attempts: row.try_get("attempts")?,
        lease_until: row.try_get("lease_until")?,
        result: result
            .map(|t| serde_json::from_str(&t).map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .transpose()?,
        error: row.try_get("error")?,
        executed_at: row.try_get("executed_at")?,
    })
}

/// Stores a new pending request inside the caller's transaction.
pub async fn insert_pending(conn: &mut AnyConnection, a: &NewApproval) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO approvals (id, tenant, workflow, tool, arguments, proposed_change, evidence, \
         risk_tier, requested_by, requested_by_user, request_id, trace_id, required_approvals, status, \
         release_version, release_git_sha, release_track, policy_version, created_at, expires_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', $14, $15, $16, $17, $18, $19, $18)",
    )
    .bind(a.id.as_str())
    .bind(a.tenant.as_str())
    .bind(&a.workflow)
    .bind(&a.tool)
    .bind(a.arguments.to_string())
    .bind(a.proposed_change.to_string())
    .bind(a.evidence.to_string())
    .bind(a.risk_tier)
    .bind(&a.requested_by)
    .bind(&a.requested_by_user)
    .bind(&a.request_id)
    .bind(a.trace_id.as_str())
    .bind(a.required_approvals)
    .bind(&a.release.version)
    .bind(&a.release.git_sha)
    .bind(&a.release.track)
    .bind(&a.policy_version)
    .bind(a.created_at)
    .bind(a.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One approval of the caller's tenant; another tenant's id is simply not found.
pub async fn get(
    db: &Db,
    tenant: &TenantId,
    id: &ApprovalId,
) -> Result<Option<Approval>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE tenant = $1 AND id = $2"
    ))
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn count_pending(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending'")
        .fetch_one(db.pool())
        .await?
        .try_get("n")
}

/// A position in the newest-first listing: the last item of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub created_at: i64,
    pub id: String,
}

/// The tenant's approvals, newest first, optionally of one status, after `cursor`.
pub async fn list(
    db: &Db,
    tenant: &TenantId,
    status: Option<&str>,
    cursor: Option<&ListCursor>,
    limit: i64,
) -> Result<Vec<Approval>, sqlx::Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM approvals WHERE tenant = $1");
    let mut n = 1;
    if status.is_some() {
        n += 1;
        sql.push_str(&format!(" AND status = ${n}"));
    }
    if cursor.is_some() {
        sql.push_str(&format!(
            " AND (created_at < ${a} OR (created_at = ${a} AND id < ${b}))",
            a = n + 1,
            b = n + 2
        ));
        n += 2;
    }
    sql.push_str(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT ${}",
        n + 1
    ));
    let mut q = sqlx::query(&sql).bind(tenant.as_str());
    if let Some(s) = status {
        q = q.bind(s);
    }
    if let Some(c) = cursor {
        q = q.bind(c.created_at).bind(&c.id);
    }
    let rows = q.bind(limit).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// A decision on an approval: `approve`, `reject`, or `cancel` (an operator's bulk cancel).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// The deciding key's id.
    pub approver: String,
    pub approver_name: String,
    pub decision: String,
    /// Redacted.
    pub reason: String,
    pub request_id: String,
    pub decided_at: i64,
}

/// The decisions on one approval of the tenant, oldest first.
pub async fn decisions(
    db: &Db,
    tenant: &TenantId,
    id: &ApprovalId,
) -> Result<Vec<Decision>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT approver, approver_name, decision, reason, request_id, decided_at \
         FROM approval_decisions WHERE tenant = $1 AND approval_id = $2 \
         ORDER BY decided_at, approver",
    )
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Decision {
                approver: r.try_get("approver")?,
                approver_name: r.try_get("approver_name")?,
                decision: r.try_get("decision")?,
                reason: r.try_get("reason")?,
                request_id: r.try_get("request_id")?,
                decided_at: r.try_get("decided_at")?,
            })
        })
        .collect()
}

/// Records a decision row; false when this approver already decided on this approval.
pub async fn insert_decision(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    approval_id: &ApprovalId,
    d: &Decision,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO approval_decisions (approval_id, tenant, approver, approver_name, decision, \
         reason, request_id, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (approval_id, approver) DO NOTHING",
    )
    .bind(approval_id.as_str())
    .bind(tenant.as_str())
    .bind(&d.approver)
    .bind(&d.approver_name)
    .bind(&d.decision)
    .bind(&d.reason)
    .bind(&d.request_id)
    .bind(d.decided_at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The row after an approve decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub status: String,
    pub approvals_count: i64,
    pub required_approvals: i64,
}

/// Counts one approve decision on a pending, unexpired request; it becomes `approved` when
/// the count reaches `required_approvals`. `None` when the request is not pending (any
/// more) or has expired.
pub async fn count_approve(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &ApprovalId,
    now: i64,
) -> Result<Option<Approved>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE approvals SET approvals_count = approvals_count + 1, \
         status = CASE WHEN approvals_count + 1 >= required_approvals THEN 'approved' ELSE 'pending' END, \
         decided_at = CASE WHEN approvals_count + 1 >= required_approvals THEN $1 ELSE decided_at END, \
         updated_at = $1 \
         WHERE tenant = $2 AND id = $3 AND status = 'pending' AND expires_at > $1 \
         RETURNING status, approvals_count, required_approvals",
    )
    .bind(now)
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(Approved {
            status: r.try_get("status")?,
            approvals_count: r.try_get("approvals_count")?,
            required_approvals: r.try_get("required_approvals")?,
        })
    })
    .transpose()
}

/// Moves a pending request to a final status without execution (`rejected`, `expired`):
/// false when it is not pending any more. `expired` only applies once `expires_at` passed;
/// `rejected` only before.
pub async fn close_pending(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &ApprovalId,
    status: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let expiry = if status == "expired" {
        "expires_at <= $1"
    } else {
        "expires_at > $1"
    };
    let done = sqlx::query(&format!(
        "UPDATE approvals SET status = $2, decided_at = $1, updated_at = $1 \
         WHERE tenant = $3 AND id = $4 AND status = 'pending' AND {expiry}"
    ))
    .bind(now)
    .bind(status)
    .bind(tenant.as_str())
    .bind(id.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels the tenant's pending requests proposed by a release on `track` and/or at
/// `version` (at least one must be given); returns their ids.
pub async fn cancel_pending(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    track: Option<&str>,
    version: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<Vec<ApprovalId>, sqlx::Error> {
    let mut sql = "UPDATE approvals SET status = 'cancelled', error = $1, decided_at = $2, \
                   updated_at = $2 WHERE tenant = $3 AND status = 'pending'"
        .to_string();
    let mut n = 3;
    if track.is_some() {
        n += 1;
        sql.push_str(&format!(" AND release_track = ${n}"));
    }
    if version.is_some() {
        n += 1;
        sql.push_str(&format!(" AND release_version = ${n}"));
    }
    sql.push_str(" RETURNING id");
    let mut q = sqlx::query(&sql)
        .bind(reason)
        .bind(now)
        .bind(tenant.as_str());
    if let Some(t) = track {
        q = q.bind(t);
    }
    if let Some(v) = version {
        q = q.bind(v);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let mut ids = rows
        .iter()
        .map(|r| ApprovalId::parse(&r.try_get::<String, _>("id")?).map_err(decode_err))
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort();
    Ok(ids)
}

/// Who holds an `executing` request and until when (HTTP writes, which run outside the
/// database transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
}

/// Claims an `approved` request for execution (`executing`, one more attempt); returns the
/// attempt number, or `None` when another process claimed it first. With a lease, an
/// `executing` request whose lease ran out is claimed again (a retry of an HTTP write).
pub async fn claim(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &ApprovalId,
    lease: Option<&Lease>,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let row = match lease {
        None => sqlx::query(
            "UPDATE approvals SET status = 'executing', attempts = attempts + 1, updated_at = $1 \
                 WHERE tenant = $2 AND id = $3 AND status = 'approved' RETURNING attempts",
        )
        .bind(now)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?,
        Some(lease) => sqlx::query(
            "UPDATE approvals SET status = 'executing', attempts = attempts + 1, updated_at = $1, \
                 lease_owner = $2, lease_until = $3 \
                 WHERE tenant = $4 AND id = $5 AND (status = 'approved' \
                 OR (status = 'executing' AND lease_until IS NOT NULL AND lease_until < $1)) \
                 RETURNING attempts",
        )
        .bind(now)
        .bind(&lease.owner)
        .bind(lease.until)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await?,
    };
    row.map(|r| r.try_get("attempts")).transpose()
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The write was applied; the record after it, redacted.
    Executed(Value),
    /// The write was not applied, and will not be retried.
    Failed(String),
}

/// Records the outcome of the attempt `attempt` of an `executing` request. With a lease
/// owner, only while that owner still holds it (a takeover after the lease ran out records
/// its own outcome). False when the request is no longer this attempt's.
pub async fn finish(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &ApprovalId,
    attempt: i64,
    owner: Option<&str>,
    outcome: &Outcome,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let (status, result, error, executed_at) = match outcome {
        Outcome::Executed(record) => ("executed", Some(record.to_string()), None, Some(now)),
        Outcome::Failed(message) => ("failed", None, Some(message.as_str()), None),
    };
    let owner_check = if owner.is_some() {
        " AND lease_owner = $9"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE approvals SET status = $1, result = $2, error = $3, executed_at = $4, \
         updated_at = $5, lease_owner = NULL, lease_until = NULL \
         WHERE tenant = $6 AND id = $7 AND status = 'executing' AND attempts = $8{owner_check}"
    );
    let mut q = sqlx::query(&sql)
        .bind(status)
        .bind(result)
        .bind(error)
        .bind(executed_at)
        .bind(now)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(attempt);
    if let Some(o) = owner {
        q = q.bind(o);
    }
    Ok(q.execute(&mut *conn).await?.rows_affected() == 1)
}

/// `(tenant, id)` of requests the sweeper must look at.
pub type Due = Vec<(String, String)>;

async fn due(db: &Db, sql: &str, now: i64, limit: i64) -> Result<Due, sqlx::Error> {
    let rows = sqlx::query(sql)
        .bind(now)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("tenant")?, r.try_get("id")?)))
        .collect()
}

/// Pending requests whose `expires_at` has passed.
pub async fn due_to_expire(db: &Db, now: i64, limit: i64) -> Result<Due, sqlx::Error> {
    due(
        db,
        "SELECT tenant, id FROM approvals WHERE status = 'pending' AND expires_at <= $1 \
         ORDER BY expires_at LIMIT $2",
        now,
        limit,
    )
    .await
}

/// Approved requests not executed yet (their executor crashed or was held by a freeze),
/// and `executing` ones whose lease ran out.
pub async fn due_to_execute(db: &Db, now: i64, limit: i64) -> Result<Due, sqlx::Error> {
    due(
        db,
        "SELECT tenant, id FROM approvals WHERE status = 'approved' \
         OR (status = 'executing' AND lease_until IS NOT NULL AND lease_until < $1) \
         ORDER BY updated_at LIMIT $2",
        now,
        limit,
    )
    .await
}
