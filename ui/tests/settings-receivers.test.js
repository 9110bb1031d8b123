// @ts-check
// Settings → Notifications: the active connection's receivers listed (only the URL's host,
// never a secret), one added through the form and shown at once, bad input answered in the
// form without losing what was typed, a test notification queued, one deleted; a read-only
// key sees the list with its buttons disabled and the reason; laid out without overflow at
// the minimum window in both themes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calls, expectState, shot, useBrowser } from './harness.js';
import { formatProblems, layoutProblems } from './layout.js';

const ui = useBrowser();

describe('settings receivers', () => {
  it('lists, adds, tests and deletes receivers', async () => {
    const { page, errors, close } = await ui.open({ route: 'settings' });
    await expectState(page, 'receivers', 'full');
    assert.equal(await page.locator('[data-receiver]').count(), 3);
    assert.match(await page.locator('[data-receiver="rcv_0192f2"]').innerText(), /#support-approvals[\s\S]*Slack[\s\S]*https:\/\/hooks\.slack\.com[\s\S]*approval\.created, approval\.expiring/);

    await page.getByRole('button', { name: 'Add receiver' }).click();
    const form = page.getByRole('form', { name: 'Add a notification receiver' });
    await form.getByLabel('Name').fill('Ops hook');
    await form.getByLabel('URL').fill('https://hooks.ops.example/path?token=abc');
    await form.getByLabel('Signing secret (whsec_…)').fill('not-a-secret');
    await form.getByLabel('budget.burn').check();
    await form.getByRole('button', { name: 'Add', exact: true }).click();
    assert.match(await page.locator('[data-receiver-error]').innerText(), /whsec_/);
    assert.equal(await form.getByLabel('Name').inputValue(), 'Ops hook', 'what was typed stays');
    await form.getByLabel('Signing secret (whsec_…)').fill('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw5mJ+XwPbJNM=');
    await form.getByRole('button', { name: 'Add', exact: true }).click();
    await page.locator('[data-receiver="rcv_0004"]').waitFor();
    const row = await page.locator('[data-receiver="rcv_0004"]').innerText();
    assert.match(row, /Ops hook[\s\S]*secret[\s\S]*https:\/\/hooks\.ops\.example[\s\S]*budget\.burn/);
    assert.doesNotMatch(row, /token=abc|whsec_/);
    const create = (await calls(page)).filter((c) => c.command === 'create_receiver').at(-1);
    assert.deepEqual(create?.args, { name: 'Ops hook', format: 'webhook', url: 'https://hooks.ops.example/path?token=abc', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw5mJ+XwPbJNM=', events: ['budget.burn'] });

    await page.locator('[data-receiver="rcv_0004"]').getByRole('button', { name: 'Test' }).click();
    await page.getByText('Test notification queued for Ops hook').waitFor();
    await page.locator('[data-receiver="rcv_0192f1"]').getByRole('button', { name: 'Delete' }).click();
    await page.locator('[data-receiver="rcv_0192f1"]').waitFor({ state: 'detached' });
    assert.equal(await page.locator('[data-receiver]').count(), 3);
    assert.deepEqual(errors, []);
    await close();
  });

  it('a read-only key sees the receivers but cannot change them', async () => {
    const { page, close } = await ui.open({ route: 'settings', readOnly: true });
    await expectState(page, 'receivers', 'full');
    const del = page.locator('[data-receiver="rcv_0192f1"]').getByRole('button', { name: 'Delete' });
    assert.equal(await del.isDisabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Add receiver' }).isDisabled(), true);
    await close();
  });

  for (const theme of /** @type {const} */ (['light', 'dark'])) {
    it(`fits the minimum window with the form open (1024×768, ${theme})`, async () => {
      const { page, errors, close } = await ui.open({ route: 'settings', width: 1024, height: 768, theme });
      await expectState(page, 'receivers', 'full');
      if ((await page.locator('html').getAttribute('data-theme')) !== theme) {
        await page.locator('[data-theme-toggle]').click();
        await page.waitForFunction((t) => document.documentElement.dataset['theme'] === t, theme);
      }
      await page.getByRole('button', { name: 'Add receiver' }).click();
      const panel = page.getByRole('form', { name: 'Add a notification receiver' });
      await panel.scrollIntoViewIfNeeded();
      const problems = await layoutProblems(page);
      assert.deepEqual(problems, [], formatProblems(problems));
      await shot(page, `settings-receivers-1024x768-${theme}`);
      assert.deepEqual(errors, []);
      await close();
    });
  }
});
