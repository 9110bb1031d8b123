// @ts-check
/**
 * Shared set-up of the browser tests: a static server for the built UI (`dist/`) on
 * 127.0.0.1:0, Debian's Chromium driven by playwright-core, and screenshot helpers.
 * The UI runs with its mock backend (no `__TAURI_INTERNALS__`), controlled through the URL
 * (`?mock=empty|loading|error|full&readonly=1&fast=1`) and `window.__flightdeckMock`.
 */
import { createServer } from 'node:http';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const DIST = join(ROOT, 'dist');
export const SHOTS = join(ROOT, 'test-results', 'screenshots');

const TYPES = /** @type {Record<string, string>} */ ({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.png': 'image/png',
});

/** Serves `dist/` on 127.0.0.1 at a free port. @returns {Promise<{url: string, close: () => Promise<void>}>} */
export async function serveDist() {
  await stat(join(DIST, 'index.html')).catch(() => {
    throw new Error(`${DIST}/index.html is missing: run \`npm run build\` first`);
  });
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = normalize(join(DIST, path === '/' ? 'index.html' : path));
    if (!file.startsWith(DIST)) {
      res.writeHead(403).end();
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body),
      () => res.writeHead(404).end('not found'),
    );
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(undefined)));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    close: () => new Promise((ok) => server.close(() => ok(undefined))),
  };
}

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/**
 * Starts Debian's headless Chromium. Playwright gives every launch a fresh, empty
 * --user-data-dir (a temporary profile it deletes on close); each test then opens its
 * own isolated context (no shared localStorage).
 * @returns {Promise<import('playwright-core').Browser>}
 */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Opens the UI at `route` in a fresh context with the mock in `scenario`.
 * Page errors and console errors are collected so a test can assert there were none.
 * `params` adds mock options to the URL (e.g. `{history: '0'}`: no stored metric history).
 * @param {import('playwright-core').Browser} browser
 * @param {string} base
 * @param {{route?: string, scenario?: 'full'|'empty'|'loading'|'error', readOnly?: boolean, theme?: 'light'|'dark', width?: number, height?: number, params?: Record<string, string>}} [o]
 */
export async function open(browser, base, o = {}) {
  const context = await browser.newContext({ viewport: { width: o.width ?? 1440, height: o.height ?? 900 }, colorScheme: o.theme ?? 'light' });
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  const q = new URLSearchParams({ mock: o.scenario ?? 'full', fast: '1' });
  if (o.readOnly) q.set('readonly', '1');
  for (const [k, v] of Object.entries(o.params ?? {})) q.set(k, v);
  await page.goto(`${base}/?${q}#/${o.route ?? 'overview'}`);
  await page.waitForSelector('main[data-route]');
  return { page, errors, close: () => context.close() };
}

/**
 * One test file's browser: serves `dist/` and starts Chromium before the file's tests,
 * closes both after them. `ui.open(o)` is `open(browser, url, o)`; `ui.url` the server's.
 */
export function useBrowser() {
  /** @type {{url: string, close: () => Promise<void>} | undefined} */
  let server;
  /** @type {import('playwright-core').Browser | undefined} */
  let browser;
  before(async () => {
    server = await serveDist();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });
  const started = () => {
    if (!server || !browser) throw new Error('useBrowser(): used outside a test');
    return { server, browser };
  };
  return {
    get url() {
      return started().server.url;
    },
    /** @param {Parameters<typeof open>[2]} [o] */
    open: (o) => open(started().browser, started().server.url, o),
  };
}

/**
 * Saves a full-window screenshot as test-results/screenshots/<name>.png.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function shot(page, name) {
  await mkdir(SHOTS, { recursive: true });
  // Let fonts and transitions settle so screenshots are stable.
  await page.evaluate(() => document.fonts.ready);
  await page.waitForTimeout(120);
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/**
 * Waits until the region named `region` is in `state` (empty | loading | error | full).
 * @param {import('playwright-core').Page} page
 * @param {string} region
 * @param {'empty'|'loading'|'error'|'full'} state
 */
export async function expectState(page, region, state) {
  await page.waitForSelector(`[data-region="${region}"][data-state="${state}"]`, { state: 'attached', timeout: 5000 });
}

/**
 * The mock's command log, from the page.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<{command: string, args: unknown}[]>}
 */
export function calls(page) {
  return page.evaluate(() => {
    const m = window.__flightdeckMock;
    if (!m) throw new Error('the mock backend is not installed');
    return m.calls.map((c) => ({ command: String(c.command), args: c.args }));
  });
}

/**
 * Runs `fn` against the mock control in the page.
 * @template R
 * @param {import('playwright-core').Page} page
 * @param {(m: import('../src/lib/ipc/mock').MockControl) => R} fn
 * @returns {Promise<R>}
 */
export function mock(page, fn) {
  return page.evaluate(`(${fn.toString()})(window.__flightdeckMock)`);
}
