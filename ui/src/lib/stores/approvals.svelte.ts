/**
 * The approval queue: pending requests kept live by `approval_event`, the history, the
 * selected request's detail, the decision being written, and the audit-chain status.
 * A new request raises a desktop notification through the backend's `notify` command.
 */
import { backend, type ApprovalDetail, type ApprovalEvent, type ApprovalSummary, type AuditStatus } from '../ipc';
import { Action, Resource } from './resource.svelte';
import { toasts } from './toasts.svelte';

export type DecisionKind = 'approve' | 'reject';
export type QueueTab = 'pending' | 'history';

function minutes(ms: number): string {
  const m = Math.max(0, Math.round(ms / 60_000));
  return m < 1 ? 'under a minute' : `${m} min`;
}

class ApprovalQueue {
  tab = $state<QueueTab>('pending');
  pending = new Resource<ApprovalSummary[]>(async () => (await backend.invoke('list_approvals', { view: 'pending', cursor: null })).items);
  history = new Resource<ApprovalSummary[]>(async () => (await backend.invoke('list_approvals', { view: 'history', cursor: null })).items);
  audit = new Resource<AuditStatus>(() => backend.invoke('verify_audit'));
  selectedId = $state<string | null>(null);
  detail = new Resource<ApprovalDetail>(() => {
    const id = this.selectedId;
    if (id === null) return Promise.reject(new Error('no approval selected'));
    return backend.invoke('get_approval', { id });
  });
  /** Ids that arrived by event since the queue was opened and are still pending (marked new). */
  fresh = $state<ReadonlySet<string>>(new Set());

  // The decision form.
  mode = $state<DecisionKind | null>(null);
  reason = $state('');
  formError = $state<string | null>(null);
  decide = new Action(async (id: string, decision: DecisionKind, reason: string) =>
    backend.invoke('decide_approval', { id, decision, reason }),
  );

  constructor() {
    void backend.listen('approval_event', (e) => this.#onEvent(e));
  }

  get list(): ApprovalSummary[] {
    return (this.tab === 'pending' ? this.pending.data : this.history.data) ?? [];
  }

  get current(): Resource<ApprovalSummary[]> {
    return this.tab === 'pending' ? this.pending : this.history;
  }

  get pendingCount(): number | null {
    return this.pending.data?.length ?? null;
  }

  #onEvent(e: ApprovalEvent): void {
    const a = e.approval;
    const pend = this.pending.data;
    if (e.kind === 'created' && a.status === 'pending') {
      if (pend !== undefined && !pend.some((x) => x.id === a.id)) {
        this.pending.set([...pend, a].sort((x, y) => x.expires_at_ms - y.expires_at_ms));
      }
      this.fresh = new Set([...this.fresh, a.id]);
      void backend
        .invoke('notify', {
          title: `Approval waiting: ${a.tool}`,
          body: `${a.resource} · requested by ${a.requested_by} · expires in ${minutes(a.expires_at_ms - Date.now())}`,
        })
        .catch(() => undefined);
      return;
    }
    // Decided or expired: no longer new. Without this the set would keep every id that ever
    // arrived for as long as the app runs.
    if (a.status !== 'pending' && this.fresh.has(a.id)) this.fresh = new Set([...this.fresh].filter((x) => x !== a.id));
    if (pend !== undefined) {
      const rest = pend.filter((x) => x.id !== a.id);
      if (e.kind === 'updated' && a.status === 'pending') this.pending.set([...rest, a].sort((x, y) => x.expires_at_ms - y.expires_at_ms));
      else this.pending.set(rest);
    }
    const hist = this.history.data;
    if (hist !== undefined && e.kind === 'updated' && a.status !== 'pending') {
      this.history.set([a, ...hist.filter((x) => x.id !== a.id)]);
    }
    if (this.selectedId === a.id && this.detail.data !== undefined) {
      this.detail.set({ ...this.detail.data, summary: a });
    }
  }

  open(): void {
    this.pending.ensure();
    if (this.audit.status === 'idle') void this.audit.refresh();
  }

  setTab(tab: QueueTab): void {
    this.tab = tab;
    this.cancelDecision();
    if (tab === 'history') this.history.ensure();
    this.selectedId = null;
    const first = this.list[0];
    if (first) this.select(first.id);
  }

  select(id: string | null): void {
    if (id === this.selectedId) return;
    this.selectedId = id;
    this.cancelDecision();
    if (id !== null) void this.detail.refresh();
  }

  /** Moves the selection by `delta` rows in the current list. */
  move(delta: number): void {
    const list = this.list;
    if (list.length === 0) return;
    const i = list.findIndex((x) => x.id === this.selectedId);
    const next = list[Math.min(list.length - 1, Math.max(0, i < 0 ? 0 : i + delta))];
    if (next) this.select(next.id);
  }

  startDecision(mode: DecisionKind): void {
    this.mode = mode;
    this.reason = '';
    this.formError = null;
    this.decide.reset();
  }

  cancelDecision(): void {
    this.mode = null;
    this.reason = '';
    this.formError = null;
  }

  /** Sends the decision; a blank reason is refused here before the backend sees it. */
  async confirm(): Promise<boolean> {
    const id = this.selectedId;
    const mode = this.mode;
    if (id === null || mode === null) return false;
    const reason = this.reason.trim();
    if (reason === '') {
      this.formError = `A reason is required to ${mode} ${id}.`;
      return false;
    }
    this.formError = null;
    const result = await this.decide.run(id, mode, reason);
    if (result === undefined) {
      this.formError = this.decide.error?.message ?? 'The decision failed';
      return false;
    }
    this.detail.set(result);
    this.cancelDecision();
    toasts.show('success', `${mode === 'approve' ? 'Approved' : 'Rejected'} ${id}`, result.summary.status === 'pending' ? `${result.summary.approvals_count} of ${result.summary.required_approvals} approvals recorded` : `Status: ${result.summary.status}`);
    const pend = this.pending.data;
    if (pend !== undefined && result.summary.status !== 'pending') {
      const idx = pend.findIndex((x) => x.id === id);
      const rest = pend.filter((x) => x.id !== id);
      this.pending.set(rest);
      if (this.tab === 'pending') {
        const next = rest[Math.min(idx, rest.length - 1)];
        this.selectedId = null;
        if (next) this.select(next.id);
      }
    }
    return true;
  }
}

export const approvals = new ApprovalQueue();
