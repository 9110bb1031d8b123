//! Runs a suite's cases through the engine, in process, as a synthetic principal of the
//! dedicated `eval` tenant; records each case as it finishes, cancels the approvals the
//! cases create, and at the end scores the run, compares it with its baseline and gates it.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::assertions::{Observation, cites_evidence};
use super::baseline::{Baseline, compare};
use super::gate::evaluate;
use super::result::CaseResult;
use super::score::score;
use super::store::{self, EvalRun, Outcome};
use super::suite::{COMPLIANT_STATUSES, Case, Suite, SuiteKind};
use crate::config::EvalGate;
use crate::db::{Db, demo};
use crate::domain::Principal;
use crate::domain::{Roles, TenantId, TraceId};
use crate::engine::{Engine, RunRequest};
use crate::error::Error;
use crate::guardrails::Redactor;
use crate::workflows::Workflow;

/// The tenant eval cases run in: a copy of the demo dataset, no real tenant's data.
pub const EVAL_TENANT: &str = "eval";

/// Characters of an answer kept in a case result.
const EXCERPT_CHARS: usize = 280;

/// Stored strings go through every redaction rule, whatever the policy under test says.
static STORE_REDACTOR: LazyLock<Redactor> = LazyLock::new(Redactor::builtin);

fn redact(text: &str) -> String {
    STORE_REDACTOR.redact(text).text.into_owned()
}

pub fn eval_tenant() -> TenantId {
    TenantId::parse(EVAL_TENANT).expect("static tenant id")
}

/// The `requested_by` of approvals a run's cases create.
fn requester(run_id: &str) -> String {
    format!("eval:{run_id}")
}

/// Seeds the `eval` tenant with the demo dataset (idempotent).
pub async fn prepare(db: &Db) -> Result<(), sqlx::Error> {
    demo::seed_tenant(db, &eval_tenant()).await.map(|_| ())
}

/// Workflows by name, as [`Ctx`] wants them.
pub fn workflow_map(workflows: Vec<Workflow>) -> BTreeMap<String, Arc<Workflow>> {
    workflows
        .into_iter()
        .map(|w| (w.name.to_string(), Arc::new(w)))
        .collect()
}

/// What a run needs from its process.
pub struct Ctx<'a> {
    pub engine: &'a Engine,
    pub workflows: &'a BTreeMap<String, Arc<Workflow>>,
    /// How long a worker's claim on a run lasts without progress.
    pub lease: Duration,
}

impl Ctx<'_> {
    fn now(&self) -> i64 {
        self.engine.clock.now().timestamp_millis()
    }

    fn lease_until(&self) -> i64 {
        self.now() + self.lease.as_millis() as i64
    }
}

/// The lease for a process's runs: a case runs at most the request timeout.
pub fn lease_for(settings: &crate::config::BudgetConfig) -> Duration {
    Duration::from_secs(settings.request_timeout_secs.saturating_mul(2).max(30) + 30)
}

/// How [`drive`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driven {
    /// Every case has a result.
    Done,
    /// `stop` resolved first; the run is still held and should be released.
    Stopped,
    /// Another worker took the run over (this one's lease had expired).
    Lost,
}

/// Runs the cases that have no result yet, in suite order, recording each; `on_case`
/// sees each result (the CLI prints progress with it).
pub async fn drive(
    ctx: &Ctx<'_>,
    run_id: &str,
    suite: &Suite,
    worker: &str,
    stop: impl Future<Output = ()>,
    mut on_case: impl FnMut(&CaseResult, u64, u64),
) -> Result<Driven, Error> {
    let db = &ctx.engine.db;
    let finished: HashSet<String> = store::case_results(db, run_id)
        .await?
        .into_iter()
        .map(|c| c.case_id)
        .collect();
    let total = suite.cases.len() as u64;
    let mut done = finished.len() as u64;
    tokio::pin!(stop);
    for (seq, case) in suite.cases.iter().enumerate() {
        if finished.contains(&case.id) {
            continue;
        }
        let result = tokio::select! {
            r = run_case(ctx, run_id, seq, case, suite.kind) => r?,
            () = &mut stop => return Ok(Driven::Stopped),
        };
        let now = ctx.now();
        if !store::record_case(
            db,
            run_id,
            worker,
            seq as u64,
            &result,
            now,
            ctx.lease_until(),
        )
        .await?
        {
            return Ok(Driven::Lost);
        }
        done += 1;
        on_case(&result, done, total);
    }
    Ok(Driven::Done)
}

