/**
 * What the active connection may do: the backend's `get_permissions` answer, refreshed by
 * `permissions_event`. Views ask `can(action)` and render denied actions disabled with the
 * reason, so a read-only key gives a read-only console.
 */
import { backend, type ActionId, type Permissions } from '../ipc';
import { Resource } from './resource.svelte';

export interface Allowance {
  allowed: boolean;
  /** Why not; null when allowed. */
  reason: string | null;
}

class PermissionStore {
  res = new Resource<Permissions>(() => backend.invoke('get_permissions'));

  constructor() {
    void backend.listen('permissions_event', (p) => this.res.set(p));
  }

  can(action: ActionId): Allowance {
    const p = this.res.data;
    if (p === undefined) {
      if (this.res.status === 'error') return { allowed: false, reason: `Permissions unknown: ${this.res.error?.message ?? 'the backend did not answer'}` };
      return { allowed: false, reason: 'Checking what this connection may do…' };
    }
    const a = p.actions.find((x) => x.action === action);
    if (a === undefined) return { allowed: false, reason: `The backend reported nothing about "${action}"` };
    return { allowed: a.allowed, reason: a.allowed ? null : (a.reason ?? 'Not allowed for this connection') };
  }

  /** Roles are known and no write-gated action is allowed. */
  get readOnly(): boolean {
    const p = this.res.data;
    if (p === undefined || p.profile_id === null) return false;
    return !p.actions.some((a) => a.allowed && (a.action === 'approve' || a.action === 'incident_switch' || a.action === 'start_eval'));
  }
}

export const permissions = new PermissionStore();
