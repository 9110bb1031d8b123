/**
 * Settings the backend keeps (theme, retention), with the theme applied at once and
 * remembered locally so the first paint already has the right colours.
 */
import { backend, type Settings, type Theme } from '../ipc';
import { Action, Resource } from './resource.svelte';
import { toasts } from './toasts.svelte';

const KEY = 'flightdeck.theme';

function initialTheme(): Theme {
  const saved = localStorage.getItem(KEY);
  if (saved === 'light' || saved === 'dark') return saved;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

class Preferences {
  theme = $state<Theme>(initialTheme());
  settings = new Resource<Settings>(async () => {
    const s = await backend.invoke('get_settings');
    this.#apply(s.theme);
    return s;
  });
  save = new Action(async (s: Settings) => {
    const saved = await backend.invoke('update_settings', s);
    this.settings.set(saved);
    return saved;
  });

  constructor() {
    this.#apply(this.theme);
  }

  #apply(t: Theme): void {
    this.theme = t;
    document.documentElement.dataset['theme'] = t;
    localStorage.setItem(KEY, t);
  }

  /** Applies at once; saved to the backend when its settings are known. */
  async setTheme(t: Theme): Promise<void> {
    this.#apply(t);
    const current = this.settings.data;
    if (current === undefined) return;
    const saved = await this.save.run({ ...current, theme: t });
    if (saved === undefined && this.save.error) toasts.show('error', 'Theme not saved', this.save.error.message);
  }

  toggleTheme(): Promise<void> {
    return this.setTheme(this.theme === 'dark' ? 'light' : 'dark');
  }
}

export const preferences = new Preferences();
