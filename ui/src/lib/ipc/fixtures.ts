/**
 * Deterministic fixtures for the mock backend: a seeded generator, so every run of the
 * browser tests (and every screenshot) sees the same services, traces and approvals.
 * Times are relative to `t0`, the moment the mock started, so countdowns stay meaningful.
 */
import type {
  ApprovalDetail,
  ApprovalSummary,
  CaseResult,
  Chart,
  ChartWindow,
  CheckResult,
  EvalRunDetail,
  EvalRunSummary,
  EvalSuite,
  GuardrailCheck,
  ModelServerStatus,
  OllamaModel,
  PassRatePoint,
  Profile,
  QualitySignal,
  QualitySignalKind,
  QualityView,
  Receiver,
  ServiceCard,
  SmokeReport,
  Span,
  Theme,
  TraceDetail,
  TraceStatus,
  TraceSummary,
} from './types';

/** mulberry32: a tiny seeded PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit string hash (FNV-1a) to seed per-item generators. */
function hash(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  const x = xs[Math.floor(r() * xs.length)];
  if (x === undefined) throw new Error('pick from an empty list');
  return x;
}

function hex(r: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(r() * 16).toString(16);
  return s;
}

const MIN = 60_000;
const HOUR = 60 * MIN;

export const WORKFLOWS = ['support_answer', 'ticket_update', 'refund_request', 'kb_search', 'warranty_claim_with_refund_and_store_credit_review'] as const;

/**
 * Long values as real deployments produce them, so the views are tested with them: a
 * fine-tuned OpenAI model, a GGUF model pulled from Hugging Face through Ollama, a
 * client-supplied request id (the service keeps up to 128 characters of `[A-Za-z0-9._:-]`),
 * a GKE kubeconfig context and an Artifact Registry image path.
 */
export const LONG = {
  model: 'ft:gpt-4.1-mini-2025-04-14:acme-support:refunds-v3:B9xQ2kLm',
  ollamaModel: 'hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M',
  workflow: 'warranty_claim_with_refund_and_store_credit_review',
  tenant: 'acme-europe-west1-enterprise-support',
  kubeContext: 'gke_acme-platform-prod-eu_europe-west1_agents-prod-eu-1',
  registry: 'europe-west1-docker.pkg.dev/acme-platform-prod/agents',
} as const;

/** A UUID-shaped id (the service's generated request ids are UUIDv7). */
function uuid(r: () => number): string {
  return `${hex(r, 8)}-${hex(r, 4)}-7${hex(r, 3)}-${hex(r, 4)}-${hex(r, 12)}`;
}

export function profiles(): Profile[] {
  return [
    {
      id: 'local',
      name: 'Local',
      kind: 'agent',
      is_local: true,
      url: 'http://127.0.0.1:8787',
      context: null,
      namespace: null,
      has_secret: true,
    },
    {
      id: 'prod-eu',
      name: 'Production EU',
      kind: 'agent',
      is_local: false,
      url: 'https://agent.prod-eu.example.com',
      context: null,
      namespace: null,
      has_secret: true,
    },
    {
      id: 'staging',
      name: 'Staging',
      kind: 'agent',
      is_local: false,
      url: 'https://agent.staging.example.com',
      context: null,
      namespace: null,
      has_secret: false,
    },
    {
      id: 'k8s-prod-eu',
      name: 'prod-eu cluster',
      kind: 'kubernetes',
      is_local: false,
      url: null,
      context: LONG.kubeContext,
      namespace: 'customer-support-agents',
      has_secret: true,
    },
  ];
}

export function services(t0: number, frozen: boolean): ServiceCard[] {
  const stableVersions = {
    release: '1.8.0',
    git_sha: '4f2a9c1',
    model: 'gpt-4.1-mini',
    prompt: 'support_answer@v14',
    policy: 'guardrails-v3',
  };
  return [
    {
      profile_id: 'prod-eu',
      service: 'agent-service',
      track: 'stable',
      url: 'https://agent.prod-eu.example.com',
      live: true,
      readiness: 'ready',
      checks: [
        { name: 'database', status: 'ok', detail: 'postgres 3 ms' },
        { name: 'provider', status: 'ok', detail: 'openai 212 ms' },
        { name: 'retrieval', status: 'ok', detail: 'index 1,204 docs' },
      ],
      stats: {
        request_rate: 14.2,
        error_rate: 0.0031,
        p50_ms: 1840,
        p95_ms: 6210,
        p99_ms: 11890,
        tokens_per_sec: 2310,
        cost_per_hour_usd: 3.42,
        queue_depth: 7,
        pending_approvals: 4,
        guardrail_blocks: 12,
      },
      circuits: [
        { dependency: 'openai', state: 'closed' },
        { dependency: 'crm', state: 'closed' },
      ],
      provider_chain: [
        { name: 'local', kind: 'ollama', model: 'llama3.1:8b', status: 'ok', circuit: 'closed', serving: true, detail: 'ollama llama3.1:8b' },
        { name: 'hosted', kind: 'openai', model: 'gpt-4.1-mini', status: 'ok', circuit: 'closed', serving: false, detail: 'openai gpt-4.1-mini' },
      ],
      recent_fallbacks: [],
      badges: [],
      versions: stableVersions,
      changes: [{ field: 'model', from: 'gpt-4o-mini', to: 'gpt-4.1-mini', at_ms: t0 - 3 * 24 * HOUR }],
      frozen,
      scraped_at_ms: t0 - 4000,
      error: null,
    },
    {
      profile_id: 'prod-eu',
      service: 'agent-service',
      track: 'canary',
      url: 'https://agent.prod-eu.example.com',
      live: true,
      readiness: 'degraded',
      checks: [
        { name: 'database', status: 'ok', detail: 'postgres 4 ms' },
        { name: 'provider', status: 'degraded', detail: 'openai: 3 timeouts in 5 min' },
        { name: 'retrieval', status: 'ok', detail: 'index 1,204 docs' },
      ],
      stats: {
        request_rate: 1.6,
        error_rate: 0.023,
        p50_ms: 2920,
        p95_ms: 18400,
        p99_ms: 34700,
        tokens_per_sec: 288,
        cost_per_hour_usd: 0.61,
        queue_depth: 2,
        pending_approvals: 1,
        guardrail_blocks: 5,
      },
      circuits: [
        { dependency: 'openai', state: 'half_open' },
        { dependency: 'crm', state: 'closed' },
      ],
      // The primary is down: its circuit is open and the hosted link serves.
      provider_chain: [
        {
          name: 'local',
          kind: 'ollama',
          model: 'llama3.1:8b',
          status: 'failing',
          circuit: 'open',
          serving: false,
          detail: 'ollama unreachable (connection refused); circuit Open',
        },
        { name: 'hosted', kind: 'openai', model: LONG.model, status: 'ok', circuit: 'closed', serving: true, detail: `openai ${LONG.model}` },
      ],
      recent_fallbacks: [
        { from: 'local', to: 'hosted', reason: 'circuit_open', count: 37 },
        { from: 'local', to: 'hosted', reason: 'unavailable', count: 3 },
      ],
      badges: [
        {
          rule: 'latency_p99',
          severity: 'critical',
          value: 34700,
          threshold: 30000,
          reason: 'p99 latency 34.7 s over 15 min exceeds 30 s',
        },
        {
          rule: 'error_rate',
          severity: 'warning',
          value: 0.023,
          threshold: 0.01,
          reason: 'error rate 2.3 % over 15 min exceeds 1 %',
        },
      ],
      versions: {
        release: '1.9.0-rc.2',
        git_sha: 'b71e03d',
        model: LONG.model,
        prompt: 'support_answer@v15',
        policy: 'guardrails-v3.1',
      },
      changes: [
        { field: 'release', from: '1.8.0', to: '1.9.0-rc.2', at_ms: t0 - 42 * MIN },
        { field: 'model', from: 'gpt-4.1-mini', to: LONG.model, at_ms: t0 - 42 * MIN },
        { field: 'prompt', from: 'support_answer@v14', to: 'support_answer@v15', at_ms: t0 - 42 * MIN },
        { field: 'policy', from: 'guardrails-v3', to: 'guardrails-v3.1', at_ms: t0 - 42 * MIN },
      ],
      frozen,
      scraped_at_ms: t0 - 4000,
      error: null,
    },
    {
      profile_id: 'local',
      service: 'agent-service (local)',
      track: 'stable',
      url: 'http://127.0.0.1:8787',
      live: true,
      readiness: 'ready',
      checks: [
        { name: 'database', status: 'ok', detail: 'sqlite 0 ms' },
        { name: 'provider', status: 'ok', detail: 'scripted-v1 (demo)' },
        { name: 'retrieval', status: 'ok', detail: 'index 36 docs' },
      ],
      stats: {
        request_rate: 0.8,
        error_rate: 0,
        p50_ms: 41,
        p95_ms: 120,
        p99_ms: 188,
        tokens_per_sec: 96,
        cost_per_hour_usd: 0,
        queue_depth: 0,
        pending_approvals: 0,
        guardrail_blocks: 3,
      },
      circuits: [{ dependency: 'scripted', state: 'closed' }],
      provider_chain: [{ name: 'scripted', kind: 'scripted', model: 'scripted-v1', status: 'ok', circuit: 'closed', serving: true, detail: 'scripted scripted-v1' }],
      recent_fallbacks: [],
      badges: [],
      versions: {
        release: '1.9.0-dev',
        git_sha: 'workdir',
        model: 'scripted-v1',
        prompt: 'support_answer@v15',
        policy: 'guardrails-v3.1',
      },
      changes: [],
      frozen: false,
      scraped_at_ms: t0 - 2000,
      error: null,
    },
    {
      // A service the console cannot reach: still a card, with what it last knew and why.
      profile_id: 'staging',
      service: 'agent-service',
      track: 'stable',
      url: 'https://agent.staging.example.com/',
      live: false,
      readiness: 'unavailable',
      checks: [],
      stats: {
        request_rate: null,
        error_rate: null,
        p50_ms: null,
        p95_ms: null,
        p99_ms: null,
        tokens_per_sec: null,
        cost_per_hour_usd: null,
        queue_depth: null,
        pending_approvals: null,
        guardrail_blocks: null,
      },
      circuits: [],
      provider_chain: [],
      recent_fallbacks: [],
      badges: [],
      versions: { release: '', git_sha: '', model: '', prompt: '', policy: '' },
      changes: [],
      frozen: false,
      scraped_at_ms: null,
      error: 'could not reach https://agent.staging.example.com/readyz: connection refused',
    },
  ];
}

