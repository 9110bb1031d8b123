//! The workflow engine: runs one request through input guardrails, the model/tool loop
//! under its budgets (each model call through the workflow's provider chain), write gating
//! (a write becomes a pending approval, never an execution), output guardrails, and usage
//! accounting.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::budget::{Admission, BudgetKind, Reservation, RunBudget, UsageLedger};
use crate::clock::Clock;
use crate::config::{ApprovalConfig, BudgetConfig, GuardrailConfig};
use crate::db::{Db, approvals};
use crate::domain::{ApprovalId, Principal, TraceId};
use crate::error::{Error, ErrorCode};
use crate::guardrails::{Action, InputDecision, Policy, ToolResultAction, spotlight};
use crate::metrics::{Metrics, RequestLabels, TokenLabels, ToolLabels};
use crate::providers::chain::{self, Chain, Link};
use crate::providers::{
    ChatMessage, ChatRequest, ChatResponse, Finish, Meter, Provider, ProviderError, Providers,
    ToolCall, ToolDef, Usage,
};
use crate::tools::{ProposedChange, Registry, SideEffect, ToolCtx, ToolError};
use crate::traces::{RunTrace, SpanId, SpanKind, TraceHeader, TraceSink};
use crate::workflows::Workflow;

/// How a run ended (the `status` of an invoke reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Success,
    ApprovalRequired,
    Blocked,
    BudgetExceeded,
    Degraded,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ApprovalRequired => "approval_required",
            Self::Blocked => "blocked",
            Self::BudgetExceeded => "budget_exceeded",
            Self::Degraded => "degraded",
        }
    }
}

/// A piece of evidence the answer rests on.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    /// `ticket`, `kb`, `invoice` or `tool`; on a pending approval also `guardrail` (a flag
    /// the run raised before the write, see `Run::approval_evidence`).
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub title: Option<String>,
    /// The tool that produced it.
    pub source: String,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct UsageOut {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub cost_usd: f64,
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub answer: String,
    pub evidence: Vec<Evidence>,
    pub approval_request_id: Option<ApprovalId>,
    pub proposed_change: Option<ProposedChange>,
    pub usage: UsageOut,
    pub budget_kind: Option<BudgetKind>,
    pub guardrail_rule: Option<String>,
    /// Why the input was blocked: the scan's reasons (`name (+weight)`), strongest first.
    pub guardrail_reasons: Vec<String>,
    pub tool_calls: Vec<String>,
    /// The link of the provider chain that gave the run's last answer; `None` when no
    /// model call answered.
    pub served_by: Option<Arc<Link>>,
}

/// The reply to one run: the body of `POST /v1/invoke`, the `done` event of the stream,
/// and a succeeded job's `result`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvokeResponse {
    pub request_id: String,
    pub status: RunStatus,
    pub answer: String,
    pub evidence: Vec<Evidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub approval_request_id: Option<ApprovalId>,
    /// `{resource, before, after, diff}` of the write waiting for approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub proposed_change: Option<Value>,
    pub usage: UsageOut,
    pub policy_version: String,
    #[schema(value_type = String)]
    pub trace_id: TraceId,
    pub workflow: String,
    /// `ollama`, `openai` or `scripted` (the deterministic offline model): the provider
    /// that gave the run's last answer (the first of the chain when none did).
    pub provider: String,
    pub model: String,
    /// The name of that provider in the workflow's provider chain.
    pub provider_link: String,
    /// Which budget stopped the run, when `status` is `budget_exceeded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// Which guardrail rule blocked the run, when `status` is `blocked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrail_rule: Option<String>,
    /// What the input scan found when it blocked the input: signal names and the
    /// classifier, with their weights (`override_prior (+3.25)`), strongest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guardrail_reasons: Vec<String>,
}

/// Events of a streamed run, in order.
#[derive(Debug, Clone)]
pub enum RunEvent {
    Token(String),
    ToolCall {
        name: String,
        arguments: Value,
    },
    ToolResult {
        name: String,
        outcome: String,
    },
    ApprovalRequired {
        approval_request_id: ApprovalId,
        proposed_change: ProposedChange,
    },
}

pub struct RunRequest {
    pub workflow: Arc<Workflow>,
    pub text: String,
    pub user_id: Option<String>,
    pub principal: Principal,
    pub request_id: String,
    pub trace_id: TraceId,
}

/// Everything a run needs; built once at start.
pub struct Engine {
    /// What a run and a tenant's day may spend, and the model prices.
    pub budgets: BudgetConfig,
    /// The input limit that overrides the policy's.
    pub guardrails: GuardrailConfig,
    /// How long an approval request lives, and when an invoice needs two approvers.
    pub approval_rules: ApprovalConfig,
    pub db: Db,
    /// The provider chains: the service's, and the workflows' own.
    pub providers: Arc<Providers>,
    pub tools: Arc<Registry>,
    pub policy: Arc<Policy>,
    pub metrics: Arc<Metrics>,
    pub ledger: Arc<UsageLedger>,
    pub clock: Arc<dyn Clock>,
    pub release: approvals::Release,
    /// Where a gated write becomes a pending approval (refused while writes are frozen).
    pub approvals: Arc<crate::approvals::ApprovalQueue>,
    /// Where each run's trace goes (the background writer stores it).
    pub traces: TraceSink,
}

/// Price of the scripted model's synthetic tokens (USD per 1k), so the demo shows cost.
const SCRIPTED_PRICE: (f64, f64) = (0.0005, 0.0015);

