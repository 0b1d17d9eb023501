/**
 * The example's demo sign-in: who is signed in to the key portal, as a session cookie holding an
 * HS256 JWT signed with jose. A real app has its own sign-in; the portal only asks `owner(request)`.
 *
 * The secret is `KEYSCOPE_SESSION_SECRET` (at least 32 characters), else one generated on the first
 * start and kept beside the database file (`<db>.session-secret`, mode 0600), so sessions outlive a
 * restart. Servers that must accept each other's sessions share `KEYSCOPE_SESSION_SECRET`.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { jwtVerify, SignJWT } from 'jose';

export const SESSION_COOKIE = 'keyscope_session';
/** How long a session lasts: a working day. */
export const SESSION_TTL_SECONDS = 8 * 60 * 60;
const ISSUER = 'keyscope-example';
const AUDIENCE = 'keyscope-portal';
const MIN_SECRET_LENGTH = 32;

/** Where a generated secret is kept: beside the database file. */
export function secretFile(db: string): string {
  return `${db}.session-secret`;
}

/**
 * The HMAC secret: `KEYSCOPE_SESSION_SECRET`, else the file beside `db`, created (0600) on first
 * use. Two servers starting together on one file agree: the file appears atomically (link), and
 * the one that loses the race reads the winner's.
 */
export function loadSessionSecret(env: NodeJS.ProcessEnv, db: string): { secret: Uint8Array; source: string } {
  const fromEnv = env.KEYSCOPE_SESSION_SECRET;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < MIN_SECRET_LENGTH) {
      throw new RangeError(`KEYSCOPE_SESSION_SECRET must be at least ${MIN_SECRET_LENGTH} characters (e.g. \`openssl rand -base64 32\`)`);
    }
    return { secret: new TextEncoder().encode(fromEnv), source: 'KEYSCOPE_SESSION_SECRET' };
  }
  const file = secretFile(db);
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    text = randomBytes(32).toString('base64url');
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, `${text}\n`, { mode: 0o600, flag: 'wx' });
    try {
      linkSync(temp, file);
    } catch (linkError) {
      if ((linkError as NodeJS.ErrnoException).code !== 'EEXIST') throw linkError;
      text = readFileSync(file, 'utf8').trim(); // another server made it first
    } finally {
      unlinkSync(temp);
    }
  }
  if (text.length < MIN_SECRET_LENGTH) throw new RangeError(`${file} holds a session secret shorter than ${MIN_SECRET_LENGTH} characters; delete it to get a new one`);
  return { secret: new TextEncoder().encode(text), source: file };
}

export interface Sessions {
  /** A `Set-Cookie` value signing `ownerId` in for SESSION_TTL_SECONDS. */
  signIn(ownerId: string, request: Request): Promise<string>;
  /** A `Set-Cookie` value that removes the session. */
  signOut(request: Request): string;
  /** The owner whose valid session cookie the request carries, or null. */
  owner(request: Request): Promise<string | null>;
}

export function createSessions(secret: Uint8Array, isOwner: (id: string) => boolean): Sessions {
  const attributes = (request: Request) => `; HttpOnly; SameSite=Lax; Path=/${new URL(request.url).protocol === 'https:' ? '; Secure' : ''}`;
  return {
    async signIn(ownerId, request) {
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(ownerId)
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(`${SESSION_TTL_SECONDS}s`)
        .sign(secret);
      return `${SESSION_COOKIE}=${token}; Max-Age=${SESSION_TTL_SECONDS}${attributes(request)}`;
    },
    signOut(request) {
      return `${SESSION_COOKIE}=; Max-Age=0${attributes(request)}`;
    },
    async owner(request) {
      const token = cookie(request.headers.get('cookie'), SESSION_COOKIE);
      if (!token) return null;
      try {
        const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE, requiredClaims: ['exp', 'sub'] });
        return typeof payload.sub === 'string' && isOwner(payload.sub) ? payload.sub : null;
      } catch {
        return null; // expired, tampered with, signed with another secret
      }
    },
  };
}

/** One cookie's value from a Cookie header (the first, if the name repeats). */
export function cookie(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}
