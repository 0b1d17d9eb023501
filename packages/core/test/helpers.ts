import { createKeyscope, MemoryStore, type KeyscopeOptions, type KeyRecord } from '../src/index.js';

/** A MemoryStore that counts reads and can be told to fail, stall or hold reads. */
export class SpyStore extends MemoryStore {
  findCalls = 0;
  ownsCalls = 0;
  mode: 'ok' | 'throw' | 'hang' = 'ok';
  /** When set, findKeyByHash waits for this promise before answering. */
  gate: Promise<void> | undefined;

  override async findKeyByHash(hash: string): Promise<KeyRecord | null> {
    this.findCalls++;
    // Read before waiting: a held read answers with what the store had when it began.
    const record = await super.findKeyByHash(hash);
    if (this.mode === 'throw') throw new Error('connection refused');
    if (this.mode === 'hang') await new Promise(() => {});
    if (this.gate) await this.gate;
    return record;
  }

  override async ownsProject(ownerId: string, projectId: string): Promise<boolean> {
    this.ownsCalls++;
    if (this.mode === 'throw') throw new Error('connection refused');
    if (this.mode === 'hang') await new Promise(() => {});
    return super.ownsProject(ownerId, projectId);
  }
}

/** A keyscope over a SpyStore with demo-user (alpha, beta) and other-user (gamma), plus one key of each level. */
export async function setup(options: Partial<KeyscopeOptions> = {}) {
  const store = new SpyStore();
  store.addProject({ id: 'proj_alpha', ownerId: 'demo-user', name: 'Alpha' });
  store.addProject({ id: 'proj_beta', ownerId: 'demo-user', name: 'Beta' });
  store.addProject({ id: 'proj_gamma', ownerId: 'other-user', name: 'Gamma' });
  const ks = createKeyscope({ store, usage: false, ...options });
  const user = await ks.keys.create({ ownerId: 'demo-user', name: 'user key', level: 'user' });
  const project = await ks.keys.create({ ownerId: 'demo-user', name: 'alpha key', level: 'project', projectId: 'proj_alpha' });
  store.findCalls = 0;
  store.ownsCalls = 0;
  return { store, ks, user, project };
}

export function headers(key?: string, projectId?: string): Record<string, string> {
  const h: Record<string, string> = {};
  if (key !== undefined) h['x-api-key'] = key;
  if (projectId !== undefined) h['x-project-id'] = projectId;
  return h;
}

export function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
