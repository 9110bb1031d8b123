// @ts-check
// Desktop benchmarks (run by scripts/bench-desktop.sh under Xvfb and a D-Bus session):
// 1. cold start: from asking tauri-driver for a session (which launches the app with a fresh
//    data dir) to the first Overview card on screen; COLD_RUNS runs, each with a new data dir;
// 2. memory: Flightdeck on the Local profile with live synthetic traffic and a blank Tauri 2
//    window (tests/desktop/blank; plus a second one with WebKit's compositing off, the
//    setting Flightdeck uses), started side by side in the same run; after BENCH_MINUTES
//    the PSS of each whole process tree (the app, its WebKit processes and, for Flightdeck,
//    the agent-service child) read from /proc/<pid>/smaps_rollup. PSS splits pages shared
//    between processes, so shared libraries count once across all three trees.
// Env: BENCH_PROFILE (desktop), BENCH_MINUTES (5), COLD_RUNS (3; 0 skips), FLIGHTDECK_APP,
// BLANK_APP, AGENT_SERVICE_BIN, DESKTOP_ARTIFACTS.
// Prints a summary and writes target/desktop-artifacts/bench.json.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Session, waitForHttp } from './webdriver.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// The cargo profile of the three binaries (`release`: what users run; scripts/bench-desktop.sh
// builds all three with the same profile, so the blank window is built like the app).
const PROFILE = process.env.BENCH_PROFILE ?? 'desktop';
// Cargo's target dir: CARGO_TARGET_DIR when set, else target/ in the repository.
const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
const APP = process.env.FLIGHTDECK_APP ?? join(TARGET, `${PROFILE}/flightdeck`);
const BLANK = process.env.BLANK_APP ?? join(TARGET, `${PROFILE}/flightdeck-blank`);
const AGENT = process.env.AGENT_SERVICE_BIN ?? join(TARGET, `${PROFILE}/agent-service`);
const ARTIFACTS = process.env.DESKTOP_ARTIFACTS ?? join(TARGET, 'desktop-artifacts');
const MINUTES = Number(process.env.BENCH_MINUTES ?? 5);
const COLD_RUNS = Number(process.env.COLD_RUNS ?? 3);

