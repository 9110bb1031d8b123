/**
 * Kubernetes namespace names are DNS-1123 labels: at most 63 characters, lowercase
 * letters, digits and "-", starting and ending with a letter or digit.
 */
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX = 63;

/** Why `ns` is not a namespace name, or null when it is one. */
export function namespaceProblem(ns: string): string | null {
  if (ns === '') return 'Enter a namespace, e.g. agents';
  if (LABEL.test(ns) && ns.length <= MAX) return null;
  const what = `"${ns}" is not a namespace name`;
  if (ns.length > MAX) return `${what}: ${ns.length} characters, at most ${MAX}`;
  if (/[A-Z]/.test(ns)) return `${what}: use lowercase letters (a DNS-1123 label)`;
  const bad = /[^-a-z0-9]/u.exec(ns)?.[0];
  if (bad !== undefined) return `${what}: ${bad === ' ' ? 'spaces are' : `"${bad}" is`} not allowed, only lowercase letters, digits and "-" (a DNS-1123 label)`;
  return `${what}: it must start and end with a letter or digit (a DNS-1123 label)`;
}
