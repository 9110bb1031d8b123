//! Job-based runs: `POST /v1/jobs`, `GET /v1/jobs/{id}`, `GET /v1/jobs`,
//! `POST /v1/jobs/{id}/cancel` — the wire side of the queue in [`crate::jobs`].

use super::Path;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::idempotency::{idempotency_key, idempotent};
use super::invoke::{InvokeInput, InvokeRequest, build_run};
use super::request_id::RequestId;
use super::to_json;
use crate::db::jobs::{self as store, JobStatus, NewJob};
use crate::domain::Principal;
use crate::domain::{JobId, Role, TenantId};
use crate::error::{Error, ErrorCode, Result};
pub use crate::jobs::view::JobOut;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJobRequest {
    /// A workflow name from `/v1/workflows`.
    pub workflow: String,
    pub input: InvokeInput,
    /// The end user on whose behalf the agent acts (recorded on approvals).
    #[schema(schema_with = super::schema::user_id)]
    pub user_id: Option<String>,
    /// Where to POST the job JSON when the job finishes, signed with
    /// `X-Flightdeck-Signature: t=<unix>,v1=<hex HMAC-SHA256(JOB_CALLBACK_SECRET, "<t>.<body>")>`.
    /// Needs `JOB_CALLBACK_SECRET`; checked by the egress guard (`EGRESS_ALLOWLIST`).
    #[schema(schema_with = super::schema::callback_url)]
    pub callback_url: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobList {
    pub items: Vec<JobOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `queued`, `running`, `succeeded`, `failed`, `dead` or `cancelled`.
    #[param(schema_with = super::schema::job_status)]
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1-100 (default 50).
    #[param(schema_with = super::schema::job_page_size)]
    pub limit: Option<u32>,
}

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;
const MAX_CALLBACK_URL: usize = 2048;
const CURSOR_PREFIX: &str = "jobs:v1:";

fn encode_cursor(last_id: &JobId) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{last_id}"))
}

fn decode_cursor(cursor: &str) -> Result<JobId> {
    let bad = || Error::invalid("cursor is not valid; pass next_cursor from a previous page");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let id = text.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    if is_job_id(id) {
        JobId::parse(id).map_err(|_| bad())
    } else {
        Err(bad())
    }
}

/// `job_` and 32 lowercase hex digits, as [`JobId::generate`] makes them.
fn is_job_id(s: &str) -> bool {
    s.strip_prefix("job_").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn require_reader(principal: &Principal) -> Result<()> {
    principal.require_any(
        &[Role::Invoke, Role::Viewer, Role::Operator],
        "reading jobs",
    )
}

/// A callback URL the service can sign for and the egress guard lets through.
fn check_callback_url(state: &AppState, raw: &str) -> Result<String> {
    if state.settings.jobs.job_callback_secret.is_none() {
        return Err(Error::invalid(
            "callback_url needs JOB_CALLBACK_SECRET to be set on the service (callbacks are signed with it); set it or omit callback_url",
        ));
    }
    if raw.len() > MAX_CALLBACK_URL {
        return Err(Error::invalid(format!(
            "callback_url is longer than {MAX_CALLBACK_URL} characters"
        )));
    }
    let url = url::Url::parse(raw)
        .map_err(|e| Error::invalid(format!("callback_url is not an absolute URL: {e}")))?;
    state
        .jobs
        .egress()
        .check_url(&url)
        .map_err(|d| Error::invalid(format!("callback_url is refused: {}", d.message())))?;
    Ok(url.to_string())
}

/// Queues a workflow run; a worker runs it as soon as one is free.
#[utoipa::path(post, path = "/v1/jobs", security(("bearer" = [])), request_body = CreateJobRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7e]([\\t\\x20-\\x7e]*[\\x21-\\x7e])?$", description = "replays the first response for the same key and body")),
    responses(
        (status = 202, body = JobOut, description = "queued"),
        (status = 400, body = crate::routes::error::ErrorEnvelope), (status = 401, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope), (status = 404, body = crate::routes::error::ErrorEnvelope, description = "unknown_workflow"),
        (status = 409, body = crate::routes::error::ErrorEnvelope), (status = 413, body = crate::routes::error::ErrorEnvelope),
        (status = 422, body = crate::routes::error::ErrorEnvelope), (status = 429, body = crate::routes::error::ErrorEnvelope),
        (status = 503, body = crate::routes::error::ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let (parsed, raw): (CreateJobRequest, Bytes) = super::parse_json(&headers, body)?;
    let key = idempotency_key(&headers)?;
    let CreateJobRequest {
        workflow,
        input,
        user_id,
        callback_url,
    } = parsed;
    // Validated exactly like an invoke: role, workflow, input, user_id.
    let run = build_run(
        &state,
        principal,
        request_id,
        InvokeRequest {
            workflow,
            input,
            user_id,
        },
    )?;
    let callback_url = callback_url
        .as_deref()
        .map(|u| check_callback_url(&state, u))
        .transpose()?;
    let p = &run.principal;
    let new = NewJob {
        id: JobId::generate(),
        tenant: p.tenant.clone(),
        key_id: p.key_id.clone(),
        key_name: p.key_name.clone(),
        workflow: run.workflow.name.to_string(),
        // Stored payloads are redacted; the job runs on what is stored.
        input_text: state
            .engine
            .policy
            .redactor
            .redact(&run.text)
            .text
            .into_owned(),
        user_id: run.user_id.clone(),
        request_id: run.request_id.clone(),
        max_attempts: i64::from(state.settings.jobs.job_max_attempts),
        callback_url,
        created_at: state.engine.clock.now().timestamp_millis(),
    };
    idempotent(&state, &p.tenant, key, "POST /v1/jobs", &raw, || async {
        let job = store::insert(&state.db, &new).await?;
        state.metrics.queue_depth.inc();
        state.jobs.wake_worker();
        tracing::info!(job_id = %job.id, workflow = %job.workflow, "job queued");
        Ok((StatusCode::ACCEPTED, to_json(&JobOut::from(job))?))
    })
    .await
}

/// One job of the caller's tenant.
#[utoipa::path(get, path = "/v1/jobs/{id}", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobOut), (status = 401, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope), (status = 404, body = crate::routes::error::ErrorEnvelope)))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<JobOut>> {
    require_reader(&principal)?;
    let not_found = || Error::not_found(format!("job {id}"));
    let job_id = JobId::parse(&id).map_err(|_| not_found())?;
    store::get(&state.db, &principal.tenant, &job_id)
        .await?
        .map(|j| Json(j.into()))
        .ok_or_else(not_found)
}

/// The caller's tenant's jobs, newest first.
#[utoipa::path(get, path = "/v1/jobs", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = JobList), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 401, body = crate::routes::error::ErrorEnvelope), (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    params: std::result::Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<JobList>> {
    require_reader(&principal)?;
    let Query(params) =
        params.map_err(|e| Error::invalid(format!("the query string is not valid: {e}")))?;
    let status = params
        .status
        .as_deref()
        .map(JobStatus::parse)
        .transpose()
        .map_err(Error::invalid)?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    // An empty cursor is the first page, as an absent one.
    let before = params
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(decode_cursor)
        .transpose()?;
    let mut jobs = store::list(
        &state.db,
        &principal.tenant,
        status,
        before.as_ref(),
        i64::from(limit) + 1,
    )
    .await?;
    let more = jobs.len() > limit as usize;
    jobs.truncate(limit as usize);
    let next_cursor = if more {
        jobs.last().map(|j| encode_cursor(&j.id))
    } else {
        None
    };
    Ok(Json(JobList {
        items: jobs.into_iter().map(JobOut::from).collect(),
        next_cursor,
    }))
}

