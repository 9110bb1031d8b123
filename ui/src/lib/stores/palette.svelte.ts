/**
 * The command palette (Ctrl+K): every action of the console as a searchable command —
 * navigation, deciding each pending approval, the incident switch, evals, smoke tests,
 * theme and profiles. Denied actions are listed, disabled, with the reason.
 */
import type { ActionId } from '../ipc';
import { approvals } from './approvals.svelte';
import { evals } from './evals.svelte';
import { incident } from './incident.svelte';
import { permissions, type Allowance } from './permissions.svelte';
import { preferences } from './preferences.svelte';
import { profiles } from './profiles.svelte';
import { ROUTES, router } from './router.svelte';
import { smoke } from './smoke.svelte';

export interface PaletteCommand {
  id: string;
  title: string;
  group: 'Go to' | 'Approvals' | 'Actions' | 'Preferences';
  /** Extra words to match on. */
  keywords: string;
  shortcut: string | null;
  allowance: Allowance;
  run: () => void;
}

const OK: Allowance = { allowed: true, reason: null };

function guarded(action: ActionId): Allowance {
  return permissions.can(action);
}

/** Whether every word of `query` occurs in the command's title or keywords. */
export function matches(c: PaletteCommand, query: string): boolean {
  const hay = `${c.title} ${c.keywords} ${c.group}`.toLowerCase();
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== '')
    .every((w) => hay.includes(w));
}

function decideCommand(id: string, label: string, mode: 'approve' | 'reject'): PaletteCommand {
  return {
    id: `${mode}:${id}`,
    title: `${mode === 'approve' ? 'Approve' : 'Reject'} ${id}`,
    group: 'Approvals',
    keywords: `${label} decision`,
    shortcut: mode === 'approve' ? 'a' : 'r',
    allowance: guarded(mode),
    run: () => {
      router.go('approvals');
      approvals.open();
      if (approvals.tab !== 'pending') approvals.setTab('pending');
      approvals.select(id);
      approvals.startDecision(mode);
    },
  };
}

class Palette {
  isOpen = $state(false);

  open(): void {
    this.isOpen = true;
  }

  close(): void {
    this.isOpen = false;
  }

  commands(): PaletteCommand[] {
    const out: PaletteCommand[] = ROUTES.map((r) => ({
      id: `go:${r.id}`,
      title: `Go to ${r.title.toLowerCase()}`,
      group: 'Go to' as const,
      keywords: r.id,
      shortcut: `g ${r.key}`,
      allowance: OK,
      run: () => router.go(r.id),
    }));
    for (const a of approvals.pending.data ?? []) {
      const label = `${a.tool} ${a.resource}`;
      out.push(decideCommand(a.id, label, 'approve'), decideCommand(a.id, label, 'reject'));
    }
    out.push(
      {
        id: 'audit:verify',
        title: 'Verify audit chain',
        group: 'Approvals',
        keywords: 'hash integrity',
        shortcut: null,
        allowance: guarded('verify_audit'),
        run: () => {
          router.go('approvals');
          void approvals.audit.refresh();
        },
      },
      incident.frozen
        ? {
            id: 'incident:unfreeze',
            title: 'Unfreeze writes',
            group: 'Actions',
            keywords: 'incident switch resume',
            shortcut: null,
            allowance: guarded('unfreeze_writes'),
            run: () => {
              incident.dialog = 'unfreeze';
            },
          }
        : {
            id: 'incident:freeze',
            title: 'Freeze writes (incident switch)',
            group: 'Actions',
            keywords: 'incident kill switch pause rollouts export pack',
            shortcut: null,
            allowance: guarded('incident_switch'),
            run: () => {
              incident.dialog = 'freeze';
            },
          },
      {
        id: 'smoke:run',
        title: 'Run smoke tests',
        group: 'Actions',
        keywords: 'ollama suite local model',
        shortcut: null,
        allowance: guarded('run_smoke'),
        run: () => {
          router.go('smoke');
          void smoke.open().then(() => smoke.runSuite());
        },
      },
      {
        id: 'smoke:discover',
        title: 'Discover local Ollama',
        group: 'Actions',
        keywords: 'smoke models refresh',
        shortcut: null,
        allowance: OK,
        run: () => {
          router.go('smoke');
          void smoke.discover();
        },
      },
    );
    for (const s of evals.suites.data ?? [{ name: 'golden' }, { name: 'adversarial' }]) {
      out.push({
        id: `eval:${s.name}`,
        title: `Start eval ${s.name}`,
        group: 'Actions',
        keywords: 'run suite gate',
        shortcut: null,
        allowance: guarded('start_eval'),
        run: () => {
          router.go('evals');
          void evals.open();
          void evals.startRun(s.name);
        },
      });
    }
    out.push({
      id: 'theme:toggle',
      title: preferences.theme === 'dark' ? 'Switch to light theme' : 'Switch to dark theme',
      group: 'Preferences',
      keywords: 'theme appearance colour color mode',
      shortcut: null,
      allowance: OK,
      run: () => void preferences.toggleTheme(),
    });
    const list = profiles.list.data;
    for (const p of list?.profiles ?? []) {
      if (p.id === list?.active_id || p.kind !== 'agent') continue;
      out.push({
        id: `profile:${p.id}`,
        title: `Connect to ${p.name}`,
        group: 'Preferences',
        keywords: `profile switch ${p.url ?? ''}`,
        shortcut: null,
        allowance: guarded('manage_profiles'),
        run: () => void profiles.use(p.id),
      });
    }
    return out;
  }
}

export const palette = new Palette();
