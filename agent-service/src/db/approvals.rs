//! Approval requests: a write tool call becomes a pending row here; nothing executes a
//! write without one. (Decisions, execution and the audit chain build on this table.)

use serde_json::Value;
use sqlx::Row;

use super::Db;
use crate::domain::TenantId;

/// The release that proposed an approval.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Release {
    pub version: String,
    pub git_sha: String,
    pub track: String,
}

#[derive(Debug, Clone)]
pub struct NewApproval {
    pub id: String,
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
    pub trace_id: String,
    pub required_approvals: i64,
    pub release: Release,
    pub policy_version: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An approval as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Approval {
    pub id: String,
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
    pub trace_id: String,
    pub required_approvals: i64,
    pub status: String,
    pub release: Release,
    pub policy_version: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant, workflow, tool, arguments, proposed_change, evidence, risk_tier, \
    requested_by, requested_by_user, request_id, trace_id, required_approvals, status, \
    release_version, release_git_sha, release_track, policy_version, created_at, expires_at, updated_at";

fn json_col(row: &sqlx::any::AnyRow, col: &str) -> Result<Value, sqlx::Error> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Approval, sqlx::Error> {
    Ok(Approval {
        id: row.try_get("id")?,
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
        trace_id: row.try_get("trace_id")?,
        required_approvals: row.try_get("required_approvals")?,
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
    })
}

pub async fn insert_pending(db: &Db, a: &NewApproval) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO approvals (id, tenant, workflow, tool, arguments, proposed_change, evidence, \
         risk_tier, requested_by, requested_by_user, request_id, trace_id, required_approvals, status, \
         release_version, release_git_sha, release_track, policy_version, created_at, expires_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', $14, $15, $16, $17, $18, $19, $18)",
    )
    .bind(&a.id)
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
    .bind(&a.trace_id)
    .bind(a.required_approvals)
    .bind(&a.release.version)
    .bind(&a.release.git_sha)
    .bind(&a.release.track)
    .bind(&a.policy_version)
    .bind(a.created_at)
    .bind(a.expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// One approval of the caller's tenant; another tenant's id is simply not found.
pub async fn get(db: &Db, tenant: &TenantId, id: &str) -> Result<Option<Approval>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE tenant = $1 AND id = $2"
    ))
    .bind(tenant.as_str())
    .bind(id)
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