struct Run<'a> {
    engine: &'a Engine,
    req: &'a RunRequest,
    budget: RunBudget,
    usage: UsageOut,
    evidence: Vec<Evidence>,
    tool_calls: Vec<String>,
    retrieval_called: bool,
    retrieval_down: bool,
    events: Option<&'a mpsc::UnboundedSender<RunEvent>>,
    trace: &'a mut RunTrace,
    /// The span of the tool call being handled (the parent of `approval.create`).
    tool_span: SpanId,
    // -- accounting of model calls -------------------------------------------------------
    /// The share of the tenant's daily budget the run holds until it settles
    /// (`UsageLedger`); `None` before it is reserved and once it is settled.
    reservation: Option<Reservation>,
    /// Tokens the model call in progress has streamed so far (shared with the provider).
    meter: Meter,
    /// The `chat` span of the model call in progress and its link, if any.
    inflight_llm: Option<(SpanId, Arc<Link>)>,
    /// The provider chain of the workflow.
    chain: Arc<Chain>,
    /// The link that gave the latest answer.
    served_by: Option<Arc<Link>>,
    /// Some of the run's text has reached the client's stream: from then on no other
    /// provider may continue the answer.
    text_streamed: AtomicBool,
    /// What the guardrails flagged so far in this run (the input, tool results): a write
    /// the run proposes carries these on its approval.
    flags: Vec<Flag>,
}

/// Something the guardrails let through but flagged: where it came from (`input` or the
/// tool's name), the rule, the score and the reasons.
#[derive(Debug, Clone)]
struct Flag {
    source: String,
    rule: String,
    score: f32,
    reasons: Vec<String>,
}

impl Engine {
    /// The price of `model`'s tokens from `link`: the link's own, else `[prices.<model>]`,
    /// else the scripted model's demo price, else free.
    fn price(&self, link: &Link, model: &str) -> (f64, f64) {
        if let Some(p) = link.price {
            return (p.input_per_1k, p.output_per_1k);
        }
        if let Some(p) = self.budgets.prices.get(model) {
            return (p.input_per_1k, p.output_per_1k);
        }
        if link.scripted() {
            SCRIPTED_PRICE
        } else {
            (0.0, 0.0)
        }
    }

    /// The first provider of the service's chain (what `/v1/info` names the service by).
    pub fn primary(&self) -> &Provider {
        self.providers.primary()
    }

    /// The reply to `req` that ended with `o`: the outcome with the request's ids and the
    /// policy and model it ran under.
    pub fn reply(&self, req: &RunRequest, o: RunOutcome) -> InvokeResponse {
        let chain = self.providers.for_workflow(req.workflow.name);
        let link = o.served_by.as_ref().unwrap_or_else(|| chain.primary());
        InvokeResponse {
            request_id: req.request_id.clone(),
            status: o.status,
            answer: o.answer,
            evidence: o.evidence,
            approval_request_id: o.approval_request_id,
            proposed_change: o.proposed_change.and_then(|c| serde_json::to_value(c).ok()),
            usage: o.usage,
            policy_version: self.policy.version.to_string(),
            trace_id: req.trace_id.clone(),
            workflow: req.workflow.name.to_string(),
            provider: link.provider.kind().to_string(),
            model: link.provider.model().to_string(),
            provider_link: link.name().to_string(),
            budget: o.budget_kind.map(|k| k.as_str().to_string()),
            guardrail_rule: o.guardrail_rule,
            guardrail_reasons: o.guardrail_reasons,
        }
    }

