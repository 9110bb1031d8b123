//! Prometheus metrics, exposed in the text format at `/metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub git_sha: String,
    pub track: String,
    pub model: String,
    pub prompt_version: String,
    pub policy_version: String,
}

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
    pub build_info: Family<BuildLabels, Gauge>,
    /// Traces not stored because the writer was behind (its channel full) or stopped.
    pub traces_dropped: Counter,
    /// Successful runs' traces left out by `TRACE_SAMPLE_RATE` (by design, not a loss).
    pub traces_sampled_out: Counter,
}

/// Circuit states as gauge values: 0 closed, 1 half-open, 2 open.
pub const CIRCUIT_CLOSED: i64 = 0;
pub const CIRCUIT_HALF_OPEN: i64 = 1;
pub const CIRCUIT_OPEN: i64 = 2;

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
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
        let build_info = Family::<BuildLabels, Gauge>::default();
        let traces_dropped = Counter::default();
        let traces_sampled_out = Counter::default();

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
            "agent_traces_sampled_out",
            "Traces of successful runs not stored because of TRACE_SAMPLE_RATE",
            traces_sampled_out.clone(),
        );
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
            build_info,
            traces_dropped,
            traces_sampled_out,
        }
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

    pub fn set_circuit(&self, dependency: &str, state: i64) {
        self.circuit_state
            .get_or_create(&DependencyLabels {
                dependency: dependency.into(),
            })
            .set(state);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
