import { createKeyscope, MemoryStore } from '@keyscope/core';
import { createPortal, type PortalOptions } from '@keyscope/portal';

/** A Response whose `json()` is loosely typed, for assertions. */
export type TestResponse = Omit<Response, 'json'> & { json(): Promise<any> };

export const ORIGIN = 'http://app.test';
export const DAY = 86_400_000;

/** A portal over a MemoryStore with two owners; the signed-in owner comes from an `x-user` header (a stand-in for a session). */
export function setup(extra: Partial<PortalOptions> = {}) {
  const clock = { now: Date.parse('2026-06-15T12:00:00Z') };
  const store = new MemoryStore();
  store.addProject({ id: 'proj_a', ownerId: 'alice', name: 'Alpha' });
  store.addProject({ id: 'proj_a2', ownerId: 'alice', name: 'Alpha Two' });
  store.addProject({ id: 'proj_b', ownerId: 'bob', name: 'Bravo' });
  const ks = createKeyscope({ store, now: () => clock.now, usage: false });
  const portal = createPortal({ keyscope: ks, owner: (r) => r.headers.get('x-user'), signInUrl: '/login', secret: 's'.repeat(32), now: () => clock.now, ...extra });

  const get = (path: string, user: string | null = 'alice', headers: Record<string, string> = {}): Promise<TestResponse> =>
    portal(new Request(ORIGIN + path, { headers: { ...(user ? { 'x-user': user } : {}), ...headers } }));
  /** A same-origin form POST, as a browser sends it. */
  const postForm = (path: string, fields: Record<string, string>, user: string | null = 'alice', headers: Record<string, string> = {}): Promise<TestResponse> =>
    portal(
      new Request(ORIGIN + path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, 'sec-fetch-site': 'same-origin', ...(user ? { 'x-user': user } : {}), ...headers },
        body: new URLSearchParams(fields),
      }),
    );
  const postJson = (path: string, body: unknown, user: string | null = 'alice', headers: Record<string, string> = {}): Promise<TestResponse> =>
    portal(
      new Request(ORIGIN + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: ORIGIN, 'sec-fetch-site': 'same-origin', ...(user ? { 'x-user': user } : {}), ...headers },
        body: body === undefined ? null : JSON.stringify(body),
      }),
    );
  /** The form token of the keys page for `user`. */
  const token = async (user = 'alice') => /name="_token" value="([^"]+)"/.exec(await (await get('/portal', user)).text())![1]!;
  return { clock, store, ks, portal, get, postForm, postJson, token };
}

/** Every URL-bearing attribute of a page. */
export function urls(page: string): string[] {
  return [...page.matchAll(/\b(?:href|src|action|content)="([^"]*)"/g)].map((m) => m[1]!);
}
