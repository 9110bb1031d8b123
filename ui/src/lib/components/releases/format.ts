/** Formatting of release metrics and states for the Releases view. */
import { duration, usd } from '../../format';
import type { MetricName, ReleaseState } from '../../ipc/releases';

export const METRIC_NAMES: Record<MetricName, string> = {
  success_rate: 'Success rate',
  error_rate: 'Error rate',
  p95_latency_ms: 'p95 latency',
  cost_per_success_usd: 'Cost per success',
  guardrail_block_rate: 'Guardrail block rate',
};

/** A metric's value in its unit: rates as percentages, latency as a duration, cost in dollars. */
export function metricValue(metric: MetricName, v: number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  if (metric === 'p95_latency_ms') return duration(v);
  if (metric === 'cost_per_success_usd') return usd(v, 4);
  return `${(v * 100).toFixed(2)} %`;
}

export const STATE_LABEL: Record<ReleaseState, string> = {
  waiting_decision: 'waiting for a decision',
  progressing: 'progressing',
  paused: 'paused',
  complete: 'complete',
  aborted: 'aborted',
  idle: 'no canary',
};

export const STATE_TONE: Record<ReleaseState, string> = {
  waiting_decision: 'warn',
  progressing: 'info',
  paused: 'warn',
  complete: 'ok',
  aborted: 'danger',
  idle: 'outline',
};