/** @param {number} pid @returns {number[]} the pid and all its descendants */
function tree(pid) {
  /** @type {Map<number, number[]>} */
  const children = new Map();
  for (const d of readdirSafe('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // ended meanwhile
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

/** @param {string} dir @returns {string[]} */
function readdirSafe(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * PSS in KiB of one process, split into anonymous memory (heaps, stacks), file-backed pages
 * (the binary and its libraries) and shared memory, and its comm.
 * @param {number} pid
 */
function pss(pid) {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (/** @type {string} */ name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0);
    return { pid, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), kb: field('Pss'), anon_kb: field('Pss_Anon'), file_kb: field('Pss_File'), shmem_kb: field('Pss_Shmem') };
  } catch {
    return { pid, comm: '?', kb: 0, anon_kb: 0, file_kb: 0, shmem_kb: 0 };
  }
}

/** @param {number} pid */
function treePss(pid) {
  const procs = tree(pid).map(pss);
  return { total_mib: +(procs.reduce((a, p) => a + p.kb, 0) / 1024).toFixed(1), processes: procs.map((p) => ({ ...p, mib: +(p.kb / 1024).toFixed(1) })) };
}

/** @param {number[]} xs */
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function coldStart() {
  const port = 4600 + Math.floor(Math.random() * 300);
  const home = mkdtempSync(join(tmpdir(), 'fd-bench-'));
  const samples = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    const data = join(home, `run${i}`);
    const driver = spawn('tauri-driver', ['--port', String(port), '--native-port', String(port + 1)], {
      env: { ...process.env, XDG_DATA_HOME: data, FLIGHTDECK_AGENT_BIN: AGENT, OLLAMA_BASE_URL: 'http://127.0.0.1:9' },
      stdio: 'ignore',
    });
    await waitForHttp(`http://127.0.0.1:${port}/status`);
    const t0 = performance.now();
    const s = await Session.start(`http://127.0.0.1:${port}`, APP);
    await s.waitFor('[data-card]', { timeout: 60_000, interval: 10 });
    samples.push(Math.round(performance.now() - t0));
    const app = tree(/** @type {number} */ (driver.pid)).find((p) => pss(p).comm === 'flightdeck');
    if (app) process.kill(app, 'SIGTERM');
    await sleep(1500);
    await s.end().catch(() => undefined);
    driver.kill('SIGTERM');
    await sleep(500);
  }
  rmSync(home, { recursive: true, force: true });
  return { runs_ms: samples, median_ms: median(samples) };
}

async function memory() {
  const home = mkdtempSync(join(tmpdir(), 'fd-bench-mem-'));
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, XDG_DATA_HOME: home, FLIGHTDECK_AGENT_BIN: AGENT, OLLAMA_BASE_URL: 'http://127.0.0.1:9', FLIGHTDECK_LOG: 'warn' };
  // Each program runs with its own defaults: Flightdeck turns WebKit's accelerated compositing
  // and JavaScriptCore's JIT off itself (src-tauri/src/lib.rs), the blank window keeps
  // WebKit's defaults (the baseline). A second blank window with compositing off
  // (WebKit's switch) shows how much of the difference that setting alone makes, measured in
  // the same run (its page runs no script to speak of, so the JIT setting would not move it).
  for (const k of ['WEBKIT_DISABLE_COMPOSITING_MODE', 'FLIGHTDECK_GPU_COMPOSITING', 'JSC_useJIT', 'FLIGHTDECK_JS_JIT']) delete env[k];
  const app = spawn(APP, [], { env, stdio: 'ignore' });
  const blank = spawn(BLANK, [], { env, stdio: 'ignore' });
  const blankFlat = spawn(BLANK, [], { env: { ...env, WEBKIT_DISABLE_COMPOSITING_MODE: '1' }, stdio: 'ignore' });
  const samples = [];
  const end = Date.now() + MINUTES * 60_000;
  while (Date.now() < end) {
    await sleep(Math.min(30_000, Math.max(0, end - Date.now())));
    const [a, b, c] = [app, blank, blankFlat].map((p) => treePss(/** @type {number} */ (p.pid)));
    samples.push({ at_s: Math.round((MINUTES * 60_000 - (end - Date.now())) / 1000), flightdeck_mib: a.total_mib, blank_mib: b.total_mib, blank_no_compositing_mib: c.total_mib });
    console.log(`# ${samples.at(-1)?.at_s} s: Flightdeck tree ${a.total_mib} MiB, blank Tauri window tree ${b.total_mib} MiB (compositing off: ${c.total_mib} MiB)`);
  }
  const [flightdeck, blankTree, blankFlatTree] = [app, blank, blankFlat].map((p) => treePss(/** @type {number} */ (p.pid)));
  const result = {
    minutes: MINUTES,
    profile: PROFILE,
    flightdeck,
    blank: blankTree,
    blank_no_compositing: blankFlatTree,
    ratio: +(flightdeck.total_mib / blankTree.total_mib).toFixed(2),
    ratio_vs_blank_no_compositing: +(flightdeck.total_mib / blankFlatTree.total_mib).toFixed(2),
    samples,
  };
  for (const p of [app, blank, blankFlat]) p.kill('SIGTERM');
  await sleep(2000);
  rmSync(home, { recursive: true, force: true });
  return result;
}

mkdirSync(ARTIFACTS, { recursive: true });
/** @type {Record<string, unknown>} */
const machine = { cpus: cpus().length, cpu_model: cpus()[0]?.model, mem_gib: +(totalmem() / 2 ** 30).toFixed(1), loadavg_at_start: loadavg().map((x) => +x.toFixed(2)) };
console.log(`# machine: ${JSON.stringify(machine)}`);
// COLD_RUNS=0 skips the cold-start runs (while iterating on the memory figure).
const cold = COLD_RUNS > 0 ? await coldStart() : null;
if (cold) console.log(`# cold start to the first Overview card (ms): ${cold.runs_ms.join(', ')}; median ${cold.median_ms}`);
const mem = await memory();
/** @param {{processes: {comm: string, mib: number, anon_kb: number, file_kb: number}[]}} t */
const parts = (t) => t.processes.map((p) => `${p.comm} ${p.mib} [anon ${(p.anon_kb / 1024).toFixed(1)}, file ${(p.file_kb / 1024).toFixed(1)}]`).join(', ');
console.log(`# PSS after ${MINUTES} min (${PROFILE} builds): Flightdeck ${mem.flightdeck.total_mib} MiB (${parts(mem.flightdeck)}); blank Tauri 2 window ${mem.blank.total_mib} MiB (${parts(mem.blank)}); blank with compositing off ${mem.blank_no_compositing.total_mib} MiB (${parts(mem.blank_no_compositing)})`);
console.log(`# ratio: ${mem.ratio}x the blank window (target <= 1.25x: ${mem.ratio <= 1.25 ? 'met' : 'NOT met'}); ${mem.ratio_vs_blank_no_compositing}x the blank window with compositing off`);
machine.loadavg_at_end = loadavg().map((x) => +x.toFixed(2));
writeFileSync(join(ARTIFACTS, 'bench.json'), JSON.stringify({ machine, cold_start: cold, memory: mem }, null, 2));