/// Cancels a job: a queued one at once (200); a running one is asked to stop and its
/// worker marks it cancelled at its next check (202); a finished one is a 409.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", security(("bearer" = [])),
    params(("id" = String, Path, description = "job id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7e]([\\t\\x20-\\x7e]*[\\x21-\\x7e])?$", description = "replays the first response for the same key")),
    responses((status = 200, body = JobOut, description = "cancelled"),
        (status = 202, body = JobOut, description = "running: cancellation requested"),
        (status = 401, body = crate::routes::error::ErrorEnvelope), (status = 403, body = crate::routes::error::ErrorEnvelope),
        (status = 404, body = crate::routes::error::ErrorEnvelope), (status = 409, body = crate::routes::error::ErrorEnvelope),
        (status = 422, body = crate::routes::error::ErrorEnvelope)))]
pub async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    principal.require_any(&[Role::Invoke, Role::Operator], "cancelling jobs")?;
    let key = idempotency_key(&headers)?;
    let route = format!("POST /v1/jobs/{id}/cancel");
    let tenant = principal.tenant.clone();
    idempotent(&state, &tenant, key, &route, b"", || {
        cancel_job(&state, &tenant, &id)
    })
    .await
}

async fn cancel_job(state: &AppState, tenant: &TenantId, id: &str) -> Result<(StatusCode, String)> {
    let id = &JobId::parse(id).map_err(|_| Error::not_found(format!("job {id}")))?;
    // A job can move between the checks (claimed, or put back for a retry): look again.
    for _ in 0..3 {
        let now = state.engine.clock.now().timestamp_millis();
        if let Some(job) = store::cancel_queued(&state.db, tenant, id, now).await? {
            state.metrics.queue_depth.dec();
            if job.callback.is_some() {
                state.jobs.wake_callbacks();
            }
            tracing::info!(job_id = %id, "queued job cancelled");
            return Ok((StatusCode::OK, to_json(&JobOut::from(job))?));
        }
        if let Some(job) = store::request_cancel(&state.db, tenant, id, now).await? {
            state.jobs.signal_cancel(id);
            tracing::info!(job_id = %id, "cancellation of a running job requested");
            return Ok((StatusCode::ACCEPTED, to_json(&JobOut::from(job))?));
        }
        match store::get(&state.db, tenant, id).await? {
            None => return Err(Error::not_found(format!("job {id}"))),
            Some(job) if job.status.is_final() => {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!(
                        "job {id} is already {}; only queued or running jobs can be cancelled",
                        job.status
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Err(Error::new(
        ErrorCode::Conflict,
        format!("job {id} kept changing state while being cancelled; retry"),
    )
    .retry_after(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = JobId::generate();
        assert!(is_job_id(id.as_str()), "{id}");
        assert_eq!(decode_cursor(&encode_cursor(&id)).expect("valid"), id);
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{CURSOR_PREFIX}job_' OR 1=1 --"));
        for bad in ["", "!!!", "am9iXzE", forged.as_str()] {
            let err = decode_cursor(bad).expect_err(bad);
            assert_eq!(err.code, ErrorCode::InvalidInput);
            assert!(err.message.contains("next_cursor"), "{}", err.message);
        }
    }
}
