import { createHmac, timingSafeEqual } from 'node:crypto';

/** The HTML forms' token: an HMAC of the owner id, so it needs no server-side state. */
export function formToken(secret: string, ownerId: string): string {
  return createHmac('sha256', secret).update(`keyscope-portal-form\0${ownerId}`).digest('base64url');
}

export function sameToken(given: string | null, expected: string): boolean {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Why a state-changing request is refused as cross-site, or `null`: Fetch Metadata
 * (`Sec-Fetch-Site`, when sent, must be `same-origin`) and `Origin` (when sent, must be one of
 * `origins`, by default the request URL's own origin, or `null` from a same-origin form post).
 */
export function crossSiteReason(request: Request, origins: readonly string[] | null): string | null {
  const site = request.headers.get('sec-fetch-site');
  if (site !== null && site !== 'same-origin') return `the request came from another site (Sec-Fetch-Site: ${site})`;
  const origin = request.headers.get('origin');
  // With `Referrer-Policy: no-referrer` (which the portal sends), browsers send `Origin: null` on
  // their own form posts; the browser's `Sec-Fetch-Site: same-origin` (no page can forge a Sec-
  // header) says it is one. Without it, `null` is refused: sandboxed frames send it too.
  if (origin === 'null' && site === 'same-origin') return null;
  if (origin !== null) {
    const allowed = origins ?? [new URL(request.url).origin];
    if (!allowed.includes(origin)) return `the request came from another origin (${origin})`;
  }
  return null;
}
