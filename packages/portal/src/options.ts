import type { Keyscope } from '@keyscope/core';

/** One choice of grace period offered when rotating a key. */
export interface GraceOption {
  /** Shown to the user, e.g. `'24 hours'`. */
  label: string;
  /** How long the old key keeps working, in milliseconds (`0`: revoked at once). */
  ms: number;
}

/** Options of `createPortal`. */
export interface PortalOptions {
  /** The keyscope instance whose keys the portal administers (only `keys.forOwner` is used). */
  keyscope: Pick<Keyscope, 'keys'>;
  /**
   * Who is signed in: the owner id from your app's own session, or `null`/`undefined` for nobody.
   * @example owner: async (request) => (await sessions.read(request))?.userId ?? null
   */
  owner: (request: Request) => string | null | undefined | Promise<string | null | undefined>;
  /** Where the portal is mounted; every page and API route is below it. Default `'/portal'`. */
  basePath?: string;
  /** Where pages send a visitor who is not signed in (303). Without it they answer 401. */
  signInUrl?: string;
  /** Active keys older than this many days are marked "Rotation due"; `false`: never. Default `90`. */
  rotationDueDays?: number | false;
  /** Grace periods offered on rotation. Default: none, 1 hour, 24 hours. */
  graceOptions?: GraceOption[];
  /** Expiry choices (days) offered on creation besides "Never". Default `[30, 90, 365]`. */
  expiryDays?: number[];
  /**
   * Secret for the HTML forms' CSRF tokens (≥ 32 characters). Default: random per `createPortal`,
   * so a restart invalidates open forms and several instances need the same secret.
   */
  secret?: string;
  /**
   * The public origin(s) (`https://app.example.com`) state-changing requests must come from, when
   * the request URL the portal sees is not the public one (behind a proxy). Default: the request URL's origin.
   */
  origin?: string | string[];
  /**
   * Whether owners may set their own keys' rate limits and quotas: fields in the create form, a
   * Limits page per key, `rateLimit`/`quota` in the JSON API. The table shows limits either way.
   * An owner can then raise or remove any limit of their keys, one you set included (a key's own
   * rate limit wins over its level's default), so it is off unless you say so: limits are your
   * policy, shown to owners, changed by you (API, CLI). Default `false`.
   */
  editLimits?: boolean;
  /** Page title. Default `'API Keys'`. */
  title?: string;
  /** The API's base URL shown in the help page examples. Default `'https://api.example.com'`. */
  apiUrl?: string;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/** The portal: a Fetch handler for everything under `basePath`. */
export type PortalHandler = (request: Request) => Promise<Response>;
