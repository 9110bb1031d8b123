// @ts-check
// The Overview's quality panel: the selected service's quality per workflow and track (a
// canary that stopped citing shows a red badge and how far it is below stable), spend by
// tenant with the budget burn line, spend by workflow; asked for the selected card's
// profile and the window, again after a push and a window switch; laid out without
// overflow at the minimum window in both themes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calls, expectState, mock, shot, useBrowser } from './harness.js';
import { formatProblems, layoutProblems } from './layout.js';

const ui = useBrowser();

/**
 * The `get_quality` calls so far.
 * @param {import('playwright-core').Page} page
 */
async function qualityCalls(page) {
  return (await calls(page)).filter((c) => c.command === 'get_quality').map((c) => /** @type {import('../src/lib/ipc/types').QualityArgs} */ (c.args));
}

describe('overview quality panel', () => {
  it('shows the uncited canary in red, the burn line per tenant and spend by workflow', async () => {
    const { page, errors, close } = await ui.open();
    await expectState(page, 'overview', 'full');
    await expectState(page, 'quality-body', 'full');

    // The canary of support_answer stopped citing: a red badge on its citation cell and on
    // the workflow, its difference to stable marked worse; stable's cell is not red.
    const canary = page.locator('[data-workflow="support_answer"] [data-signal="canary/citation"]');
    assert.equal(await canary.locator('[data-alert="true"]').count(), 1);
    assert.match(await canary.innerText(), /20\.5 %[\s\S]*−75 pts/);
    assert.equal(await canary.locator('.delta.worse').count(), 1);
    assert.equal(await page.locator('[data-workflow="support_answer"] [data-signal="stable/citation"] [data-alert]').count(), 0);
    // Each cell says on hover how many of how many, and the rate over the day before.
    assert.equal(await page.locator('[data-workflow="support_answer"] [data-signal="stable/citation"]').getAttribute('title'), '188 of 196; the day before: 97.0 %');
    assert.equal(await page.locator('[data-quality-alert="support_answer"]').count(), 1);
    assert.equal(await page.locator('[data-quality-alert="ticket_update"]').count(), 0, 'no alert without one');
    // ticket_update's canary rejects 40 % of writes against stable's 8 %: worse, not red.
    const rej = page.locator('[data-workflow="ticket_update"] [data-signal="canary/approval_rejections"]');
    assert.match(await rej.innerText(), /40\.0 %[\s\S]*\+32 pts/);
    assert.equal(await rej.locator('.delta.worse').count(), 1);

    // The burn lines.
    assert.match(await page.locator('[data-burn="acme"]').innerText(), /^At this rate hits the daily cost budget at 14:10$/);
    assert.match(await page.locator('[data-burn="globex"]').innerText(), /^Daily cost budget spent: refused until \d\d:\d\d$/);
    assert.equal(await page.locator('[data-burn="_other"]').innerText(), 'No daily budget');
    assert.match(await page.locator('[data-tenant="_other"]').innerText(), /other tenants/);
    assert.match(await page.locator('[data-burn="acme-europe-west1-enterprise-support"]').innerText(), /Within its daily budget/);
    assert.match(await page.locator('[data-spend-workflow="support_answer"]').innerText(), /\$38\.10[\s\S]*7,801,200/);

    // Asked for the selected card's profile and the window; again after a scrape's push and
    // after a window switch.
    const first = await qualityCalls(page);
    assert.deepEqual(first.at(-1), { profile_id: 'prod-eu', window: '15m' });
    await mock(page, (m) => m.scrape());
    await page.waitForFunction((n) => (window.__flightdeckMock?.calls.filter((c) => c.command === 'get_quality').length ?? 0) > n, first.length);
    await page.getByRole('radio', { name: '1h', exact: true }).click();
    await page.waitForFunction(() => window.__flightdeckMock?.calls.some((c) => c.command === 'get_quality' && JSON.stringify(c.args).includes('"1h"')));
    // The workflow's traces, filtered by it.
    await page.locator('[data-open-traces="support_answer"]').click();
    await page.waitForSelector('main[data-route="traces"]');
    await page.waitForFunction(() => window.__flightdeckMock?.calls.some((c) => c.command === 'list_traces' && /** @type {{workflow: string|null}} */ (c.args).workflow === 'support_answer'));
    assert.deepEqual(errors, []);
    await close();
  });

  for (const theme of /** @type {const} */ (['light', 'dark'])) {
    it(`fits the minimum window (1024×768, ${theme})`, async () => {
      const { page, errors, close } = await ui.open({ width: 1024, height: 768, theme });
      await expectState(page, 'quality-body', 'full');
      if ((await page.locator('html').getAttribute('data-theme')) !== theme) {
        await page.locator('[data-theme-toggle]').click();
        await page.waitForFunction((t) => document.documentElement.dataset['theme'] === t, theme);
      }
      const panel = page.locator('[data-region="quality"]');
      await panel.scrollIntoViewIfNeeded();
      const problems = await layoutProblems(page);
      assert.deepEqual(problems, [], formatProblems(problems));
      await shot(page, `overview-quality-1024x768-${theme}`);
      await page.locator('[data-region="quality"] [aria-label="Spend by tenant"]').scrollIntoViewIfNeeded();
      await shot(page, `overview-quality-spend-1024x768-${theme}`);
      assert.deepEqual(errors, []);
      await close();
    });
  }

  it('an error reading the panel shows it with Retry, and Retry reads again', async () => {
    const { page, close } = await ui.open();
    await expectState(page, 'quality-body', 'full');
    await mock(page, (m) => m.failNext('get_quality', { code: 'network', message: 'could not reach https://agent.prod-eu.example.com/metrics' }));
    await page.getByRole('radio', { name: '5m', exact: true }).click();
    await expectState(page, 'quality-body', 'error');
    await page.locator('[data-region="quality-body"] button', { hasText: 'Retry' }).click();
    await expectState(page, 'quality-body', 'full');
    await close();
  });
});
