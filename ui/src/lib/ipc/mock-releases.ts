/**
 * The Releases part of the in-memory mock backend: deterministic releases on
 * three clusters (one unreachable), the release commands with their checks (reason
 * required, SSAR denial in read-only, conflicts when the release is not where the action
 * needs it), `release_progress` during an action and `release_event` after it.
 */
import { BackendError } from './backend';
import { LONG, rng } from './fixtures';
import type {
  ClusterError,
  EvalGateStatus,
  KubeContext,
  KubeEventInfo,
  MetricSample,
  MetricAnalysis,
  MetricName,
  ReleaseActionId,
  ReleaseActionPermission,
  ReleaseActionResult,
  ReleaseAnalysis,
  ReleaseDetail,
  ReleaseList,
  ReleaseLogEntry,
  RolloutRef,
  ReleaseState,
  ReleaseSummary,
  Revision,
  TrackInfo,
  AnalysisVerdict,
} from './releases';
import type { ArgsOf, EventMap, EventName, Profile, ProfileList, ResultOf } from './types';

export type ReleaseCommand =
  | 'list_kube_contexts'
  | 'add_kube_profile'
  | 'link_kube_profile'
  | 'list_releases'
  | 'get_release'
  | 'promote_release'
  | 'abort_release'
  | 'undo_release'
  | 'pause_release'
  | 'resume_release';

export type ReleaseHandlers = { [K in ReleaseCommand]: (args: ArgsOf<K>) => Promise<ResultOf<K>> | ResultOf<K> };

/** What the release mock needs from the main mock. */
export interface ReleaseMockContext {
  t0: number;
  /** Delay of one progress phase (short with `fast=1`). */
  step: number;
  isEmpty(): boolean;
  readOnly(): boolean;
  profiles(): Profile[];
  addProfile(p: Profile): void;
  /** Replaces the profile with its id; the new list. */
  replaceProfile(p: Profile): ProfileList;
  emit<E extends EventName>(event: E, payload: EventMap[E]): void;
}

/** What tests drive (`window.__flightdeckMock.releases`). */
export interface ReleaseMockControl {
  /** Changes a release as a Kubernetes watch would and pushes `release_event`. */
  update(name: string, patch: Partial<ReleaseSummary>): ReleaseSummary;
  /** Deletes a release as if from the cluster and pushes `release_removed`. */
  remove(name: string): void;
  /** Makes a cluster (profile id) unreachable or reachable again for the next `list_releases`. */
  setUnreachable(profileId: string, unreachable: boolean): void;
  /** Sets the delay between an action's progress phases (ms), to watch the progress. */
  setPhaseDelay(ms: number): void;
  /** Pending approvals of each release's canary (what abort cancels). */
  readonly pendingApprovals: Readonly<Record<string, number>>;
  /**
   * What `list_kube_contexts` / `add_kube_profile` find: `present` (three contexts),
   * `missing` (no KUBECONFIG and no ~/.kube/config: they reject with `not_found`) or
   * `empty` (a kubeconfig without contexts). Also set from the URL: `&kubeconfig=missing|empty`.
   */
  setKubeconfig(state: KubeconfigState): void;
}

/** The kubeconfig the mock pretends to read (see `ReleaseMockControl.setKubeconfig`). */
export type KubeconfigState = 'present' | 'missing' | 'empty';

function kubeconfigFromUrl(): KubeconfigState {
  const v = typeof window === 'undefined' ? null : new URLSearchParams(window.location.search).get('kubeconfig');
  return v === 'missing' || v === 'empty' ? v : 'present';
}

/** A DNS-1123 label, what Kubernetes accepts as a namespace name. */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

interface Cluster {
  profile_id: string;
  name: string;
  context: string;
  unreachable: string | null;
}

interface ReleaseRecord {
  summary: ReleaseSummary;
  analysis: ReleaseAnalysis | null;
  revisions: Revision[];
  events: KubeEventInfo[];
  log: ReleaseLogEntry[];
  /** Pending approvals requested by the canary's pods (cancelled by abort). */
  canaryApprovals: number;
}

const ACTIONS: readonly ReleaseActionId[] = ['promote_step', 'promote_full', 'abort', 'undo', 'pause', 'resume'];

const RANK: Record<ReleaseState, number> = { waiting_decision: 0, paused: 1, progressing: 2, aborted: 3, complete: 4, idle: 5 };

