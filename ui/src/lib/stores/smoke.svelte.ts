/**
 * Smoke tests against a model server — a local Ollama (discovery, installed models, pulls
 * with progress from `pull_progress`) or an OpenAI-compatible server (its URL, key and
 * served models) — suite runs (progress from `smoke_progress`), stored results, export.
 */
import {
  backend,
  type CheckResult,
  type ExportFormat,
  type ModelServerStatus,
  type OllamaModel,
  type OllamaStatus,
  type PullProgressEvent,
  type SmokeReport,
  type SmokeRunSummary,
  type SmokeTarget,
} from '../ipc';
import { Action, Resource } from './resource.svelte';
import { toasts } from './toasts.svelte';

export interface LiveRun {
  model: string;
  total: number | null;
  /** The check running now. */
  current: { name: string; title: string; index: number } | null;
  finished: CheckResult[];
}

/** One layer of a pull: bytes so far of its total. */
interface Layer {
  completed: number;
  total: number;
}

/** A pull in progress: the last status line and every layer seen so far, by digest. */
export interface PullState {
  status: string;
  layers: Readonly<Record<string, Layer>>;
}

/** The pull's size and progress: every layer's bytes added up (as the suite sizes a model). */
export function pullTotals(p: PullState | null): { completed: number; total: number; layers: number } {
  const layers = Object.values(p?.layers ?? {});
  return {
    completed: layers.reduce((a, l) => a + Math.min(l.completed, l.total), 0),
    total: layers.reduce((a, l) => a + l.total, 0),
    layers: layers.length,
  };
}

/** Takes one `pull_progress` line into the pull's state. */
export function absorbPull(p: PullState | null, e: PullProgressEvent): PullState {
  const layers = { ...(p?.layers ?? {}) };
  if (e.digest !== null && e.total_bytes !== null) {
    // Ollama leaves `completed` out while it is 0.
    layers[e.digest] = { completed: e.completed_bytes ?? 0, total: e.total_bytes };
  }
  return { status: e.status, layers };
}

export const TARGET_LABEL: Record<SmokeTarget, string> = {
  ollama: 'Ollama',
  openai_compatible: 'OpenAI-compatible',
};

class SmokeStore {
  target = $state<SmokeTarget>('ollama');
  ollama = new Resource<OllamaStatus>(() => backend.invoke('discover_ollama'));
  models = new Resource<OllamaModel[]>(() => backend.invoke('list_models'));
  /** The OpenAI-compatible server: `serverUrl` as typed ('' asks the console to propose one). */
  serverUrl = $state('');
  /** A key typed for the server; sent once (then kept in the keyring), then cleared. */
  serverKey = $state('');
  #keyToSend: string | null = null;
  server = new Resource<ModelServerStatus>(() => {
    const key = this.#keyToSend;
    this.#keyToSend = null;
    return backend.invoke('discover_model_server', { url: this.serverUrl.trim() || null, api_key: key });
  });
  serverModel = $state<string | null>(null);
  runs = new Resource<SmokeRunSummary[]>(() => backend.invoke('list_smoke_runs'));
  selectedRunId = $state<string | null>(null);
  report = new Resource<SmokeReport>(() => {
    const id = this.selectedRunId;
    if (id === null) return Promise.reject(new Error('no run selected'));
    return backend.invoke('get_smoke_report', { id });
  });
  model = $state<string | null>(null);
  throughAgent = $state(true);
  pullName = $state('');
  pullState = $state.raw<PullState | null>(null);
  pull = new Action((model: string) => backend.invoke('pull_model', { model }));
  live = $state.raw<LiveRun | null>(null);
  run = new Action((target: SmokeTarget, model: string, throughAgent: boolean, serverUrl: string | null) =>
    backend.invoke('run_smoke', {
      model,
      through_agent: throughAgent,
      target,
      server_url: target === 'ollama' ? null : serverUrl,
      api_key: null,
    }),
  );
  exporting = new Action((id: string, format: ExportFormat) => backend.invoke('export_smoke_report', { id, format }));
  #opening: Promise<void> | null = null;

