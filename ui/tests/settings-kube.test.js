// @ts-check
// Settings > Connections: adding a Kubernetes cluster. The context picker filled
// from list_kube_contexts (current context chosen, its namespace pre-filled), the namespace
// checked as a DNS-1123 label before anything is sent, add_kube_profile and the new row;
// the same from the keyboard only; failures (invalid, no kubeconfig) keeping what was typed;
// a kubeconfig without contexts; a connection that may not manage profiles.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calls, expectState, mock, shot, useBrowser } from './harness.js';

const ui = useBrowser();

const EU = 'gke_acme_europe-west1_prod';
const US = 'gke_acme_us-east1_prod';
const STAGING = 'kind-staging';

/**
 * @param {import('playwright-core').Page} page
 * @param {string} command
 */
async function sent(page, command) {
  return (await calls(page)).filter((c) => c.command === command);
}

/** @param {import('playwright-core').Page} page */
function toggle(page) {
  return page.locator('[data-add-kube] button');
}

/** Opens Settings and the cluster form with its contexts loaded. */
async function openForm(/** @type {{scenario?: 'full'|'empty'}} */ o = {}) {
  const r = await ui.open({ route: 'settings', scenario: o.scenario });
  await expectState(r.page, 'settings', o.scenario === 'empty' ? 'empty' : 'full');
  await toggle(r.page).click();
  await r.page.locator('form[data-kube-form]').waitFor();
  return r;
}

/**
 * The permissions a key without `manage_profiles` gets (pushed as permissions_event).
 * @param {string} reason
 * @returns {import('../src/lib/ipc/types').Permissions}
 */
function withoutManageProfiles(reason) {
  /** @type {import('../src/lib/ipc/types').ActionId[]} */
  const all = ['approve', 'reject', 'verify_audit', 'incident_switch', 'unfreeze_writes', 'start_eval', 'pull_model', 'run_smoke', 'manage_profiles', 'update_settings'];
  return {
    profile_id: 'prod-eu',
    roles: ['viewer'],
    actions: all.map((action) => (action === 'manage_profiles' ? { action, allowed: false, reason } : { action, allowed: true, reason: null })),
  };
}

