// @ts-check
/**
 * Layout measurements of the rendered console, taken in the page (DOM geometry, not
 * pixels), for the layout tests:
 *
 * - **overflow**: a container wider inside than outside (`scrollWidth > clientWidth` by
 *   more than a pixel): the document, the shell and every element that clips or scrolls
 *   (`overflow-x` not `visible`), every panel and every table's parent. Such content is
 *   either cut off (a clipped column) or makes the panel scroll sideways. Two things may
 *   be wider than their box, and say so: text truncated with an ellipsis (checked by
 *   `untitled` below), and an element marked `data-hscroll` — a code block or diff that
 *   scrolls sideways on purpose — together with everything inside it.
 * - **squeezed**: text wrapped to (nearly) one character per line. For each visible text
 *   node that spans more than one line box, the characters are laid out one by one
 *   (`Range.getClientRects` per character) and grouped into lines; the lines that end by
 *   wrapping (not by a newline in preformatted text, not the last one) must hold more
 *   than `maxCharsPerLine` non-blank characters on average. A second measure catches
 *   the same thing across elements: a text-bearing box narrower than three characters
 *   that is more than three lines tall.
 * - **untitled**: text cut with an ellipsis whose full value is not on hover (no `title`
 *   on it or an ancestor containing the whole text).
 */

/**
 * @typedef {{kind: 'overflow'|'squeezed'|'untitled', where: string, detail: string}} LayoutProblem
 */

/**
 * Measures the page as it is now.
 * @param {import('playwright-core').Page} page
 * @param {{maxCharsPerLine?: number}} [o]
 * @returns {Promise<LayoutProblem[]>}
 */
export function layoutProblems(page, o = {}) {
  return page.evaluate(measure, { maxCharsPerLine: o.maxCharsPerLine ?? 2 });
}

/**
 * Runs in the page.
 * @param {{maxCharsPerLine: number}} o
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
  /** @type {Set<Element>} */
  const containers = new Set([shell, ...document.querySelectorAll('.shell .main, #content, .panel')]);
  for (const t of document.querySelectorAll('.shell table')) if (t.parentElement) containers.add(t.parentElement);
  for (const el of shell.querySelectorAll('*')) {
    if (el instanceof HTMLElement && getComputedStyle(el).overflowX !== 'visible') containers.add(el);
  }
  for (const el of containers) {
    if (!(el instanceof HTMLElement) || exempt(el) || !shown(el)) continue;
    if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) continue;
    if (ellipsis(el)) continue;
    const over = el.scrollWidth - el.clientWidth;
    if (over > 1) {
      // Name the widest child that sticks out, to say what is cut off.
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
      problems.push({ kind: 'overflow', where: where(el), detail: `${el.scrollWidth} px of content in ${el.clientWidth} px${culprit ? `; sticks out: ${culprit}` : ''}` });
    }
  }

  // --- squeezed text ----------------------------------------------------------------------
  const range = document.createRange();
  const walker = document.createTreeWalker(shell, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.nodeValue ?? '';
    const parent = n.parentElement;
    if (!parent || text.replace(/\s/g, '').length < 2 || exempt(parent) || !shown(parent)) continue;
    range.selectNodeContents(n);
    const boxes = [...range.getClientRects()].filter((r) => r.width > 0 && r.height > 0);
    const tops = new Set(boxes.map((r) => Math.round(r.top)));
    if (tops.size < 2) continue;
    /** @type {{chars: number, soft: boolean}[]} */
    const lines = [];
    let lastTop = Number.NaN;
    let lastHeight = 0;
    let newlineSince = false;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charAt(i);
      if (/\s/.test(ch)) {
        if (ch === '\n') newlineSince = true;
        continue;
      }
      range.setStart(n, i);
      range.setEnd(n, i + 1);
      const r = range.getClientRects()[0];
      if (!r || r.height === 0) continue;
      if (Number.isNaN(lastTop) || r.top > lastTop + lastHeight / 2) {
        const prev = lines.at(-1);
        if (prev) prev.soft = !newlineSince;
        lines.push({ chars: 0, soft: false });
        lastTop = r.top;
        lastHeight = r.height;
      }
      newlineSince = false;
      const cur = lines.at(-1);
      if (cur) cur.chars++;
    }
    const soft = lines.filter((l) => l.soft);
    if (soft.length === 0) continue;
    const avg = soft.reduce((a, l) => a + l.chars, 0) / soft.length;
    if (avg <= o.maxCharsPerLine) {
      problems.push({
        kind: 'squeezed',
        where: where(parent),
        detail: `"${snippet(text)}" wrapped into ${lines.length} lines of ${avg.toFixed(1)} characters (${parent.getBoundingClientRect().width.toFixed(0)} px wide)`,
      });
    }
  }
  for (const el of shell.querySelectorAll('*')) {
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
  for (const el of shell.querySelectorAll('*')) {
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
 * The problems as lines for an assertion message.
 * @param {LayoutProblem[]} problems
 */
export function formatProblems(problems) {
  return problems.map((p) => `  [${p.kind}] ${p.where}: ${p.detail}`).join('\n');
}
