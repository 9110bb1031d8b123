//! Notification receivers and deliveries, per tenant: `POST/GET /v1/admin/receivers`,
//! `GET/DELETE /v1/admin/receivers/{id}`, `POST /v1/admin/receivers/{id}/test`,
//! `GET /v1/admin/deliveries`, `GET /v1/admin/deliveries/{id}` and
//! `POST /v1/admin/deliveries/{id}/retry` — the wire side of [`crate::notify`].
//!
//! Managing receivers needs the `admin` role; reading them and their deliveries `admin` or
//! `operator`. A receiver's URL and secret are write-only: they are sealed before they are
//! stored, never returned, and never logged (the request body is not logged, and no error
//! message repeats them).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::approvals::rfc3339;
use super::idempotency::{idempotency_key, idempotent};
use super::request_id::RequestId;
use super::to_json;
use crate::db::audit::{self, Chain, NewEvent};
use crate::db::jobs::JobStatus;
use crate::db::notifications::{self as store, Delivery, DeliveryFilter, NewReceiver, Receiver};
use crate::domain::{EventId, JobId, Principal, ReceiverId, Role};
use crate::error::{Error, Result};
use crate::notify::format::PAGERDUTY_EVENTS_URL;
use crate::notify::seal::SecretBox;
use crate::notify::{EventKind, Format, emit_test, sign};

const MAX_NAME_CHARS: usize = 100;
const MAX_URL: usize = 2048;
const MAX_ROUTING_KEY: usize = 128;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;
const CURSOR_PREFIX: &str = "deliveries:v1:";

fn receiver_name() -> utoipa::openapi::schema::Object {
    super::schema::not_blank(
        Some(100),
        "1-100 characters, shown in lists and in test notifications.",
    )
}

fn receiver_format() -> utoipa::openapi::schema::Object {
    super::schema::one_of(
        &["webhook", "slack", "pagerduty"],
        "`webhook` (signed JSON events), `slack` (incoming-webhook messages) or `pagerduty` (Events API v2).",
    )
}

/// A receiver to create. Not `Debug`: it holds the secret.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReceiverRequest {
    /// 1-100 characters, shown in lists and in test notifications.
    #[schema(schema_with = receiver_name)]
    pub name: String,
    /// `webhook` (signed JSON events), `slack` (incoming-webhook messages) or `pagerduty`
    /// (Events API v2).
    #[schema(schema_with = receiver_format)]
    pub format: String,
    /// An http(s) URL the egress guard allows (`EGRESS_ALLOWLIST` for private addresses).
    /// Required for `webhook` and `slack` (a Slack webhook URL is itself the credential);
    /// for `pagerduty` it defaults to `https://events.pagerduty.com/v2/enqueue`.
    /// Write-only: stored sealed, never returned.
    pub url: Option<String>,
    /// `webhook`: the signing secret, `whsec_` and the base64 of 24-64 random bytes
    /// (required). `pagerduty`: the integration's routing key (required). `slack`: not
    /// allowed. Write-only: stored sealed, never returned or logged.
    pub secret: Option<String>,
    /// The event kinds to send: `approval.created`, `approval.expiring`,
    /// `approval.decided`, `approval.executed`, `approval.failed`, `freeze.on`,
    /// `freeze.off`, `budget.burn`, `quality.alert`, `circuit.open`, `circuit.closed`.
    /// Omitted or empty: every kind.
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReceiverOut {
    /// `rcv_…`.
    pub id: String,
    pub tenant: String,
    pub name: String,
    /// `webhook`, `slack` or `pagerduty`.
    pub format: String,
    /// The URL's scheme, host and port only (the rest may be a credential).
    pub url_hint: String,
    /// The event kinds it gets; empty: every kind.
    pub events: Vec<String>,
    /// Whether a secret (signing secret or routing key) is stored; never the secret.
    pub has_secret: bool,
    /// The key id that created it.
    pub created_by: String,
    pub created_at: String,
}