describe('settings: add a Kubernetes cluster', () => {
  it('picks the current context, pre-fills its namespace, adds the profile and lists it', async () => {
    const { page, errors, close } = await openForm();
    await expectState(page, 'kube-contexts', 'full');
    const picker = page.locator('#k-context');
    // Every context of the kubeconfig, with cluster and user; the current one marked and chosen.
    const options = await picker.locator('option').evaluateAll((els) => els.map((e) => ({ value: e.getAttribute('value'), text: e.textContent?.trim() ?? '', current: e.getAttribute('data-current') })));
    assert.deepEqual(
      options.map((o) => o.value),
      [EU, US, STAGING],
    );
    assert.match(options[0]?.text ?? '', /^gke_acme_europe-west1_prod \(current\) — cluster acme_europe-west1_prod, user gke_acme_europe-west1_prod-user$/);
    assert.deepEqual(
      options.map((o) => o.current),
      ['true', null, null],
    );
    assert.equal(await picker.inputValue(), EU);
    assert.equal(await page.locator('#k-namespace').inputValue(), 'agents', "the current context's namespace");
    assert.match(await page.locator('[data-context-info]').innerText(), /current\s+cluster acme_europe-west1_prod · user gke_acme_europe-west1_prod-user · default namespace agents/);
    // Another context: its namespace, or kubectl's "default" when it sets none.
    await picker.selectOption(STAGING);
    assert.equal(await page.locator('#k-namespace').inputValue(), 'default');
    assert.match(await page.locator('[data-context-info]').innerText(), /no namespace set \(kubectl uses default\)/);
    await picker.selectOption(US);
    assert.equal(await page.locator('#k-namespace').inputValue(), 'agents');
    // Once the user typed a namespace, choosing a context no longer replaces it.
    await page.locator('#k-namespace').fill('billing');
    await picker.selectOption(STAGING);
    await picker.selectOption(US);
    assert.equal(await page.locator('#k-namespace').inputValue(), 'billing');
    await page.locator('#k-name').fill('prod-us');
    await shot(page, 'settings-kube-form');
    const listsBefore = (await sent(page, 'list_profiles')).length;
    await page.getByRole('button', { name: 'Add cluster', exact: true }).click();
    const row = page.locator('[data-profile="k8s-prod-us"]');
    await row.waitFor();
    assert.deepEqual((await sent(page, 'add_kube_profile')).map((c) => c.args), [{ name: 'prod-us', context: US, namespace: 'billing' }]);
    assert.ok((await sent(page, 'list_profiles')).length > listsBefore, 'the list is reloaded from the backend');
    assert.equal(await row.getAttribute('data-kind'), 'kubernetes');
    assert.match(await row.innerText(), /prod-us\s+Kubernetes\s+gke_acme_us-east1_prod \/ billing/);
    assert.match(await row.innerText(), /kubeconfig/);
    assert.equal(await row.locator('select[data-agent-link]').inputValue(), '', 'follows the active connection');
    await page.locator('[data-toast="success"]', { hasText: 'Added prod-us' }).waitFor();
    assert.equal(await page.locator('form[data-kube-form]').count(), 0, 'the form closes after adding');
    // The others stay listed.
    assert.equal(await page.locator('[data-profile]').count(), 5);
    assert.deepEqual(errors, []);
    await close();
  });

  it('links the cluster to a named agent service, or leaves it following the active one', async () => {
    const { page, errors, close } = await openForm();
    await expectState(page, 'kube-contexts', 'full');
    const link = page.locator('#k-agent');
    const options = await link.locator('option').evaluateAll((els) => els.map((e) => ({ value: e.getAttribute('value') ?? '', text: e.textContent?.trim() ?? '' })));
    assert.equal(await link.inputValue(), '', 'follows the active connection by default');
    assert.equal(options[0]?.text, 'Follow the active connection');
    const agents = options.slice(1);
    assert.ok(agents.length >= 1, 'the stored agent-service profiles are offered');
    assert.ok(!agents.some((o) => o.value === 'local'), 'never the bundled Local service');
    const target = agents[0];
    assert.ok(target);
    await link.selectOption(target.value);
    await page.locator('#k-name').fill('prod-linked');
    await page.getByRole('button', { name: 'Add cluster', exact: true }).click();
    const row = page.locator('[data-profile="k8s-prod-linked"]');
    await row.waitFor();
    const args = /** @type {{agent_profile_id?: string} | undefined} */ ((await sent(page, 'add_kube_profile')).at(-1)?.args);
    assert.equal(args?.agent_profile_id, target.value);
    const shown = row.locator('select[data-agent-link]');
    assert.equal(await shown.inputValue(), target.value);
    assert.equal(await shown.evaluate((e) => /** @type {HTMLSelectElement} */ (e).selectedOptions[0]?.textContent), target.text);
    await shot(page, 'settings-kube-linked');
    assert.deepEqual(errors, []);
    await close();
  });

  it("re-links an existing cluster from the list, and back to following the active connection", async () => {
    const { page, errors, close } = await ui.open({ route: 'settings' });
    await expectState(page, 'settings', 'full');
    const row = page.locator('tr[data-kind="kubernetes"]').first();
    const id = await row.getAttribute('data-profile');
    const link = row.locator('select[data-agent-link]');
    assert.equal(await link.inputValue(), '');
    const agent = await link.locator('option').nth(1).getAttribute('value');
    assert.ok(agent);
    await link.selectOption(agent);
    await page.locator('[data-toast="success"]', { hasText: 'now answers to' }).waitFor();
    assert.equal(await link.getAttribute('data-agent-link'), agent);
    await link.selectOption('');
    await page.waitForFunction((pid) => document.querySelector(`tr[data-profile="${pid}"] select[data-agent-link]`)?.getAttribute('data-agent-link') === '', id);
    assert.deepEqual(
      (await sent(page, 'link_kube_profile')).map((c) => c.args),
      [{ profile_id: id, agent_profile_id: agent }, { profile_id: id }],
    );
    assert.deepEqual(errors, []);
    await close();
  });

  it('works from the keyboard only: Enter opens, arrows pick the context, Enter adds, Esc cancels', async () => {
    const { page, errors, close } = await ui.open({ route: 'settings' });
    await expectState(page, 'settings', 'full');
    await toggle(page).focus();
    await page.keyboard.press('Enter');
    await expectState(page, 'kube-contexts', 'full');
    await page.waitForFunction(() => document.activeElement?.id === 'k-context');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.locator('#k-context').inputValue(), US);
    assert.equal(await page.locator('#k-namespace').inputValue(), 'agents');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'k-name');
    await page.keyboard.type('us keyboard');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'k-namespace');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('payments');
    await page.keyboard.press('Enter');
    await page.locator('[data-profile="k8s-us-keyboard"]').waitFor();
    assert.deepEqual((await sent(page, 'add_kube_profile')).map((c) => c.args), [{ name: 'us keyboard', context: US, namespace: 'payments' }]);
    assert.match(await page.locator('[data-profile="k8s-us-keyboard"]').innerText(), /gke_acme_us-east1_prod \/ payments/);
    // The focus goes back to the button that opened the form.
    await page.waitForFunction(() => document.activeElement?.closest('[data-add-kube]') !== null);
    // Esc in a field cancels without sending anything.
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.activeElement?.id === 'k-context');
    await page.keyboard.press('Tab');
    await page.keyboard.type('abandoned');
    await page.keyboard.press('Escape');
    await page.locator('form[data-kube-form]').waitFor({ state: 'detached' });
    assert.equal((await sent(page, 'add_kube_profile')).length, 1);
    await page.waitForFunction(() => document.activeElement?.closest('[data-add-kube]') !== null);
    assert.deepEqual(errors, []);
    await close();
  });

  it('refuses a namespace that is not a DNS-1123 label inline, keeps the input and sends nothing', async () => {
    const { page, errors, close } = await openForm();
    await expectState(page, 'kube-contexts', 'full');
    const ns = page.locator('#k-namespace');
    const nsError = page.locator('[data-field-error="namespace"]');
    await page.locator('#k-name').fill('prod-eu agents');
    await ns.fill('Agents_1');
    await ns.blur();
    assert.match(await nsError.innerText(), /"Agents_1" is not a namespace name: use lowercase letters/);
    assert.equal(await ns.getAttribute('aria-invalid'), 'true');
    assert.equal(await ns.getAttribute('aria-describedby'), 'k-namespace-error');
    await page.getByRole('button', { name: 'Add cluster', exact: true }).click();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'k-namespace', 'the focus goes to the field to fix');
    for (const [value, why] of /** @type {const} */ ([
      ['agents_1', /"_" is not allowed, only lowercase letters, digits and "-"/],
      ['agents-', /must start and end with a letter or digit/],
      ['my agents', /spaces are not allowed/],
      ['a'.repeat(64), /64 characters, at most 63/],
      ['', /Enter a namespace/],
    ])) {
      await ns.fill(value);
      assert.match(await nsError.innerText(), why, value);
      await page.getByRole('button', { name: 'Add cluster', exact: true }).click();
      assert.equal(await ns.inputValue(), value, 'what was typed stays');
    }
    await shot(page, 'settings-kube-invalid-namespace');
    // The name is required too.
    await ns.fill('agents');
    assert.equal(await nsError.count(), 0);
    assert.equal(await ns.getAttribute('aria-invalid'), 'false');
    await page.locator('#k-name').fill('  ');
    await page.getByRole('button', { name: 'Add cluster', exact: true }).click();
    assert.match(await page.locator('[data-field-error="name"]').innerText(), /Enter a name/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'k-name');
    assert.equal((await sent(page, 'add_kube_profile')).length, 0, 'nothing invalid reaches the backend');
    // The backend's own `invalid` (the context left the kubeconfig meanwhile) is shown, the input kept.
    await page.locator('#k-name').fill('prod-eu agents');
    await mock(page, (m) => m.failNext('add_kube_profile', { code: 'invalid', message: 'kubeconfig has no context "gke_acme_europe-west1_prod"; known: kind-staging' }));
    await page.getByRole('button', { name: 'Add cluster', exact: true }).click();
    const failure = page.locator('[data-add-error="invalid"]');
    await failure.waitFor();
    assert.match(await failure.innerText(), /kubeconfig has no context "gke_acme_europe-west1_prod"; known: kind-staging\s+invalid/);
    assert.equal(await page.locator('#k-name').inputValue(), 'prod-eu agents');
    assert.equal(await ns.inputValue(), 'agents');
    assert.equal(await page.locator('#k-context').inputValue(), EU);
    // Sending again works and clears the error.
    await page.getByRole('button', { name: 'Add cluster', exact: true }).click();
    await page.locator('[data-profile="k8s-prod-eu-agents"]').waitFor();
    assert.deepEqual((await sent(page, 'add_kube_profile')).map((c) => c.args), [
      { name: 'prod-eu agents', context: EU, namespace: 'agents' },
      { name: 'prod-eu agents', context: EU, namespace: 'agents' },
    ]);
    assert.deepEqual(errors, []);
    await close();
  });

  it('no kubeconfig: says so with the not_found code and where it looked; Retry once it exists', async () => {
    const { page, errors, close } = await ui.open({ route: 'settings' });
    await expectState(page, 'settings', 'full');
    await mock(page, (m) => m.releases.setKubeconfig('missing'));
    await toggle(page).click();
    await expectState(page, 'kube-contexts', 'error');
    const err = page.locator('[data-region="kube-contexts"] [role="alert"]');
    const text = await err.innerText();
    assert.match(text, /Couldn't load the kube contexts/);
    assert.match(text, /no kubeconfig found: KUBECONFIG is not set and ~\/\.kube\/config does not exist/);
    assert.match(text, /not_found/);
    assert.equal(await page.getByRole('button', { name: 'Add cluster', exact: true }).isDisabled(), true);
    await shot(page, 'settings-kube-no-kubeconfig');
    await mock(page, (m) => m.releases.setKubeconfig('present'));
    await err.getByRole('button', { name: 'Retry' }).click();
    await expectState(page, 'kube-contexts', 'full');
    assert.equal(await page.locator('#k-context').inputValue(), EU);

    // The kubeconfig disappears between listing and adding: the error shows, the input stays.
    await page.locator('#k-name').fill('eu again');
    await page.locator('#k-namespace').fill('support');
    await mock(page, (m) => m.releases.setKubeconfig('missing'));
    await page.getByRole('button', { name: 'Add cluster', exact: true }).click();
    const failure = page.locator('[data-add-error="not_found"]');
    await failure.waitFor();
    assert.match(await failure.innerText(), /KUBECONFIG is not set and ~\/\.kube\/config does not exist/);
    assert.equal(await page.locator('#k-name').inputValue(), 'eu again');
    assert.equal(await page.locator('#k-namespace').inputValue(), 'support');
    // Reloading the contexts keeps the form (and what was typed) under the refresh error.
    await failure.getByRole('button', { name: 'Reload contexts' }).click();
    await expectState(page, 'kube-contexts', 'error');
    assert.equal(await page.locator('#k-name').inputValue(), 'eu again');
    assert.equal(await page.locator('[data-profile="k8s-eu-again"]').count(), 0);
    assert.deepEqual(errors, []);
    await close();
  });

  it('a kubeconfig without contexts: empty state with how to add one; Reload finds new ones', async () => {
    const { page, errors, close } = await ui.open({ route: 'settings' });
    // The scenario switch from the URL, as a developer sets it.
    await page.goto(`${ui.url}/?mock=full&fast=1&kubeconfig=empty#/settings`);
    await expectState(page, 'settings', 'full');
    await toggle(page).click();
    await expectState(page, 'kube-contexts', 'empty');
    const empty = page.locator('[data-region="kube-contexts"] [data-state="empty"]');
    assert.match(await empty.innerText(), /No contexts in your kubeconfig[\s\S]*gcloud container clusters get-credentials[\s\S]*kubectl config set-context/);
    const add = page.getByRole('button', { name: 'Add cluster', exact: true });
    assert.equal(await add.isDisabled(), true);
    assert.equal(await page.locator(`#${await add.getAttribute('aria-describedby')}`).textContent(), 'No kube context to connect through');
    await shot(page, 'settings-kube-no-contexts');
    await mock(page, (m) => m.releases.setKubeconfig('present'));
    await empty.getByRole('button', { name: 'Reload contexts' }).click();
    await expectState(page, 'kube-contexts', 'full');
    assert.equal(await add.isDisabled(), false);

    // The empty console (no profiles at all) offers the cluster form from its empty state.
    await page.goto(`${ui.url}/?mock=empty&fast=1#/settings`);
    await expectState(page, 'settings', 'empty');
    await page.locator('[data-region="settings"] [data-state="empty"]').getByRole('button', { name: 'Add Kubernetes cluster' }).click();
    await expectState(page, 'kube-contexts', 'empty');
    assert.deepEqual(errors, []);
    await close();
  });

  it('without manage_profiles: the button and the open form are disabled with the reason, nothing is sent', async () => {
    const { page, errors, close } = await openForm();
    await expectState(page, 'kube-contexts', 'full');
    await page.locator('#k-name').fill('typed before');
    const reason = "The key's roles (viewer) do not include admin: connections are managed by admins";
    await page.evaluate((p) => window.__flightdeckMock?.emit('permissions_event', p), withoutManageProfiles(reason));
    const denied = page.locator('form[data-kube-form] [data-denied-reason]');
    await denied.waitFor();
    assert.equal((await denied.innerText()).trim(), reason);
    assert.equal(await page.locator('form[data-kube-form] fieldset').evaluate((f) => f instanceof HTMLFieldSetElement && f.disabled), true);
    for (const id of ['#k-context', '#k-name', '#k-namespace']) assert.equal(await page.locator(id).isDisabled(), true, id);
    assert.equal(await page.locator('#k-name').inputValue(), 'typed before');
    const submit = page.getByRole('button', { name: 'Add cluster', exact: true });
    assert.equal(await submit.isDisabled(), true);
    assert.equal(await submit.getAttribute('data-denied'), 'true');
    assert.equal(await page.locator(`#${await submit.getAttribute('aria-describedby')}`).textContent(), reason);
    // The toggle, like the agent endpoint's, is disabled with the reason.
    assert.equal(await toggle(page).isDisabled(), true);
    assert.equal(await page.locator('[data-add-kube] .wrap').getAttribute('title'), reason);
    // Even a submit forced past the disabled button sends nothing.
    await page.evaluate(() => document.querySelector('form[data-kube-form]')?.dispatchEvent(new Event('submit', { cancelable: true })));
    await page.waitForTimeout(50);
    assert.equal((await sent(page, 'add_kube_profile')).length, 0);
    await shot(page, 'settings-kube-readonly');
    // Cancel still closes it.
    await page.locator('form[data-kube-form]').getByRole('button', { name: 'Cancel' }).click();
    await page.locator('form[data-kube-form]').waitFor({ state: 'detached' });
    assert.deepEqual(errors, []);
    await close();
  });
});
