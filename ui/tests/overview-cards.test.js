// @ts-check
// The Overview's cards per service and track: every profile's cards are
// shown, an unreachable service is a card that says why, and a pushed overview that drops
// or adds a card is rendered as pushed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expectState, mock, shot, useBrowser } from './harness.js';

const ui = useBrowser();

describe('overview cards', () => {
  it('shows a card per service and track, and an unreachable one with its error', async () => {
    const { page, errors, close } = await ui.open();
    await expectState(page, 'overview', 'full');
    const cards = await page.locator('[data-card]').evaluateAll((els) => els.map((e) => e.getAttribute('data-card')));
    assert.deepEqual(cards, ['prod-eu/stable', 'prod-eu/canary', 'local/stable', 'staging/stable']);
    const down = page.locator('[data-card="staging/stable"]');
    assert.equal(await down.locator('[data-health]').getAttribute('data-health'), 'down');
    assert.match(await down.locator('[data-read-error]').innerText(), /unreachable[\s\S]*could not reach https:\/\/agent\.staging\.example\.com/i);
    assert.equal(await page.locator('[data-card="prod-eu/stable"] [data-read-error]').count(), 0, 'a live card shows no error');
    await shot(page, 'overview-unreachable-card');

    // A push in which the service came back: its error is gone.
    await mock(page, (m) =>
      m.emit('overview_event', {
        window: '15m',
        generated_at_ms: Date.now(),
        services: [
          {
            profile_id: 'staging',
            service: 'agent-service',
            track: 'stable',
            url: 'https://agent.staging.example.com/',
            live: true,
            readiness: 'ready',
            checks: [],
            stats: { request_rate: 2, error_rate: 0, p50_ms: 40, p95_ms: 90, p99_ms: 120, tokens_per_sec: 10, cost_per_hour_usd: 0, queue_depth: 0, pending_approvals: 0, guardrail_blocks: 0 },
            circuits: [],
            badges: [],
            versions: { release: '1.9.0', git_sha: 'abc1234', model: 'm', prompt: 'p', policy: 'v3' },
            changes: [],
            frozen: false,
            scraped_at_ms: Date.now(),
            error: null,
          },
        ],
      }),
    );
    await page.locator('[data-card="staging/stable"] [data-health="ready"]').waitFor();
    assert.equal(await page.locator('[data-card]').count(), 1);
    assert.equal(await page.locator('[data-read-error]').count(), 0);
    assert.deepEqual(errors, []);
    await close();
  });
});
