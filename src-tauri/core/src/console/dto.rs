//! The DTOs that cross the IPC boundary between the Tauri command layer and the UI: every
//! command's arguments and result, every pushed event, and `CommandError`. The TypeScript
//! in `ui/src/lib/ipc/generated/` is generated from these (ts-rs, `cargo test -p
//! flightdeck-core`) and checked for drift by `scripts/test.sh`.
//!
//! Wire conventions: snake_case fields; optional values are `null`, never absent; times are
//! unix milliseconds (`*_ms`); money is US dollars (`*_usd`); rates are fractions 0..1.
//! No DTO carries a secret out: API keys go in through `AddAgentProfileArgs` and
//! `RunSmokeArgs` / `ModelServerArgs` (a model server's key, kept in the keyring) and
//! nowhere out.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

// ---------------------------------------------------------------------------------------
// Errors

/// The closed set of codes the UI may match on (flightdeck-core `ErrorCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export, rename = "ErrorCode")]
pub enum CommandErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    Unavailable,
    Invalid,
    Network,
    Timeout,
    Protocol,
    Storage,
    Keyring,
    Process,
}

/// What every failing command rejects with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[error("{message}")]
#[ts(export)]
pub struct CommandError {
    pub code: CommandErrorCode,
    /// A human sentence naming the thing and the fix; shown as is.
    pub message: String,
    /// The agent-service's own code (`writes_frozen`, `separation_of_duties`, …) if any.
    pub server_code: Option<String>,
    pub request_id: Option<String>,
    /// For `rate_limited` and `unavailable`: how long the server asked to wait.
    #[ts(type = "number | null")]
    pub retry_after_secs: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// Profiles, keyring, permissions, settings

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ProfileKind {
    Agent,
    Kubernetes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub kind: ProfileKind,
    /// The Local profile: the bundled agent-service the console starts itself.
    pub is_local: bool,
    /// `agent` profiles: the base URL.
    pub url: Option<String>,
    /// `kubernetes` profiles: the kube context and namespace.
    pub context: Option<String>,
    pub namespace: Option<String>,
    /// Whether the keyring holds a key or token for it (never the secret itself).
    pub has_secret: bool,
    /// `kubernetes` profiles: the agent-service profile it is linked to; absent when it
    /// follows the active profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub agent_profile_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ProfileList {
    pub profiles: Vec<Profile>,
    pub active_id: Option<String>,
}

/// Its Debug never prints the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AddAgentProfileArgs {
    pub name: String,
    pub url: String,
    /// Goes straight into the OS keyring; never stored or logged elsewhere.
    pub api_key: String,
}

impl std::fmt::Debug for AddAgentProfileArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddAgentProfileArgs")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ProfileIdArgs {
    pub profile_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct KeyringStatus {
    pub available: bool,
    /// `secret-service`, `keychain`, `windows-credential`, …
    pub backend: String,
    /// Why it is unavailable, or a short confirmation.
    pub message: String,
}

/// Every action the UI can ask for; permissions are reported per action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ActionId {
    Approve,
    Reject,
    VerifyAudit,
    IncidentSwitch,
    UnfreezeWrites,
    StartEval,
    PullModel,
    RunSmoke,
    ManageProfiles,
    UpdateSettings,
    /// Create, delete and test notification receivers (the service's `admin` role).
    ManageReceivers,
}

