//! Prometheus metrics, exposed in the text format at `/metrics`, and the quality windows
//! behind `/v1/info`'s quality summary ([`crate::quality`]).
//!
//! Label sets are bounded: `workflow` is one of the configured workflows, `track` one of
//! `stable`/`canary`, and `tenant` one of the first `METRICS_TENANT_LABELS` tenants this
//! process saw, later ones counted as [`OTHER_TENANT`].

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::broadcast;

use crate::config::QualityConfig;
use crate::quality::{AnswerKind, RunEnd, Windows, classify};

/// The `tenant` label of tenants past the label budget (`METRICS_TENANT_LABELS`). No
/// tenant id can start with `_`, so it never names a real tenant.
pub const OTHER_TENANT: &str = "_other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub workflow: String,
    pub status: String,
    pub track: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    pub tool: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub model: String,
    pub direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    pub dependency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderErrorLabels {
    pub provider: String,
    pub kind: String,
}

/// A hop of a provider chain: the link that failed, the one tried next, and why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FallbackLabels {
    pub from: String,
    pub to: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub git_sha: String,
    pub track: String,
    pub model: String,
    pub prompt_version: String,
    pub policy_version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantCostLabels {
    pub tenant: String,
    pub workflow: String,
    pub track: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantTokenLabels {
    pub tenant: String,
    pub workflow: String,
    pub track: String,
    pub direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkflowLabels {
    pub workflow: String,
    pub track: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CitationLabels {
    pub workflow: String,
    pub track: String,
    /// `cited` or `uncited`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnswerLabels {
    pub workflow: String,
    pub track: String,
    /// `answer`, `refusal`, `empty` or `truncated`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub workflow: String,
    pub track: String,
    /// `blocked` or `flagged`.
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkflowToolLabels {
    pub workflow: String,
    pub track: String,
    /// `ok` or `error`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApprovalDecisionLabels {
    pub workflow: String,
    pub track: String,
    /// `approved` or `rejected`.
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QualityAlertLabels {
    pub workflow: String,
    pub track: String,
    pub signal: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    /// The event kind (`approval.created`, …).
    pub kind: String,
    /// `delivered`, `retry`, `failed` (not retryable) or `dead` (out of attempts).
    pub outcome: String,
}

/// The `outcome` label values of `agent_notifications_total`.
pub const NOTIFICATION_OUTCOMES: [&str; 4] = ["delivered", "retry", "failed", "dead"];

/// A circuit breaker opening or closing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitChange {
    pub dependency: String,
    /// `true`: it opened (from closed); `false`: it closed again.
    pub open: bool,
}

/// The tenants that have a label of their own; the rest are [`OTHER_TENANT`].
#[derive(Debug)]
struct TenantLabelBudget {
    cap: AtomicUsize,
    named: Mutex<HashSet<String>>,
}

impl TenantLabelBudget {
    fn label(&self, tenant: &str) -> String {
        // The set holds no invariant a panicking holder could break.
        let mut named = self.named.lock().unwrap_or_else(|p| p.into_inner());
        if named.contains(tenant) {
            return tenant.to_string();
        }
        if named.len() < self.cap.load(Ordering::Relaxed) {
            named.insert(tenant.to_string());
            return tenant.to_string();
        }
        OTHER_TENANT.to_string()
    }
}

/// Buckets of `agent_answer_length_chars`.
fn answer_length_histogram() -> Histogram {
    Histogram::new([
        0.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0, 12800.0,
    ])
}

type F64Counter = Counter<f64, AtomicU64>;
type F64Gauge = Gauge<f64, AtomicU64>;

/// Every metric the service exports. Cheap to share: all handles are atomics.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Histogram,
    pub inflight: Gauge,
    pub tool_calls: Family<ToolLabels, Counter>,
    pub tokens: Family<TokenLabels, Counter>,
    pub cost_usd: Counter<f64, AtomicU64>,
    pub queue_depth: Gauge,
    pub guardrail_blocks: Family<RuleLabels, Counter>,
    /// Inputs and tool results the guardrails let through but flagged (traced with reasons).
    pub guardrail_flags: Family<RuleLabels, Counter>,
    pub approvals_pending: Gauge,
    pub approvals: Family<DecisionLabels, Counter>,
    pub budget_exceeded: Family<KindLabels, Counter>,
    pub circuit_state: Family<DependencyLabels, Gauge>,
    pub provider_errors: Family<ProviderErrorLabels, Counter>,
    /// Calls handed from one link of a provider chain to the next.
    pub provider_fallbacks: Family<FallbackLabels, Counter>,
    pub build_info: Family<BuildLabels, Gauge>,
    /// Traces not stored because the writer was behind (its channel full) or stopped.
    pub traces_dropped: Counter,
    /// The same drops by the run's status (`kind`): successful runs' go first.
    pub traces_dropped_by_kind: Family<KindLabels, Counter>,
    /// Successful runs' traces left out by `TRACE_SAMPLE_RATE` (by design, not a loss).
    pub traces_sampled_out: Counter,
    // -- cost and tokens by tenant and workflow --------------------------------------
    pub tenant_cost_usd: Family<TenantCostLabels, F64Counter>,
    pub tenant_tokens: Family<TenantTokenLabels, Counter>,
    /// Today's usage and daily budgets per tenant (refreshed by the quality watch).
    pub tenant_usage_today_cost_usd: Family<TenantLabel, F64Gauge>,
    pub tenant_usage_today_tokens: Family<TenantLabel, Gauge>,
    pub tenant_daily_budget_cost_usd: Family<TenantLabel, F64Gauge>,
    pub tenant_daily_budget_tokens: Family<TenantLabel, Gauge>,
    // -- quality signals ----------------------------------------------------------------
    pub citation_checks: Family<CitationLabels, Counter>,
    pub answers: Family<AnswerLabels, Counter>,
    pub guardrail_verdicts: Family<VerdictLabels, Counter>,
    pub workflow_tool_calls: Family<WorkflowToolLabels, Counter>,
    pub answer_length: Family<WorkflowLabels, Histogram, fn() -> Histogram>,
    pub approval_decisions: Family<ApprovalDecisionLabels, Counter>,
    /// The service's own quality alerts: 1 while firing, 0 once resolved.
    pub quality_alerts: Family<QualityAlertLabels, Gauge>,
    pub notifications: Family<NotificationLabels, Counter>,
    /// The recent runs behind `/v1/info`'s quality summary and the service's alerts.
    pub quality: Windows,
    tenants: TenantLabelBudget,
    circuit_changes: broadcast::Sender<CircuitChange>,
}

/// Circuit states as gauge values: 0 closed, 1 half-open, 2 open.
pub const CIRCUIT_CLOSED: i64 = 0;
pub const CIRCUIT_HALF_OPEN: i64 = 1;
pub const CIRCUIT_OPEN: i64 = 2;

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        // 15 s and 20 s between 10 s and 30 s: a model on a CPU answers in 3-30 s, and
        // without them every quantile of such runs is interpolated across one 20 s wide
        // bucket.
        let request_duration = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0,
        ]);
        let inflight = Gauge::default();
        let tool_calls = Family::<ToolLabels, Counter>::default();
        let tokens = Family::<TokenLabels, Counter>::default();
        let cost_usd = Counter::<f64, AtomicU64>::default();
        let queue_depth = Gauge::default();
        let guardrail_blocks = Family::<RuleLabels, Counter>::default();
        let guardrail_flags = Family::<RuleLabels, Counter>::default();
        let approvals_pending = Gauge::default();
        let approvals = Family::<DecisionLabels, Counter>::default();
        let budget_exceeded = Family::<KindLabels, Counter>::default();
        let circuit_state = Family::<DependencyLabels, Gauge>::default();
        let provider_errors = Family::<ProviderErrorLabels, Counter>::default();
        let provider_fallbacks = Family::<FallbackLabels, Counter>::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        let traces_dropped = Counter::default();
        let traces_dropped_by_kind = Family::<KindLabels, Counter>::default();
        let traces_sampled_out = Counter::default();
        let tenant_cost_usd = Family::<TenantCostLabels, F64Counter>::default();
        let tenant_tokens = Family::<TenantTokenLabels, Counter>::default();
        let tenant_usage_today_cost_usd = Family::<TenantLabel, F64Gauge>::default();
        let tenant_usage_today_tokens = Family::<TenantLabel, Gauge>::default();
        let tenant_daily_budget_cost_usd = Family::<TenantLabel, F64Gauge>::default();
        let tenant_daily_budget_tokens = Family::<TenantLabel, Gauge>::default();
        let citation_checks = Family::<CitationLabels, Counter>::default();
        let answers = Family::<AnswerLabels, Counter>::default();
        let guardrail_verdicts = Family::<VerdictLabels, Counter>::default();
        let workflow_tool_calls = Family::<WorkflowToolLabels, Counter>::default();
        let answer_length =
            Family::<WorkflowLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                answer_length_histogram,
            );
        let approval_decisions = Family::<ApprovalDecisionLabels, Counter>::default();
        let quality_alerts = Family::<QualityAlertLabels, Gauge>::default();
        let notifications = Family::<NotificationLabels, Counter>::default();

        // prometheus-client appends `_total` to counters itself.
        registry.register(
            "agent_requests",
            "Workflow requests by final status",
            requests.clone(),
        );
        registry.register(
            "agent_request_duration_seconds",
            "Latency of workflow requests",
            request_duration.clone(),
        );
        registry.register(
            "agent_inflight_requests",
            "Requests being served now",
            inflight.clone(),
        );
        registry.register(
            "agent_tool_calls",
            "Tool calls by outcome",
            tool_calls.clone(),
        );
        registry.register("agent_tokens", "Model tokens by direction", tokens.clone());
        registry.register(
            "agent_cost_usd",
            "Model cost in US dollars",
            cost_usd.clone(),
        );
        registry.register(
            "agent_queue_depth",
            "Jobs waiting in the queue",
            queue_depth.clone(),
        );
        registry.register(
            "agent_guardrail_blocks",
            "Guardrail blocks and redactions by rule",
            guardrail_blocks.clone(),
        );
        registry.register(
            "agent_guardrail_flags",
            "Inputs and tool results let through but flagged by the guardrails, by rule",
            guardrail_flags.clone(),
        );
        registry.register(
            "agent_approvals_pending",
            "Write actions waiting for approval",
            approvals_pending.clone(),
        );
        registry.register("agent_approvals", "Approval decisions", approvals.clone());
        registry.register(
            "agent_budget_exceeded",
            "Runs stopped by a budget, by kind",
            budget_exceeded.clone(),
        );
        registry.register(
            "agent_circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            circuit_state.clone(),
        );
        registry.register(
            "agent_provider_errors",
            "Model provider errors by kind",
            provider_errors.clone(),
        );
        registry.register(
            "agent_provider_fallbacks",
            "Model calls handed to the next provider of a chain, by link and reason",
            provider_fallbacks.clone(),
        );
        registry.register(
            "agent_build_info",
            "Build and release versions",
            build_info.clone(),
        );
        registry.register(
            "agent_traces_dropped",
            "Traces dropped because the trace writer was behind or stopped",
            traces_dropped.clone(),
        );
        registry.register(
            "agent_traces_dropped_by_kind",
            "Traces dropped because the trace writer was behind or stopped, by the run's status",
            traces_dropped_by_kind.clone(),
        );
        registry.register(
            "agent_traces_sampled_out",
            "Traces of successful runs not stored because of TRACE_SAMPLE_RATE",
            traces_sampled_out.clone(),
        );
        registry.register(
            "agent_tenant_cost_usd",
            "Model cost in US dollars by tenant, workflow and track",
            tenant_cost_usd.clone(),
        );
        registry.register(
            "agent_tenant_tokens",
            "Model tokens by tenant, workflow, track and direction",
            tenant_tokens.clone(),
        );
        registry.register(
            "agent_tenant_usage_today_cost_usd",
            "Model cost a tenant has spent today (UTC day, all replicas)",
            tenant_usage_today_cost_usd.clone(),
        );
        registry.register(
            "agent_tenant_usage_today_tokens",
            "Model tokens a tenant has spent today (UTC day, all replicas)",
            tenant_usage_today_tokens.clone(),
        );
        registry.register(
            "agent_tenant_daily_budget_cost_usd",
            "A tenant's daily cost budget in US dollars",
            tenant_daily_budget_cost_usd.clone(),
        );
        registry.register(
            "agent_tenant_daily_budget_tokens",
            "A tenant's daily token budget",
            tenant_daily_budget_tokens.clone(),
        );
        registry.register(
            "agent_citation_checks",
            "Answers of citation-required workflows by whether they cited their evidence",
            citation_checks.clone(),
        );
        registry.register(
            "agent_answers",
            "Answers by kind: answer, refusal, empty, truncated",
            answers.clone(),
        );
        registry.register(
            "agent_guardrail_verdicts",
            "Runs blocked by a guardrail, and answers the output guardrail redacted (flagged)",
            guardrail_verdicts.clone(),
        );
        registry.register(
            "agent_workflow_tool_calls",
            "Tool calls of workflow runs by result: ok or error",
            workflow_tool_calls.clone(),
        );
        registry.register(
            "agent_answer_length_chars",
            "Length of returned answers in characters",
            answer_length.clone(),
        );
        registry.register(
            "agent_approval_decisions",
            "Final approval decisions by the workflow and track that proposed the write",
            approval_decisions.clone(),
        );
        registry.register(
            "agent_quality_alert",
            "The service's own quality alerts: 1 firing, 0 resolved",
            quality_alerts.clone(),
        );
        registry.register(
            "agent_notifications",
            "Notification delivery attempts by event kind and outcome",
            notifications.clone(),
        );
        let defaults = QualityConfig::default();
        Self {
            registry,
            requests,
            request_duration,
            inflight,
            tool_calls,
            tokens,
            cost_usd,
            queue_depth,
            guardrail_blocks,
            guardrail_flags,
            approvals_pending,
            approvals,
            budget_exceeded,
            circuit_state,
            provider_errors,
            provider_fallbacks,
            build_info,
            traces_dropped,
            traces_dropped_by_kind,
            traces_sampled_out,
            tenant_cost_usd,
            tenant_tokens,
            tenant_usage_today_cost_usd,
            tenant_usage_today_tokens,
            tenant_daily_budget_cost_usd,
            tenant_daily_budget_tokens,
            citation_checks,
            answers,
            guardrail_verdicts,
            workflow_tool_calls,
            answer_length,
            approval_decisions,
            quality_alerts,
            notifications,
            quality: Windows::new(defaults.quality_window_runs as usize),
            tenants: TenantLabelBudget {
                cap: AtomicUsize::new(defaults.metrics_tenant_labels as usize),
                named: Mutex::new(HashSet::new()),
            },
            circuit_changes: broadcast::channel(64).0,
        }
    }

    /// Applies the quality settings: the tenant label budget and the window size.
    pub fn configure(&self, c: &QualityConfig) {
        self.tenants
            .cap
            .store(c.metrics_tenant_labels as usize, Ordering::Relaxed);
        self.quality.set_size(c.quality_window_runs as usize);
    }

    /// The `tenant` label of `tenant`: itself while the label budget lasts, else
    /// [`OTHER_TENANT`]. A tenant keeps the label it got first.
    pub fn tenant_label(&self, tenant: &str) -> String {
        self.tenants.label(tenant)
    }

    /// Books a model call's tokens and cost on its tenant, workflow and track.
    pub fn book_usage(
        &self,
        tenant: &str,
        workflow: &str,
        track: &str,
        input_tokens: u32,
        output_tokens: u32,
        cost_usd: f64,
    ) {
        let tenant = self.tenant_label(tenant);
        self.tenant_cost_usd
            .get_or_create(&TenantCostLabels {
                tenant: tenant.clone(),
                workflow: workflow.to_string(),
                track: track.to_string(),
            })
            .inc_by(cost_usd);
        for (direction, n) in [("input", input_tokens), ("output", output_tokens)] {
            self.tenant_tokens
                .get_or_create(&TenantTokenLabels {
                    tenant: tenant.clone(),
                    workflow: workflow.to_string(),
                    track: track.to_string(),
                    direction: direction.into(),
                })
                .inc_by(u64::from(n));
        }
    }

    /// Counts how a run ended in the quality series and its window. Every label value of a
    /// signal is created at its first sample (at 0), so a rate whose numerator never
    /// happened is 0, not absent.
    pub fn record_run(&self, r: &RunEnd) {
        let v = classify(r);
        let wf = || r.workflow.to_string();
        let track = || r.track.to_string();
        if let Some(cited) = v.citation {
            for (result, hit) in [("cited", cited), ("uncited", !cited)] {
                let c = self.citation_checks.get_or_create(&CitationLabels {
                    workflow: wf(),
                    track: track(),
                    result: result.into(),
                });
                if hit {
                    c.inc();
                }
            }
        }
        if let Some(kind) = v.answer {
            for k in AnswerKind::ALL {
                let c = self.answers.get_or_create(&AnswerLabels {
                    workflow: wf(),
                    track: track(),
                    kind: k.as_str().into(),
                });
                if k == kind {
                    c.inc();
                }
            }
        }
        for (verdict, hit) in [("blocked", v.blocked), ("flagged", v.flagged)] {
            let c = self.guardrail_verdicts.get_or_create(&VerdictLabels {
                workflow: wf(),
                track: track(),
                verdict: verdict.into(),
            });
            if hit {
                c.inc();
            }
        }
        if let Some(chars) = v.answer_chars {
            self.answer_length
                .get_or_create(&WorkflowLabels {
                    workflow: wf(),
                    track: track(),
                })
                .observe(chars as f64);
        }
        self.quality.record_run(r.workflow, r.track, v, r.cost_usd);
    }

    /// Counts a workflow run's tool call by its outcome (`ok` and `needs_approval` are
    /// successes; every other outcome is an error).
    pub fn workflow_tool_call(&self, workflow: &str, track: &str, outcome: &str) {
        let failed = !matches!(outcome, "ok" | "needs_approval");
        for (result, hit) in [("ok", !failed), ("error", failed)] {
            let c = self.workflow_tool_calls.get_or_create(&WorkflowToolLabels {
                workflow: workflow.to_string(),
                track: track.to_string(),
                result: result.into(),
            });
            if hit {
                c.inc();
            }
        }
        self.quality.record_tool(workflow, track, failed);
    }

    /// Counts a final approval decision (`approved` or `rejected`) on the workflow and
    /// track that proposed the write.
    pub fn approval_decision(&self, workflow: &str, track: &str, rejected: bool) {
        for (decision, hit) in [("approved", !rejected), ("rejected", rejected)] {
            let c = self
                .approval_decisions
                .get_or_create(&ApprovalDecisionLabels {
                    workflow: workflow.to_string(),
                    track: track.to_string(),
                    decision: decision.into(),
                });
            if hit {
                c.inc();
            }
        }
        self.quality.record_decision(workflow, track, rejected);
    }

    /// Creates every `agent_notifications_total` series of these event kinds at 0, so the
    /// first dead letter of a kind is an increase Prometheus can see rather than a new
    /// series that starts at 1.
    pub fn notification_kinds<'a>(&self, kinds: impl IntoIterator<Item = &'a str>) {
        for kind in kinds {
            for outcome in NOTIFICATION_OUTCOMES {
                let _ = self.notifications.get_or_create(&NotificationLabels {
                    kind: kind.to_string(),
                    outcome: outcome.into(),
                });
            }
        }
    }

    /// A receiver of circuit breakers opening (from closed) and closing again.
    pub fn subscribe_circuits(&self) -> broadcast::Receiver<CircuitChange> {
        self.circuit_changes.subscribe()
    }

    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    pub fn guardrail_block(&self, rule: &str) {
        self.guardrail_blocks
            .get_or_create(&RuleLabels {
                rule: rule.to_string(),
            })
            .inc();
    }

    pub fn guardrail_flag(&self, rule: &str) {
        self.guardrail_flags
            .get_or_create(&RuleLabels {
                rule: rule.to_string(),
            })
            .inc();
    }

    pub fn provider_error(&self, provider: &str, kind: &str) {
        self.provider_errors
            .get_or_create(&ProviderErrorLabels {
                provider: provider.into(),
                kind: kind.into(),
            })
            .inc();
    }

    pub fn provider_fallback(&self, from: &str, to: &str, reason: &str) {
        self.provider_fallbacks
            .get_or_create(&FallbackLabels {
                from: from.into(),
                to: to.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// Sets a circuit's state; its opening (from closed) and its closing again are also
    /// sent to [`Metrics::subscribe_circuits`] (a trial call failing in half-open is not a
    /// new opening).
    pub fn set_circuit(&self, dependency: &str, state: i64) {
        let previous = self
            .circuit_state
            .get_or_create(&DependencyLabels {
                dependency: dependency.into(),
            })
            .set(state);
        let change = match (previous, state) {
            (CIRCUIT_CLOSED, CIRCUIT_OPEN) => Some(true),
            (CIRCUIT_OPEN | CIRCUIT_HALF_OPEN, CIRCUIT_CLOSED) => Some(false),
            _ => None,
        };
        if let Some(open) = change {
            // Nobody listening (a test, `eval run`) is fine.
            let _ = self.circuit_changes.send(CircuitChange {
                dependency: dependency.to_string(),
                open,
            });
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
    }

    #[test]
    fn request_durations_of_a_cpu_model_fall_in_buckets_of_their_own() {
        let m = Metrics::new();
        m.request_duration.observe(12.0);
        m.request_duration.observe(18.0);
        let text = m.encode();
        for (le, count) in [("10.0", 0), ("15.0", 1), ("20.0", 2), ("30.0", 2)] {
            let line = format!("agent_request_duration_seconds_bucket{{le=\"{le}\"}} {count}");
            assert!(text.contains(&line), "{line} in\n{text}");
        }
    }

    #[test]
    fn notification_series_exist_at_zero_for_every_outcome() {
        let m = Metrics::new();
        m.notification_kinds(["approval.created", "freeze.on"]);
        let text = m.encode();
        for kind in ["approval.created", "freeze.on"] {
            for outcome in NOTIFICATION_OUTCOMES {
                let series =
                    format!(r#"agent_notifications_total{{kind="{kind}",outcome="{outcome}"}}"#);
                assert_eq!(line(&text, &series), Some("0"), "{series} in\n{text}");
            }
        }
    }

    #[test]
    fn tenants_past_the_label_budget_are_counted_as_other() {
        let m = Metrics::new();
        m.configure(&QualityConfig {
            metrics_tenant_labels: 2,
            ..QualityConfig::default()
        });
        m.book_usage("acme", "faq", "stable", 100, 20, 0.5);
        m.book_usage("beta", "faq", "stable", 10, 2, 0.25);
        m.book_usage("gamma", "faq", "stable", 1, 1, 0.125);
        m.book_usage("delta", "faq", "stable", 1, 1, 0.125);
        m.book_usage("acme", "faq", "stable", 100, 20, 0.5);
        let text = m.encode();
        let cost = |t: &str| {
            line(
                &text,
                &format!(
                    r#"agent_tenant_cost_usd_total{{tenant="{t}",workflow="faq",track="stable"}}"#
                ),
            )
            .map(|v| v.parse::<f64>().unwrap())
        };
        assert_eq!(cost("acme"), Some(1.0), "{text}");
        assert_eq!(cost("beta"), Some(0.25));
        assert_eq!(cost(OTHER_TENANT), Some(0.25), "gamma and delta: {text}");
        assert_eq!(cost("gamma"), None);
        assert_eq!(
            line(
                &text,
                r#"agent_tenant_tokens_total{tenant="acme",workflow="faq",track="stable",direction="input"}"#
            ),
            Some("200")
        );
    }

    #[test]
    fn a_signal_series_exists_at_zero_once_its_workflow_has_a_sample() {
        let m = Metrics::new();
        m.record_run(&RunEnd {
            workflow: "faq",
            track: "canary",
            status: "blocked",
            failed: false,
            budget: None,
            guardrail_rule: Some("citation_required"),
            answer: "withheld",
            cost_usd: 0.0,
            citation_required: true,
        });
        m.workflow_tool_call("faq", "canary", "ok");
        m.workflow_tool_call("faq", "canary", "needs_approval");
        m.workflow_tool_call("faq", "canary", "timeout");
        m.approval_decision("ticket_update", "canary", true);
        let text = m.encode();
        for (series, want) in [
            (
                r#"agent_citation_checks_total{workflow="faq",track="canary",result="cited"}"#,
                "0",
            ),
            (
                r#"agent_citation_checks_total{workflow="faq",track="canary",result="uncited"}"#,
                "1",
            ),
            (
                r#"agent_guardrail_verdicts_total{workflow="faq",track="canary",verdict="blocked"}"#,
                "1",
            ),
            (
                r#"agent_guardrail_verdicts_total{workflow="faq",track="canary",verdict="flagged"}"#,
                "0",
            ),
            (
                r#"agent_workflow_tool_calls_total{workflow="faq",track="canary",result="ok"}"#,
                "2",
            ),
            (
                r#"agent_workflow_tool_calls_total{workflow="faq",track="canary",result="error"}"#,
                "1",
            ),
            (
                r#"agent_approval_decisions_total{workflow="ticket_update",track="canary",decision="approved"}"#,
                "0",
            ),
            (
                r#"agent_approval_decisions_total{workflow="ticket_update",track="canary",decision="rejected"}"#,
                "1",
            ),
        ] {
            assert_eq!(line(&text, series), Some(want), "{series} in\n{text}");
        }
        assert!(
            !text.contains("agent_answers_total{"),
            "a withheld answer is not counted as an answer: {text}"
        );
    }

    #[test]
    fn answers_are_counted_by_kind_with_their_length() {
        let m = Metrics::new();
        let end = |status, answer| RunEnd {
            workflow: "faq",
            track: "stable",
            status,
            failed: false,
            budget: None,
            guardrail_rule: None,
            answer,
            cost_usd: 0.0,
            citation_required: false,
        };
        m.record_run(&end("success", "I cannot help with that."));
        m.record_run(&end("success", "Reset the password first."));
        m.record_run(&RunEnd {
            budget: Some("output_tokens"),
            ..end("budget_exceeded", "cut off")
        });
        let text = m.encode();
        for (kind, want) in [
            ("answer", "1"),
            ("refusal", "1"),
            ("empty", "0"),
            ("truncated", "1"),
        ] {
            let series =
                format!(r#"agent_answers_total{{workflow="faq",track="stable",kind="{kind}"}}"#);
            assert_eq!(line(&text, &series), Some(want), "{series}");
        }
        assert_eq!(
            line(
                &text,
                r#"agent_answer_length_chars_count{workflow="faq",track="stable"}"#
            ),
            Some("2")
        );
        assert_eq!(
            line(
                &text,
                r#"agent_answer_length_chars_bucket{le="25.0",workflow="faq",track="stable"}"#
            ),
            Some("2"),
            "{text}"
        );
    }

    #[test]
    fn circuits_report_opening_from_closed_and_closing() {
        let m = Metrics::new();
        let mut rx = m.subscribe_circuits();
        m.set_circuit("provider", CIRCUIT_CLOSED);
        m.set_circuit("provider", CIRCUIT_OPEN);
        m.set_circuit("provider", CIRCUIT_HALF_OPEN);
        m.set_circuit("provider", CIRCUIT_OPEN);
        m.set_circuit("provider", CIRCUIT_HALF_OPEN);
        m.set_circuit("provider", CIRCUIT_CLOSED);
        let mut seen = vec![];
        while let Ok(c) = rx.try_recv() {
            seen.push(c.open);
        }
        assert_eq!(seen, vec![true, false], "one opening, one closing");
    }
}
