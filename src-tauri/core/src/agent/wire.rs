//! The agent-service's JSON shapes as the console reads them (from `agent-service/src/routes`
//! and `/openapi.json`). Lenient on purpose: unknown fields are ignored and fields the
//! console can live without default, so a newer service does not break an older console.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A list page: `{items, next_cursor}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Health {
    pub status: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadyState {
    Ready,
    Degraded,
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Check {
    /// `ok`, `degraded` or `failing`.
    pub status: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub latency_ms: u64,
}

/// `/readyz`: also read from a 503 answer, which carries the same body.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Readiness {
    pub status: ReadyState,
    /// `database`, `provider`, `retrieval`, …
    #[serde(default)]
    pub checks: BTreeMap<String, Check>,
    /// `closed`, `open` or `half_open`: the first provider of the chain.
    #[serde(default)]
    pub circuit: String,
    /// The service's provider fallback chain (empty from services without one).
    #[serde(default)]
    pub provider_chain: ChainReadiness,
}

/// `/readyz`'s `provider_chain`: the chain's link names in order, the serving one, and
/// every provider's own check.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ChainReadiness {
    #[serde(default)]
    pub chain: Vec<String>,
    #[serde(default)]
    pub serving: Option<String>,
    #[serde(default)]
    pub links: Vec<LinkCheck>,
}

/// One provider of the chains, as `/readyz` checks it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct LinkCheck {
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub model: String,
    /// `ok`, `degraded` or `failing`.
    pub status: String,
    #[serde(default)]
    pub detail: String,
    /// `closed`, `open` or `half_open`.
    #[serde(default)]
    pub circuit: String,
    #[serde(default)]
    pub serving: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ProviderInfo {
    pub kind: String,
    pub model: String,
    #[serde(default)]
    pub scripted: bool,
    #[serde(default)]
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PromptInfo {
    pub workflow: String,
    pub version: String,
    pub hash: String,
}

/// `/v1/info`: what the "what changed" strip compares.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Info {
    pub version: String,
    #[serde(default)]
    pub git_sha: String,
    pub track: String,
    pub provider: ProviderInfo,
    #[serde(default)]
    pub prompt_version: String,
    #[serde(default)]
    pub prompts: Vec<PromptInfo>,
    #[serde(default)]
    pub tool_schema_hash: String,
    pub policy_version: String,
    #[serde(default)]
    pub policy_hash: String,
    #[serde(default)]
    pub config_hash: String,
    /// The quality of the process's recent runs; absent from older services.
    #[serde(default)]
    pub quality: Option<QualitySummary>,
}

