/**
 * The DTOs that cross the IPC boundary between the Tauri command layer (`src-tauri/`) and
 * the UI, and the typed map of every command and event.
 *
 * Source of truth: this file is the contract the Rust command layer implements. Once the
 * command layer exists, these types are generated from its Rust DTOs with ts-rs (pinned
 * exactly), committed to `ui/src/lib/ipc/generated/`, re-exported from here, and CI fails
 * when regenerating them changes a byte (drift check). Until then, edit only by hand and
 * keep the Rust side in step.
 *
 * Wire conventions (what serde gives by default):
 * - field names are snake_case; optional values are `null`, never absent;
 * - timestamps are unix milliseconds (`*_ms`), durations are milliseconds (`*_ms`);
 * - money is US dollars as a float (`*_usd`), rates are fractions 0..1 (`error_rate`);
 * - a command with arguments takes ONE argument named `args`
 *   (`#[tauri::command] async fn list_traces(args: TraceQuery, …)`), so `invoke` is called
 *   with `{ args }`; a command without arguments takes none;
 * - a failing command rejects with a `CommandError` (serialized `{code, message, …}`).
 */

import type {
  AddKubeProfileArgs,
  KubeContext,
  PromoteArgs,
  ReleaseActionResult,
  ReleaseDetail,
  ReleaseList,
  ReleaseProgressEvent,
  ReleaseReasonArgs,
  ReleaseRefArgs,
  ReleaseSummary,
  UndoArgs,
} from './releases';

// Releases (issue #5): the contract's DTOs live in ./releases.ts. Their names avoid the eval,
// approval and smoke types' `Verdict`, `ReleaseRef` and `Measurement`: `AnalysisVerdict`,
// `RolloutRef`, `MetricSample`.
export type * from './releases';

// ---------------------------------------------------------------------------------------
// Errors

/** The closed set of codes the UI may match on (flightdeck-core `ErrorCode`). */
export type ErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  | 'unavailable'
  | 'invalid'
  | 'network'
  | 'timeout'
  | 'protocol'
  | 'storage'
  | 'keyring'
  | 'process';

/** What every failing command rejects with. */
export interface CommandError {
  code: ErrorCode;
  /** A human sentence naming the thing and the fix; shown as is. */
  message: string;
  /** The agent-service's own code (`writes_frozen`, `separation_of_duties`, …) if any. */
  server_code: string | null;
  request_id: string | null;
  /** For `rate_limited` and `unavailable`: how long the server asked to wait. */
  retry_after_secs: number | null;
}

// ---------------------------------------------------------------------------------------
// Profiles, keyring, permissions, settings

export type ProfileKind = 'agent' | 'kubernetes';

export interface Profile {
  id: string;
  name: string;
  kind: ProfileKind;
  /** The bundled agent-service started by the console (SPEC 3.2). */
  is_local: boolean;
  /** `agent` profiles: the base URL. */
  url: string | null;
  /** `kubernetes` profiles: the kube context and namespace. */
  context: string | null;
  namespace: string | null;
  /** Whether the keyring holds a key or token for it (never the secret itself). */
  has_secret: boolean;
}

export interface ProfileList {
  profiles: Profile[];
  active_id: string | null;
}

export interface AddAgentProfileArgs {
  name: string;
  url: string;
  /** Goes straight into the OS keyring; never stored or logged elsewhere. */
  api_key: string;
}

export interface ProfileIdArgs {
  profile_id: string;
}

export interface KeyringStatus {
  available: boolean;
  /** `secret-service`, `keychain`, `windows-credential`, … */
  backend: string;
  /** Why it is unavailable, or a short confirmation. */
  message: string;
}

/** Every action the UI can ask for; permissions are reported per action. */
export type ActionId =
  | 'approve'
  | 'reject'
  | 'verify_audit'
  | 'incident_switch'
  | 'unfreeze_writes'
  | 'start_eval'
  | 'pull_model'
  | 'run_smoke'
  | 'manage_profiles'
  | 'update_settings';

export interface ActionPermission {
  action: ActionId;
  allowed: boolean;
  /** Why it is denied ("the key's roles (viewer) do not include approver"); null if allowed. */
  reason: string | null;
}