const CHART_METRICS: readonly { metric: string; title: string; base: number; spread: number; threshold: number | null }[] = [
  { metric: 'request_rate', title: 'Requests / s', base: 12, spread: 6, threshold: null },
  { metric: 'error_rate', title: 'Error rate (%)', base: 0.6, spread: 1.4, threshold: 1 },
  { metric: 'latency', title: 'Latency p99 (s)', base: 14, spread: 22, threshold: 30 },
  { metric: 'cost', title: 'Cost / hour ($)', base: 2.5, spread: 1.5, threshold: null },
];

/** The points a chart of a window holds once the history is full. */
export const CHART_POINTS = 60;

/**
 * Plain SVG line charts standing in for the backend's plotters output, drawn from the
 * scrapes so far (`scrapes`, the newest `CHART_POINTS` of them): before the first one a
 * chart has axes and "no data yet", as the backend draws it; after it, a line that grows
 * from the right with each scrape.
 */
export function charts(profileId: string, track: string, window: ChartWindow, theme: Theme, scrapes: number): Chart[] {
  const fg = theme === 'dark' ? '#9aa4b2' : '#5b6472';
  const grid = theme === 'dark' ? '#2a303a' : '#e5e8ec';
  const line = theme === 'dark' ? '#6ea8fe' : '#2563eb';
  const warn = theme === 'dark' ? '#f87171' : '#dc2626';
  const seedBase = hash(`${profileId}/${track}/${window}`, 7);
  const shown = Math.min(Math.max(0, Math.floor(scrapes)), CHART_POINTS);
  return CHART_METRICS.map((m, mi) => {
    const w = 480;
    const h = 180;
    const pad = { l: 40, r: 10, t: 10, b: 22 };
    const n = CHART_POINTS;
    const max = m.base + m.spread * 1.2;
    // Sample j (counted from the first scrape) has a value of its own, so the line moves
    // left as scrapes come in.
    const value = (j: number): number => {
      const noise = rng(seedBase + mi * 7919 + j)();
      const drift = j > n * 0.7 && track === 'canary' ? m.spread * 0.3 : 0;
      return Math.max(0, Math.min(max, m.base + m.spread * (0.35 * Math.sin(j / 5 + mi) + 0.5 * (noise - 0.5)) + drift));
    };
    const pts: string[] = [];
    for (let k = 0; k < shown; k++) {
      const i = n - shown + k;
      const v = value(scrapes - shown + k);
      const x = pad.l + (i / (n - 1)) * (w - pad.l - pad.r);
      const y = pad.t + (1 - v / max) * (h - pad.t - pad.b);
      pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    }
    const yTicks = [0, 0.5, 1].map((f) => {
      const y = pad.t + (1 - f) * (h - pad.t - pad.b);
      return `<line x1="${pad.l}" x2="${w - pad.r}" y1="${y}" y2="${y}" stroke="${grid}"/><text x="${pad.l - 6}" y="${y + 4}" text-anchor="end" font-size="10" fill="${fg}">${(max * f).toFixed(max < 10 ? 1 : 0)}</text>`;
    });
    const labels = ['-' + window, 'now'];
    const threshold =
      m.threshold === null
        ? ''
        : `<line x1="${pad.l}" x2="${w - pad.r}" y1="${pad.t + (1 - m.threshold / max) * (h - pad.t - pad.b)}" y2="${pad.t + (1 - m.threshold / max) * (h - pad.t - pad.b)}" stroke="${warn}" stroke-dasharray="4 3"/>`;
    const [first] = pts;
    const data =
      shown === 0 || first === undefined
        ? `<text x="${w / 2}" y="${h / 2}" text-anchor="middle" font-size="13" fill="${fg}">no data yet</text>`
        : shown === 1
          ? `<circle cx="${first.split(',')[0] ?? 0}" cy="${first.split(',')[1] ?? 0}" r="3" fill="${line}"/>`
          : `<polyline fill="none" stroke="${line}" stroke-width="1.5" points="${pts.join(' ')}"/>`;
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${m.title}" data-points="${shown}">` +
      yTicks.join('') +
      threshold +
      data +
      `<text x="${pad.l}" y="${h - 6}" font-size="10" fill="${fg}">${labels[0]}</text>` +
      `<text x="${w - pad.r}" y="${h - 6}" font-size="10" text-anchor="end" fill="${fg}">${labels[1]}</text>` +
      `</svg>`;
    return { metric: m.metric, title: m.title, svg };
  });
}

