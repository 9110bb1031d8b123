/** How a smoke check's measurement reads in the table: a short label and its value. */
import type { Measurement } from '../../ipc';
import { bytes, duration, fixed, usd } from '../../format';

/** Labels of the measurements the suite takes, by their stable names. */
const LABELS: Record<string, string> = {
  latency: 'latency',
  models: 'models',
  pull_time: 'pull time',
  size: 'size',
  layers: 'layers',
  time_to_first_token: 'first answer token',
  thinking_time: 'thinking time',
  thinking_tokens: 'thinking tokens',
  tokens_per_second: 'throughput',
  total: 'total',
  cold_load: 'cold load',
  warm_load: 'warm load',
  in_vram: 'in VRAM',
  round_trip: 'round trip',
  tokens: 'tokens',
  cost: 'cost',
};

export function measurementLabel(m: Measurement): string {
  return LABELS[m.name] ?? m.name.replaceAll('_', ' ');
}

export function measurementValue(m: Measurement): string {
  switch (m.unit) {
    case 'ms':
      return duration(m.value);
    case 'bytes':
      return bytes(m.value);
    case 'USD':
      return usd(m.value);
    case '%':
      return `${fixed(m.value, 0)} %`;
    default:
      return `${fixed(m.value, m.value % 1 === 0 ? 0 : 1)} ${m.unit}`;
  }
}