/** What the active profile's key (API roles, Kubernetes RBAC) allows. */
export interface Permissions {
  profile_id: string | null;
  roles: string[];
  actions: ActionPermission[];
}

export type Theme = 'light' | 'dark';

export interface Settings {
  theme: Theme;
  /** How long metric history, traces shown offline and smoke results are kept. */
  retention_hours: number;
}

// ---------------------------------------------------------------------------------------
// Overview

export type ChartWindow = '5m' | '15m' | '1h' | '6h' | '24h';
export type ReadyState = 'ready' | 'degraded' | 'unavailable';
export type CircuitState = 'closed' | 'open' | 'half_open';
export type Severity = 'warning' | 'critical';
export type AlertRule = 'latency_p99' | 'error_rate' | 'queue_depth' | 'budget_burn' | 'circuit_open';

export interface DependencyCheck {
  /** `database`, `provider`, `retrieval`, … */
  name: string;
  status: 'ok' | 'degraded' | 'failing';
  detail: string;
}

export interface Circuit {
  dependency: string;
  state: CircuitState;
}

export interface AlertBadge {
  rule: AlertRule;
  severity: Severity;
  value: number;
  threshold: number;
  /** "p99 latency 41.2 s over 5 min exceeds 30 s". */
  reason: string;
}

/** Window statistics; null where there is no data yet. */
export interface ServiceStats {
  request_rate: number | null;
  error_rate: number | null;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  tokens_per_sec: number | null;
  cost_per_hour_usd: number | null;
  queue_depth: number | null;
  pending_approvals: number | null;
  /** Guardrail blocks within the window. */
  guardrail_blocks: number | null;
}

export interface VersionSet {
  release: string;
  git_sha: string;
  model: string;
  prompt: string;
  policy: string;
}

export type VersionField = keyof VersionSet;

/** One entry of the "what changed" strip. */
export interface VersionChange {
  field: VersionField;
  from: string;
  to: string;
  at_ms: number;
}

export interface ServiceCard {
  profile_id: string;
  service: string;
  track: string;
  url: string;
  live: boolean;
  readiness: ReadyState;
  checks: DependencyCheck[];
  stats: ServiceStats;
  circuits: Circuit[];
  badges: AlertBadge[];
  versions: VersionSet;
  changes: VersionChange[];
  frozen: boolean;
  scraped_at_ms: number | null;
}

export interface Overview {
  window: ChartWindow;
  services: ServiceCard[];
  generated_at_ms: number;
}

export interface OverviewArgs {
  /** Also the window later `overview_event` pushes are computed for. */
  window: ChartWindow;
}

export interface ChartArgs {
  profile_id: string;
  track: string;
  window: ChartWindow;
  theme: Theme;
}

/** A chart rendered by the backend (plotters); the UI only injects `svg`. */
export interface Chart {
  metric: string;
  title: string;
  svg: string;
}

// ---------------------------------------------------------------------------------------
// Traces

export type TraceStatus =
  | 'success'
  | 'approval_required'
  | 'blocked'
  | 'budget_exceeded'
  | 'degraded'
  | 'error'
  | 'cancelled';

export interface TraceQuery {
  errors_only: boolean;
  /** Only traces slower than this many milliseconds. */
  min_duration_ms: number | null;
  workflow: string | null;
  /** Exact or prefix match on the request id. */
  request_id: string | null;
  cursor: string | null;
  limit: number;
}

export interface TraceSummary {
  trace_id: string;
  request_id: string;
  workflow: string;
  status: TraceStatus;
  error_code: string | null;
  started_at_ms: number;
  duration_ms: number;
  tokens: number;
  cost_usd: number;
  model: string;
  span_count: number;
}

export interface TracePage {
  items: TraceSummary[];
  next_cursor: string | null;
  /** Matching traces in all, when the service knows. */
  total: number | null;
}

export type SpanKind = 'request' | 'guardrail' | 'retrieval' | 'llm' | 'tool' | 'approval' | 'other';

export interface SpanAttribute {
  key: string;
  value: string;
}

export interface Span {
  span_id: string;
  parent_span_id: string | null;
  name: string;
  kind: SpanKind;
  status: 'ok' | 'error';
  /** Offset from the trace start. */
  start_ms: number;
  duration_ms: number;
  model: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  cost_usd: number | null;
  attributes: SpanAttribute[];
  /** Pretty-printed, already redacted by the service (`[REDACTED:email]`). */
  payload: string | null;
}

