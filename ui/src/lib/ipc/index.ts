/**
 * The one entry point to the backend: the Tauri implementation inside the desktop app
 * (`window.__TAURI_INTERNALS__` exists), the in-memory mock anywhere else, so the same
 * views run in a browser test. Only `lib/ipc/` may import `@tauri-apps/*` (eslint rule).
 */
import type { Backend } from './backend';
import { tauriBackend } from './tauri';

export { BackendError } from './backend';
export type { Backend, Unsubscribe } from './backend';
export type * from './types';

declare global {
  interface Window {
    __TAURI_INTERNALS__?: unknown;
  }
}

async function select(): Promise<Backend> {
  if (window.__TAURI_INTERNALS__ !== undefined) return tauriBackend();
  // Loaded on demand so the desktop bundle does not carry the fixtures.
  const { mockBackend } = await import('./mock');
  return mockBackend();
}

export const backend: Backend = await select();