impl From<Receiver> for ReceiverOut {
    fn from(r: Receiver) -> Self {
        Self {
            id: r.id.into_string(),
            tenant: r.tenant,
            name: r.name,
            format: r.format,
            url_hint: r.url_hint,
            events: r.events,
            has_secret: r.secret_sealed.is_some(),
            created_by: r.created_by,
            created_at: rfc3339(r.created_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReceiverList {
    pub items: Vec<ReceiverOut>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestOut {
    /// The test event's id (`evt_…`): the `webhook-id` of its delivery.
    pub event_id: String,
    /// The delivery's id: follow it at `/v1/admin/deliveries/{id}`.
    pub delivery_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryError {
    /// `delivery_failed` (an attempt failed in a way worth retrying) or `delivery_refused`
    /// (retrying cannot help: the egress guard or the receiver refused, or it was deleted).
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    /// The delivery's id (`job_…`: it is a job of kind `notify` in the queue).
    pub id: String,
    pub receiver_id: String,
    pub receiver_name: String,
    /// The event's id: the `webhook-id` header of every attempt.
    pub event_id: String,
    /// The event kind, e.g. `approval.created`.
    pub event_kind: String,
    /// `queued` (waiting for its next attempt), `running`, `succeeded` (delivered),
    /// `failed` (refused; not retried), `dead` (every attempt failed: a dead letter) or
    /// `cancelled`.
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    /// When the next attempt is due, while `queued`.
    pub next_attempt_at: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<DeliveryError>,
    /// The receiver's HTTP status when it was delivered.
    pub response_status: Option<i64>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id.into_string(),
            receiver_id: d.receiver_id,
            receiver_name: d.receiver_name,
            event_id: d.event_id,
            event_kind: d.event_kind,
            status: d.status.as_str().to_string(),
            attempts: d.attempts,
            max_attempts: d.max_attempts,
            next_attempt_at: (d.status == JobStatus::Queued).then(|| rfc3339(d.run_after)),
            last_error: d.error_code.map(|code| DeliveryError {
                code,
                message: d.error_message.unwrap_or_default(),
            }),
            response_status: d.response_status,
            created_at: rfc3339(d.created_at),
            finished_at: d.finished_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only this receiver's deliveries.
    pub receiver_id: Option<String>,
    /// Only this event's deliveries.
    pub event_id: Option<String>,
    /// `queued`, `running`, `succeeded`, `failed`, `dead` (dead letters) or `cancelled`.
    #[param(schema_with = super::schema::job_status)]
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1-100 (default 50).
    #[param(schema_with = super::schema::job_page_size)]
    pub limit: Option<u32>,
}

fn require_reader(principal: &Principal) -> Result<()> {
    principal.require_any(
        &[Role::Admin, Role::Operator],
        "reading notification receivers and deliveries",
    )
}

fn secret_box(state: &AppState) -> Result<SecretBox> {
    let key = state.settings.notify.notify_secret_key.as_ref().ok_or_else(|| {
        Error::invalid(
            "receivers need NOTIFY_SECRET_KEY to be set on the service (their URLs and secrets are stored encrypted with it); set it to 32 random bytes in base64",
        )
    })?;
    SecretBox::new(key).map_err(Error::internal)
}

/// `scheme://host[:port]` of a URL: what may be shown of it.
fn url_hint(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{}://{host}:{p}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// A checked receiver: its format, URL, secret and event kinds.
struct Checked {
    name: String,
    format: Format,
    url: url::Url,
    secret: Option<String>,
    events: Vec<String>,
}

fn check(state: &AppState, req: CreateReceiverRequest) -> Result<Checked> {
    let name = req.name.trim().to_string();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(Error::invalid(format!(
            "name must be 1-{MAX_NAME_CHARS} characters"
        )));
    }
    let format = Format::parse(&req.format).map_err(Error::invalid)?;
    let raw_url = match (format, req.url) {
        (_, Some(u)) => u,
        (Format::PagerDuty, None) => PAGERDUTY_EVENTS_URL.to_string(),
        (_, None) => {
            return Err(Error::invalid(format!(
                "url is required for a {} receiver",
                format.as_str()
            )));
        }
    };
    if raw_url.len() > MAX_URL {
        return Err(Error::invalid(format!(
            "url is longer than {MAX_URL} characters"
        )));
    }
    // The URL may hold a credential (a Slack webhook's path): no message repeats it.
    let url = url::Url::parse(raw_url.trim())
        .map_err(|e| Error::invalid(format!("url is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::invalid(
            "url must be an http:// or https:// URL with a host",
        ));
    }
    state
        .jobs
        .egress()
        .check_url(&url)
        .map_err(|d| Error::invalid(format!("url is refused: {}", d.message())))?;
    let secret = match (format, req.secret) {
        (Format::Webhook, Some(s)) => {
            sign::parse_secret(&s).map_err(|m| Error::invalid(format!("secret: {m}")))?;
            Some(s)
        }
        (Format::Webhook, None) => {
            return Err(Error::invalid(
                "a webhook receiver needs a secret to sign with: whsec_ and the base64 of 24-64 random bytes, e.g. whsec_$(openssl rand -base64 32)",
            ));
        }
        (Format::PagerDuty, Some(s)) => {
            let ok = !s.is_empty()
                && s.len() <= MAX_ROUTING_KEY
                && s.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(Error::invalid(format!(
                    "secret: a PagerDuty routing key is 1-{MAX_ROUTING_KEY} printable characters without spaces"
                )));
            }
            Some(s)
        }
        (Format::PagerDuty, None) => {
            return Err(Error::invalid(
                "a pagerduty receiver needs its integration's routing key as secret",
            ));
        }
        (Format::Slack, Some(_)) => {
            return Err(Error::invalid(
                "a slack receiver takes no secret: the incoming-webhook URL is its credential",
            ));
        }
        (Format::Slack, None) => None,
    };
    let mut events: Vec<String> = Vec::new();
    for e in req.events.unwrap_or_default() {
        let kind = EventKind::parse(&e).map_err(Error::invalid)?;
        if kind == EventKind::Test {
            return Err(Error::invalid(
                "notification.test is sent only by POST /v1/admin/receivers/{id}/test; leave it out of events",
            ));
        }
        if !events.contains(&e) {
            events.push(e);
        }
    }
    Ok(Checked {
        name,
        format,
        url,
        secret,
        events,
    })
}

/// Creates a notification receiver for the caller's tenant (role `admin`).
#[utoipa::path(post, path = "/v1/admin/receivers", security(("bearer" = [])), request_body = CreateReceiverRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the first response for the same key and body")),
    responses((status = 201, body = ReceiverOut), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 401, body = crate::routes::error::ErrorEnvelope), (status = 403, body = crate::routes::error::ErrorEnvelope),
        (status = 413, body = crate::routes::error::ErrorEnvelope), (status = 415, body = crate::routes::error::ErrorEnvelope),
        (status = 422, body = crate::routes::error::ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    principal.require(Role::Admin)?;
    let (req, raw): (CreateReceiverRequest, Bytes) = super::parse_json(&headers, body)?;
    let key = idempotency_key(&headers)?;
    let checked = check(&state, req)?;
    let sealer = secret_box(&state)?;
    let id = ReceiverId::generate();
    let seal = |field: &str, value: &str| {
        sealer
            .seal(id.as_str(), field, value)
            .map_err(Error::internal)
    };
    let new = NewReceiver {
        id: id.clone(),
        tenant: principal.tenant.clone(),
        name: checked.name,
        format: checked.format.as_str().to_string(),
        url_sealed: seal("url", checked.url.as_str())?,
        url_hint: url_hint(&checked.url),
        secret_sealed: checked
            .secret
            .as_deref()
            .map(|s| seal("secret", s))
            .transpose()?,
        events: checked.events,
        created_by: principal.key_id.clone(),
        created_at: state.engine.clock.now().timestamp_millis(),
    };
    let tenant = principal.tenant.clone();
    idempotent(&state, &tenant, key, "POST /v1/admin/receivers", &raw, || async {
        let mut tx = state.db.pool().begin().await?;
        store::insert_receiver(&mut tx, &new).await?;
        let ev = NewEvent {
            chain: Chain::Tenant(tenant.clone()),
            actor: principal.key_id.clone(),
            action: "receiver.created".into(),
            resource: format!("receiver/{}", new.id),
            details: json!({"name": new.name, "format": new.format, "url_hint": new.url_hint,
                "events": new.events, "has_secret": new.secret_sealed.is_some()}),
            request_id: Some(request_id.clone()),
            policy_version: state.engine.policy.version.to_string(),
        };
        audit::append(&mut tx, &ev, new.created_at).await?;
        tx.commit().await?;
        tracing::info!(receiver_id = %new.id, format = %new.format, url_hint = %new.url_hint, "notification receiver created");
        let stored = store::get_receiver(&state.db, &tenant, &new.id)
            .await?
            .ok_or_else(|| Error::internal("the receiver just created is not there"))?;
        Ok((StatusCode::CREATED, to_json(&ReceiverOut::from(stored))?))
    })
    .await
}

/// The caller's tenant's receivers (role `admin` or `operator`), oldest first.
#[utoipa::path(get, path = "/v1/admin/receivers", security(("bearer" = [])),
    responses((status = 200, body = ReceiverList), (status = 401, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ReceiverList>> {
    require_reader(&principal)?;
    let items = store::list_receivers(&state.db, &principal.tenant)
        .await?
        .into_iter()
        .map(ReceiverOut::from)
        .collect();
    Ok(Json(ReceiverList {
        items,
        next_cursor: None,
    }))
}

async fn find(state: &AppState, principal: &Principal, id: &str) -> Result<Receiver> {
    let not_found = || Error::not_found(format!("receiver {id}"));
    let rid = ReceiverId::parse(id).map_err(|_| not_found())?;
    store::get_receiver(&state.db, &principal.tenant, &rid)
        .await?
        .ok_or_else(not_found)
}

/// One receiver of the caller's tenant (role `admin` or `operator`).
#[utoipa::path(get, path = "/v1/admin/receivers/{id}", security(("bearer" = [])),
    params(("id" = String, Path, description = "receiver id")),
    responses((status = 200, body = ReceiverOut), (status = 401, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope), (status = 404, body = crate::routes::error::ErrorEnvelope)))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ReceiverOut>> {
    require_reader(&principal)?;
    Ok(Json(find(&state, &principal, &id).await?.into()))
}

/// Deletes a receiver of the caller's tenant (role `admin`): it gets nothing more, its
/// queued deliveries fail, and its delivery history stays readable.
#[utoipa::path(delete, path = "/v1/admin/receivers/{id}", security(("bearer" = [])),
    params(("id" = String, Path, description = "receiver id")),
    responses((status = 204, description = "deleted"), (status = 401, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope), (status = 404, body = crate::routes::error::ErrorEnvelope)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<Response> {
    principal.require(Role::Admin)?;
    let r = find(&state, &principal, &id).await?;
    let now = state.engine.clock.now().timestamp_millis();
    let mut tx = state.db.pool().begin().await?;
    if !store::delete_receiver(&mut tx, &principal.tenant, &r.id, now).await? {
        tx.rollback().await?;
        return Err(Error::not_found(format!("receiver {id}")));
    }
    let ev = NewEvent {
        chain: Chain::Tenant(principal.tenant.clone()),
        actor: principal.key_id.clone(),
        action: "receiver.deleted".into(),
        resource: format!("receiver/{}", r.id),
        details: json!({"name": r.name, "format": r.format, "url_hint": r.url_hint}),
        request_id: Some(request_id),
        policy_version: state.engine.policy.version.to_string(),
    };
    audit::append(&mut tx, &ev, now).await?;
    tx.commit().await?;
    tracing::info!(receiver_id = %r.id, "notification receiver deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sends a `notification.test` event to one receiver of the caller's tenant (role `admin`);
/// its delivery is queued like any other.
#[utoipa::path(post, path = "/v1/admin/receivers/{id}/test", security(("bearer" = [])),
    params(("id" = String, Path, description = "receiver id")),
    responses((status = 202, body = TestOut), (status = 401, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope), (status = 404, body = crate::routes::error::ErrorEnvelope)))]
pub async fn test(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TestOut>)> {
    principal.require(Role::Admin)?;
    let r = find(&state, &principal, &id).await?;
    let now = state.engine.clock.now().timestamp_millis();
    let (event_id, job_id) = emit_test(
        &state.db,
        &r,
        &principal.tenant,
        json!({"receiver_id": r.id, "receiver_name": r.name, "requested_by": principal.key_name}),
        now,
        i64::from(state.settings.notify.notify_max_attempts),
    )
    .await?;
    state.metrics.queue_depth.inc();
    state.jobs.wake_worker();
    Ok((
        StatusCode::ACCEPTED,
        Json(TestOut {
            event_id: event_id.into_string(),
            delivery_id: job_id.into_string(),
        }),
    ))
}

fn encode_cursor(last: &JobId) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{last}"))
}

fn decode_cursor(cursor: &str) -> Result<JobId> {
    let bad = || Error::invalid("cursor is not valid; pass next_cursor from a previous page");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let id = text.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    JobId::parse(id).map_err(|_| bad())
}

/// The caller's tenant's notification deliveries, newest first (role `admin` or
/// `operator`); `status=dead` lists the dead letters.
#[utoipa::path(get, path = "/v1/admin/deliveries", security(("bearer" = [])), params(DeliveryParams),
    responses((status = 200, body = DeliveryList), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 401, body = crate::routes::error::ErrorEnvelope), (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    params: std::result::Result<Query<DeliveryParams>, QueryRejection>,
) -> Result<Json<DeliveryList>> {
    require_reader(&principal)?;
    let Query(p) =
        params.map_err(|e| Error::invalid(format!("the query string is not valid: {e}")))?;
    let limit = p.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    // An empty id or cursor is absent (as on every list); the status is one of its values. An id that is not of the id's shape
    // names no receiver or event, so it matches nothing: an empty page, not an error.
    let status = p
        .status
        .as_deref()
        .map(JobStatus::parse)
        .transpose()
        .map_err(Error::invalid)?;
    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let (receiver, event) = (given(&p.receiver_id), given(&p.event_id));
    let (Ok(receiver), Ok(event)) = (
        receiver.as_deref().map(ReceiverId::parse).transpose(),
        event.as_deref().map(EventId::parse).transpose(),
    ) else {
        return Ok(Json(DeliveryList {
            items: Vec::new(),
            next_cursor: None,
        }));
    };
    let filter = DeliveryFilter {
        receiver,
        event,
        status,
        before: given(&p.cursor).as_deref().map(decode_cursor).transpose()?,
    };
    let mut items =
        store::list_deliveries(&state.db, &principal.tenant, &filter, i64::from(limit) + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|d| encode_cursor(&d.id))
    } else {
        None
    };
    Ok(Json(DeliveryList {
        items: items.into_iter().map(DeliveryOut::from).collect(),
        next_cursor,
    }))
}

async fn find_delivery(state: &AppState, principal: &Principal, id: &str) -> Result<Delivery> {
    let not_found = || Error::not_found(format!("delivery {id}"));
    let jid = JobId::parse(id).map_err(|_| not_found())?;
    store::get_delivery(&state.db, &principal.tenant, &jid)
        .await?
        .ok_or_else(not_found)
}

/// One notification delivery of the caller's tenant (role `admin` or `operator`).
#[utoipa::path(get, path = "/v1/admin/deliveries/{id}", security(("bearer" = [])),
    params(("id" = String, Path, description = "delivery id")),
    responses((status = 200, body = DeliveryOut), (status = 401, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope), (status = 404, body = crate::routes::error::ErrorEnvelope)))]
pub async fn delivery(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<DeliveryOut>> {
    require_reader(&principal)?;
    Ok(Json(find_delivery(&state, &principal, &id).await?.into()))
}

/// Puts a dead or failed delivery back in the queue with fresh attempts (role `admin`);
/// 409 when it is not dead or failed.
#[utoipa::path(post, path = "/v1/admin/deliveries/{id}/retry", security(("bearer" = [])),
    params(("id" = String, Path, description = "delivery id")),
    responses((status = 202, body = DeliveryOut), (status = 401, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope), (status = 404, body = crate::routes::error::ErrorEnvelope),
        (status = 409, body = crate::routes::error::ErrorEnvelope)))]
pub async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryOut>)> {
    principal.require(Role::Admin)?;
    let d = find_delivery(&state, &principal, &id).await?;
    let now = state.engine.clock.now().timestamp_millis();
    if !store::requeue(&state.db, &principal.tenant, &d.id, now).await? {
        return Err(Error::new(
            crate::error::ErrorCode::Conflict,
            format!(
                "delivery {id} is {}; only dead or failed deliveries can be retried",
                d.status
            ),
        ));
    }
    state.metrics.queue_depth.inc();
    state.jobs.wake_worker();
    tracing::info!(delivery_id = %d.id, "notification delivery queued again");
    Ok((
        StatusCode::ACCEPTED,
        Json(find_delivery(&state, &principal, &id).await?.into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hints_keep_only_scheme_host_and_port() {
        let u =
            url::Url::parse("https://user:pw@hooks.slack.com/services/T0/B0/secret?x=1").unwrap();
        assert_eq!(url_hint(&u), "https://hooks.slack.com");
        let u = url::Url::parse("http://127.0.0.1:9000/hook").unwrap();
        assert_eq!(url_hint(&u), "http://127.0.0.1:9000");
    }

    #[test]
    fn delivery_cursors_round_trip() {
        let id = JobId::generate();
        assert_eq!(decode_cursor(&encode_cursor(&id)).unwrap(), id);
        assert!(decode_cursor("garbage").is_err());
    }
}