/** The order the backend lists releases in: waiting for a decision first. */
export function releaseOrder(a: ReleaseSummary, b: ReleaseSummary): number {
  return RANK[a.state] - RANK[b.state] || a.cluster.localeCompare(b.cluster) || a.ref.namespace.localeCompare(b.ref.namespace) || a.ref.name.localeCompare(b.ref.name);
}

function key(r: RolloutRef): string {
  return `${r.profile_id}/${r.namespace}/${r.name}`;
}

function track(image: string, version: string, revision: number, replicas: number, ready: number, model: string, prompt: string, policy: string): TrackInfo {
  return { image, model, prompt_version: prompt, policy_version: policy, version, replicas_desired: replicas, replicas_ready: ready, revision };
}

function weight(canaryReady: number, stableReady: number): number {
  const total = canaryReady + stableReady;
  return total === 0 ? 0 : Math.round((canaryReady / total) * 100);
}

interface MetricSpec {
  metric: MetricName;
  condition: string;
  limit: number;
  stable: number;
  canary: number;
  spread: number;
  /** `max`: canary must stay at or below the limit; `min`: at or above. */
  bound: 'max' | 'min';
}

const METRICS: readonly MetricSpec[] = [
  { metric: 'success_rate', condition: 'canary success rate >= 0.97', limit: 0.97, stable: 0.991, canary: 0.989, spread: 0.004, bound: 'min' },
  { metric: 'error_rate', condition: 'canary error rate <= 0.01', limit: 0.01, stable: 0.004, canary: 0.005, spread: 0.002, bound: 'max' },
  { metric: 'p95_latency_ms', condition: 'canary p95 latency <= 2500 ms', limit: 2500, stable: 1840, canary: 1910, spread: 140, bound: 'max' },
  { metric: 'cost_per_success_usd', condition: 'canary cost per success <= $0.050', limit: 0.05, stable: 0.031, canary: 0.033, spread: 0.003, bound: 'max' },
  { metric: 'guardrail_block_rate', condition: 'canary guardrail block rate <= 0.02', limit: 0.02, stable: 0.006, canary: 0.007, spread: 0.002, bound: 'max' },
];

const TICKS = 20;
const TICK_MS = 30_000;

/**
 * The analysis of one canary: `mode` `pass` (all within limits), `inconclusive` (too few
 * canary samples: no verdict per tick), `fail` (the error rate over its limit in the last ticks).
 */
function analysis(t0: number, seed: number, mode: AnalysisVerdict, gate: EvalGateStatus): ReleaseAnalysis {
  const r = rng(seed);
  const metrics: MetricAnalysis[] = METRICS.map((m) => {
    const failing = mode === 'fail' && m.metric === 'error_rate';
    const measurements: MetricSample[] = [];
    let failures = 0;
    for (let i = 0; i < TICKS; i++) {
      const jitter = (r() - 0.5) * 2 * m.spread;
      const late = failing && i >= TICKS - 6;
      const canary = late ? 0.028 + (i - (TICKS - 6)) * 0.0015 + Math.abs(jitter) / 4 : m.canary + jitter;
      const stable = m.stable + (r() - 0.5) * m.spread;
      const passed = mode === 'inconclusive' ? null : m.bound === 'max' ? canary <= m.limit : canary >= m.limit;
      failures = passed === false ? failures + 1 : 0;
      measurements.push({ at_ms: t0 - (TICKS - 1 - i) * TICK_MS, canary: Number(canary.toFixed(5)), stable: Number(stable.toFixed(5)), passed });
    }
    const last = measurements[measurements.length - 1]?.canary ?? 0;
    const verdict: AnalysisVerdict = mode === 'inconclusive' ? 'inconclusive' : failures >= 3 ? 'fail' : 'pass';
    const reason =
      verdict === 'fail'
        ? `canary ${m.metric.replace(/_/g, ' ')} ${last.toFixed(4)} > ${m.limit} in ${failures} consecutive analyses (limit 3)`
        : verdict === 'inconclusive'
          ? 'not enough canary samples yet'
          : `canary ${last.toFixed(m.limit >= 1 ? 0 : 4)} within ${m.bound === 'max' ? '<=' : '>='} ${m.limit}`;
    return { metric: m.metric, condition: m.condition, limit: m.limit, measurements, failures: Math.min(failures, 3), failure_limit: 3, verdict, reason };
  });
  const reason =
    mode === 'fail'
      ? 'error_rate failed 3 analyses in a row: canary error rate over 0.01'
      : mode === 'inconclusive'
        ? 'inconclusive: 212 canary requests, fewer than min_samples 500; waiting for a decision'
        : 'all metrics within limits for 20 analyses';
  return { verdict: mode, reason, samples_canary: mode === 'inconclusive' ? 212 : 4810 + seed, samples_stable: 38_214 + seed * 7, min_samples: 500, metrics, eval_gate: gate };
}