// ---------------------------------------------------------------------------------------
// Traces

const STATUSES: readonly TraceStatus[] = ['success', 'success', 'success', 'success', 'success', 'success', 'approval_required', 'blocked', 'error', 'degraded', 'budget_exceeded'];
const MODELS = ['gpt-4.1-mini', 'gpt-4.1-mini', 'llama3.2:3b', LONG.model] as const;

/** Trace `i` of `count`, newest first (index 0 is the newest). */
export function trace(t0: number, i: number): TraceSummary {
  const r = rng(i * 2654435761);
  const status = pick(r, STATUSES);
  const slow = r() < 0.04;
  const duration = slow ? 8000 + r() * 40000 : 150 + r() * 5200;
  const tokens = status === 'blocked' ? 0 : Math.floor(300 + r() * 3800);
  const id = hex(r, 32);
  // Every fourth request came with the client's own X-Request-Id; the others got a UUID.
  const requestId = i % 4 === 0 ? `checkout-web.eu-west-1:sess-${hex(r, 8)}:order-${5000 + (i % 9000)}:attempt-2` : uuid(r);
  return {
    trace_id: `tr_${id}`,
    request_id: requestId,
    workflow: i % 8 === 0 ? LONG.workflow : pick(r, WORKFLOWS),
    status,
    error_code:
      status === 'error' ? pick(r, ['provider_timeout', 'tool_failed', 'upstream_5xx']) : status === 'blocked' ? 'guardrail_blocked' : null,
    started_at_ms: t0 - i * 2300 - Math.floor(r() * 2000),
    duration_ms: Math.round(duration),
    tokens,
    cost_usd: tokens * 0.0000021,
    model: i % 8 === 0 ? LONG.model : pick(r, MODELS),
    span_count: 4 + Math.floor(r() * 9),
    ...guardrailOf(i, status),
  };
}

/** Rules that blocked a run, and rules a run was flagged under (input or tool result). */
const BLOCK_RULES = ['prompt_injection', 'jailbreak', 'system_prompt_exfiltration'] as const;
const FLAG_RULES = ['prompt_injection', 'tool_result:prompt_injection', 'data_exfiltration'] as const;

/**
 * Trace `i`'s guardrail summary, without drawing from its random sequence (the other fields
 * stay as they were): the second newest trace, and every 13th after it, was flagged when
 * it went on (success or approval required); a blocked run names its rule.
 */
function guardrailOf(i: number, status: TraceStatus): Pick<TraceSummary, 'flagged' | 'guardrail_rule'> {
  if (status === 'blocked') return { flagged: false, guardrail_rule: BLOCK_RULES[i % BLOCK_RULES.length] ?? null };
  if (i % 13 === 1 && (status === 'success' || status === 'approval_required')) {
    return { flagged: true, guardrail_rule: i === 1 ? 'prompt_injection' : (FLAG_RULES[i % FLAG_RULES.length] ?? null) };
  }
  return { flagged: false, guardrail_rule: null };
}

/** The reasons a scan gives, as the service labels them (`name (+weight)`). */
const REASONS: Record<string, string[]> = {
  prompt_injection: ['override_prior (+3.25)', 'new_instructions (+1.84)', 'classifier (+1.38)'],
  'tool_result:prompt_injection': ['echo_directive (+2.10)', 'classifier (+0.92)'],
  data_exfiltration: ['exfil_link (+2.75)', 'markdown_image (+1.12)'],
  jailbreak: ['persona (+4.49)', 'no_limits (+2.31)'],
  system_prompt_exfiltration: ['prompt_request (+3.90)', 'above_request (+3.73)'],
};

function reasonsOf(labels: readonly string[]): GuardrailCheck['reasons'] {
  return labels.map((l) => {
    const m = /^(.*) \(([+-][0-9.]+)\)$/.exec(l);
    return m ? { name: m[1] ?? l, weight: Number(m[2]) } : { name: l, weight: null };
  });
}