export interface TraceDetail {
  summary: TraceSummary;
  spans: Span[];
}

export interface TraceIdArgs {
  trace_id: string;
}

// ---------------------------------------------------------------------------------------
// Approvals and audit

export type ApprovalStatus =
  | 'pending'
  | 'approved'
  | 'executing'
  | 'executed'
  | 'failed'
  | 'rejected'
  | 'expired'
  | 'cancelled';

export interface ReleaseRef {
  version: string;
  git_sha: string;
  track: string;
}

export interface ApprovalSummary {
  id: string;
  workflow: string;
  tool: string;
  /** `proposed_change.resource`. */
  resource: string;
  risk_tier: number;
  requested_by: string;
  status: ApprovalStatus;
  required_approvals: number;
  approvals_count: number;
  release: ReleaseRef;
  created_at_ms: number;
  expires_at_ms: number;
  decided_at_ms: number | null;
}

export interface Evidence {
  kind: string;
  id: string;
  title: string | null;
  source: string;
}

export interface ProposedChange {
  resource: string;
  before: string;
  after: string;
  /** Unified diff text (`---`, `+++`, `@@`, `+`, `-`, ` ` lines). */
  diff: string;
}

export interface Decision {
  approver: string;
  decision: 'approve' | 'reject';
  reason: string;
  decided_at_ms: number;
}

export interface Execution {
  status: string;
  attempts: number;
  error: string | null;
  executed_at_ms: number | null;
}

export interface ApprovalDetail {
  summary: ApprovalSummary;
  /** Redacted, pretty-printed JSON. */
  arguments: string;
  proposed_change: ProposedChange;
  evidence: Evidence[];
  request_id: string;
  trace_id: string;
  policy_version: string;
  decisions: Decision[];
  execution: Execution | null;
}

export type ApprovalListView = 'pending' | 'history';

export interface ApprovalListArgs {
  view: ApprovalListView;
  cursor: string | null;
}

export interface ApprovalPage {
  items: ApprovalSummary[];
  next_cursor: string | null;
}

export interface ApprovalIdArgs {
  id: string;
}

export interface DecideArgs {
  id: string;
  decision: 'approve' | 'reject';
  /** Required, non-blank (SPEC 2.6). */
  reason: string;
}

/** Pushed on every change of the queue (SSE `/v1/approvals/events` relayed). */
export interface ApprovalEvent {
  kind: 'created' | 'updated' | 'removed';
  approval: ApprovalSummary;
}

export interface AuditStatus {
  ok: boolean;
  checked: number;
  first_broken: { seq: number; id: string | null; reason: string } | null;
  verified_at_ms: number;
}

// ---------------------------------------------------------------------------------------
// Evals

export type EvalSuiteKind = 'golden' | 'adversarial';
export type EvalRunState = 'queued' | 'running' | 'completed' | 'failed';
export type Verdict = 'pass' | 'fail';

export interface EvalSuite {
  name: string;
  kind: EvalSuiteKind;
  description: string;
  cases: number;
}

export interface EvalVersions {
  release: string;
  git_sha: string;
  model: string;
  prompt: string;
  policy: string;
}

export interface EvalRunSummary {
  id: string;
  suite: string;
  status: EvalRunState;
  done: number;
  total: number;
  versions: EvalVersions;
  gate: Verdict | null;
  pass_rate: number | null;
  created_at_ms: number;
  finished_at_ms: number | null;
}

export interface EvalScores {
  cases: number;
  passed: number;
  failed: number;
  pass_rate: number;
  policy_compliance: number;
  citation_rate: number;
  latency_p50_ms: number;
  latency_p95_ms: number;
  tokens: number;
  cost_usd: number;
}

export interface GateCheck {
  name: string;
  /** "≥ 0.95", "≤ 8000 ms". */
  threshold: string;
  actual: string;
  passed: boolean;
}

export interface Gate {
  verdict: Verdict;
  reasons: string[];
  checks: GateCheck[];
}

