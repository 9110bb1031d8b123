//! The approval queue over HTTP: list and detail (with decisions and the execution
//! result), approve/reject with a reason, bulk cancel by release, and the live event
//! stream (Server-Sent Events whose ids are audit sequence numbers).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use super::Path;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use base64::Engine as _;
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::AppState;
use super::idempotency::idempotency_key;
use super::request_id::RequestId;
use crate::approvals::{APPROVAL_ACTION_PREFIX, Verdict};
use crate::db::Db;
use crate::db::approvals::{self, ListCursor, STATUSES};
use crate::db::audit::{self, Chain};
use crate::domain::Principal;
use crate::domain::{ApprovalId, Role, TenantId};
use crate::error::{Error, Result};
use crate::shutdown::Shutdown;

use super::schema::MAX_REASON_CHARS;
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;
/// How often the event stream looks at the database for events of other replicas.
const EVENT_POLL: Duration = Duration::from_secs(1);
const EVENT_PAGE: i64 = 200;

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
    /// The id of the API key that invoked the workflow; it can never decide this request.
    pub requested_by: String,
    pub requested_by_user: Option<String>,
    pub request_id: String,
    pub trace_id: String,
    pub required_approvals: i64,
    /// Approve decisions so far.
    pub approvals_count: i64,
    /// `pending`, `approved`, `executing`, `executed`, `failed`, `rejected`, `expired` or `cancelled`.
    pub status: String,
    pub release: ReleaseOut,
    pub policy_version: String,
    pub created_at: String,
    pub expires_at: String,
    pub updated_at: String,
    pub decided_at: Option<String>,
}

pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

