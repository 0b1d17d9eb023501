// The keyscope every adapter's own tests run against: usr_1 owns proj_a and has one
// user-level key. Each test file gets its own instance (vitest isolates modules per file).
import { createKeyscope, MemoryStore } from '@keyscope/core';

export const store = new MemoryStore();
store.addProject({ id: 'proj_a', ownerId: 'usr_1', name: 'Alpha' });
export const ks = createKeyscope({ store, usage: false });
export const userKey = (await ks.keys.create({ ownerId: 'usr_1', name: 'user key', level: 'user' })).key;
