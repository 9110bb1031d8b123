/**
 * The incident switch: freeze writes on the active service, pause its rollouts and export
 * an incident pack in one confirmed action; and the way back (unfreeze). The freeze state
 * is kept live by `freeze_event`.
 */
import { backend, type FreezeState, type IncidentResult } from '../ipc';
import { Action, Resource } from './resource.svelte';
import { toasts } from './toasts.svelte';

class IncidentSwitch {
  freeze = new Resource<FreezeState>(() => backend.invoke('get_freeze_state'));
  dialog = $state<'freeze' | 'unfreeze' | null>(null);
  lastResult = $state.raw<IncidentResult | null>(null);
  engage = new Action(async (reason: string) => {
    const r = await backend.invoke('incident_switch', { reason });
    this.freeze.set(r.freeze);
    this.lastResult = r;
    return r;
  });
  release = new Action(async (reason: string) => {
    const f = await backend.invoke('unfreeze_writes', { reason });
    this.freeze.set(f);
    return f;
  });

  constructor() {
    void backend.listen('freeze_event', (f) => this.freeze.set(f));
  }

  get frozen(): boolean {
    return this.freeze.data?.frozen === true;
  }

  async confirmFreeze(reason: string): Promise<boolean> {
    const r = await this.engage.run(reason);
    if (r === undefined) return false;
    this.dialog = null;
    toasts.show('success', 'Writes frozen, incident pack exported', `${r.pack_path}${r.rollouts_paused > 0 ? ` · ${r.rollouts_paused} rollout paused` : ''}`, 9000);
    return true;
  }

  async confirmUnfreeze(reason: string): Promise<boolean> {
    const r = await this.release.run(reason);
    if (r === undefined) return false;
    this.dialog = null;
    toasts.show('success', 'Writes unfrozen');
    return true;
  }
}

export const incident = new IncidentSwitch();