impl From<approvals::Approval> for ApprovalOut {
    fn from(a: approvals::Approval) -> Self {
        Self {
            id: a.id.into_string(),
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
            trace_id: a.trace_id.into_string(),
            required_approvals: a.required_approvals,
            approvals_count: a.approvals_count,
            status: a.status,
            release: ReleaseOut {
                version: a.release.version,
                git_sha: a.release.git_sha,
                track: a.release.track,
            },
            policy_version: a.policy_version,
            created_at: rfc3339(a.created_at),
            expires_at: rfc3339(a.expires_at),
            updated_at: rfc3339(a.updated_at),
            decided_at: a.decided_at.map(rfc3339),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DecisionOut {
    /// The deciding API key's id.
    pub approver: String,
    pub approver_name: String,
    /// `approve`, `reject` or `cancel`.
    pub decision: String,
    pub reason: String,
    pub request_id: String,
    pub decided_at: String,
}

/// The execution of an approved write.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExecutionOut {
    /// `executing`, `executed` or `failed`.
    pub status: String,
    pub attempts: i64,
    /// The record after the write (redacted), when `executed`.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Why the write failed, when `failed`.
    pub error: Option<String>,
    pub executed_at: Option<String>,
    /// While an HTTP write is `executing`: until when this attempt holds it.
    pub lease_until: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ApprovalDetail {
    #[serde(flatten)]
    pub approval: ApprovalOut,
    pub decisions: Vec<DecisionOut>,
    pub execution: Option<ExecutionOut>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ApprovalList {
    pub items: Vec<ApprovalOut>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn require_reader(principal: &Principal) -> Result<()> {
    principal.require_any(
        &[Role::Viewer, Role::Approver, Role::Operator],
        "reading approvals",
    )
}

/// An approval id from the path; one that cannot exist is simply not found.
fn parse_id(raw: &str) -> Result<ApprovalId> {
    ApprovalId::parse(raw).map_err(|_| Error::not_found(format!("approval {raw}")))
}

async fn detail(db: &Db, tenant: &TenantId, id: &ApprovalId) -> Result<ApprovalDetail> {
    let a = approvals::get(db, tenant, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("approval {id}")))?;
    let decisions = approvals::decisions(db, tenant, id)
        .await?
        .into_iter()
        .map(|d| DecisionOut {
            approver: d.approver,
            approver_name: d.approver_name,
            decision: d.decision,
            reason: d.reason,
            request_id: d.request_id,
            decided_at: rfc3339(d.decided_at),
        })
        .collect();
    let execution =
        matches!(a.status.as_str(), "executing" | "executed" | "failed").then(|| ExecutionOut {
            status: a.status.clone(),
            attempts: a.attempts,
            result: a.result.clone(),
            error: a.error.clone(),
            executed_at: a.executed_at.map(rfc3339),
            lease_until: a.lease_until.map(rfc3339),
        });
    Ok(ApprovalDetail {
        approval: a.into(),
        decisions,
        execution,
    })
}

/// One approval request of the caller's tenant, with its decisions and execution.
#[utoipa::path(get, path = "/v1/approvals/{id}", security(("bearer" = [])),
    params(("id" = String, Path, description = "approval id")),
    responses((status = 200, body = ApprovalDetail), (status = 403, body = crate::routes::error::ErrorEnvelope),
        (status = 404, body = crate::routes::error::ErrorEnvelope)))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ApprovalDetail>> {
    require_reader(&principal)?;
    let id = parse_id(&id)?;
    Ok(Json(detail(&state.db, &principal.tenant, &id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only requests in this status.
    #[param(schema_with = super::schema::approval_status)]
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1-200, default 50.
    #[param(schema_with = super::schema::page_size)]
    pub limit: Option<u32>,
}

/// An opaque page cursor: base64url of `<tag>:<fields…>`.
pub(crate) fn encode_cursor(tag: &str, fields: &[&str]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{tag}:{}", fields.join(":")))
}

/// The fields of a cursor made by [`encode_cursor`] with this tag.
pub(crate) fn decode_cursor(tag: &str, cursor: &str, fields: usize) -> Result<Vec<String>> {
    let bad = || {
        Error::invalid("cursor is not valid: pass the next_cursor of the previous page unchanged")
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let rest = text
        .strip_prefix(tag)
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(bad)?;
    let parts: Vec<String> = rest.splitn(fields, ':').map(str::to_string).collect();
    if parts.len() != fields {
        return Err(bad());
    }
    Ok(parts)
}

pub(crate) fn page_limit(limit: Option<u32>) -> Result<i64> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(i64::from(n)),
        n => Err(Error::invalid(format!(
            "limit {n} is out of range: use 1-{MAX_LIMIT}"
        ))),
    }
}

pub(crate) fn query<T>(q: std::result::Result<Query<T>, QueryRejection>) -> Result<T> {
    q.map(|Query(v)| v)
        .map_err(|e| Error::invalid(format!("the query string is not valid: {}", e.body_text())))
}

/// The caller's tenant's approval requests, newest first.
#[utoipa::path(get, path = "/v1/approvals", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = ApprovalList), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    q: std::result::Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ApprovalList>> {
    require_reader(&principal)?;
    let q = query(q)?;
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(Error::invalid(format!(
            "status {s:?} is not one of: {}",
            STATUSES.join(", ")
        )));
    }
    let limit = page_limit(q.limit)?;
    // An empty cursor is the first page, as an absent one.
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let parts = decode_cursor("a", c, 2)?;
            let created_at = parts[0].parse().map_err(|_| {
                Error::invalid(
                    "cursor is not valid: pass the next_cursor of the previous page unchanged",
                )
            })?;
            Some(ListCursor {
                created_at,
                id: parts[1].clone(),
            })
        }
    };
    let mut rows = approvals::list(
        &state.db,
        &principal.tenant,
        q.status.as_deref(),
        cursor.as_ref(),
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last())
        .flatten()
        .map(|a| encode_cursor("a", &[&a.created_at.to_string(), a.id.as_str()]));
    Ok(Json(ApprovalList {
        items: rows.into_iter().map(ApprovalOut::from).collect(),
        next_cursor,
    }))
}

/// [`super::idempotency::idempotent`] for handlers whose success is always a 200.
pub(crate) async fn idempotent<F, Fut>(
    state: &AppState,
    tenant: &TenantId,
    key: Option<String>,
    scope: &str,
    raw: &[u8],
    work: F,
) -> Result<Response>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<String>>,
{
    super::idempotency::idempotent(state, tenant, key, scope, raw, || async move {
        work().await.map(|body| (StatusCode::OK, body))
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Why: 1-2000 characters, kept in the audit log (redacted).
    #[schema(schema_with = super::schema::reason)]
    pub reason: String,
}

/// A required reason: not blank, at most [`MAX_REASON_CHARS`] characters.
pub(crate) fn check_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(Error::invalid(
            "reason must not be empty: say why, it is kept in the audit log",
        ));
    }
    let n = reason.chars().count();
    if n > MAX_REASON_CHARS {
        return Err(Error::invalid(format!(
            "reason is {n} characters long; the limit is {MAX_REASON_CHARS}"
        )));
    }
    Ok(())
}

/// A JSON body that must carry a reason; an empty body is a missing reason.
pub(crate) fn parse_with_reason<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(T, Bytes)> {
    if matches!(&body, Ok(b) if b.iter().all(u8::is_ascii_whitespace)) {
        return Err(Error::invalid(
            "a reason is required: send {\"reason\": \"…\"} as JSON",
        ));
    }
    super::parse_json(headers, body)
}

async fn decide(
    state: AppState,
    principal: Principal,
    request_id: String,
    id: String,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
    verdict: Verdict,
) -> Result<Response> {
    principal.require(Role::Approver)?;
    let key = idempotency_key(&headers)?;
    let (req, raw): (DecisionRequest, Bytes) = parse_with_reason(&headers, body)?;
    check_reason(&req.reason)?;
    let verb = match verdict {
        Verdict::Approve => "approve",
        Verdict::Reject => "reject",
    };
    let scope = format!("POST /v1/approvals/{id}/{verb}");
    let tenant = principal.tenant.clone();
    idempotent(&state, &tenant, key, &scope, &raw, || async {
        let id = parse_id(&id)?;
        state
            .engine
            .approvals
            .decide(&principal, &id, verdict, &req.reason, &request_id)
            .await?;
        let out = detail(&state.db, &principal.tenant, &id).await?;
        serde_json::to_string(&out).map_err(Error::internal_from)
    })
    .await
}

/// Approves a pending request (role `approver`, never the requester). The last approval it
/// needs executes the write before this returns; the reply shows the outcome.
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", security(("bearer" = [])), request_body = DecisionRequest,
    params(("id" = String, Path, description = "approval id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7e]([\\t\\x20-\\x7e]*[\\x21-\\x7e])?$", description = "replays the first response for the same key and body")),
    responses((status = 200, body = ApprovalDetail), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope, description = "not an approver, or the requester (separation of duties)"),
        (status = 404, body = crate::routes::error::ErrorEnvelope),
        (status = 409, body = crate::routes::error::ErrorEnvelope, description = "already decided (conflict), or writes_frozen"),
        (status = 422, body = crate::routes::error::ErrorEnvelope)))]
