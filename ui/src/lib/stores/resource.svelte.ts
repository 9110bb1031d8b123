/**
 * `Resource<T>`: one backend read with its state (idle → loading → ready | error), the
 * building block every view's empty / loading / error / full rendering hangs off.
 */
import { BackendError } from '../ipc';

export type ResourceStatus = 'idle' | 'loading' | 'ready' | 'error';

/** What a view renders from: a `Resource` or anything shaped like one. */
export interface Source<T> {
  status: ResourceStatus;
  data: T | undefined;
  error: BackendError | undefined;
}

export class Resource<T> {
  status = $state<ResourceStatus>('idle');
  /** The last good value; kept while a refresh is loading so the view does not flash. */
  data = $state.raw<T | undefined>(undefined);
  error = $state.raw<BackendError | undefined>(undefined);
  #load: () => Promise<T>;
  #generation = 0;

  constructor(load: () => Promise<T>) {
    this.#load = load;
  }

  /** Loads again; a newer call wins over an older one still in flight. */
  async refresh(): Promise<void> {
    const generation = ++this.#generation;
    this.status = 'loading';
    try {
      const value = await this.#load();
      if (generation !== this.#generation) return;
      this.data = value;
      this.error = undefined;
      this.status = 'ready';
    } catch (e) {
      if (generation !== this.#generation) return;
      this.error = BackendError.from(e);
      this.status = 'error';
    }
  }

  /** Loads once, unless already loaded or loading. */
  ensure(): void {
    if (this.status === 'idle') void this.refresh();
  }

  /** Replaces the value (after a command returned the new state, or an event arrived). */
  set(value: T): void {
    this.data = value;
    this.error = undefined;
    this.status = 'ready';
  }

  /** Whether a first value is still missing (loading with nothing to show yet). */
  get pending(): boolean {
    return this.data === undefined && (this.status === 'loading' || this.status === 'idle');
  }
}

/** The state of one action the user started (a button's progress and its failure). */
export class Action<A extends unknown[], R> {
  busy = $state(false);
  error = $state.raw<BackendError | undefined>(undefined);
  #run: (...args: A) => Promise<R>;

  constructor(run: (...args: A) => Promise<R>) {
    this.#run = run;
  }

  /** Runs the action; resolves to the result, or undefined after recording the error. */
  async run(...args: A): Promise<R | undefined> {
    this.busy = true;
    this.error = undefined;
    try {
      return await this.#run(...args);
    } catch (e) {
      this.error = BackendError.from(e);
      return undefined;
    } finally {
      this.busy = false;
    }
  }

  reset(): void {
    this.error = undefined;
  }
}
