/** Whether `target` takes typed text (an input, a text area, a select, an editable element). */
export function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

/**
 * Whether a key press is a view's single-key shortcut to act on: not handled already, no
 * Ctrl/Meta/Alt, not typed into a field, and no modal dialog open (a dialog's keys are its own).
 */
export function isShortcut(e: KeyboardEvent): boolean {
  return !e.defaultPrevented && !e.ctrlKey && !e.metaKey && !e.altKey && !isTyping(e.target) && document.querySelector('dialog[open]') === null;
}
