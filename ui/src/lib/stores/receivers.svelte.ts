/**
 * Notification receivers of the active connection's tenant (Settings → Notifications):
 * listed, created, deleted and tested through the service's admin API. A new receiver's URL
 * and secret go to the backend once and are never read back.
 */
import { backend, type CreateReceiverArgs, type Receiver } from '../ipc';
import { Action, Resource } from './resource.svelte';
import { toasts } from './toasts.svelte';

class ReceiverStore {
  list = new Resource<Receiver[]>(() => backend.invoke('list_receivers'));
  add = new Action((args: CreateReceiverArgs) => backend.invoke('create_receiver', args));
  remove = new Action((id: string) => backend.invoke('delete_receiver', { id }));
  test = new Action((id: string) => backend.invoke('test_receiver', { id }));

  /** Creates a receiver; resolves to whether it worked (the form shows `add.error`). */
  async create(args: CreateReceiverArgs): Promise<boolean> {
    const r = await this.add.run(args);
    if (r === undefined) return false;
    await this.list.refresh();
    toasts.show('success', `Added receiver ${r.name}`, 'Its URL and secret are sealed on the service.');
    return true;
  }

  async delete(r: Receiver): Promise<void> {
    if ((await this.remove.run(r.id)) === undefined) {
      toasts.show('error', `Could not delete ${r.name}`, this.remove.error?.message ?? null);
      return;
    }
    await this.list.refresh();
    toasts.show('info', `Deleted receiver ${r.name}`);
  }

  async send(r: Receiver): Promise<void> {
    const t = await this.test.run(r.id);
    if (t === undefined) {
      toasts.show('error', `Could not send a test to ${r.name}`, this.test.error?.message ?? null);
      return;
    }
    toasts.show('success', `Test notification queued for ${r.name}`, `Delivery ${t.delivery_id}`);
  }
}

export const receivers = new ReceiverStore();
