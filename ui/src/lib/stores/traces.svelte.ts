/**
 * Traces: a filtered, cursor-paged list (pages of 200, fetched as the list scrolls; only
 * the visible rows are rendered) and the selected trace's span waterfall.
 */
import { backend, BackendError, type TraceDetail, type TraceQuery, type TraceSummary } from '../ipc';
import { Resource } from './resource.svelte';

export const PAGE = 200;
export const SLOW_MS = 5000;

export interface TraceFilters {
  errors_only: boolean;
  /** Only runs a guardrail flagged. */
  flagged_only: boolean;
  slow: boolean;
  workflow: string | null;
  request_id: string;
}

/** Every filter off. */
export const NO_FILTERS: Readonly<TraceFilters> = { errors_only: false, flagged_only: false, slow: false, workflow: null, request_id: '' };

class TraceStore {
  filters = $state<TraceFilters>({ ...NO_FILTERS });
  /** Loaded rows, in order; raw so 100k objects are not proxied. */
  items = $state.raw<TraceSummary[]>([]);
  total = $state<number | null>(null);
  nextCursor = $state<string | null>(null);
  status = $state<'idle' | 'loading' | 'ready' | 'error'>('idle');
  loadingMore = $state(false);
  error = $state.raw<BackendError | undefined>(undefined);
  workflows = new Resource<string[]>(() => backend.invoke('list_workflows'));
  selectedId = $state<string | null>(null);
  detail = new Resource<TraceDetail>(() => {
    const id = this.selectedId;
    if (id === null) return Promise.reject(new Error('no trace selected'));
    return backend.invoke('get_trace', { trace_id: id });
  });
  #generation = 0;

  #query(cursor: string | null): TraceQuery {
    const f = this.filters;
    const rid = f.request_id.trim();
    return {
      errors_only: f.errors_only,
      flagged_only: f.flagged_only,
      min_duration_ms: f.slow ? SLOW_MS : null,
      workflow: f.workflow,
      request_id: rid === '' ? null : rid,
      cursor,
      limit: PAGE,
    };
  }

  open(params: URLSearchParams): void {
    this.workflows.ensure();
    const rid = params.get('request_id');
    if (rid !== null && rid !== this.filters.request_id) {
      this.filters = { ...NO_FILTERS, request_id: rid };
      void this.reload();
      return;
    }
    // From the Overview's quality panel: the runs of one workflow.
    const workflow = params.get('workflow');
    if (workflow !== null && workflow !== this.filters.workflow) {
      this.filters = { ...NO_FILTERS, workflow };
      void this.reload();
      return;
    }
    if (this.status === 'idle') void this.reload();
  }

  /** Starts over with the current filters. */
  async reload(): Promise<void> {
    const generation = ++this.#generation;
    this.status = 'loading';
    this.error = undefined;
    this.items = [];
    this.total = null;
    this.nextCursor = null;
    try {
      const page = await backend.invoke('list_traces', this.#query(null));
      if (generation !== this.#generation) return;
      this.items = page.items;
      this.total = page.total;
      this.nextCursor = page.next_cursor;
      this.status = 'ready';
      const first = page.items[0];
      if (this.selectedId === null || !page.items.some((t) => t.trace_id === this.selectedId)) this.select(first ? first.trace_id : null);
    } catch (e) {
      if (generation !== this.#generation) return;
      this.error = BackendError.from(e);
      this.status = 'error';
    }
  }

  /** Fetches the next page, once at a time. */
  async loadMore(): Promise<void> {
    if (this.loadingMore || this.nextCursor === null || this.status !== 'ready') return;
    const generation = this.#generation;
    this.loadingMore = true;
    try {
      const page = await backend.invoke('list_traces', this.#query(this.nextCursor));
      if (generation !== this.#generation) return;
      this.items = [...this.items, ...page.items];
      this.nextCursor = page.next_cursor;
      this.total = page.total;
    } catch (e) {
      if (generation === this.#generation) this.error = BackendError.from(e);
    } finally {
      this.loadingMore = false;
    }
  }

  setFilters(patch: Partial<TraceFilters>): void {
    this.filters = { ...this.filters, ...patch };
    void this.reload();
  }

  select(id: string | null): void {
    if (id === this.selectedId) return;
    this.selectedId = id;
    if (id !== null) void this.detail.refresh();
  }
}

export const traces = new TraceStore();
