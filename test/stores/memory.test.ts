import { MemoryStore } from '@keyscope/core';
import { storeConformance } from './store-conformance.js';

storeConformance('MemoryStore', async () => {
  const store = new MemoryStore();
  return { store, addProject: (project) => store.addProject(project), removeProject: (id) => store.removeProject(id) };
});