impl ActionId {
    pub const ALL: [ActionId; 11] = [
        Self::Approve,
        Self::Reject,
        Self::VerifyAudit,
        Self::IncidentSwitch,
        Self::UnfreezeWrites,
        Self::StartEval,
        Self::PullModel,
        Self::RunSmoke,
        Self::ManageProfiles,
        Self::UpdateSettings,
        Self::ManageReceivers,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ActionPermission {
    pub action: ActionId,
    pub allowed: bool,
    /// Why it is denied ("the key's roles (viewer) do not include approver"); null if allowed.
    pub reason: Option<String>,
}

/// What the active profile's key (API roles, Kubernetes RBAC) allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Permissions {
    pub profile_id: Option<String>,
    pub roles: Vec<String>,
    pub actions: Vec<ActionPermission>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Theme {
    #[default]
    Light,
    Dark,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Settings {
    pub theme: Theme,
    /// How long metric history, traces shown offline and smoke results are kept.
    pub retention_hours: f64,
}

// ---------------------------------------------------------------------------------------
// Overview

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub enum ChartWindow {
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "6h")]
    H6,
    #[serde(rename = "24h")]
    H24,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ReadyState {
    Ready,
    Degraded,
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Severity {
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum AlertRule {
    LatencyP99,
    ErrorRate,
    QueueDepth,
    BudgetBurn,
    CircuitOpen,
}

/// How one dependency of a service is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum DependencyStatus {
    Ok,
    Degraded,
    Failing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DependencyCheck {
    /// `database`, `provider`, `retrieval`, …
    pub name: String,
    pub status: DependencyStatus,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Circuit {
    pub dependency: String,
    pub state: CircuitState,
}

/// One provider of a service's fallback chain, as its card shows it (in chain order: a
/// call goes to the first; the next serves when one's circuit is open or it fails).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ProviderLink {
    /// The link name (`ollama`, `openai`, `scripted`, or a name from the service's config).
    pub name: String,
    /// `ollama`, `openai` or `scripted`.
    pub kind: String,
    pub model: String,
    /// Reachable and its circuit closed (`ok`), reachable with its circuit not closed
    /// (`degraded`), or unreachable (`failing`).
    pub status: DependencyStatus,
    /// Its circuit breaker; null when the service did not say.
    pub circuit: Option<CircuitState>,
    /// This link serves the chain now.
    pub serving: bool,
    pub detail: String,
}

/// Calls one provider of a chain handed to the next, counted over the Overview window
/// from the service's `agent_provider_fallbacks_total{from,to,reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ProviderFallback {
    /// The link that failed (or whose circuit was open).
    pub from: String,
    /// The link the call went to next.
    pub to: String,
    /// Why: `circuit_open`, `timeout`, `unavailable`, `stream` or `protocol`.
    pub reason: String,
    #[ts(type = "number")]
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AlertBadge {
    pub rule: AlertRule,
    pub severity: Severity,
    pub value: f64,
    pub threshold: f64,
    /// "p99 latency 41.2 s over 5 min exceeds 30 s".
    pub reason: String,
}

/// Window statistics; null where there is no data yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ServiceStats {
    pub request_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub tokens_per_sec: Option<f64>,
    pub cost_per_hour_usd: Option<f64>,
    pub queue_depth: Option<f64>,
    pub pending_approvals: Option<f64>,
    /// Guardrail blocks within the window.
    pub guardrail_blocks: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct VersionSet {
    pub release: String,
    pub git_sha: String,
    pub model: String,
    pub prompt: String,
    pub policy: String,
}

/// A field of [`VersionSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum VersionField {
    Release,
    GitSha,
    Model,
    Prompt,
    Policy,
}

/// One entry of the "what changed" strip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct VersionChange {
    pub field: VersionField,
    pub from: String,
    pub to: String,
    #[ts(type = "number")]
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ServiceCard {
    pub profile_id: String,
    pub service: String,
    pub track: String,
    pub url: String,
    pub live: bool,
    pub readiness: ReadyState,
    pub checks: Vec<DependencyCheck>,
    pub stats: ServiceStats,
    pub circuits: Vec<Circuit>,
    /// The service's provider chain with the serving link marked; empty when the service
    /// does not report one.
    #[serde(default)]
    pub provider_chain: Vec<ProviderLink>,
    /// The fallbacks between its providers within the Overview window, most first, as the
    /// console's scrapes counted them (so at most since it started watching the service).
    #[serde(default)]
    pub recent_fallbacks: Vec<ProviderFallback>,
    pub badges: Vec<AlertBadge>,
    pub versions: VersionSet,
    pub changes: Vec<VersionChange>,
    pub frozen: bool,
    #[ts(type = "number | null")]
    pub scraped_at_ms: Option<i64>,
    /// Why the console could not read this service the last time it tried (unreachable,
    /// timed out, `/metrics` refused); null after a read that worked. A card with
    /// `live: false` still shows the numbers scraped before, from the series.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Overview {
    pub window: ChartWindow,
    /// One card per agent-service profile (the Local one included) and track its metrics
    /// carry; the active profile's cards first. Unreachable services are cards too.
    pub services: Vec<ServiceCard>,
    #[ts(type = "number")]
    pub generated_at_ms: i64,
}

// ---------------------------------------------------------------------------------------
// Notification receivers (Settings)

/// How a receiver is sent its notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ReceiverFormat {
    /// Signed JSON events (Standard Webhooks).
    Webhook,
    /// Slack incoming-webhook messages.
    Slack,
    /// PagerDuty Events API v2.
    Pagerduty,
}

/// A notification receiver of the active profile's tenant; never its URL's path or secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Receiver {
    pub id: String,
    pub name: String,
    pub format: ReceiverFormat,
    /// The URL's scheme, host and port only.
    pub url_hint: String,
    /// The event kinds it gets; empty: every kind.
    pub events: Vec<String>,
    pub has_secret: bool,
    #[ts(type = "number | null")]
    pub created_at_ms: Option<i64>,
}

/// A receiver to create. Goes in only: the URL and secret are sealed by the service and
/// never come back.
#[derive(Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct CreateReceiverArgs {
    pub name: String,
    pub format: ReceiverFormat,
    /// Required for `webhook` and `slack`; `pagerduty` defaults to PagerDuty's endpoint.
    pub url: Option<String>,
    /// `webhook`: the signing secret (`whsec_…`); `pagerduty`: the routing key.
    pub secret: Option<String>,
    /// Empty: every kind.
    pub events: Vec<String>,
}

