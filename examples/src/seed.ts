import type { Keyscope, Project } from '@keyscope/core';
import type { MonitoringData, NewCheck, Site } from './data.js';

/** The demo owners: who can sign in to the key portal with the demo sign-in. */
export const DEMO_OWNERS: ReadonlyArray<{ id: string; name: string }> = [
  { id: 'demo-user', name: 'Demo User' },
  { id: 'other-user', name: 'Other User' },
];

/** The demo world: two owners, three projects, a few sites. */
export const DEMO_PROJECTS: readonly Project[] = [
  { id: 'proj_alpha', ownerId: 'demo-user', name: 'Alpha' },
  { id: 'proj_beta', ownerId: 'demo-user', name: 'Beta' },
  { id: 'proj_gamma', ownerId: 'other-user', name: 'Gamma' },
];

export const DEMO_SITES: readonly Site[] = [
  { id: 'site_alpha_www', projectId: 'proj_alpha', name: 'Alpha website', url: 'https://alpha.example.com' },
  { id: 'site_alpha_api', projectId: 'proj_alpha', name: 'Alpha API', url: 'https://api.alpha.example.com' },
  { id: 'site_beta_shop', projectId: 'proj_beta', name: 'Beta shop', url: 'https://shop.beta.example.net' },
  { id: 'site_gamma_blog', projectId: 'proj_gamma', name: 'Gamma blog', url: 'https://blog.gamma.example.org' },
];

const CHECKS_PER_SITE = 24;
const CHECK_INTERVAL_MS = 5 * 60_000;

/** The keys made for demo-user on the first start. Shown once, never stored in plaintext. */
export interface DemoKeys {
  userKey: string;
  projectKey: string;
}

/** Where projects are registered: the keyscope store (SqliteStore, MemoryStore). */
export interface ProjectRegistry {
  addProject(project: Project): Promise<void> | void;
}

/**
 * Write the demo data into an empty database: projects into the keyscope store (so ownership
 * checks see them), sites and a couple of hours of checks beside them, and one key of each
 * level for demo-user.
 */
export async function seedDemo(deps: { keyscope: Keyscope; store: ProjectRegistry; data: MonitoringData; now?: Date }): Promise<DemoKeys> {
  const now = deps.now ?? new Date();
  for (const project of DEMO_PROJECTS) await deps.store.addProject(project);
  seedData(deps.data, now);
  return seedKeys(deps.keyscope);
}

/** The sites and checks alone (a PostgreSQL store already seeded by another server, a new data file). */
export function seedData(data: MonitoringData, now = new Date()): void {
  data.seed([...DEMO_SITES], demoChecks(now), now);
}

/** One key of each level for demo-user, whose projects must exist. */
async function seedKeys(keyscope: Keyscope): Promise<DemoKeys> {
  const deps = { keyscope };
  const user = await deps.keyscope.keys.create({ ownerId: 'demo-user', name: 'demo user key', level: 'user' });
  const project = await deps.keyscope.keys.create({
    ownerId: 'demo-user',
    name: 'demo alpha key',
    level: 'project',
    projectId: 'proj_alpha',
  });
  return { userKey: user.key, projectKey: project.key };
}

/** Deterministic, plausible checks: steady response times, the Beta shop down for the last two. */
function demoChecks(now: Date): NewCheck[] {
  const checks: NewCheck[] = [];
  DEMO_SITES.forEach((site, index) => {
    const random = mulberry32(index + 1);
    for (let i = CHECKS_PER_SITE - 1; i >= 0; i--) {
      const down = site.id === 'site_beta_shop' && i < 2;
      checks.push({
        projectId: site.projectId,
        siteId: site.id,
        checkedAt: new Date(now.getTime() - i * CHECK_INTERVAL_MS).toISOString(),
        status: down ? 'down' : 'up',
        httpStatus: down ? 503 : 200,
        responseMs: down ? 10_000 : 80 + Math.floor(random() * 120) + index * 25,
      });
    }
  });
  return checks;
}

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
