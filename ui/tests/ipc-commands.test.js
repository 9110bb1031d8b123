// @ts-check
// The IPC commands are declared on both sides of the boundary: the Tauri shell registers
// them (`tauri::generate_handler![…]` in src-tauri/src/commands.rs, one `#[tauri::command]`
// function each) and the UI calls them by the keys of `CommandMap` (src/lib/ipc/types.ts),
// which the mock backend implements (src/lib/ipc/mock.ts, with the Releases part in
// mock-releases.ts). Nothing in either compiler sees both sides, so a command on one side
// only would fail at run time in the app ("command … not found"); this test reads the
// sources and names what is missing where.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import ts from 'typescript';

const UI = new URL('..', import.meta.url).pathname;
const COMMANDS_RS = new URL('../../src-tauri/src/commands.rs', import.meta.url).pathname;

/** @param {string} path */
const source = (path) => readFile(path, 'utf8');

/**
 * Rust source without its comments (line and block), so a commented-out entry is not read
 * as registered.
 * @param {string} rust
 */
function withoutComments(rust) {
  return rust.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
}

/**
 * The names in the shell's `tauri::generate_handler![…]` list, in order.
 * @param {string} rust
 */
function handlerList(rust) {
  const m = /generate_handler!\s*\[([^\]]*)\]/.exec(withoutComments(rust));
  if (!m?.[1]) throw new Error('commands.rs has no tauri::generate_handler![…] list');
  return m[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => s.split('::').pop() ?? s);
}

/**
 * The functions marked `#[tauri::command]` in the shell.
 * @param {string} rust
 */
function commandFunctions(rust) {
  const re = /#\[tauri::command[^\]]*\]\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?fn\s+([a-z_][a-z0-9_]*)/g;
  return [...withoutComments(rust).matchAll(re)].map((m) => m[1] ?? '');
}

/**
 * @param {string} path
 * @param {string} text
 */
function parseTs(path, text) {
  return ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
}

/** @param {ts.PropertyName} name */
function propertyName(name) {
  if (ts.isIdentifier(name) || ts.isStringLiteral(name)) return name.text;
  throw new Error(`unexpected property name ${name.getText()}`);
}

/**
 * The member names of `export interface CommandMap` in types.ts.
 * @param {string} text
 */
function commandMapKeys(text) {
  const file = parseTs('types.ts', text);
  const map = file.statements.find(
    /** @returns {s is ts.InterfaceDeclaration} */ (s) => ts.isInterfaceDeclaration(s) && s.name.text === 'CommandMap',
  );
  if (!map) throw new Error('types.ts declares no interface CommandMap');
  return map.members.map((m) => {
    if (!m.name) throw new Error(`CommandMap has a member without a name: ${m.getText()}`);
    return propertyName(m.name);
  });
}

/**
 * The keys of the object literal assigned to `const handlers` in a mock source, and the
 * expressions it spreads into itself (`...rel.handlers`).
 * @param {string} path
 * @param {string} text
 */
function handlerKeys(path, text) {
  const file = parseTs(path, text);
  /** @type {ts.ObjectLiteralExpression | undefined} */
  let literal;
  /** @param {ts.Node} node */
  const visit = (node) => {
    if (
      ts.isVariableDeclaration(node) &&
      ts.isIdentifier(node.name) &&
      node.name.text === 'handlers' &&
      node.initializer &&
      ts.isObjectLiteralExpression(node.initializer)
    ) {
      literal = node.initializer;
    }
    if (!literal) ts.forEachChild(node, visit);
  };
  visit(file);
  if (!literal) throw new Error(`${path} has no \`const handlers = { … }\``);
  /** @type {string[]} */
  const keys = [];
  /** @type {string[]} */
  const spreads = [];
  for (const p of literal.properties) {
    if (ts.isSpreadAssignment(p)) spreads.push(p.expression.getText(file));
    else if (p.name) keys.push(propertyName(p.name));
  }
  return { keys, spreads };
}

/**
 * What `actual` lacks of `expected` and has beyond it.
 * @param {readonly string[]} expected
 * @param {readonly string[]} actual
 */
function difference(expected, actual) {
  const a = new Set(actual);
  const e = new Set(expected);
  return {
    missing: [...e].filter((k) => !a.has(k)).sort(),
    extra: [...a].filter((k) => !e.has(k)).sort(),
  };
}

/** @param {readonly string[]} names */
function duplicates(names) {
  return [...new Set(names.filter((n, i) => names.indexOf(n) !== i))].sort();
}

describe('IPC commands agree across the boundary', () => {
  it('the Tauri handler list and CommandMap name the same commands', async () => {
    const registered = handlerList(await source(COMMANDS_RS));
    const declared = commandMapKeys(await source(`${UI}src/lib/ipc/types.ts`));
    assert.ok(registered.length > 0 && declared.length > 0, 'both lists were read');
    assert.deepEqual(duplicates(registered), [], 'commands registered twice in generate_handler!');
    const { missing, extra } = difference(declared, registered);
    assert.deepEqual(
      { missing, extra },
      { missing: [], extra: [] },
      `CommandMap and the Tauri handler list differ:\n` +
        `  in CommandMap (ui/src/lib/ipc/types.ts) but not registered in src-tauri/src/commands.rs: ${missing.join(', ') || '-'}\n` +
        `  registered in src-tauri/src/commands.rs but not in CommandMap: ${extra.join(', ') || '-'}`,
    );
  });

  it('every #[tauri::command] function is registered, and only those', async () => {
    const rust = await source(COMMANDS_RS);
    const { missing, extra } = difference(commandFunctions(rust), handlerList(rust));
    assert.deepEqual(
      { missing, extra },
      { missing: [], extra: [] },
      `src-tauri/src/commands.rs: #[tauri::command] functions not in generate_handler!: ${missing.join(', ') || '-'}; ` +
        `generate_handler! entries without a #[tauri::command] function: ${extra.join(', ') || '-'}`,
    );
  });

  it('the mock backend implements every command of CommandMap', async () => {
    const declared = commandMapKeys(await source(`${UI}src/lib/ipc/types.ts`));
    const main = handlerKeys('mock.ts', await source(`${UI}src/lib/ipc/mock.ts`));
    const releases = handlerKeys('mock-releases.ts', await source(`${UI}src/lib/ipc/mock-releases.ts`));
    // mock.ts takes the Releases commands from mock-releases.ts by spreading its handlers.
    assert.deepEqual(main.spreads, ['rel.handlers'], 'mock.ts spreads the release handlers into its own');
    assert.deepEqual(releases.spreads, [], 'mock-releases.ts spreads nothing');
    const implemented = [...main.keys, ...releases.keys];
    assert.deepEqual(duplicates(implemented), [], 'commands the mock implements twice');
    const { missing, extra } = difference(declared, implemented);
    assert.deepEqual(
      { missing, extra },
      { missing: [], extra: [] },
      `the mock backend (ui/src/lib/ipc/mock.ts, mock-releases.ts) and CommandMap differ:\n` +
        `  in CommandMap but not implemented by the mock: ${missing.join(', ') || '-'}\n` +
        `  implemented by the mock but not in CommandMap: ${extra.join(', ') || '-'}`,
    );
  });
});