impl std::fmt::Debug for CreateReceiverArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateReceiverArgs")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ReceiverIdArgs {
    pub id: String,
}

/// A test notification queued for one receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ReceiverTestResult {
    pub event_id: String,
    /// Follow it in the service's deliveries (`/v1/admin/deliveries/{id}`).
    pub delivery_id: String,
}

// ---------------------------------------------------------------------------------------
// Quality and spend (the Overview's quality panel)

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct QualityArgs {
    pub profile_id: String,
    /// The window the quality signals are counted over (spend is since the service started).
    pub window: ChartWindow,
}

/// A quality signal of agent-service, as a rate of hits over samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum QualitySignalKind {
    /// Answers of citation-required workflows that cited their evidence (higher is better).
    Citation,
    /// Answers that refuse to help.
    Refusal,
    /// Answers that were empty or cut off at the output limit.
    EmptyOrTruncated,
    /// Runs a guardrail blocked.
    Blocked,
    /// Runs whose answer the output guardrail redacted.
    Flagged,
    /// Tool calls that failed.
    ToolErrors,
    /// Approval decisions that rejected the proposed write.
    ApprovalRejections,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct QualitySignal {
    pub kind: QualitySignalKind,
    /// `hits / samples` over the window; null without samples.
    pub rate: Option<f64>,
    #[ts(type = "number")]
    pub hits: u64,
    #[ts(type = "number")]
    pub samples: u64,
    /// Past the service's threshold with at least `min_samples` samples, or the service's
    /// own alert for it is firing.
    pub alert: bool,
    /// The same rate over the 24 hours before the window, as far back as the console has
    /// read the service (null without that history).
    pub baseline: Option<f64>,
    /// Tracks other than stable: this rate minus stable's (null without both).
    pub vs_stable: Option<f64>,
    /// More than 5 points worse than stable.
    pub worse_than_stable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TrackQuality {
    pub track: String,
    /// Runs in the window.
    #[ts(type = "number")]
    pub runs: u64,
    /// In `QualitySignalKind` order.
    pub signals: Vec<QualitySignal>,
    pub cost_per_success_usd: Option<f64>,
    /// Any signal alerting.
    pub alert: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct WorkflowQuality {
    pub workflow: String,
    /// Stable first, then canary, then others by name.
    pub tracks: Vec<TrackQuality>,
}

/// agent-service's quality thresholds (`QUALITY_*`), from `/v1/info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct QualityThresholds {
    #[ts(type = "number")]
    pub min_samples: u64,
    pub min_citation_rate: f64,
    pub max_refusal_rate: f64,
    pub max_tool_error_rate: f64,
    pub max_empty_or_truncated_rate: f64,
    pub max_approval_rejection_rate: f64,
}

/// Which daily budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum BudgetKind {
    CostUsd,
    Tokens,
}

