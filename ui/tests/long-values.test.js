// @ts-check
// Long ids and names at the smallest window: cut with an ellipsis, whole in the title,
// selected whole by one click, and copied whole by the copy button; a clipboard that
// refuses leaves the value selected and says so.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expectState, useBrowser } from './harness.js';

const ui = useBrowser();

describe('long values', () => {
  it("a trace's model is cut, titled, selected by a click and copied whole", async () => {
    const { page, errors, close } = await ui.open({ route: 'traces', width: 1024, height: 768 });
    await expectState(page, 'trace-detail', 'full');
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ui.url });
    const model = page.locator('[data-region="trace-detail"] .facts [data-copyable]').last();
    const full = await model.getAttribute('title');
    assert.ok(full && full.length > 40, `a long model name (${full})`);
    const text = model.locator('.text');
    assert.equal((await text.innerText()).trim(), full, 'the whole value is in the DOM');
    assert.ok(await text.evaluate((el) => el.scrollWidth > el.clientWidth), 'it is cut to its room');

    // One click selects all of it.
    await text.click();
    assert.equal(await page.evaluate(() => window.getSelection()?.toString()), full);

    await model.hover();
    await model.getByRole('button', { name: 'Copy the model' }).click();
    await model.getByRole('button', { name: 'Copied the model' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), full);
    assert.deepEqual(errors, []);
    await close();
  });

  it('a refused clipboard leaves the value selected and says how to copy it', async () => {
    const { page, close } = await ui.open({ route: 'approvals', width: 1024, height: 768 });
    await expectState(page, 'approval-detail', 'full');
    await page.evaluate(() => {
      navigator.clipboard.writeText = () => Promise.reject(new DOMException('Write permission denied.', 'NotAllowedError'));
    });
    const request = page.locator('[data-approval] [data-copyable]').first();
    const full = await request.getAttribute('title');
    await request.hover();
    await request.getByRole('button', { name: 'Copy the request id' }).click();
    await page.locator('[data-toast="error"]', { hasText: 'Could not copy the request id' }).waitFor();
    assert.equal(await page.evaluate(() => window.getSelection()?.toString()), full);
    await close();
  });
});
