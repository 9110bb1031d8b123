// @ts-check
// Desktop end-to-end tests: the real Flightdeck app under Xvfb, driven through
// tauri-driver + WebKitWebDriver. Run by scripts/test-desktop.sh, which builds the app, the
// agent-service and the fake Ollama and runs this inside Xvfb and a D-Bus session.
//
// Flows: the app starts the bundled agent-service (Local profile, scripted model); a
// write-gated invoke posted to it appears in the Approvals view within one second (every
// sample printed, p50/p99); it is approved with the keyboard and shows `executed`; a smoke
// run against the fake Ollama shows its results; a canary of the dev overlay is promoted one
// step through the Releases view against testkit's fake Kubernetes API server (started before
// the app, which gets its kubeconfig through KUBECONFIG). Screenshots go to
// target/desktop-artifacts/.
//
// Env: FLIGHTDECK_APP, AGENT_SERVICE_BIN, FAKE_OLLAMA_BIN, FAKE_KUBE_BIN (default
// target/debug/…), DESKTOP_ARTIFACTS, APPROVAL_SAMPLES (default 5).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Key, Session, waitForHttp } from './webdriver.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// Cargo's target dir: CARGO_TARGET_DIR when set, else target/ in the repository.
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
const APP = process.env.FLIGHTDECK_APP ?? join(TARGET, 'debug/flightdeck');
const AGENT = process.env.AGENT_SERVICE_BIN ?? join(TARGET, 'debug/agent-service');
const FAKE_OLLAMA = process.env.FAKE_OLLAMA_BIN ?? join(TARGET, 'debug/fake-ollama');
const FAKE_KUBE = process.env.FAKE_KUBE_BIN ?? join(TARGET, 'debug/fake-kube');
/** The dev overlay's namespace (deploy/k8s/overlays/dev). */
const KUBE_NS = 'flightdeck-dev';
const ARTIFACTS = process.env.DESKTOP_ARTIFACTS ?? join(TARGET, 'desktop-artifacts');
const SAMPLES = Number(process.env.APPROVAL_SAMPLES ?? 5);

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

/** pids of the processes whose parent is `pid`, recursively. @param {number} pid @returns {number[]} */
export function descendants(pid) {
  /** @type {Map<number, number[]>} */
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // the process ended while we looked
    }
  }
  const out = [];
  const todo = [pid];
  while (todo.length) {
    const p = /** @type {number} */ (todo.pop());
    for (const c of children.get(p) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

/** @param {number} pid */
function comm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The app's pid: the process running APP among tauri-driver's descendants. @param {number} driverPid */
function appPid(driverPid) {
  return descendants(driverPid).find((p) => comm(p) === 'flightdeck');
}

/** @param {number[]} xs @param {number} q */
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

/** @type {import('node:child_process').ChildProcess} */
let driver;
/** @type {Session} */
let session;
let home = '';
let ollamaUrl = '';
/** @type {import('node:child_process').ChildProcess | undefined} */
let fakeOllama;
/**
 * The fake Kubernetes API server: its process, URL (control API under /__fake) and
 * kubeconfig, or why it could not start (the canary test reports that; the others run).
 * @type {{proc?: import('node:child_process').ChildProcess, url: string, kubeconfig: string, error?: string}}
 */
const kube = { url: '', kubeconfig: '' };

/** Ends fake-kube (if it runs) and waits for it to exit. */
async function stopFakeKube() {
  const p = kube.proc;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  if ((await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)])) === false) p.kill('SIGKILL');
}
// Whatever happens (a failed hook, an uncaught error, Ctrl-C), fake-kube does not outlive the run.
process.once('exit', () => kube.proc?.kill('SIGKILL'));
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.once(sig, () => {
    kube.proc?.kill('SIGKILL');
    process.exit(130);
  });
}

/**
 * Starts `fake-kube` seeded with `kubectl kustomize deploy/k8s/overlays/dev`, writing its
 * kubeconfig (context "fake", namespace flightdeck-dev) into `dir`; resolves once it listens.
 * @param {string} dir
 */