/// One tenant's spend and burn (`tenant` may be `_other`: the tenants past the service's
/// label budget, together; it has no budget of its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TenantSpend {
    pub tenant: String,
    /// Since the service started.
    pub cost_usd: f64,
    #[ts(type = "number")]
    pub tokens: u64,
    /// Over the last hour the console has seen; null before two scrapes.
    pub cost_per_hour_usd: Option<f64>,
    pub tokens_per_hour: Option<f64>,
    /// Used today (UTC, all replicas) and the daily budgets; null when unknown or unlimited.
    pub today_cost_usd: Option<f64>,
    pub budget_cost_usd: Option<f64>,
    #[ts(type = "number | null")]
    pub today_tokens: Option<u64>,
    #[ts(type = "number | null")]
    pub budget_tokens: Option<u64>,
    /// At this rate, when the first budget is reached, if before the reset; now when spent.
    #[ts(type = "number | null")]
    pub hits_budget_at_ms: Option<i64>,
    pub hits_budget: Option<BudgetKind>,
    /// A daily budget is used up: requests are refused until the reset.
    pub exhausted: bool,
    /// When the daily budgets reset (00:00 UTC).
    #[ts(type = "number")]
    pub resets_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct WorkflowSpend {
    pub workflow: String,
    /// Since the service started, all tenants and tracks.
    pub cost_usd: f64,
    #[ts(type = "number")]
    pub tokens: u64,
}

/// The quality panel of one agent-service profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct QualityView {
    pub profile_id: String,
    pub window: ChartWindow,
    /// Quality per workflow and track over the window (since the console first read the
    /// service, if later).
    pub workflows: Vec<WorkflowQuality>,
    /// Null until `/v1/info` was read.
    pub thresholds: Option<QualityThresholds>,
    pub tenants: Vec<TenantSpend>,
    pub workflow_spend: Vec<WorkflowSpend>,
    /// The scrape these numbers come from; null before the first.
    #[ts(type = "number | null")]
    pub scraped_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct OverviewArgs {
    /// Also the window later `overview_event` pushes are computed for.
    pub window: ChartWindow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ChartArgs {
    pub profile_id: String,
    pub track: String,
    pub window: ChartWindow,
    pub theme: Theme,
}

/// A chart rendered by the backend (plotters); the UI only injects `svg`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Chart {
    pub metric: String,
    pub title: String,
    pub svg: String,
}