pub async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    decide(
        state,
        principal,
        request_id,
        id,
        headers,
        body,
        Verdict::Approve,
    )
    .await
}

/// Rejects a pending request (role `approver`, never the requester); final.
#[utoipa::path(post, path = "/v1/approvals/{id}/reject", security(("bearer" = [])), request_body = DecisionRequest,
    params(("id" = String, Path, description = "approval id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7e]([\\t\\x20-\\x7e]*[\\x21-\\x7e])?$", description = "replays the first response for the same key and body")),
    responses((status = 200, body = ApprovalDetail), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope), (status = 404, body = crate::routes::error::ErrorEnvelope),
        (status = 409, body = crate::routes::error::ErrorEnvelope), (status = 422, body = crate::routes::error::ErrorEnvelope)))]
pub async fn reject(
    State(state): State<AppState>,
    principal: Principal,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    decide(
        state,
        principal,
        request_id,
        id,
        headers,
        body,
        Verdict::Reject,
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Only requests proposed by a release on this track (`stable`, `canary`).
    #[schema(schema_with = super::schema::release_filter)]
    pub track: Option<String>,
    /// Only requests proposed by this release version.
    #[schema(schema_with = super::schema::release_filter)]
    pub version: Option<String>,
    /// Why: 1-2000 characters, kept in the audit log.
    #[schema(schema_with = super::schema::reason)]
    pub reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CancelResponse {
    pub cancelled: usize,
    pub ids: Vec<String>,
}

fn check_filter(name: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) if v.is_empty() || v.chars().count() > 128 || v.chars().any(char::is_control) => {
            Err(Error::invalid(format!(
                "{name} must be 1-128 printable characters"
            )))
        }
        _ => Ok(()),
    }
}

