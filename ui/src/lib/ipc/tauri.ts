/**
 * The desktop implementation of `Backend`: Tauri's `invoke` and `listen`. Command and event
 * names are the snake_case keys of `CommandMap` / `EventMap`; arguments travel as `{ args }`.
 */
import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import { BackendError, type Backend, type InvokeArgs, type Unsubscribe } from './backend';
import type { CommandName, EventMap, EventName, ResultOf } from './types';

export function tauriBackend(): Backend {
  return {
    kind: 'tauri',
    async invoke<K extends CommandName>(command: K, ...args: InvokeArgs<K>): Promise<ResultOf<K>> {
      const payload = args.length === 0 ? {} : { args: args[0] };
      try {
        return await invoke<ResultOf<K>>(command, payload);
      } catch (e) {
        throw BackendError.from(e);
      }
    },
    async listen<E extends EventName>(event: E, handler: (payload: EventMap[E]) => void): Promise<Unsubscribe> {
      return listen<EventMap[E]>(event, (e) => handler(e.payload));
    },
  };
}
