// @ts-check
// The Overview card shows each service's provider fallback chain in call order with the
// serving link marked, a link whose circuit is open flagged and the recent fallbacks
// between links (per from → to and reason, for the chosen window); a pushed overview in
// which the serving link changed is rendered as pushed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expectState, mock, shot, useBrowser } from './harness.js';

const ui = useBrowser();

/**
 * The chain of a card as `name:serving:circuit` per link, in order.
 * @param {import('playwright-core').Page} page
 * @param {string} card
 */
function chain(page, card) {
  return page
    .locator(`[data-card="${card}"] [data-provider-chain] li`)
    .evaluateAll((els) => els.map((e) => `${e.getAttribute('data-link')}:${e.getAttribute('data-serving')}:${e.getAttribute('data-circuit')}`));
}

describe('overview provider chain', () => {
  it('shows the chain in order, the serving link and open circuits, and follows pushes', async () => {
    const { page, errors, close } = await ui.open();
    await expectState(page, 'overview', 'full');

    assert.deepEqual(await chain(page, 'prod-eu/stable'), ['local:true:closed', 'hosted:false:closed']);
    const stable = page.locator('[data-card="prod-eu/stable"] [data-provider-chain]');
    assert.equal(await stable.getAttribute('data-serving-link'), 'local');
    assert.match(await stable.innerText(), /local[\s\S]*ollama llama3\.1:8b[\s\S]*serving[\s\S]*→[\s\S]*hosted[\s\S]*openai gpt-4\.1-mini/);

    // The canary's primary is down: its circuit is open and the hosted link serves.
    assert.deepEqual(await chain(page, 'prod-eu/canary'), ['local:false:open', 'hosted:true:closed']);
    const canary = page.locator('[data-card="prod-eu/canary"] [data-provider-chain]');
    assert.equal(await canary.getAttribute('data-serving-link'), 'hosted');
    assert.match(await canary.locator('[data-link="local"]').innerText(), /circuit open/);
    assert.equal(await canary.locator('[data-link="hosted"] .pill.ok').innerText(), 'serving');
    assert.match(await canary.locator('[data-link="local"]').getAttribute('title') ?? '', /unreachable/);

    // The recent fallbacks: most first, with the reason in words and the window.
    /** @param {string} card */
    const fallbacks = (card) =>
      page
        .locator(`[data-card="${card}"] [data-fallbacks] li`)
        .evaluateAll((els) => els.map((e) => `${e.getAttribute('data-fallback')}=${e.getAttribute('data-count')}`));
    assert.deepEqual(await fallbacks('prod-eu/canary'), ['local>hosted:circuit_open=37', 'local>hosted:unavailable=3']);
    const canaryFallbacks = page.locator('[data-card="prod-eu/canary"] [data-fallbacks]');
    assert.match(await canaryFallbacks.innerText(), /Fallbacks · 15m[\s\S]*37×\s*local → hosted\s*circuit open[\s\S]*3×\s*local → hosted\s*unreachable/i);
    assert.equal(await page.locator('[data-card="prod-eu/stable"] [data-fallbacks] [data-no-fallbacks]').innerText(), 'none');
    // A single link has nothing to fall back to: no fallbacks line.
    assert.equal(await page.locator('[data-card="local/stable"] [data-fallbacks]').count(), 0);

    // One link: still shown. No chain reported: nothing shown.
    assert.deepEqual(await chain(page, 'local/stable'), ['scripted:true:closed']);
    assert.equal(await page.locator('[data-card="staging/stable"] [data-provider-chain]').count(), 0);
    await shot(page, 'overview-provider-chain');

    // A push: the canary's primary recovered (half-open probe passed), every circuit of
    // the stable service opened.
    await mock(page, (m) => {
      /** @type {(name: string, kind: string, status: import('../src/lib/ipc/types').DependencyStatus, circuit: import('../src/lib/ipc/types').CircuitState, serving: boolean) => import('../src/lib/ipc/types').ProviderLink} */
      const link = (name, kind, status, circuit, serving) => ({ name, kind, model: 'm', status, circuit, serving, detail: `${kind} m` });
      /** @type {(track: string, provider_chain: import('../src/lib/ipc/types').ProviderLink[], recent_fallbacks: import('../src/lib/ipc/types').ProviderFallback[]) => import('../src/lib/ipc/types').ServiceCard} */
      const card = (track, provider_chain, recent_fallbacks) => ({
        profile_id: 'prod-eu',
        service: 'agent-service',
        track,
        url: 'https://agent.prod-eu.example.com',
        live: true,
        readiness: 'degraded',
        checks: [],
        stats: { request_rate: 1, error_rate: 0, p50_ms: 40, p95_ms: 90, p99_ms: 120, tokens_per_sec: 10, cost_per_hour_usd: 0, queue_depth: 0, pending_approvals: 0, guardrail_blocks: 0 },
        circuits: [],
        provider_chain,
        recent_fallbacks,
        badges: [],
        versions: { release: '1.9.0', git_sha: 'abc1234', model: 'm', prompt: 'p', policy: 'v3' },
        changes: [],
        frozen: false,
        scraped_at_ms: Date.now(),
        error: null,
      });
      m.emit('overview_event', {
        window: '15m',
        generated_at_ms: Date.now(),
        services: [
          card('stable', [link('local', 'ollama', 'failing', 'open', false), link('hosted', 'openai', 'degraded', 'open', false)], [{ from: 'local', to: 'hosted', reason: 'timeout', count: 2 }]),
          card('canary', [link('local', 'ollama', 'ok', 'closed', true), link('hosted', 'openai', 'ok', 'closed', false)], []),
        ],
      });
    });
    await page.locator('[data-card="prod-eu/canary"] [data-provider-chain][data-serving-link="local"]').waitFor();
    assert.deepEqual(await chain(page, 'prod-eu/canary'), ['local:true:closed', 'hosted:false:closed']);
    assert.deepEqual(await chain(page, 'prod-eu/stable'), ['local:false:open', 'hosted:false:open']);
    assert.equal(await page.locator('[data-card="prod-eu/stable"] [data-no-serving]').innerText(), 'no provider serving');
    assert.deepEqual(await fallbacks('prod-eu/stable'), ['local>hosted:timeout=2']);
    assert.match(await page.locator('[data-card="prod-eu/stable"] [data-fallbacks]').innerText(), /2×\s*local → hosted\s*timed out/);
    assert.equal(await page.locator('[data-card="prod-eu/canary"] [data-fallbacks] [data-no-fallbacks]').count(), 1);
    assert.deepEqual(errors, []);
    await close();
  });
});
