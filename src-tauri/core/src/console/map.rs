//! Pure mappings from the agent-service's wire shapes (`agent::wire`), the core's own types
//! and the Prometheus-derived series to the IPC DTOs, and from a key's roles to the
//! actions it may perform. Everything here is a function of its input (no I/O, no clock).

use serde_json::Value;

use super::dto::{self, ActionId, ActionPermission, CommandError, CommandErrorCode};
use crate::agent::wire;
use crate::error::{Error, ErrorCode};

impl From<Error> for CommandError {
    fn from(e: Error) -> Self {
        let code = e.code();
        let api = e.api();
        Self {
            code: code_of(code),
            message: e.to_string(),
            server_code: api
                .map(|a| a.server_code.clone())
                .filter(|c| !c.starts_with("http_")),
            request_id: api.and_then(|a| a.request_id.clone()),
            retry_after_secs: match code {
                ErrorCode::RateLimited { retry_after_secs }
                | ErrorCode::Unavailable { retry_after_secs } => retry_after_secs,
                _ => None,
            },
        }
    }
}

impl CommandError {
    pub fn new(code: CommandErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            server_code: None,
            request_id: None,
            retry_after_secs: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(CommandErrorCode::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(CommandErrorCode::NotFound, message)
    }
}

pub fn code_of(code: ErrorCode) -> CommandErrorCode {
    match code {
        ErrorCode::Unauthorized => CommandErrorCode::Unauthorized,
        ErrorCode::Forbidden => CommandErrorCode::Forbidden,
        ErrorCode::NotFound => CommandErrorCode::NotFound,
        ErrorCode::Conflict => CommandErrorCode::Conflict,
        ErrorCode::RateLimited { .. } => CommandErrorCode::RateLimited,
        ErrorCode::Unavailable { .. } => CommandErrorCode::Unavailable,
        ErrorCode::Invalid => CommandErrorCode::Invalid,
        ErrorCode::Network => CommandErrorCode::Network,
        ErrorCode::Timeout => CommandErrorCode::Timeout,
        ErrorCode::Protocol => CommandErrorCode::Protocol,
        ErrorCode::Storage => CommandErrorCode::Storage,
        ErrorCode::Keyring => CommandErrorCode::Keyring,
        ErrorCode::Process => CommandErrorCode::Process,
    }
}

/// An RFC 3339 timestamp as unix ms; `None` when empty or not a timestamp.
pub fn ms(raw: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

fn protocol(what: &str, message: String) -> CommandError {
    CommandError::new(
        CommandErrorCode::Protocol,
        format!("the agent-service sent {what} the console does not understand: {message}"),
    )
}

// --- permissions ------------------------------------------------------------------------

/// The role an action needs on the agent-service; `None` for actions of the console itself
/// (profiles, settings, Ollama), which any operator may take.
pub fn required_roles(action: ActionId) -> Option<&'static [&'static str]> {
    match action {
        ActionId::Approve | ActionId::Reject => Some(&["approver"]),
        ActionId::VerifyAudit => Some(&["viewer", "approver", "operator"]),
        ActionId::IncidentSwitch | ActionId::UnfreezeWrites | ActionId::StartEval => {
            Some(&["operator"])
        }
        ActionId::ManageReceivers => Some(&["admin"]),
        ActionId::PullModel
        | ActionId::RunSmoke
        | ActionId::ManageProfiles
        | ActionId::UpdateSettings => None,
    }
}

/// What a key with `roles` may do; `no_roles_reason` explains a denial when the roles could
/// not be read (no profile, service unreachable). `admin` allows everything.
pub fn permissions(
    profile_id: Option<&str>,
    roles: &[String],
    no_roles_reason: Option<&str>,
) -> dto::Permissions {
    let actions = ActionId::ALL
        .into_iter()
        .map(|action| {
            let reason = match (required_roles(action), no_roles_reason) {
                (None, _) => None,
                (Some(_), Some(why)) => Some(why.to_string()),
                (Some(_), None) if roles.iter().any(|r| r == "admin") => None,
                (Some(need), None) if need.iter().any(|n| roles.iter().any(|r| r == n)) => None,
                (Some(need), None) => Some(format!(
                    "The key's roles ({}) do not include {}",
                    if roles.is_empty() {
                        "none".to_string()
                    } else {
                        roles.join(", ")
                    },
                    need.join(" or ")
                )),
            };
            ActionPermission {
                action,
                allowed: reason.is_none(),
                reason,
            }
        })
        .collect();
    dto::Permissions {
        profile_id: profile_id.map(str::to_string),
        roles: roles.to_vec(),
        actions,
    }
}

/// The `forbidden` error for an action `perms` denies, if it does.
pub fn denied(perms: &dto::Permissions, action: ActionId) -> Option<CommandError> {
    perms
        .actions
        .iter()
        .find(|p| p.action == action && !p.allowed)
        .map(|p| {
            CommandError::new(
                CommandErrorCode::Forbidden,
                p.reason.clone().unwrap_or_else(|| "not allowed".into()),
            )
        })
}

// --- approvals ---------------------------------------------------------------------------

pub fn approval_status(s: wire::ApprovalStatus) -> Result<dto::ApprovalStatus, CommandError> {
    use dto::ApprovalStatus as D;
    use wire::ApprovalStatus as W;
    Ok(match s {
        W::Pending => D::Pending,
        W::Approved => D::Approved,
        W::Executing => D::Executing,
        W::Executed => D::Executed,
        W::Failed => D::Failed,
        W::Rejected => D::Rejected,
        W::Expired => D::Expired,
        W::Cancelled => D::Cancelled,
        W::Unknown => {
            return Err(protocol(
                "an approval status",
                "unknown status (is the console older than the service?)".into(),
            ));
        }
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

pub fn approval_summary(a: &wire::Approval) -> Result<dto::ApprovalSummary, CommandError> {
    Ok(dto::ApprovalSummary {
        id: a.id.clone(),
        workflow: a.workflow.clone(),
        tool: a.tool.clone(),
        resource: text(&a.proposed_change["resource"]),
        risk_tier: a.risk_tier,
        requested_by: a.requested_by.clone(),
        status: approval_status(a.status)?,
        required_approvals: a.required_approvals,
        approvals_count: a.approvals_count,
        release: dto::ReleaseRef {
            version: a.release.version.clone(),
            git_sha: a.release.git_sha.clone(),
            track: a.release.track.clone(),
        },
        created_at_ms: ms(&a.created_at).unwrap_or(0),
        expires_at_ms: ms(&a.expires_at).unwrap_or(0),
        decided_at_ms: a.decided_at.as_deref().and_then(ms),
    })
}

pub fn approval_detail(a: &wire::Approval) -> Result<dto::ApprovalDetail, CommandError> {
    let decisions = a
        .decisions
        .iter()
        .map(|d| {
            let decision = match d.decision.as_str() {
                "approve" | "approved" => dto::DecisionKind::Approve,
                "reject" | "rejected" => dto::DecisionKind::Reject,
                other => return Err(protocol("a decision", format!("{other:?}"))),
            };
            Ok(dto::Decision {
                approver: if d.approver_name.is_empty() {
                    d.approver.clone()
                } else {
                    d.approver_name.clone()
                },
                decision,
                reason: d.reason.clone(),
                decided_at_ms: ms(&d.decided_at).unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let evidence = a
        .evidence
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| dto::Evidence {
                    kind: text(&e["type"]),
                    id: text(&e["id"]),
                    title: e["title"].as_str().map(str::to_string),
                    source: text(&e["source"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let pc = &a.proposed_change;
    Ok(dto::ApprovalDetail {
        summary: approval_summary(a)?,
        arguments: serde_json::to_string_pretty(&a.arguments).unwrap_or_default(),
        proposed_change: dto::ProposedChange {
            resource: text(&pc["resource"]),
            before: text(&pc["before"]),
            after: text(&pc["after"]),
            diff: text(&pc["diff"]),
        },
        evidence,
        request_id: a.request_id.clone(),
        trace_id: a.trace_id.clone(),
        policy_version: a.policy_version.clone(),
        decisions,
        execution: a.execution.as_ref().map(|e| dto::Execution {
            status: e.status.clone(),
            attempts: e.attempts,
            error: e.error.clone(),
            executed_at_ms: e.executed_at.as_deref().and_then(ms),
        }),
    })
}

/// How a queue event changes the pending list the UI shows.
pub fn approval_event_kind(kind: &crate::agent::ApprovalEventKind) -> dto::ApprovalEventKind {
    use crate::agent::ApprovalEventKind as K;
    match kind {
        K::Created => dto::ApprovalEventKind::Created,
        K::Executed | K::Rejected | K::Expired | K::Cancelled | K::Failed => {
            dto::ApprovalEventKind::Removed
        }
        K::Approved | K::Executing | K::Other(_) => dto::ApprovalEventKind::Updated,
    }
}

pub fn audit_status(a: &wire::AuditVerify, now_ms: i64) -> dto::AuditStatus {
    dto::AuditStatus {
        ok: a.ok,
        checked: a.checked,
        first_broken: a.first_broken.as_ref().map(|b| dto::BrokenLink {
            seq: b.seq,
            id: b.id.clone(),
            reason: b.reason.clone(),
        }),
        verified_at_ms: now_ms,
    }
}

pub fn freeze_state(f: &wire::FreezeState) -> dto::FreezeState {
    dto::FreezeState {
        frozen: f.frozen,
        reason: f.reason.clone(),
        changed_by: f.changed_by.clone(),
        changed_at_ms: f.changed_at.as_deref().and_then(ms),
    }
}

// --- traces -------------------------------------------------------------------------------

pub fn trace_status(raw: &str) -> Result<dto::TraceStatus, CommandError> {
    use dto::TraceStatus as S;
    Ok(match raw {
        "success" => S::Success,
        "approval_required" => S::ApprovalRequired,
        "blocked" => S::Blocked,
        "budget_exceeded" => S::BudgetExceeded,
        "degraded" => S::Degraded,
        "error" => S::Error,
        "cancelled" => S::Cancelled,
        other => return Err(protocol("a trace status", format!("{other:?}"))),
    })
}

pub fn trace_summary(t: &wire::TraceSummary) -> Result<dto::TraceSummary, CommandError> {
    Ok(dto::TraceSummary {
        trace_id: t.trace_id.clone(),
        request_id: t.request_id.clone(),
        workflow: t.workflow.clone(),
        status: trace_status(&t.status)?,
        error_code: t.error_code.clone(),
        started_at_ms: ms(&t.started_at).unwrap_or(0),
        duration_ms: t.duration_ms,
        tokens: t.tokens,
        cost_usd: t.cost_usd,
        model: t.model.clone(),
        span_count: t.span_count,
        flagged: t.flagged,
        guardrail_rule: t.guardrail_rule.clone(),
    })
}

/// A reason label as the service writes it, `name (+1.23)`, split into its name and weight;
/// a label of another shape is kept whole as the name.
pub fn guardrail_reason(label: &str) -> dto::GuardrailReason {
    let weighted = label
        .strip_suffix(')')
        .and_then(|l| l.rsplit_once(" ("))
        .and_then(|(name, w)| Some((name, w.parse::<f64>().ok()?)));
    match weighted {
        Some((name, w)) if !name.is_empty() => dto::GuardrailReason {
            name: name.to_string(),
            weight: Some(w),
        },
        _ => dto::GuardrailReason {
            name: label.to_string(),
            weight: None,
        },
    }
}

/// The run's guardrail decisions from its spans' `flightdeck.guardrail.*` attributes: the
/// input scan (always), each tool result the scan flagged or withheld, the answer's checks,
/// and an approval that carries flags; in the spans' order.
pub fn guardrail_checks(spans: &[wire::Span]) -> Vec<dto::GuardrailCheck> {
    use dto::GuardrailStage as Stage;
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            Value::String(s) if !s.is_empty() => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let mut checks = Vec::new();
    for s in spans {
        let a = &s.attributes;
        let verdict = a["flightdeck.guardrail.verdict"]
            .as_str()
            .map(str::to_string);
        let flags = strings(&a["flightdeck.guardrail.flags"]);
        let (stage, subject) = if s.name == "guardrail.input" {
            (Stage::Input, "input".to_string())
        } else if s.name == "guardrail.output" {
            (Stage::Output, "answer".to_string())
        } else if verdict.is_some() && a["gen_ai.operation.name"] == "execute_tool" {
            let tool = a["gen_ai.tool.name"]
                .as_str()
                .or_else(|| s.name.strip_prefix("execute_tool "))
                .unwrap_or(&s.name);
            (Stage::ToolResult, tool.to_string())
        } else if !flags.is_empty() {
            let resource = a["flightdeck.approval.resource"]
                .as_str()
                .unwrap_or("write");
            (Stage::Approval, resource.to_string())
        } else {
            continue;
        };
        checks.push(dto::GuardrailCheck {
            span_id: s.span_id.clone(),
            stage,
            subject,
            verdict,
            rule: a["flightdeck.guardrail.rule"]
                .as_str()
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            score: a["flightdeck.guardrail.score"].as_f64(),
            reasons: strings(&a["flightdeck.guardrail.reasons"])
                .iter()
                .map(|r| guardrail_reason(r))
                .collect(),
            links_removed: strings(&a["flightdeck.guardrail.links_removed"]),
            flags,
        });
    }
    checks
}

/// The span's role in a run, from its name and `gen_ai.operation.name`.
pub fn span_kind(name: &str, attributes: &Value, is_root: bool) -> dto::SpanKind {
    use dto::SpanKind as K;
    match attributes["gen_ai.operation.name"].as_str() {
        Some("chat") => return K::Llm,
        Some("execute_tool") => return K::Tool,
        _ => {}
    }
    if is_root {
        K::Request
    } else if name.starts_with("guardrail") {
        K::Guardrail
    } else if name.contains("retriev") || name.contains("search") {
        K::Retrieval
    } else if name.starts_with("approval") {
        K::Approval
    } else {
        K::Other
    }
}

pub fn span(s: &wire::Span) -> dto::Span {
    let attrs = &s.attributes;
    let int = |k: &str| attrs[k].as_i64();
    dto::Span {
        span_id: s.span_id.clone(),
        parent_span_id: s.parent_span_id.clone(),
        name: s.name.clone(),
        kind: span_kind(&s.name, attrs, s.parent_span_id.is_none()),
        status: if s.status == "error" {
            dto::SpanStatus::Error
        } else {
            dto::SpanStatus::Ok
        },
        start_ms: s.start_ms,
        duration_ms: s.duration_ms,
        model: attrs["gen_ai.response.model"]
            .as_str()
            .or(attrs["gen_ai.request.model"].as_str())
            .map(str::to_string),
        prompt_tokens: int("gen_ai.usage.input_tokens"),
        completion_tokens: int("gen_ai.usage.output_tokens"),
        cost_usd: attrs["flightdeck.cost_usd"].as_f64(),
        attributes: attrs
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| dto::SpanAttribute {
                        key: k.clone(),
                        value: match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        },
                    })
                    .collect()
            })
            .unwrap_or_default(),
        payload: s.payload.as_ref().filter(|p| !p.is_null()).map(text),
    }
}

// --- evals --------------------------------------------------------------------------------

fn eval_state(s: wire::EvalRunState) -> dto::EvalRunState {
    match s {
        wire::EvalRunState::Queued => dto::EvalRunState::Queued,
        wire::EvalRunState::Running => dto::EvalRunState::Running,
        wire::EvalRunState::Completed => dto::EvalRunState::Completed,
        wire::EvalRunState::Failed => dto::EvalRunState::Failed,
    }
}

pub fn verdict(v: wire::Verdict) -> dto::Verdict {
    match v {
        wire::Verdict::Pass => dto::Verdict::Pass,
        wire::Verdict::Fail => dto::Verdict::Fail,
    }
}

fn versions(v: &wire::Versions) -> dto::EvalVersions {
    dto::EvalVersions {
        release: v.release_version.clone(),
        git_sha: v.git_sha.clone(),
        model: v.model.clone(),
        prompt: v.prompt_version.clone(),
        policy: v.policy_version.clone(),
    }
}

pub fn eval_suite(s: &wire::EvalSuite) -> Result<dto::EvalSuite, CommandError> {
    Ok(dto::EvalSuite {
        name: s.name.clone(),
        kind: match s.kind.as_str() {
            "golden" => dto::EvalSuiteKind::Golden,
            "adversarial" => dto::EvalSuiteKind::Adversarial,
            other => return Err(protocol("a suite kind", format!("{other:?}"))),
        },
        description: s.description.clone(),
        cases: s.cases,
    })
}

pub fn eval_summary(r: &wire::EvalRunSummary) -> dto::EvalRunSummary {
    dto::EvalRunSummary {
        id: r.id.clone(),
        suite: r.suite.clone(),
        status: eval_state(r.status),
        done: r.progress.done,
        total: r.progress.total,
        versions: versions(&r.versions),
        gate: r.gate.map(verdict),
        pass_rate: r.pass_rate,
        created_at_ms: ms(&r.created_at).unwrap_or(0),
        finished_at_ms: r.finished_at.as_deref().and_then(ms),
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

pub fn eval_detail(r: &wire::EvalRun) -> dto::EvalRunDetail {
    let gate_verdict = r.gate.as_ref().map(|g| verdict(g.verdict));
    let pass_rate = r.scores.as_ref().and_then(|s| s["pass_rate"].as_f64());
    let summary = dto::EvalRunSummary {
        id: r.id.clone(),
        suite: r.suite.clone(),
        status: eval_state(r.status),
        done: r.progress.done,
        total: r.progress.total,
        versions: versions(&r.versions),
        gate: gate_verdict,
        pass_rate,
        created_at_ms: ms(&r.created_at).unwrap_or(0),
        finished_at_ms: r.finished_at.as_deref().and_then(ms),
    };
    let scores = r.scores.as_ref().map(|s| {
        let u = |k: &str| s[k].as_u64().unwrap_or(0);
        let f = |k: &str| s[k].as_f64().unwrap_or(0.0);
        dto::EvalScores {
            cases: u("cases"),
            passed: u("passed"),
            failed: u("failed"),
            pass_rate: f("pass_rate"),
            // Null (no adversarial cases / no evidence answers) reads as "nothing failed".
            policy_compliance: s["policy_compliance"].as_f64().unwrap_or(1.0),
            citation_rate: s["citation_rate"].as_f64().unwrap_or(1.0),
            latency_p50_ms: f("latency_p50_ms"),
            latency_p95_ms: f("latency_p95_ms"),
            tokens: u("total_tokens"),
            cost_usd: f("cost_usd"),
        }
    });
    let gate = r.gate.as_ref().map(|g| dto::Gate {
        verdict: verdict(g.verdict),
        reasons: g.reasons.clone(),
        checks: g
            .checks
            .iter()
            .map(|c| {
                let bound = if c["bound"].as_str() == Some("max") {
                    "≤"
                } else {
                    "≥"
                };
                dto::GateCheck {
                    name: text(&c["name"]),
                    threshold: format!(
                        "{bound} {}",
                        fmt_num(c["threshold"].as_f64().unwrap_or(0.0))
                    ),
                    actual: c["actual"]
                        .as_f64()
                        .map_or_else(|| "n/a".to_string(), fmt_num),
                    passed: c["passed"].as_bool().unwrap_or(false),
                }
            })
            .collect(),
    });
    let baseline = r.baseline.as_ref().filter(|b| !b.is_null()).map(|b| {
        let flips = b["flipped"].as_array().cloned().unwrap_or_default();
        let ids = |before: &str| {
            flips
                .iter()
                .filter(|f| f["before"].as_str() == Some(before))
                .map(|f| text(&f["case_id"]))
                .collect()
        };
        dto::BaselineDiff {
            baseline_run_id: text(&b["baseline_run_id"]),
            pass_rate_delta: b["deltas"]["pass_rate"].as_f64().unwrap_or(0.0),
            regressions: ids("pass"),
            fixes: ids("fail"),
        }
    });
    dto::EvalRunDetail {
        summary,
        error: r.error.clone(),
        scores,
        gate,
        baseline,
        cases: r
            .cases
            .iter()
            .map(|c| dto::CaseResult {
                case_id: c.case_id.clone(),
                workflow: c.workflow.clone(),
                passed: c.passed,
                status: c.status.clone(),
                latency_ms: c.latency_ms,
                cost_usd: c.cost_usd,
                answer_excerpt: c.answer_excerpt.clone(),
                assertions: c
                    .assertions
                    .iter()
                    .map(|a| dto::Assertion {
                        kind: a.kind.clone(),
                        expected: a.expected.clone(),
                        actual: a.actual.clone(),
                        passed: a.passed,
                    })
                    .collect(),
                error: c.error.clone(),
            })
            .collect(),
    }
}

/// Completed runs with a pass rate, oldest first, as points of the pass-rate chart.
pub fn pass_rates(runs: &[dto::EvalRunSummary]) -> Vec<dto::PassRatePoint> {
    let mut out: Vec<dto::PassRatePoint> = runs
        .iter()
        .filter(|r| r.status == dto::EvalRunState::Completed)
        .filter_map(|r| {
            Some(dto::PassRatePoint {
                suite: r.suite.clone(),
                release: r.versions.release.clone(),
                run_id: r.id.clone(),
                pass_rate: r.pass_rate?,
                gate: r.gate,
                finished_at_ms: r.finished_at_ms.unwrap_or(r.created_at_ms),
            })
        })
        .collect();
    out.sort_by_key(|p| p.finished_at_ms);
    out
}

// --- smoke ----------------------------------------------------------------------------------

pub fn check_result(c: &crate::smoke::CheckResult) -> dto::CheckResult {
    dto::CheckResult {
        name: c.name.clone(),
        title: c.title.clone(),
        status: match c.status {
            crate::smoke::CheckStatus::Pass => dto::CheckStatus::Pass,
            crate::smoke::CheckStatus::Fail => dto::CheckStatus::Fail,
            crate::smoke::CheckStatus::Skip => dto::CheckStatus::Skip,
        },
        reason: c.reason.clone(),
        measurements: c
            .measurements
            .iter()
            .map(|m| dto::Measurement {
                name: m.name.clone(),
                value: m.value,
                unit: m.unit.clone(),
            })
            .collect(),
        duration_ms: c.duration_ms,
    }
}

pub fn smoke_target(t: crate::smoke::SmokeTarget) -> dto::SmokeTarget {
    match t {
        crate::smoke::SmokeTarget::Ollama => dto::SmokeTarget::Ollama,
        crate::smoke::SmokeTarget::OpenaiCompatible => dto::SmokeTarget::OpenaiCompatible,
    }
}

pub fn smoke_report(r: &crate::smoke::SmokeReport) -> dto::SmokeReport {
    dto::SmokeReport {
        id: r.id.clone(),
        target: smoke_target(r.target),
        server_url: r.server_url.clone(),
        agent_url: r.agent_url.clone(),
        model: r.model.clone(),
        started_at_ms: r.started_at_ms,
        finished_at_ms: r.finished_at_ms,
        checks: r.checks.iter().map(check_result).collect(),
    }
}

// --- overview ---------------------------------------------------------------------------------

pub fn dependency_status(raw: &str) -> dto::DependencyStatus {
    match raw {
        "ok" | "up" | "ready" | "closed" => dto::DependencyStatus::Ok,
        "degraded" | "half_open" | "slow" => dto::DependencyStatus::Degraded,
        _ => dto::DependencyStatus::Failing,
    }
}

pub fn circuit_state(raw: &str) -> Option<dto::CircuitState> {
    match raw {
        "closed" => Some(dto::CircuitState::Closed),
        "open" => Some(dto::CircuitState::Open),
        "half_open" | "half-open" => Some(dto::CircuitState::HalfOpen),
        _ => None,
    }
}

/// The service's chain from `/readyz`, in chain order, each link with its own check.
pub fn provider_chain(r: &wire::ChainReadiness) -> Vec<dto::ProviderLink> {
    r.chain
        .iter()
        .filter_map(|name| r.links.iter().find(|l| &l.name == name))
        .map(|l| dto::ProviderLink {
            name: l.name.clone(),
            kind: l.kind.clone(),
            model: l.model.clone(),
            status: dependency_status(&l.status),
            circuit: circuit_state(&l.circuit),
            serving: r.serving.as_deref() == Some(l.name.as_str()),
            detail: l.detail.clone(),
        })
        .collect()
}

pub fn badge(b: &crate::alerts::Badge) -> dto::AlertBadge {
    use crate::alerts::{Rule, Severity};
    dto::AlertBadge {
        rule: match b.rule {
            Rule::LatencyP99 => dto::AlertRule::LatencyP99,
            Rule::ErrorRate => dto::AlertRule::ErrorRate,
            Rule::QueueDepth => dto::AlertRule::QueueDepth,
            Rule::BudgetBurn => dto::AlertRule::BudgetBurn,
            Rule::CircuitOpen => dto::AlertRule::CircuitOpen,
        },
        severity: match b.severity {
            Severity::Warning => dto::Severity::Warning,
            Severity::Critical => dto::Severity::Critical,
        },
        value: b.value,
        threshold: b.threshold,
        reason: b.reason.clone(),
    }
}

pub fn version_set(info: &wire::Info) -> dto::VersionSet {
    dto::VersionSet {
        release: info.version.clone(),
        git_sha: info.git_sha.clone(),
        model: info.provider.model.clone(),
        prompt: info.prompt_version.clone(),
        policy: info.policy_version.clone(),
    }
}

/// The fields that differ between two version sets, as "what changed" entries at `at_ms`.
pub fn version_changes(
    from: &dto::VersionSet,
    to: &dto::VersionSet,
    at_ms: i64,
) -> Vec<dto::VersionChange> {
    use dto::VersionField as F;
    [
        (F::Release, &from.release, &to.release),
        (F::GitSha, &from.git_sha, &to.git_sha),
        (F::Model, &from.model, &to.model),
        (F::Prompt, &from.prompt, &to.prompt),
        (F::Policy, &from.policy, &to.policy),
    ]
    .into_iter()
    .filter(|(_, a, b)| a != b)
    .map(|(field, a, b)| dto::VersionChange {
        field,
        from: a.clone(),
        to: b.clone(),
        at_ms,
    })
    .collect()
}

pub fn chart_window(w: dto::ChartWindow) -> crate::series::Window {
    use crate::series::Window;
    match w {
        dto::ChartWindow::M5 => Window::M5,
        dto::ChartWindow::M15 => Window::M15,
        dto::ChartWindow::H1 => Window::H1,
        dto::ChartWindow::H6 => Window::H6,
        dto::ChartWindow::H24 => Window::H24,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ApiError;

    fn approval(extra: Value) -> wire::Approval {
        let mut base = json!({
            "id": "apr_1", "workflow": "ticket_update", "tool": "ticket_update",
            "arguments": {"ticket_id": "T-1001", "status": "closed"},
            "proposed_change": {"resource": "ticket/T-1001", "before": {"status": "open"},
                                "after": {"status": "closed"}, "diff": "-open\n+closed"},
            "evidence": [{"type": "ticket", "id": "T-1001", "title": "Login fails", "source": "tickets"}],
            "risk_tier": 2, "requested_by": "key_invoke", "request_id": "req_1", "trace_id": "tr_1",
            "required_approvals": 2, "approvals_count": 1, "status": "pending",
            "release": {"version": "1.4.0", "git_sha": "abc123", "track": "canary"},
            "policy_version": "guardrails-v3",
            "created_at": "2025-03-03T09:00:00Z", "expires_at": "2025-03-03T09:15:00.500Z",
            "decisions": [{"approver": "key_a", "approver_name": "alice", "decision": "approve",
                           "reason": "ok", "decided_at": "2025-03-03T09:01:00Z"}],
            "execution": null
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn service_errors_keep_their_code_request_id_and_retry_hint() {
        let e = Error::Api(Box::new(ApiError {
            code: ErrorCode::RateLimited {
                retry_after_secs: Some(4),
            },
            status: 429,
            server_code: "rate_limited".into(),
            message: "slow down".into(),
            request_id: Some("req_9".into()),
            endpoint: "http://x/v1/invoke".into(),
        }));
        let c = CommandError::from(e);
        assert_eq!(c.code, CommandErrorCode::RateLimited);
        assert_eq!(c.server_code.as_deref(), Some("rate_limited"));
        assert_eq!(c.request_id.as_deref(), Some("req_9"));
        assert_eq!(c.retry_after_secs, Some(4));
        assert!(c.message.contains("slow down"));
        // A status without an envelope has no server code worth showing.
        let bare = CommandError::from(Error::Api(Box::new(ApiError {
            code: ErrorCode::Unavailable {
                retry_after_secs: None,
            },
            status: 502,
            server_code: "http_502".into(),
            message: "bad gateway".into(),
            request_id: None,
            endpoint: "http://x".into(),
        })));
        assert_eq!(bare.server_code, None);
        let local = CommandError::from(Error::Storage("disk full".into()));
        assert_eq!(
            serde_json::to_value(&local).unwrap(),
            json!({"code": "storage", "message": "local store: disk full",
                   "server_code": null, "request_id": null, "retry_after_secs": null})
        );
    }

    #[test]
    fn roles_map_to_actions_with_reasons() {
        let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let allowed = |p: &dto::Permissions| {
            p.actions
                .iter()
                .filter(|a| a.allowed)
                .map(|a| a.action)
                .collect::<Vec<_>>()
        };
        let console_only = [
            ActionId::PullModel,
            ActionId::RunSmoke,
            ActionId::ManageProfiles,
            ActionId::UpdateSettings,
        ];
        let viewer = permissions(Some("prod"), &roles(&["viewer"]), None);
        let mut want = vec![ActionId::VerifyAudit];
        want.extend(console_only);
        assert_eq!(allowed(&viewer), want);
        let reason = |p: &dto::Permissions, a| {
            p.actions
                .iter()
                .find(|x| x.action == a)
                .and_then(|x| x.reason.clone())
        };
        assert_eq!(
            reason(&viewer, ActionId::Approve).as_deref(),
            Some("The key's roles (viewer) do not include approver")
        );
        assert_eq!(
            reason(&viewer, ActionId::StartEval).as_deref(),
            Some("The key's roles (viewer) do not include operator")
        );
        let approver = permissions(Some("prod"), &roles(&["approver", "viewer"]), None);
        assert!(denied(&approver, ActionId::Approve).is_none());
        assert_eq!(
            denied(&approver, ActionId::IncidentSwitch).map(|e| e.code),
            Some(CommandErrorCode::Forbidden)
        );
        assert_eq!(
            allowed(&permissions(Some("p"), &roles(&["admin"]), None)).len(),
            ActionId::ALL.len()
        );
        let invoke_only = permissions(Some("p"), &roles(&["invoke"]), None);
        assert_eq!(allowed(&invoke_only), console_only.to_vec());
        let offline = permissions(Some("p"), &[], Some("The key's roles could not be read"));
        assert_eq!(allowed(&offline), console_only.to_vec());
        assert_eq!(
            reason(&offline, ActionId::Reject).as_deref(),
            Some("The key's roles could not be read")
        );
        let none = permissions(None, &[], None);
        assert!(reason(&none, ActionId::Approve).unwrap().contains("(none)"));
    }

    #[test]
    fn approvals_map_with_times_diff_and_decisions() {
        let a = approval(json!({}));
        let d = approval_detail(&a).unwrap();
        let s = &d.summary;
        assert_eq!(s.resource, "ticket/T-1001");
        assert_eq!(s.created_at_ms, 1_740_992_400_000);
        assert_eq!(s.expires_at_ms, 1_740_992_400_000 + 15 * 60_000 + 500);
        assert_eq!((s.required_approvals, s.approvals_count), (2, 1));
        assert_eq!(s.release.track, "canary");
        assert_eq!(s.decided_at_ms, None);
        assert_eq!(d.proposed_change.diff, "-open\n+closed");
        assert!(d.proposed_change.before.contains("\"status\": \"open\""));
        assert!(d.arguments.contains("\"ticket_id\": \"T-1001\""));
        assert_eq!(d.evidence[0].kind, "ticket");
        assert_eq!(d.evidence[0].title.as_deref(), Some("Login fails"));
        assert_eq!(d.decisions[0].approver, "alice");
        assert_eq!(d.decisions[0].decision, dto::DecisionKind::Approve);
        assert_eq!(d.decisions[0].decided_at_ms, 1_740_992_460_000);

        let odd = approval(json!({"status": "teleported"}));
        assert_eq!(
            approval_summary(&odd).unwrap_err().code,
            CommandErrorCode::Protocol
        );
        let odd = approval(json!({"decisions": [{"approver": "x", "decision": "maybe"}]}));
        assert_eq!(
            approval_detail(&odd).unwrap_err().code,
            CommandErrorCode::Protocol
        );
    }

    #[test]
    fn queue_events_map_to_created_updated_removed() {
        use crate::agent::ApprovalEventKind as K;
        let cases = [
            (K::Created, dto::ApprovalEventKind::Created),
            (K::Approved, dto::ApprovalEventKind::Updated),
            (K::Executing, dto::ApprovalEventKind::Updated),
            (K::Executed, dto::ApprovalEventKind::Removed),
            (K::Rejected, dto::ApprovalEventKind::Removed),
            (K::Expired, dto::ApprovalEventKind::Removed),
            (K::Cancelled, dto::ApprovalEventKind::Removed),
            (K::Failed, dto::ApprovalEventKind::Removed),
            (K::Other("x".into()), dto::ApprovalEventKind::Updated),
        ];
        for (k, want) in cases {
            assert_eq!(approval_event_kind(&k), want, "{k:?}");
        }
    }

    #[test]
    fn guardrail_decisions_are_read_from_the_spans() {
        let span = |id: &str, name: &str, attrs: Value| wire::Span {
            span_id: id.into(),
            parent_span_id: Some("root".into()),
            name: name.into(),
            kind: "internal".into(),
            status: "ok".into(),
            start_ms: 0.0,
            duration_ms: 1.0,
            attributes: attrs,
            payload: None,
        };
        let spans = [
            span(
                "root",
                "request",
                json!({"flightdeck.guardrail.flagged": true, "flightdeck.guardrail.rule": "x"}),
            ),
            span(
                "in",
                "guardrail.input",
                json!({"flightdeck.guardrail.verdict": "flag", "flightdeck.guardrail.rule": "prompt_injection",
                       "flightdeck.guardrail.score": 0.71,
                       "flightdeck.guardrail.reasons": ["override_prior (+3.25)", "classifier (-1.00)", "odd label"]}),
            ),
            // A tool call the scan passed: no decision recorded, not listed.
            span(
                "t1",
                "execute_tool records",
                json!({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "records"}),
            ),
            span(
                "t2",
                "execute_tool kb_search",
                json!({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "kb_search",
                       "flightdeck.guardrail.verdict": "withhold",
                       "flightdeck.guardrail.rule": "tool_result:prompt_injection",
                       "flightdeck.guardrail.score": 0.97,
                       "flightdeck.guardrail.reasons": ["new_instructions (+3.34)"]}),
            ),
            span(
                "ap",
                "approval.create",
                json!({"flightdeck.guardrail.flags": ["input: prompt_injection"],
                       "flightdeck.approval.resource": "ticket T-1001"}),
            ),
            span(
                "out",
                "guardrail.output",
                json!({"flightdeck.guardrail.verdict": "redacted", "flightdeck.guardrail.rule": "email",
                       "flightdeck.guardrail.links_removed": ["evil.example"]}),
            ),
        ];
        let checks = guardrail_checks(&spans);
        let brief: Vec<(&str, dto::GuardrailStage, &str, Option<&str>)> = checks
            .iter()
            .map(|c| {
                (
                    c.span_id.as_str(),
                    c.stage,
                    c.subject.as_str(),
                    c.verdict.as_deref(),
                )
            })
            .collect();
        use dto::GuardrailStage as S;
        assert_eq!(
            brief,
            [
                ("in", S::Input, "input", Some("flag")),
                ("t2", S::ToolResult, "kb_search", Some("withhold")),
                ("ap", S::Approval, "ticket T-1001", None),
                ("out", S::Output, "answer", Some("redacted")),
            ]
        );
        let input = &checks[0];
        assert_eq!(input.rule.as_deref(), Some("prompt_injection"));
        assert_eq!(input.score, Some(0.71));
        let reasons: Vec<(&str, Option<f64>)> = input
            .reasons
            .iter()
            .map(|r| (r.name.as_str(), r.weight))
            .collect();
        assert_eq!(
            reasons,
            [
                ("override_prior", Some(3.25)),
                ("classifier", Some(-1.0)),
                ("odd label", None)
            ]
        );
        assert_eq!(checks[1].score, Some(0.97));
        assert_eq!(checks[2].flags, ["input: prompt_injection"]);
        assert_eq!(checks[3].links_removed, ["evil.example"]);
        assert_eq!(guardrail_reason("(+1.00)").name, "(+1.00)");
        assert_eq!(guardrail_reason("a (b)").weight, None);
    }

    #[test]
    fn spans_get_a_kind_model_tokens_and_cost() {
        let span = |name: &str, parent: Option<&str>, attrs: Value| wire::Span {
            span_id: "s".into(),
            parent_span_id: parent.map(str::to_string),
            name: name.into(),
            kind: "internal".into(),
            status: "ok".into(),
            start_ms: 1.5,
            duration_ms: 2.0,
            attributes: attrs,
            payload: Some(json!({"text": "[REDACTED:email]"})),
        };
        let llm = map_span(span(
            "chat scripted-v1",
            Some("root"),
            json!({"gen_ai.operation.name": "chat", "gen_ai.request.model": "scripted-v1",
                   "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 5,
                   "flightdeck.cost_usd": 0.0004}),
        ));
        assert_eq!(llm.kind, dto::SpanKind::Llm);
        assert_eq!(llm.model.as_deref(), Some("scripted-v1"));
        assert_eq!(
            (llm.prompt_tokens, llm.completion_tokens),
            (Some(12), Some(5))
        );
        assert_eq!(llm.cost_usd, Some(0.0004));
        assert!(llm.payload.unwrap().contains("[REDACTED:email]"));
        assert!(
            llm.attributes
                .iter()
                .any(|a| a.key == "gen_ai.usage.input_tokens" && a.value == "12")
        );
        let kinds = [
            ("invoke", None, json!({}), dto::SpanKind::Request),
            (
                "guardrail.input",
                Some("r"),
                json!({}),
                dto::SpanKind::Guardrail,
            ),
            (
                "approval.create",
                Some("r"),
                json!({}),
                dto::SpanKind::Approval,
            ),
            (
                "retrieval.search",
                Some("r"),
                json!({}),
                dto::SpanKind::Retrieval,
            ),
            (
                "execute_tool kb_search",
                Some("r"),
                json!({"gen_ai.operation.name": "execute_tool"}),
                dto::SpanKind::Tool,
            ),
            ("something", Some("r"), json!({}), dto::SpanKind::Other),
        ];
        for (name, parent, attrs, want) in kinds {
            assert_eq!(map_span(span(name, parent, attrs)).kind, want, "{name}");
        }
        let trace_status_cases = [
            ("success", true),
            ("approval_required", true),
            ("weird", false),
        ];
        for (raw, ok) in trace_status_cases {
            assert_eq!(trace_status(raw).is_ok(), ok, "{raw}");
        }
    }

    fn map_span(s: wire::Span) -> dto::Span {
        span(&s)
    }

    #[test]
    fn eval_runs_map_scores_gate_and_baseline() {
        let run: wire::EvalRun = serde_json::from_value(json!({
            "id": "run_1", "suite": "golden", "status": "completed",
            "progress": {"done": 3, "total": 3},
            "versions": {"release_version": "1.4.0", "git_sha": "abc", "model": "scripted-v1",
                         "prompt_version": "v3", "policy_version": "guardrails-v3"},
            "created_at": "2025-03-03T09:00:00Z", "finished_at": "2025-03-03T09:00:05Z",
            "scores": {"cases": 3, "passed": 2, "failed": 1, "pass_rate": 0.6667,
                       "policy_compliance": null, "citation_rate": 1.0,
                       "latency_p50_ms": 12, "latency_p95_ms": 40, "total_tokens": 900, "cost_usd": 0.01},
            "gate": {"verdict": "fail", "reasons": ["pass rate 0.67 < 0.95"],
                     "checks": [{"name": "pass_rate", "bound": "min", "threshold": 0.95, "actual": 0.6667, "passed": false},
                                {"name": "latency_p95_ms", "bound": "max", "threshold": 8000.0, "actual": null, "passed": true}]},
            "baseline": {"baseline_run_id": "run_0", "deltas": {"pass_rate": -0.3333},
                         "flipped": [{"case_id": "c2", "before": "pass", "after": "fail"},
                                     {"case_id": "c3", "before": "fail", "after": "pass"}]},
            "cases": [{"case_id": "c1", "workflow": "faq", "passed": true, "status": "success",
                       "latency_ms": 12, "cost_usd": 0.001, "answer_excerpt": "Reset it…",
                       "assertions": [{"kind": "contains", "expected": "reset", "actual": "Reset it", "passed": true}]}]
        }))
        .unwrap();
        let d = eval_detail(&run);
        assert_eq!(d.summary.status, dto::EvalRunState::Completed);
        assert_eq!((d.summary.done, d.summary.total), (3, 3));
        assert_eq!(d.summary.versions.release, "1.4.0");
        assert_eq!(d.summary.pass_rate, Some(0.6667));
        assert_eq!(d.summary.gate, Some(dto::Verdict::Fail));
        assert_eq!(d.summary.created_at_ms, 1_740_992_400_000);
        assert_eq!(d.summary.finished_at_ms, Some(1_740_992_405_000));
        let s = d.scores.unwrap();
        assert_eq!((s.cases, s.passed, s.failed, s.tokens), (3, 2, 1, 900));
        assert_eq!(s.policy_compliance, 1.0, "no adversarial cases");
        let g = d.gate.unwrap();
        assert_eq!(g.checks[0].threshold, "≥ 0.950");
        assert_eq!(g.checks[0].actual, "0.667");
        assert_eq!(g.checks[1].threshold, "≤ 8000");
        assert_eq!(g.checks[1].actual, "n/a");
        let b = d.baseline.unwrap();
        assert_eq!(
            (b.regressions, b.fixes),
            (vec!["c2".to_string()], vec!["c3".to_string()])
        );
        assert_eq!(d.cases[0].assertions[0].kind, "contains");

        let points = pass_rates(&[
            dto::EvalRunSummary {
                finished_at_ms: Some(20),
                ..d.summary.clone()
            },
            dto::EvalRunSummary {
                id: "run_0".into(),
                finished_at_ms: Some(10),
                ..d.summary.clone()
            },
            dto::EvalRunSummary {
                id: "running".into(),
                status: dto::EvalRunState::Running,
                pass_rate: None,
                ..d.summary.clone()
            },
        ]);
        let ids: Vec<&str> = points.iter().map(|p| p.run_id.as_str()).collect();
        assert_eq!(ids, ["run_0", "run_1"], "completed runs, oldest first");
    }

    #[test]
    fn version_changes_name_each_changed_field() {
        let a = dto::VersionSet {
            release: "1.3.0".into(),
            git_sha: "a".into(),
            model: "m".into(),
            prompt: "v1".into(),
            policy: "p".into(),
        };
        assert!(version_changes(&a, &a, 5).is_empty());
        let b = dto::VersionSet {
            release: "1.4.0".into(),
            prompt: "v2".into(),
            ..a.clone()
        };
        let c = version_changes(&a, &b, 5);
        let got: Vec<(dto::VersionField, &str, &str)> = c
            .iter()
            .map(|c| (c.field, c.from.as_str(), c.to.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (dto::VersionField::Release, "1.3.0", "1.4.0"),
                (dto::VersionField::Prompt, "v1", "v2")
            ]
        );
        assert!(c.iter().all(|c| c.at_ms == 5));
    }

    #[test]
    fn the_provider_chain_is_in_chain_order_with_the_serving_link() {
        let link = |name: &str, status: &str, circuit: &str| wire::LinkCheck {
            name: name.into(),
            kind: "ollama".into(),
            model: "llama3.2".into(),
            status: status.into(),
            detail: format!("{name} detail"),
            circuit: circuit.into(),
            serving: false,
        };
        let r = wire::ChainReadiness {
            chain: vec!["local".into(), "hosted".into()],
            serving: Some("hosted".into()),
            links: vec![
                link("hosted", "ok", "closed"),
                link("local", "failing", "open"),
                link("faq-only", "ok", "closed"),
            ],
        };
        let got: Vec<(
            String,
            dto::DependencyStatus,
            Option<dto::CircuitState>,
            bool,
        )> = provider_chain(&r)
            .into_iter()
            .map(|l| (l.name, l.status, l.circuit, l.serving))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "local".to_string(),
                    dto::DependencyStatus::Failing,
                    Some(dto::CircuitState::Open),
                    false
                ),
                (
                    "hosted".to_string(),
                    dto::DependencyStatus::Ok,
                    Some(dto::CircuitState::Closed),
                    true
                ),
            ],
            "the service's chain only, in its order"
        );
        assert!(provider_chain(&wire::ChainReadiness::default()).is_empty());
    }

    #[test]
    fn timestamps_and_dependency_states() {
        assert_eq!(ms("1970-01-01T00:00:01.250Z"), Some(1250));
        assert_eq!(ms("2025-03-03T10:00:00+01:00"), Some(1_740_992_400_000));
        assert_eq!(ms(""), None);
        assert_eq!(ms("yesterday"), None);
        assert_eq!(dependency_status("ok"), dto::DependencyStatus::Ok);
        assert_eq!(
            dependency_status("degraded"),
            dto::DependencyStatus::Degraded
        );
        assert_eq!(dependency_status("down"), dto::DependencyStatus::Failing);
        assert_eq!(
            circuit_state("half_open"),
            Some(dto::CircuitState::HalfOpen)
        );
        assert_eq!(circuit_state(""), None);
    }
}
