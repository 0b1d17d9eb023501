/**
 * The pages beside the API: the key portal (`@keyscope/portal`) at /portal and the demo sign-in
 * (/signin, /signout). One Fetch handler; every framework's server hands it the requests whose
 * path `isWebPath` accepts, through the Node bridge in servers/web-bridge.ts (Hono calls it directly).
 */
import { createHash } from 'node:crypto';
import type { Keyscope } from '@keyscope/core';
import { createPortal } from '@keyscope/portal';
import { DEMO_OWNERS } from './seed.js';
import { createSessions, loadSessionSecret } from './session.js';
import { createSignIn, SIGN_IN_PATH, SIGN_OUT_PATH } from './signin.js';

export const PORTAL_PATH = '/portal';

/** A Fetch handler for the portal and the sign-in pages. */
export type WebHandler = (request: Request) => Promise<Response>;

/** The paths the web handler answers (everything else is the API's). */
export function isWebPath(pathname: string): boolean {
  return (
    pathname === PORTAL_PATH ||
    pathname.startsWith(`${PORTAL_PATH}/`) ||
    pathname === SIGN_IN_PATH ||
    pathname === SIGN_OUT_PATH ||
    pathname === '/signin.css'
  );
}

export function createWeb(deps: { keyscope: Keyscope; env: NodeJS.ProcessEnv; db: string; apiUrl: string }): { handler: WebHandler; secretSource: string } {
  const { secret, source } = loadSessionSecret(deps.env, deps.db);
  const sessions = createSessions(secret, (id) => DEMO_OWNERS.some((o) => o.id === id));
  const portal = createPortal({
    keyscope: deps.keyscope,
    owner: (request) => sessions.owner(request),
    basePath: PORTAL_PATH,
    signInUrl: `${SIGN_IN_PATH}?next=${encodeURIComponent(PORTAL_PATH)}`,
    // The portal's CSRF tokens: derived from the session secret, so they survive a restart and
    // agree across servers sharing KEYSCOPE_SESSION_SECRET, without reusing the signing key itself.
    secret: createHash('sha256').update('keyscope-example portal csrf\0').update(secret).digest('base64url'),
    apiUrl: deps.apiUrl,
    // The demo lets its owners cap their own keys (rate limit, quota). Off by default: in a real
    // API limits are usually the operator's policy, which owners must not raise.
    editLimits: true,
  });
  const signIn = createSignIn({ sessions, owners: DEMO_OWNERS, home: PORTAL_PATH });
  return {
    secretSource: source,
    async handler(request) {
      return (await signIn(request)) ?? portal(request);
    },
  };
}
