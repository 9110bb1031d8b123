//! Tenant administration: the write freeze (the incident kill switch). While frozen, new
//! writes are refused at gate time and pending requests cannot be approved.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::approvals::{check_reason, parse_with_reason, rfc3339};
use super::request_id::RequestId;
use crate::db::freeze::Freeze;
use crate::domain::Principal;
use crate::domain::{Role, TenantId};
use crate::error::Result;

#[derive(Serialize, utoipa::ToSchema)]
pub struct FreezeOut {
    pub tenant: String,
    pub frozen: bool,
    /// The reason given by whoever last froze or unfroze.
    pub reason: Option<String>,
    /// The key id that last changed it.
    pub changed_by: Option<String>,
    pub changed_at: Option<String>,
    /// On a freeze/unfreeze call: whether this call changed the state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
}

fn out(tenant: &TenantId, f: Freeze, changed: Option<bool>) -> FreezeOut {
    FreezeOut {
        tenant: tenant.to_string(),
        frozen: f.frozen,
        reason: f.reason,
        changed_by: f.actor,
        changed_at: f.changed_at.map(rfc3339),
        changed,
    }
}

/// Whether writes are frozen for the caller's tenant.
#[utoipa::path(get, path = "/v1/admin/freeze", security(("bearer" = [])),
    responses((status = 200, body = FreezeOut), (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn freeze_state(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<FreezeOut>> {
    principal.require_any(
        &[Role::Viewer, Role::Approver, Role::Operator],
        "reading the write freeze",
    )?;
    let f = state
        .engine
        .approvals
        .freeze_state(&principal.tenant)
        .await?;
    Ok(Json(out(&principal.tenant, f, None)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeRequest {
    /// Why: 1-2000 characters, kept in the audit log.
    #[schema(schema_with = super::schema::reason)]
    pub reason: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnfreezeRequest {
    /// Optional: 1-2000 characters, kept in the audit log.
    #[schema(schema_with = super::schema::optional_reason)]
    pub reason: Option<String>,
}

/// Freezes writes for the caller's tenant (role `operator`): new writes are refused with
/// `writes_frozen`, pending requests cannot be approved, approved ones wait. Idempotent.
#[utoipa::path(post, path = "/v1/admin/freeze", security(("bearer" = [])), request_body = FreezeRequest,
    responses((status = 200, body = FreezeOut), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn freeze(
    State(state): State<AppState>,
    principal: Principal,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<FreezeOut>> {
    principal.require(Role::Operator)?;
    let (req, _): (FreezeRequest, Bytes) = parse_with_reason(&headers, body)?;
    check_reason(&req.reason)?;
    let (f, changed) = state
        .engine
        .approvals
        .set_freeze(&principal, true, Some(&req.reason), &request_id)
        .await?;
    Ok(Json(out(&principal.tenant, f, Some(changed))))
}

/// Lifts the write freeze for the caller's tenant (role `operator`). The body, with an
/// optional reason, may be empty. Idempotent.
#[utoipa::path(post, path = "/v1/admin/unfreeze", security(("bearer" = [])), request_body = Option<UnfreezeRequest>,
    responses((status = 200, body = FreezeOut), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn unfreeze(
    State(state): State<AppState>,
    principal: Principal,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<FreezeOut>> {
    principal.require(Role::Operator)?;
    // No body, an empty one or JSON `null`: no reason.
    let empty = matches!(&body, Ok(b) if b.iter().all(u8::is_ascii_whitespace) || b.trim_ascii() == b"null");
    let req: UnfreezeRequest = if empty {
        UnfreezeRequest::default()
    } else {
        super::parse_json(&headers, body)?.0
    };
    if let Some(r) = &req.reason {
        check_reason(r)?;
    }
    let (f, changed) = state
        .engine
        .approvals
        .set_freeze(&principal, false, req.reason.as_deref(), &request_id)
        .await?;
    Ok(Json(out(&principal.tenant, f, Some(changed))))
}
