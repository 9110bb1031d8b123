// @ts-check
// What the views do beyond their states: the traces list stays small in the DOM at 100k
// traces and pages in more as it scrolls, filters reach the backend, the waterfall shows
// tokens, cost and redacted payloads; the overview's window and charts; smoke pulls and
// exports; adding a connection.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calls, expectState, mock, shot, useBrowser } from './harness.js';

const ui = useBrowser();

/**
 * The last `list_traces` query the UI sent.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<import('../src/lib/ipc/types').TraceQuery>}
 */
async function lastTraceQuery(page) {
  const q = (await calls(page)).filter((c) => c.command === 'list_traces').at(-1);
  assert.ok(q, 'list_traces was called');
  return /** @type {import('../src/lib/ipc/types').TraceQuery} */ (q.args);
}

describe('traces', () => {
  it('renders only the visible rows of 100,000 and pages in more while scrolling', async () => {
    const { page, errors, close } = await ui.open({ route: 'traces' });
    await expectState(page, 'traces', 'full');
    await page.locator('[data-trace-count]', { hasText: '200 loaded of 100,000' }).waitFor();
    const list = page.locator('[role="listbox"][aria-label="Traces"]');
    const rendered = Number(await list.getAttribute('data-rendered'));
    assert.ok(rendered > 0 && rendered < 80, `only the visible rows are in the DOM (${rendered})`);
    assert.equal(await page.locator('[data-row]').count(), rendered);
    await list.evaluate((el) => {
      el.scrollTop = el.scrollHeight;
    });
    await page.locator('[data-trace-count]', { hasText: '400 loaded of 100,000' }).waitFor();
    assert.equal((await lastTraceQuery(page)).cursor, '200');
    assert.ok((await page.locator('[data-row]').count()) < 80);
    assert.deepEqual(errors, []);
    await close();
  });

  it('moves through rows with the keyboard and opens the waterfall', async () => {
    const { page, close } = await ui.open({ route: 'traces' });
    await expectState(page, 'trace-detail', 'full');
    const list = page.locator('[role="listbox"][aria-label="Traces"]');
    const first = await list.locator('[role="option"][aria-selected="true"]').getAttribute('data-row');
    await list.focus();
    await page.keyboard.press('j');
    await page.keyboard.press('ArrowDown');
    const third = await list.locator('[role="option"][aria-selected="true"]').getAttribute('data-row');
    assert.notEqual(third, first);
    assert.equal(await list.locator('[role="option"]').nth(2).getAttribute('data-row'), third);
    await page.locator(`[data-region="trace-detail"] .mono`, { hasText: third ?? '' }).first().waitFor();
    await close();
  });

  it('filters: errors only, slow, workflow and request id reach the backend', async () => {
    const { page, errors, close } = await ui.open({ route: 'traces' });
    await expectState(page, 'traces', 'full');
    await page.getByLabel('Errors only').check();
    await page.waitForFunction(() => {
      const t = document.querySelector('[data-trace-count]')?.textContent ?? '';
      return t.includes('loaded of') && !t.includes('100,000');
    });
    const statuses = await page.locator('[data-row] [data-status]').evaluateAll((els) => els.map((e) => e.getAttribute('data-status')));
    assert.ok(statuses.length > 0 && statuses.every((s) => s === 'error' || s === 'budget_exceeded'), `only failures: ${statuses.join(',')}`);
    await page.getByLabel(/Slow/).check();
    await page.locator('#wf').selectOption('refund_request');
    await expectState(page, 'traces', 'full');
    const q = await lastTraceQuery(page);
    assert.equal(q.errors_only, true);
    assert.equal(q.min_duration_ms, 5000);
    assert.equal(q.workflow, 'refund_request');
    assert.equal(q.cursor, null);
    await page.getByRole('button', { name: 'Clear filters' }).first().click();
    await page.locator('[data-trace-count]', { hasText: 'of 100,000' }).waitFor();

    const rid = (await page.locator('[data-row] .mono').first().innerText()).trim();
    await page.locator('#rid').fill(rid);
    await page.keyboard.press('Enter');
    await page.locator('[data-trace-count]', { hasText: '1 loaded of 1' }).waitFor();
    assert.equal((await lastTraceQuery(page)).request_id, rid);

    await page.locator('#rid').fill('req_nothing_like_this');
    await page.keyboard.press('Enter');
    await expectState(page, 'traces', 'empty');
    assert.match(await page.locator('[data-region="traces"] [data-state="empty"]').innerText(), /No traces match these filters/);
    assert.deepEqual(errors, []);
    await close();
  });

  it('the waterfall shows spans with tokens and cost, and redacted payloads', async () => {
    const { page, close } = await ui.open({ route: 'traces' });
    await page.locator('#rid').fill('');
    await page.getByLabel('Errors only').check();
    await expectState(page, 'trace-detail', 'full');
    await page.waitForSelector('[data-span="llm"]');
    const llm = page.locator('[data-span="llm"]').first();
    assert.match(await llm.innerText(), /\$0\.\d{4}/);
    await llm.locator('button').click();
    const detail = page.locator('.span-detail');
    assert.match(await detail.innerText(), /gen_ai\.usage\.input_tokens/);
    assert.match(await detail.locator('mark').first().innerText(), /\[REDACTED:/);
    await shot(page, 'traces-waterfall-llm');
    await close();
  });
});

describe('overview', () => {
  it('shows alert badges with reasons and what changed; the window reaches the backend; charts are injected', async () => {
    const { page, errors, close } = await ui.open();
    await expectState(page, 'overview', 'full');
    const canary = page.locator('[data-card="prod-eu/canary"]');
    assert.match(await canary.locator('[data-alert="latency_p99"]').innerText(), /p99 latency 34\.7 s over 15 min exceeds 30 s/);
    assert.equal(await canary.locator('[data-health]').getAttribute('data-health'), 'degraded');
    assert.match(await canary.locator('[aria-label="What changed"]').innerText(), /1\.9\.0-rc\.2/);
    await expectState(page, 'charts', 'full');
    assert.equal(await page.locator('.chart svg').count(), 4);
    await page.getByRole('radio', { name: '1h' }).click();
    await page.waitForFunction(() => window.__flightdeckMock?.calls.some((c) => c.command === 'get_overview' && JSON.stringify(c.args).includes('"1h"')));
    const chartCall = (await calls(page)).filter((c) => c.command === 'get_charts').at(-1);
    assert.deepEqual(chartCall?.args, { profile_id: 'prod-eu', track: 'canary', window: '1h', theme: 'light' });
    await page.locator('[data-card="prod-eu/stable"]').getByRole('button', { name: 'Show charts' }).click();
    await page.locator('#charts-title', { hasText: 'agent-service · stable' }).waitFor();
    assert.deepEqual(errors, []);
    await close();
  });
});

describe('overview events', () => {
  it('an overview_event for the shown window replaces the cards; one for another window is ignored', async () => {
    const { page, close } = await ui.open();
    await expectState(page, 'overview', 'full');
    await mock(page, (m) => m.emit('overview_event', { window: '6h', services: [], generated_at_ms: Date.now() }));
    await page.waitForTimeout(100);
    await expectState(page, 'overview', 'full');
    await mock(page, (m) => m.emit('overview_event', { window: '15m', services: [], generated_at_ms: Date.now() }));
    await expectState(page, 'overview', 'empty');
    await close();
  });
});

describe('smoke tests', () => {
  it('pulls a model with a progress bar, then exports a report', async () => {
    const { page, errors, close } = await ui.open({ route: 'smoke' });
    await expectState(page, 'models', 'full');
    await page.locator('#pull-name').fill('llama3.2:1b');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.pullprog [role="progressbar"]');
    await page.locator('[data-toast="success"]', { hasText: 'Pulled llama3.2:1b' }).waitFor();
    await page.locator('td.mono', { hasText: 'llama3.2:1b' }).waitFor();
    assert.equal(await page.locator('input[name="model"][value="llama3.2:1b"]').isChecked(), true);

    await page.locator('#pull-name').fill('not a model!');
    await page.keyboard.press('Enter');
    await page.locator('.pull .field-error', { hasText: 'is not a model name' }).waitFor();

    await expectState(page, 'smoke-report', 'full');
    await page.getByRole('button', { name: 'Markdown' }).click();
    await page.locator('[data-toast="success"]', { hasText: /flightdeck-smoke-smk_0003\.md/ }).waitFor();
    assert.deepEqual(errors, []);
    await close();
  });
});

describe('settings', () => {
  it('adds an agent endpoint; a bad URL is refused with the reason', async () => {
    const { page, errors, close } = await ui.open({ route: 'settings' });
    await expectState(page, 'settings', 'full');
    await page.getByRole('button', { name: 'Add agent endpoint' }).click();
    await page.locator('#p-name').fill('EU canary');
    await page.locator('#p-url').fill('agent.example.com');
    await page.locator('#p-key').fill('fd_live_123');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.locator('.add .field-error', { hasText: 'is not an http:// or https:// URL' }).waitFor();
    await page.locator('#p-url').fill('https://agent.canary.example.com');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.locator('[data-profile="eu-canary"]').waitFor();
    const added = (await calls(page)).filter((c) => c.command === 'add_agent_profile').at(-1);
    assert.deepEqual(added?.args, { name: 'EU canary', url: 'https://agent.canary.example.com', api_key: 'fd_live_123' });
    assert.deepEqual(errors, []);
    await close();
  });
});
