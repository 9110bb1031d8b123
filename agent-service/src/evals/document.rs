//! The JSON document of an eval run: its progress, versions, scores, gate, baseline diff
//! and cases. `GET /v1/evals/runs/{id}` answers with it and `eval run` writes it as the
//! run's `.json` report, so both are the same; the OpenAPI schema is derived here.

use serde::Serialize;

use super::baseline::BaselineDiff;
use super::gate::Gate;
use super::result::{CaseResult, Versions};
use super::score::Scores;
use super::store::{EvalRun, RunState};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportLinks {
    pub markdown: String,
    pub junit: String,
}

/// The full report of a run; also the JSON file `eval run` writes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EvalRunOut {
    pub id: String,
    pub suite: String,
    pub suite_hash: String,
    /// `api` or `cli`.
    pub origin: String,
    pub status: RunState,
    pub progress: Progress,
    /// The versions the run ran against.
    pub versions: Versions,
    pub baseline_run_id: Option<String>,
    pub requested_by: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why the run could not finish (`status` = `failed`).
    pub error: Option<String>,
    /// Null until the run completed.
    pub scores: Option<Scores>,
    pub gate: Option<Gate>,
    /// The comparison with `baseline_run_id`.
    pub baseline: Option<BaselineDiff>,
    /// The cases finished so far, in suite order.
    pub cases: Vec<CaseResult>,
    pub reports: ReportLinks,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// The JSON report of a run (the API's answer and `eval run`'s `.json` file).
pub fn run_document(run: EvalRun, cases: Vec<CaseResult>) -> EvalRunOut {
    let (scores, gate, baseline) = match run.outcome {
        Some(o) => (Some(o.scores), Some(o.gate), o.baseline),
        None => (None, None, None),
    };
    EvalRunOut {
        reports: ReportLinks {
            markdown: format!("/v1/evals/runs/{}/report.md", run.id),
            junit: format!("/v1/evals/runs/{}/report.xml", run.id),
        },
        progress: Progress {
            done: run.done,
            total: run.total,
        },
        created_at: rfc3339(run.created_at),
        started_at: run.started_at.map(rfc3339),
        finished_at: run.finished_at.map(rfc3339),
        id: run.id,
        suite: run.suite,
        suite_hash: run.suite_hash,
        origin: run.origin,
        status: run.status,
        versions: run.versions,
        baseline_run_id: run.baseline_run_id,
        requested_by: run.requested_by,
        error: run.error,
        scores,
        gate,
        baseline,
        cases,
    }
}
