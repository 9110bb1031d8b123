/**
 * Overview (triage): one card per service and track for a chosen window, refreshed by the
 * backend's `overview_event` after each scrape, and the selected card's charts (SVG
 * rendered by the backend for the window and theme), drawn again after each of those
 * pushes — the charts come from the same scrapes as the cards — and after a theme change.
 */
import { backend, type Chart, type ChartWindow, type Overview, type Theme } from '../ipc';
import { preferences } from './preferences.svelte';
import { Resource } from './resource.svelte';

export const WINDOWS: readonly ChartWindow[] = ['5m', '15m', '1h', '6h', '24h'];

export interface CardKey {
  profile_id: string;
  track: string;
}

class OverviewStore {
  window = $state<ChartWindow>('15m');
  overview = new Resource<Overview>(() => backend.invoke('get_overview', { window: this.window }));
  selected = $state<CardKey | null>(null);
  /** The theme the charts on screen were asked for in. */
  #chartsTheme: Theme | null = null;
  /** Whether the Overview is on screen (charts are drawn only then). */
  #shown = false;
  charts = new Resource<Chart[]>(() => {
    const s = this.selected;
    if (s === null) return Promise.resolve([]);
    this.#chartsTheme = preferences.theme;
    return backend.invoke('get_charts', { profile_id: s.profile_id, track: s.track, window: this.window, theme: preferences.theme });
  });

  constructor() {
    void backend.listen('overview_event', (o) => {
      if (o.window !== this.window) return;
      this.overview.set(o);
      // A scrape happened: draw the charts again (unless a redraw is still on its way; it
      // shows this scrape or the next push brings it). Off screen they wait for `show`.
      if (this.#shown) this.#selectDefault(false);
    });
  }

  /** The Overview comes on screen: charts drawn while it was away are out of date. Returns the matching `hide`. */
  show(): () => void {
    this.#shown = true;
    if (this.selected !== null && this.overview.status !== 'idle') void this.charts.refresh();
    return () => {
      this.#shown = false;
    };
  }

  async open(): Promise<void> {
    if (this.overview.status !== 'idle') return;
    await this.overview.refresh();
    this.#selectDefault();
  }

  async retry(): Promise<void> {
    await this.overview.refresh();
    this.#selectDefault();
  }

  /** Keeps the selected card if it is still there, else selects the one needing attention; loads its charts. */
  #selectDefault(always = true): void {
    const services = this.overview.data?.services ?? [];
    const keep = services.some((s) => s.profile_id === this.selected?.profile_id && s.track === this.selected.track);
    if (!keep) {
      // The card that needs attention first: most badges, then not ready.
      const worst = [...services].sort((a, b) => b.badges.length - a.badges.length || Number(a.readiness === 'ready') - Number(b.readiness === 'ready'))[0];
      this.selected = worst ? { profile_id: worst.profile_id, track: worst.track } : null;
    }
    if (this.selected !== null && (always || !keep || this.charts.status !== 'loading')) void this.charts.refresh();
  }

  /** Draws the charts again if they were drawn in another theme than `theme`. */
  followTheme(theme: Theme): void {
    if (this.selected !== null && this.#chartsTheme !== null && this.#chartsTheme !== theme) void this.charts.refresh();
  }

  select(key: CardKey): void {
    this.selected = key;
    void this.charts.refresh();
  }

  async setWindow(w: ChartWindow): Promise<void> {
    this.window = w;
    void this.charts.refresh();
    await this.overview.refresh();
  }
}

export const overview = new OverviewStore();