/// Cancels the tenant's pending requests proposed by a release (role `operator`): e.g. an
/// aborted canary's writes. At least one of `track` and `version` is required.
#[utoipa::path(post, path = "/v1/approvals/cancel", security(("bearer" = [])), request_body = CancelRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7e]([\\t\\x20-\\x7e]*[\\x21-\\x7e])?$", description = "replays the first response for the same key and body")),
    responses((status = 200, body = CancelResponse), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope), (status = 422, body = crate::routes::error::ErrorEnvelope)))]
pub async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    principal.require(Role::Operator)?;
    let key = idempotency_key(&headers)?;
    let (req, raw): (CancelRequest, Bytes) = parse_with_reason(&headers, body)?;
    check_reason(&req.reason)?;
    check_filter("track", req.track.as_deref())?;
    check_filter("version", req.version.as_deref())?;
    if req.track.is_none() && req.version.is_none() {
        return Err(Error::invalid(
            "give at least one filter, track or version, so a cancel cannot empty the whole queue",
        ));
    }
    let tenant = principal.tenant.clone();
    idempotent(
        &state,
        &tenant,
        key,
        "POST /v1/approvals/cancel",
        &raw,
        || async {
            let ids = state
                .engine
                .approvals
                .cancel(
                    &principal,
                    req.track.as_deref(),
                    req.version.as_deref(),
                    &req.reason,
                    &request_id,
                )
                .await?;
            serde_json::to_string(&CancelResponse {
                cancelled: ids.len(),
                ids: ids.into_iter().map(ApprovalId::into_string).collect(),
            })
            .map_err(Error::internal_from)
        },
    )
    .await
}

/// One event of the stream, for the approvals console.
fn sse_event(ev: &audit::Event) -> Event {
    let name = ev
        .action
        .strip_prefix(APPROVAL_ACTION_PREFIX)
        .unwrap_or(&ev.action);
    let payload = json!({
        "seq": ev.seq,
        "event": name,
        "approval_id": ev.resource.strip_prefix("approval/").unwrap_or(&ev.resource),
        "status": ev.details.get("status"),
        "at": rfc3339(ev.at),
        "actor": ev.actor,
        "request_id": ev.request_id,
        "details": ev.details,
    });
    Event::default()
        .id(ev.seq.to_string())
        .event(name)
        .json_data(payload)
        .unwrap_or_else(|_| Event::default().id(ev.seq.to_string()).event(name))
}

struct Subscription {
    db: Db,
    chain: Chain,
    last_seq: i64,
    buffered: VecDeque<audit::Event>,
    changes: watch::Receiver<u64>,
    shutdown: Shutdown,
}

