// @ts-check
/**
 * Layout measurements of the rendered console, taken in the page (DOM geometry, not
 * pixels), for the layout tests:
 *
 * - **overflow**: a box wider inside than outside (`scrollWidth > clientWidth` by more
 *   than a pixel): the document, the shell and any open dialog, every panel, table
 *   container and cell down to the smallest box. Such content is cut off (a clipped
 *   column), makes its panel scroll sideways, or spills over its neighbours. Two things
 *   may be wider than their box, and say so: text truncated with an ellipsis (checked by
 *   `untitled` below), and an element marked `data-hscroll` — one that scrolls sideways
 *   on purpose — with everything inside it. Nothing carries it today: code blocks
 *   (payloads, arguments) and diffs wrap their lines, so an approver sees every argument
 *   without scrolling. Only the innermost overflowing box of each cause is reported,
 *   with the outermost one it widens.
 * - **squeezed**: text wrapped to one or two characters per line. For each visible text
 *   node laid out on more than one line (`Range.getClientRects`), the room of a line —
 *   the content width of the block it is laid out in — must hold at least
 *   `minCharsPerLine` (3) of its characters (their mean rendered width). A second
 *   measure catches the same thing across elements: a text-bearing box narrower than
 *   three characters that is more than three lines tall.
 * - **untitled**: text cut with an ellipsis whose full value is not on hover (no `title`
 *   on it or an ancestor containing the whole text).
 */

/**
 * @typedef {{kind: 'overflow'|'squeezed'|'untitled', where: string, detail: string}} LayoutProblem
 */

/**
 * Measures the page as it is now.
 * @param {import('playwright-core').Page} page
 * @param {{minCharsPerLine?: number}} [o]
 * @returns {Promise<LayoutProblem[]>}
 */
export function layoutProblems(page, o = {}) {
  return page.evaluate(measure, { minCharsPerLine: o.minCharsPerLine ?? 3 });
}

/**
 * Runs in the page.
 * @param {{minCharsPerLine: number}} o
 * @returns {LayoutProblem[]}
 */
