/**
 * Hash routing (`#/traces?request_id=…`): works from Tauri's static assets and from any
 * static server, with no server-side fallback.
 */
export const ROUTES = [
  { id: 'overview', title: 'Overview', key: 'o' },
  { id: 'traces', title: 'Traces', key: 't' },
  { id: 'approvals', title: 'Approvals', key: 'a' },
  { id: 'releases', title: 'Releases', key: 'r' },
  { id: 'evals', title: 'Evals', key: 'e' },
  { id: 'smoke', title: 'Smoke tests', key: 's' },
  { id: 'settings', title: 'Settings', key: ',' },
] as const;

export type RouteId = (typeof ROUTES)[number]['id'];

function parse(hash: string): { id: RouteId; params: URLSearchParams } {
  const raw = hash.replace(/^#\/?/, '');
  const [path = '', query = ''] = raw.split('?', 2);
  const id = ROUTES.find((r) => r.id === path)?.id ?? 'overview';
  return { id, params: new URLSearchParams(query) };
}

class Router {
  route = $state<RouteId>('overview');
  params = $state.raw<URLSearchParams>(new URLSearchParams());

  constructor() {
    this.#sync();
    window.addEventListener('hashchange', () => this.#sync());
  }

  #sync(): void {
    const { id, params } = parse(window.location.hash);
    this.route = id;
    this.params = params;
  }

  go(id: RouteId, params: Record<string, string> = {}): void {
    const q = new URLSearchParams(params).toString();
    const hash = `#/${id}${q ? `?${q}` : ''}`;
    if (window.location.hash === hash) this.#sync();
    else window.location.hash = hash;
  }

  title(id: RouteId): string {
    return ROUTES.find((r) => r.id === id)?.title ?? id;
  }
}

export const router = new Router();