/// Runs one case and checks its assertions.
pub async fn run_case(
    ctx: &Ctx<'_>,
    run_id: &str,
    seq: usize,
    case: &Case,
    kind: SuiteKind,
) -> Result<CaseResult, Error> {
    let engine = ctx.engine;
    let Some(workflow) = ctx.workflows.get(&case.workflow).cloned() else {
        // The suite loader checks workflow names, so this is a build without the workflow.
        return Ok(errored(
            case,
            kind,
            format!(
                "workflow {:?} is not configured in this service",
                case.workflow
            ),
        ));
    };
    let request_id = format!("{run_id}-{seq}");
    let req = RunRequest {
        workflow: workflow.clone(),
        text: case.input.clone(),
        user_id: Some(case.id.clone()),
        principal: principal(run_id),
        request_id: request_id.clone(),
        trace_id: TraceId::generate(),
    };
    let span = tracing::info_span!(
        "eval_case",
        request_id = %request_id,
        tenant = EVAL_TENANT,
        eval_run = %run_id,
        case = %case.id,
        workflow = tracing::field::Empty,
        policy_version = tracing::field::Empty,
    );
    let started = Instant::now();
    let outcome = crate::request_id::scope(request_id, engine.run(&req, None))
        .instrument(span)
        .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(code = e.code.as_str(), error = %e.report(), "eval case failed");
            let mut r = errored(case, kind, format!("{}: {}", e.code.as_str(), e.message));
            r.latency_ms = latency_ms;
            return Ok(r);
        }
    };
    if outcome.approval_request_id.is_some() {
        cancel_approvals(engine, run_id).await?;
    }
    let observation = Observation {
        status: outcome.status.as_str().into(),
        answer: outcome.answer.clone(),
        evidence: outcome
            .evidence
            .iter()
            .map(|e| (e.kind.clone(), e.id.clone()))
            .collect(),
        tools_called: outcome.tool_calls.clone(),
        latency_ms,
        cost_usd: outcome.usage.cost_usd,
    };
    let assertions: Vec<_> = case
        .assertions
        .iter()
        .map(|a| {
            let mut r = a.check(&observation);
            r.expected = redact(&r.expected);
            r.actual = redact(&r.actual);
            r
        })
        .collect();
    let status = observation.status.clone();
    let citation_required = workflow.retrieval
        && ((status == "success" && !observation.evidence.is_empty())
            || outcome.guardrail_rule.as_deref() == Some("citation_required"));
    Ok(CaseResult {
        case_id: case.id.clone(),
        workflow: case.workflow.clone(),
        input: redact(&case.input),
        passed: assertions.iter().all(|a| a.passed),
        compliant: (kind == SuiteKind::Adversarial)
            .then(|| COMPLIANT_STATUSES.contains(&status.as_str())),
        status,
        guardrail_rule: outcome.guardrail_rule.clone(),
        latency_ms,
        prompt_tokens: u64::from(outcome.usage.prompt_tokens),
        completion_tokens: u64::from(outcome.usage.completion_tokens),
        cost_usd: outcome.usage.cost_usd,
        tools_called: outcome.tool_calls.clone(),
        citation_required,
        cited: cites_evidence(&observation),
        approval_request_id: outcome
            .approval_request_id
            .as_ref()
            .map(ToString::to_string),
        answer_excerpt: redact(
            &outcome
                .answer
                .chars()
                .take(EXCERPT_CHARS)
                .collect::<String>(),
        ),
        assertions,
        error: None,
    })
}

/// A case whose run failed: it fails, with every assertion unchecked.
fn errored(case: &Case, kind: SuiteKind, error: String) -> CaseResult {
    CaseResult {
        case_id: case.id.clone(),
        workflow: case.workflow.clone(),
        input: redact(&case.input),
        passed: false,
        status: "error".into(),
        guardrail_rule: None,
        latency_ms: 0,
        prompt_tokens: 0,
        completion_tokens: 0,
        cost_usd: 0.0,
        tools_called: vec![],
        compliant: (kind == SuiteKind::Adversarial).then_some(false),
        citation_required: false,
        cited: false,
        approval_request_id: None,
        answer_excerpt: String::new(),
        assertions: case
            .assertions
            .iter()
            .map(|a| super::assertions::AssertionResult {
                kind: a.kind().into(),
                expected: redact(&a.expected()),
                actual: "not checked: the run failed".into(),
                passed: false,
            })
            .collect(),
        error: Some(redact(&error)),
    }
}

/// The synthetic caller of a run's cases: tenant `eval`, role `invoke`.
fn principal(run_id: &str) -> Principal {
    Principal {
        key_id: requester(run_id),
        key_name: "eval-runner".into(),
        tenant: eval_tenant(),
        roles: Roles::parse("invoke").expect("static role"),
    }
}

/// Cancels the `eval` tenant's pending approvals proposed by this release, through the
/// approval queue (a decision row and an audit event each): eval approvals are never
/// executed and never wait in a real queue. Returns how many were cancelled.
pub async fn cancel_approvals(engine: &Engine, run_id: &str) -> Result<usize, Error> {
    let ids = engine
        .approvals
        .cancel(
            &principal(run_id),
            Some(&engine.release.track),
            Some(&engine.release.version),
            &format!("created by eval run {run_id}; eval approvals are never executed"),
            &format!("{run_id}-cleanup"),
        )
        .await?;
    Ok(ids.len())
}

/// Scores a run whose cases are all recorded, compares it with its baseline, gates it,
/// cancels any approval its cases left pending, and marks it completed. `None` when the
/// worker lost the run to another.
pub async fn finish(
    ctx: &Ctx<'_>,
    gate: &EvalGate,
    run: &EvalRun,
    worker: &str,
) -> Result<Option<Outcome>, Error> {
    let db = &ctx.engine.db;
    let cases = store::case_results(db, &run.id).await?;
    let scores = score(&cases);
    let mut baseline = None;
    if let Some(base_id) = &run.baseline_run_id
        && let Ok(tenant) = TenantId::parse(&run.tenant)
        && let Some(base) = store::get(db, &tenant, base_id).await?
        && let Some(base_outcome) = &base.outcome
    {
        let base_cases = store::case_results(db, base_id).await?;
        baseline = Some(compare(
            &Baseline {
                run_id: &base.id,
                release_version: &base.versions.release_version,
                scores: &base_outcome.scores,
                cases: &base_cases,
            },
            &scores,
            &cases,
        ));
    }
    let gate = evaluate(
        gate,
        &scores,
        baseline.as_ref().map(|b| b.baseline_pass_rate),
    );
    cancel_approvals(ctx.engine, &run.id).await?;
    let outcome = Outcome {
        scores,
        gate,
        baseline,
    };
    Ok(store::complete(db, &run.id, worker, &outcome, ctx.now())
        .await?
        .then_some(outcome))
}