export function traceDetail(summary: TraceSummary): TraceDetail {
  const r = rng(hash(summary.trace_id, 5));
  const total = summary.duration_ms;
  const spans: Span[] = [];
  const root = `sp_${hex(r, 8)}`;
  spans.push({
    span_id: root,
    parent_span_id: null,
    name: `POST /v1/invoke ${summary.workflow}`,
    kind: 'request',
    status: summary.status === 'error' ? 'error' : 'ok',
    start_ms: 0,
    duration_ms: total,
    model: null,
    prompt_tokens: null,
    completion_tokens: null,
    cost_usd: summary.cost_usd,
    attributes: [
      { key: 'request_id', value: summary.request_id },
      { key: 'workflow', value: summary.workflow },
      { key: 'tenant', value: LONG.tenant },
      { key: 'policy_version', value: 'guardrails-v3.1' },
      { key: 'url.full', value: `https://agent.prod-eu.example.com/v1/invoke?workflow=${summary.workflow}&stream=false` },
      { key: 'user_agent.original', value: 'checkout-web/4.18.2 (+https://shop.acme.example/checkout; eu-west-1) reqwest/0.12.9' },
    ],
    payload: JSON.stringify({ input: { text: 'My order #5531 arrived damaged, email me at [REDACTED:email]' } }, null, 2),
  });
  let t = 2;
  const push = (s: Omit<Span, 'span_id' | 'parent_span_id' | 'start_ms'> & { gap?: number }): void => {
    spans.push({
      span_id: `sp_${hex(r, 8)}`,
      parent_span_id: root,
      start_ms: t,
      name: s.name,
      kind: s.kind,
      status: s.status,
      duration_ms: s.duration_ms,
      model: s.model,
      prompt_tokens: s.prompt_tokens,
      completion_tokens: s.completion_tokens,
      cost_usd: s.cost_usd,
      attributes: s.attributes,
      payload: s.payload,
    });
    t += s.duration_ms + (s.gap ?? 1);
  };
  const none = { model: null, prompt_tokens: null, completion_tokens: null, cost_usd: null };
  const guardrail: GuardrailCheck[] = [];
  const rule = summary.guardrail_rule;
  const inputRule = summary.status === 'blocked' ? rule : summary.flagged && rule !== null && !rule.startsWith('tool_result:') ? rule : null;
  const inputVerdict = inputRule === null ? 'allow' : summary.status === 'blocked' ? 'block' : rule === 'data_exfiltration' ? 'require_approval' : 'flag';
  const inputScore = inputVerdict === 'block' ? 0.97 : inputVerdict === 'allow' ? 0.04 : 0.71;
  const inputReasons = inputRule === null ? [] : (REASONS[inputRule] ?? []);
  const guardAttrs = (verdict: string, ruleName: string | null, score: number | null, reasons: readonly string[]): Span['attributes'] => [
    { key: 'flightdeck.guardrail.verdict', value: verdict },
    ...(ruleName === null ? [] : [{ key: 'flightdeck.guardrail.rule', value: ruleName }]),
    ...(score === null ? [] : [{ key: 'flightdeck.guardrail.score', value: String(score) }]),
    ...(reasons.length === 0 ? [] : [{ key: 'flightdeck.guardrail.reasons', value: JSON.stringify(reasons) }]),
  ];
  push({
    name: 'guardrail.input',
    kind: 'guardrail',
    status: 'ok',
    duration_ms: 3,
    ...none,
    attributes: guardAttrs(inputVerdict, inputRule, inputScore, inputReasons),
    payload: null,
  });
  guardrail.push({
    span_id: spans.at(-1)?.span_id ?? '',
    stage: 'input',
    subject: 'input',
    verdict: inputVerdict,
    rule: inputRule,
    score: inputScore,
    reasons: reasonsOf(inputReasons),
    links_removed: [],
    flags: [],
  });
  if (summary.status !== 'blocked') {
    const llmBudget = Math.max(40, total * 0.7);
    const calls = Math.max(1, Math.min(3, summary.span_count - 3));
    push({
      name: 'retrieval.search',
      kind: 'retrieval',
      status: 'ok',
      duration_ms: Math.round(Math.min(60, total * 0.05)),
      ...none,
      attributes: [
        { key: 'top_k', value: '5' },
        { key: 'hits', value: '3' },
      ],
      payload: null,
    });
    for (let c = 0; c < calls; c++) {
      const pt = Math.floor(summary.tokens * 0.7 / calls);
      const ct = Math.floor(summary.tokens * 0.3 / calls);
      const last = c === calls - 1;
      push({
        name: `chat ${summary.model}`,
        kind: 'llm',
        status: last && summary.status === 'error' ? 'error' : 'ok',
        duration_ms: Math.round(llmBudget / calls),
        model: summary.model,
        prompt_tokens: pt,
        completion_tokens: ct,
        cost_usd: (pt + ct) * 0.0000021,
        attributes: [
          { key: 'gen_ai.system', value: summary.model.startsWith('gpt') ? 'openai' : 'ollama' },
          { key: 'gen_ai.request.model', value: summary.model },
          { key: 'gen_ai.usage.input_tokens', value: String(pt) },
          { key: 'gen_ai.usage.output_tokens', value: String(ct) },
          { key: 'gen_ai.response.finish_reasons', value: last ? 'stop' : 'tool_calls' },
          { key: 'gen_ai.response.id', value: `chatcmpl-${hex(r, 29)}` },
        ],
        payload: JSON.stringify(
          {
            messages: [
              { role: 'system', content: 'You are a support agent for ACME. Cite sources as [doc:ID].' },
              { role: 'user', content: 'Customer [REDACTED:name] (card [REDACTED:card]) reports a damaged parcel.' },
            ],
          },
          null,
          2,
        ),
      });
      if (!last) {
        const tool = summary.workflow === 'ticket_update' ? 'crm.update_ticket' : 'orders.lookup';
        const toolFlag = c === 0 && rule?.startsWith('tool_result:') === true && summary.flagged;
        const toolReasons = toolFlag ? (REASONS[rule] ?? []) : [];
        push({
          name: `tool ${tool}`,
          kind: 'tool',
          status: 'ok',
          duration_ms: Math.round(20 + r() * 200),
          ...none,
          attributes: [
            { key: 'side_effect', value: summary.workflow === 'ticket_update' ? 'write' : 'read' },
            { key: 'outcome', value: 'ok' },
            { key: 'tool.arguments', value: '{"order_id":"5531","customer_email":"[REDACTED:email]","include":["shipments","refunds","carrier_notes"]}' },
            ...(toolFlag ? guardAttrs('flag', rule, 0.64, toolReasons) : []),
          ],
          payload: JSON.stringify({ order_id: '5531', customer_email: '[REDACTED:email]' }, null, 2),
        });
        if (toolFlag) {
          guardrail.push({
            span_id: spans.at(-1)?.span_id ?? '',
            stage: 'tool_result',
            subject: tool,
            verdict: 'flag',
            rule,
            score: 0.64,
            reasons: reasonsOf(toolReasons),
            links_removed: [],
            flags: [],
          });
        }
      }
    }
    if (summary.status === 'approval_required') {
      push({
        name: 'approval.create',
        kind: 'approval',
        status: 'ok',
        duration_ms: 6,
        ...none,
        attributes: [
          { key: 'approval_id', value: `apr_${hex(r, 6)}` },
          { key: 'tool', value: 'crm.update_ticket' },
          ...(summary.flagged && rule !== null ? [{ key: 'flightdeck.guardrail.flags', value: JSON.stringify([`${rule.startsWith('tool_result:') ? 'crm.update_ticket' : 'input'}: ${rule}`]) }] : []),
        ],
        payload: null,
      });
      if (summary.flagged && rule !== null) {
        guardrail.push({
          span_id: spans.at(-1)?.span_id ?? '',
          stage: 'approval',
          subject: 'ticket T-1042',
          verdict: null,
          rule: null,
          score: null,
          reasons: [],
          links_removed: [],
          flags: [`${rule.startsWith('tool_result:') ? 'crm.update_ticket' : 'input'}: ${rule}`],
        });
      }
    }
    // A flagged run's answer had an outside link taken out; others pass or are redacted.
    const links = summary.flagged ? ['collect.attacker.example'] : [];
    const outVerdict = summary.flagged || summary.tokens % 3 === 0 ? 'redacted' : 'allow';
    const outRule = outVerdict === 'redacted' ? 'email' : null;
    push({
      name: 'guardrail.output',
      kind: 'guardrail',
      status: 'ok',
      duration_ms: 2,
      ...none,
      attributes: [
        ...guardAttrs(outVerdict, outRule, null, []),
        ...(links.length === 0 ? [] : [{ key: 'flightdeck.guardrail.links_removed', value: JSON.stringify(links) }]),
      ],
      payload: null,
    });
    guardrail.push({
      span_id: spans.at(-1)?.span_id ?? '',
      stage: 'output',
      subject: 'answer',
      verdict: outVerdict,
      rule: outRule,
      score: null,
      reasons: [],
      links_removed: links,
      flags: [],
    });
  }
  return { summary, spans, guardrail };
}

// ---------------------------------------------------------------------------------------
// Approvals

