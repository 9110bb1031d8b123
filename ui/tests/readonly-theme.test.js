// @ts-check
// A read-only key gives a read-only console: denied actions are disabled with the reason
// (tooltip and text for screen readers), also in the palette and on their shortcuts; a
// permissions_event applies without a reload. The theme toggle switches and persists.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calls, expectState, mock, shot, useBrowser } from './harness.js';

const ui = useBrowser();

/**
 * Asserts `button` is disabled, marked denied, and carries `reason` as its tooltip and
 * as the text its aria-describedby points to.
 * @param {import('playwright-core').Locator} button
 * @param {RegExp} reason
 */
async function assertDenied(button, reason) {
  assert.equal(await button.isDisabled(), true, 'disabled');
  assert.equal(await button.getAttribute('data-denied'), 'true');
  const title = (await button.locator('xpath=..').getAttribute('title')) ?? '';
  assert.match(title, reason, 'tooltip gives the reason');
  const describedBy = await button.getAttribute('aria-describedby');
  assert.ok(describedBy, 'aria-describedby is set');
  const text = await button.page().locator(`[id="${describedBy}"]`).textContent();
  assert.match(text ?? '', reason, 'screen-reader text gives the reason');
}

describe('read-only connection', () => {
  it('approvals: approve/reject disabled with the reason; a and r do nothing but explain', async () => {
    const { page, errors, close } = await ui.open({ route: 'approvals', readOnly: true });
    await page.waitForSelector('[data-approval]');
    await page.waitForSelector('[data-readonly]');
    assert.match(await page.locator('[data-readonly]').innerText(), /Read-only · viewer/);
    await assertDenied(page.locator('[data-approval] button[data-action="approve"]'), /do not include approver/);
    await assertDenied(page.locator('[data-approval] button[data-action="reject"]'), /do not include approver/);
    await assertDenied(page.locator('header button[data-action="incident_switch"]'), /do not include operator/);
    await page.keyboard.press('a');
    await page.locator('[data-toast="error"]', { hasText: /Cannot approve/ }).waitFor();
    assert.equal(await page.locator('form[data-decision]').count(), 0);
    assert.equal((await calls(page)).filter((c) => c.command === 'decide_approval').length, 0);
    await shot(page, 'approvals-readonly');
    assert.deepEqual(errors, []);
    await close();
  });

  it('evals and the palette: denied commands are listed disabled with the reason and do not run', async () => {
    const { page, close } = await ui.open({ route: 'evals', readOnly: true });
    await expectState(page, 'eval-suites', 'full');
    await assertDenied(page.locator('[data-suite="golden"] button[data-action="start_eval"]'), /do not include operator/);
    await page.keyboard.press('Control+k');
    await page.keyboard.type('start eval golden');
    const option = page.locator('dialog.palette [role="option"]').first();
    assert.equal(await option.getAttribute('aria-disabled'), 'true');
    assert.match(await option.innerText(), /do not include operator/);
    await shot(page, 'palette-readonly');
    await page.keyboard.press('Enter');
    assert.equal(await page.locator('dialog.palette[open]').count(), 1, 'Enter on a denied command does nothing');
    assert.equal((await calls(page)).filter((c) => c.command === 'start_eval').length, 0);
    await close();
  });

  it('settings lists each action with allowed/denied and the reason', async () => {
    const { page, close } = await ui.open({ route: 'settings', readOnly: true });
    await expectState(page, 'permissions', 'full');
    const row = page.locator('[data-permission="approve"]');
    assert.match(await row.innerText(), /denied[\s\S]*do not include approver/);
    assert.match(await page.locator('[data-permission="run_smoke"]').innerText(), /allowed/);
    await close();
  });

  it('a permissions_event applies at once, without a reload', async () => {
    const { page, close } = await ui.open({ route: 'approvals' });
    await page.waitForSelector('[data-approval]');
    const approve = page.locator('[data-approval] button[data-action="approve"]');
    assert.equal(await approve.isDisabled(), false);
    await mock(page, (m) => m.setReadOnly(true));
    await page.waitForSelector('[data-approval] button[data-action="approve"][data-denied="true"]');
    await mock(page, (m) => m.setReadOnly(false));
    await page.waitForSelector('[data-approval] button[data-action="approve"]:not([data-denied])');
    assert.equal(await approve.isDisabled(), false);
    await close();
  });
});

describe('theme', () => {
  it('toggles light/dark, saves it to the backend, and keeps it across a reload', async () => {
    const { page, errors, close } = await ui.open({ route: 'settings' });
    await expectState(page, 'retention', 'full');
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(await page.locator('html').getAttribute('data-theme'), 'light');
    const light = await bg();
    await page.locator('[data-theme-toggle]').click();
    assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
    assert.notEqual(await bg(), light);
    await page.waitForFunction(() => window.__flightdeckMock?.calls.some((c) => c.command === 'update_settings'));
    const saved = (await calls(page)).filter((c) => c.command === 'update_settings').at(-1);
    assert.ok(saved);
    assert.equal(/** @type {{theme: string}} */ (saved.args).theme, 'dark');
    await shot(page, 'settings-full-dark');
    await page.reload();
    await page.waitForSelector('main[data-route="settings"]');
    assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark', 'the first paint after a reload is already dark');
    // The radio group in Settings switches back, by keyboard.
    await page.locator('input[name="theme"][value="light"]').focus();
    await page.keyboard.press('Space');
    assert.equal(await page.locator('html').getAttribute('data-theme'), 'light');
    assert.deepEqual(errors, []);
    await close();
  });
});