async function startFakeKube(dir) {
  const seed = spawnSync('kubectl', ['kustomize', join(ROOT, 'deploy/k8s/overlays/dev')], { encoding: 'utf8' });
  if (seed.status !== 0) throw new Error(`kubectl kustomize deploy/k8s/overlays/dev failed: ${seed.error ?? seed.stderr}`);
  const seedFile = join(dir, 'dev-overlay.yaml');
  writeFileSync(seedFile, seed.stdout);
  kube.kubeconfig = join(dir, 'kubeconfig.yaml');
  const proc = spawn(FAKE_KUBE, ['--port', '0', '--kubeconfig-out', kube.kubeconfig, '--seed', seedFile, '--namespace', KUBE_NS], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  kube.proc = proc;
  let stderr = '';
  proc.stderr?.on('data', (d) => (stderr += d));
  kube.url = await new Promise((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new Error(`fake-kube did not start within 15 s: ${out}${stderr}`)), 15_000);
    proc.once('error', (e) => (clearTimeout(timer), rej(e)));
    proc.once('exit', (code) => (clearTimeout(timer), rej(new Error(`fake-kube exited (${code}): ${stderr}`))));
    proc.stdout?.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
  });
  proc.removeAllListeners('exit');
  // Skipped kinds (RBAC, ConfigMap, HPA, …) are expected: the fake serves what the console uses.
  console.log(`# fake-kube at ${kube.url}, kubeconfig ${kube.kubeconfig}`);
}

/** The fake's control API. @param {string} method @param {string} path @param {unknown} [body] */
async function fake(method, path, body) {
  const res = await fetch(`${kube.url}/__fake${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} /__fake${path}: HTTP ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A Deployment of the dev namespace as the fake stores it. @param {string} name */
async function fakeDeployment(name) {
  const all = await fake('GET', `/objects?apiVersion=apps/v1&kind=Deployment&namespace=${KUBE_NS}`);
  const d = all.find((/** @type {{metadata: {name: string}}} */ o) => o.metadata.name === name);
  assert.ok(d, `the fake has Deployment ${KUBE_NS}/${name}: ${all.map((/** @type {any} */ o) => o.metadata.name)}`);
  return d;
}

/** @param {string} name */
async function shot(name) {
  // Two animation frames, so the picture shows what the assertions just saw.
  await session.exec('return new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(null))))');
  writeFileSync(join(ARTIFACTS, `${name}.png`), await session.screenshot());
}

/** Calls a command of the app the way the UI does (through Tauri's IPC). @param {string} command @param {unknown} [args] */
async function invoke(command, args) {
  const r = await invokeRaw(command, args);
  if (r.err !== undefined) throw new Error(`${command}: ${JSON.stringify(r.err)}`);
  return r.ok;
}

/** The same, returning `{ok}` or `{err}` (what the command rejected with). @param {string} command @param {unknown} [args] */
async function invokeRaw(command, args) {
  return session.execAsync(
    `const done = arguments[arguments.length - 1];
     window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1])
       .then((v) => done({ ok: v }), (e) => done({ err: e }));`,
    [command, args === undefined ? {} : { args }],
  );
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  home = mkdtempSync(join(tmpdir(), 'flightdeck-e2e-'));
  // Nothing listens here while the app starts, so the Local profile runs the scripted
  // model; the fake Ollama is started on this port later, for the Smoke tests view.
  ollamaUrl = `http://127.0.0.1:${await freePort()}`;
  // The fake Kubernetes API server runs before the app starts: the app reads KUBECONFIG
  // from its environment (inherited from tauri-driver through WebKitWebDriver).
  await startFakeKube(home).catch((/** @type {Error} */ e) => {
    kube.error = e.message;
    console.log(`# fake-kube did not start: ${e.message}`);
  });
  const port = await freePort();
  const nativePort = await freePort();
  driver = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], {
    env: {
      ...process.env,
      XDG_DATA_HOME: join(home, 'data'),
      XDG_CONFIG_HOME: join(home, 'config'),
      XDG_CACHE_HOME: join(home, 'cache'),
      OLLAMA_BASE_URL: ollamaUrl,
      FLIGHTDECK_AGENT_BIN: AGENT,
      // An absent file when fake-kube did not start: no clusters rather than the user's own.
      KUBECONFIG: kube.kubeconfig || join(home, 'no-kubeconfig'),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/status`);
  const t0 = Date.now();
  session = await Session.start(base, APP);
  await session.waitFor('[data-card]', { timeout: 60_000 });
  console.log(`# cold start to the first Overview card: ${Date.now() - t0} ms (session start included)`);
});