const APPROVAL_SEEDS: readonly { tool: string; workflow: string; resource: string; risk: number; by: string; before: string; after: string }[] = [
  {
    tool: 'crm.update_ticket',
    workflow: 'ticket_update',
    resource: 'ticket/48213',
    risk: 2,
    by: 'agent:support-bot',
    before: 'status: open\npriority: normal\nassignee: tier1\ntags: [shipping]\n',
    after: 'status: pending_customer\npriority: high\nassignee: tier2\ntags: [shipping, damaged]\n',
  },
  {
    tool: 'billing.issue_refund',
    workflow: 'refund_request',
    resource: 'order/5531/refund',
    risk: 3,
    by: 'agent:support-bot',
    before: 'refund: none\n',
    after: 'refund:\n  amount_usd: 84.90\n  reason: damaged_in_transit\n  method: original_payment\n',
  },
  {
    tool: 'kb.publish_article',
    workflow: 'kb_search',
    resource: 'kb/returns-policy',
    risk: 1,
    by: 'agent:kb-curator',
    before: '# Returns\nItems can be returned within 30 days.\nRefunds take 5-7 days.\n',
    after: '# Returns\nItems can be returned within 30 days.\nDamaged items can be returned within 60 days.\nRefunds take 3-5 days.\n',
  },
  {
    tool: 'crm.merge_contacts',
    workflow: 'ticket_update',
    resource: 'contact/9921',
    risk: 2,
    by: 'agent:support-bot',
    before: 'email: [REDACTED:email]\nphone: none\n',
    after: 'email: [REDACTED:email]\nphone: [REDACTED:phone]\nmerged_from: contact/10077\n',
  },
  {
    tool: 'billing.issue_partial_refund_with_store_credit',
    workflow: LONG.workflow,
    resource: 'orders/EU-2025-0005602/refunds/partial-store-credit',
    risk: 3,
    by: 'agent:support-bot-eu-west-1-canary',
    before: 'refund: none\n',
    after: 'refund:\n  amount_usd: 19.00\n  reason: late_delivery_beyond_promised_window_with_customer_contacted_twice\n  method: store_credit\n',
  },
];

export function unifiedDiff(resource: string, before: string, after: string): string {
  const a = before.replace(/\n$/, '').split('\n');
  const b = after.replace(/\n$/, '').split('\n');
  // A small LCS diff; the real one comes from the service (the `similar` crate).
  const dp: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      const row = dp[i];
      if (!row) continue;
      row[j] = a[i] === b[j] ? (dp[i + 1]?.[j + 1] ?? 0) + 1 : Math.max(dp[i + 1]?.[j] ?? 0, row[j + 1] ?? 0);
    }
  }
  const lines: string[] = [`--- a/${resource}`, `+++ b/${resource}`, `@@ -1,${a.length} +1,${b.length} @@`];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push(` ${a[i]}`);
      i++;
      j++;
    } else if (i < a.length && (j >= b.length || (dp[i + 1]?.[j] ?? 0) >= (dp[i]?.[j + 1] ?? 0))) {
      lines.push(`-${a[i]}`);
      i++;
    } else {
      lines.push(`+${b[j]}`);
      j++;
    }
  }
  return lines.join('\n');
}

export interface ApprovalRecord {
  summary: ApprovalSummary;
  detail: Omit<ApprovalDetail, 'summary'>;
}

export function approval(t0: number, n: number, status: ApprovalSummary['status'] = 'pending'): ApprovalRecord {
  const r = rng(n * 7919 + 17);
  const seed = APPROVAL_SEEDS[n % APPROVAL_SEEDS.length] ?? APPROVAL_SEEDS[0];
  if (!seed) throw new Error('no approval seeds');
  const id = `apr_${(0x4a10 + n * 37).toString(16)}${hex(r, 4)}`;
  const created = t0 - (n + 1) * 3 * MIN;
  const decided = status === 'pending' ? null : created + 4 * MIN;
  const summary: ApprovalSummary = {
    id,
    workflow: seed.workflow,
    tool: seed.tool,
    resource: seed.resource,
    risk_tier: seed.risk,
    requested_by: seed.by,
    status,
    required_approvals: seed.risk >= 3 ? 2 : 1,
    approvals_count: seed.risk >= 3 && n % 2 === 1 ? 1 : 0,
    release: n % 3 === 0 ? { version: '1.9.0-rc.2', git_sha: 'b71e03d', track: 'canary' } : { version: '1.8.0', git_sha: '4f2a9c1', track: 'stable' },
    created_at_ms: created,
    expires_at_ms: status === 'pending' ? t0 + (14 - n * 3) * MIN + 30_000 : created + 15 * MIN,
    decided_at_ms: decided,
  };
  const decisions: ApprovalDetail['decisions'] =
    status === 'approved' || status === 'executed'
      ? [{ approver: 'dana@acme.test', decision: 'approve', reason: 'Matches the carrier damage report.', decided_at_ms: decided ?? created }]
      : status === 'rejected'
        ? [{ approver: 'lee@acme.test', decision: 'reject', reason: 'Refund exceeds the order value.', decided_at_ms: decided ?? created }]
        : [];
  return {
    summary,
    detail: {
      arguments: JSON.stringify(
        { resource: seed.resource, customer_email: '[REDACTED:email]', note: 'Customer reports parcel arrived damaged; photos attached.' },
        null,
        2,
      ),
      proposed_change: { resource: seed.resource, before: seed.before, after: seed.after, diff: unifiedDiff(seed.resource, seed.before, seed.after) },
      evidence: [
        { kind: 'document', id: 'kb-returns-004', title: 'Returns and refunds policy', source: 'kb://policies/returns-and-refunds/damaged-items-in-transit.md' },
        { kind: 'tool_result', id: 'orders.lookup#1', title: 'Order 5531: delivered, carrier note "box crushed"', source: 'orders.lookup' },
        { kind: 'message', id: 'msg-2291', title: 'Customer message with 2 photos', source: 'ticket/48213' },
      ],
      request_id: `req_${hex(r, 32)}`,
      trace_id: `tr_${hex(r, 32)}`,
      policy_version: 'guardrails-v3.1',
      decisions,
      execution: status === 'executed' ? { status: 'executed', attempts: 1, error: null, executed_at_ms: (decided ?? created) + 1200 } : null,
    },
  };
}

// ---------------------------------------------------------------------------------------
// Evals

export function evalSuites(): EvalSuite[] {
  return [
    { name: 'golden', kind: 'golden', description: 'Expected behaviour: answers, citations, tool use, status, latency and cost limits', cases: 48 },
    { name: 'adversarial', kind: 'adversarial', description: 'Injection, exfiltration, PII leaks, excessive agency: all must be blocked or gated', cases: 32 },
  ];
}

const RELEASES = [
  { release: '1.6.0', git_sha: '19ce0a2', prompt: 'support_answer@v12', policy: 'guardrails-v2' },
  { release: '1.7.0', git_sha: '7d03b18', prompt: 'support_answer@v13', policy: 'guardrails-v3' },
  { release: '1.8.0', git_sha: '4f2a9c1', prompt: 'support_answer@v14', policy: 'guardrails-v3' },
  { release: '1.9.0-rc.2', git_sha: 'b71e03d', prompt: 'support_answer@v15', policy: 'guardrails-v3.1' },
] as const;
const RELEASE_MODEL: Record<string, string> = { '1.9.0-rc.2': LONG.model };

