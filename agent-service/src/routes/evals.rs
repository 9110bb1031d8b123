//! Eval suites, runs and reports: `GET /v1/evals/suites`, `POST /v1/evals/runs`
//! (queued; a worker of this release runs it), `GET /v1/evals/runs`,
//! `GET /v1/evals/runs/{id}` (the JSON report) and its Markdown and JUnit XML renderings.

use super::Path;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::approvals::{decode_cursor, encode_cursor, page_limit, query};
use crate::domain::Principal;
use crate::domain::Role;
use crate::error::{Error, ErrorCode, Result};
pub use crate::evals::document::{EvalRunOut, Progress, ReportLinks, run_document};
use crate::evals::gate::Verdict;
use crate::evals::report::{self, Finished};
use crate::evals::result::{CaseResult, Versions};
use crate::evals::store::{self, EvalRun, ListFilter, NewRun, Origin, RunState};
use crate::evals::suite;

#[derive(Serialize, utoipa::ToSchema)]
pub struct SuiteOut {
    pub name: String,
    /// `golden` (expected behaviour) or `adversarial` (must be blocked or gated).
    pub kind: String,
    pub description: String,
    pub cases: usize,
    pub workflows: Vec<String>,
    /// Recorded with every run of the suite.
    pub hash: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SuiteList {
    pub items: Vec<SuiteOut>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// A suite name from `GET /v1/evals/suites`.
    #[schema(schema_with = super::schema::eval_suite)]
    pub suite: String,
    /// A completed run of the same suite to compare with, or `latest` for the newest one.
    pub baseline_run_id: Option<String>,
}

/// A run in a list: enough to plot pass rate across releases and find a version's gate.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EvalRunSummary {
    pub id: String,
    pub suite: String,
    pub status: RunState,
    pub progress: Progress,
    pub versions: Versions,
    pub baseline_run_id: Option<String>,
    /// Null until the run completed.
    pub gate: Option<Verdict>,
    pub pass_rate: Option<f64>,
    pub policy_compliance: Option<f64>,
    pub citation_rate: Option<f64>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EvalRunList {
    pub items: Vec<EvalRunSummary>,
    pub next_cursor: Option<String>,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

fn summary(run: EvalRun) -> EvalRunSummary {
    let scores = run.outcome.as_ref().map(|o| &o.scores);
    EvalRunSummary {
        gate: run.outcome.as_ref().map(|o| o.gate.verdict),
        pass_rate: scores.map(|s| s.pass_rate),
        policy_compliance: scores.and_then(|s| s.policy_compliance),
        citation_rate: scores.and_then(|s| s.citation_rate),
        progress: Progress {
            done: run.done,
            total: run.total,
        },
        created_at: rfc3339(run.created_at),
        finished_at: run.finished_at.map(rfc3339),
        id: run.id,
        suite: run.suite,
        status: run.status,
        versions: run.versions,
        baseline_run_id: run.baseline_run_id,
    }
}

fn require_reader(p: &Principal) -> Result<()> {
    p.require_any(&[Role::Viewer, Role::Operator], "reading evals")
}

fn shipped_suites() -> Result<Vec<suite::Suite>> {
    suite::builtin().map_err(|e| {
        Error::internal(format!("the shipped eval suites do not parse: {e}")).with_source(e)
    })
}

/// The eval suites this release ships.
#[utoipa::path(get, path = "/v1/evals/suites", security(("bearer" = [])),
    responses((status = 200, body = SuiteList), (status = 401, body = crate::routes::error::ErrorEnvelope),
        (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn suites(principal: Principal) -> Result<Json<SuiteList>> {
    require_reader(&principal)?;
    let items = shipped_suites()?
        .into_iter()
        .map(|s| SuiteOut {
            kind: s.kind.as_str().into(),
            cases: s.cases.len(),
            workflows: s.workflows(),
            name: s.name,
            description: s.description,
            hash: s.hash,
        })
        .collect();
    Ok(Json(SuiteList {
        items,
        next_cursor: None,
    }))
}

/// Starts an eval run: answers 202 at once; a worker of this release runs the suite in the
/// `eval` tenant and `GET /v1/evals/runs/{id}` shows its progress, then its report.
#[utoipa::path(post, path = "/v1/evals/runs", security(("bearer" = [])), request_body = CreateRun,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7e]([\\t\\x20-\\x7e]*[\\x21-\\x7e])?$", description = "replays the first response for the same key and body")),
    responses(
        (status = 202, body = EvalRunOut, description = "queued; poll GET /v1/evals/runs/{id}"),
        (status = 400, body = crate::routes::error::ErrorEnvelope, description = "unknown suite, or a baseline of another suite"),
        (status = 401, body = crate::routes::error::ErrorEnvelope), (status = 403, body = crate::routes::error::ErrorEnvelope),
        (status = 404, body = crate::routes::error::ErrorEnvelope, description = "no such baseline run"),
        (status = 409, body = crate::routes::error::ErrorEnvelope, description = "the baseline run has not completed"),
        (status = 422, body = crate::routes::error::ErrorEnvelope)))]
pub async fn create_run(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    principal.require(Role::Operator)?;
    let (req, raw): (CreateRun, Bytes) = super::parse_json(&headers, body)?;
    let key = super::idempotency::idempotency_key(&headers)?;
    let tenant = principal.tenant.clone();
    super::idempotency::idempotent(
        &state,
        &tenant,
        key,
        "POST /v1/evals/runs",
        &raw,
        || async {
            let run = queue_run(&state, &principal, req).await?;
            let body = serde_json::to_string(&run_document(run, Vec::new()))
                .map_err(Error::internal_from)?;
            Ok((StatusCode::ACCEPTED, body))
        },
    )
    .await
}

async fn queue_run(state: &AppState, principal: &Principal, req: CreateRun) -> Result<EvalRun> {
    let suites = shipped_suites()?;
    let Some(suite) = suites.iter().find(|s| s.name == req.suite) else {
        let known: Vec<&str> = suites.iter().map(|s| s.name.as_str()).collect();
        return Err(Error::invalid(format!(
            "unknown suite {:?}; known suites: {}",
            req.suite,
            known.join(", ")
        )));
    };
    let baseline = match req.baseline_run_id.as_deref() {
        None => None,
        Some("latest") => store::latest_completed(&state.db, &principal.tenant, &suite.name)
            .await?
            .map(|r| r.id),
        Some(id) => {
            let base = store::get(&state.db, &principal.tenant, id)
                .await?
                .ok_or_else(|| Error::not_found(format!("baseline eval run {id}")))?;
            if base.suite != suite.name {
                return Err(Error::invalid(format!(
                    "baseline run {id} is of suite {:?}, not {:?}: compare runs of the same suite",
                    base.suite, suite.name
                )));
            }
            if base.status != RunState::Completed {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!(
                        "baseline run {id} is {}, not completed; wait for it or pick another",
                        base.status.as_str()
                    ),
                ));
            }
            Some(base.id)
        }
    };
    let id = store::new_run_id();
    let versions = Versions::from_info(&state.info);
    let now = state.engine.clock.now().timestamp_millis();
    let run = NewRun {
        id: &id,
        tenant: &principal.tenant,
        suite: &suite.name,
        suite_hash: &suite.hash,
        origin: Origin::Api,
        total: suite.cases.len() as u64,
        baseline_run_id: baseline.as_deref(),
        versions: &versions,
        requested_by: &principal.key_id,
        now,
    };
    store::insert(&state.db, &run, None).await?;
    state.eval_wakeup.notify_one();
    tracing::info!(eval_run = %id, suite = %suite.name, baseline = ?baseline, "eval run queued");
    // As stored, whatever the worker has done with it since.
    Ok(run.as_queued())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only runs of this suite.
    pub suite: Option<String>,
    /// Only runs against this release version.
    pub version: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1-200, default 50.
    #[param(schema_with = super::schema::page_size)]
    pub limit: Option<u32>,
}