export interface BaselineDiff {
  baseline_run_id: string;
  pass_rate_delta: number;
  /** Case ids that passed in the baseline and fail now. */
  regressions: string[];
  /** Case ids that failed in the baseline and pass now. */
  fixes: string[];
}

export interface Assertion {
  kind: string;
  expected: string;
  actual: string;
  passed: boolean;
}

export interface CaseResult {
  case_id: string;
  workflow: string;
  passed: boolean;
  status: string;
  latency_ms: number;
  cost_usd: number;
  answer_excerpt: string;
  assertions: Assertion[];
  error: string | null;
}

export interface EvalRunDetail {
  summary: EvalRunSummary;
  error: string | null;
  scores: EvalScores | null;
  gate: Gate | null;
  baseline: BaselineDiff | null;
  cases: CaseResult[];
}

export interface EvalRunIdArgs {
  run_id: string;
}

export interface StartEvalArgs {
  suite: string;
  /** Null: the newest completed run of the suite. */
  baseline_run_id: string | null;
}

export interface PassRatePoint {
  suite: string;
  release: string;
  run_id: string;
  pass_rate: number;
  gate: Verdict | null;
  finished_at_ms: number;
}

/** Pushed while a run started from this console progresses, and once when it ends. */
export interface EvalProgressEvent {
  run_id: string;
  status: EvalRunState;
  done: number;
  total: number;
  pass_rate: number | null;
}

// ---------------------------------------------------------------------------------------
// Smoke tests

export interface OllamaStatus {
  url: string;
  reachable: boolean;
  version: string | null;
  /** Why it is not reachable. */
  error: string | null;
}

export interface OllamaModel {
  name: string;
  size_bytes: number;
  family: string;
  parameter_size: string;
  quantization: string;
  supports_tools: boolean;
  modified_at_ms: number;
}

export interface PullModelArgs {
  model: string;
}

export interface PullProgressEvent {
  model: string;
  /** Ollama's status line: `pulling manifest`, `downloading`, `verifying sha256`, `success`. */
  status: string;
  completed_bytes: number | null;
  total_bytes: number | null;
}

export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface Measurement {
  name: string;
  value: number;
  /** `ms`, `tok/s`, `models`, `bytes`, `%`. */
  unit: string;
}

export interface CheckResult {
  /** Stable id: `reachability`, `generation`, `agent_golden`, … */
  name: string;
  title: string;
  status: CheckStatus;
  reason: string;
  measurements: Measurement[];
  duration_ms: number;
}

export interface SmokeReport {
  id: string;
  ollama_url: string;
  agent_url: string | null;
  model: string;
  started_at_ms: number;
  finished_at_ms: number;
  checks: CheckResult[];
}

export interface SmokeRunSummary {
  id: string;
  model: string;
  started_at_ms: number;
  passed: number;
  failed: number;
  skipped: number;
}

export interface RunSmokeArgs {
  model: string;
  /** Also run the agent-service cases through the active profile. */
  through_agent: boolean;
}

export interface SmokeRunIdArgs {
  id: string;
}

export type ExportFormat = 'markdown' | 'json';

export interface ExportSmokeArgs {
  id: string;
  format: ExportFormat;
}

export interface ExportedFile {
  path: string;
  bytes: number;
}

/** flightdeck-core `SmokeProgress`, tagged by `type`. */
export type SmokeProgressEvent =
  | { type: 'check_started'; name: string; title: string; index: number; total: number }
  | { type: 'check_finished'; result: CheckResult };

// ---------------------------------------------------------------------------------------
// Incident switch and notifications

export interface FreezeState {
  frozen: boolean;
  reason: string | null;
  changed_by: string | null;
  changed_at_ms: number | null;
}

export interface IncidentArgs {
  /** Required; written to the audit log of the service and the local action log. */
  reason: string;
}

export interface IncidentResult {
  freeze: FreezeState;
  /** Rollouts of the service paused (0 without a Kubernetes profile). */
  rollouts_paused: number;
  /** Where the incident pack (failing traces, versions, metrics) was written. */
  pack_path: string;
}

export interface NotifyArgs {
  title: string;
  body: string;
}

// ---------------------------------------------------------------------------------------
// The command and event maps: every command name with its argument and result type.

/** Marks a command that takes no arguments. */
export type NoArgs = undefined;