    /// Runs a workflow to its end. Errors are for failures the caller must see as an error
    /// envelope (provider down, database down); every other ending is a [`RunOutcome`].
    pub async fn run(
        &self,
        req: &RunRequest,
        events: Option<&mpsc::UnboundedSender<RunEvent>>,
    ) -> Result<RunOutcome, Error> {
        let started = Instant::now();
        let span = tracing::Span::current();
        span.record("workflow", req.workflow.name);
        span.record("policy_version", self.policy.version.as_str());
        // Logged in full: the log writer redacts PII and secrets from every line.
        tracing::info!(input = %req.text, user_id = req.user_id.as_deref().unwrap_or(""), "run started");
        let mut trace = self.begin_trace(req, started);
        // A guard, so a run dropped mid-way (client gone, job cancelled) still decrements.
        let _inflight = InflightGuard::new(&self.metrics);
        let result = self.run_inner(req, events, started, &mut trace).await;
        finish_trace(trace, &result);
        self.record_quality(req, &result);
        let status = match &result {
            Ok(o) => o.status.as_str(),
            Err(e) => e.code.as_str(),
        };
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                workflow: req.workflow.name.to_string(),
                status: status.to_string(),
                track: self.release.track.clone(),
            })
            .inc();
        self.metrics
            .request_duration
            .observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(o) => tracing::info!(
                status,
                tool_calls = o.tool_calls.len(),
                tokens = o.usage.prompt_tokens + o.usage.completion_tokens,
                "run finished"
            ),
            // The error itself is logged, with its causes, where it becomes a response, a
            // job's outcome or an eval case's result.
            Err(_) => tracing::warn!(status, "run failed"),
        }
        result
    }

    /// Counts how the run ended in the quality signals (`crate::quality`): citation,
    /// refusal, empty or truncated answers, blocked and flagged runs, answer length.
    fn record_quality(&self, req: &RunRequest, result: &Result<RunOutcome, Error>) {
        let workflow = req.workflow.name;
        let base = crate::quality::RunEnd {
            workflow,
            track: &self.release.track,
            status: "",
            failed: false,
            budget: None,
            guardrail_rule: None,
            answer: "",
            cost_usd: 0.0,
            citation_required: self.policy.citation_required(workflow),
        };
        let end = match result {
            Ok(o) => crate::quality::RunEnd {
                status: o.status.as_str(),
                budget: o.budget_kind.map(BudgetKind::as_str),
                guardrail_rule: o.guardrail_rule.as_deref(),
                answer: &o.answer,
                cost_usd: o.usage.cost_usd,
                ..base
            },
            Err(e) => crate::quality::RunEnd {
                status: e.code.as_str(),
                failed: true,
                ..base
            },
        };
        self.metrics.record_run(&end);
    }

    /// Starts the run's trace: the root `request` span with who, what and which release.
    fn begin_trace(&self, req: &RunRequest, started: Instant) -> RunTrace {
        let primary = &self
            .providers
            .for_workflow(req.workflow.name)
            .primary()
            .provider;
        let mut trace = RunTrace::begin(
            self.traces.clone(),
            self.policy.clone(),
            TraceHeader {
                trace_id: req.trace_id.clone(),
                tenant: req.principal.tenant.as_str().to_string(),
                request_id: req.request_id.clone(),
                workflow: req.workflow.name.to_string(),
                user_id: req.user_id.clone(),
                provider: primary.kind(),
                model: primary.model().to_string(),
                policy_version: self.policy.version.as_str().to_string(),
                release_track: self.release.track.clone(),
                release_version: self.release.version.clone(),
                release_git_sha: self.release.git_sha.clone(),
                started_at_ms: self.clock.now().timestamp_millis(),
            },
            started,
        );
        trace.input(&req.text);
        trace
    }

    async fn run_inner(
        &self,
        req: &RunRequest,
        events: Option<&mpsc::UnboundedSender<RunEvent>>,
        started: Instant,
        trace: &mut RunTrace,
    ) -> Result<RunOutcome, Error> {
        let tool_span = trace.root();
        let day = self.clock.now().format("%Y-%m-%d").to_string();
        let mut run = Run {
            engine: self,
            req,
            budget: RunBudget::new(&self.budgets, started),
            usage: UsageOut::default(),
            evidence: Vec::new(),
            tool_calls: Vec::new(),
            retrieval_called: false,
            retrieval_down: false,
            events,
            trace,
            tool_span,
            reservation: None,
            meter: Meter::default(),
            inflight_llm: None,
            chain: self.providers.for_workflow(req.workflow.name).clone(),
            served_by: None,
            text_streamed: AtomicBool::new(false),
            flags: Vec::new(),
        };

        // Input guardrails first: a blocked input never reaches the model.
        let guard_span = run
            .trace
            .start("guardrail.input", SpanKind::Internal, run.trace.root());
        let mut decision = self.policy.scan_input(&req.text);
        if decision.action != Action::Block
            && let Some(max) = self.guardrails.max_input_chars
            && req.text.chars().count() > max
        {
            decision = InputDecision {
                action: Action::Block,
                score: 1.0,
                rule: "input_too_large".into(),
                message: format!("the input is longer than {max} characters"),
                reasons: Vec::new(),
            };
        }
        let reasons = decision.reason_labels();
        run.trace.attr(
            guard_span,
            "flightdeck.guardrail.score",
            f64::from(decision.score),
        );
        if !reasons.is_empty() {
            run.trace
                .attr(guard_span, "flightdeck.guardrail.reasons", reasons.clone());
        }
        let rules: &[&str] = if decision.rule.is_empty() {
            &[]
        } else {
            &[decision.rule.as_str()]
        };
        run.trace
            .guardrail(guard_span, decision.action.as_str(), rules);
        match decision.action {
            Action::Block => {
                self.metrics.guardrail_block(&decision.rule);
                tracing::warn!(rule = %decision.rule, score = decision.score, reasons = ?reasons, "input blocked by guardrail");
                let mut o = run
                    .finish(RunStatus::Blocked, decision.message, None)
                    .with_rule(decision.rule);
                o.guardrail_reasons = reasons;
                return Ok(o);
            }
            Action::Flag | Action::RequireApproval => {
                self.metrics.guardrail_flag(&decision.rule);
                tracing::info!(rule = %decision.rule, action = decision.action.as_str(), score = decision.score, reasons = ?reasons, "input flagged by guardrail");
                let root = run.trace.root();
                run.trace.attr(root, "flightdeck.guardrail.flagged", true);
                run.flags.push(Flag {
                    source: "input".into(),
                    rule: decision.rule,
                    score: decision.score,
                    reasons,
                });
            }
            Action::Allow => {}
        }

        // The tenant's daily budget, shared by every replica: the run holds the most it
        // may spend (or what is left of the day) until it settles.
        let now_ms = self.clock.now().timestamp_millis();
        match self
            .ledger
            .reserve(&req.principal.tenant, &day, now_ms)
            .await?
        {
            Admission::Held(r) => run.reservation = Some(r),
            Admission::Spent(kind) => return Ok(run.exceeded(kind)),
            Admission::Busy(kind) => return Err(budget_busy(kind)),
        }

        let deadline = run.budget.deadline;
        // Usage is counted call by call (`Run::account`), so a run cut short by its
        // deadline, or dropped with its client, still settles what it spent.
        let result = match tokio::time::timeout_at(deadline, run.drive()).await {
            Ok(r) => r,
            Err(_) => {
                run.settle_inflight("deadline");
                Ok(run.exceeded(BudgetKind::Deadline))
            }
        };
        run.settle().await;
        result
    }
}

/// Ends a run's trace with its outcome and hands it to the writer.
fn finish_trace(mut trace: RunTrace, result: &Result<RunOutcome, Error>) {
    match result {
        Ok(o) => {
            let root = trace.root();
            if let Some(kind) = o.budget_kind {
                trace.attr(root, "flightdeck.budget", kind.as_str());
            }
            if let Some(rule) = &o.guardrail_rule {
                trace.attr(root, "flightdeck.guardrail.rule", rule.clone());
            }
            if let Some(id) = &o.approval_request_id {
                trace.attr(root, "flightdeck.approval.id", id.to_string());
            }
            trace.finish(o.status.as_str(), None, Some(&o.answer));
        }
        Err(e) => trace.finish("error", Some(e.code.as_str()), Some(&e.message)),
    }
}

impl RunOutcome {
    fn with_rule(mut self, rule: String) -> Self {
        self.guardrail_rule = Some(rule);
        self
    }
}

/// The tool message the model reads: the result's compact JSON (serialized into a byte
/// buffer; `Value`'s `Display` goes through a formatter adapter and cost ~1.6 times as
/// many instructions for the same text), or `{"error": …}`.
fn tool_message_content(result: &Result<Value, ToolError>) -> String {
    let value = match result {
        Ok(v) => serde_json::to_string(v),
        Err(e) => serde_json::to_string(&json!({ "error": e.to_string() })),
    };
    // A `Value` always serializes (its map keys are strings, its numbers finite).
    value.unwrap_or_default()
}

