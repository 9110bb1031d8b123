/**
 * The in-memory implementation of `Backend`, for browser tests and `npm run dev`.
 *
 * Deterministic fixtures (`fixtures.ts`) in four scenarios:
 * - `full`: data everywhere; `empty`: no data (no profiles, no traces, no Ollama, …);
 * - `loading`: every command's promise never settles; `error`: every command rejects.
 * Chosen at start from the URL (`?mock=empty&readonly=1&fast=1`) and controlled at run
 * time through `window.__flightdeckMock` (see `MockControl`).
 */
import { BackendError, type Backend, type InvokeArgs, type Unsubscribe } from './backend';
import * as fx from './fixtures';
import { releaseMock, type ReleaseMockControl } from './mock-releases';
import type {
  ActionId,
  ApprovalSummary,
  ArgsOf,
  ChartWindow,
  CommandError,
  CommandName,
  EvalRunSummary,
  EventMap,
  EventName,
  FreezeState,
  NotifyArgs,
  OllamaModel,
  Permissions,
  ProfileList,
  Receiver,
  ResultOf,
  Settings,
  SmokeReport,
  SmokeRunSummary,
  TraceSummary,
} from './types';

export type Scenario = 'full' | 'empty' | 'loading' | 'error';

export interface MockCall {
  command: CommandName;
  args: unknown;
}

/** What tests (and a developer in the console) can drive. */
export interface MockControl {
  readonly scenario: Scenario;
  /** Affects the next commands; views show it after a retry or a route change. */
  setScenario(s: Scenario): void;
  /** Toggles a read-only key (roles `viewer`) and pushes `permissions_event`. */
  setReadOnly(readOnly: boolean): void;
  /** Adds a pending approval and pushes `approval_event` (kind `created`). */
  pushApproval(overrides?: Partial<ApprovalSummary>): ApprovalSummary;
  /** Makes the next call of `command` reject with `error`. */
  failNext(command: CommandName, error: Partial<CommandError> & { message: string }): void;
  emit<E extends EventName>(event: E, payload: EventMap[E]): void;
  /** Every `notify` call, oldest first. */
  readonly notifications: readonly NotifyArgs[];
  /** Every command call, oldest first. */
  readonly calls: readonly MockCall[];
  /**
   * One scrape of every service, as the backend's scrape loop does it: each chart series
   * grows by a point and `overview_event` is pushed with fresh cards for the window the
   * UI asked for last. Outside tests (`fast` off) this happens every 5 s.
   */
  scrape(): void;
  /** Scrapes so far (a console with stored history starts at `CHART_POINTS`). */
  readonly scrapes: number;
  /** The Releases part: watch-driven changes, unreachable clusters. */
  readonly releases: ReleaseMockControl;
}

declare global {
  interface Window {
    __flightdeckMock?: MockControl;
  }
}

const ENDPOINT: Partial<Record<CommandName, string>> = {
  list_traces: 'https://agent.prod-eu.example.com/v1/traces',
  get_trace: 'https://agent.prod-eu.example.com/v1/traces',
  list_workflows: 'https://agent.prod-eu.example.com/v1/workflows',
  list_approvals: 'https://agent.prod-eu.example.com/v1/approvals',
  get_approval: 'https://agent.prod-eu.example.com/v1/approvals',
  decide_approval: 'https://agent.prod-eu.example.com/v1/approvals',
  verify_audit: 'https://agent.prod-eu.example.com/v1/audit/verify',
  list_eval_runs: 'https://agent.prod-eu.example.com/v1/evals/runs',
  list_eval_suites: 'https://agent.prod-eu.example.com/v1/evals/suites',
  get_eval_run: 'https://agent.prod-eu.example.com/v1/evals/runs',
  eval_pass_rates: 'https://agent.prod-eu.example.com/v1/evals/runs',
  start_eval: 'https://agent.prod-eu.example.com/v1/evals/runs',
  list_receivers: 'https://agent.prod-eu.example.com/v1/admin/receivers',
  create_receiver: 'https://agent.prod-eu.example.com/v1/admin/receivers',
  delete_receiver: 'https://agent.prod-eu.example.com/v1/admin/receivers',
  test_receiver: 'https://agent.prod-eu.example.com/v1/admin/receivers',
  get_overview: 'https://agent.prod-eu.example.com/metrics',
  get_charts: 'https://agent.prod-eu.example.com/metrics',
  get_quality: 'https://agent.prod-eu.example.com/metrics',
  discover_ollama: 'http://127.0.0.1:11434/api/version',
  list_models: 'http://127.0.0.1:11434/api/tags',
  pull_model: 'http://127.0.0.1:11434/api/pull',
  run_smoke: 'http://127.0.0.1:11434/api/chat',
  discover_model_server: 'http://127.0.0.1:8080/v1/models',
  get_freeze_state: 'https://agent.prod-eu.example.com/v1/admin/freeze',
  incident_switch: 'https://agent.prod-eu.example.com/v1/admin/freeze',
  list_releases: 'https://34.77.12.9:6443/apis/apps/v1/namespaces/agents/deployments (prod-eu cluster)',
  get_release: 'https://34.77.12.9:6443/apis/apps/v1/namespaces/agents/deployments (prod-eu cluster)',
  list_kube_contexts: 'the kubeconfig',
};

