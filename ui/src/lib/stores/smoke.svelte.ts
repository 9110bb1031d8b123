/**
 * Smoke tests against a local Ollama: discovery, installed models, pulls (progress from
 * `pull_progress`), suite runs (progress from `smoke_progress`), stored results, export.
 */
import {
  backend,
  type CheckResult,
  type ExportFormat,
  type OllamaModel,
  type OllamaStatus,
  type PullProgressEvent,
  type SmokeReport,
  type SmokeRunSummary,
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

class SmokeStore {
  ollama = new Resource<OllamaStatus>(() => backend.invoke('discover_ollama'));
  models = new Resource<OllamaModel[]>(() => backend.invoke('list_models'));
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
  pullProgress = $state.raw<PullProgressEvent | null>(null);
  pull = new Action((model: string) => backend.invoke('pull_model', { model }));
  live = $state.raw<LiveRun | null>(null);
  run = new Action((model: string, throughAgent: boolean) => backend.invoke('run_smoke', { model, through_agent: throughAgent }));
  exporting = new Action((id: string, format: ExportFormat) => backend.invoke('export_smoke_report', { id, format }));

  constructor() {
    void backend.listen('pull_progress', (p) => {
      this.pullProgress = p;
    });
    void backend.listen('smoke_progress', (p) => {
      const live = this.live;
      if (live === null) return;
      if (p.type === 'check_started') this.live = { ...live, total: p.total, current: { name: p.name, title: p.title, index: p.index } };
      else this.live = { ...live, current: null, finished: [...live.finished, p.result] };
    });
  }

  async open(): Promise<void> {
    if (this.ollama.status === 'idle') await this.discover();
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

  selectRun(id: string): void {
    this.selectedRunId = id;
    void this.report.refresh();
  }

  async pullModel(): Promise<void> {
    const name = this.pullName.trim();
    if (name === '') return;
    this.pullProgress = null;
    const m = await this.pull.run(name);
    if (m === undefined) return;
    toasts.show('success', `Pulled ${m.name}`);
    this.pullName = '';
    await this.models.refresh();
    this.model = m.name;
  }

  async runSuite(): Promise<void> {
    const model = this.model ?? this.models.data?.[0]?.name ?? null;
    if (model === null || this.run.busy) return;
    this.model = model;
    this.live = { model, total: null, current: null, finished: [] };
    const report = await this.run.run(model, this.throughAgent);
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
