/**
 * The `Backend` interface every view talks to: typed commands and event subscriptions.
 * Two implementations: `tauri.ts` (the desktop app) and `mock.ts` (browser tests and the
 * dev server). Nothing outside `lib/ipc/` knows which one runs.
 */
import type { ArgsOf, CommandError, CommandName, ErrorCode, EventMap, EventName, ResultOf } from './types';

export type Unsubscribe = () => void;

/** Spread-argument helper: commands without arguments are called as `invoke('name')`. */
export type InvokeArgs<K extends CommandName> = ArgsOf<K> extends undefined ? [] : [args: ArgsOf<K>];

export interface Backend {
  /** `tauri` in the desktop app, `mock` in a browser. */
  readonly kind: 'tauri' | 'mock';
  invoke<K extends CommandName>(command: K, ...args: InvokeArgs<K>): Promise<ResultOf<K>>;
  listen<E extends EventName>(event: E, handler: (payload: EventMap[E]) => void): Promise<Unsubscribe>;
}

const CODES: readonly ErrorCode[] = [
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'rate_limited',
  'unavailable',
  'invalid',
  'network',
  'timeout',
  'protocol',
  'storage',
  'keyring',
  'process',
];

/** A rejected command, as an `Error` the UI can show and match on by `code`. */
export class BackendError extends Error implements CommandError {
  readonly code: ErrorCode;
  readonly server_code: string | null;
  readonly request_id: string | null;
  readonly retry_after_secs: number | null;

  constructor(e: CommandError) {
    super(e.message);
    this.name = 'BackendError';
    this.code = e.code;
    this.server_code = e.server_code;
    this.request_id = e.request_id;
    this.retry_after_secs = e.retry_after_secs;
  }

  /** Whether the same call can succeed later (network trouble, rate limits). */
  get transient(): boolean {
    return ['rate_limited', 'unavailable', 'network', 'timeout'].includes(this.code);
  }

  /** Whatever a command rejected with, as a `BackendError`. */
  static from(raw: unknown): BackendError {
    if (raw instanceof BackendError) return raw;
    if (typeof raw === 'object' && raw !== null && 'code' in raw && 'message' in raw) {
      const o = raw as Record<string, unknown>;
      const code = CODES.find((c) => c === o['code']) ?? 'protocol';
      return new BackendError({
        code,
        message: String(o['message']),
        server_code: typeof o['server_code'] === 'string' ? o['server_code'] : null,
        request_id: typeof o['request_id'] === 'string' ? o['request_id'] : null,
        retry_after_secs: typeof o['retry_after_secs'] === 'number' ? o['retry_after_secs'] : null,
      });
    }
    const message = raw instanceof Error ? raw.message : typeof raw === 'string' ? raw : 'unknown error';
    return new BackendError({
      code: 'protocol',
      message: `The console backend failed unexpectedly: ${message}`,
      server_code: null,
      request_id: null,
      retry_after_secs: null,
    });
  }
}
