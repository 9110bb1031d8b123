// @ts-check
// The Traces view's guardrail reading: flagged runs carry a badge in the list (a blocked
// run its rule), "Flagged only" reaches the backend and leaves only flagged runs, and a
// flagged trace's detail shows the decision — action, rule, score and each reason with its
// weight — not just attribute strings; an ordinary run's detail says so in one line.
// The flagged trace's view is measured at the minimum, default and a larger window (nothing
// cut off or wider than its panel). Screenshots: test-results/screenshots/traces-guardrail-*.png.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calls, expectState, shot, useBrowser } from './harness.js';
import { formatProblems, layoutProblems } from './layout.js';

const ui = useBrowser();

describe('traces: guardrail decisions', () => {
  for (const theme of /** @type {const} */ (['light', 'dark'])) {
    it(`shows a flagged run in the list and its reasons in the detail (${theme})`, async () => {
      const { page, errors, close } = await ui.open({ route: 'traces', width: 1280, height: 800, theme });
      if ((await page.locator('html').getAttribute('data-theme')) !== theme) {
        await page.locator('[data-theme-toggle]').click();
        await page.waitForFunction((t) => document.documentElement.dataset['theme'] === t, theme);
      }
      await expectState(page, 'traces', 'full');
      const list = page.locator('[role="listbox"][aria-label="Traces"]');

      // The list: the second newest run was flagged and went on.
      const second = list.locator('[role="option"]').nth(1);
      const badge = second.locator('[data-guardrail-badge="flagged"]');
      await badge.waitFor();
      assert.equal((await badge.innerText()).trim(), 'flagged');
      assert.match((await badge.getAttribute('title')) ?? '', /Flagged by a guardrail: prompt_injection/);
      assert.notEqual(await second.locator('[data-status]').getAttribute('data-status'), 'blocked', 'a flag lets the run go on');
      // A blocked run's badge names the rule that blocked it.
      const blocked = list.locator('[role="option"]:has([data-status="blocked"])').first();
      await blocked.waitFor();
      const rule = blocked.locator('[data-guardrail-badge="blocked"]');
      assert.match(await rule.innerText(), /^(prompt_injection|jailbreak|system_prompt_exfiltration)$/);
      assert.match((await rule.getAttribute('title')) ?? '', /^Blocked by the guardrail rule (prompt_injection|jailbreak|system_prompt_exfiltration)$/);
      // Most runs carry no badge.
      const rows = await list.locator('[role="option"]').count();
      const badged = await list.locator('[role="option"]:has([data-guardrail-badge])').count();
      assert.ok(badged > 0 && badged < rows / 2, `${badged} of ${rows} rows badged`);

      // Flagged only: the filter reaches the backend, every row left is flagged.
      await page.getByLabel('Flagged only').check();
      await page.waitForFunction(() => /loaded of [\d,]+$/.test(document.querySelector('[data-trace-count]')?.textContent?.trim() ?? '') && !document.querySelector('[data-trace-count]')?.textContent?.includes('100,000'));
      const total = Number((await page.locator('[data-trace-count]').innerText()).replace(/.* of /, '').replace(/,/g, ''));
      // Every 13th run, when it went on: a few thousand of the 100,000.
      assert.ok(total > 1000 && total < 100_000 / 13, `${total} flagged`);
      const q = (await calls(page)).filter((c) => c.command === 'list_traces').at(-1);
      assert.ok(q, 'list_traces was called');
      assert.equal(/** @type {{flagged_only: boolean}} */ (q.args).flagged_only, true);
      await expectState(page, 'traces', 'full');
      const shown = await list.locator('[role="option"]').count();
      assert.ok(shown > 5, `${shown} rows`);
      assert.equal(await list.locator('[role="option"]:has([data-guardrail-badge="flagged"])').count(), shown);

      // The detail of the first flagged run: the panel, the input decision and its reasons.
      await expectState(page, 'trace-detail', 'full');
      const detail = page.locator('[data-region="trace-detail"]');
      await detail.locator('.dhead [data-guardrail-badge="flagged"]').waitFor();
      const panel = detail.locator('[data-guardrail="panel"]');
      await panel.waitFor();
      const input = panel.locator('li[data-stage="input"]');
      assert.equal((await input.locator('[data-verdict]').innerText()).trim(), 'flagged');
      assert.match(await input.innerText(), /prompt_injection/);
      assert.match(await input.innerText(), /0\.71/);
      const reasons = input.locator('table.reasons tr');
      assert.deepEqual(
        (await reasons.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim()),
        ['override_prior +3.25', 'new_instructions +1.84', 'classifier +1.38'],
      );
      // The answer's link taken out is listed by host.
      assert.match(await panel.locator('li[data-stage="output"]').innerText(), /Links removed\s*collect\.attacker\.example/);
      // Nothing of the panel is cut off or wider than the detail.
      const overflow = await panel.evaluate((el) => {
        const box = el.getBoundingClientRect();
        const out = [...el.querySelectorAll('*')].filter((c) => {
          const r = c.getBoundingClientRect();
          return r.width > 0 && (r.right > box.right + 0.5 || r.left < box.left - 0.5);
        });
        return out.map((c) => c.outerHTML.slice(0, 80));
      });
      assert.deepEqual(overflow, []);
      await shot(page, `traces-guardrail-1280x800-${theme}`);

      // An ordinary run: one line, no panel.
      await page.getByLabel('Flagged only').uncheck();
      await page.locator('[data-trace-count]', { hasText: 'of 100,000' }).waitFor();
      const plain = list.locator('[role="option"]:not(:has([data-guardrail-badge]))').first();
      await plain.click();
      const id = await plain.getAttribute('data-row');
      await detail.locator('.mono', { hasText: id ?? '' }).first().waitFor();
      assert.equal(await detail.locator('[data-guardrail-badge]').count(), 0);
      assert.equal(await detail.locator('[data-guardrail="panel"], [data-guardrail="quiet"]').count(), 1);
      await shot(page, `traces-guardrail-plain-1280x800-${theme}`);
      assert.deepEqual(errors, []);
      await close();
    });
  }

  for (const [width, height] of /** @type {const} */ ([
    [1024, 768],
    [1280, 800],
    [1440, 900],
  ])) {
    it(`fits the flagged trace's view at ${width}×${height}`, async () => {
      const { page, errors, close } = await ui.open({ route: 'traces', width, height });
      await expectState(page, 'traces', 'full');
      const row = page.locator('[role="listbox"][aria-label="Traces"] [role="option"]').nth(1);
      await row.click();
      const detail = page.locator('[data-region="trace-detail"]');
      await detail.locator('.mono', { hasText: (await row.getAttribute('data-row')) ?? '' }).first().waitFor();
      await detail.locator('[data-guardrail="panel"] li[data-stage="input"] table.reasons').waitFor();
      // Where the list has room, the badge says it in words; narrower, the icon alone.
      const text = row.locator('[data-guardrail-badge] .text');
      const words = await text.evaluate((el) => el.getBoundingClientRect().width > 1);
      assert.equal(words, width >= 1440, `badge text shown at ${width}`);
      await page.evaluate(() => document.fonts.ready);
      const problems = await layoutProblems(page);
      await shot(page, `traces-guardrail-${width}x${height}`);
      assert.equal(problems.length, 0, formatProblems(problems));
      assert.deepEqual(errors, []);
      await close();
    });
  }
});
