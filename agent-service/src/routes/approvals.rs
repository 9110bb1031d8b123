//! Approval requests (read side): a write proposed by a workflow, waiting for a human.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::Value;

use crate::auth::Principal;
use crate::db::approvals;
use crate::domain::Role;
use crate::error::{Error, Result};
use crate::startup::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReleaseOut {
    pub version: String,
    pub git_sha: String,
    pub track: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ApprovalOut {
    pub id: String,
    pub tenant: String,
    pub workflow: String,
    pub tool: String,
    /// Redacted for display.
    #[schema(value_type = Object)]
    pub arguments: Value,
    /// `{resource, before, after, diff}`.
    #[schema(value_type = Object)]
    pub proposed_change: Value,
    #[schema(value_type = Vec<Object>)]
    pub evidence: Value,
    pub risk_tier: i64,
    pub requested_by: String,
    pub requested_by_user: Option<String>,
    pub request_id: String,
    pub trace_id: String,
    pub required_approvals: i64,
    pub status: String,
    pub release: ReleaseOut,
    pub policy_version: String,
    pub created_at: String,
    pub expires_at: String,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

impl From<approvals::Approval> for ApprovalOut {
    fn from(a: approvals::Approval) -> Self {
        Self {
            id: a.id,
            tenant: a.tenant,
            workflow: a.workflow,
            tool: a.tool,
            arguments: a.arguments,
            proposed_change: a.proposed_change,
            evidence: a.evidence,
            risk_tier: a.risk_tier,
            requested_by: a.requested_by,
            requested_by_user: a.requested_by_user,
            request_id: a.request_id,
            trace_id: a.trace_id,
            required_approvals: a.required_approvals,
            status: a.status,
            release: ReleaseOut {
                version: a.release.version,
                git_sha: a.release.git_sha,
                track: a.release.track,
            },
            policy_version: a.policy_version,
            created_at: rfc3339(a.created_at),
            expires_at: rfc3339(a.expires_at),
        }
    }
}

/// One approval request of the caller's tenant.
#[utoipa::path(get, path = "/v1/approvals/{id}", security(("bearer" = [])),
    params(("id" = String, Path, description = "approval id")),
    responses((status = 200, body = ApprovalOut), (status = 404, body = crate::error::ErrorEnvelope)))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ApprovalOut>> {
    if !(principal.roles.allows(Role::Viewer)
        || principal.roles.allows(Role::Approver)
        || principal.roles.allows(Role::Operator))
    {
        return Err(Error::forbidden(
            "reading approvals needs the viewer, approver or operator role",
        ));
    }
    let found = approvals::get(&state.db, &principal.tenant, &id).await?;
    found
        .map(|a| Json(a.into()))
        .ok_or_else(|| Error::not_found(format!("approval {id}")))
}
