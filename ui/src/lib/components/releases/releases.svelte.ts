/**
 * The Releases view's state: the release list across clusters (kept live by
 * `release_event`, no polling; waiting for a decision first), the selected release's
 * detail, and the confirmation of an action (reason required, `release_progress`, the
 * failure shown in the dialog; a conflict reloads the release). Palette commands too.
 */
import { backend, BackendError } from '../../ipc';
import type { ReleaseActionId, ReleaseActionPermission, ReleaseActionResult, ReleaseDetail, ReleaseList, RolloutRef, ReleaseState, ReleaseSummary } from '../../ipc/releases';
import type { PaletteCommand } from '../../stores/palette.svelte';
import type { Allowance } from '../../stores/permissions.svelte';
import { Resource } from '../../stores/resource.svelte';
import { router } from '../../stores/router.svelte';
import { toasts } from '../../stores/toasts.svelte';

export function refKey(r: RolloutRef): string {
  return `${r.profile_id}/${r.namespace}/${r.name}`;
}

const RANK: Record<ReleaseState, number> = { waiting_decision: 0, paused: 1, progressing: 2, aborted: 3, complete: 4, idle: 5 };

/** Waiting for a decision first, then paused, progressing, aborted, complete, idle; then by place and name. */
export function releaseOrder(a: ReleaseSummary, b: ReleaseSummary): number {
  return RANK[a.state] - RANK[b.state] || a.cluster.localeCompare(b.cluster) || a.ref.namespace.localeCompare(b.ref.namespace) || a.ref.name.localeCompare(b.ref.name);
}

export const ACTION_LABEL: Record<ReleaseActionId, string> = {
  promote_step: 'Promote step',
  promote_full: 'Promote full',
  abort: 'Abort',
  undo: 'Undo to revision',
  pause: 'Pause',
  resume: 'Resume',
};

const OK: Allowance = { allowed: true, reason: null };

function hasLiveCanary(s: ReleaseSummary): boolean {
  return s.canary !== null && s.state !== 'complete' && s.state !== 'aborted' && s.state !== 'idle';
}

/** Whether the release's state allows `action` (RBAC aside), and why not. */
export function stateAllowance(s: ReleaseSummary, action: ReleaseActionId, revisions: number | null = null): Allowance {
  const no = (reason: string): Allowance => ({ allowed: false, reason });
  switch (action) {
    case 'promote_step':
    case 'promote_full':
    case 'abort':
      if (s.canary === null || s.state === 'idle') return no(`No canary: ${s.ref.name} has no ${s.ref.name}-canary traffic to ${action === 'abort' ? 'abort' : 'promote'}`);
      if (s.state === 'complete') return no('Complete: the canary already takes 100 % of traffic');
      if (s.state === 'aborted') return no('Aborted: the canary is scaled to 0');
      return OK;
    case 'pause':
      if (s.state === 'paused') return no('Already paused');
      if (s.state === 'waiting_decision') return no('Already stopped, waiting for a decision');
      if (!hasLiveCanary(s)) return no('Nothing in progress to pause');
      return OK;
    case 'resume':
      if (s.state !== 'paused' && s.state !== 'waiting_decision') return no('Not paused');
      return OK;
    case 'undo':
      if (revisions !== null && revisions === 0) return no('No earlier revision to go back to');
      return OK;
  }
}

export interface ActionDialog {
  action: ReleaseActionId;
  ref: RolloutRef;
  summary: ReleaseSummary;
}

class ReleasesStore {
  list = new Resource<ReleaseList>(async () => {
    const l = await backend.invoke('list_releases');
    return { releases: [...l.releases].sort(releaseOrder), errors: l.errors };
  });
  selectedKey = $state<string | null>(null);
  detail = new Resource<ReleaseDetail>(() => {
    const ref = this.selectedRef;
    if (ref === null) return Promise.reject(new Error('no release selected'));
    return backend.invoke('get_release', { ref });
  });
  /** Keys of releases changed by an event since the view opened (highlighted). */
  fresh = $state<ReadonlySet<string>>(new Set());
  /** SSAR answers per release, from the details seen so far (the palette uses them). */
  perms = $state.raw<ReadonlyMap<string, ReleaseActionPermission[]>>(new Map());

  // The confirmation dialog.
  dialog = $state<ActionDialog | null>(null);
  reason = $state('');
  revision = $state<number | null>(null);
  formError = $state<string | null>(null);
  busy = $state(false);
  error = $state<string | null>(null);
  progress = $state<{ phase: string; fraction: number | null } | null>(null);
  /** The last action's result, shown under the detail's header. */
  lastResult = $state.raw<ReleaseActionResult | null>(null);