/// The string values of a tool result, one per line: what the guardrails scan (the JSON's
/// quoting and escapes would only hide the text from the scan).
fn collect_strings(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn evidence_from(tool: &str, result: &Value) -> Vec<Evidence> {
    let item = |kind: &str, id: &Value, title: Option<&Value>| Evidence {
        kind: kind.to_string(),
        id: id.as_str().unwrap_or_default().to_string(),
        title: title.and_then(Value::as_str).map(str::to_string),
        source: tool.to_string(),
    };
    match tool {
        "ticket_read" => vec![item("ticket", &result["id"], result.get("subject"))],
        "invoice_read" => vec![item("invoice", &result["id"], result.get("vendor"))],
        "kb_search" => result["articles"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|art| item("kb", &art["id"], art.get("title")))
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![Evidence {
            kind: "tool".into(),
            id: tool.to_string(),
            title: None,
            source: tool.to_string(),
        }],
    }
    .into_iter()
    .filter(|e| !e.id.is_empty())
    .collect()
}

/// `[kind:ID]` citations in an answer.
fn citations(answer: &str) -> Vec<(String, String)> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"\[(ticket|kb|invoice|tool):([A-Za-z0-9_.-]+)\]").expect("static regex")
    });
    re.captures_iter(answer)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

impl Run<'_> {
    fn emit(&self, ev: RunEvent) {
        if let Some(tx) = self.events {
            let _ = tx.send(ev);
        }
    }

    fn finish(
        &self,
        status: RunStatus,
        answer: String,
        proposal: Option<(ApprovalId, ProposedChange)>,
    ) -> RunOutcome {
        let (approval_request_id, proposed_change) = match proposal {
            Some((id, change)) => (Some(id), Some(change)),
            None => (None, None),
        };
        RunOutcome {
            status,
            answer,
            evidence: self.evidence.clone(),
            approval_request_id,
            proposed_change,
            usage: self.usage.clone(),
            budget_kind: None,
            guardrail_rule: None,
            guardrail_reasons: Vec::new(),
            tool_calls: self.tool_calls.clone(),
            served_by: self.served_by.clone(),
        }
    }

    fn exceeded(&self, kind: BudgetKind) -> RunOutcome {
        self.engine
            .metrics
            .budget_exceeded
            .get_or_create(&crate::metrics::KindLabels {
                kind: kind.as_str().into(),
            })
            .inc();
        tracing::warn!(budget = kind.as_str(), "run stopped by budget");
        let mut o = self.finish(
            RunStatus::BudgetExceeded,
            format!(
                "The run was stopped because it exceeded its {} budget.",
                kind.as_str().replace('_', " ")
            ),
            None,
        );
        o.budget_kind = Some(kind);
        o
    }

    async fn drive(&mut self) -> Result<RunOutcome, Error> {
        let engine = self.engine;
        let wf = &self.req.workflow;
        let tool_names: Vec<&str> = wf.tools.iter().map(String::as_str).collect();
        // One request for the whole run: the conversation grows in place, so no call
        // copies the messages or the tools' schemas.
        let mut request = ChatRequest {
            workflow: wf.name.to_string(),
            messages: vec![
                ChatMessage::system(wf.system_prompt(self.req.principal.tenant.as_str())),
                ChatMessage::user(self.req.text.clone()),
            ],
            tools: engine
                .tools
                .offered(&tool_names)
                .into_iter()
                .map(|spec| ToolDef {
                    name: spec.name.clone(),
                    description: spec.description.clone(),
                    parameters: spec.parameters.clone(),
                })
                .collect(),
            max_tokens: 0,
            budget_tokens: 0,
            deadline: None,
            meter: self.meter.clone(),
        };
        let ctx = ToolCtx {
            tenant: self.req.principal.tenant.clone(),
            db: engine.db.clone(),
        };

        loop {
            let remaining = self.budget.remaining_tokens();
            if remaining == 0 {
                return Ok(self.exceeded(BudgetKind::Tokens));
            }
            // One call may generate at most the workflow's cap, far below the budget.
            request.max_tokens = self.budget.call_cap(wf.max_output_tokens);
            request.budget_tokens = remaining;
            request.deadline = Some(self.budget.deadline);
            let (response, cost) = match self.call_chain(&mut request, wf.max_output_tokens).await?
            {
                Ok(answered) => answered,
                Err(stopped) => return Ok(stopped),
            };
            if let Err(kind) = self.budget.spend(response.usage.total(), cost) {
                return Ok(self.exceeded(kind));
            }
            if response.finish == Finish::Length {
                // Cut off: an unfinished answer or a half-written tool call is neither
                // returned nor acted on.
                return Ok(self.truncated(request.max_tokens, wf.max_output_tokens));
            }

            if response.tool_calls.is_empty() {
                return Ok(self.final_answer(response.content));
            }

            request.messages.push(ChatMessage::assistant(
                response.content.clone(),
                response.tool_calls.clone(),
            ));
            for call in &response.tool_calls {
                if let Err(kind) = self.budget.tool_call(&call.name, &call.arguments) {
                    return Ok(self.exceeded(kind));
                }
                self.tool_calls.push(call.name.clone());
                if self.events.is_some() {
                    // Only a streamed run shows the arguments; redact them only then.
                    let mut shown_args = call.arguments.clone();
                    engine.policy.redactor.redact_json(&mut shown_args);
                    self.emit(RunEvent::ToolCall {
                        name: call.name.clone(),
                        arguments: shown_args,
                    });
                }

                let side_effect = engine.tools.get(&call.name).map(|s| s.side_effect.as_str());
                let tool_span =
                    self.trace
                        .tool_start(&call.name, &call.id, side_effect, &call.arguments);
                self.tool_span = tool_span;
                if !tool_names.contains(&call.name.as_str()) {
                    let err = ToolError::UnknownTool(call.name.clone());
                    self.trace.tool_end(tool_span, err.outcome(), None);
                    self.count_tool(&call.name, err.outcome());
                    request
                        .messages
                        .push(ChatMessage::tool(call, tool_message_content(&Err(err))));
                    continue;
                }
                let is_write = engine
                    .tools
                    .get(&call.name)
                    .is_some_and(|s| s.side_effect == SideEffect::Write);
                if is_write {
                    let gated = match self.gate_write(&ctx, call).await {
                        Ok(g) => g,
                        Err(e) => {
                            self.trace.fail(tool_span, e.code.as_str());
                            return Err(e);
                        }
                    };
                    match gated {
                        Ok(outcome) => {
                            self.trace.tool_end(tool_span, "needs_approval", None);
                            return Ok(outcome);
                        }
                        Err(err) => {
                            self.trace.tool_end(tool_span, err.outcome(), None);
                            self.count_tool(&call.name, err.outcome());
                            self.emit(RunEvent::ToolResult {
                                name: call.name.clone(),
                                outcome: err.outcome().into(),
                            });
                            request
                                .messages
                                .push(ChatMessage::tool(call, tool_message_content(&Err(err))));
                            continue;
                        }
                    }
                }
                let result = engine.tools.run(&ctx, &call.name, &call.arguments).await;
                let outcome = match &result {
                    Ok(v) => {
                        self.evidence.extend(evidence_from(&call.name, v));
                        "ok"
                    }
                    Err(e) => e.outcome(),
                };
                match &result {
                    Ok(v) => self.trace.tool_end(tool_span, outcome, Some(v)),
                    Err(e) => self.trace.tool_end(
                        tool_span,
                        outcome,
                        Some(&json!({ "error": e.to_string() })),
                    ),
                }
                if call.name == "kb_search" {
                    self.retrieval_called = true;
                    if matches!(result, Err(ToolError::Unavailable { .. })) {
                        self.retrieval_down = true;
                    }
                }
                self.count_tool(&call.name, outcome);
                self.emit(RunEvent::ToolResult {
                    name: call.name.clone(),
                    outcome: outcome.into(),
                });
                let content = match &result {
                    Ok(v) => self.untrusted_result(tool_span, &call.name, v),
                    Err(_) => tool_message_content(&result),
                };
                request.messages.push(ChatMessage::tool(call, content));
            }
        }
    }

    /// One model call through the workflow's provider chain. Each link's attempt is its
    /// own `chat` span, booked at that link's price. A link that fails the way
    /// [`chain::fallback_reason`] allows hands the call to the next one (a
    /// `provider.fallback` span and `agent_provider_fallbacks_total`): the tokens it used
    /// are spent from the run's budget first, and the next link's call is capped by the
    /// workflow's per-call cap and what the budget has left. `Ok(Err(outcome))`: the run
    /// ends there (a budget ran out on the way).
    async fn call_chain(
        &mut self,
        request: &mut ChatRequest,
        cap: u32,
    ) -> Result<Result<(ChatResponse, f64), RunOutcome>, Error> {
        let chain = self.chain.clone();
        let links = chain.links();
        let mut failures: Vec<(&str, &'static str)> = Vec::new();
        let mut i = 0;
        loop {
            let link = &links[i];
            let provider = &link.provider;
            let span = self
                .trace
                .llm_start(provider.kind(), provider.model(), request.max_tokens);
            self.trace
                .attr(span, "flightdeck.provider.link", link.name().to_string());
            self.inflight_llm = Some((span, link.clone()));
            let (result, held_back) = self.call_model(provider, request).await;
            self.inflight_llm = None;
            let err = match result {
                Ok(mut response) => {
                    // Attempts that failed before this answer (the link's retries) count too.
                    response.usage = response.usage.plus(self.meter.take_unaccounted());
                    let cost = self.account(link, &response.model.clone(), response.usage);
                    self.trace.llm_end(span, &response, cost);
                    chain.answered(i);
                    self.served_by = Some(link.clone());
                    return Ok(Ok((response, cost)));
                }
                Err(err) => err,
            };
            // What the failed, timed-out or retried attempts generated is spent.
            let partial = self.meter.take_unaccounted();
            let model = provider.model().to_string();
            let cost = self.account(link, &model, partial);
            if Instant::now() >= self.budget.deadline {
                // The attempt ended at the run's deadline: that is the budget.
                self.trace
                    .llm_interrupted(span, &model, partial, cost, "deadline");
                return Ok(Err(self.exceeded(BudgetKind::Deadline)));
            }
            let error = provider_error(err.clone());
            self.trace
                .llm_interrupted(span, &model, partial, cost, error.code.as_str());
            failures.push((link.name(), err.kind()));
            let streamed = self.text_streamed.load(Ordering::Relaxed);
            let next = links.get(i + 1);
            let reason = chain::fallback_reason(&err, streamed);
            let (Some(next), Some(reason)) = (next, reason) else {
                // No other link takes over: what the redactor held back is sent as before.
                self.emit_text(held_back);
                return Err(chain_error(error, &failures, next.is_some() && streamed));
            };
            // The failed link's tokens are spent before the next one may spend more.
            if let Err(kind) = self.budget.spend(partial.total(), cost) {
                return Ok(Err(self.exceeded(kind)));
            }
            let remaining = self.budget.remaining_tokens();
            if remaining == 0 {
                return Ok(Err(self.exceeded(BudgetKind::Tokens)));
            }
            if !chain::fits_before(next, self.budget.deadline) {
                self.emit_text(held_back);
                return Err(chain_error(error, &failures, false));
            }
            // The failed link's unsent text is dropped: the next link answers afresh.
            drop(held_back);
            request.max_tokens = self.budget.call_cap(cap);
            request.budget_tokens = remaining;
            self.hop(link, next, reason);
            i += 1;
        }
    }

    /// Records a hop of the provider chain: a `provider.fallback` span (from, to, reason),
    /// `agent_provider_fallbacks_total{from,to,reason}` and a log line.
    fn hop(&mut self, from: &Link, to: &Link, reason: &'static str) {
        let root = self.trace.root();
        let span = self
            .trace
            .start("provider.fallback", SpanKind::Internal, root);
        self.trace
            .attr(span, "flightdeck.fallback.from", from.name().to_string());
        self.trace
            .attr(span, "flightdeck.fallback.to", to.name().to_string());
        self.trace.attr(span, "flightdeck.fallback.reason", reason);
        self.trace.end(span, crate::traces::SpanStatus::Ok);
        self.engine
            .metrics
            .provider_fallback(from.name(), to.name(), reason);
        tracing::warn!(
            from = from.name(),
            to = to.name(),
            reason,
            "model call handed to the next provider of the chain"
        );
    }

    /// A tool's result as the model gets it. The result is untrusted data (a ticket body, an
    /// article, an HTTP response anyone could have written): its text is scanned like an
    /// input; a flagged result is recorded (trace, `agent_guardrail_flags_total`) and every
    /// write the run proposes after it carries the flag on its approval; a result scoring
    /// at the withhold threshold is replaced by a notice. Whatever is handed over is wrapped
    /// by [`spotlight`], delimited and marked as data, not instructions.
    fn untrusted_result(&mut self, span: SpanId, tool: &str, value: &Value) -> String {
        let engine = self.engine;
        let mut text = String::new();
        collect_strings(value, &mut text);
        let d = engine.policy.scan_tool_result(&text);
        let content = match d.action {
            ToolResultAction::Pass => tool_message_content(&Ok(value.clone())),
            ToolResultAction::Flag | ToolResultAction::Withhold => {
                let withheld = d.action == ToolResultAction::Withhold;
                let reasons: Vec<String> = d
                    .reasons
                    .iter()
                    .filter(|r| r.weight > 0.0)
                    .map(|r| format!("{} ({:+.2})", r.name, r.weight))
                    .collect();
                let rule = format!("tool_result:{}", d.rule);
                engine.metrics.guardrail_flag(&rule);
                self.trace.attr(
                    span,
                    "flightdeck.guardrail.verdict",
                    if withheld { "withhold" } else { "flag" },
                );
                self.trace
                    .attr(span, "flightdeck.guardrail.rule", rule.clone());
                self.trace
                    .attr(span, "flightdeck.guardrail.score", f64::from(d.score));
                self.trace
                    .attr(span, "flightdeck.guardrail.reasons", reasons.clone());
                tracing::warn!(tool, rule = %rule, score = d.score, withheld, "tool result flagged by guardrail");
                let root = self.trace.root();
                self.trace.attr(root, "flightdeck.guardrail.flagged", true);
                self.flags.push(Flag {
                    source: tool.to_string(),
                    rule,
                    score: d.score,
                    reasons,
                });
                if withheld {
                    tool_message_content(&Ok(json!({
                        "withheld": "This result was withheld: it reads as instructions aimed at the assistant (a prompt injection), not as data."
                    })))
                } else {
                    tool_message_content(&Ok(value.clone()))
                }
            }
        };
        let nonce = format!("{:08x}", rand::random::<u32>());
        spotlight(tool, &content, &nonce)
    }

    /// Books a model call's tokens: the run's usage and cost, `agent_tokens_total`,
    /// `agent_cost_usd_total`, and the tenant's daily ledger. Returns the cost.
    fn account(&mut self, link: &Link, model: &str, usage: Usage) -> f64 {
        let engine = self.engine;
        let (pin, pout) = engine.price(link, model);
        let cost = f64::from(usage.prompt_tokens) / 1000.0 * pin
            + f64::from(usage.completion_tokens) / 1000.0 * pout;
        self.usage.prompt_tokens += usage.prompt_tokens;
        self.usage.completion_tokens += usage.completion_tokens;
        self.usage.cost_usd += cost;
        for (direction, n) in [
            ("input", usage.prompt_tokens),
            ("output", usage.completion_tokens),
        ] {
            engine
                .metrics
                .tokens
                .get_or_create(&TokenLabels {
                    model: model.to_string(),
                    direction: direction.into(),
                })
                .inc_by(u64::from(n));
        }
        engine.metrics.cost_usd.inc_by(cost);
        engine.metrics.book_usage(
            self.req.principal.tenant.as_str(),
            self.req.workflow.name,
            &engine.release.track,
            usage.prompt_tokens,
            usage.completion_tokens,
            cost,
        );
        cost
    }

    /// Settles the run's reservation of the tenant's daily budget with what it spent. The
    /// settling is its own task, so a client that goes away meanwhile cannot cut it short.
    async fn settle(&mut self) {
        if let Some(task) = self.spawn_settle() {
            let _ = task.await;
        }
    }

    /// Starts settling the reservation, if the run still holds one.
    fn spawn_settle(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        let reservation = self.reservation.take()?;
        let ledger = self.engine.ledger.clone();
        let tokens = u64::from(self.usage.prompt_tokens) + u64::from(self.usage.completion_tokens);
        let cost = self.usage.cost_usd;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(runtime.spawn(async move {
            if let Err(e) = ledger.settle(&reservation, tokens, cost).await {
                tracing::warn!(
                    error = %e,
                    reservation = %reservation.id,
                    "settling a run's budget reservation failed; it is charged in full when it expires"
                );
            }
        }))
    }

    /// Books what the model call in progress has generated so far, when the run stops
    /// before it answers (deadline, or the run dropped with its client); its span ends
    /// as failed with `error_type`.
    fn settle_inflight(&mut self, error_type: &'static str) {
        let Some((span, link)) = self.inflight_llm.take() else {
            return;
        };
        let partial = self.meter.take_unaccounted();
        let model = link.provider.model().to_string();
        let cost = self.account(&link, &model, partial);
        self.trace
            .llm_interrupted(span, &model, partial, cost, error_type);
    }

    /// The run's end when a reply was cut off at `max_tokens`: the workflow's per-call
    /// cap (`output_tokens`), or the rest of the request's budget when that was less
    /// (`tokens`).
    fn truncated(&self, max_tokens: u32, cap: u32) -> RunOutcome {
        if max_tokens < cap {
            return self.exceeded(BudgetKind::Tokens);
        }
        let mut o = self.exceeded(BudgetKind::OutputTokens);
        o.answer = format!(
            "The model's reply was cut off at this workflow's limit of {max_tokens} output tokens per call before it finished; the unfinished reply is not returned."
        );
        o
    }

    fn count_tool(&self, tool: &str, outcome: &str) {
        self.engine
            .metrics
            .tool_calls
            .get_or_create(&ToolLabels {
                tool: tool.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.engine.metrics.workflow_tool_call(
            self.req.workflow.name,
            &self.engine.release.track,
            outcome,
        );
    }

    /// One call to one provider. A streamed run's text goes through the redactor to the
    /// client as it arrives; the first piece sent marks the run as streamed. The redactor
    /// holds back the tail of the text until it is decided: when the call fails, that tail
    /// has not reached the client and is returned instead of sent (the caller drops it when
    /// another link takes the call over, and sends it otherwise).
    async fn call_model(
        &self,
        provider: &Provider,
        request: &ChatRequest,
    ) -> (Result<ChatResponse, ProviderError>, String) {
        let engine = self.engine;
        let Some(events) = self.events else {
            return (provider.chat(request, None).await, String::new());
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        // Text goes through the redactor, then the link neutraliser (as the final answer
        // does); each holds back the tail it has not decided yet.
        let mut redactor = engine.policy.redactor.stream();
        let mut links = engine.policy.output.stream();
        let forward = async {
            while let Some(chunk) = rx.recv().await {
                let safe = links.push(&redactor.push(&chunk));
                if !safe.is_empty() {
                    self.text_streamed.store(true, Ordering::Relaxed);
                    let _ = events.send(RunEvent::Token(safe));
                }
            }
        };
        let call = async move {
            let r = provider.chat(request, Some(&tx)).await;
            drop(tx);
            r
        };
        let (r, ()) = tokio::join!(call, forward);
        let mut rest = links.push(&redactor.finish());
        rest.push_str(&links.finish());
        if r.is_ok() {
            self.emit_text(rest);
            (r, String::new())
        } else {
            (r, rest)
        }
    }

    /// Sends text of the answer to a streamed run's client.
    fn emit_text(&self, text: String) {
        if !text.is_empty() {
            self.text_streamed.store(true, Ordering::Relaxed);
            self.emit(RunEvent::Token(text));
        }
    }

    /// A write tool call: validate, propose, store a pending approval, stop the run.
    /// The inner `Err` goes back to the model (bad arguments, unknown record).
    async fn gate_write(
        &mut self,
        ctx: &ToolCtx,
        call: &ToolCall,
    ) -> Result<Result<RunOutcome, ToolError>, Error> {
        let engine = self.engine;
        if let Err(e) = engine.tools.validate(&call.name, &call.arguments) {
            return Ok(Err(e));
        }
        let mut change = match engine.tools.propose(ctx, &call.name, &call.arguments).await {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let redactor = &engine.policy.redactor;
        let mut arguments = call.arguments.clone();
        redactor.redact_json(&mut arguments);
        redactor.redact_json(&mut change.before);
        redactor.redact_json(&mut change.after);
        change.diff = redactor.redact(&change.diff).text.into_owned();
        let required = if call.name == "invoice_pay"
            && call.arguments["amount_usd"].as_f64().unwrap_or(0.0)
                > engine.approval_rules.invoice_two_approver_threshold_usd
        {
            2
        } else {
            1
        };
        let now = engine.clock.now().timestamp_millis();
        let id = ApprovalId::generate();
        let record = approvals::NewApproval {
            id: id.clone(),
            tenant: ctx.tenant.clone(),
            workflow: self.req.workflow.name.to_string(),
            tool: call.name.clone(),
            arguments,
            proposed_change: serde_json::to_value(&change).map_err(Error::internal_from)?,
            evidence: serde_json::to_value(self.approval_evidence())
                .map_err(Error::internal_from)?,
            risk_tier: i64::from(self.req.workflow.risk_tier),
            requested_by: self.req.principal.key_id.clone(),
            requested_by_user: self.req.user_id.clone(),
            request_id: self.req.request_id.clone(),
            trace_id: self.req.trace_id.clone(),
            required_approvals: required,
            release: engine.release.clone(),
            policy_version: engine.policy.version.to_string(),
            created_at: now,
            expires_at: now + (engine.approval_rules.approval_ttl_secs as i64) * 1000,
        };
        let approval_span = self
            .trace
            .start("approval.create", SpanKind::Internal, self.tool_span);
        if !self.flags.is_empty() {
            let flagged: Vec<String> = self
                .flags
                .iter()
                .map(|f| format!("{}: {}", f.source, f.rule))
                .collect();
            self.trace
                .attr(approval_span, "flightdeck.guardrail.flags", flagged);
        }
        // Stored with its audit event in one transaction; `writes_frozen` stores nothing.
        engine.approvals.create(&record).await?;
        self.trace
            .approval_created(approval_span, &id, required, &change.resource);
        self.count_tool(&call.name, "needs_approval");
        tracing::info!(approval_id = %id, tool = %call.name, required_approvals = required, "write gated for approval");
        self.emit(RunEvent::ApprovalRequired {
            approval_request_id: id.clone(),
            proposed_change: change.clone(),
        });
        let answer = format!(
            "The change to {} needs approval ({} approver{}) before it is applied. Approval request: {id}.",
            change.resource,
            required,
            if required == 1 { "" } else { "s" }
        );
        Ok(Ok(self.finish(
            RunStatus::ApprovalRequired,
            answer,
            Some((id, change)),
        )))
    }

    /// The evidence a pending approval shows: the run's evidence, then one `guardrail`
    /// item per flag (the rule as id, the score and reasons as title, where it came from
    /// as source), so the approver sees that the write followed flagged text.
    fn approval_evidence(&self) -> Vec<Evidence> {
        let mut evidence = self.evidence.clone();
        evidence.extend(self.flags.iter().map(|f| Evidence {
            kind: "guardrail".into(),
            id: f.rule.clone(),
            title: Some(format!(
                "flagged {} (score {:.2}): {}",
                f.source,
                f.score,
                f.reasons.join(", ")
            )),
            source: f.source.clone(),
        }));
        evidence
    }

    fn final_answer(&mut self, raw: String) -> RunOutcome {
        let engine = self.engine;
        let guard_span =
            self.trace
                .start("guardrail.output", SpanKind::Internal, self.trace.root());
        let redacted = engine.policy.redactor.redact(&raw);
        let verdict = if redacted.rules.is_empty() {
            "allow"
        } else {
            "redacted"
        };
        for rule in &redacted.rules {
            engine.metrics.guardrail_block(&format!("redact_{rule}"));
        }
        // Links and images to hosts outside the allowlist: the channel injected text
        // would use to carry data out.
        let neutralised = engine.policy.output.neutralise_links(&redacted.text);
        if !neutralised.removed_hosts.is_empty() {
            engine.metrics.guardrail_block("link_removed");
            self.trace.attr(
                guard_span,
                "flightdeck.guardrail.links_removed",
                neutralised.removed_hosts.clone(),
            );
        }
        self.trace.guardrail(guard_span, verdict, &redacted.rules);
        let answer = neutralised.text;
        let wf = &self.req.workflow;
        let system_prompt = wf.system_prompt(self.req.principal.tenant.as_str());
        if let Some(leak) = engine
            .policy
            .output
            .system_prompt_leak(&answer, &system_prompt)
        {
            engine.metrics.guardrail_block("system_prompt_leak");
            self.trace
                .attr(guard_span, "flightdeck.guardrail.verdict", "block");
            self.trace.attr(
                guard_span,
                "flightdeck.guardrail.rule",
                "system_prompt_leak",
            );
            tracing::warn!(
                longest_run = leak.longest_run,
                fraction = leak.fraction,
                "answer withheld: it carries the system prompt"
            );
            return self
                .finish(
                    RunStatus::Blocked,
                    "The answer was withheld because it repeated the assistant's internal instructions."
                        .into(),
                    None,
                )
                .with_rule("system_prompt_leak".into());
        }
        if wf.retrieval && self.retrieval_down {
            return self.finish(RunStatus::Degraded, answer, None);
        }
        if engine.policy.citation_required(wf.name) {
            let cited = citations(&answer);
            let known: BTreeMap<(&str, &str), ()> = self
                .evidence
                .iter()
                .map(|e| ((e.kind.as_str(), e.id.as_str()), ()))
                .collect();
            let unknown = cited
                .iter()
                .any(|(k, id)| !known.contains_key(&(k.as_str(), id.as_str())));
            let uncited = cited.is_empty() && !(self.retrieval_called && self.evidence.is_empty());
            if unknown || uncited {
                engine.metrics.guardrail_block("citation_required");
                self.trace
                    .attr(guard_span, "flightdeck.guardrail.verdict", "block");
                self.trace
                    .attr(guard_span, "flightdeck.guardrail.rule", "citation_required");
                tracing::warn!(
                    unknown,
                    uncited,
                    "answer withheld: citations missing or not backed by evidence"
                );
                return self
                    .finish(
                        RunStatus::Blocked,
                        "The answer was withheld because it did not cite the evidence it rests on."
                            .into(),
                        None,
                    )
                    .with_rule("citation_required".into());
            }
        }
        self.finish(RunStatus::Success, answer, None)
    }
}

impl Drop for Run<'_> {
    /// A run dropped mid-call (its client went away) still books what the model
    /// generated; the trace then ends as `cancelled` with those tokens.
    fn drop(&mut self) {
        self.settle_inflight("cancelled");
        // A run dropped before it settled (its client went away): settle in the background.
        let _ = self.spawn_settle();
    }
}

/// Counts a run in `agent_inflight_requests` for as long as it lives.
struct InflightGuard<'a>(&'a Metrics);

impl<'a> InflightGuard<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.inflight.inc();
        Self(metrics)
    }
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.inflight.dec();
    }
}

