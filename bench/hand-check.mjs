// The physical reference every keyscope number is compared with: SHA-256 of the key, a Map
// lookup, and a Set of the owner's projects. Nothing else — no expiry, no cache bound, no usage.
import { hash } from 'node:crypto';

/** A check over `keys` (plaintext) of one owner with one project: headers → scope, or null. */
export function createHandCheck(keys, ownerId, projectId) {
  const byHash = new Map(keys.map((k) => [hash('sha256', k, 'hex'), { ownerId, projects: new Set([projectId]) }]));
  return function handCheck(headers) {
    const key = headers['x-api-key'];
    if (typeof key !== 'string') return null;
    const entry = byHash.get(hash('sha256', key, 'hex'));
    if (!entry) return null;
    const requested = headers['x-project-id'];
    return entry.projects.has(requested) ? { ownerId: entry.ownerId, projectId: requested } : null;
  };
}
