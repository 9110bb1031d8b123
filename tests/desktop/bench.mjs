// @ts-check
// Desktop benchmarks (run by scripts/bench-desktop.sh under Xvfb and a D-Bus session):
// 1. cold start: from asking tauri-driver for a session (which launches the app with a fresh
//    data dir) to the first Overview card on screen; COLD_RUNS runs, each with a new data dir;
// 2. memory: Flightdeck on the Local profile with live synthetic traffic and a blank Tauri 2
//    window (tests/desktop/blank), started side by side in the same run; after BENCH_MINUTES
//    the PSS of each whole process tree (the app, its WebKit processes and, for Flightdeck,
//    the agent-service child) read from /proc/<pid>/smaps_rollup.
// Prints a summary and writes target/desktop-artifacts/bench.json.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Session, waitForHttp } from './webdriver.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const APP = process.env.FLIGHTDECK_APP ?? join(ROOT, 'target/debug/flightdeck');
const BLANK = process.env.BLANK_APP ?? join(ROOT, 'target/debug/flightdeck-blank');
const AGENT = process.env.AGENT_SERVICE_BIN ?? join(ROOT, 'target/debug/agent-service');
const ARTIFACTS = process.env.DESKTOP_ARTIFACTS ?? join(ROOT, 'target/desktop-artifacts');
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

/** PSS in KiB of one process and its comm. @param {number} pid */
function pss(pid) {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
    return { pid, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), kb };
  } catch {
    return { pid, comm: '?', kb: 0 };
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
  const env = { ...process.env, XDG_DATA_HOME: home, FLIGHTDECK_AGENT_BIN: AGENT, OLLAMA_BASE_URL: 'http://127.0.0.1:9', FLIGHTDECK_LOG: 'warn' };
  const app = spawn(APP, [], { env, stdio: 'ignore' });
  const blank = spawn(BLANK, [], { env, stdio: 'ignore' });
  const samples = [];
  const end = Date.now() + MINUTES * 60_000;
  while (Date.now() < end) {
    await sleep(Math.min(30_000, Math.max(0, end - Date.now())));
    const a = treePss(/** @type {number} */ (app.pid));
    const b = treePss(/** @type {number} */ (blank.pid));
    samples.push({ at_s: Math.round((MINUTES * 60_000 - (end - Date.now())) / 1000), flightdeck_mib: a.total_mib, blank_mib: b.total_mib });
    console.log(`# ${samples.at(-1)?.at_s} s: Flightdeck tree ${a.total_mib} MiB, blank Tauri window tree ${b.total_mib} MiB`);
  }
  const result = { minutes: MINUTES, flightdeck: treePss(/** @type {number} */ (app.pid)), blank: treePss(/** @type {number} */ (blank.pid)), samples };
  app.kill('SIGTERM');
  blank.kill('SIGTERM');
  await sleep(2000);
  rmSync(home, { recursive: true, force: true });
  return result;
}

mkdirSync(ARTIFACTS, { recursive: true });
/** @type {Record<string, unknown>} */
const machine = { cpus: cpus().length, cpu_model: cpus()[0]?.model, mem_gib: +(totalmem() / 2 ** 30).toFixed(1), loadavg_at_start: loadavg().map((x) => +x.toFixed(2)) };
console.log(`# machine: ${JSON.stringify(machine)}`);
const cold = await coldStart();
console.log(`# cold start to the first Overview card (ms): ${cold.runs_ms.join(', ')}; median ${cold.median_ms}`);
const mem = await memory();
console.log(`# PSS after ${MINUTES} min: Flightdeck ${mem.flightdeck.total_mib} MiB (${mem.flightdeck.processes.map((p) => `${p.comm} ${p.mib}`).join(', ')}); blank Tauri 2 window ${mem.blank.total_mib} MiB (${mem.blank.processes.map((p) => `${p.comm} ${p.mib}`).join(', ')})`);
machine.loadavg_at_end = loadavg().map((x) => +x.toFixed(2));
writeFileSync(join(ARTIFACTS, 'bench.json'), JSON.stringify({ machine, cold_start: cold, memory: mem }, null, 2));