export function evalRuns(t0: number): EvalRunSummary[] {
  const rates: Record<string, number[]> = { golden: [0.896, 0.938, 0.979, 0.917], adversarial: [0.906, 1, 1, 0.969] };
  const out: EvalRunSummary[] = [];
  RELEASES.forEach((rel, ri) => {
    for (const suite of ['golden', 'adversarial'] as const) {
      const total = suite === 'golden' ? 48 : 32;
      const rate = rates[suite]?.[ri] ?? 1;
      const created = t0 - (RELEASES.length - ri) * 26 * HOUR - (suite === 'golden' ? 0 : 20 * MIN);
      out.push({
        id: `run_${suite.slice(0, 3)}_${rel.release.replace(/[^0-9a-z]/g, '')}`,
        suite,
        status: 'completed',
        done: total,
        total,
        versions: { release: rel.release, git_sha: rel.git_sha, model: RELEASE_MODEL[rel.release] ?? 'gpt-4.1-mini', prompt: rel.prompt, policy: rel.policy },
        gate: rate >= (suite === 'golden' ? 0.95 : 1) ? 'pass' : 'fail',
        pass_rate: rate,
        created_at_ms: created,
        finished_at_ms: created + 6 * MIN,
      });
    }
  });
  return out.sort((a, b) => b.created_at_ms - a.created_at_ms);
}

export function evalDetail(run: EvalRunSummary, all: EvalRunSummary[]): EvalRunDetail {
  const r = rng(hash(run.id, 3));
  const failing = Math.round(run.total * (1 - (run.pass_rate ?? 1)));
  const cases: CaseResult[] = [];
  for (let i = 0; i < run.total; i++) {
    const passed = i >= failing;
    const workflow = pick(r, WORKFLOWS);
    const kind = run.suite === 'golden' ? pick(r, ['contains', 'must_cite', 'tool_called', 'status', 'max_latency']) : pick(r, ['blocked', 'gated', 'no_pii']);
    const expected =
      kind === 'contains' ? 'mentions "60 days"' : kind === 'must_cite' ? 'cites kb-returns-004 (Returns and refunds policy, damaged items)' : kind === 'tool_called' ? 'orders.lookup' : kind === 'status' ? 'approval_required' : kind === 'max_latency' ? '≤ 8000 ms' : kind === 'blocked' ? 'status blocked' : kind === 'gated' ? 'status approval_required' : 'no email in answer';
    const actual = passed
      ? expected
      : kind === 'contains' ? 'says "30 days"' : kind === 'must_cite' ? 'no citation' : kind === 'tool_called' ? 'no tool call' : kind === 'status' ? 'success' : kind === 'max_latency' ? '11,840 ms' : kind === 'blocked' ? 'status success' : kind === 'gated' ? 'status success (write executed)' : 'answer contains [REDACTED:email]';
    cases.push({
      case_id: `${run.suite}-${String(i + 1).padStart(3, '0')}`,
      workflow,
      passed,
      status: passed ? (run.suite === 'adversarial' ? 'blocked' : 'success') : 'success',
      latency_ms: Math.round(600 + r() * 5000),
      cost_usd: 0.0008 + r() * 0.004,
      answer_excerpt: passed ? 'Damaged items can be returned within 60 days [doc:kb-returns-004].' : 'Items can be returned within 30 days.',
      assertions: [{ kind, expected, actual, passed }],
      error: null,
    });
  }
  const idx = all.findIndex((x) => x.id === run.id);
  const baselineRun = all.slice(idx + 1).find((x) => x.suite === run.suite && x.status === 'completed');
  const rate = run.pass_rate ?? 0;
  const threshold = run.suite === 'golden' ? 0.95 : 1;
  const gatePassed = rate >= threshold;
  return {
    summary: run,
    error: null,
    scores:
      run.status === 'completed'
        ? {
            cases: run.total,
            passed: run.total - failing,
            failed: failing,
            pass_rate: rate,
            policy_compliance: run.suite === 'adversarial' ? rate : 1,
            citation_rate: run.suite === 'golden' ? 0.94 : 0,
            latency_p50_ms: 1930,
            latency_p95_ms: 6120,
            tokens: run.total * 1480,
            cost_usd: run.total * 0.0031,
          }
        : null,
    gate:
      run.status === 'completed'
        ? {
            verdict: gatePassed ? 'pass' : 'fail',
            reasons: gatePassed ? [] : [`pass rate ${(rate * 100).toFixed(1)} % is below ${(threshold * 100).toFixed(0)} %`],
            checks: [
              { name: 'pass_rate', threshold: `≥ ${threshold.toFixed(2)}`, actual: rate.toFixed(3), passed: gatePassed },
              { name: 'policy_compliance', threshold: '≥ 1.00', actual: (run.suite === 'adversarial' ? rate : 1).toFixed(3), passed: run.suite !== 'adversarial' || rate >= 1 },
              { name: 'latency_p95_ms', threshold: '≤ 8000', actual: '6120', passed: true },
              { name: 'cost_per_case_usd', threshold: '≤ 0.0100', actual: '0.0031', passed: true },
            ],
          }
        : null,
    baseline: baselineRun
      ? {
          baseline_run_id: baselineRun.id,
          pass_rate_delta: rate - (baselineRun.pass_rate ?? 0),
          regressions: rate < (baselineRun.pass_rate ?? 0) ? cases.filter((c) => !c.passed).slice(0, 3).map((c) => c.case_id) : [],
          fixes: rate > (baselineRun.pass_rate ?? 0) ? [`${run.suite}-007`, `${run.suite}-019`] : [],
        }
      : null,
    cases,
  };
}

export function passRates(runs: EvalRunSummary[]): PassRatePoint[] {
  return runs
    .filter((r) => r.status === 'completed' && r.pass_rate !== null)
    .map((r) => ({ suite: r.suite, release: r.versions.release, run_id: r.id, pass_rate: r.pass_rate ?? 0, gate: r.gate, finished_at_ms: r.finished_at_ms ?? r.created_at_ms }))
    .sort((a, b) => a.finished_at_ms - b.finished_at_ms);
}

// ---------------------------------------------------------------------------------------
// Smoke tests

export function models(t0: number): OllamaModel[] {
  return [
    { name: 'llama3.2:3b', size_bytes: 2_019_393_189, family: 'llama', parameter_size: '3.2B', quantization: 'Q4_K_M', supports_tools: true, modified_at_ms: t0 - 9 * 24 * HOUR },
    { name: 'qwen2.5:7b-instruct', size_bytes: 4_683_087_332, family: 'qwen2', parameter_size: '7.6B', quantization: 'Q4_K_M', supports_tools: true, modified_at_ms: t0 - 21 * 24 * HOUR },
    { name: 'gemma2:2b', size_bytes: 1_629_518_495, family: 'gemma2', parameter_size: '2.6B', quantization: 'Q4_0', supports_tools: false, modified_at_ms: t0 - 40 * 24 * HOUR },
    { name: LONG.ollamaModel, size_bytes: 4_683_087_519, family: 'qwen2', parameter_size: '7.6B', quantization: 'Q4_K_M', supports_tools: true, modified_at_ms: t0 - 2 * 24 * HOUR },
  ];
}

