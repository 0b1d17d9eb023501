/**
 * The demo sign-in and sign-out pages, as one Fetch handler beside the portal's: pick a seeded
 * owner, get a session cookie (session.ts), land on the portal. There is no password — it is a
 * demo of how a host app tells the portal who is signed in, not an identity provider.
 */
import type { Sessions } from './session.js';

export const SIGN_IN_PATH = '/signin';
export const SIGN_OUT_PATH = '/signout';
const STYLESHEET_PATH = '/signin.css';

/** Strict headers, as the portal's own pages have: no inline script or style, no framing, no caching. */
const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'Content-Security-Policy': "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  // same-origin, not no-referrer: with no-referrer, Chromium sends `Origin: null` on the form's POST.
  'Referrer-Policy': 'same-origin',
};

export interface SignInOptions {
  sessions: Sessions;
  owners: ReadonlyArray<{ id: string; name: string }>;
  /** Where a signed-in user goes by default: the portal. */
  home: string;
}

/** A handler for /signin, /signout and their stylesheet; `undefined` for any other path. */
export function createSignIn({ sessions, owners, home }: SignInOptions): (request: Request) => Promise<Response | undefined> {
  return async (request) => {
    const url = new URL(request.url);
    if (url.pathname === STYLESHEET_PATH && request.method === 'GET') {
      return new Response(STYLESHEET, { headers: { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' } });
    }
    if (url.pathname === SIGN_IN_PATH) {
      const next = safeNext(url.searchParams.get('next'), home);
      if (request.method === 'GET' || request.method === 'HEAD') {
        return new Response(page(owners, next, await sessions.owner(request)), { headers: PAGE_HEADERS });
      }
      if (request.method !== 'POST') return methodNotAllowed('GET, POST');
      if (!sameOrigin(request, url)) return forbidden();
      const form = await formOf(request);
      const owner = owners.find((o) => o.id === form?.get('owner'));
      if (!owner) return new Response(page(owners, next, null, 'Choose one of the demo owners.'), { status: 400, headers: PAGE_HEADERS });
      const target = safeNext(form?.get('next') ?? null, home);
      return new Response(null, { status: 303, headers: { Location: target, 'Set-Cookie': await sessions.signIn(owner.id, request), 'Cache-Control': 'no-store' } });
    }
    if (url.pathname === SIGN_OUT_PATH) {
      if (request.method !== 'POST') return methodNotAllowed('POST');
      if (!sameOrigin(request, url)) return forbidden();
      return new Response(null, { status: 303, headers: { Location: SIGN_IN_PATH, 'Set-Cookie': sessions.signOut(request), 'Cache-Control': 'no-store' } });
    }
    return undefined;
  };
}

/**
 * A POST from our own pages: the browser's Fetch Metadata (`Sec-Fetch-Site`) says so, or, from an
 * older browser, its `Origin`. Sign-in CSRF is refused too.
 */
function sameOrigin(request: Request, url: URL): boolean {
  const site = request.headers.get('sec-fetch-site');
  if (site !== null) return site === 'same-origin';
  return request.headers.get('origin') === url.origin;
}

/** A local path to go to after signing in; anything else (another host, `//evil`, `/\evil`) is the portal. */
function safeNext(next: string | null, home: string): string {
  return next && /^\/(?![/\\])/.test(next) && !/[\r\n]/.test(next) ? next : home;
}

async function formOf(request: Request): Promise<URLSearchParams | undefined> {
  if (!request.headers.get('content-type')?.startsWith('application/x-www-form-urlencoded')) return undefined;
  const text = await request.text();
  return text.length > 4096 ? undefined : new URLSearchParams(text);
}

function methodNotAllowed(allow: string): Response {
  return new Response('Method Not Allowed\n', { status: 405, headers: { Allow: allow, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' } });
}

function forbidden(): Response {
  return new Response('Forbidden: cross-site form submission\n', { status: 403, headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' } });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(owners: SignInOptions['owners'], next: string, current: string | null, error?: string): string {
  const choices = owners
    .map(
      (o, i) => `
        <label class="owner">
          <input type="radio" name="owner" value="${escapeHtml(o.id)}"${i === 0 ? ' checked' : ''}>
          <span><strong>${escapeHtml(o.name)}</strong> <code>${escapeHtml(o.id)}</code></span>
        </label>`,
    )
    .join('');
  const signedIn = current
    ? `<div class="signed-in">
      <p class="note">Signed in as <code>${escapeHtml(current)}</code>. <a href="${escapeHtml(next)}">Back to your keys</a>, sign out, or sign in as someone else below.</p>
      <form method="post" action="${SIGN_OUT_PATH}"><button type="submit" class="secondary">Sign out</button></form>
    </div>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sign in · keyscope example</title>
  <link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
  <main class="card">
    <h1>Sign in</h1>
    <p class="lead">The example API's demo sign-in: choose a seeded owner to manage their API keys. No password — a real app signs its users in its own way.</p>
    ${signedIn}
    ${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
    <form method="post" action="${SIGN_IN_PATH}">
      <fieldset>
        <legend>Owner</legend>${choices}
      </fieldset>
      <input type="hidden" name="next" value="${escapeHtml(next)}">
      <button type="submit">Sign in</button>
    </form>
  </main>
</body>
</html>
`;
}

const STYLESHEET = `:root { color-scheme: light; --accent: #3451b2; --line: #d8dce6; --muted: #5b6375; }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: #f4f6fa; color: #1c2230;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.card { width: min(440px, calc(100vw - 32px)); background: #fff; border: 1px solid var(--line); border-radius: 12px;
  padding: 28px 32px; box-shadow: 0 8px 24px rgba(28, 34, 48, .06); }
h1 { margin: 0 0 8px; font-size: 22px; }
.lead, .note { color: var(--muted); margin: 0 0 20px; }
.error { color: #a3222a; background: #fdecee; border: 1px solid #f3c2c7; border-radius: 8px; padding: 8px 12px; }
fieldset { border: 0; padding: 0; margin: 0 0 20px; }
legend { font-weight: 600; margin-bottom: 8px; }
.owner { display: flex; gap: 10px; align-items: center; padding: 10px 12px; border: 1px solid var(--line); border-radius: 8px; margin-bottom: 8px; cursor: pointer; }
.owner:has(input:checked) { border-color: var(--accent); background: #f1f4fd; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--muted); }
button { width: 100%; padding: 10px 16px; border: 0; border-radius: 8px; background: var(--accent); color: #fff; font: inherit; font-weight: 600; cursor: pointer; }
button:hover { background: #2a4399; }
a { color: var(--accent); }
.signed-in { margin-bottom: 20px; padding-bottom: 20px; border-bottom: 1px solid var(--line); }
.signed-in .note { margin-bottom: 12px; }
button.secondary { background: #fff; color: var(--accent); border: 1px solid var(--accent); }
button.secondary:hover { background: #f1f4fd; }
`;