const CURSOR_TAG: &str = "evr";

/// The tenant's eval runs, newest first.
#[utoipa::path(get, path = "/v1/evals/runs", security(("bearer" = [])), params(RunsQuery),
    responses((status = 200, body = EvalRunList), (status = 400, body = crate::routes::error::ErrorEnvelope),
        (status = 401, body = crate::routes::error::ErrorEnvelope), (status = 403, body = crate::routes::error::ErrorEnvelope)))]
pub async fn list_runs(
    State(state): State<AppState>,
    principal: Principal,
    q: std::result::Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<EvalRunList>> {
    require_reader(&principal)?;
    let q = query(q)?;
    let limit = page_limit(q.limit)?;
    // An empty cursor is the first page, as an absent one.
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => {
            let parts = decode_cursor(CURSOR_TAG, c, 2)?;
            let at = parts[0].parse::<i64>().map_err(|_| {
                Error::invalid(
                    "cursor is not valid: pass the next_cursor of the previous page unchanged",
                )
            })?;
            Some((at, parts[1].clone()))
        }
    };
    // One more than asked, to know whether there is a next page.
    let mut runs = store::list(
        &state.db,
        &principal.tenant,
        &ListFilter {
            suite: q.suite,
            release_version: q.version,
            before,
            limit: u32::try_from(limit + 1).unwrap_or(u32::MAX),
        },
    )
    .await?;
    let more = runs.len() as i64 > limit;
    runs.truncate(limit as usize);
    let next_cursor = more
        .then(|| runs.last())
        .flatten()
        .map(|r| encode_cursor(CURSOR_TAG, &[&r.created_at.to_string(), &r.id]));
    Ok(Json(EvalRunList {
        items: runs.into_iter().map(summary).collect(),
        next_cursor,
    }))
}