function measure(o) {
  /** @type {LayoutProblem[]} */
  const problems = [];

  /** A short, readable path to an element: up to four ancestors with id, classes and data-* names. @param {Element} el */
  const where = (el) => {
    /** @type {string[]} */
    const parts = [];
    /** @type {Element | null} */
    let e = el;
    while (e && parts.length < 4 && e !== document.body) {
      let s = e.tagName.toLowerCase();
      if (e.id) s += `#${e.id}`;
      const cls = [...e.classList].filter((c) => !c.startsWith('svelte-'));
      if (cls.length > 0) s += `.${cls.slice(0, 3).join('.')}`;
      for (const a of ['data-region', 'data-row', 'data-span', 'data-card', 'aria-label']) {
        const v = e.getAttribute(a);
        if (v !== null) s += `[${a}="${v.slice(0, 40)}"]`;
      }
      parts.unshift(s);
      e = e.parentElement;
    }
    return parts.join(' > ');
  };
  /** @param {string | null | undefined} t */
  const snippet = (t) => {
    const s = (t ?? '').replace(/\s+/g, ' ').trim();
    return s.length > 60 ? `${s.slice(0, 57)}…` : s;
  };
  /** @param {Element} el */
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) return false;
    const cs = getComputedStyle(el);
    return cs.visibility !== 'hidden' && cs.display !== 'none';
  };
  /** Inside an element that may scroll sideways on purpose, or text kept for screen readers only. @param {Element} el */
  const exempt = (el) => el.closest('[data-hscroll], .sr-only, svg') !== null;
  /** @param {Element} el */
  const ellipsis = (el) => {
    const cs = getComputedStyle(el);
    return cs.textOverflow === 'ellipsis' && cs.overflowX !== 'visible';
  };

  // --- overflow ---------------------------------------------------------------------------
  const doc = document.scrollingElement ?? document.documentElement;
  if (doc.scrollWidth > doc.clientWidth + 1) {
    problems.push({ kind: 'overflow', where: 'document', detail: `the page scrolls sideways: ${doc.scrollWidth} > ${doc.clientWidth} px` });
  }
  const shell = document.querySelector('.shell');
  if (!shell) throw new Error('no .shell in the page');
  // The console and any open dialog (they are outside the shell, in the top layer).
  const roots = [shell, ...document.querySelectorAll('dialog[open]')];
  const all = roots.flatMap((r) => [r, ...r.querySelectorAll('*')]);
  // Every box (not inline text, not display: contents) is a container of its content:
  // one wider inside than outside either clips it (overflow hidden or auto), scrolls
  // sideways, or lets it spill over its neighbours.
  /** @type {HTMLElement[]} */
  const over = [];
  for (const el of all) {
    if (!(el instanceof HTMLElement) || exempt(el) || !shown(el)) continue;
    if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) continue;
    const display = getComputedStyle(el).display;
    if (display === 'inline' || display === 'contents') continue;
    if (ellipsis(el)) continue;
    if (el.scrollWidth - el.clientWidth > 1) over.push(el);
  }
  // One cause makes every box around it overflow too: report the innermost box, and the
  // outermost one it pushes (the panel or view that scrolls or clips).
  const overSet = new Set(over);
  for (const el of over) {
    if (over.some((o) => o !== el && el.contains(o))) continue;
    let outer = el;
    for (let a = el.parentElement; a; a = a.parentElement) if (overSet.has(a)) outer = a;
    const box = el.getBoundingClientRect();
    let culprit = '';
    let worst = 0;
    for (const c of el.querySelectorAll('*')) {
      if (exempt(c)) continue;
      const r = c.getBoundingClientRect();
      if (r.width <= 0) continue;
      const out = r.right - box.right;
      if (out > worst + 0.5) {
        worst = out;
        culprit = `${where(c)} "${snippet(c.textContent)}"`;
      }
    }
    problems.push({
      kind: 'overflow',
      where: where(el),
      detail:
        `${el.scrollWidth} px of content in ${el.clientWidth} px` +
        (culprit ? `; sticks out: ${culprit}` : `; its text: "${snippet(el.textContent)}"`) +
        (outer !== el ? `; also widens ${where(outer)} (${outer.scrollWidth} px in ${outer.clientWidth} px)` : ''),
    });
  }

  // --- squeezed text ----------------------------------------------------------------------
  const range = document.createRange();
  /** @type {Node[]} */
  const texts = [];
  for (const r of roots) {
    const walker = document.createTreeWalker(r, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) texts.push(n);
  }
  for (const n of texts) {
    const text = n.nodeValue ?? '';
    const chars = text.replace(/\s/g, '').length;
    const parent = n.parentElement;
    if (!parent || chars < 2 || exempt(parent) || !shown(parent)) continue;
    range.selectNodeContents(n);
    const boxes = [...range.getClientRects()].filter((r) => r.width > 0 && r.height > 0);
    const lines = new Set(boxes.map((r) => Math.round(r.top))).size;
    if (lines < 2) continue;
    // The line box: the content width of the block the text is laid out in.
    /** @type {HTMLElement | null} */
    let block = parent;
    while (block && getComputedStyle(block).display === 'inline') block = block.parentElement;
    if (!block) continue;
    const bs = getComputedStyle(block);
    const room = block.clientWidth - Number.parseFloat(bs.paddingLeft) - Number.parseFloat(bs.paddingRight);
    const charWidth = boxes.reduce((a, r) => a + r.width, 0) / text.replace(/^\s+|\s+$/g, '').length;
    if (room < o.minCharsPerLine * charWidth) {
      problems.push({
        kind: 'squeezed',
        where: where(parent),
        detail: `"${snippet(text)}" wrapped into ${lines} lines ${room.toFixed(0)} px wide: room for ${(room / charWidth).toFixed(1)} characters a line`,
      });
    }
  }
  for (const el of all) {
    if (!(el instanceof HTMLElement) || exempt(el) || !shown(el)) continue;
    const own = [...el.childNodes].filter((c) => c.nodeType === Node.TEXT_NODE).map((c) => c.nodeValue ?? '').join('');
    if (own.replace(/\s/g, '').length < 4) continue;
    const cs = getComputedStyle(el);
    const font = Number.parseFloat(cs.fontSize);
    const lineHeight = Number.parseFloat(cs.lineHeight) || font * 1.45;
    const r = el.getBoundingClientRect();
    if (r.width < 3 * 0.6 * font && r.height > 3 * lineHeight) {
      problems.push({ kind: 'squeezed', where: where(el), detail: `"${snippet(own)}" in a box ${r.width.toFixed(0)} px wide and ${r.height.toFixed(0)} px tall` });
    }
  }

  // --- truncated without the full value on hover -----------------------------------------
  for (const el of all) {
    if (!(el instanceof HTMLElement) || exempt(el) || !shown(el) || !ellipsis(el)) continue;
    if (el.scrollWidth <= el.clientWidth + 1) continue;
    const full = (el.textContent ?? '').trim();
    const titled = el.closest('[title]');
    if (!titled || !(titled.getAttribute('title') ?? '').includes(full)) {
      problems.push({ kind: 'untitled', where: where(el), detail: `"${snippet(full)}" is cut with an ellipsis and no title holds the full value` });
    }
  }
  return problems;
}

/**
 * The problems as lines for an assertion message: problems at the same place in
 * repeated rows (paths that differ only in ids and numbers) are one line with a count,
 * and at most `max` lines are shown.
 * @param {LayoutProblem[]} problems
 * @param {number} [max]
 */
export function formatProblems(problems, max = 30) {
  /** @type {Map<string, {first: LayoutProblem, more: number}>} */
  const groups = new Map();
  for (const p of problems) {
    const key = `${p.kind} ${p.where.replace(/[0-9a-f]{6,}|\d+/g, '#')}`;
    const g = groups.get(key);
    if (g) g.more++;
    else groups.set(key, { first: p, more: 0 });
  }
  const lines = [...groups.values()].map(({ first: p, more }) => `  [${p.kind}] ${p.where}: ${p.detail}${more > 0 ? ` (and ${more} more like it)` : ''}`);
  const shown = lines.slice(0, max);
  if (lines.length > max) shown.push(`  … and ${lines.length - max} more`);
  return shown.join('\n');
}
