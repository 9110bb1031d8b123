// @ts-check
// The Overview's charts follow the scrape loop. A console started without stored history
// draws its charts before the first scrape ("no data yet"); every scrape pushes
// `overview_event`, and the charts of the selected card must be drawn again from it — in
// whichever window is shown, without the user switching windows. A theme change redraws
// them in the new theme.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calls, expectState, mock, shot, useBrowser } from './harness.js';

const ui = useBrowser();

/**
 * The `data-points` of each chart's SVG (how many scraped points it draws).
 * @param {import('playwright-core').Page} page
 */
function chartPoints(page) {
  return page.locator('.chart svg').evaluateAll((svgs) => svgs.map((s) => Number(s.getAttribute('data-points'))));
}

/**
 * Waits until every chart draws `want` points; fails with what they draw instead.
 * @param {import('playwright-core').Page} page
 * @param {number} want
 * @param {string} after what happened before
 */
async function expectPoints(page, want, after) {
  const deadline = Date.now() + 3000;
  let got = await chartPoints(page);
  while (!got.every((p) => p === want) && Date.now() < deadline) {
    await page.waitForTimeout(50);
    got = await chartPoints(page);
  }
  assert.deepEqual(got, got.map(() => want), `${after}: the charts should draw ${want} points each; they draw ${JSON.stringify(got)}`);
}

/**
 * The `get_charts` calls so far.
 * @param {import('playwright-core').Page} page
 */
async function chartCalls(page) {
  return (await calls(page)).filter((c) => c.command === 'get_charts').map((c) => /** @type {import('../src/lib/ipc/types').ChartArgs} */ (c.args));
}

describe('live charts', () => {
  it('charts drawn before the first scrape fill in as scrapes arrive, in every window, without a window switch', async () => {
    const { page, errors, close } = await ui.open({ params: { history: '0' } });
    await expectState(page, 'charts', 'full');
    assert.deepEqual(await chartPoints(page), [0, 0, 0, 0], 'no scrape yet: every chart is empty');
    assert.match(await page.locator('.chart svg').first().innerHTML(), /no data yet/);

    // Three scrapes, each pushed as overview_event, as the backend's loop does.
    for (let n = 1; n <= 3; n++) {
      await mock(page, (m) => m.scrape());
      await expectPoints(page, n, `after scrape ${n} (cards updated by overview_event)`);
    }
    assert.doesNotMatch(await page.locator('.chart svg').first().innerHTML(), /no data yet/);
    assert.ok(
      (await chartCalls(page)).every((a) => a.window === '15m'),
      'the window was never switched',
    );
    await shot(page, 'overview-live-charts');

    // Another window: its charts follow the scrapes as well.
    await page.getByRole('radio', { name: '1h' }).click();
    await page.waitForFunction(() => window.__flightdeckMock?.calls.some((c) => c.command === 'get_overview' && JSON.stringify(c.args).includes('"1h"')));
    await mock(page, (m) => m.scrape());
    await expectPoints(page, 4, 'after scrape 4, in the 1h window');
    assert.equal((await chartCalls(page)).at(-1)?.window, '1h');

    // Off screen the charts are not drawn for nothing; back on screen they are up to date.
    await page.locator('[data-nav="traces"]').click();
    await page.waitForSelector('main[data-route="traces"]');
    const drawn = (await chartCalls(page)).length;
    await mock(page, (m) => m.scrape());
    await page.waitForTimeout(200);
    assert.equal((await chartCalls(page)).length, drawn, 'no chart is drawn while the Overview is not shown');
    await page.locator('[data-nav="overview"]').click();
    await expectPoints(page, 5, 'back on the Overview after scrape 5');
    assert.deepEqual(errors, []);
    await close();
  });

  it('a theme change redraws the charts in the new theme', async () => {
    const { page, errors, close } = await ui.open();
    await expectState(page, 'charts', 'full');
    assert.equal((await chartCalls(page)).at(-1)?.theme, 'light');
    await page.locator('[data-theme-toggle]').click();
    await page.waitForFunction(() => document.documentElement.dataset['theme'] === 'dark');
    const stroke = () => page.locator('.chart svg polyline').first().getAttribute('stroke');
    for (let i = 0; i < 60 && (await stroke()) !== '#6ea8fe'; i++) await page.waitForTimeout(50);
    assert.equal((await chartCalls(page)).at(-1)?.theme, 'dark', 'the charts are asked for in the dark theme');
    assert.equal(await stroke(), '#6ea8fe', "the charts are drawn in the dark theme's colours");
    assert.deepEqual(errors, []);
    await close();
  });
});
