// @ts-check
// Every view in each of its four states (empty, loading, error, full), with a screenshot
// per view and state, and Retry recovering from the error state.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expectState, mock, shot, useBrowser } from './harness.js';

const ui = useBrowser();

/**
 * Each view: its route, the region that carries its main state, what the full state shows,
 * what the empty state says.
 * @type {{route: string, region: string, full: string, empty: RegExp}[]}
 */
const VIEWS = [
  { route: 'overview', region: 'overview', full: '[data-card]', empty: /No services connected/ },
  { route: 'traces', region: 'traces', full: '[data-row]', empty: /No traces yet/ },
  { route: 'approvals', region: 'approvals', full: '#approval-list [role="option"]', empty: /Nothing waits for a decision/ },
  { route: 'evals', region: 'evals', full: '[aria-label="Eval runs"] [role="option"]', empty: /No eval runs yet/ },
  { route: 'smoke', region: 'smoke', full: '[data-ollama="reachable"]', empty: /No local Ollama found/ },
  { route: 'settings', region: 'settings', full: '[data-profile]', empty: /No connections yet/ },
];

for (const v of VIEWS) {
  describe(`${v.route} view`, () => {
    it('full: renders its data', async () => {
      const { page, errors, close } = await ui.open({ route: v.route, scenario: 'full' });
      await expectState(page, v.region, 'full');
      assert.ok((await page.locator(v.full).count()) > 0, `${v.full} is shown`);
      await shot(page, `${v.route}-full`);
      assert.deepEqual(errors, []);
      await close();
    });

    it('empty: says why and what to do', async () => {
      const { page, errors, close } = await ui.open({ route: v.route, scenario: 'empty' });
      await expectState(page, v.region, 'empty');
      const text = await page.locator(`[data-region="${v.region}"] [data-state="empty"]`).innerText();
      assert.match(text, v.empty);
      assert.equal(await page.locator(v.full).count(), 0);
      await shot(page, `${v.route}-empty`);
      assert.deepEqual(errors, []);
      await close();
    });

    it('loading: shows placeholders and a busy region, never a blank page', async () => {
      const { page, errors, close } = await ui.open({ route: v.route, scenario: 'loading' });
      await expectState(page, v.region, 'loading');
      const region = page.locator(`[data-region="${v.region}"]`);
      assert.equal(await region.getAttribute('aria-busy'), 'true');
      assert.match(await region.locator('[role="status"]').first().innerText(), /Loading/);
      await shot(page, `${v.route}-loading`);
      assert.deepEqual(errors, []);
      await close();
    });

    it('error: shows the message and Retry recovers', async () => {
      const { page, errors, close } = await ui.open({ route: v.route, scenario: 'error' });
      await expectState(page, v.region, 'error');
      const alert = page.locator(`[data-region="${v.region}"] [role="alert"]`).first();
      const text = await alert.innerText();
      assert.match(text, /Couldn't load/);
      assert.match(text, /could not reach|local store|keyring/, 'the backend message, which names the fix, is shown');
      await shot(page, `${v.route}-error`);
      await mock(page, (m) => m.setScenario('full'));
      await alert.getByRole('button', { name: 'Retry' }).click();
      await expectState(page, v.region, 'full');
      assert.ok((await page.locator(v.full).count()) > 0);
      assert.deepEqual(errors, []);
      await close();
    });
  });
}

describe('dark theme', () => {
  for (const route of ['overview', 'approvals', 'traces']) {
    it(`${route} renders in dark`, async () => {
      const { page, errors, close } = await ui.open({ route, scenario: 'full' });
      await page.locator('[data-theme-toggle]').click();
      assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
      await expectState(page, route, 'full');
      await shot(page, `${route}-full-dark`);
      assert.deepEqual(errors, []);
      await close();
    });
  }
});
