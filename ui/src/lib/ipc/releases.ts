/**
 * The Releases IPC contract (issue #5): the DTOs of the core `releases` module
 * (`src-tauri/core/src/releases/dto.rs`), kept by hand in the same shapes until the ts-rs
 * generated types replace them. Field names are snake_case, `Option<T>` is `T | null`.
 */

export type AnalysisVerdict = 'pass' | 'fail' | 'inconclusive';
export type ReleaseKind = 'deployment' | 'argo_rollout';
/** Identifies a release: a Kubernetes profile id (cluster connection), namespace and app name (stable Deployment name). */
export interface RolloutRef {
  profile_id: string;
  namespace: string;
  name: string;
}
export interface TrackInfo {
  image: string;
  /** From the pod template annotations flightdeck.dev/model, /prompt-version, /policy-version (null when absent). */
  model: string | null;
  prompt_version: string | null;
  policy_version: string | null;
  /** Label app.kubernetes.io/version of the pod template. */
  version: string | null;
  replicas_desired: number;
  replicas_ready: number;
  /** deployment.kubernetes.io/revision of the Deployment. */
  revision: number | null;
}
export type ReleaseState = 'waiting_decision' | 'progressing' | 'paused' | 'complete' | 'aborted' | 'idle';
export interface ReleaseSummary {
  ref: RolloutRef;
  /** Profile name (human). */
  cluster: string;
  kind: ReleaseKind;
  stable: TrackInfo;
  /** Null when no canary Deployment exists. */
  canary: TrackInfo | null;
  /** flightdeck.dev/canary-steps, e.g. [10,25,50,100]. */
  steps: number[];
  /** flightdeck.dev/canary-step: steps done (0 = no canary traffic). */
  step: number;
  /** Percent: steps[step-1] or 0. */
  desired_weight: number;
  /** Percent from ready replicas: canary_ready / (canary_ready + stable_ready) * 100, rounded. */
  actual_weight: number;
  state: ReleaseState;
  /** flightdeck.dev/paused-reason annotation or the analysis reason when inconclusive. */
  paused_reason: string | null;
  /** Latest analysis verdict, null when no canary. */
  verdict: AnalysisVerdict | null;
  updated_at_ms: number;
}
export type MetricName = 'success_rate' | 'error_rate' | 'p95_latency_ms' | 'cost_per_success_usd' | 'guardrail_block_rate';
export interface MetricSample {
  at_ms: number;
  canary: number | null;
  stable: number | null;
  passed: boolean | null;
}
export interface MetricAnalysis {
  metric: MetricName;
  /** Human, e.g. "canary error rate <= 0.01". */
  condition: string;
  /** The threshold from flightdeck.dev/analysis. */
  limit: number;
  /** Oldest first, one per analysis tick (kept in memory per release, last 60). */
  measurements: MetricSample[];
  failures: number;
  failure_limit: number;
  verdict: AnalysisVerdict;
  reason: string;
}
export type GateVerdict = 'pass' | 'fail' | 'missing' | 'error';
export interface EvalGateStatus {
  version: string | null;
  verdict: GateVerdict;
  suite: string | null;
  pass_rate: number | null;
  threshold: number | null;
  run_id: string | null;
  reason: string;
}
export interface ReleaseAnalysis {
  verdict: AnalysisVerdict;
  reason: string;
  samples_canary: number;
  samples_stable: number;
  min_samples: number;
  metrics: MetricAnalysis[];
  eval_gate: EvalGateStatus;
}
export interface Revision {
  revision: number;
  image: string;
  created_at_ms: number | null;
  current: boolean;
  change_cause: string | null;
}
export type ReleaseActionId = 'promote_step' | 'promote_full' | 'abort' | 'undo' | 'pause' | 'resume';
export interface ReleaseActionPermission {
  action: ReleaseActionId;
  allowed: boolean;
  reason: string | null;
}
export interface KubeEventInfo {
  at_ms: number;
  type: string;
  reason: string;
  message: string;
}
export interface ReleaseLogEntry {
  at_ms: number;
  action: string;
  actor: string;
  outcome: string;
  detail: string | null;
}
export interface ReleaseDetail {
  summary: ReleaseSummary;
  /** Null when there is no canary. */
  analysis: ReleaseAnalysis | null;
  /** Newest first. */
  revisions: Revision[];
  permissions: ReleaseActionPermission[];
  /** Kubernetes Events on the release's objects, newest first. */
  events: KubeEventInfo[];
  /** The console's local action log for this release, newest first. */
  log: ReleaseLogEntry[];
}
export interface ClusterError {
  profile_id: string;
  cluster: string;
  message: string;
}
/** Waiting_decision first. */
export interface ReleaseList {
  releases: ReleaseSummary[];
  errors: ClusterError[];
}
export interface KubeContext {
  name: string;
  cluster: string;
  user: string;
  namespace: string | null;
  current: boolean;
}
export interface AddKubeProfileArgs {
  name: string;
  context: string;
  namespace: string;
}
export interface ReleaseRefArgs {
  ref: RolloutRef;
}
export interface PromoteArgs {
  ref: RolloutRef;
  full: boolean;
  reason: string;
}
export interface ReleaseReasonArgs {
  ref: RolloutRef;
  reason: string;
}
export interface UndoArgs {
  ref: RolloutRef;
  revision: number;
  reason: string;
}
export interface ReleaseActionResult {
  detail: ReleaseDetail;
  message: string;
  cancelled_approvals: number | null;
}
export interface ReleaseProgressEvent {
  ref: RolloutRef;
  action: ReleaseActionId;
  phase: string;
  fraction: number | null;
  done: boolean;
  error: string | null;
}