after(async () => {
  // End the app the way a desktop session does (SIGTERM: WebKitWebDriver itself kills it
  // outright when the session ends), then check the bundled agent-service went with it.
  const pid = driver?.pid ? appPid(driver.pid) : undefined;
  const children = pid ? descendants(pid).filter((p) => comm(p) === 'agent-service') : [];
  if (pid) process.kill(pid, 'SIGTERM');
  const until = Date.now() + 10_000;
  while ([pid, ...children].some((p) => p && comm(p) !== '') && Date.now() < until) await sleep(100);
  const left = children.filter((p) => comm(p) === 'agent-service');
  for (const p of left) process.kill(p, 'SIGKILL');
  await session?.end().catch(() => undefined);
  driver?.kill('SIGTERM');
  fakeOllama?.kill('SIGTERM');
  await stopFakeKube();
  rmSync(home, { recursive: true, force: true });
  assert.ok(children.length > 0, 'the app had a Local agent-service child');
  assert.deepEqual(left, [], 'the Local agent-service was still running 10 s after the app got SIGTERM');
});

describe('the desktop app', () => {
  it('opens the Flightdeck window on the Overview with the Local profile live', async () => {
    assert.equal(await session.title(), 'Flightdeck');
    const pid = appPid(/** @type {number} */ (driver.pid));
    assert.ok(pid, 'the flightdeck process runs under tauri-driver');
    const agents = descendants(pid).filter((p) => comm(p) === 'agent-service');
    assert.equal(agents.length, 1, 'the app runs the bundled agent-service as its child');
    const profiles = await invoke('list_profiles');
    const local = profiles.profiles.find((/** @type {{is_local: boolean}} */ p) => p.is_local);
    assert.ok(local, `a Local profile: ${JSON.stringify(profiles)}`);
    assert.equal(profiles.active_id, local.id);
    const health = await fetch(`${local.url}/healthz`);
    assert.equal(health.status, 200);
    await session.waitFor(`[data-card^="${local.id}/"] [data-health]`);
    await shot('overview');
  });

  it('a write-gated invoke appears in Approvals within 1 s, is approved by keyboard and executed', async () => {
    const { profiles } = await invoke('list_profiles');
    const local = profiles.find((/** @type {{is_local: boolean}} */ p) => p.is_local);
    // A fresh demo invoke key, minted the way the Local profile mints its own.
    const db = join(home, 'data', 'dev.flightdeck.console', 'local', 'agent-service.db');
    const seed = spawnSync(AGENT, ['seed-demo'], { env: { PATH: process.env.PATH, DATABASE_URL: `sqlite://${db}` }, encoding: 'utf8' });
    assert.equal(seed.status, 0, seed.stderr);
    const key = seed.stdout
      .split('\n')
      .map((l) => l.split('\t'))
      .find((f) => f[0] === 'invoke' && f[1] === 'demo')?.[2];
    assert.ok(key, 'seed-demo printed an invoke key');

    await session.click(await session.find('[data-nav="approvals"]'));
    await session.waitFor('main[data-route="approvals"] [data-region="approvals"]', { timeout: 10_000 });
    // Record when each approval row first appears on screen, in the page's own clock.
    await session.exec(`
      window.__seen = {};
      const note = () => document.querySelectorAll('#approval-list [data-id]').forEach((el) => {
        const id = el.getAttribute('data-id');
        if (!(id in window.__seen)) window.__seen[id] = Date.now();
      });
      note();
      new MutationObserver(note).observe(document.body, { childList: true, subtree: true });`);

    /** @type {number[]} */
    const latencies = [];
    let id = '';
    for (let i = 0; i < SAMPLES; i++) {
      const sent = Date.now();
      const res = await fetch(`${local.url}/v1/invoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ workflow: 'ticket_update', input: { text: `Please set T-${1001 + (i % 12)} priority high. Comment: desktop e2e sample ${i} at ${Date.now()}` } }),
      });
      const body = await res.json();
      assert.equal(body.status, 'approval_required', JSON.stringify(body));
      id = body.approval_request_id;
      let seen;
      while ((seen = await session.exec('return window.__seen[arguments[0]] ?? null', [id])) === null) {
        assert.ok(Date.now() - sent < 10_000, `approval ${id} never appeared`);
        await sleep(20);
      }
      latencies.push(seen - sent);
    }
    const p50 = quantile(latencies, 0.5);
    const p99 = quantile(latencies, 0.99);
    console.log(`# approval on screen after the invoke was sent (ms): ${latencies.join(', ')}; p50 ${p50}, p99 ${p99}`);
    writeFileSync(join(ARTIFACTS, 'approval-latency.json'), JSON.stringify({ samples_ms: latencies, p50_ms: p50, p99_ms: p99 }, null, 2));
    assert.ok(Math.max(...latencies) <= 1000, `every approval within 1 s: ${latencies.join(', ')} ms`);

    // Bad input through the real IPC: a typed CommandError with the fields the UI reads,
    // and nothing decided.
    const noReason = await invokeRaw('decide_approval', { id, decision: 'approve', reason: '  ' });
    assert.ok(noReason.err, 'an empty reason is refused');
    assert.deepEqual(Object.keys(noReason.err).sort(), ['code', 'message', 'request_id', 'retry_after_secs', 'server_code']);
    assert.equal(noReason.err.code, 'invalid');
    const unknown = await invokeRaw('get_approval', { id: 'apr_does_not_exist' });
    assert.ok(['not_found', 'invalid'].includes(unknown.err?.code), JSON.stringify(unknown));
    const malformed = await invokeRaw('decide_approval', { id });
    assert.match(String(malformed.err), /missing field `decision`|missing field `reason`/);
    assert.equal((await invoke('get_approval', { id })).summary.status, 'pending');

    // Approve the last one with the keyboard: select it, `a`, a reason, Enter.
    await session.click(await session.find(`#approval-list [data-id="${id}"]`));
    await session.waitFor(`[data-approval="${id}"]`);
    await shot('approval-detail');
    await session.type('a');
    await session.waitFor('form[data-decision="approve"]');
    await session.type(`Checked ticket; safe to close.${Key.Enter}`);
    await session.waitFor('[data-toast="success"]', { text: new RegExp(`Approved ${id}`) });
    await session.click(await session.waitFor('[role="tab"]', { text: /History/ }));
    await session.waitFor('[role="tab"][aria-selected="true"]', { text: /History/ });
    await session.waitFor(`#approval-list [data-id="${id}"] [data-status="executed"]`, { timeout: 10_000 });
    await shot('approval-executed');
    const detail = await invoke('get_approval', { id });
    assert.equal(detail.summary.status, 'executed');
  });

  it('a smoke run against the fake Ollama shows its results', async () => {
    const port = new URL(ollamaUrl).port;
    fakeOllama = spawn(FAKE_OLLAMA, ['--port', port], { stdio: ['ignore', 'pipe', 'inherit'] });
    await waitForHttp(`${ollamaUrl}/api/version`);
    await session.click(await session.find('[data-nav="smoke"]'));
    await session.waitFor('main[data-route="smoke"]');
    await session.click(await session.waitFor('button', { text: /Discover again/ }));
    await session.waitFor('[data-ollama="reachable"]', { timeout: 10_000 });
    await session.click(await session.waitFor('input[name="model"]'));
    // The button names the chosen model once the choice registered.
    await session.click(await session.waitFor('button', { text: /^Run with (?!a model)/ }));
    // Done: result rows are shown, no check is still running and the progress bar is gone.
    const until = Date.now() + 60_000;
    for (;;) {
      const state = await session.exec(`return {
        rows: document.querySelectorAll('[data-check][data-result]').length,
        busy: document.querySelectorAll('[data-smoke-progress], [data-check][data-result="running"]').length,
        alert: [...document.querySelectorAll('main [role="alert"]')].map((e) => e.textContent.trim()).join(' | '),
      }`);
      if (state.rows > 0 && state.busy === 0) break;
      if (Date.now() > until || state.alert) {
        await shot('smoke-failed');
        assert.fail(`the smoke run did not finish: ${JSON.stringify(state)}`);
      }
      await sleep(100);
    }
    const results = await session.exec(
      `return [...document.querySelectorAll('[data-check][data-result]')].map((r) => [r.dataset.check, r.dataset.result])`,
    );
    console.log(`# smoke results shown: ${results.map((/** @type {string[]} */ r) => r.join('=')).join(', ')}`);
    assert.ok(results.length >= 8, `every check has a row: ${JSON.stringify(results)}`);
    const byName = Object.fromEntries(results);
    assert.equal(byName.reachability, 'pass');
    assert.ok(results.every((/** @type {string[]} */ r) => ['pass', 'fail', 'skip'].includes(r[1])), JSON.stringify(results));
    const runs = await invoke('list_smoke_runs');
    assert.ok(runs.length >= 1, 'the run is stored');
    await shot('smoke-results');
  });

  it('promotes a canary one step through the UI against the fake Kubernetes API server', async () => {
    assert.ok(!kube.error && kube.url, `fake-kube runs: ${kube.error}`);
    const REASON = 'Desktop e2e: canary healthy, take the first step';
    const CANARY_VERSION = '0.2.0-rc.2';
    // The canary of the dev overlay before: step 0 of "50,100", no replicas.
    const before = await fakeDeployment('agent-service-canary');
    assert.equal(before.metadata.annotations['flightdeck.dev/canary-step'], '0');
    assert.equal(before.metadata.annotations['flightdeck.dev/canary-steps'], '50,100');
    assert.equal(before.spec.replicas, 0);
    // A release starts the way CD starts one (`kubectl set image deployment/agent-service-canary
    // …`): the canary's pod template gets the new image and RELEASE_VERSION; the overlay's
    // canary runs the stable image, which the console rightly refuses to promote.
    const container = before.spec.template.spec.containers.find((/** @type {{name: string}} */ c) => c.name === 'agent-service');
    assert.ok(container, 'the canary has an agent-service container');
    assert.match(container.image, /:0\.2\.0-rc\.1$/);
    container.image = container.image.replace(/:[^:]+$/, `:${CANARY_VERSION}`);
    container.env.find((/** @type {{name: string}} */ e) => e.name === 'RELEASE_VERSION').value = CANARY_VERSION;
    delete before.status;
    await fake('POST', '/apply', before);
    // The analysis reads each track's /metrics through the API server's pod proxy: the
    // fake forwards those to the Local agent-service, so there is something real to read.
    const { profiles } = await invoke('list_profiles');
    const local = profiles.find((/** @type {{is_local: boolean}} */ p) => p.is_local);
    await fake('POST', '/backends', { namespace: KUBE_NS, selector: { 'app.kubernetes.io/name': 'agent-service' }, base_url: local.url });

    // Settings: add the cluster from the kubeconfig's context, namespace flightdeck-dev.
    await session.click(await session.find('[data-nav="settings"]'));
    await session.waitFor('main[data-route="settings"]');
    await session.click(await session.waitFor('[data-add-kube] button'));
    await session.waitFor('form[data-kube-form]');
    await session.click(await session.waitFor('#k-context option[value="fake"]', { timeout: 10_000 }));
    assert.equal(await session.property(await session.find('#k-context'), 'value'), 'fake');
    const ns = await session.find('#k-namespace');
    assert.equal(await session.property(ns, 'value'), KUBE_NS, "the context's namespace is pre-filled");
    await session.clear(ns);
    await session.sendKeys(ns, KUBE_NS);
    await session.sendKeys(await session.find('#k-name'), 'fake dev');
    await session.click(await session.waitFor('form[data-kube-form] button', { text: /^\s*Add cluster\s*$/ }));
    await session.waitFor('[data-toast="success"]', { text: /Added fake dev/ });
    const row = await session.waitFor('[data-profile][data-kind="kubernetes"]', { text: /fake dev/ });
    assert.match(await session.text(row), /fake\s*\/\s*flightdeck-dev/);
    await shot('kube-profile-added');

    // Releases: the dev overlay's agent-service at step 0 of 2; promote one step with a reason.
    await session.click(await session.find('[data-nav="releases"]'));
    await session.waitFor('main[data-route="releases"]');
    const item = '#release-list [role="option"][data-name="agent-service"]';
    await session.waitFor(`${item} [data-step]`, { text: /step 0 of 2/, timeout: 30_000 });
    await session.click(await session.find(item));
    await session.waitFor(`${item}[aria-selected="true"]`);
    await session.waitFor('[data-release="agent-service"]', { text: new RegExp(CANARY_VERSION.replaceAll('.', '\\.')) });
    const promote = '[data-release="agent-service"] button[data-release-action="promote_step"]';
    await session.waitFor(`${promote}:not([disabled])`, { timeout: 30_000 }).catch(async (e) => {
      // Say why: the button's reason (SSAR answer or release state) and what the view shows.
      const why = await session.exec(
        `const b = document.querySelector(arguments[0]);
         return { button: b ? { disabled: b.disabled, reason: b.parentElement?.title ?? null } : null,
                  alerts: [...document.querySelectorAll('main [role="alert"]')].map((a) => a.textContent.trim()) }`,
        [promote],
      );
      await shot('release-promote-disabled');
      throw new Error(`${e.message}: ${JSON.stringify(why)}`);
    });
    await shot('release-before-promote');
    await session.click(await session.find(promote));
    await session.waitFor('dialog[open] [data-release-dialog="promote_step"]');
    await session.sendKeys(await session.find('dialog[open] #release-reason'), REASON);
    await session.click(await session.find('dialog[open] [data-release-confirm]'));
    const done = Date.now() + 60_000;
    // The promotion finished (or failed, with the UI's own message).
    for (;;) {
      const state = await session.exec(`return {
        toast: [...document.querySelectorAll('[data-toast]')].map((t) => t.dataset.toast + ': ' + t.textContent.trim()).join(' | '),
        failure: document.querySelector('dialog[open] [data-release-error]')?.textContent.trim() ?? '',
      }`); // (no key named "error": webdriver.mjs takes a value with one for WebDriver's own error)
      // The backend's own message, e.g. "agent-service promoted to step 1 of 2 (50 %)".
      if (/success: agent-service promoted to step 1 of 2 \(50 %\)/i.test(state.toast)) break;
      if (state.failure || Date.now() > done) {
        await shot('release-promote-failed');
        assert.fail(`the promotion did not finish: ${JSON.stringify(state)}`);
      }
      await sleep(100);
    }
    await session.waitFor(`${item} [data-step]`, { text: /step 1 of 2/, timeout: 10_000 });
    // Desired 50 % (steps "50,100", step 1) and, with one ready replica per track, actual 50 % too.
    await session.waitFor('[data-release="agent-service"] .weight[data-desired="50"][data-actual="50"]', { timeout: 10_000 });
    await shot('release-promoted');

    // What the API server got: the step annotation, replicas for the canary and the Event.
    const canary = await fakeDeployment('agent-service-canary');
    assert.equal(canary.metadata.annotations['flightdeck.dev/canary-step'], '1');
    assert.ok(canary.spec.replicas > 0, `canary replicas ${canary.spec.replicas}`);
    assert.match(canary.spec.template.spec.containers[0].image, new RegExp(`:${CANARY_VERSION.replaceAll('.', '\\.')}$`));
    // A step only scales the canary: stable keeps its image.
    const stable = await fakeDeployment('agent-service');
    assert.match(stable.spec.template.spec.containers[0].image, /:0\.2\.0-rc\.1$/);
    const events = await fake('GET', `/events?namespace=${KUBE_NS}`);
    const promoted = events.filter((/** @type {{reason: string}} */ e) => e.reason === 'FlightdeckPromote');
    assert.equal(promoted.length, 1, `one FlightdeckPromote Event: ${JSON.stringify(events.map((/** @type {any} */ e) => e.reason))}`);
    assert.equal(promoted[0].involvedObject.name, 'agent-service-canary');
    assert.ok(promoted[0].message.includes(REASON), `the Event carries the reason: ${promoted[0].message}`);
    console.log(`# canary promoted: step 1 of 2, ${canary.spec.replicas} canary replica(s); Event: ${promoted[0].message}`);
  });
});
