// @ts-check
// Approvals with the keyboard only: j/k to move, a/r to decide, the required reason (and
// its error), Enter to confirm, Esc to cancel; N-of-M; a pushed approval_event appearing
// in the queue with a desktop notification through the backend's `notify` command.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calls, expectState, mock, shot, useBrowser } from './harness.js';

const ui = useBrowser();

/** @param {import('playwright-core').Page} page */
async function selectedId(page) {
  return page.locator('#approval-list [role="option"][aria-selected="true"]').getAttribute('data-id');
}

/** @param {import('playwright-core').Page} page */
async function queueIds(page) {
  return page.locator('#approval-list [role="option"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-id') ?? ''));
}

/** @param {import('playwright-core').Page} page */
async function decisions(page) {
  return (await calls(page)).filter((c) => c.command === 'decide_approval');
}

describe('approvals', () => {
  it('approve with the keyboard: j/k, a, the reason is required, Enter confirms; N-of-M stays pending', async () => {
    const { page, errors, close } = await ui.open({ route: 'approvals' });
    await expectState(page, 'approvals', 'full');
    await page.waitForSelector('[data-approval]');
    const ids = await queueIds(page);
    assert.equal(ids.length, 5);
    assert.equal(await selectedId(page), ids[0]);

    await page.keyboard.press('j');
    assert.equal(await selectedId(page), ids[1]);
    await page.keyboard.press('j');
    assert.equal(await selectedId(page), ids[2]);
    await page.keyboard.press('k');
    await page.keyboard.press('k');
    assert.equal(await selectedId(page), ids[0]);
    await page.waitForSelector(`[data-approval="${ids[0]}"]`);

    // a opens the form with the reason field focused.
    await page.keyboard.press('a');
    await page.waitForSelector('form[data-decision="approve"]');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'decision-reason');

    // Enter with no reason: refused, with the reason, and nothing sent.
    await page.keyboard.press('Enter');
    const err = page.locator('#decision-error');
    await err.waitFor();
    assert.match(await err.innerText(), /A reason is required to approve/);
    assert.equal(await page.locator('#decision-reason').getAttribute('aria-invalid'), 'true');
    assert.equal((await decisions(page)).length, 0);
    await shot(page, 'approvals-reason-required');

    // The first request needs 2 approvals: after one it stays pending, 1 of 2.
    await page.keyboard.type('Matches the carrier damage report.');
    await page.keyboard.press('Enter');
    await page.locator('[data-toast="success"]', { hasText: `Approved ${ids[0]}` }).waitFor();
    const sent = await decisions(page);
    assert.deepEqual(sent.map((c) => c.args), [{ id: ids[0], decision: 'approve', reason: 'Matches the carrier damage report.' }]);
    await page.locator(`[data-approval="${ids[0]}"]`, { hasText: '1 of 2 approvals' }).waitFor();
    assert.deepEqual(await queueIds(page), ids);

    // The second needs one: it leaves the queue and the next one is selected.
    await page.keyboard.press('j');
    await page.waitForSelector(`[data-approval="${ids[1]}"]`);
    await page.keyboard.press('a');
    await page.keyboard.type('Duplicate contact confirmed by the customer.');
    await page.keyboard.press('Enter');
    await page.locator('[data-toast="success"]', { hasText: `Approved ${ids[1]}` }).waitFor();
    await page.waitForFunction((id) => !document.querySelector(`#approval-list [data-id="${id}"]`), ids[1]);
    assert.equal((await queueIds(page)).length, 4);
    assert.equal(await page.locator('[data-nav="approvals"] .count').innerText(), '4');
    assert.deepEqual(errors, []);
    await close();
  });

  it('reject with the keyboard: Esc cancels, r + reason + Enter rejects, history shows it', async () => {
    const { page, errors, close } = await ui.open({ route: 'approvals' });
    await page.waitForSelector('[data-approval]');
    const ids = await queueIds(page);
    await page.keyboard.press('j');
    await page.waitForSelector(`[data-approval="${ids[1]}"]`);

    await page.keyboard.press('r');
    await page.waitForSelector('form[data-decision="reject"]');
    await page.keyboard.type('draft');
    await page.keyboard.press('Escape');
    await page.waitForSelector('form[data-decision]', { state: 'detached' });
    assert.equal((await decisions(page)).length, 0, 'Esc sends nothing');

    await page.keyboard.press('r');
    assert.equal(await page.locator('#decision-reason').inputValue(), '', 'a new decision starts with an empty reason');
    await page.keyboard.type('The contact belongs to another customer.');
    await page.keyboard.press('Enter');
    await page.locator('[data-toast="success"]', { hasText: `Rejected ${ids[1]}` }).waitFor();
    assert.deepEqual((await decisions(page)).map((c) => c.args), [{ id: ids[1], decision: 'reject', reason: 'The contact belongs to another customer.' }]);
    await page.waitForFunction((id) => !document.querySelector(`#approval-list [data-id="${id}"]`), ids[1]);

    await page.getByRole('tab', { name: 'History' }).click();
    await expectState(page, 'approvals', 'full');
    const row = page.locator(`#approval-list [data-id="${ids[1]}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /rejected/);
    assert.deepEqual(errors, []);
    await close();
  });

  it('a decision the backend refuses shows its message in the form', async () => {
    const { page, close } = await ui.open({ route: 'approvals' });
    await page.waitForSelector('[data-approval]');
    await mock(page, (m) => m.failNext('decide_approval', { code: 'conflict', server_code: 'separation_of_duties', message: 'You proposed this change; another approver must decide it' }));
    await page.keyboard.press('a');
    await page.keyboard.type('ok');
    await page.keyboard.press('Enter');
    const err = page.locator('#decision-error');
    await err.waitFor();
    assert.match(await err.innerText(), /another approver must decide it/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'decision-reason', 'focus stays in the reason field');
    await close();
  });

  it('a pushed approval_event appears in the queue and raises a desktop notification via notify', async () => {
    const { page, errors, close } = await ui.open({ route: 'approvals' });
    await page.waitForSelector('[data-approval]');
    assert.equal((await queueIds(page)).length, 5);
    const pushed = await mock(page, (m) => m.pushApproval({ tool: 'crm.close_ticket', resource: 'ticket/50001' }));
    const row = page.locator(`#approval-list [data-id="${pushed.id}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /crm\.close_ticket/);
    assert.match(await row.innerText(), /new/);
    assert.equal((await queueIds(page)).length, 6);
    assert.equal(await page.locator('[data-nav="approvals"] .count').innerText(), '6');
    const notes = await mock(page, (m) => m.notifications.slice());
    assert.equal(notes.length, 1);
    assert.match(notes[0]?.title ?? '', /Approval waiting: crm\.close_ticket/);
    assert.match(notes[0]?.body ?? '', /ticket\/50001/);
    await shot(page, 'approvals-pushed-event');
    assert.deepEqual(errors, []);
    await close();
  });

  it('an arrived approval is marked new until it is decided, then no longer (history shows it unmarked)', async () => {
    const { page, errors, close } = await ui.open({ route: 'approvals' });
    await page.waitForSelector('[data-approval]');
    const pushed = await mock(page, (m) => m.pushApproval({ tool: 'crm.close_ticket', resource: 'ticket/50002' }));
    const newPill = (/** @type {string} */ id) => page.locator(`#approval-list [data-id="${id}"] .pill`, { hasText: /^new$/ });
    await newPill(pushed.id).waitFor();
    await page.locator(`#approval-list [data-id="${pushed.id}"]`).click();
    await page.waitForSelector(`[data-approval="${pushed.id}"]`);
    await page.keyboard.press('r');
    await page.waitForSelector('form[data-decision="reject"]');
    await page.keyboard.type('Not this one.');
    await page.keyboard.press('Enter');
    await page.locator('[data-toast="success"]', { hasText: `Rejected ${pushed.id}` }).waitFor();
    await page.waitForFunction((id) => !document.querySelector(`#approval-list [data-id="${id}"]`), pushed.id);

    await page.getByRole('tab', { name: 'History' }).click();
    const row = page.locator(`#approval-list [data-id="${pushed.id}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /rejected/);
    assert.equal(await newPill(pushed.id).count(), 0, 'a decided approval is not new any more');
    assert.deepEqual(errors, []);
    await close();
  });

  it('events arrive on any view: the sidebar count and notification update off the approvals page', async () => {
    const { page, close } = await ui.open({ route: 'overview' });
    await page.waitForSelector('[data-nav="approvals"] .count');
    await mock(page, (m) => m.pushApproval());
    await page.waitForFunction(() => document.querySelector('[data-nav="approvals"] .count')?.textContent === '6');
    assert.equal((await mock(page, (m) => m.notifications.length)), 1);
    await close();
  });

  it('expiry countdowns tick', async () => {
    const { page, close } = await ui.open({ route: 'approvals' });
    await page.waitForSelector('[data-approval]');
    const cd = page.locator('#approval-list [role="option"] .countdown').first();
    const a = await cd.innerText();
    assert.match(a, /^\d+:\d\d$/);
    await page.waitForFunction((before) => document.querySelector('#approval-list [role="option"] .countdown')?.textContent?.trim() !== before, a, { timeout: 3000 });
    await close();
  });

  it('the trace link opens the traces view filtered by the request id', async () => {
    const { page, close } = await ui.open({ route: 'approvals' });
    await page.waitForSelector('[data-approval]');
    await page.locator('[data-trace-link]').click();
    await page.waitForSelector('main[data-route="traces"]');
    const value = await page.locator('#rid').inputValue();
    assert.match(value, /^req_/);
    const q = (await calls(page)).filter((c) => c.command === 'list_traces').at(-1);
    assert.ok(q);
    assert.equal(/** @type {{request_id: string}} */ (q.args).request_id, value);
    await close();
  });

  it('the audit chain status is shown and can be verified again', async () => {
    const { page, close } = await ui.open({ route: 'approvals' });
    await page.waitForSelector('[data-audit="ok"]');
    assert.match(await page.locator('[data-audit]').innerText(), /Audit chain intact · [\d,]+ events/);
    const before = (await calls(page)).filter((c) => c.command === 'verify_audit').length;
    await page.locator('[data-audit] button', { hasText: 'Verify' }).click();
    await page.waitForSelector('[data-audit="ok"]');
    await page.waitForFunction(() => !document.querySelector('[data-audit] button[aria-busy="true"]'));
    assert.equal((await calls(page)).filter((c) => c.command === 'verify_audit').length, before + 1);
    await close();
  });
});
