// @ts-check
// The Releases view: its four states; releases waiting for a decision first and
// kept live by release_event; the analysis with the failing metric; promote / abort / undo
// confirmed with a required reason, with progress and their results; the keyboard-only
// promote; a conflict reloading the release; read-only rendering with the SSAR reason; an
// unreachable cluster not hiding the others; the palette's "promote …" confirmation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calls, expectState, mock, shot, useBrowser } from './harness.js';

const ui = useBrowser();

/** @param {import('playwright-core').Page} page */
function names(page) {
  return page.locator('#release-list [role="option"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-name') ?? ''));
}

/** @param {import('playwright-core').Page} page */
function selectedName(page) {
  return page.locator('#release-list [role="option"][aria-selected="true"]').getAttribute('data-name');
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} command
 */
async function sent(page, command) {
  return (await calls(page)).filter((c) => c.command === command);
}

/** Opens the Releases view in the full scenario with the first release's detail shown. */
async function openFull(/** @type {{readOnly?: boolean}} */ o = {}) {
  const r = await ui.open({ route: 'releases', readOnly: o.readOnly });
  await expectState(r.page, 'releases', 'full');
  await r.page.waitForSelector('[data-release="support-agent"]');
  return r;
}

const SUPPORT = { profile_id: 'k8s-prod-eu', namespace: 'agents', name: 'support-agent' };