const LOCAL_ERRORS: Partial<Record<CommandName, CommandError>> = {
  list_profiles: { code: 'storage', message: 'local store: database is locked (another Flightdeck window holds it); close it and retry', server_code: null, request_id: null, retry_after_secs: null },
  keyring_status: { code: 'keyring', message: 'keyring: no Secret Service is running; install and unlock gnome-keyring or KWallet', server_code: null, request_id: null, retry_after_secs: null },
  list_smoke_runs: { code: 'storage', message: 'local store: database is locked (another Flightdeck window holds it); close it and retry', server_code: null, request_id: null, retry_after_secs: null },
  get_settings: { code: 'storage', message: 'local store: database is locked (another Flightdeck window holds it); close it and retry', server_code: null, request_id: null, retry_after_secs: null },
};

const ALL_ACTIONS: readonly ActionId[] = [
  'approve',
  'reject',
  'verify_audit',
  'incident_switch',
  'unfreeze_writes',
  'start_eval',
  'pull_model',
  'run_smoke',
  'manage_profiles',
  'update_settings',
  'manage_receivers',
];

const READ_ONLY_DENIED: Partial<Record<ActionId, string>> = {
  approve: "The key's roles (viewer) do not include approver",
  reject: "The key's roles (viewer) do not include approver",
  incident_switch: "The key's roles (viewer) do not include operator",
  unfreeze_writes: "The key's roles (viewer) do not include operator",
  start_eval: "The key's roles (viewer) do not include operator",
  manage_receivers: "The key's roles (viewer) do not include admin",
};

const TRACE_COUNT = 100_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Options {
  scenario: Scenario;
  readOnly: boolean;
  /** Shortens latency and progress steps (browser tests). */
  fast: boolean;
  /**
   * Whether metric history is stored already (a console that ran before); without it
   * (`&history=0`, the first start) the charts have no data until the first scrapes.
   */
  history: boolean;
}

function optionsFromUrl(): Options {
  const q = new URLSearchParams(window.location.search);
  const s = q.get('mock');
  const scenario: Scenario = s === 'empty' || s === 'loading' || s === 'error' ? s : 'full';
  return { scenario, readOnly: q.get('readonly') === '1', fast: q.get('fast') === '1', history: q.get('history') !== '0' };
}

function viaJson<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function loadSettings(key: string): Settings {
  const fallback: Settings = { theme: 'light', retention_hours: 72 };
  try {
    const raw: unknown = JSON.parse(localStorage.getItem(key) ?? 'null');
    if (typeof raw !== 'object' || raw === null) return fallback;
    const o = raw as Record<string, unknown>;
    return {
      theme: o['theme'] === 'dark' ? 'dark' : 'light',
      retention_hours: typeof o['retention_hours'] === 'number' ? o['retention_hours'] : fallback.retention_hours,
    };
  } catch {
    return fallback;
  }
}

type Handlers = { [K in CommandName]: (args: ArgsOf<K>) => Promise<ResultOf<K>> | ResultOf<K> };