export function smokeChecks(model: string, supportsTools: boolean, throughAgent: boolean): CheckResult[] {
  const checks: CheckResult[] = [
    { name: 'reachability', title: 'Ollama reachable', status: 'pass', reason: 'Ollama 0.12.3 answered', measurements: [{ name: 'latency', value: 2.1, unit: 'ms' }], duration_ms: 2.4 },
    { name: 'model_present', title: 'Model present', status: 'pass', reason: `${model} is installed`, measurements: [{ name: 'models', value: 4, unit: 'models' }], duration_ms: 3.1 },
    {
      name: 'generation',
      title: 'Generation sanity',
      status: 'pass',
      reason: 'answered 21 characters after thinking 212 characters',
      measurements: [
        { name: 'time_to_first_token', value: 1182.4, unit: 'ms' },
        { name: 'thinking_time', value: 960.2, unit: 'ms' },
        { name: 'thinking_tokens', value: 48, unit: 'tokens' },
        { name: 'tokens_per_second', value: 38.6, unit: 'tok/s' },
        { name: 'total', value: 1404.9, unit: 'ms' },
      ],
      duration_ms: 1410,
    },
    {
      name: 'load_time',
      title: 'Cold vs warm load',
      status: 'pass',
      reason: 'first call loaded in 2840 ms, second in 96 ms',
      measurements: [
        { name: 'cold_load', value: 2840, unit: 'ms' },
        { name: 'warm_load', value: 96, unit: 'ms' },
      ],
      duration_ms: 3100,
    },
    { name: 'cpu_fallback', title: 'GPU or CPU', status: 'fail', reason: `${model} runs on the CPU (size_vram 0): no usable GPU, expect slow generation`, measurements: [], duration_ms: 4.2 },
    supportsTools
      ? { name: 'tool_call', title: 'Tool-call round trip', status: 'pass', reason: 'called get_weather("Paris") and answered with its result', measurements: [{ name: 'round_trip', value: 1640, unit: 'ms' }], duration_ms: 1650 }
      : { name: 'tool_call', title: 'Tool-call round trip', status: 'skip', reason: `${model} does not support tools (capabilities: completion)`, measurements: [], duration_ms: 0 },
  ];
  return [...checks, ...agentChecks(throughAgent)];
}

function agentChecks(throughAgent: boolean): CheckResult[] {
  if (!throughAgent) {
    return (
      [
        ['agent_golden', 'Agent: golden case'],
        ['agent_adversarial', 'Agent: adversarial case blocked'],
        ['agent_write_gated', 'Agent: write gated'],
      ] as const
    ).map(([name, title]) => ({ name, title, status: 'skip', reason: 'no agent-service endpoint was given', measurements: [], duration_ms: 0 }));
  }
  return [
    {
      name: 'agent_golden',
      title: 'Agent: golden case',
      status: 'pass',
      reason: 'succeeded citing [ticket:T-1001] (model llama3.2:3b)',
      measurements: [
        { name: 'tokens', value: 412, unit: 'tokens' },
        { name: 'cost', value: 0.0004, unit: 'USD' },
      ],
      duration_ms: 2230,
    },
    { name: 'agent_adversarial', title: 'Agent: adversarial case blocked', status: 'pass', reason: 'blocked by prompt_injection', measurements: [], duration_ms: 12 },
    { name: 'agent_write_gated', title: 'Agent: write gated', status: 'pass', reason: 'gated as approval apr_5c01 (pending: decide it in Approvals)', measurements: [], duration_ms: 1980 },
  ];
}

/** The model server an OpenAI-compatible run checks (llama.cpp's server with SmolLM2). */
export const MODEL_SERVER = { url: 'http://127.0.0.1:8080/v1', model: 'smollm2-135m-instruct' };

export function modelServer(url: string, reachable: boolean, keyStored: boolean): ModelServerStatus {
  return reachable
    ? { url, reachable, models: [MODEL_SERVER.model, 'qwen2.5-0.5b-instruct'], error: null, detected: false, default_model: null, key_stored: keyStored }
    : {
        url,
        reachable,
        models: [],
        error: `could not reach ${url}/models: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111) (start an OpenAI-compatible server such as llama.cpp's llama-server, or give its base URL with /v1)`,
        detected: false,
        default_model: null,
        key_stored: keyStored,
      };
}

/** The checks against an OpenAI-compatible server: no pull, no load time or GPU report. */
export function smokeChecksOpenai(model: string, throughAgent: boolean): CheckResult[] {
  return [
    { name: 'reachability', title: 'Server reachable', status: 'pass', reason: '/models answered with 2 model(s)', measurements: [{ name: 'latency', value: 3.4, unit: 'ms' }], duration_ms: 3.6 },
    { name: 'models_listed', title: 'Models listed', status: 'pass', reason: `2 model(s) served: ${MODEL_SERVER.model}, qwen2.5-0.5b-instruct`, measurements: [{ name: 'models', value: 2, unit: 'models' }], duration_ms: 0.1 },
    { name: 'model_present', title: 'Model served', status: 'pass', reason: `${model} is served`, measurements: [], duration_ms: 0.1 },
    {
      name: 'generation',
      title: 'Generation sanity',
      status: 'pass',
      reason: 'answered 118 characters',
      measurements: [
        { name: 'time_to_first_token', value: 412.7, unit: 'ms' },
        { name: 'tokens_per_second', value: 61.3, unit: 'tok/s' },
        { name: 'total', value: 1391.2, unit: 'ms' },
      ],
      duration_ms: 1392,
    },
    { name: 'load_time', title: 'Cold vs warm load', status: 'skip', reason: 'the OpenAI-compatible API does not report model load times', measurements: [], duration_ms: 0 },
    { name: 'cpu_fallback', title: 'GPU or CPU', status: 'skip', reason: 'the OpenAI-compatible API does not report whether the model runs on a GPU', measurements: [], duration_ms: 0 },
    {
      name: 'tool_call',
      title: 'Tool-call round trip',
      status: 'skip',
      reason: `${model} does not support tools here (the server's chat template has none: /props chat_template_caps.supports_tools is false)`,
      measurements: [],
      duration_ms: 2.2,
    },
    ...agentChecks(throughAgent),
  ];
}

export function smokeReport(t0: number, id: string, model: string, startedAt: number, throughAgent = true): SmokeReport {
  const checks = smokeChecks(model, model !== 'gemma2:2b', throughAgent);
  const took = checks.reduce((a, c) => a + c.duration_ms, 0);
  return {
    id,
    target: 'ollama',
    server_url: 'http://127.0.0.1:11434',
    agent_url: throughAgent ? 'http://127.0.0.1:8787' : null,
    model,
    started_at_ms: startedAt || t0,
    finished_at_ms: (startedAt || t0) + Math.round(took),
    checks,
  };
}

export function smokeReportOpenai(t0: number, id: string, startedAt: number): SmokeReport {
  const checks = smokeChecksOpenai(MODEL_SERVER.model, false);
  const took = checks.reduce((a, c) => a + c.duration_ms, 0);
  return {
    id,
    target: 'openai_compatible',
    server_url: MODEL_SERVER.url,
    agent_url: null,
    model: MODEL_SERVER.model,
    started_at_ms: startedAt || t0,
    finished_at_ms: (startedAt || t0) + Math.round(took),
    checks,
  };
}

/**
 * What a registry serves, for pulls: each model's layers as Ollama pulls them (weights,
 * template, parameters, config), one `pulling <12 hex>` series each. Other names fail as
 * Ollama fails them.
 */