async fn load(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<(EvalRun, Vec<CaseResult>)> {
    require_reader(principal)?;
    let mut run = store::get(&state.db, &principal.tenant, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("eval run {id}")))?;
    let cases = store::case_results(&state.db, id).await?;
    // The cases were read after the run: a case recorded in between counts as done.
    run.done = run.done.max(cases.len() as u64);
    Ok((run, cases))
}

/// One run: progress while it runs; then the full report with scores, gate, baseline diff
/// and every case's assertions (expected vs actual).
#[utoipa::path(get, path = "/v1/evals/runs/{id}", security(("bearer" = [])),
    params(("id" = String, Path, description = "eval run id")),
    responses((status = 200, body = EvalRunOut),
        (status = 403, body = crate::routes::error::ErrorEnvelope, description = "the key has neither the viewer nor the operator role"),
        (status = 404, body = crate::routes::error::ErrorEnvelope)))]
pub async fn get_run(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<EvalRunOut>> {
    let (run, cases) = load(&state, &principal, &id).await?;
    Ok(Json(run_document(run, cases)))
}

async fn finished_report(
    state: &AppState,
    principal: &Principal,
    id: &str,
    render: fn(&Finished) -> String,
    content_type: &'static str,
) -> Result<Response> {
    let (run, cases) = load(state, principal, id).await?;
    let Some(outcome) = &run.outcome else {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "eval run {id} has status {} ({} of {} cases done); reports exist only for completed runs",
                run.status.as_str(),
                run.done,
                run.total
            ),
        ));
    };
    let body = render(&Finished {
        run: &run,
        outcome,
        cases: &cases,
    });
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response())
}

/// The report of a completed run as Markdown: summary table, gate, versions, baseline
/// diff, failures with expected vs actual, every case.
#[utoipa::path(get, path = "/v1/evals/runs/{id}/report.md", security(("bearer" = [])),
    params(("id" = String, Path, description = "eval run id")),
    responses((status = 200, content_type = "text/markdown", body = String),
        (status = 403, body = crate::routes::error::ErrorEnvelope, description = "the key has neither the viewer nor the operator role"),
        (status = 404, body = crate::routes::error::ErrorEnvelope),
        (status = 409, body = crate::routes::error::ErrorEnvelope, description = "the run has not completed")))]
pub async fn report_markdown(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response> {
    finished_report(
        &state,
        &principal,
        &id,
        report::markdown,
        "text/markdown; charset=utf-8",
    )
    .await
}

/// The report of a completed run as JUnit XML: one testcase per case, `failure` for a
/// failed assertion, `error` for a failed run; versions and gate as properties.
#[utoipa::path(get, path = "/v1/evals/runs/{id}/report.xml", security(("bearer" = [])),
    params(("id" = String, Path, description = "eval run id")),
    responses((status = 200, content_type = "application/xml", body = String),
        (status = 403, body = crate::routes::error::ErrorEnvelope, description = "the key has neither the viewer nor the operator role"),
        (status = 404, body = crate::routes::error::ErrorEnvelope),
        (status = 409, body = crate::routes::error::ErrorEnvelope, description = "the run has not completed")))]
pub async fn report_junit(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response> {
    finished_report(
        &state,
        &principal,
        &id,
        report::junit,
        "application/xml; charset=utf-8",
    )
    .await
}
