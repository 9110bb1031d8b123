/** Transient messages at the corner of the window (results of actions, failures). */
export interface Toast {
  id: number;
  kind: 'success' | 'error' | 'info';
  title: string;
  detail: string | null;
}

class Toasts {
  items = $state<Toast[]>([]);
  #next = 1;

  show(kind: Toast['kind'], title: string, detail: string | null = null, ttlMs = kind === 'error' ? 9000 : 5000): void {
    const id = this.#next++;
    this.items = [...this.items, { id, kind, title, detail }];
    setTimeout(() => this.dismiss(id), ttlMs);
  }

  dismiss(id: number): void {
    this.items = this.items.filter((t) => t.id !== id);
  }
}

export const toasts = new Toasts();