function gatePass(version: string, runId: string, rate: number): EvalGateStatus {
  return { version, verdict: 'pass', suite: 'golden', pass_rate: rate, threshold: 0.95, run_id: runId, reason: `golden ${(rate * 100).toFixed(1)} % >= 95.0 % on ${version}` };
}

function clusters(): Cluster[] {
  return [
    { profile_id: 'k8s-prod-eu', name: 'prod-eu cluster', context: 'gke_acme_europe-west1_prod', unreachable: null },
    { profile_id: 'k8s-prod-us', name: 'prod-us cluster', context: 'gke_acme_us-east1_prod', unreachable: null },
    {
      profile_id: 'k8s-staging',
      name: 'staging cluster',
      context: 'kind-staging',
      unreachable: 'could not reach https://10.40.0.2:6443: connection timed out after 10 s (is the VPN up, and is the kube context "kind-staging" current?)',
    },
  ];
}

function records(t0: number): ReleaseRecord[] {
  const min = 60_000;
  const mk = (
    c: Cluster,
    namespace: string,
    name: string,
    o: {
      state: ReleaseState;
      step: number;
      stableV: string;
      canaryV: string | null;
      verdict: AnalysisVerdict | null;
      paused: string | null;
      seed: number;
      gate: EvalGateStatus | null;
      approvals: number;
      stableReplicas: number;
    },
  ): ReleaseRecord => {
    const steps = [10, 25, 50, 100];
    const image = (v: string): string => `${LONG.registry}/${name}:${v}`;
    const stableRev = 7 + o.seed;
    const desired = o.step === 0 ? 0 : (steps[o.step - 1] ?? 0);
    const canaryReady = o.canaryV === null ? 0 : Math.max(1, Math.round((o.stableReplicas * desired) / Math.max(1, 100 - desired)));
    const canary =
      o.canaryV === null ? null : track(image(o.canaryV), o.canaryV, 3, canaryReady, canaryReady, LONG.model, 'support_answer@v15', 'guardrails-v3.1');
    const stable = track(image(o.stableV), o.stableV, stableRev, o.stableReplicas, o.stableReplicas, 'gpt-4.1-mini', 'support_answer@v14', 'guardrails-v3.0');
    const summary: ReleaseSummary = {
      ref: { profile_id: c.profile_id, namespace, name },
      cluster: c.name,
      kind: 'deployment',
      stable,
      canary,
      steps,
      step: o.step,
      desired_weight: desired,
      actual_weight: canary === null ? 0 : o.state === 'complete' ? 100 : weight(canary.replicas_ready, stable.replicas_ready),
      state: o.state,
      paused_reason: o.paused,
      verdict: o.verdict,
      updated_at_ms: t0 - o.seed * 3 * min,
    };
    const revisions: Revision[] = [
      { revision: stableRev, image: image(o.stableV), created_at_ms: t0 - 26 * 60 * min, current: true, change_cause: `release ${o.stableV}` },
      { revision: stableRev - 1, image: image('1.7.2'), created_at_ms: t0 - 9 * 24 * 60 * min, current: false, change_cause: 'release 1.7.2' },
      { revision: stableRev - 2, image: image('1.7.1'), created_at_ms: t0 - 16 * 24 * 60 * min, current: false, change_cause: 'hotfix 1.7.1: retry budget' },
    ];
    const events: KubeEventInfo[] =
      canary === null
        ? [{ at_ms: t0 - 26 * 60 * min, type: 'Normal', reason: 'ScalingReplicaSet', message: `Scaled up replica set ${name}-6d9f7c8b5 to ${o.stableReplicas}` }]
        : [
            { at_ms: t0 - 4 * min, type: o.verdict === 'fail' ? 'Warning' : 'Normal', reason: o.verdict === 'fail' ? 'AnalysisFailed' : 'AnalysisRun', message: o.verdict === 'fail' ? 'error_rate 0.034 > 0.01 (3 of 3)' : `verdict ${o.verdict ?? 'none'}` },
            { at_ms: t0 - 18 * min, type: 'Normal', reason: 'ScalingReplicaSet', message: `Scaled up replica set ${name}-canary-7f4d9 to ${canary.replicas_desired}` },
            { at_ms: t0 - 41 * min, type: 'Normal', reason: 'Pulled', message: `Successfully pulled image "${canary.image}" in 4.1s` },
          ];
    const log: ReleaseLogEntry[] =
      o.step > 0
        ? [{ at_ms: t0 - 18 * min, action: 'promote_step', actor: 'dana@acme.test', outcome: 'ok', detail: `step ${o.step} of 4 (${desired} %): “eval gate green, error rate flat”` }]
        : [];
    return {
      summary,
      analysis: canary === null || o.verdict === null || o.gate === null ? null : analysis(t0, o.seed, o.verdict, o.gate),
      revisions,
      events,
      log,
      canaryApprovals: o.approvals,
    };
  };
  const [eu, us] = clusters() as [Cluster, Cluster, Cluster];
  return [
    mk(us, 'agents', 'triage-agent', {
      state: 'paused',
      step: 2,
      stableV: '2.3.4',
      canaryV: '2.4.0-rc.1',
      verdict: 'fail',
      paused: 'analysis failed: canary error rate 0.034 > 0.01 in 3 consecutive analyses',
      seed: 3,
      gate: { version: '2.4.0-rc.1', verdict: 'missing', suite: null, pass_rate: null, threshold: 0.95, run_id: null, reason: 'no completed golden run for version 2.4.0-rc.1' },
      approvals: 1,
      stableReplicas: 6,
    }),
    mk(eu, 'support', 'refund-agent', {
      state: 'progressing',
      step: 1,
      stableV: '1.4.2',
      canaryV: '1.5.0',
      verdict: 'pass',
      paused: null,
      seed: 2,
      gate: gatePass('1.5.0', 'run_gol_0007', 0.972),
      approvals: 0,
      stableReplicas: 9,
    }),
    mk(us, 'agents', 'billing-agent', { state: 'complete', step: 4, stableV: '3.1.0', canaryV: '3.2.0', verdict: 'pass', paused: null, seed: 4, gate: gatePass('3.2.0', 'run_gol_0005', 0.981), approvals: 0, stableReplicas: 4 }),
    mk(eu, 'agents', 'support-agent', {
      state: 'waiting_decision',
      step: 2,
      stableV: '1.8.0',
      canaryV: '1.9.0-rc.2',
      verdict: 'inconclusive',
      paused: 'analysis inconclusive: 212 canary requests, fewer than min_samples 500',
      seed: 1,
      gate: gatePass('1.9.0-rc.2', 'run_gol_0009', 0.958),
      approvals: 3,
      stableReplicas: 6,
    }),
    mk(eu, 'agents', 'search-agent', { state: 'idle', step: 0, stableV: '0.9.3', canaryV: null, verdict: null, paused: null, seed: 5, gate: null, approvals: 0, stableReplicas: 3 }),
  ];
}