  constructor() {
    void backend.listen('pull_progress', (p) => {
      if (this.pull.busy) this.pullState = absorbPull(this.pullState, p);
    });
    void backend.listen('smoke_progress', (p) => {
      const live = this.live;
      if (live === null) return;
      if (p.type === 'check_started') this.live = { ...live, total: p.total, current: { name: p.name, title: p.title, index: p.index } };
      else this.live = { ...live, current: null, finished: [...live.finished, p.result] };
    });
  }

  /** The model the run button uses, for the chosen kind of server. */
  get chosenModel(): string | null {
    return this.target === 'ollama' ? this.model : this.serverModel;
  }

  /** The first discovery of both kinds of server; later calls wait for the same one. */
  open(): Promise<void> {
    this.#opening ??= this.#open();
    return this.#opening;
  }

  async #open(): Promise<void> {
    await Promise.all([this.discover(), this.connectServer()]);
    // A console started on a model server (`scripts/start.sh --model`) with no Ollama:
    // the Smoke tests view opens on that server.
    if (this.ollama.data?.reachable !== true && this.server.data?.detected === true && this.server.data.reachable) {
      this.target = 'openai_compatible';
    }
  }

  async discover(): Promise<void> {
    await this.ollama.refresh();
    if (this.ollama.data?.reachable === true) {
      await this.models.refresh();
      const first = this.models.data?.[0];
      if (this.model === null && first) this.model = first.name;
    }
    await this.runs.refresh();
    const newest = this.runs.data?.[0];
    if (newest && this.selectedRunId === null) this.selectRun(newest.id);
  }

  /** Asks the server at `serverUrl` (or the console's proposal) what it serves. */
  async connectServer(): Promise<void> {
    const key = this.serverKey.trim();
    if (key !== '') this.#keyToSend = key;
    await this.server.refresh();
    const s = this.server.data;
    if (s === undefined || this.server.status !== 'ready') return;
    if (key !== '') this.serverKey = '';
    this.serverUrl = s.url;
    if (this.serverModel === null || !s.models.includes(this.serverModel)) {
      this.serverModel = s.default_model !== null && s.models.includes(s.default_model) ? s.default_model : (s.models[0] ?? null);
    }
  }

  /** Removes the server's key from the keyring. */
  async forgetKey(): Promise<void> {
    this.serverKey = '';
    this.#keyToSend = '';
    await this.server.refresh();
    if (this.server.status === 'ready') toasts.show('success', 'Key removed from the keyring', this.server.data?.url ?? null);
  }

  selectRun(id: string): void {
    this.selectedRunId = id;
    void this.report.refresh();
  }

  async pullModel(): Promise<void> {
    const name = this.pullName.trim();
    if (name === '') return;
    this.pullState = null;
    const m = await this.pull.run(name);
    if (m === undefined) return;
    toasts.show('success', `Pulled ${m.name}`);
    this.pullName = '';
    await this.models.refresh();
    this.model = m.name;
  }

  async runSuite(): Promise<void> {
    const target = this.target;
    const model = target === 'ollama' ? (this.model ?? this.models.data?.[0]?.name ?? null) : this.serverModel;
    if (model === null || this.run.busy) return;
    if (target === 'ollama') this.model = model;
    this.live = { model, total: null, current: null, finished: [] };
    const report = await this.run.run(target, model, this.throughAgent, this.serverUrl.trim() || null);
    if (report === undefined) {
      toasts.show('error', 'Smoke suite failed to run', this.run.error?.message ?? null);
      return;
    }
    const failed = report.checks.filter((c) => c.status === 'fail').length;
    toasts.show(failed > 0 ? 'error' : 'success', `Smoke suite finished: ${failed > 0 ? `${failed} failed` : 'all passed'}`, `${report.model} · ${report.id}`);
    await this.runs.refresh();
    this.selectedRunId = report.id;
    this.report.set(report);
  }

  async export(format: ExportFormat): Promise<void> {
    const id = this.selectedRunId;
    if (id === null) return;
    const f = await this.exporting.run(id, format);
    if (f === undefined) toasts.show('error', 'Export failed', this.exporting.error?.message ?? null);
    else toasts.show('success', `Exported ${format === 'markdown' ? 'Markdown' : 'JSON'}`, f.path);
  }
}

export const smoke = new SmokeStore();
