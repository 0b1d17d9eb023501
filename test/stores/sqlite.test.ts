import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '@keyscope/sqlite';
import { storeConformance } from './store-conformance.js';

storeConformance('SqliteStore (:memory:)', async () => {
  const store = new SqliteStore({ filename: ':memory:' });
  return { store, addProject: (project) => store.addProject(project), removeProject: (id) => store.removeProject(id), cleanup: () => store.close() };
});

// The same contract on a real file, where WAL, the schema migration and durability apply.
storeConformance('SqliteStore (file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyscope-store-'));
  const store = new SqliteStore({ filename: join(dir, 'keys.db') });
  return {
    store,
    addProject: (project) => store.addProject(project),
    removeProject: (id) => store.removeProject(id),
    cleanup: () => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
