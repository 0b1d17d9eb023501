import { afterAll } from 'vitest';
import { PostgresStore } from '@keyscope/postgres';
import { DATABASE_URL, dropSchema, endAdmin, migratedSchema } from '../postgres/helpers.js';
import { storeConformance } from './store-conformance.js';

afterAll(endAdmin);

// The same contract as every store, each test in a fresh schema on the real server.
storeConformance('PostgresStore', async () => {
  const schema = await migratedSchema();
  const store = new PostgresStore({ connectionString: DATABASE_URL, schema });
  return {
    store,
    addProject: (project) => store.addProject(project),
    removeProject: (id) => store.removeProject(id),
    cleanup: async () => {
      await store.close();
      await dropSchema(schema);
    },
  };
});
