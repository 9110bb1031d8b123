// @ts-check
// The IPC boundary: only src/lib/ipc/ may import @tauri-apps/* (eslint rule), and the
// backend is chosen by the presence of window.__TAURI_INTERNALS__.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const ROOT = new URL('..', import.meta.url).pathname;
const IMPORT = "import { invoke } from '@tauri-apps/api/core';\nexport const call: typeof invoke = invoke;\n";

describe('IPC boundary', () => {
  it('eslint refuses @tauri-apps imports outside src/lib/ipc/', async () => {
    const eslint = new ESLint({ cwd: ROOT });
    const [outside] = await eslint.lintText(IMPORT, { filePath: `${ROOT}src/lib/format.ts` });
    assert.ok(outside?.messages.some((m) => m.ruleId === 'no-restricted-imports'), 'flagged outside lib/ipc');
    const [inside] = await eslint.lintText(IMPORT, { filePath: `${ROOT}src/lib/ipc/tauri.ts` });
    assert.deepEqual(inside?.messages.filter((m) => m.ruleId === 'no-restricted-imports'), []);
  });

  it('the Tauri backend is used only inside the app', async () => {
    const src = await readFile(`${ROOT}src/lib/ipc/index.ts`, 'utf8');
    assert.match(src, /window\.__TAURI_INTERNALS__ !== undefined\) return tauriBackend\(\)/);
  });
});
