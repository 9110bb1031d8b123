// @ts-check
// The Smoke tests view beyond its states: the kind of model server (Ollama or an
// OpenAI-compatible server with its URL, key and served models, and no pull), a pull's
// progress added up over all its layers, and a failed pull showing the server's error.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calls, expectState, shot, useBrowser } from './harness.js';

const ui = useBrowser();

/**
 * The last call of `command` the UI made.
 * @param {import('playwright-core').Page} page
 * @param {string} command
 */
async function lastCall(page, command) {
  const c = (await calls(page)).filter((x) => x.command === command).at(-1);
  assert.ok(c, `${command} was called`);
  return /** @type {Record<string, unknown>} */ (c.args);
}

describe('smoke tests: the kind of model server', () => {
  it('runs against an OpenAI-compatible server: URL, served models, no pull, its own checks', async () => {
    const { page, errors, close } = await ui.open({ route: 'smoke' });
    await expectState(page, 'smoke', 'full');
    // Ollama first, with its pull form.
    assert.equal(await page.locator('[data-smoke-target]').getAttribute('data-smoke-target'), 'ollama');
    assert.equal(await page.locator('#pull-name').count(), 1);

    await page.getByRole('radiogroup', { name: 'Kind of model server' }).getByText('OpenAI-compatible').click();
    assert.equal(await page.locator('[data-smoke-target]').getAttribute('data-smoke-target'), 'openai_compatible');
    await expectState(page, 'model-server', 'full');
    // The console's proposal, and what that server serves; nothing to pull.
    assert.equal(await page.locator('#server-url').inputValue(), 'http://127.0.0.1:8080/v1');
    await page.locator('[data-model-server="reachable"]').waitFor();
    assert.equal(await page.locator('input[name="server-model"][value="smollm2-135m-instruct"]').isChecked(), true);
    assert.equal(await page.locator('#pull-name').count(), 0, 'no pull for an OpenAI-compatible server');
    assert.equal(await page.getByRole('button', { name: 'Pull' }).count(), 0);
    await shot(page, 'smoke-openai-compatible');

    await page.getByLabel('Also through the agent-service').uncheck();
    await page.getByRole('button', { name: 'Run with smollm2-135m-instruct' }).click();
    await page.waitForSelector('[data-smoke-progress] [role="progressbar"]');
    await page.locator('[data-toast]', { hasText: 'Smoke suite finished' }).waitFor({ timeout: 8000 });
    assert.deepEqual(await lastCall(page, 'run_smoke'), {
      model: 'smollm2-135m-instruct',
      through_agent: false,
      target: 'openai_compatible',
      server_url: 'http://127.0.0.1:8080/v1',
      api_key: null,
    });
    // The report names its kind; the kind's own titles; what the API cannot say is skipped.
    await page.locator('[data-report-target="openai_compatible"]', { hasText: 'OpenAI-compatible http://127.0.0.1:8080/v1' }).waitFor();
    await page.locator('[data-check="reachability"]', { hasText: 'Server reachable' }).waitFor();
    await page.locator('[data-check="model_present"]', { hasText: 'Model served' }).waitFor();
    assert.equal(await page.locator('[data-check="load_time"]').getAttribute('data-result'), 'skip');
    assert.equal(await page.locator('[data-check="cpu_fallback"]').getAttribute('data-result'), 'skip');
    await page.locator('[data-check="generation"] [data-measurement="time_to_first_token"]', { hasText: 'first answer token' }).waitFor();
    await shot(page, 'smoke-openai-compatible-report');
    // Exported like any other run.
    await page.getByRole('button', { name: 'JSON' }).click();
    await page.locator('[data-toast="success"]', { hasText: /flightdeck-smoke-smk_0004\.json/ }).waitFor();

    // Back to Ollama: its models and the pull form again.
    await page.getByRole('radiogroup', { name: 'Kind of model server' }).getByText('Ollama').click();
    await page.locator('#pull-name').waitFor();
    await page.locator('[data-ollama="reachable"]').waitFor();
    assert.deepEqual(errors, []);
    await close();
  });

  it('says when no server answers at a URL, and keeps a key in the keyring until forgotten', async () => {
    const { page, errors, close } = await ui.open({ route: 'smoke' });
    await expectState(page, 'smoke', 'full');
    await page.getByRole('radiogroup', { name: 'Kind of model server' }).getByText('OpenAI-compatible').click();
    await expectState(page, 'model-server', 'full');

    await page.locator('#server-url').fill('http://127.0.0.1:9999/v1');
    await page.getByRole('button', { name: 'Connect' }).click();
    await expectState(page, 'model-server', 'empty');
    const empty = await page.locator('[data-region="model-server"] [data-state="empty"]').innerText();
    assert.match(empty, /No model server answers/);
    assert.match(empty, /Connection refused/);
    assert.equal(await page.getByRole('button', { name: /^Run with/ }).isDisabled(), true);

    // A key goes to the console once (kept in the keyring for this URL), not into the page.
    await page.locator('#server-url').fill('http://127.0.0.1:8080/v1');
    await page.locator('#server-key').fill('sk-local-123');
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('[data-key-stored]').waitFor();
    assert.deepEqual(await lastCall(page, 'discover_model_server'), { url: 'http://127.0.0.1:8080/v1', api_key: 'sk-local-123' });
    assert.equal(await page.locator('#server-key').inputValue(), '');
    await page.getByRole('button', { name: 'Forget key' }).click();
    await page.locator('[data-toast="success"]', { hasText: 'Key removed from the keyring' }).waitFor();
    assert.deepEqual(await lastCall(page, 'discover_model_server'), { url: 'http://127.0.0.1:8080/v1', api_key: '' });
    assert.equal(await page.locator('[data-key-stored]').count(), 0);
    assert.deepEqual(errors, []);
    await close();
  });
});