  constructor() {
    void backend.listen('release_event', (s) => this.#onEvent(s));
    void backend.listen('release_removed', (r) => this.#onRemoved(r));
    void backend.listen('release_progress', (p) => {
      const d = this.dialog;
      if (d === null || !this.busy || refKey(d.ref) !== refKey(p.ref) || d.action !== p.action) return;
      this.progress = { phase: p.phase, fraction: p.fraction };
      if (p.error !== null) this.error = p.error;
    });
  }

  get releases(): ReleaseSummary[] {
    return this.list.data?.releases ?? [];
  }

  get selected(): ReleaseSummary | null {
    return this.releases.find((r) => refKey(r.ref) === this.selectedKey) ?? null;
  }

  get selectedRef(): RolloutRef | null {
    return this.selected?.ref ?? (this.detail.data && refKey(this.detail.data.summary.ref) === this.selectedKey ? this.detail.data.summary.ref : null);
  }

  #onEvent(s: ReleaseSummary): void {
    const k = refKey(s.ref);
    const l = this.list.data;
    if (l !== undefined) {
      const rest = l.releases.filter((r) => refKey(r.ref) !== k);
      this.list.set({ releases: [...rest, s].sort(releaseOrder), errors: l.errors });
    }
    this.fresh = new Set([...this.fresh, k]);
    setTimeout(() => {
      this.fresh = new Set([...this.fresh].filter((x) => x !== k));
    }, 2500);
    const d = this.detail.data;
    if (this.selectedKey === k && d !== undefined && refKey(d.summary.ref) === k) {
      this.detail.set({ ...d, summary: s });
      // The analysis, events and log change with it: read them once (pushed, not polled).
      void this.detail.refresh().then(() => this.#remember());
    }
  }

  #onRemoved(ref: RolloutRef): void {
    const k = refKey(ref);
    const l = this.list.data;
    if (l !== undefined) this.list.set({ releases: l.releases.filter((r) => refKey(r.ref) !== k), errors: l.errors });
    if (this.selectedKey === k) {
      this.selectedKey = null;
      this.lastResult = null;
      toasts.show('info', `${ref.name} was deleted from the cluster`, `${ref.namespace} on ${ref.profile_id}`);
    }
  }

  #remember(): void {
    const d = this.detail.data;
    if (d === undefined) return;
    this.perms = new Map([...this.perms, [refKey(d.summary.ref), d.permissions]]);
  }

  open(): void {
    this.list.ensure();
  }

  async reload(): Promise<void> {
    await this.list.refresh();
    if (this.selectedKey !== null) await this.loadDetail();
  }

  async loadDetail(): Promise<void> {
    await this.detail.refresh();
    this.#remember();
  }

  select(key: string | null): void {
    if (key === this.selectedKey) return;
    this.selectedKey = key;
    this.lastResult = null;
    if (key !== null) void this.loadDetail();
  }

  move(delta: number): void {
    const list = this.releases;
    if (list.length === 0) return;
    const i = list.findIndex((r) => refKey(r.ref) === this.selectedKey);
    const next = list[Math.min(list.length - 1, Math.max(0, i < 0 ? 0 : i + delta))];
    if (next) this.select(refKey(next.ref));
  }

  /** RBAC (the SSAR answer in the detail) first, then the release's state. */
  allowance(s: ReleaseSummary, action: ReleaseActionId): Allowance {
    const perms = this.perms.get(refKey(s.ref));
    const p = perms?.find((x) => x.action === action);
    if (p !== undefined && !p.allowed) return { allowed: false, reason: p.reason ?? 'Not allowed by the cluster (SelfSubjectAccessReview)' };
    const d = this.detail.data;
    const revisions = d !== undefined && refKey(d.summary.ref) === refKey(s.ref) ? d.revisions.filter((r) => !r.current).length : null;
    return stateAllowance(s, action, revisions);
  }

  /** Opens the confirmation of `action` on `ref` (selecting it), or explains why not. */
  async start(action: ReleaseActionId, ref: RolloutRef | null = this.selectedRef, revision: number | null = null): Promise<void> {
    if (ref === null) return;
    const k = refKey(ref);
    if (this.selectedKey !== k) {
      this.selectedKey = k;
      this.lastResult = null;
      await this.loadDetail();
    } else if (!this.perms.has(k)) {
      await this.loadDetail();
    }
    const s = this.releases.find((r) => refKey(r.ref) === k) ?? (this.detail.data && refKey(this.detail.data.summary.ref) === k ? this.detail.data.summary : null);
    if (s === null) {
      toasts.show('error', `Cannot ${ACTION_LABEL[action].toLowerCase()} ${ref.name}`, this.detail.error?.message ?? 'The release is not loaded');
      return;
    }
    const a = this.allowance(s, action);
    if (!a.allowed) {
      toasts.show('error', `Cannot ${ACTION_LABEL[action].toLowerCase()} ${ref.name}`, a.reason);
      return;
    }
    const d = this.detail.data;
    const older = d !== undefined && refKey(d.summary.ref) === k ? d.revisions.filter((r) => !r.current) : [];
    this.reason = '';
    this.formError = null;
    this.error = null;
    this.progress = null;
    this.revision = action === 'undo' ? (revision ?? older[0]?.revision ?? null) : null;
    this.dialog = { action, ref, summary: s };
  }

