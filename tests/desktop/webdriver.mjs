// @ts-check
// A small W3C WebDriver client over fetch (Node 20+), enough to drive the real Flightdeck app
// through tauri-driver + WebKitWebDriver: sessions, elements, keyboard, scripts, screenshots.
// Every failing command throws with WebDriver's error code and message.

import { setTimeout as sleep } from 'node:timers/promises';

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

/** Special keys of the W3C key table. */
export const Key = { Enter: '\uE007', Escape: '\uE00C', Tab: '\uE004' };

export class WebDriverError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

export class Session {
  /** @param {string} base @param {string} id */
  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  /**
   * Starts the app at `application` (tauri-driver launches it through WebKitWebDriver).
   * @param {string} base tauri-driver's URL, e.g. http://127.0.0.1:4444
   * @param {string} application absolute path of the app binary
   * @param {string[]} [args]
   */
  static async start(base, application, args = []) {
    const value = await request(base, 'POST', '/session', {
      capabilities: { alwaysMatch: { browserName: 'wry', 'tauri:options': { application, args } } },
    });
    return new Session(base, value.sessionId);
  }

  /** @param {string} method @param {string} path @param {unknown} [body] */
  cmd(method, path, body) {
    return request(this.base, method, `/session/${this.id}${path}`, body);
  }

  async end() {
    await this.cmd('DELETE', '');
  }

  title() {
    return this.cmd('GET', '/title');
  }

  /** @param {string} script a function body; `arguments` holds args @param {unknown[]} [args] */
  exec(script, args = []) {
    return this.cmd('POST', '/execute/sync', { script, args });
  }

  /** @param {string} script a function body whose last argument is the callback @param {unknown[]} [args] */
  execAsync(script, args = []) {
    return this.cmd('POST', '/execute/async', { script, args });
  }

  /** @param {string} css @returns {Promise<string>} element id */
  async find(css) {
    const v = await this.cmd('POST', '/element', { using: 'css selector', value: css });
    return v[ELEMENT];
  }

  /** @param {string} css @returns {Promise<string[]>} */
  async findAll(css) {
    const v = await this.cmd('POST', '/elements', { using: 'css selector', value: css });
    return v.map((/** @type {Record<string,string>} */ e) => e[ELEMENT]);
  }

  /** @param {string} el */
  click(el) {
    return this.cmd('POST', `/element/${el}/click`, {});
  }

  /** @param {string} el @returns {Promise<string>} */
  text(el) {
    return this.cmd('GET', `/element/${el}/text`);
  }

  /** A DOM property of an element (e.g. an input's `value`). @param {string} el @param {string} name */
  property(el, name) {
    return this.cmd('GET', `/element/${el}/property/${name}`);
  }

  /** Empties an input or textarea. @param {string} el */
  clear(el) {
    return this.cmd('POST', `/element/${el}/clear`, {});
  }

  /** Focuses an element and types `text` into it (WebDriver "Element Send Keys"). @param {string} el @param {string} text */
  sendKeys(el, text) {
    return this.cmd('POST', `/element/${el}/value`, { text });
  }

  /** Types into the focused element (keyboard shortcuts included). @param {string} text */
  async type(text) {
    const actions = [];
    for (const ch of text) actions.push({ type: 'keyDown', value: ch }, { type: 'keyUp', value: ch });
    await this.cmd('POST', '/actions', { actions: [{ type: 'key', id: 'kbd', actions }] });
    await this.cmd('DELETE', '/actions');
  }

  /** @returns {Promise<Buffer>} a PNG of the window */
  async screenshot() {
    return Buffer.from(await this.cmd('GET', '/screenshot'), 'base64');
  }

  /**
   * Waits until `css` matches an element (whose text matches `text`, if given).
   * @param {string} css @param {{timeout?: number, text?: RegExp, interval?: number}} [o]
   * @returns {Promise<string>} the element id
   */
  async waitFor(css, o = {}) {
    const until = Date.now() + (o.timeout ?? 10_000);
    let last = '';
    for (;;) {
      try {
        for (const el of await this.findAll(css)) {
          if (!o.text) return el;
          last = await this.text(el);
          if (o.text.test(last)) return el;
        }
      } catch (e) {
        // The element went stale between find and text: look again.
        if (!(e instanceof WebDriverError) || e.code !== 'stale element reference') throw e;
      }
      if (Date.now() > until) {
        throw new Error(`timed out waiting for ${css}${o.text ? ` with text ${o.text} (last: ${JSON.stringify(last)})` : ''}`);
      }
      await sleep(o.interval ?? 50);
    }
  }
}

/** @param {string} base @param {string} method @param {string} path @param {unknown} [body] */
async function request(base, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = /** @type {{value: any}} */ (await res.json().catch(() => ({ value: { error: 'bad response', message: `HTTP ${res.status}` } })));
  if (!res.ok || (json.value && typeof json.value === 'object' && 'error' in json.value)) {
    throw new WebDriverError(json.value?.error ?? `HTTP ${res.status}`, `${method} ${path}: ${json.value?.message ?? ''}`);
  }
  return json.value;
}

/** Waits until `url` answers (any status). @param {string} url @param {number} [timeout] */
export async function waitForHttp(url, timeout = 15_000) {
  const until = Date.now() + timeout;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch {
      if (Date.now() > until) throw new Error(`${url} did not answer within ${timeout} ms`);
      await sleep(100);
    }
  }
}