function notFound(ref: RolloutRef): BackendError {
  return new BackendError({ code: 'not_found', message: `release ${ref.name} not found in namespace ${ref.namespace} of ${ref.profile_id}: no Deployment ${ref.name}`, server_code: null, request_id: null, retry_after_secs: null });
}

function conflict(message: string): BackendError {
  return new BackendError({ code: 'conflict', message, server_code: null, request_id: null, retry_after_secs: null });
}

function invalid(message: string): BackendError {
  return new BackendError({ code: 'invalid', message, server_code: null, request_id: null, retry_after_secs: null });
}

function noKubeconfig(): BackendError {
  return new BackendError({
    code: 'not_found',
    message: 'no kubeconfig found: KUBECONFIG is not set and ~/.kube/config does not exist (create it with your cloud CLI, e.g. `gcloud container clusters get-credentials`, or `kubectl config set-context`)',
    server_code: null,
    request_id: null,
    retry_after_secs: null,
  });
}

const VERB: Record<ReleaseActionId, string> = {
  promote_step: 'patch',
  promote_full: 'patch',
  abort: 'patch',
  undo: 'update',
  pause: 'patch',
  resume: 'patch',
};

export function releaseMock(ctx: ReleaseMockContext): { handlers: ReleaseHandlers; control: ReleaseMockControl } {
  const cls = clusters();
  let phaseMs = ctx.step;
  let kubeconfig: KubeconfigState = kubeconfigFromUrl();
  const byKey = new Map<string, ReleaseRecord>();
  for (const r of records(ctx.t0)) byKey.set(key(r.summary.ref), r);

  function permissions(ns: string): ReleaseActionPermission[] {
    return ACTIONS.map((action) =>
      ctx.readOnly()
        ? {
            action,
            allowed: false,
            reason: `SelfSubjectAccessReview: user "viewer@acme.test" may not ${VERB[action]} deployments.apps in namespace "${ns}" (role flightdeck-viewer grants get, list, watch)`,
          }
        : { action, allowed: true, reason: null },
    );
  }

  function detail(r: ReleaseRecord): ReleaseDetail {
    return { summary: r.summary, analysis: r.analysis, revisions: r.revisions, permissions: permissions(r.summary.ref.namespace), events: r.events, log: r.log };
  }

  function find(ref: RolloutRef): ReleaseRecord {
    const r = byKey.get(key(ref));
    if (!r || ctx.isEmpty()) throw notFound(ref);
    const c = cls.find((x) => x.profile_id === ref.profile_id);
    if (c?.unreachable) throw new BackendError({ code: 'network', message: `${c.name}: ${c.unreachable}`, server_code: null, request_id: null, retry_after_secs: null });
    return r;
  }

  function check(ref: RolloutRef, action: ReleaseActionId, reason: string): ReleaseRecord {
    const r = find(ref);
    const p = permissions(ref.namespace).find((x) => x.action === action);
    if (p && !p.allowed) throw new BackendError({ code: 'forbidden', message: p.reason ?? 'not allowed', server_code: null, request_id: null, retry_after_secs: null });
    if (reason.trim() === '') throw invalid(`A reason is required to ${action.replace('_', ' ')} ${ref.name}`);
    return r;
  }

  const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

  /** Emits the phases of an action as `release_progress`, one `step` apart. */
  async function phases(ref: RolloutRef, action: ReleaseActionId, list: string[]): Promise<void> {
    for (const [i, phase] of list.entries()) {
      ctx.emit('release_progress', { ref, action, phase, fraction: i / list.length, done: false, error: null });
      await sleep(phaseMs);
    }
  }

  function finish(r: ReleaseRecord, action: ReleaseActionId, reason: string, next: Partial<ReleaseSummary>, detailText: string): void {
    const now = Date.now();
    r.summary = { ...r.summary, ...next, updated_at_ms: now };
    r.log = [{ at_ms: now, action, actor: 'you@acme.test', outcome: 'ok', detail: `${detailText}: “${reason.trim()}”` }, ...r.log];
    r.events = [{ at_ms: now, type: 'Normal', reason: 'FlightdeckAction', message: `${action} by you@acme.test: ${detailText}` }, ...r.events];
    ctx.emit('release_progress', { ref: r.summary.ref, action, phase: 'done', fraction: 1, done: true, error: null });
    const summary = r.summary;
    setTimeout(() => ctx.emit('release_event', summary), 0);
  }

  function result(r: ReleaseRecord, message: string, cancelled: number | null = null): ReleaseActionResult {
    return { detail: detail(r), message, cancelled_approvals: cancelled };
  }

  function live(r: ReleaseRecord, verb: string): void {
    const s = r.summary;
    if (s.canary === null || s.state === 'complete' || s.state === 'aborted' || s.state === 'idle') {
      throw conflict(`the release moved: ${s.ref.name} is ${s.state === 'idle' ? 'idle (no canary)' : s.state}, there is no canary to ${verb}`);
    }
  }

  const handlers: ReleaseHandlers = {
    list_kube_contexts: (): KubeContext[] => {
      if (kubeconfig === 'missing') throw noKubeconfig();
      return ctx.isEmpty() || kubeconfig === 'empty'
        ? []
        : cls.map((c, i) => ({ name: c.context, cluster: c.context.replace(/^gke_/, ''), user: `${c.context}-user`, namespace: c.profile_id === 'k8s-staging' ? null : 'agents', current: i === 0 }));
    },
    add_kube_profile: (a) => {
      if (kubeconfig === 'missing') throw noKubeconfig();
      const name = a.name.trim();
      if (name === '') throw invalid('The profile needs a name');
      if (kubeconfig === 'empty' || ctx.isEmpty() || !cls.some((c) => c.context === a.context)) throw invalid(`kube context ${JSON.stringify(a.context)} is not in the kubeconfig`);
      if (a.namespace.length > 63 || !NAMESPACE.test(a.namespace)) throw invalid(`${JSON.stringify(a.namespace)} is not a namespace name (a DNS-1123 label: lowercase letters, digits and "-", at most 63)`);
      const id = `k8s-${name.toLowerCase().replace(/[^a-z0-9_-]+/g, '-')}`.slice(0, 64);
      if (ctx.profiles().some((p) => p.id === id)) throw conflict(`A profile named ${name} already exists`);
      const link = a.agent_profile_id;
      if (link !== undefined && !ctx.profiles().some((p) => p.id === link && p.kind === 'agent' && !p.is_local)) {
        throw invalid(`${JSON.stringify(link)} is not an agent-service profile a cluster can be linked to`);
      }
      const p: Profile = { id, name, kind: 'kubernetes', is_local: false, url: null, context: a.context, namespace: a.namespace, has_secret: false, ...(link === undefined ? {} : { agent_profile_id: link }) };
      ctx.addProfile(p);
      return p;
    },
    link_kube_profile: (a) => {
      const p = ctx.profiles().find((x) => x.id === a.profile_id && x.kind === 'kubernetes');
      if (!p) throw new BackendError({ code: 'not_found', message: `No Kubernetes profile ${a.profile_id}`, server_code: null, request_id: null, retry_after_secs: null });
      const link = a.agent_profile_id;
      if (link !== undefined && !ctx.profiles().some((x) => x.id === link && x.kind === 'agent' && !x.is_local)) {
        throw invalid(`${JSON.stringify(link)} is not an agent-service profile a cluster can be linked to`);
      }
      const next: Profile = { ...p };
      if (link === undefined) delete next.agent_profile_id;
      else next.agent_profile_id = link;
      return ctx.replaceProfile(next);
    },
    list_releases: (): ReleaseList => {
      if (ctx.isEmpty()) return { releases: [], errors: [] };
      const errors: ClusterError[] = cls.filter((c) => c.unreachable !== null).map((c) => ({ profile_id: c.profile_id, cluster: c.name, message: c.unreachable ?? '' }));
      const down = new Set(errors.map((e) => e.profile_id));
      const releases = [...byKey.values()].map((r) => r.summary).filter((s) => !down.has(s.ref.profile_id));
      return { releases: releases.sort(releaseOrder), errors };
    },
    get_release: (a) => detail(find(a.ref)),
    promote_release: async (a) => {
      const action = a.full ? 'promote_full' : 'promote_step';
      const r = check(a.ref, action, a.reason);
      live(r, 'promote');
      const s = r.summary;
      const target = a.full ? s.steps.length : Math.min(s.steps.length, s.step + 1);
      const w = s.steps[target - 1] ?? 0;
      const canary = s.canary;
      if (canary === null) throw conflict(`the release moved: ${s.ref.name} has no canary`);
      await phases(a.ref, action, [`patching flightdeck.dev/canary-step to ${target}`, `scaling ${s.ref.name}-canary for ${w} % of traffic`, 'waiting for ready replicas']);
      const done = target >= s.steps.length;
      const ready = done ? s.stable.replicas_desired : Math.max(1, Math.round((s.stable.replicas_ready * w) / Math.max(1, 100 - w)));
      const nextCanary = { ...canary, replicas_desired: ready, replicas_ready: ready };
      finish(
        r,
        action,
        a.reason,
        {
          step: target,
          desired_weight: w,
          actual_weight: done ? 100 : weight(ready, s.stable.replicas_ready),
          canary: nextCanary,
          state: done ? 'complete' : 'progressing',
          paused_reason: null,
        },
        `step ${target} of ${s.steps.length} (${w} %)`,
      );
      return result(r, done ? `Promoted ${s.ref.name} fully: ${canary.version ?? canary.image} takes 100 % of traffic` : `Promoted ${s.ref.name} to step ${target} of ${s.steps.length} (${w} % of traffic)`);
    },
    abort_release: async (a) => {
      const r = check(a.ref, 'abort', a.reason);
      live(r, 'abort');
      await phases(a.ref, 'abort', [`scaling ${a.ref.name}-canary to 0`, 'cancelling the canary’s pending approvals (POST /v1/approvals/cancel)']);
      const cancelled = r.canaryApprovals;
      r.canaryApprovals = 0;
      const canary = r.summary.canary;
      finish(
        r,
        'abort',
        a.reason,
        { step: 0, desired_weight: 0, actual_weight: 0, canary: canary === null ? null : { ...canary, replicas_desired: 0, replicas_ready: 0 }, state: 'aborted', paused_reason: null },
        `canary scaled to 0, ${cancelled} pending approvals cancelled`,
      );
      return result(r, `Aborted ${a.ref.name}: the canary is scaled to 0 and all traffic is on stable`, cancelled);
    },
    undo_release: async (a) => {
      const r = check(a.ref, 'undo', a.reason);
      const target = r.revisions.find((x) => x.revision === a.revision);
      if (!target) throw invalid(`revision ${a.revision} of ${a.ref.name} does not exist (known: ${r.revisions.map((x) => x.revision).join(', ')})`);
      if (target.current) throw conflict(`the release moved: revision ${a.revision} is already the current revision of ${a.ref.name}`);
      await phases(a.ref, 'undo', [`rolling ${a.ref.name} back to revision ${a.revision}`, 'waiting for the rollout']);
      const top = Math.max(...r.revisions.map((x) => x.revision)) + 1;
      const version = target.image.split(':').pop() ?? null;
      r.revisions = [
        { revision: top, image: target.image, created_at_ms: Date.now(), current: true, change_cause: `undo to revision ${a.revision}` },
        ...r.revisions.filter((x) => x.revision !== a.revision).map((x) => ({ ...x, current: false })),
      ];
      finish(r, 'undo', a.reason, { stable: { ...r.summary.stable, image: target.image, version, revision: top } }, `stable rolled back to revision ${a.revision} (${target.image})`);
      return result(r, `Rolled ${a.ref.name} back to revision ${a.revision} (${target.image}), now revision ${top}`);
    },
    pause_release: async (a) => {
      const r = check(a.ref, 'pause', a.reason);
      live(r, 'pause');
      if (r.summary.state === 'paused') throw conflict(`the release moved: ${a.ref.name} is already paused`);
      await phases(a.ref, 'pause', ['setting flightdeck.dev/paused']);
      finish(r, 'pause', a.reason, { state: 'paused', paused_reason: a.reason.trim() }, 'paused');
      return result(r, `Paused ${a.ref.name} at step ${r.summary.step} of ${r.summary.steps.length}`);
    },
    resume_release: async (a) => {
      const r = check(a.ref, 'resume', a.reason);
      if (r.summary.state !== 'paused' && r.summary.state !== 'waiting_decision') throw conflict(`the release moved: ${a.ref.name} is ${r.summary.state}, not paused`);
      await phases(a.ref, 'resume', ['removing flightdeck.dev/paused']);
      finish(r, 'resume', a.reason, { state: 'progressing', paused_reason: null }, 'resumed');
      return result(r, `Resumed ${a.ref.name} at step ${r.summary.step} of ${r.summary.steps.length}`);
    },
  };

  const control: ReleaseMockControl = {
    update(name, patch) {
      const r = [...byKey.values()].find((x) => x.summary.ref.name === name);
      if (!r) throw new Error(`no mock release ${name}`);
      r.summary = { ...r.summary, ...patch, updated_at_ms: Date.now() };
      ctx.emit('release_event', r.summary);
      return r.summary;
    },
    remove(name) {
      const r = [...byKey.values()].find((x) => x.summary.ref.name === name);
      if (!r) throw new Error(`no mock release ${name}`);
      byKey.delete(key(r.summary.ref));
      ctx.emit('release_removed', r.summary.ref);
    },
    setUnreachable(profileId, unreachable) {
      const c = cls.find((x) => x.profile_id === profileId);
      if (!c) throw new Error(`no mock cluster ${profileId}`);
      c.unreachable = unreachable ? `could not reach the API server of ${c.name}: connection refused` : null;
    },
    setPhaseDelay(ms) {
      phaseMs = ms;
    },
    setKubeconfig(state) {
      kubeconfig = state;
    },
    get pendingApprovals() {
      return Object.fromEntries([...byKey.values()].map((r) => [r.summary.ref.name, r.canaryApprovals]));
    },
  };

  return { handlers, control };
}