  cancel(): void {
    if (this.busy) return;
    this.dialog = null;
    this.reason = '';
    this.formError = null;
    this.error = null;
    this.progress = null;
  }

  /** Sends the action; a blank reason (or no revision for undo) is refused before the backend sees it. */
  async confirm(): Promise<boolean> {
    const d = this.dialog;
    if (d === null || this.busy) return false;
    const reason = this.reason.trim();
    if (reason === '') {
      this.formError = `A reason is required to ${ACTION_LABEL[d.action].toLowerCase()} ${d.ref.name}.`;
      return false;
    }
    const revision = this.revision;
    if (d.action === 'undo' && revision === null) {
      this.formError = 'Pick the revision to go back to.';
      return false;
    }
    this.formError = null;
    this.error = null;
    this.busy = true;
    this.progress = { phase: 'Sending…', fraction: null };
    try {
      const ref = d.ref;
      let res: ReleaseActionResult;
      switch (d.action) {
        case 'promote_step':
        case 'promote_full':
          res = await backend.invoke('promote_release', { ref, full: d.action === 'promote_full', reason });
          break;
        case 'abort':
          res = await backend.invoke('abort_release', { ref, reason });
          break;
        case 'undo':
          res = await backend.invoke('undo_release', { ref, revision: revision ?? 0, reason });
          break;
        case 'pause':
          res = await backend.invoke('pause_release', { ref, reason });
          break;
        case 'resume':
          res = await backend.invoke('resume_release', { ref, reason });
          break;
      }
      this.#applied(res);
      this.busy = false;
      this.progress = null;
      this.dialog = null;
      this.reason = '';
      const cancelled = res.cancelled_approvals;
      toasts.show('success', res.message, cancelled === null ? null : `${cancelled} pending approval${cancelled === 1 ? '' : 's'} of the canary cancelled`);
      return true;
    } catch (e) {
      const err = BackendError.from(e);
      this.busy = false;
      this.progress = null;
      if (err.code === 'conflict') {
        this.error = `${err.message}, reloaded`;
        await this.reload();
        const fresh = this.releases.find((r) => refKey(r.ref) === refKey(d.ref));
        if (fresh && this.dialog !== null) this.dialog = { ...this.dialog, summary: fresh };
      } else {
        this.error = err.request_id ? `${err.message} (request ${err.request_id})` : err.message;
      }
      return false;
    }
  }

  #applied(res: ReleaseActionResult): void {
    const s = res.detail.summary;
    const k = refKey(s.ref);
    const l = this.list.data;
    if (l !== undefined) this.list.set({ releases: [...l.releases.filter((r) => refKey(r.ref) !== k), s].sort(releaseOrder), errors: l.errors });
    if (this.selectedKey === k) {
      this.detail.set(res.detail);
      this.#remember();
    }
    this.lastResult = res;
  }

  /** Palette commands: promote / abort / pause / resume each release, reaching the same confirmation. */
  commands(): PaletteCommand[] {
    const out: PaletteCommand[] = [];
    const verbs: { action: ReleaseActionId; verb: string }[] = [
      { action: 'promote_step', verb: 'Promote' },
      { action: 'abort', verb: 'Abort' },
      { action: 'pause', verb: 'Pause' },
      { action: 'resume', verb: 'Resume' },
    ];
    for (const s of this.releases) {
      for (const { action, verb } of verbs) {
        const a = this.allowance(s, action);
        // Only what the release's state makes possible; RBAC denials stay listed, disabled.
        if (!stateAllowance(s, action).allowed) continue;
        out.push({
          id: `release:${action}:${refKey(s.ref)}`,
          title: `${verb} ${s.ref.name} in ${s.ref.namespace}`,
          group: 'Actions',
          keywords: `release canary rollout ${s.cluster} ${action.replace('_', ' ')}`,
          shortcut: null,
          allowance: a,
          run: () => {
            router.go('releases');
            this.open();
            void this.start(action, s.ref);
          },
        });
      }
    }
    return out;
  }
}

export const releases = new ReleasesStore();