describe('smoke tests: pulls', () => {
  it("adds up every layer's bytes in the pull's progress", async () => {
    const { page, errors, close } = await ui.open({ route: 'smoke' });
    await expectState(page, 'models', 'full');
    // Every state of the progress bar while the pull runs.
    await page.evaluate(() => {
      /** @type {{max: string | null, now: string | null, text: string, layers: string | null}[]} */
      const seen = [];
      Object.assign(window, { __pullSeen: seen });
      const note = () => {
        const box = document.querySelector('.pullprog');
        const bar = box?.querySelector('[role="progressbar"]');
        if (!box || !bar) return;
        seen.push({ max: bar.getAttribute('aria-valuemax'), now: bar.getAttribute('aria-valuenow'), text: box.textContent ?? '', layers: box.getAttribute('data-pull-layers') });
      };
      new MutationObserver(note).observe(document.body, { childList: true, subtree: true, attributes: true, characterData: true });
    });
    await page.locator('#pull-name').fill('llama3.2:3b');
    await page.keyboard.press('Enter');
    await page.locator('[data-toast="success"]', { hasText: 'Pulled llama3.2:3b' }).waitFor();
    /** @type {{max: string | null, now: string | null, text: string, layers: string | null}[]} */
    const seen = await page.evaluate(() => /** @type {any} */ (window).__pullSeen);
    // The six layers of llama3.2:3b (weights, license, template, params, …, config).
    const sizes = [2_019_377_376, 1_429, 7_711, 6_016, 96, 561];
    const total = sizes.reduce((a, b) => a + b, 0);
    const maxes = seen.map((s) => Number(s.max)).filter((n) => n > 0);
    assert.ok(maxes.length > 0, `the bar was determinate at some point: ${JSON.stringify(seen.slice(0, 5))}`);
    assert.equal(Math.max(...maxes), total, 'the total is every layer added up, not the current layer');
    // Totals only grow as layers appear; the count of layers is shown.
    assert.ok(
      maxes.every((m, i) => i === 0 || m >= (maxes[i - 1] ?? 0)),
      `the total never shrinks: ${maxes.join(', ')}`,
    );
    assert.ok(seen.every((s) => s.now === null || Number(s.now) <= Number(s.max)), 'never more done than the total');
    const last = seen.filter((s) => s.max !== null).at(-1);
    assert.equal(Number(last?.now), total, 'done: every byte of every layer');
    assert.equal(last?.layers, String(sizes.length));
    assert.match(last?.text ?? '', /2\.0 GB of 2\.0 GB in 6 layers/);
    assert.ok(
      seen.some((s) => /^pulling [0-9a-f]{12}/.test(s.text.trim())),
      `the layers' own status lines are shown: ${JSON.stringify(seen.map((s) => s.text).slice(0, 8))}`,
    );
    assert.deepEqual(errors, []);
    await close();
  });

  it("shows a failed pull's error from the server and no progress left behind", async () => {
    const { page, errors, close } = await ui.open({ route: 'smoke' });
    await expectState(page, 'models', 'full');
    await page.locator('#pull-name').fill('no-such-model:7b');
    await page.keyboard.press('Enter');
    const alert = page.locator('.pull .field-error[role="alert"]');
    await alert.waitFor();
    assert.equal(await alert.innerText(), 'Pulling no-such-model:7b failed: pull model manifest: file does not exist');
    assert.equal(await page.locator('.pullprog').count(), 0, 'the progress bar is gone');
    assert.equal(await page.locator('[data-toast="success"]').count(), 0);
    assert.equal(await page.locator('td.mono', { hasText: 'no-such-model' }).count(), 0);
    // The name stays for a fix, and a good pull clears the error.
    assert.equal(await page.locator('#pull-name').inputValue(), 'no-such-model:7b');
    await page.locator('#pull-name').fill('qwen2.5:0.5b');
    await page.keyboard.press('Enter');
    await page.locator('[data-toast="success"]', { hasText: 'Pulled qwen2.5:0.5b' }).waitFor();
    assert.equal(await alert.count(), 0);
    assert.deepEqual(errors, []);
    await close();
  });
});