// ---------------------------------------------------------------------------------------
// Traces

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum TraceStatus {
    Success,
    ApprovalRequired,
    Blocked,
    BudgetExceeded,
    Degraded,
    Error,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TraceQuery {
    pub errors_only: bool,
    /// Only runs a guardrail flagged.
    pub flagged_only: bool,
    /// Only traces slower than this many milliseconds.
    #[ts(type = "number | null")]
    pub min_duration_ms: Option<u64>,
    pub workflow: Option<String>,
    /// Exact or prefix match on the request id.
    pub request_id: Option<String>,
    pub cursor: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TraceSummary {
    pub trace_id: String,
    pub request_id: String,
    pub workflow: String,
    pub status: TraceStatus,
    pub error_code: Option<String>,
    #[ts(type = "number")]
    pub started_at_ms: i64,
    pub duration_ms: f64,
    #[ts(type = "number")]
    pub tokens: i64,
    pub cost_usd: f64,
    pub model: String,
    #[ts(type = "number")]
    pub span_count: i64,
    /// A guardrail flagged the run's input or a tool result (the run went on).
    pub flagged: bool,
    /// The guardrail rule that blocked the run, else the rule of its first flag.
    pub guardrail_rule: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TracePage {
    pub items: Vec<TraceSummary>,
    pub next_cursor: Option<String>,
    /// Matching traces in all, when the service knows.
    #[ts(type = "number | null")]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum SpanKind {
    Request,
    Guardrail,
    Retrieval,
    Llm,
    Tool,
    Approval,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SpanAttribute {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum SpanStatus {
    Ok,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Span {
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    pub status: SpanStatus,
    /// Offset from the trace start.
    pub start_ms: f64,
    pub duration_ms: f64,
    pub model: Option<String>,
    #[ts(type = "number | null")]
    pub prompt_tokens: Option<i64>,
    #[ts(type = "number | null")]
    pub completion_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub attributes: Vec<SpanAttribute>,
    /// Pretty-printed, already redacted by the service (`[REDACTED:email]`).
    pub payload: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TraceDetail {
    pub summary: TraceSummary,
    pub spans: Vec<Span>,
    /// The run's guardrail decisions, in span order, read from the spans'
    /// `flightdeck.guardrail.*` attributes.
    pub guardrail: Vec<GuardrailCheck>,
}

/// Where in a run a guardrail decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum GuardrailStage {
    /// The scan of the run's input.
    Input,
    /// The scan of a tool's result (untrusted data the model reads).
    ToolResult,
    /// The checks of the answer: redaction, links removed, leaks, citations.
    Output,
    /// A write proposed after flagged text: its approval carries the flags.
    Approval,
}

/// One signal behind a score, as the service labels it (`override_prior (+3.25)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GuardrailReason {
    pub name: String,
    /// Its weight (log-odds) when the label carries one.
    pub weight: Option<f64>,
}

/// One guardrail decision of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GuardrailCheck {
    /// The span it is recorded on.
    pub span_id: String,
    pub stage: GuardrailStage,
    /// What was checked: `input`, the tool's name, `answer`, or the approval's resource.
    pub subject: String,
    /// `allow`, `flag`, `require_approval`, `block`, `withhold` or `redacted`; `None` for
    /// an approval.
    pub verdict: Option<String>,
    /// The rule or category that decided (redaction rules comma-separated).
    pub rule: Option<String>,
    /// 0..1.
    pub score: Option<f64>,
    pub reasons: Vec<GuardrailReason>,
    /// Hosts of links and images taken out of the answer.
    pub links_removed: Vec<String>,
    /// An approval's flags, `source: rule` each.
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TraceIdArgs {
    pub trace_id: String,
}

// ---------------------------------------------------------------------------------------
// Approvals and audit

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Executing,
    Executed,
    Failed,
    Rejected,
    Expired,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ReleaseRef {
    pub version: String,
    pub git_sha: String,
    pub track: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ApprovalSummary {
    pub id: String,
    pub workflow: String,
    pub tool: String,
    /// `proposed_change.resource`.
    pub resource: String,
    #[ts(type = "number")]
    pub risk_tier: i64,
    pub requested_by: String,
    pub status: ApprovalStatus,
    #[ts(type = "number")]
    pub required_approvals: i64,
    #[ts(type = "number")]
    pub approvals_count: i64,
    pub release: ReleaseRef,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    #[ts(type = "number")]
    pub expires_at_ms: i64,
    #[ts(type = "number | null")]
    pub decided_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Evidence {
    pub kind: String,
    pub id: String,
    pub title: Option<String>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ProposedChange {
    pub resource: String,
    pub before: String,
    pub after: String,
    /// Unified diff text (`---`, `+++`, `@@`, `+`, `-`, ` ` lines).
    pub diff: String,
}

/// An approver's verdict on an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum DecisionKind {
    Approve,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Decision {
    pub approver: String,
    pub decision: DecisionKind,
    pub reason: String,
    #[ts(type = "number")]
    pub decided_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Execution {
    pub status: String,
    #[ts(type = "number")]
    pub attempts: i64,
    pub error: Option<String>,
    #[ts(type = "number | null")]
    pub executed_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ApprovalDetail {
    pub summary: ApprovalSummary,
    /// Redacted, pretty-printed JSON.
    pub arguments: String,
    pub proposed_change: ProposedChange,
    pub evidence: Vec<Evidence>,
    pub request_id: String,
    pub trace_id: String,
    pub policy_version: String,
    pub decisions: Vec<Decision>,
    pub execution: Option<Execution>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ApprovalListView {
    Pending,
    History,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ApprovalListArgs {
    pub view: ApprovalListView,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ApprovalPage {
    pub items: Vec<ApprovalSummary>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ApprovalIdArgs {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DecideArgs {
    pub id: String,
    pub decision: DecisionKind,
    /// Required, non-blank: a decision without a reason is refused.
    pub reason: String,
}

/// How the approval queue changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ApprovalEventKind {
    Created,
    Updated,
    Removed,
}

/// Pushed on every change of the queue (SSE `/v1/approvals/events` relayed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ApprovalEvent {
    pub kind: ApprovalEventKind,
    pub approval: ApprovalSummary,
}

/// The first link of the audit hash chain that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BrokenLink {
    #[ts(type = "number")]
    pub seq: i64,
    pub id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AuditStatus {
    pub ok: bool,
    #[ts(type = "number")]
    pub checked: u64,
    pub first_broken: Option<BrokenLink>,
    #[ts(type = "number")]
    pub verified_at_ms: i64,
}

// ---------------------------------------------------------------------------------------
// Evals

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum EvalSuiteKind {
    Golden,
    Adversarial,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum EvalRunState {
    Queued,
    Running,
    Completed,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Verdict {
    Pass,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct EvalSuite {
    pub name: String,
    pub kind: EvalSuiteKind,
    pub description: String,
    #[ts(type = "number")]
    pub cases: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct EvalVersions {
    pub release: String,
    pub git_sha: String,
    pub model: String,
    pub prompt: String,
    pub policy: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct EvalRunSummary {
    pub id: String,
    pub suite: String,
    pub status: EvalRunState,
    #[ts(type = "number")]
    pub done: u64,
    #[ts(type = "number")]
    pub total: u64,
    pub versions: EvalVersions,
    pub gate: Option<Verdict>,
    pub pass_rate: Option<f64>,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    #[ts(type = "number | null")]
    pub finished_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct EvalScores {
    #[ts(type = "number")]
    pub cases: u64,
    #[ts(type = "number")]
    pub passed: u64,
    #[ts(type = "number")]
    pub failed: u64,
    pub pass_rate: f64,
    pub policy_compliance: f64,
    pub citation_rate: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    #[ts(type = "number")]
    pub tokens: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct GateCheck {
    pub name: String,
    /// "≥ 0.95", "≤ 8000 ms".
    pub threshold: String,
    pub actual: String,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Gate {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub checks: Vec<GateCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BaselineDiff {
    pub baseline_run_id: String,
    pub pass_rate_delta: f64,
    /// Case ids that passed in the baseline and fail now.
    pub regressions: Vec<String>,
    /// Case ids that failed in the baseline and pass now.
    pub fixes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Assertion {
    pub kind: String,
    pub expected: String,
    pub actual: String,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct CaseResult {
    pub case_id: String,
    pub workflow: String,
    pub passed: bool,
    pub status: String,
    #[ts(type = "number")]
    pub latency_ms: u64,
    pub cost_usd: f64,
    pub answer_excerpt: String,
    pub assertions: Vec<Assertion>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct EvalRunDetail {
    pub summary: EvalRunSummary,
    pub error: Option<String>,
    pub scores: Option<EvalScores>,
    pub gate: Option<Gate>,
    pub baseline: Option<BaselineDiff>,
    pub cases: Vec<CaseResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct EvalRunIdArgs {
    pub run_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct StartEvalArgs {
    pub suite: String,
    /// Null: the newest completed run of the suite.
    pub baseline_run_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct PassRatePoint {
    pub suite: String,
    pub release: String,
    pub run_id: String,
    pub pass_rate: f64,
    pub gate: Option<Verdict>,
    #[ts(type = "number")]
    pub finished_at_ms: i64,
}

/// Pushed while a run started from this console progresses, and once when it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct EvalProgressEvent {
    pub run_id: String,
    pub status: EvalRunState,
    #[ts(type = "number")]
    pub done: u64,
    #[ts(type = "number")]
    pub total: u64,
    pub pass_rate: Option<f64>,
}

// ---------------------------------------------------------------------------------------
// Smoke tests

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct OllamaStatus {
    pub url: String,
    pub reachable: bool,
    pub version: Option<String>,
    /// Why it is not reachable.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct OllamaModel {
    pub name: String,
    #[ts(type = "number")]
    pub size_bytes: u64,
    pub family: String,
    pub parameter_size: String,
    pub quantization: String,
    pub supports_tools: bool,
    #[ts(type = "number")]
    pub modified_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct PullModelArgs {
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct PullProgressEvent {
    pub model: String,
    /// Ollama's status line: `pulling manifest`, `pulling <12 hex>` (one series per layer:
    /// weights, template, parameters, config), `verifying sha256 digest`, `success`.
    pub status: String,
    /// The layer this line counts (`sha256:…`); null for the lines about the whole pull.
    /// The pull's size is the sum of each layer's `total_bytes`.
    #[serde(default)]
    pub digest: Option<String>,
    #[ts(type = "number | null")]
    pub completed_bytes: Option<u64>,
    #[ts(type = "number | null")]
    pub total_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum CheckStatus {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Measurement {
    pub name: String,
    pub value: f64,
    /// `ms`, `tok/s`, `models`, `bytes`, `%`.
    pub unit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct CheckResult {
    /// Stable id: `reachability`, `generation`, `agent_golden`, …
    pub name: String,
    pub title: String,
    pub status: CheckStatus,
    pub reason: String,
    pub measurements: Vec<Measurement>,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SmokeReport {
    pub id: String,
    /// What kind of model server was checked.
    pub target: SmokeTarget,
    /// The model server's URL: Ollama's root, or the OpenAI-compatible base (`…/v1`).
    pub server_url: String,
    pub agent_url: Option<String>,
    pub model: String,
    #[ts(type = "number")]
    pub started_at_ms: i64,
    #[ts(type = "number")]
    pub finished_at_ms: i64,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SmokeRunSummary {
    pub id: String,
    pub model: String,
    #[ts(type = "number")]
    pub started_at_ms: i64,
    #[ts(type = "number")]
    pub passed: i64,
    #[ts(type = "number")]
    pub failed: i64,
    #[ts(type = "number")]
    pub skipped: i64,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RunSmokeArgs {
    /// An Ollama model name, or an id the OpenAI-compatible server lists (used as given).
    pub model: String,
    /// Also run the agent-service cases through the active profile.
    pub through_agent: bool,
    /// Which kind of server to check (absent: Ollama).
    #[serde(default)]
    pub target: SmokeTarget,
    /// The OpenAI-compatible server's base URL, `/v1` included; null: the one
    /// `discover_model_server` proposes. Must be null for Ollama (its URL is the console's
    /// `OLLAMA_BASE_URL`).
    #[serde(default)]
    pub server_url: Option<String>,
    /// A bearer key for the OpenAI-compatible server: stored in the keyring for this URL
    /// and used from then on; `""` forgets the stored key; null uses the stored key when it
    /// belongs to this URL.
    #[serde(default)]
    pub api_key: Option<String>,
}

/// What kind of model server the smoke suite checks (flightdeck-core `SmokeTarget`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum SmokeTarget {
    /// Ollama's native API: all ten checks, pulls included.
    #[default]
    Ollama,
    /// A server that speaks only the OpenAI-compatible API (llama.cpp's server, LM Studio,
    /// vLLM, Ollama's own `/v1`): no pull; load time and GPU use are skipped.
    OpenaiCompatible,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ModelServerArgs {
    /// The base URL, `/v1` included; null: the console's proposal (the model server the
    /// Local service runs on, else the last one used, else `http://127.0.0.1:8080/v1`).
    pub url: Option<String>,
    /// As in `RunSmokeArgs`: a key to store for this URL, `""` to forget it, null to use
    /// the stored one.
    pub api_key: Option<String>,
}

/// A key given in args, as a `Debug` string shows it.
fn redacted(key: &Option<String>) -> &'static str {
    match key.as_deref() {
        None => "None",
        Some("") => "Some(\"\")",
        Some(_) => "Some(<redacted>)",
    }
}

impl std::fmt::Debug for RunSmokeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSmokeArgs")
            .field("model", &self.model)
            .field("through_agent", &self.through_agent)
            .field("target", &self.target)
            .field("server_url", &self.server_url)
            .field("api_key", &format_args!("{}", redacted(&self.api_key)))
            .finish()
    }
}

impl std::fmt::Debug for ModelServerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelServerArgs")
            .field("url", &self.url)
            .field("api_key", &format_args!("{}", redacted(&self.api_key)))
            .finish()
    }
}

/// An OpenAI-compatible model server as the Smoke tests view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ModelServerStatus {
    pub url: String,
    pub reachable: bool,
    /// The ids `GET /models` lists.
    pub models: Vec<String>,
    /// Why it is not reachable (with what to do).
    pub error: Option<String>,
    /// The URL is the model server the Local service runs on (`AGENT_PROVIDER=openai` in
    /// the app's environment, e.g. `scripts/start.sh --model`).
    pub detected: bool,
    /// The model to propose: the Local service's `MODEL_NAME` on a detected server.
    pub default_model: Option<String>,
    /// A key for this URL is in the keyring.
    pub key_stored: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SmokeRunIdArgs {
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ExportFormat {
    Markdown,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ExportSmokeArgs {
    pub id: String,
    pub format: ExportFormat,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ExportedFile {
    pub path: String,
    #[ts(type = "number")]
    pub bytes: u64,
}

/// flightdeck-core `SmokeProgress`, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum SmokeProgressEvent {
    CheckStarted {
        name: String,
        title: String,
        #[ts(type = "number")]
        index: u64,
        #[ts(type = "number")]
        total: u64,
    },
    CheckFinished {
        result: CheckResult,
    },
}

// ---------------------------------------------------------------------------------------
// Incident switch and notifications

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct FreezeState {
    pub frozen: bool,
    pub reason: Option<String>,
    pub changed_by: Option<String>,
    #[ts(type = "number | null")]
    pub changed_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct IncidentArgs {
    /// Required; written to the audit log of the service and the local action log.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct IncidentResult {
    pub freeze: FreezeState,
    /// Rollouts of the service paused (0 without a Kubernetes profile).
    #[ts(type = "number")]
    pub rollouts_paused: u64,
    /// Where the incident pack (failing traces, versions, metrics) was written.
    pub pack_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct NotifyArgs {
    pub title: String,
    pub body: String,
}