/// The refusal of a run while what is left of its tenant's daily budget is reserved by
/// runs still in flight: it comes back as they settle, so the client may retry.
fn budget_busy(kind: BudgetKind) -> Error {
    let what = match kind {
        BudgetKind::TenantDailyCost => "cost",
        _ => "token",
    };
    Error::new(
        ErrorCode::TenantBudgetExceeded,
        format!(
            "what is left of the tenant's daily {what} budget is reserved by runs in progress; retry when they finish"
        ),
    )
    .retry_after(1)
}

/// The error of a model call no link of the chain answered: the last link's error; when
/// more than one link was tried, its message names each link and how it failed.
/// `cut_short`: text had already reached the client when the link failed, so the next
/// link was not tried — the message says the answer is incomplete.
fn chain_error(mut last: Error, failures: &[(&str, &'static str)], cut_short: bool) -> Error {
    if cut_short {
        let link = failures.last().map_or("", |(name, _)| *name);
        last.message = format!(
            "the answer is incomplete: the model provider {link:?} failed after part of it was streamed, and another provider may not continue an answer ({})",
            last.message
        );
    } else if failures.len() > 1 {
        let tried: Vec<String> = failures
            .iter()
            .map(|(name, kind)| format!("{name}: {kind}"))
            .collect();
        last.message = format!(
            "every provider of the chain failed ({}); the last: {}",
            tried.join(", "),
            last.message
        );
    }
    last
}

/// Maps a provider failure to the error a client sees.
pub fn provider_error(e: ProviderError) -> Error {
    match e {
        ProviderError::CircuitOpen { retry_after_secs } => Error::new(
            ErrorCode::ProviderUnavailable,
            format!("the model provider is failing and its circuit is open; retry in {retry_after_secs} s"),
        )
        .retry_after(retry_after_secs),
        ProviderError::Timeout(secs) => Error::new(ErrorCode::ProviderTimeout, format!("the model provider did not answer within {secs} s")).retry_after(5),
        ProviderError::Unavailable(m) => Error::new(ErrorCode::ProviderUnavailable, format!("the model provider is unavailable: {m}")).retry_after(5),
        ProviderError::ContextExceeded(m) => Error::new(
            ErrorCode::ProviderError,
            format!("the request does not fit the model's context window: {m}"),
        ),
        ProviderError::Rejected(m) | ProviderError::Protocol(m) | ProviderError::Stream(m) => {
            Error::new(ErrorCode::ProviderError, format!("the model provider failed: {m}")).retry_after(5)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_citations() {
        assert_eq!(
            citations("See [ticket:T-1001] and [kb:KB-3]; not [foo:bar]."),
            vec![
                ("ticket".into(), "T-1001".into()),
                ("kb".into(), "KB-3".into())
            ]
        );
    }

    #[test]
    fn evidence_from_kb_search_lists_articles() {
        let ev = evidence_from(
            "kb_search",
            &json!({"articles": [{"id": "KB-1", "title": "Reset"}, {"id": "KB-2"}]}),
        );
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].kind, "kb");
        assert_eq!(ev[0].title.as_deref(), Some("Reset"));
    }
}