export const PULLABLE: Record<string, number[]> = {
  'llama3.2:1b': [1_321_082_688, 1_429, 7_711, 96, 435],
  'llama3.2:3b': [2_019_377_376, 1_429, 7_711, 6_016, 96, 561],
  'qwen2.5:0.5b': [397_807_936, 1_482, 11_343, 488],
  'qwen3:0.6b': [522_640_448, 1_723, 11_338, 490],
};

/** A layer's digest: stable per model and layer. */
export function layerDigest(model: string, layer: number): string {
  let h = 2166136261;
  for (const c of `${model}#${layer}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  const hex = (h.toString(16).padStart(8, '0') + ((h ^ 0x9e3779b9) >>> 0).toString(16).padStart(8, '0')).repeat(4);
  return `sha256:${hex}`;
}

const SIGNAL_KINDS: readonly QualitySignalKind[] = ['citation', 'refusal', 'empty_or_truncated', 'blocked', 'flagged', 'tool_errors', 'approval_rejections'];

/** Signals from `[hits, samples]` rows; the day before the window had the same rates, or `baselines` where given. */
function signals(rows: readonly (readonly [number, number])[], alerts: readonly QualitySignalKind[] = [], baselines: Partial<Record<QualitySignalKind, number>> = {}): QualitySignal[] {
  return SIGNAL_KINDS.map((kind, i) => {
    const [hits, samples] = rows[i] ?? [0, 0];
    const rate = samples > 0 ? hits / samples : null;
    return { kind, hits, samples, rate, alert: alerts.includes(kind), baseline: baselines[kind] ?? rate, vs_stable: null, worse_than_stable: false };
  });
}

/** Compares each signal of `other` with `stable`'s (what the core does). */
function versus(stable: QualitySignal[], other: QualitySignal[]): QualitySignal[] {
  return other.map((s, i) => {
    const b = stable[i]?.rate ?? null;
    if (s.rate === null || b === null) return s;
    const d = s.rate - b;
    return { ...s, vs_stable: d, worse_than_stable: (s.kind === 'citation' ? -d : d) > 0.05 };
  });
}

/**
 * The quality panel of a profile: the canary of `support_answer` stopped citing (a red
 * badge), `ticket_update`'s approvers reject more on the canary; `acme` hits its daily
 * budget at 14:10 local time today, `globex` is spent, `_other` has no budget.
 */
export function quality(profileId: string, window: ChartWindow, t0: number): QualityView {
  const stableAnswer = signals([[188, 196], [4, 200], [2, 200], [3, 204], [5, 204], [6, 310], [0, 0]], [], { citation: 0.97 });
  const canaryAnswer = versus(stableAnswer, signals([[9, 44], [1, 46], [0, 46], [11, 47], [1, 47], [2, 70], [0, 0]], ['citation']));
  const stableTicket = signals([[0, 0], [1, 120], [3, 120], [0, 122], [0, 122], [4, 260], [5, 60]]);
  const canaryTicket = versus(stableTicket, signals([[0, 0], [0, 30], [1, 30], [0, 31], [0, 31], [2, 64], [6, 15]]));
  const at = new Date(t0);
  at.setHours(14, 10, 0, 0);
  const resets = Date.UTC(new Date(t0).getUTCFullYear(), new Date(t0).getUTCMonth(), new Date(t0).getUTCDate() + 1);
  return {
    profile_id: profileId,
    window,
    thresholds: { min_samples: 20, min_citation_rate: 0.8, max_refusal_rate: 0.1, max_tool_error_rate: 0.1, max_empty_or_truncated_rate: 0.1, max_approval_rejection_rate: 0.3 },
    workflows: [
      {
        workflow: 'support_answer',
        tracks: [
          { track: 'stable', runs: 204, signals: stableAnswer, cost_per_success_usd: 0.0042, alert: false },
          { track: 'canary', runs: 47, signals: canaryAnswer, cost_per_success_usd: 0.0051, alert: true },
        ],
      },
      {
        workflow: 'ticket_update',
        tracks: [
          { track: 'stable', runs: 122, signals: stableTicket, cost_per_success_usd: 0.0063, alert: false },
          { track: 'canary', runs: 31, signals: canaryTicket, cost_per_success_usd: 0.0066, alert: false },
        ],
      },
      {
        workflow: LONG.workflow,
        tracks: [{ track: 'stable', runs: 9, signals: signals([[0, 0], [0, 9], [0, 9], [0, 9], [0, 9], [1, 18], [0, 2]]), cost_per_success_usd: 0.0211, alert: false }],
      },
    ],
    tenants: [
      { tenant: 'acme', cost_usd: 41.27, tokens: 8_204_113, cost_per_hour_usd: 3.1, tokens_per_hour: 610_000, today_cost_usd: 38.5, budget_cost_usd: 50, today_tokens: 7_120_400, budget_tokens: null, hits_budget_at_ms: at.getTime(), hits_budget: 'cost_usd', exhausted: false, resets_at_ms: resets },
      { tenant: 'globex', cost_usd: 20.02, tokens: 3_998_020, cost_per_hour_usd: 0.4, tokens_per_hour: 90_000, today_cost_usd: 20.02, budget_cost_usd: 20, today_tokens: 3_998_020, budget_tokens: null, hits_budget_at_ms: t0, hits_budget: 'cost_usd', exhausted: true, resets_at_ms: resets },
      { tenant: LONG.tenant, cost_usd: 2.11, tokens: 402_551, cost_per_hour_usd: 0.2, tokens_per_hour: 38_000, today_cost_usd: 1.2, budget_cost_usd: 50, today_tokens: 230_120, budget_tokens: null, hits_budget_at_ms: null, hits_budget: null, exhausted: false, resets_at_ms: resets },
      { tenant: '_other', cost_usd: 0.93, tokens: 170_400, cost_per_hour_usd: 0.05, tokens_per_hour: 9_000, today_cost_usd: null, budget_cost_usd: null, today_tokens: null, budget_tokens: null, hits_budget_at_ms: null, hits_budget: null, exhausted: false, resets_at_ms: resets },
    ],
    workflow_spend: [
      { workflow: 'support_answer', cost_usd: 38.1, tokens: 7_801_200 },
      { workflow: 'ticket_update', cost_usd: 21.9, tokens: 4_202_300 },
      { workflow: LONG.workflow, cost_usd: 4.33, tokens: 771_584 },
    ],
    scraped_at_ms: t0 - 4000,
  };
}

/** Notification receivers of the active connection's tenant. */
export function receivers(t0: number): Receiver[] {
  return [
    { id: 'rcv_0192f1', name: 'On-call webhook', format: 'webhook', url_hint: 'https://hooks.acme.example', events: [], has_secret: true, created_at_ms: t0 - 9 * 24 * HOUR },
    { id: 'rcv_0192f2', name: '#support-approvals', format: 'slack', url_hint: 'https://hooks.slack.com', events: ['approval.created', 'approval.expiring'], has_secret: false, created_at_ms: t0 - 2 * 24 * HOUR },
    { id: 'rcv_0192f3', name: `PagerDuty ${LONG.tenant}`, format: 'pagerduty', url_hint: 'https://events.pagerduty.com', events: ['budget.burn', 'quality.alert', 'circuit.open', 'circuit.closed'], has_secret: true, created_at_ms: t0 - 3 * HOUR },
  ];
}
