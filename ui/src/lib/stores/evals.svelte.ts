/**
 * Evals: suites, runs, the selected run's report, runs started here (progress pushed by
 * `eval_progress`) and the pass rate of each suite across releases.
 */
import { backend, type EvalRunDetail, type EvalRunSummary, type EvalSuite, type PassRatePoint } from '../ipc';
import { Action, Resource } from './resource.svelte';
import { toasts } from './toasts.svelte';

class EvalStore {
  suites = new Resource<EvalSuite[]>(() => backend.invoke('list_eval_suites'));
  runs = new Resource<EvalRunSummary[]>(() => backend.invoke('list_eval_runs'));
  passRates = new Resource<PassRatePoint[]>(() => backend.invoke('eval_pass_rates'));
  selectedId = $state<string | null>(null);
  detail = new Resource<EvalRunDetail>(() => {
    const id = this.selectedId;
    if (id === null) return Promise.reject(new Error('no run selected'));
    return backend.invoke('get_eval_run', { run_id: id });
  });
  start = new Action((suite: string) => backend.invoke('start_eval', { suite, baseline_run_id: null }));
  /** Which suite a start is in flight for. */
  starting = $state<string | null>(null);

  constructor() {
    void backend.listen('eval_progress', (p) => {
      const runs = this.runs.data;
      if (runs === undefined) return;
      const next = runs.map((r) =>
        r.id === p.run_id
          ? { ...r, status: p.status, done: p.done, total: p.total, pass_rate: p.pass_rate, finished_at_ms: p.status === 'completed' || p.status === 'failed' ? Date.now() : null }
          : r,
      );
      this.runs.set(next);
      if (p.status === 'completed' || p.status === 'failed') {
        toasts.show(p.status === 'completed' ? 'success' : 'error', `Eval run ${p.run_id} ${p.status}`, p.pass_rate === null ? null : `pass rate ${(p.pass_rate * 100).toFixed(1)} %`);
        void this.passRates.refresh();
        if (this.selectedId === p.run_id) void this.detail.refresh();
      }
    });
  }

  get active(): EvalRunSummary[] {
    return (this.runs.data ?? []).filter((r) => r.status === 'running' || r.status === 'queued');
  }

  async open(): Promise<void> {
    this.suites.ensure();
    this.passRates.ensure();
    if (this.runs.status === 'idle') {
      await this.runs.refresh();
      const first = this.runs.data?.[0];
      if (first && this.selectedId === null) this.select(first.id);
    }
  }

  async retry(): Promise<void> {
    void this.suites.refresh();
    void this.passRates.refresh();
    await this.runs.refresh();
    const first = this.runs.data?.[0];
    if (first && this.selectedId === null) this.select(first.id);
  }

  select(id: string): void {
    if (id === this.selectedId) return;
    this.selectedId = id;
    void this.detail.refresh();
  }

  async startRun(suite: string): Promise<void> {
    this.starting = suite;
    const run = await this.start.run(suite);
    this.starting = null;
    if (run === undefined) {
      toasts.show('error', `Could not start the ${suite} suite`, this.start.error?.message ?? null);
      return;
    }
    this.runs.set([run, ...(this.runs.data ?? []).filter((r) => r.id !== run.id)]);
    this.select(run.id);
    toasts.show('info', `Started ${suite} eval`, `${run.id} · ${run.total} cases against ${run.versions.release}`);
  }
}

export const evals = new EvalStore();
