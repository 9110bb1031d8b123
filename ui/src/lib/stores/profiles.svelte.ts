/** Connection profiles (agent-service endpoints, Kubernetes contexts) and the keyring. */
import { backend, type KeyringStatus, type ProfileList } from '../ipc';
import { permissions } from './permissions.svelte';
import { Action, Resource } from './resource.svelte';
import { toasts } from './toasts.svelte';

class ProfileStore {
  list = new Resource<ProfileList>(() => backend.invoke('list_profiles'));
  keyring = new Resource<KeyringStatus>(() => backend.invoke('keyring_status'));
  add = new Action((name: string, url: string, apiKey: string) => backend.invoke('add_agent_profile', { name, url, api_key: apiKey }));
  remove = new Action((id: string) => backend.invoke('remove_profile', { profile_id: id }));
  activate = new Action((id: string) => backend.invoke('set_active_profile', { profile_id: id }));
  relink = new Action((id: string, agent: string | null) => backend.invoke('link_kube_profile', agent === null ? { profile_id: id } : { profile_id: id, agent_profile_id: agent }));

  get active(): string | null {
    const l = this.list.data;
    if (l === undefined) return null;
    return l.profiles.find((p) => p.id === l.active_id)?.name ?? null;
  }

  async use(id: string): Promise<void> {
    const l = await this.activate.run(id);
    if (l === undefined) {
      toasts.show('error', 'Could not switch profile', this.activate.error?.message ?? null);
      return;
    }
    this.list.set(l);
    void permissions.res.refresh();
    toasts.show('info', `Connected to ${l.profiles.find((p) => p.id === id)?.name ?? id}`);
  }

  async delete(id: string): Promise<void> {
    const l = await this.remove.run(id);
    if (l === undefined) {
      toasts.show('error', 'Could not remove the profile', this.remove.error?.message ?? null);
      return;
    }
    this.list.set(l);
  }

  /** Links a Kubernetes profile to an agent-service profile (`null`: follow the active one). */
  async link(id: string, agent: string | null): Promise<void> {
    const l = await this.relink.run(id, agent);
    if (l === undefined) {
      toasts.show('error', 'Could not change the link', this.relink.error?.message ?? null);
      return;
    }
    this.list.set(l);
    const name = (pid: string) => l.profiles.find((p) => p.id === pid)?.name ?? pid;
    toasts.show('success', `${name(id)} now answers to ${agent === null ? 'the active connection' : name(agent)}`);
  }

  /** Adds an agent endpoint; resolves to whether it worked (the form shows `add.error`). */
  async create(name: string, url: string, apiKey: string): Promise<boolean> {
    const p = await this.add.run(name, url, apiKey);
    if (p === undefined) return false;
    await this.list.refresh();
    toasts.show('success', `Added ${p.name}`, 'The API key is in the OS keyring.');
    return true;
  }
}

export const profiles = new ProfileStore();
