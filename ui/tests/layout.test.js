// @ts-check
// Every view at the window sizes people use (1024×768 — the app's minimum —, 1280×800 —
// its default —, and 1440×900), in light and dark, with the mock's long names and ids:
// no panel wider inside than outside (clipped columns, sideways scrolling), no text
// wrapped to one character per line, no value cut with an ellipsis that hovering does
// not show in full. The measures are in `layout.js`; a screenshot of each view, size and
// theme goes to test-results/screenshots/layout-<view>-<w>x<h>-<theme>.png.
//
// One browser page serves all 42 renders: the views are switched by their hash route and
// the window by its viewport, as a user resizing the app would.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { expectState, launch, serveDist, shot } from './harness.js';
import { formatProblems, layoutProblems } from './layout.js';

/** Width × height: the minimum window, the default window, a common larger one. */
const SIZES = /** @type {const} */ ([
  [1024, 768],
  [1280, 800],
  [1440, 900],
]);
const THEMES = /** @type {const} */ (['light', 'dark']);

/**
 * Each view and what makes it "full": its detail open, where it has one.
 * @type {{route: string, ready: (page: import('playwright-core').Page) => Promise<void>}[]}
 */
const VIEWS = [
  {
    route: 'overview',
    ready: async (page) => {
      await expectState(page, 'overview', 'full');
      await expectState(page, 'charts', 'full');
    },
  },
  {
    route: 'traces',
    ready: async (page) => {
      await expectState(page, 'traces', 'full');
      await expectState(page, 'trace-detail', 'full');
      // The span detail of a model call: model, tokens, the gen_ai attributes, the payload.
      await page.locator('[data-span="llm"] button').first().click();
      await page.locator('.span-detail table').waitFor();
      await page.locator('.span-detail').evaluate((el) => el.scrollIntoView({ block: 'nearest' }));
    },
  },
  { route: 'approvals', ready: (page) => expectState(page, 'approval-detail', 'full') },
  { route: 'releases', ready: (page) => expectState(page, 'release-detail', 'full') },
  { route: 'evals', ready: (page) => expectState(page, 'eval-report', 'full') },
  { route: 'smoke', ready: (page) => expectState(page, 'smoke-report', 'full') },
  {
    route: 'settings',
    ready: async (page) => {
      await expectState(page, 'settings', 'full');
      await expectState(page, 'permissions', 'full');
      await expectState(page, 'keyring', 'full');
    },
  },
];

/** @type {{url: string, close: () => Promise<void>} | undefined} */
let server;
/** @type {import('playwright-core').Browser | undefined} */
let browser;
/** @type {import('playwright-core').Page | undefined} */
let page;
/** @type {string[]} */
const errors = [];
const started = Date.now();

before(async () => {
  server = await serveDist();
  browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'light' });
  page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  await page.goto(`${server.url}/?mock=full&fast=1#/overview`);
  await page.waitForSelector('main[data-route]');
});

after(async () => {
  await browser?.close();
  await server?.close();
  console.log(`# layout: ${VIEWS.length * SIZES.length * THEMES.length} renders in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

/**
 * Puts the shared page in `theme` at `width`×`height` showing `route`, ready.
 * @param {'light'|'dark'} theme
 * @param {number} width
 * @param {number} height
 * @param {(typeof VIEWS)[number]} view
 */
async function show(theme, width, height, view) {
  if (!page) throw new Error('no page');
  if ((await page.locator('html').getAttribute('data-theme')) !== theme) {
    await page.locator('[data-theme-toggle]').click();
    await page.waitForFunction((t) => document.documentElement.dataset['theme'] === t, theme);
  }
  await page.setViewportSize({ width, height });
  await page.evaluate((r) => {
    window.location.hash = `#/${r}`;
  }, view.route);
  await page.waitForSelector(`main[data-route="${view.route}"]`);
  await view.ready(page);
  await page.evaluate(() => document.fonts.ready);
  return page;
}

for (const theme of THEMES) {
  for (const [width, height] of SIZES) {
    describe(`layout at ${width}×${height}, ${theme}`, () => {
      for (const view of VIEWS) {
        it(`${view.route}: no overflowing panel, no text squeezed to a character per line, truncated values titled`, async () => {
          const p = await show(theme, width, height, view);
          const problems = await layoutProblems(p);
          await shot(p, `layout-${view.route}-${width}x${height}-${theme}`);
          assert.equal(problems.length, 0, `${view.route} at ${width}×${height} (${theme}):\n${formatProblems(problems)}`);
          assert.deepEqual(errors, []);
        });
      }
    });
  }
}