describe('releases view states', () => {
  it('full: every release of the reachable clusters, waiting for a decision first', async () => {
    const { page, errors, close } = await openFull();
    assert.deepEqual(await names(page), ['support-agent', 'triage-agent', 'refund-agent', 'billing-agent', 'search-agent']);
    const first = page.locator('#release-list [role="option"]').first();
    assert.equal(await first.getAttribute('data-state'), 'waiting_decision');
    assert.match(await first.innerText(), /waiting for a decision/);
    assert.match(await first.innerText(), /prod-eu cluster · agents · step 2 of 4/);
    assert.match(await first.locator('[data-paused-reason]').innerText(), /fewer than min_samples 500/);
    assert.equal(await first.locator('[data-verdict]').getAttribute('data-verdict'), 'inconclusive');
    // Desired vs actual weight on the row.
    assert.equal(await first.locator('.weight').getAttribute('data-desired'), '25');
    assert.equal(await first.locator('.weight').getAttribute('data-actual'), '25');
    assert.equal(await selectedName(page), 'support-agent', 'the most urgent release is selected');
    // Detail: stable vs canary versions and the eval gate of the canary's exact version.
    const detail = page.locator('[data-release="support-agent"]');
    assert.match(await detail.locator('[data-track-row="Version"]').innerText(), /1\.8\.0\s+1\.9\.0-rc\.2/);
    assert.match(await detail.locator('[data-track-row="Prompt"]').innerText(), /support_answer@v14\s+support_answer@v15/);
    assert.match(await detail.locator('[data-track-row="Policy"]').innerText(), /guardrails-v3\.0\s+guardrails-v3\.1/);
    assert.match(await page.locator('#gate').innerText(), /of 1\.9\.0-rc\.2/);
    assert.match(await detail.locator('[data-eval-gate="pass"]').innerText(), /95\.8 %.*run_gol_0009/s);
    await shot(page, 'releases-full');
    assert.deepEqual(errors, []);
    await close();
  });

  it('empty: says why and what to do', async () => {
    const { page, errors, close } = await ui.open({ route: 'releases', scenario: 'empty' });
    await expectState(page, 'releases', 'empty');
    assert.match(await page.locator('[data-region="releases"] [data-state="empty"]').innerText(), /No releases on the connected clusters[\s\S]*Add a Kubernetes connection in Settings/);
    assert.equal(await page.locator('#release-list [role="option"]').count(), 0);
    await shot(page, 'releases-empty');
    assert.deepEqual(errors, []);
    await close();
  });

  it('loading: placeholders and a busy region', async () => {
    const { page, errors, close } = await ui.open({ route: 'releases', scenario: 'loading' });
    await expectState(page, 'releases', 'loading');
    const region = page.locator('[data-region="releases"]');
    assert.equal(await region.getAttribute('aria-busy'), 'true');
    assert.match(await region.locator('[role="status"]').first().innerText(), /Loading releases/);
    await shot(page, 'releases-loading');
    assert.deepEqual(errors, []);
    await close();
  });

  it('error: the backend message, and Retry recovers', async () => {
    const { page, errors, close } = await ui.open({ route: 'releases', scenario: 'error' });
    await expectState(page, 'releases', 'error');
    const alert = page.locator('[data-region="releases"] [role="alert"]').first();
    const text = await alert.innerText();
    assert.match(text, /Couldn't load releases/);
    assert.match(text, /could not reach https:\/\/34\.77\.12\.9:6443/);
    await shot(page, 'releases-error');
    await mock(page, (m) => m.setScenario('full'));
    await alert.getByRole('button', { name: 'Retry' }).click();
    await expectState(page, 'releases', 'full');
    assert.equal(await page.locator('#release-list [role="option"]').count(), 5);
    assert.deepEqual(errors, []);
    await close();
  });
});

describe('releases', () => {
  it('release_removed takes a deleted release out of the list and closes its detail', async () => {
    const { page, errors, close } = await openFull();
    const before = (await sent(page, 'list_releases')).length;
    await page.locator('#release-list [data-name="refund-agent"]').click();
    await page.waitForSelector('[data-release="refund-agent"]');
    // Another release deleted: the list loses it, the open detail stays.
    await mock(page, (m) => m.releases.remove('billing-agent'));
    await page.waitForSelector('#release-list [data-name="billing-agent"]', { state: 'detached' });
    assert.equal(await page.locator('[data-release="refund-agent"]').count(), 1);
    // The open one deleted: its detail closes with a note saying why.
    await mock(page, (m) => m.releases.remove('refund-agent'));
    await page.waitForSelector('[data-release="refund-agent"]', { state: 'detached' });
    await page.locator('[data-toast="info"]', { hasText: 'refund-agent was deleted from the cluster' }).waitFor();
    assert.deepEqual(await names(page), ['support-agent', 'triage-agent', 'search-agent']);
    assert.equal((await sent(page, 'list_releases')).length, before, 'pushed, not polled');
    assert.deepEqual(errors, []);
    await close();
  });

  it('release_event moves a release that now waits for a decision to the top, without polling', async () => {
    const { page, errors, close } = await openFull();
    const before = (await sent(page, 'list_releases')).length;
    await mock(page, (m) => m.releases.update('billing-agent', { state: 'waiting_decision', paused_reason: 'analysis inconclusive: 90 canary requests' }));
    await page.waitForFunction(() => document.querySelectorAll('#release-list [role="option"]')[1]?.getAttribute('data-name') === 'billing-agent');
    // Same rank: ordered by cluster (prod-eu before prod-us).
    assert.deepEqual((await names(page)).slice(0, 2), ['support-agent', 'billing-agent']);
    assert.match(await page.locator('[data-name="billing-agent"] [data-paused-reason]').innerText(), /90 canary requests/);
    // The selected release's detail follows its events too.
    await mock(page, (m) => m.releases.update('support-agent', { actual_weight: 31 }));
    await page.waitForSelector('[data-release="support-agent"] .weight[data-actual="31"]');
    assert.equal((await sent(page, 'list_releases')).length, before, 'pushed, not polled');
    assert.deepEqual(errors, []);
    await close();
  });

  it('analysis: the failing metric with its values, limit and failures', async () => {
    const { page, errors, close } = await openFull();
    await page.locator('#release-list [data-name="triage-agent"]').click();
    await page.waitForSelector('[data-release="triage-agent"]');
    const headers = await page.locator('[data-release="triage-agent"] table[aria-label="Canary analysis"] thead th').allInnerTexts();
    assert.deepEqual(
      headers.map((h) => h.trim().toLowerCase()),
      ['metric and condition', 'over time', 'canary', 'stable', 'limit', 'failures', 'verdict'],
    );
    const row = page.locator('[data-release="triage-agent"] tr[data-metric="error_rate"]');
    assert.equal(await row.getAttribute('data-verdict'), 'fail');
    const canary = Number.parseFloat((await row.locator('[data-value="canary"]').innerText()).replace('%', ''));
    assert.ok(canary > 1, `canary error rate ${canary} % is over the 1 % limit`);
    assert.equal(await row.locator('[data-value="limit"]').innerText(), '1.00 %');
    assert.equal(await row.locator('[data-value="failures"]').innerText(), '3 / 3');
    assert.match(await row.innerText(), /canary error rate <= 0\.01/);
    assert.equal(await row.locator('svg.spark').getAttribute('data-points'), '20');
    assert.ok((await row.locator('svg.spark circle.bad').count()) >= 3, 'failed ticks are marked');
    // The others pass.
    assert.equal(await page.locator('[data-release="triage-agent"] tr[data-metric="success_rate"]').getAttribute('data-verdict'), 'pass');
    assert.match(await page.locator('[data-release="triage-agent"] [data-paused-reason]').innerText(), /error rate 0\.034 > 0\.01/);
    assert.match(await page.locator('[data-release="triage-agent"] [data-eval-gate="missing"]').innerText(), /no completed golden run for version 2\.4\.0-rc\.1/);
    await shot(page, 'releases-analysis-fail');
    assert.deepEqual(errors, []);
    await close();
  });

  it('promote step: the reason is required, progress is shown, the release moves to the next step', async () => {
    const { page, errors, close } = await openFull();
    await page.locator('[data-release="support-agent"] button[data-release-action="promote_step"]').click();
    const dialog = page.locator('dialog[open]', { has: page.locator('[data-release-dialog="promote_step"]') });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /step 2 to step 3 of 4: 25 % → 50 %/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'release-reason');
    await dialog.locator('[data-release-confirm]').click();
    assert.match(await dialog.locator('#release-reason-error').innerText(), /A reason is required to promote step support-agent/);
    assert.equal((await sent(page, 'promote_release')).length, 0, 'nothing sent without a reason');
    await shot(page, 'releases-promote-reason-required');

    await mock(page, (m) => m.releases.setPhaseDelay(400));
    await dialog.locator('#release-reason').fill('Error rate flat for 30 min, eval gate green');
    await dialog.locator('[data-release-confirm]').click();
    const progress = dialog.locator('[data-release-progress]');
    await progress.locator('[role="progressbar"]').waitFor();
    await progress.filter({ hasText: /canary-step to 3|scaling support-agent-canary|waiting for ready replicas/ }).waitFor();
    await shot(page, 'releases-promote-progress');
    await page.locator('[data-toast="success"]', { hasText: 'Promoted support-agent to step 3 of 4 (50 % of traffic)' }).waitFor();
    await page.waitForSelector('dialog[open]', { state: 'detached' });
    assert.deepEqual((await sent(page, 'promote_release')).map((c) => c.args), [{ ref: SUPPORT, full: false, reason: 'Error rate flat for 30 min, eval gate green' }]);
    await page.locator('#release-list [data-name="support-agent"] [data-step]', { hasText: 'step 3 of 4' }).waitFor();
    assert.equal(await page.locator('#release-list [data-name="support-agent"]').getAttribute('data-state'), 'progressing');
    await page.locator('[data-release="support-agent"] .stepno', { hasText: 'step 3 of 4' }).waitFor();
    assert.equal(await page.locator('[data-release="support-agent"] .weight').getAttribute('data-desired'), '50');
    assert.match(await page.locator('[data-release="support-agent"] [data-action-log]').innerText(), /you@acme\.test · step 3 of 4 \(50 %\)/);
    // It left the "waiting for a decision" group.
    assert.notEqual((await names(page))[0], 'support-agent');
    assert.deepEqual(errors, []);
    await close();
  });

  it('promote step with the keyboard only: j/k, p, the reason, Enter', async () => {
    const { page, errors, close } = await openFull();
    await page.keyboard.press('j');
    assert.equal(await selectedName(page), 'triage-agent');
    await page.keyboard.press('k');
    assert.equal(await selectedName(page), 'support-agent');
    await page.waitForSelector('[data-release="support-agent"]');
    await page.keyboard.press('p');
    await page.waitForSelector('dialog[open] [data-release-dialog="promote_step"]');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'release-reason');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#release-reason-error');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'release-reason', 'the focus stays in the reason');
    await page.keyboard.type('Samples low but steady; take the next step');
    await page.keyboard.press('Enter');
    await page.locator('[data-toast="success"]', { hasText: 'Promoted support-agent to step 3 of 4' }).waitFor();
    await page.waitForSelector('dialog[open]', { state: 'detached' });
    await page.locator('#release-list [data-name="support-agent"] [data-step]', { hasText: 'step 3 of 4' }).waitFor();
    assert.deepEqual((await sent(page, 'promote_release')).map((c) => c.args), [{ ref: SUPPORT, full: false, reason: 'Samples low but steady; take the next step' }]);
    // Esc cancels a confirmation without sending anything.
    await page.keyboard.press('x');
    await page.waitForSelector('dialog[open] [data-release-dialog="abort"]');
    await page.keyboard.type('not now');
    await page.keyboard.press('Escape');
    await page.waitForSelector('dialog[open]', { state: 'detached' });
    assert.equal((await sent(page, 'abort_release')).length, 0);
    assert.deepEqual(errors, []);
    await close();
  });

  it('abort: the canary is scaled to 0 and the cancelled approvals are counted', async () => {
    const { page, errors, close } = await openFull();
    assert.equal(await mock(page, (m) => m.releases.pendingApprovals['support-agent']), 3);
    await page.locator('[data-release="support-agent"] button[data-release-action="abort"]').click();
    const dialog = page.locator('dialog[open]', { has: page.locator('[data-release-dialog="abort"]') });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /cancels the canary's pending approvals/);
    await page.keyboard.type('Wrong refund amounts in canary traces, INC-2291');
    await page.keyboard.press('Enter');
    const toast = page.locator('[data-toast="success"]', { hasText: 'Aborted support-agent' });
    await toast.waitFor();
    assert.match(await toast.innerText(), /3 pending approvals of the canary cancelled/);
    assert.match(await page.locator('[data-release-result]').innerText(), /3 pending approvals cancelled/);
    assert.deepEqual((await sent(page, 'abort_release')).map((c) => c.args), [{ ref: SUPPORT, reason: 'Wrong refund amounts in canary traces, INC-2291' }]);
    await page.waitForSelector('[data-release="support-agent"][data-state="aborted"]');
    assert.equal(await page.locator('[data-release="support-agent"] .weight').getAttribute('data-actual'), '0');
    // Nothing left to promote or abort: disabled with the reason.
    const promote = page.locator('[data-release="support-agent"] button[data-release-action="promote_step"]');
    assert.equal(await promote.isDisabled(), true);
    assert.match((await promote.locator('xpath=..').getAttribute('title')) ?? '', /Aborted: the canary is scaled to 0/);
    assert.equal(await mock(page, (m) => m.releases.pendingApprovals['support-agent']), 0);
    await shot(page, 'releases-aborted');
    assert.deepEqual(errors, []);
    await close();
  });

  it('undo: picks a revision, rolls stable back to it', async () => {
    const { page, errors, close } = await openFull();
    await page.locator('[data-release="support-agent"] [data-revision-row="6"] button[data-release-action="undo"]').click();
    const dialog = page.locator('dialog[open]', { has: page.locator('[data-release-dialog="undo"]') });
    await dialog.waitFor();
    assert.equal(await dialog.locator('input[data-revision="6"]').isChecked(), true, 'the clicked revision is picked');
    assert.equal(await dialog.locator('input[data-revision="8"]').count(), 0, 'the current revision is not offered');
    await dialog.locator('input[data-revision="7"]').check();
    await dialog.locator('#release-reason').fill('1.8.0 leaks memory; back to 1.7.2');
    await shot(page, 'releases-undo');
    await dialog.locator('[data-release-confirm]').click();
    await page.locator('[data-toast="success"]', { hasText: 'Rolled support-agent back to revision 7' }).waitFor();
    assert.deepEqual((await sent(page, 'undo_release')).map((c) => c.args), [{ ref: SUPPORT, revision: 7, reason: '1.8.0 leaks memory; back to 1.7.2' }]);
    const top = page.locator('[data-release="support-agent"] [data-revision-row="9"]');
    await top.waitFor();
    assert.match(await top.innerText(), /current/);
    assert.match(await top.innerText(), /support-agent:1\.7\.2.*undo to revision 7/s);
    assert.match(await page.locator('[data-release="support-agent"] [data-track-row="Image"]').innerText(), /support-agent:1\.7\.2/);
    assert.deepEqual(errors, []);
    await close();
  });

  it('pause then resume: each with its reason; the paused reason shows on the row', async () => {
    const { page, errors, close } = await openFull();
    await page.locator('#release-list [data-name="refund-agent"]').click();
    const detail = page.locator('[data-release="refund-agent"]');
    await detail.waitFor();
    const resume = detail.locator('.actions button[data-release-action="resume"]');
    assert.equal(await resume.isDisabled(), true);
    assert.match((await resume.locator('xpath=..').getAttribute('title')) ?? '', /Not paused/);
    await detail.locator('.actions button[data-release-action="pause"]').click();
    await page.waitForSelector('dialog[open] [data-release-dialog="pause"]');
    await page.keyboard.type('Holding over the EU peak');
    await page.keyboard.press('Enter');
    await page.locator('[data-toast="success"]', { hasText: 'Paused refund-agent at step 1 of 4' }).waitFor();
    await page.waitForSelector('[data-release="refund-agent"][data-state="paused"]');
    assert.equal(await page.locator('#release-list [data-name="refund-agent"] [data-paused-reason]').innerText(), 'Holding over the EU peak');
    assert.equal(await detail.locator('.actions button[data-release-action="pause"]').isDisabled(), true);
    await detail.locator('.actions button[data-release-action="resume"]').click();
    await page.waitForSelector('dialog[open] [data-release-dialog="resume"]');
    await page.keyboard.type('Peak over');
    await page.keyboard.press('Enter');
    await page.locator('[data-toast="success"]', { hasText: 'Resumed refund-agent' }).waitFor();
    await page.waitForSelector('[data-release="refund-agent"][data-state="progressing"]');
    assert.deepEqual(
      (await calls(page)).filter((c) => c.command === 'pause_release' || c.command === 'resume_release').map((c) => [c.command, c.args]),
      [
        ['pause_release', { ref: { profile_id: 'k8s-prod-eu', namespace: 'support', name: 'refund-agent' }, reason: 'Holding over the EU peak' }],
        ['resume_release', { ref: { profile_id: 'k8s-prod-eu', namespace: 'support', name: 'refund-agent' }, reason: 'Peak over' }],
      ],
    );
    assert.deepEqual(errors, []);
    await close();
  });

  it('renders in the dark theme', async () => {
    const { page, errors, close } = await openFull();
    await page.locator('[data-theme-toggle]').click();
    assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
    await page.locator('#release-list [data-name="triage-agent"]').click();
    await page.waitForSelector('[data-release="triage-agent"]');
    await shot(page, 'releases-full-dark');
    assert.deepEqual(errors, []);
    await close();
  });

  it('a conflict says the release moved and reloads it', async () => {
    const { page, errors, close } = await openFull();
    const lists = (await sent(page, 'list_releases')).length;
    await mock(page, (m) => m.failNext('promote_release', { code: 'conflict', message: 'the release moved: support-agent is at step 3 of 4 now (changed by dana@acme.test)' }));
    await page.keyboard.press('p');
    await page.waitForSelector('dialog[open] [data-release-dialog="promote_step"]');
    await page.keyboard.type('next step');
    await page.keyboard.press('Enter');
    const err = page.locator('dialog[open] [data-release-error]');
    await err.waitFor();
    assert.equal(await err.innerText(), 'the release moved: support-agent is at step 3 of 4 now (changed by dana@acme.test), reloaded');
    await page.waitForFunction((n) => (window.__flightdeckMock?.calls ?? []).filter((c) => c.command === 'list_releases').length > n, lists);
    await shot(page, 'releases-conflict');
    // The dialog stays open with the reason kept; a second try goes through.
    assert.equal(await page.locator('#release-reason').inputValue(), 'next step');
    await page.locator('dialog[open] [data-release-confirm]').click();
    await page.locator('[data-toast="success"]', { hasText: 'Promoted support-agent to step 3 of 4' }).waitFor();
    assert.deepEqual(errors, []);
    await close();
  });

  it('read-only: actions disabled with the SelfSubjectAccessReview reason; p explains instead of acting', async () => {
    const { page, errors, close } = await openFull({ readOnly: true });
    const detail = page.locator('[data-release="support-agent"]');
    for (const action of ['promote_step', 'promote_full', 'abort', 'pause', 'resume']) {
      const b = detail.locator(`.actions button[data-release-action="${action}"]`);
      assert.equal(await b.isDisabled(), true, `${action} is disabled`);
      assert.equal(await b.getAttribute('data-denied'), 'true');
      assert.match((await b.locator('xpath=..').getAttribute('title')) ?? '', /SelfSubjectAccessReview: user "viewer@acme\.test" may not patch deployments\.apps in namespace "agents"/);
    }
    const undo = detail.locator('[data-revision-row="7"] button[data-release-action="undo"]');
    assert.equal(await undo.isDisabled(), true);
    const why = (await undo.getAttribute('aria-describedby')) ?? '';
    assert.match(await page.locator(`[id="${why}"]`).innerText(), /may not update deployments\.apps/);
    await page.keyboard.press('p');
    await page.locator('[data-toast="error"]', { hasText: 'Cannot promote step support-agent' }).waitFor();
    assert.equal(await page.locator('dialog[open]').count(), 0);
    // The palette lists the release's commands disabled, with the reason.
    await page.keyboard.press('Control+k');
    await page.keyboard.type('promote support-agent');
    const opt = page.locator('dialog.palette [role="option"]', { hasText: 'Promote support-agent in agents' });
    assert.equal(await opt.getAttribute('aria-disabled'), 'true');
    assert.match(await opt.innerText(), /SelfSubjectAccessReview/);
    await page.keyboard.press('Escape');
    await shot(page, 'releases-readonly');
    assert.equal((await calls(page)).filter((c) => /_release$/.test(c.command) && c.command !== 'get_release').length, 0);
    assert.deepEqual(errors, []);
    await close();
  });

  it('an unreachable cluster shows its error while the other clusters’ releases still show', async () => {
    const { page, errors, close } = await openFull();
    const staging = page.locator('[data-cluster-error="k8s-staging"]');
    assert.match(await staging.innerText(), /staging cluster is unreachable[\s\S]*could not reach https:\/\/10\.40\.0\.2:6443: connection timed out/);
    assert.equal(await page.locator('#release-list [role="option"]').count(), 5);
    // A second cluster goes down: its releases leave, its error shows, the rest stays.
    await mock(page, (m) => m.releases.setUnreachable('k8s-prod-us', true));
    await page.getByRole('button', { name: 'Reload releases' }).click();
    await page.waitForSelector('[data-cluster-error="k8s-prod-us"]');
    assert.deepEqual(await names(page), ['support-agent', 'refund-agent', 'search-agent']);
    assert.equal(await page.locator('[data-cluster-error]').count(), 2);
    await expectState(page, 'releases', 'full');
    await shot(page, 'releases-cluster-unreachable');
    assert.deepEqual(errors, []);
    await close();
  });

  it('palette: "promote support-agent in agents" opens the same confirmation; g r reaches the view', async () => {
    const { page, errors, close } = await ui.open();
    await page.waitForSelector('[data-card]');
    await page.keyboard.press('g');
    await page.keyboard.press('r');
    await page.waitForSelector('main[data-route="releases"]');
    await page.locator('[data-nav="overview"]').click();
    await page.waitForSelector('main[data-route="overview"]');
    await page.keyboard.press('Control+k');
    await page.waitForSelector('dialog.palette[open] input[role="combobox"]');
    await page.keyboard.type('promote support-agent in agents');
    await page.locator('dialog.palette [role="option"]', { hasText: 'Promote support-agent in agents' }).waitFor();
    await page.keyboard.press('Enter');
    await page.waitForSelector('main[data-route="releases"]');
    const dialog = page.locator('dialog[open]', { has: page.locator('[data-release-dialog="promote_step"]') });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /support-agent in agents on prod-eu cluster/);
    await page.waitForFunction(() => document.activeElement?.id === 'release-reason');
    await page.keyboard.type('Promote from the palette');
    await page.keyboard.press('Enter');
    await page.locator('[data-toast="success"]', { hasText: 'Promoted support-agent to step 3 of 4' }).waitFor();
    // The palette offers abort / pause / resume by state: a paused release can be resumed, not paused.
    await page.keyboard.press('Control+k');
    await page.keyboard.type('triage-agent');
    const titles = await page.locator('dialog.palette [role="option"]').allInnerTexts();
    assert.ok(titles.some((t) => t.includes('Abort triage-agent in agents')));
    assert.ok(titles.some((t) => t.includes('Resume triage-agent in agents')));
    assert.ok(!titles.some((t) => t.includes('Pause triage-agent')));
    await page.keyboard.press('Escape');
    assert.deepEqual(errors, []);
    await close();
  });
});
