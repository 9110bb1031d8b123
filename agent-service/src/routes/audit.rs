//! The audit log over HTTP: the caller's tenant's hash chain (or, for admins, the system
//! chain), filtered and paged newest first, and its integrity check.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::approvals::{decode_cursor, encode_cursor, page_limit, query, rfc3339};
use crate::db::audit::{self, Chain, Filter};
use crate::domain::Principal;
use crate::domain::Role;
use crate::error::{Error, Result};

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEventOut {
    /// Position in the chain: 1, 2, 3…
    pub seq: i64,
    pub id: String,
    /// The tenant, or `_system`.
    pub chain: String,
    pub at: String,
    /// A key id, `system` or `cli`.
    pub actor: String,
    pub action: String,
    pub resource: String,
    #[schema(value_type = Object)]
    pub details: Value,
    pub request_id: Option<String>,
    pub policy_version: String,
    pub prev_hash: String,
    /// sha256(prev_hash || canonical JSON of the event fields), hex.
    pub hash: String,
}

impl From<audit::Event> for AuditEventOut {
    fn from(e: audit::Event) -> Self {
        Self {
            seq: e.seq,
            id: e.id,
            chain: e.chain,
            at: rfc3339(e.at),
            actor: e.actor,
            action: e.action,
            resource: e.resource,
            details: e.details,
            request_id: e.request_id,
            policy_version: e.policy_version,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEventOut>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this action, e.g. `approval.executed`, `writes.frozen`, `key.created`.
    #[param(min_length = 1, max_length = 256)]
    pub action: Option<String>,
    /// Only this resource, e.g. `approval/apr_…`.
    #[param(min_length = 1, max_length = 256)]
    pub resource: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1-200, default 50.
    #[param(schema_with = super::schema::page_size)]
    pub limit: Option<u32>,
    /// `tenant` (default) or `system` (role admin).
    #[param(schema_with = super::schema::audit_chain)]
    pub chain: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// `tenant` (default) or `system` (role admin).
    #[param(schema_with = super::schema::audit_chain)]
    pub chain: Option<String>,
}

/// The chain a caller asked for and may read.
fn chain_for(principal: &Principal, chain: Option<&str>) -> Result<Chain> {
    principal.require_any(
        &[Role::Viewer, Role::Operator, Role::Approver, Role::Admin],
        "reading the audit log",
    )?;
    match chain.unwrap_or("tenant") {
        "tenant" => Ok(Chain::Tenant(principal.tenant.clone())),
        "system" => {
            principal.require(Role::Admin)?;
            Ok(Chain::System)
        }
        other => Err(Error::invalid(format!(
            "chain {other:?} is not one of: tenant, system"
        ))),
    }
}

fn text_filter(name: &str, value: Option<String>) -> Result<Option<String>> {
    match value {
        Some(v) if v.is_empty() || v.chars().count() > 256 => {
            Err(Error::invalid(format!("{name} must be 1-256 characters")))
        }
        other => Ok(other),
    }
}

/// Audit events of the caller's tenant (or the system chain), newest first.
#[utoipa::path(get, path = "/v1/audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    q: std::result::Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditList>> {
    let q = query(q)?;
    let chain = chain_for(&principal, q.chain.as_deref())?;
    let limit = page_limit(q.limit)?;
    let since_ms = q
        .since
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_millis())
                .map_err(|e| {
                    Error::invalid(format!(
                        "since {s:?} is not an RFC 3339 time like 2025-03-01T12:00:00Z: {e}"
                    ))
                })
        })
        .transpose()?;
    // An empty cursor is the first page, as an absent one.
    let before_seq = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(decode_cursor("e", c, 1)?[0].parse::<i64>().map_err(|_| {
            Error::invalid(
                "cursor is not valid: pass the next_cursor of the previous page unchanged",
            )
        })?),
    };
    let filter = Filter {
        action: text_filter("action", q.action)?,
        resource: text_filter("resource", q.resource)?,
        since_ms,
        before_seq,
    };
    let mut rows = audit::list(&state.db, &chain, &filter, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last())
        .flatten()
        .map(|e| encode_cursor("e", &[&e.seq.to_string()]));
    Ok(Json(AuditList {
        items: rows.into_iter().map(AuditEventOut::from).collect(),
        next_cursor,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BrokenLink {
    pub seq: i64,
    /// `null` when the event is missing.
    pub id: Option<String>,
    pub reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyOut {
    pub ok: bool,
    /// Events whose hash and link were checked.
    pub checked: u64,
    pub chain: String,
    pub first_broken: Option<BrokenLink>,
}

/// Recomputes the chain's hashes and links; names the first broken link (an edited,
/// deleted or reordered event).
#[utoipa::path(get, path = "/v1/audit/verify", security(("bearer" = [])), params(VerifyQuery),
    responses((status = 200, body = VerifyOut), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn verify(
    State(state): State<AppState>,
    principal: Principal,
    q: std::result::Result<Query<VerifyQuery>, QueryRejection>,
) -> Result<Json<VerifyOut>> {
    let q = query(q)?;
    let chain = chain_for(&principal, q.chain.as_deref())?;
    let v = audit::verify(&state.db, &chain).await?;
    if let Some(b) = &v.first_broken {
        tracing::error!(chain = chain.as_str(), seq = b.seq, reason = %b.reason, "audit chain is broken");
    }
    Ok(Json(VerifyOut {
        ok: v.ok,
        checked: v.checked,
        chain: chain.as_str().to_string(),
        first_broken: v.first_broken.map(|b| BrokenLink {
            seq: b.seq,
            id: b.id,
            reason: b.reason,
        }),
    }))
}
