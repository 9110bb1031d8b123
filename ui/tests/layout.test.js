// @ts-check
// Every view at the window sizes people use (1024×768 — the app's minimum —, 1280×800 —
// its default —, and 1440×900), in light and dark, with the mock's long names and ids:
// no panel wider inside than outside (clipped columns, sideways scrolling), no text
// wrapped to one character per line, no value cut with an ellipsis that hovering does
// not show in full. The measures are in `layout.js`; a screenshot of each view, size and
// theme goes to test-results/screenshots/layout-<view>-<w>x<h>-<theme>.png.
//
// One browser page serves the 42 renders of the full views: the views are switched by
// their hash route and the window by its viewport, as a user resizing the app would. At
// the minimum size, the empty and error states of every view and the forms and dialogs
// the views open are measured too (their own pages).
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

let renders = 0;

after(async () => {
  await browser?.close();
  await server?.close();
  console.log(`# layout: ${renders} renders in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

/**
 * Measures the page, saves its screenshot, and fails with the problems found.
 * @param {import('playwright-core').Page} p
 * @param {string} name
 * @param {string[]} pageErrors
 */
async function check(p, name, pageErrors) {
  await p.evaluate(() => document.fonts.ready);
  const problems = await layoutProblems(p);
  await shot(p, `layout-${name}`);
  renders++;
  assert.equal(problems.length, 0, `${name}:\n${formatProblems(problems)}`);
  assert.deepEqual(pageErrors, []);
}

/**
 * A page of its own at the minimum window size, light, in `scenario`.
 * @param {'full'|'empty'|'error'} scenario
 */
async function minimumPage(scenario) {
  if (!browser || !server) throw new Error('no browser');
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 }, colorScheme: 'light' });
  const p = await context.newPage();
  /** @type {string[]} */
  const pageErrors = [];
  p.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  await p.goto(`${server.url}/?mock=${scenario}&fast=1#/overview`);
  await p.waitForSelector('main[data-route]');
  return { page: p, pageErrors, close: () => context.close() };
}

/** Shows `route` in `p` by its hash. @param {import('playwright-core').Page} p @param {string} route */
async function go(p, route) {
  await p.evaluate((r) => {
    window.location.hash = `#/${r}`;
  }, route);
  await p.waitForSelector(`main[data-route="${route}"]`);
}

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
  return page;
}

for (const theme of THEMES) {
  for (const [width, height] of SIZES) {
    describe(`layout at ${width}×${height}, ${theme}`, () => {
      for (const view of VIEWS) {
        it(`${view.route}: no overflowing panel, no text squeezed to a character per line, truncated values titled`, async () => {
          const p = await show(theme, width, height, view);
          await check(p, `${view.route}-${width}x${height}-${theme}`, errors);
        });
      }
    });
  }
}

/** The region whose state each view's empty and error rendering is named by. */
const REGION = /** @type {Record<string, string>} */ ({
  overview: 'overview',
  traces: 'traces',
  approvals: 'approvals',
  releases: 'releases',
  evals: 'evals',
  smoke: 'smoke',
  settings: 'settings',
});

for (const scenario of /** @type {const} */ (['empty', 'error'])) {
  describe(`layout at 1024×768: every view ${scenario}`, () => {
    /** @type {Awaited<ReturnType<typeof minimumPage>> | undefined} */
    let m;
    before(async () => {
      m = await minimumPage(scenario);
    });
    after(() => m?.close());
    for (const view of VIEWS) {
      it(`${view.route} ${scenario}`, async () => {
        if (!m) throw new Error('no page');
        await go(m.page, view.route);
        await expectState(m.page, REGION[view.route] ?? view.route, scenario);
        await check(m.page, `${view.route}-${scenario}-1024x768`, m.pageErrors);
      });
    }
  });
}

describe('layout at 1024×768: forms and dialogs', () => {
  /** @type {Awaited<ReturnType<typeof minimumPage>> | undefined} */
  let m;
  before(async () => {
    m = await minimumPage('full');
  });
  after(() => m?.close());
  const page = () => {
    if (!m) throw new Error('no page');
    return m.page;
  };

  it('settings with both connection forms open', async () => {
    const p = page();
    await go(p, 'settings');
    await expectState(p, 'settings', 'full');
    await p.getByRole('button', { name: 'Add agent endpoint' }).first().click();
    await p.getByRole('button', { name: 'Add Kubernetes cluster' }).first().click();
    await expectState(p, 'kube-contexts', 'full');
    await check(p, 'settings-forms-1024x768', m?.pageErrors ?? []);
  });

  it('an approval with the reject reason open', async () => {
    const p = page();
    await go(p, 'approvals');
    await expectState(p, 'approval-detail', 'full');
    await p.locator('[data-approval] button', { hasText: 'Reject' }).click();
    await p.locator('[data-approval] textarea').waitFor();
    await check(p, 'approvals-reject-1024x768', m?.pageErrors ?? []);
    await p.keyboard.press('Escape');
  });

  it("a release's promote confirmation", async () => {
    const p = page();
    await go(p, 'releases');
    await expectState(p, 'release-detail', 'full');
    await p.locator('[data-release="support-agent"] button[data-release-action="promote_step"]').click();
    await p.locator('dialog[open] [data-release-dialog="promote_step"]').waitFor();
    await check(p, 'releases-promote-1024x768', m?.pageErrors ?? []);
    await p.keyboard.press('Escape');
    await p.waitForSelector('dialog[open]', { state: 'detached' });
  });

  it('the incident switch and the command palette', async () => {
    const p = page();
    await go(p, 'overview');
    await p.locator('button', { hasText: 'Incident switch' }).click();
    await p.locator('dialog[open] textarea').waitFor();
    await check(p, 'incident-1024x768', m?.pageErrors ?? []);
    await p.keyboard.press('Escape');
    await p.waitForSelector('dialog[open]', { state: 'detached' });
    await p.keyboard.press('Control+k');
    await p.waitForSelector('dialog.palette[open] input[role="combobox"]');
    await check(p, 'palette-1024x768', m?.pageErrors ?? []);
    await p.keyboard.press('Escape');
  });
});
