/** Number, time and size formatting for dense tables and cards (en-US, tabular). */

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : int.format(n);
}

export function fixed(n: number | null | undefined, digits = 1): string {
  return n === null || n === undefined ? '—' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A 0..1 fraction as a percentage. */
export function percent(f: number | null | undefined, digits = 1): string {
  return f === null || f === undefined ? '—' : `${(f * 100).toFixed(digits)} %`;
}

export function usd(n: number | null | undefined, digits = 2): string {
  if (n === null || n === undefined) return '—';
  if (n > 0 && n < 0.01 && digits <= 2) return `$${n.toFixed(4)}`;
  return `$${n.toFixed(digits)}`;
}

/** Milliseconds as `184 ms`, `6.2 s`, `1 m 04 s`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return `${m} m ${String(s).padStart(2, '0')} s`;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

/** `3 s ago`, `14 min ago`, `2 h ago`, `5 d ago`. */
export function ago(ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined) return '—';
  const d = Math.max(0, now - ms);
  if (d < 60_000) return `${Math.floor(d / 1000)} s ago`;
  if (d < 3_600_000) return `${Math.floor(d / 60_000)} min ago`;
  if (d < 86_400_000) return `${Math.floor(d / 3_600_000)} h ago`;
  return `${Math.floor(d / 86_400_000)} d ago`;
}

/** Remaining time as `14:32` (or `1:02:03`); `expired` at or below zero. */
export function countdown(remainingMs: number): string {
  if (remainingMs <= 0) return 'expired';
  const total = Math.floor(remainingMs / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(s).padStart(2, '0')}`;
}

const timeFmt = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const dateTimeFmt = new Intl.DateTimeFormat('en-GB', { day: '2-digit', month: 'short', hour: '2-digit', minute: '2-digit', hour12: false });

export function clockTime(ms: number): string {
  return timeFmt.format(ms);
}

export function dateTime(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '—' : dateTimeFmt.format(ms);
}

const hourMinuteFmt = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hour12: false });

/** A moment as `14:10` (local time). */
export function hourMinute(ms: number): string {
  return hourMinuteFmt.format(ms);
}
