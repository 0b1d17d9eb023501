import type { AuthContext } from '@keyscope/core';

// `import '@keyscope/express/augment'` once in your app types `req.auth` as keyscope's
// AuthContext everywhere. Leave it out when another library types `req.auth` (Auth0's
// express-oauth2-jwt-bearer does): use keyscope's `property` option and `authOf(req)` instead.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Who is calling, set by `@keyscope/express` once the request is authenticated. */
      auth?: AuthContext;
    }
  }
}

export {};
