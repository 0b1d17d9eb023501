import type { PortalHandler, PortalOptions } from './options.js';

/**
 * A self-service API key page and JSON API for the signed-in owner, as one Fetch handler.
 *
 * @example
 * const portal = createPortal({ keyscope: ks, owner: (req) => sessionUser(req), signInUrl: '/login' })
 * const response = await portal(new Request('https://app.example.com/portal'))
 */
export function createPortal(options: PortalOptions): PortalHandler {
  void options;
  return async function portal(_request: Request): Promise<Response> {
    return new Response('Not implemented yet', { status: 501 });
  };
}