impl Subscription {
    /// The next event: buffered, else from the database, else after a wake-up (a change in
    /// this process, or the poll interval for changes of other replicas).
    async fn next(mut self) -> Option<(Event, Self)> {
        loop {
            if let Some(ev) = self.buffered.pop_front() {
                self.last_seq = ev.seq;
                let event = sse_event(&ev);
                return Some((event, self));
            }
            if self.shutdown.is_stopping() {
                return None;
            }
            // Seen before the read, so a change committed during it still wakes us.
            let seen = *self.changes.borrow_and_update();
            tracing::trace!(seen, "reading approval events");
            match audit::after(
                &self.db,
                &self.chain,
                self.last_seq,
                APPROVAL_ACTION_PREFIX,
                EVENT_PAGE,
            )
            .await
            {
                Ok(events) if !events.is_empty() => {
                    self.buffered.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reading approval events failed; retrying"),
            }
            let shutdown = self.shutdown.clone();
            tokio::select! {
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(EVENT_POLL).await;
                    }
                }
                _ = tokio::time::sleep(EVENT_POLL) => {}
                () = shutdown.wait() => return None,
            }
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The same as the `Last-Event-ID` header, for clients that cannot set headers.
    pub last_event_id: Option<String>,
}

fn parse_event_id(raw: &str) -> Result<i64> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            Error::invalid(format!(
                "Last-Event-ID {raw:?} is not valid: send the id of the last event received (a number)"
            ))
        })
}

/// The tenant's approval events as Server-Sent Events: `created`, `approved` (each
/// decision), `rejected`, `executing`, `executed`, `failed`, `expired`, `cancelled`. Each
/// event's `id` is its audit sequence number: reconnect with `Last-Event-ID` to receive
/// every event after it, without gaps or duplicates. Without it, only new events.
#[utoipa::path(get, path = "/v1/approvals/events", security(("bearer" = [])), params(EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this event id")),
    responses((status = 200, content_type = "text/event-stream", description = "events: created, approved, rejected, executing, executed, failed, expired, cancelled"),
        (status = 400, body = crate::routes::error::ErrorEnvelope), (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn events(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    q: std::result::Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    require_reader(&principal)?;
    let q = query(q)?;
    let header_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| Error::invalid("Last-Event-ID must be printable ASCII"))
        })
        .transpose()?;
    let chain = Chain::Tenant(principal.tenant.clone());
    let last_seq = match header_id.or(q.last_event_id.as_deref()) {
        Some(raw) => parse_event_id(raw)?,
        None => audit::head_seq(&state.db, &chain).await?,
    };
    let sub = Subscription {
        db: state.db.clone(),
        chain,
        last_seq,
        buffered: VecDeque::new(),
        changes: state.engine.approvals.subscribe(),
        shutdown: state.shutdown.clone(),
    };
    tracing::info!(last_seq, "approval event stream opened");
    let stream = futures::stream::unfold(sub, |sub| async move {
        sub.next().await.map(|(ev, sub)| (Ok(ev), sub))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let c = encode_cursor("a", &["1700000000000", "apr_x:y"]);
        assert_eq!(
            decode_cursor("a", &c, 2).expect("valid"),
            vec!["1700000000000".to_string(), "apr_x:y".to_string()]
        );
        assert!(decode_cursor("b", &c, 2).is_err(), "another list's cursor");
        assert!(decode_cursor("a", "not base64!", 2).is_err());
        assert!(decode_cursor("a", &encode_cursor("a", &["1"]), 2).is_err());
    }

    #[test]
    fn reasons_are_required_and_bounded() {
        assert!(check_reason("looks right").is_ok());
        assert!(check_reason("  ").is_err());
        assert!(check_reason(&"x".repeat(MAX_REASON_CHARS)).is_ok());
        assert!(check_reason(&"é".repeat(MAX_REASON_CHARS + 1)).is_err());
    }

    #[test]
    fn event_ids_are_non_negative_numbers() {
        assert_eq!(parse_event_id(" 42 ").expect("valid"), 42);
        assert!(parse_event_id("-1").is_err());
        assert!(parse_event_id("abc").is_err());
    }
}