export function mockBackend(opts: Options = optionsFromUrl()): Backend {
  const t0 = Math.floor(Date.now() / 1000) * 1000;
  let scenario = opts.scenario;
  let readOnly = opts.readOnly;
  const step = opts.fast ? 15 : 350;
  const latency = opts.fast ? 0 : 120;
  const listeners = new Map<EventName, Set<(p: unknown) => void>>();
  const failures = new Map<CommandName, CommandError>();
  const notifications: NotifyArgs[] = [];
  const calls: MockCall[] = [];

  // Mutable state of the `full` world.
  let profileList: ProfileList = { profiles: fx.profiles(), active_id: 'prod-eu' };
  // Kept across reloads, as the console's local store keeps them.
  const SETTINGS_KEY = 'flightdeck.mock.settings';
  let settings: Settings = loadSettings(SETTINGS_KEY);
  let receivers: Receiver[] = fx.receivers(t0);
  let freeze: FreezeState = { frozen: false, reason: null, changed_by: null, changed_at_ms: null };
  let approvalSeq = 0;
  const approvals = new Map<string, fx.ApprovalRecord>();
  for (let n = 0; n < 5; n++) {
    const a = fx.approval(t0, n);
    approvals.set(a.summary.id, a);
  }
  (['executed', 'rejected', 'approved', 'expired', 'executed', 'cancelled', 'rejected', 'executed'] as const).forEach((st, i) => {
    const a = fx.approval(t0 - 2 * 60 * 60_000, 5 + i, st);
    approvals.set(a.summary.id, a);
  });
  approvalSeq = approvals.size;
  let evalRuns: EvalRunSummary[] = fx.evalRuns(t0);
  const installedModels: OllamaModel[] = fx.models(t0);
  const smokeRuns: SmokeReport[] = [
    fx.smokeReport(t0, 'smk_0003', fx.LONG.ollamaModel, t0 - 50 * 60_000),
    fx.smokeReportOpenai(t0, 'smk_llama', t0 - 3 * 60 * 60_000),
    fx.smokeReport(t0, 'smk_0002', 'gemma2:2b', t0 - 26 * 60 * 60_000),
    fx.smokeReport(t0, 'smk_0001', 'llama3.2:3b', t0 - 4 * 24 * 60 * 60_000, false),
  ];
  let smokeSeq = 3;
  /** The URL the model-server key in the "keyring" belongs to. */
  let modelServerKeyUrl: string | null = null;
  let lastModelServer: string | null = null;
  let overviewWindow: ChartWindow = '15m';
  let scrapes = opts.history ? fx.CHART_POINTS : 0;
  let scrapeTick = 0;
  let traceCache: TraceSummary[] | null = null;
  const allTraces = (): TraceSummary[] => {
    if (traceCache === null) {
      traceCache = [];
      for (let i = 0; i < TRACE_COUNT; i++) traceCache.push(fx.trace(t0, i));
    }
    return traceCache;
  };

  function emit<E extends EventName>(event: E, payload: EventMap[E]): void {
    for (const h of listeners.get(event) ?? []) h(payload);
  }

  function permissions(): Permissions {
    if (scenario === 'empty') {
      return {
        profile_id: null,
        roles: [],
        actions: ALL_ACTIONS.map((action) =>
          action === 'manage_profiles' || action === 'update_settings' || action === 'pull_model' || action === 'run_smoke'
            ? { action, allowed: true, reason: null }
            : { action, allowed: false, reason: 'No connection: add an agent-service profile in Settings' },
        ),
      };
    }
    return {
      profile_id: profileList.active_id,
      roles: readOnly ? ['viewer'] : ['viewer', 'approver', 'operator'],
      actions: ALL_ACTIONS.map((action) => {
        const reason = readOnly ? READ_ONLY_DENIED[action] : undefined;
        return reason === undefined ? { action, allowed: true, reason: null } : { action, allowed: false, reason };
      }),
    };
  }

  function denied(action: ActionId): BackendError | null {
    const p = permissions().actions.find((a) => a.action === action);
    if (p && !p.allowed) {
      return new BackendError({ code: 'forbidden', message: p.reason ?? 'not allowed', server_code: 'forbidden', request_id: `req_${Date.now().toString(16)}`, retry_after_secs: null });
    }
    return null;
  }

  function invalid(message: string): BackendError {
    return new BackendError({ code: 'invalid', message, server_code: 'invalid_input', request_id: null, retry_after_secs: null });
  }

  const isEmpty = (): boolean => scenario === 'empty';

  const rel = releaseMock({
    t0,
    step,
    isEmpty,
    readOnly: () => readOnly,
    profiles: () => profileList.profiles,
    addProfile: (p) => {
      profileList = { ...profileList, profiles: [...profileList.profiles, p] };
    },
    replaceProfile: (p) => {
      profileList = { ...profileList, profiles: profileList.profiles.map((x) => (x.id === p.id ? p : x)) };
      return profileList;
    },
    emit,
  });

  const handlers: Handlers = {
    list_profiles: () => (isEmpty() ? { profiles: [], active_id: null } : profileList),
    add_agent_profile: (a) => {
      if (a.name.trim() === '') throw invalid('The profile needs a name');
      if (!/^https?:\/\/[^\s/?#]+[^\s?#]*$/.test(a.url.trim())) throw invalid(`${JSON.stringify(a.url)} is not an http:// or https:// URL`);
      if (a.api_key.trim() === '') throw invalid('the API key is empty');
      const id = a.name.trim().toLowerCase().replace(/[^a-z0-9_-]+/g, '-').slice(0, 64);
      if (profileList.profiles.some((p) => p.id === id)) throw new BackendError({ code: 'conflict', message: `A profile named ${a.name} already exists`, server_code: null, request_id: null, retry_after_secs: null });
      const p = { id, name: a.name.trim(), kind: 'agent' as const, is_local: false, url: a.url.trim().replace(/\/$/, ''), context: null, namespace: null, has_secret: true };
      profileList = { ...profileList, profiles: [...profileList.profiles, p] };
      return p;
    },
    remove_profile: (a) => {
      if (a.profile_id === 'local') throw invalid('The Local profile cannot be removed');
      profileList = {
        profiles: profileList.profiles.filter((p) => p.id !== a.profile_id),
        active_id: profileList.active_id === a.profile_id ? 'local' : profileList.active_id,
      };
      return profileList;
    },
    set_active_profile: (a) => {
      if (!profileList.profiles.some((p) => p.id === a.profile_id)) throw new BackendError({ code: 'not_found', message: `No profile ${a.profile_id}`, server_code: null, request_id: null, retry_after_secs: null });
      profileList = { ...profileList, active_id: a.profile_id };
      setTimeout(() => emit('permissions_event', permissions()), 0);
      return profileList;
    },
    keyring_status: () => ({ available: true, backend: 'secret-service', message: 'Secret Service (gnome-keyring) unlocked' }),
    get_permissions: () => permissions(),
    get_settings: () => settings,
    update_settings: (s) => {
      if (!Number.isFinite(s.retention_hours) || s.retention_hours < 1 || s.retention_hours > 24 * 90) throw invalid('retention must be between 1 hour and 90 days');
      settings = { theme: s.theme, retention_hours: s.retention_hours };
      localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
      return settings;
    },
    list_receivers: () => (isEmpty() ? [] : receivers),
    create_receiver: (a) => {
      const deny = denied('manage_receivers');
      if (deny) throw deny;
      if (a.name.trim() === '') throw invalid('The receiver needs a name');
      if (a.format !== 'pagerduty' && (a.url === null || !/^https?:\/\/[^\s/?#]+/.test(a.url.trim()))) throw invalid('url must be an http(s) URL');
      if (a.format === 'webhook' && !(a.secret ?? '').startsWith('whsec_')) throw invalid('secret must be whsec_ and the base64 of 24-64 random bytes');
      if (a.format === 'slack' && a.secret !== null) throw invalid('a slack receiver takes no secret: its URL is the credential');
      const host = a.url === null ? 'https://events.pagerduty.com' : (/^https?:\/\/[^\s/?#]+/.exec(a.url.trim())?.[0] ?? '');
      const r: Receiver = { id: `rcv_${(receivers.length + 1).toString().padStart(4, '0')}`, name: a.name.trim(), format: a.format, url_hint: host, events: a.events, has_secret: a.secret !== null, created_at_ms: Date.now() };
      receivers = [...receivers, r];
      return r;
    },
    delete_receiver: (a) => {
      const deny = denied('manage_receivers');
      if (deny) throw deny;
      if (!receivers.some((r) => r.id === a.id)) throw new BackendError({ code: 'not_found', message: `no receiver ${a.id}`, server_code: 'not_found', request_id: null, retry_after_secs: null });
      receivers = receivers.filter((r) => r.id !== a.id);
      return null;
    },
    test_receiver: (a) => {
      const deny = denied('manage_receivers');
      if (deny) throw deny;
      if (!receivers.some((r) => r.id === a.id)) throw new BackendError({ code: 'not_found', message: `no receiver ${a.id}`, server_code: 'not_found', request_id: null, retry_after_secs: null });
      return { event_id: 'evt_0192f3a0c1d2', delivery_id: 'job_0192f3a0c1d3' };
    },
    get_overview: (a) => {
      overviewWindow = a.window;
      return { window: a.window, services: isEmpty() ? [] : fx.services(t0, freeze.frozen), generated_at_ms: t0 };
    },
    get_charts: (a) => fx.charts(a.profile_id, a.track, a.window, a.theme, scrapes),
    get_quality: (a) => (isEmpty() ? { profile_id: a.profile_id, window: a.window, workflows: [], thresholds: null, tenants: [], workflow_spend: [], scraped_at_ms: null } : fx.quality(a.profile_id, a.window, t0)),
    list_workflows: () => (isEmpty() ? [] : [...fx.WORKFLOWS]),
    list_traces: (q) => {
      if (isEmpty()) return { items: [], next_cursor: null, total: 0 };
      if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > 500) throw invalid('limit must be 1-500');
      const rid = q.request_id?.trim() ?? '';
      const matches = allTraces().filter(
        (t) =>
          (!q.errors_only || t.status === 'error' || t.status === 'budget_exceeded') &&
          (!q.flagged_only || t.flagged) &&
          (q.min_duration_ms === null || t.duration_ms >= q.min_duration_ms) &&
          (q.workflow === null || t.workflow === q.workflow) &&
          (rid === '' || t.request_id.startsWith(rid)),
      );
      const start = q.cursor === null ? 0 : Number.parseInt(q.cursor, 10);
      if (!Number.isInteger(start) || start < 0) throw invalid(`cursor ${JSON.stringify(q.cursor)} is not valid`);
      const items = matches.slice(start, start + q.limit);
      const next = start + q.limit < matches.length ? String(start + q.limit) : null;
      return { items, next_cursor: next, total: matches.length };
    },
    get_trace: (a) => {
      const s = allTraces().find((t) => t.trace_id === a.trace_id);
      if (!s) throw new BackendError({ code: 'not_found', message: `trace ${a.trace_id} not found (it may be past the retention window)`, server_code: 'not_found', request_id: null, retry_after_secs: null });
      return fx.traceDetail(s);
    },
    list_approvals: (a) => {
      if (isEmpty()) return { items: [], next_cursor: null };
      const items = [...approvals.values()]
        .map((r) => r.summary)
        .filter((s) => (a.view === 'pending' ? s.status === 'pending' : s.status !== 'pending'))
        .sort((x, y) => (a.view === 'pending' ? x.expires_at_ms - y.expires_at_ms : (y.decided_at_ms ?? 0) - (x.decided_at_ms ?? 0)));
      return { items, next_cursor: null };
    },
    get_approval: (a) => {
      const r = approvals.get(a.id);
      if (!r) throw new BackendError({ code: 'not_found', message: `approval ${a.id} not found`, server_code: 'not_found', request_id: null, retry_after_secs: null });
      return { summary: r.summary, ...r.detail };
    },
    decide_approval: async (a) => {
      const d = denied(a.decision);
      if (d) throw d;
      if (a.reason.trim() === '') throw invalid(`A reason is required to ${a.decision} ${a.id}`);
      const r = approvals.get(a.id);
      if (!r) throw new BackendError({ code: 'not_found', message: `approval ${a.id} not found`, server_code: 'not_found', request_id: null, retry_after_secs: null });
      if (freeze.frozen && a.decision === 'approve') throw new BackendError({ code: 'conflict', message: 'Writes are frozen: pending approvals cannot be approved until writes are unfrozen', server_code: 'writes_frozen', request_id: null, retry_after_secs: null });
      if (r.summary.status !== 'pending') throw new BackendError({ code: 'conflict', message: `approval ${a.id} is already ${r.summary.status}; a decision is final`, server_code: 'already_decided', request_id: null, retry_after_secs: null });
      await sleep(step);
      const now = Date.now();
      const count = r.summary.approvals_count + (a.decision === 'approve' ? 1 : 0);
      const status: ApprovalSummary['status'] = a.decision === 'reject' ? 'rejected' : count >= r.summary.required_approvals ? 'executed' : 'pending';
      r.summary = { ...r.summary, status, approvals_count: count, decided_at_ms: status === 'pending' ? null : now };
      r.detail = {
        ...r.detail,
        decisions: [...r.detail.decisions, { approver: 'you@acme.test', decision: a.decision, reason: a.reason.trim(), decided_at_ms: now }],
        execution: status === 'executed' ? { status: 'executed', attempts: 1, error: null, executed_at_ms: now } : null,
      };
      setTimeout(() => emit('approval_event', { kind: 'updated', approval: r.summary }), 0);
      return { summary: r.summary, ...r.detail };
    },
    verify_audit: async () => {
      await sleep(step);
      return { ok: true, checked: isEmpty() ? 0 : 1204 + approvalSeq * 3, first_broken: null, verified_at_ms: Date.now() };
    },
    list_eval_suites: () => (isEmpty() ? [] : fx.evalSuites()),
    list_eval_runs: () => (isEmpty() ? [] : evalRuns),
    get_eval_run: (a) => {
      const run = evalRuns.find((r) => r.id === a.run_id);
      if (!run) throw new BackendError({ code: 'not_found', message: `eval run ${a.run_id} not found`, server_code: 'not_found', request_id: null, retry_after_secs: null });
      return fx.evalDetail(run, evalRuns);
    },
    start_eval: (a) => {
      const d = denied('start_eval');
      if (d) throw d;
      const suite = fx.evalSuites().find((s) => s.name === a.suite);
      if (!suite) throw invalid(`unknown suite ${JSON.stringify(a.suite)}: use golden or adversarial`);
      const id = `run_${suite.name.slice(0, 3)}_${Date.now().toString(36)}`;
      const run: EvalRunSummary = {
        id,
        suite: suite.name,
        status: 'running',
        done: 0,
        total: suite.cases,
        versions: { release: '1.9.0-rc.2', git_sha: 'b71e03d', model: 'gpt-4.1-mini', prompt: 'support_answer@v15', policy: 'guardrails-v3.1' },
        gate: null,
        pass_rate: null,
        created_at_ms: Date.now(),
        finished_at_ms: null,
      };
      evalRuns = [run, ...evalRuns];
      const stepSize = Math.ceil(suite.cases / 8);
      const tick = (done: number): void => {
        const cur = evalRuns.find((r) => r.id === id);
        if (!cur) return;
        const finished = done >= suite.cases;
        const rate = suite.kind === 'golden' ? 0.958 : 1;
        const next: EvalRunSummary = {
          ...cur,
          done: Math.min(done, suite.cases),
          status: finished ? 'completed' : 'running',
          pass_rate: finished ? rate : null,
          gate: finished ? 'pass' : null,
          finished_at_ms: finished ? Date.now() : null,
        };
        evalRuns = evalRuns.map((r) => (r.id === id ? next : r));
        emit('eval_progress', { run_id: id, status: next.status, done: next.done, total: next.total, pass_rate: next.pass_rate });
        if (!finished) setTimeout(() => tick(done + stepSize), step);
      };
      setTimeout(() => tick(stepSize), step);
      return run;
    },
    eval_pass_rates: () => (isEmpty() ? [] : fx.passRates(evalRuns)),
    discover_ollama: () =>
      isEmpty()
        ? { url: 'http://127.0.0.1:11434', reachable: false, version: null, error: 'connection refused: nothing listens on 127.0.0.1:11434 (install Ollama and run `ollama serve`, or set OLLAMA_BASE_URL)' }
        : { url: 'http://127.0.0.1:11434', reachable: true, version: '0.12.3', error: null },
    list_models: () => (isEmpty() ? [] : installedModels),
    pull_model: async (a) => {
      const d = denied('pull_model');
      if (d) throw d;
      const name = a.model.trim();
      if (!/^[a-z0-9][a-z0-9._/-]*(:[a-z0-9._-]+)?$/i.test(name)) throw invalid(`${JSON.stringify(a.model)} is not a model name (e.g. llama3.2:3b)`);
      const progress = (status: string, digest: string | null = null, completed: number | null = null, total: number | null = null): void =>
        emit('pull_progress', { model: name, status, digest, completed_bytes: completed, total_bytes: total });
      progress('pulling manifest');
      await sleep(step / 2);
      const layers = fx.PULLABLE[name.includes(':') ? name : `${name}:latest`];
      if (layers === undefined) {
        // Ollama's own words for a name its registry lacks, after the manifest line.
        throw new BackendError({ code: 'unavailable', message: `Pulling ${name} failed: pull model manifest: file does not exist`, server_code: 'stream_error', request_id: null, retry_after_secs: null });
      }
      // One series per layer, as Ollama reports them; `completed` is left out while 0.
      for (const [i, total] of layers.entries()) {
        const digest = fx.layerDigest(name, i);
        const status = `pulling ${digest.slice(7, 19)}`;
        progress(status, digest, null, total);
        const parts = total > 1_000_000 ? 5 : 1;
        for (let p = 1; p <= parts; p++) {
          await sleep(step / 4);
          progress(status, digest, Math.round((total * p) / parts), total);
        }
      }
      progress('verifying sha256 digest');
      progress('writing manifest');
      await sleep(step / 2);
      progress('success');
      const size = layers.reduce((x, y) => x + y, 0);
      const m: OllamaModel = { name, size_bytes: size, family: name.split(':')[0] ?? name, parameter_size: '1.2B', quantization: 'Q4_K_M', supports_tools: false, modified_at_ms: Date.now() };
      const existing = installedModels.findIndex((x) => x.name === name);
      if (existing >= 0) installedModels.splice(existing, 1, m);
      else installedModels.push(m);
      return m;
    },
    discover_model_server: (a) => {
      const url = (a.url ?? '').trim() || lastModelServer || fx.MODEL_SERVER.url;
      if (!/^https?:\/\/[^\s/?#]+/.test(url)) throw invalid(`${JSON.stringify(url)} is not a URL: relative URL without a base`);
      if (a.api_key !== null) modelServerKeyUrl = a.api_key.trim() === '' ? null : url;
      return fx.modelServer(url, !isEmpty() && url === fx.MODEL_SERVER.url, modelServerKeyUrl === url);
    },
    run_smoke: async (a) => {
      const d = denied('run_smoke');
      if (d) throw d;
      let checks;
      let serverUrl;
      if (a.target === 'openai_compatible') {
        serverUrl = (a.server_url ?? '').trim() || lastModelServer || fx.MODEL_SERVER.url;
        if (!/^https?:\/\/[^\s/?#]+/.test(serverUrl)) throw invalid(`${JSON.stringify(serverUrl)} is not a URL: relative URL without a base`);
        if (a.api_key !== null) modelServerKeyUrl = a.api_key.trim() === '' ? null : serverUrl;
        lastModelServer = serverUrl;
        checks = fx.smokeChecksOpenai(a.model, a.through_agent);
      } else {
        const model = installedModels.find((m) => m.name === a.model);
        if (!model) throw new BackendError({ code: 'not_found', message: `model ${a.model} is not installed: pull it first`, server_code: null, request_id: null, retry_after_secs: null });
        serverUrl = 'http://127.0.0.1:11434';
        checks = fx.smokeChecks(model.name, model.supports_tools, a.through_agent);
      }
      const started = Date.now();
      // Even in fast mode a run lasts about half a second, long enough to be seen running.
      const perCheck = Math.max(step, 50);
      for (const [index, c] of checks.entries()) {
        emit('smoke_progress', { type: 'check_started', name: c.name, title: c.title, index, total: checks.length });
        await sleep(perCheck);
        emit('smoke_progress', { type: 'check_finished', result: c });
      }
      const report: SmokeReport = {
        id: `smk_${String(++smokeSeq).padStart(4, '0')}`,
        target: a.target,
        server_url: serverUrl,
        agent_url: a.through_agent ? 'http://127.0.0.1:8787' : null,
        model: a.model,
        started_at_ms: started,
        finished_at_ms: Date.now(),
        checks,
      };
      smokeRuns.unshift(report);
      return report;
    },
    list_smoke_runs: (): SmokeRunSummary[] =>
      isEmpty()
        ? []
        : smokeRuns.map((r) => ({
            id: r.id,
            model: r.model,
            started_at_ms: r.started_at_ms,
            passed: r.checks.filter((c) => c.status === 'pass').length,
            failed: r.checks.filter((c) => c.status === 'fail').length,
            skipped: r.checks.filter((c) => c.status === 'skip').length,
          })),
    get_smoke_report: (a) => {
      const r = smokeRuns.find((x) => x.id === a.id);
      if (!r) throw new BackendError({ code: 'not_found', message: `smoke run ${a.id} not found`, server_code: null, request_id: null, retry_after_secs: null });
      return r;
    },
    export_smoke_report: (a) => {
      const ext = a.format === 'markdown' ? 'md' : 'json';
      return { path: `/home/you/Downloads/flightdeck-smoke-${a.id}.${ext}`, bytes: a.format === 'markdown' ? 2140 : 3912 };
    },
    get_freeze_state: () => freeze,
    incident_switch: async (a) => {
      const d = denied('incident_switch');
      if (d) throw d;
      if (a.reason.trim() === '') throw invalid('A reason is required for the incident switch');
      await sleep(step * 3);
      freeze = { frozen: true, reason: a.reason.trim(), changed_by: 'you@acme.test', changed_at_ms: Date.now() };
      emit('freeze_event', freeze);
      return { freeze, rollouts_paused: 1, pack_path: `/home/you/Downloads/flightdeck-incident-${new Date().toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}.tar.gz` };
    },
    unfreeze_writes: async (a) => {
      const d = denied('unfreeze_writes');
      if (d) throw d;
      if (a.reason.trim() === '') throw invalid('A reason is required to unfreeze writes');
      await sleep(step);
      freeze = { frozen: false, reason: a.reason.trim(), changed_by: 'you@acme.test', changed_at_ms: Date.now() };
      emit('freeze_event', freeze);
      return freeze;
    },
    notify: (a) => {
      notifications.push(a);
      return null;
    },
    ...rel.handlers,
  };

  function scrape(): void {
    if (scenario !== 'full') return;
    scrapes++;
    const r = fx.rng(++scrapeTick);
    const jitter = (v: number | null): number | null => (v === null ? null : Math.max(0, v * (0.9 + r() * 0.2)));
    const services = fx.services(t0, freeze.frozen).map((c) => ({
      ...c,
      stats: { ...c.stats, request_rate: jitter(c.stats.request_rate), tokens_per_sec: jitter(c.stats.tokens_per_sec), p50_ms: jitter(c.stats.p50_ms) },
      scraped_at_ms: c.live ? Date.now() : c.scraped_at_ms,
    }));
    emit('overview_event', { window: overviewWindow, services, generated_at_ms: Date.now() });
  }

  const control: MockControl = {
    get scenario() {
      return scenario;
    },
    setScenario(s) {
      scenario = s;
    },
    setReadOnly(v) {
      readOnly = v;
      emit('permissions_event', permissions());
    },
    pushApproval(overrides = {}) {
      const rec = fx.approval(Date.now(), approvalSeq++);
      const created = Date.now();
      rec.summary = { ...rec.summary, created_at_ms: created, expires_at_ms: created + 15 * 60_000, ...overrides };
      approvals.set(rec.summary.id, rec);
      emit('approval_event', { kind: 'created', approval: rec.summary });
      return rec.summary;
    },
    failNext(command, e) {
      failures.set(command, { code: e.code ?? 'unavailable', message: e.message, server_code: e.server_code ?? null, request_id: e.request_id ?? null, retry_after_secs: e.retry_after_secs ?? null });
    },
    emit,
    scrape,
    get scrapes() {
      return scrapes;
    },
    get notifications() {
      return notifications;
    },
    get calls() {
      return calls;
    },
    releases: rel.control,
  };
  window.__flightdeckMock = control;

  // Outside tests, scrape every 5 s as the backend does.
  if (!opts.fast) setInterval(scrape, 5000);

  async function run<K extends CommandName>(command: K, args: ArgsOf<K>): Promise<ResultOf<K>> {
    calls.push({ command, args });
    const injected = failures.get(command);
    if (injected) {
      failures.delete(command);
      await sleep(latency);
      throw new BackendError(injected);
    }
    if (scenario === 'loading') return new Promise<ResultOf<K>>(() => undefined);
    if (scenario === 'error' && command !== 'notify') {
      await sleep(latency);
      const local = LOCAL_ERRORS[command];
      throw new BackendError(
        local ?? {
          code: 'network',
          message: `could not reach ${ENDPOINT[command] ?? 'https://agent.prod-eu.example.com'}: connection refused (is the service running, and is the profile's URL right?)`,
          server_code: null,
          request_id: null,
          retry_after_secs: null,
        },
      );
    }
    await sleep(latency);
    const handler = handlers[command] as (a: ArgsOf<K>) => Promise<ResultOf<K>> | ResultOf<K>;
    // Through JSON both ways, as Tauri's IPC: the UI never shares objects with the
    // backend's state, and anything that does not survive JSON shows up here too.
    return viaJson(await handler(viaJson(args)));
  }

  return {
    kind: 'mock',
    invoke<K extends CommandName>(command: K, ...args: InvokeArgs<K>): Promise<ResultOf<K>> {
      return run(command, args[0] as ArgsOf<K>);
    },
    listen<E extends EventName>(event: E, handler: (payload: EventMap[E]) => void): Promise<Unsubscribe> {
      const set = listeners.get(event) ?? new Set<(p: unknown) => void>();
      listeners.set(event, set);
      const h = handler as (p: unknown) => void;
      set.add(h);
      return Promise.resolve(() => {
        set.delete(h);
      });
    },
  };
}