export interface CommandMap {
  // profiles and keyring
  list_profiles: { args: NoArgs; result: ProfileList };
  add_agent_profile: { args: AddAgentProfileArgs; result: Profile };
  remove_profile: { args: ProfileIdArgs; result: ProfileList };
  set_active_profile: { args: ProfileIdArgs; result: ProfileList };
  keyring_status: { args: NoArgs; result: KeyringStatus };
  get_permissions: { args: NoArgs; result: Permissions };
  // settings
  get_settings: { args: NoArgs; result: Settings };
  update_settings: { args: Settings; result: Settings };
  // overview
  get_overview: { args: OverviewArgs; result: Overview };
  get_charts: { args: ChartArgs; result: Chart[] };
  // traces
  list_workflows: { args: NoArgs; result: string[] };
  list_traces: { args: TraceQuery; result: TracePage };
  get_trace: { args: TraceIdArgs; result: TraceDetail };
  // approvals and audit
  list_approvals: { args: ApprovalListArgs; result: ApprovalPage };
  get_approval: { args: ApprovalIdArgs; result: ApprovalDetail };
  decide_approval: { args: DecideArgs; result: ApprovalDetail };
  verify_audit: { args: NoArgs; result: AuditStatus };
  // evals
  list_eval_suites: { args: NoArgs; result: EvalSuite[] };
  list_eval_runs: { args: NoArgs; result: EvalRunSummary[] };
  get_eval_run: { args: EvalRunIdArgs; result: EvalRunDetail };
  start_eval: { args: StartEvalArgs; result: EvalRunSummary };
  eval_pass_rates: { args: NoArgs; result: PassRatePoint[] };
  // smoke tests
  discover_ollama: { args: NoArgs; result: OllamaStatus };
  list_models: { args: NoArgs; result: OllamaModel[] };
  pull_model: { args: PullModelArgs; result: OllamaModel };
  run_smoke: { args: RunSmokeArgs; result: SmokeReport };
  list_smoke_runs: { args: NoArgs; result: SmokeRunSummary[] };
  get_smoke_report: { args: SmokeRunIdArgs; result: SmokeReport };
  export_smoke_report: { args: ExportSmokeArgs; result: ExportedFile };
  // incident switch
  get_freeze_state: { args: NoArgs; result: FreezeState };
  incident_switch: { args: IncidentArgs; result: IncidentResult };
  unfreeze_writes: { args: IncidentArgs; result: FreezeState };
  // desktop integration
  notify: { args: NotifyArgs; result: null };
  // releases (issue #5)
  list_kube_contexts: { args: NoArgs; result: KubeContext[] };
  add_kube_profile: { args: AddKubeProfileArgs; result: Profile };
  list_releases: { args: NoArgs; result: ReleaseList };
  get_release: { args: ReleaseRefArgs; result: ReleaseDetail };
  promote_release: { args: PromoteArgs; result: ReleaseActionResult };
  abort_release: { args: ReleaseReasonArgs; result: ReleaseActionResult };
  undo_release: { args: UndoArgs; result: ReleaseActionResult };
  pause_release: { args: ReleaseReasonArgs; result: ReleaseActionResult };
  resume_release: { args: ReleaseReasonArgs; result: ReleaseActionResult };
}

export type CommandName = keyof CommandMap;
export type ArgsOf<K extends CommandName> = CommandMap[K]['args'];
export type ResultOf<K extends CommandName> = CommandMap[K]['result'];

/** Events the backend pushes (Tauri `emit`), by name, with their payload. */
export interface EventMap {
  /** The approval queue changed. */
  approval_event: ApprovalEvent;
  /** Fresh overview after each scrape, for the window last passed to `get_overview`. */
  overview_event: Overview;
  eval_progress: EvalProgressEvent;
  smoke_progress: SmokeProgressEvent;
  pull_progress: PullProgressEvent;
  freeze_event: FreezeState;
  /** The active profile or its key's roles changed. */
  permissions_event: Permissions;
  /** A watch-driven change of one release (issue #5). */
  release_event: ReleaseSummary;
  /** Progress of a release action (promote, abort, undo, pause, resume). */
  release_progress: ReleaseProgressEvent;
}

export type EventName = keyof EventMap;