/// `/v1/info` `quality`: the service's thresholds and its own alerts per workflow and track
/// (the rates themselves the console counts from `/metrics` over its window).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct QualitySummary {
    #[serde(default)]
    pub window_runs: u64,
    pub thresholds: QualityThresholds,
    #[serde(default)]
    pub workflows: Vec<WorkflowQuality>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct QualityThresholds {
    pub min_samples: u64,
    pub min_citation_rate: f64,
    pub max_refusal_rate: f64,
    pub max_tool_error_rate: f64,
    pub max_empty_or_truncated_rate: f64,
    pub max_approval_rejection_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct WorkflowQuality {
    pub workflow: String,
    pub track: String,
    #[serde(default)]
    pub runs: u64,
    /// Signals past their threshold: `citation_rate`, `refusal_rate`, …
    #[serde(default)]
    pub alerts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Workflow {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub prompt_version: String,
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub risk_tier: u8,
    /// `none` or `required`.
    #[serde(default)]
    pub approval: String,
    #[serde(default)]
    pub citations_required: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Tool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub parameters: Value,
    /// `read` or `write`.
    pub side_effect: String,
    #[serde(default)]
    pub approval: String,
    #[serde(default)]
    pub timeout_ms: u64,
}

/// The body of `POST /v1/invoke`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvokeRequest {
    pub workflow: String,
    pub input: InvokeInput,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvokeInput {
    pub text: String,
}

impl InvokeRequest {
    pub fn new(workflow: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            workflow: workflow.into(),
            input: InvokeInput { text: text.into() },
            user_id: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Success,
    ApprovalRequired,
    Blocked,
    BudgetExceeded,
    Degraded,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Evidence {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub cost_usd: f64,
}

/// The reply of `POST /v1/invoke`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct InvokeReply {
    pub request_id: String,
    pub status: RunStatus,
    #[serde(default)]
    pub answer: String,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    #[serde(default)]
    pub approval_request_id: Option<String>,
    #[serde(default)]
    pub proposed_change: Option<Value>,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default)]
    pub policy_version: String,
    #[serde(default)]
    pub trace_id: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub model: String,
    /// The provider of the chain that answered (its link name).
    #[serde(default)]
    pub provider_link: String,
    #[serde(default)]
    pub budget: Option<String>,
    #[serde(default)]
    pub guardrail_rule: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Executing,
    Executed,
    Failed,
    Rejected,
    Expired,
    Cancelled,
    /// A state this console does not know yet.
    #[serde(other)]
    Unknown,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Executing => "executing",
            Self::Executed => "executed",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Release {
    pub version: String,
    #[serde(default)]
    pub git_sha: String,
    pub track: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Decision {
    pub approver: String,
    #[serde(default)]
    pub approver_name: String,
    /// `approve` or `reject`.
    pub decision: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub decided_at: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Execution {
    pub status: String,
    #[serde(default)]
    pub attempts: i64,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub executed_at: Option<String>,
}

/// An approval request; list items carry no `decisions`/`execution`, the detail does.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Approval {
    pub id: String,
    pub workflow: String,
    pub tool: String,
    #[serde(default)]
    pub arguments: Value,
    /// `{resource, before, after, diff}`.
    #[serde(default)]
    pub proposed_change: Value,
    #[serde(default)]
    pub evidence: Value,
    #[serde(default)]
    pub risk_tier: i64,
    #[serde(default)]
    pub requested_by: String,
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub trace_id: String,
    #[serde(default = "one")]
    pub required_approvals: i64,
    #[serde(default)]
    pub approvals_count: i64,
    pub status: ApprovalStatus,
    pub release: Release,
    #[serde(default)]
    pub policy_version: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub expires_at: String,
    #[serde(default)]
    pub decided_at: Option<String>,
    #[serde(default)]
    pub decisions: Vec<Decision>,
    #[serde(default)]
    pub execution: Option<Execution>,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CancelResult {
    pub cancelled: u64,
    #[serde(default)]
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct BrokenLink {
    pub seq: i64,
    #[serde(default)]
    pub id: Option<String>,
    pub reason: String,
}

/// `GET /v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AuditVerify {
    pub ok: bool,
    pub checked: u64,
    #[serde(default)]
    pub chain: String,
    #[serde(default)]
    pub first_broken: Option<BrokenLink>,
}

/// The write freeze of the caller's tenant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct FreezeState {
    pub frozen: bool,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub changed_by: Option<String>,
    #[serde(default)]
    pub changed_at: Option<String>,
    /// On freeze/unfreeze: whether this call changed the state.
    #[serde(default)]
    pub changed: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TraceSummary {
    pub trace_id: String,
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub workflow: String,
    /// A run status, `error` or `cancelled`.
    pub status: String,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub duration_ms: f64,
    #[serde(default)]
    pub tokens: i64,
    #[serde(default)]
    pub cost_usd: f64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub span_count: i64,
    /// A guardrail flagged the run (its input or a tool result); absent from services
    /// older than the field.
    #[serde(default)]
    pub flagged: bool,
    /// The rule that blocked the run, else its first flag's.
    #[serde(default)]
    pub guardrail_rule: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Span {
    pub span_id: String,
    #[serde(default)]
    pub parent_span_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub start_ms: f64,
    #[serde(default)]
    pub duration_ms: f64,
    #[serde(default)]
    pub attributes: Value,
    #[serde(default)]
    pub payload: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Trace {
    #[serde(flatten)]
    pub summary: TraceSummary,
    #[serde(default)]
    pub spans: Vec<Span>,
}

/// Filters of `GET /v1/traces`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceQuery {
    pub status: Option<String>,
    pub workflow: Option<String>,
    pub min_latency_ms: Option<u64>,
    /// RFC 3339.
    pub since: Option<String>,
    pub request_id: Option<String>,
    pub errors_only: bool,
    /// Only flagged runs (`true`) or only runs no guardrail flagged (`false`).
    pub flagged: Option<bool>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct EvalSuite {
    pub name: String,
    /// `golden` or `adversarial`.
    pub kind: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub cases: u64,
    #[serde(default)]
    pub workflows: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalRunState {
    Queued,
    Running,
    Completed,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Versions {
    #[serde(default)]
    pub release_version: String,
    #[serde(default)]
    pub git_sha: String,
    #[serde(default)]
    pub track: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub prompt_version: String,
    #[serde(default)]
    pub policy_version: String,
}

/// A run in a list.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EvalRunSummary {
    pub id: String,
    pub suite: String,
    pub status: EvalRunState,
    #[serde(default)]
    pub progress: Progress,
    #[serde(default)]
    pub versions: Versions,
    #[serde(default)]
    pub gate: Option<Verdict>,
    #[serde(default)]
    pub pass_rate: Option<f64>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Gate {
    pub verdict: Verdict,
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Each threshold: `{name, setting, bound, threshold, actual, passed, note}`.
    #[serde(default)]
    pub checks: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Assertion {
    pub kind: String,
    #[serde(default)]
    pub expected: String,
    #[serde(default)]
    pub actual: String,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CaseResult {
    pub case_id: String,
    #[serde(default)]
    pub workflow: String,
    pub passed: bool,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub guardrail_rule: Option<String>,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub cost_usd: f64,
    #[serde(default)]
    pub answer_excerpt: String,
    #[serde(default)]
    pub assertions: Vec<Assertion>,
    #[serde(default)]
    pub error: Option<String>,
}

/// A run with its report: scores, gate, baseline diff and per-case results.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EvalRun {
    pub id: String,
    pub suite: String,
    pub status: EvalRunState,
    #[serde(default)]
    pub progress: Progress,
    #[serde(default)]
    pub versions: Versions,
    #[serde(default)]
    pub baseline_run_id: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// `{cases, passed, failed, pass_rate, latency_p50_ms, …}`.
    #[serde(default)]
    pub scores: Option<Value>,
    #[serde(default)]
    pub gate: Option<Gate>,
    /// `{baseline_run_id, flipped, regressions, deltas, …}`.
    #[serde(default)]
    pub baseline: Option<Value>,
    #[serde(default)]
    pub cases: Vec<CaseResult>,
}

/// The body of `POST /v1/evals/runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartEval {
    pub suite: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_run_id: Option<String>,
}

/// `GET /v1/whoami`: the tenant, roles and non-secret id of the presented key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Whoami {
    pub tenant: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub key_id: String,
    #[serde(default)]
    pub key_name: String,
}

/// A notification receiver as `/v1/admin/receivers` shows it: never its URL's path or its
/// secret.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Receiver {
    pub id: String,
    #[serde(default)]
    pub tenant: String,
    pub name: String,
    /// `webhook`, `slack` or `pagerduty`.
    pub format: String,
    /// The URL's scheme, host and port.
    #[serde(default)]
    pub url_hint: String,
    /// The event kinds it gets; empty: every kind.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub has_secret: bool,
    #[serde(default)]
    pub created_at: String,
}

/// The body of `POST /v1/admin/receivers`. Not `Debug`: it holds the secret.
#[derive(Clone, Serialize)]
pub struct NewReceiver {
    pub name: String,
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub events: Vec<String>,
}

/// `POST /v1/admin/receivers/{id}/test`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ReceiverTest {
    pub event_id: String,
    pub delivery_id: String,
}
