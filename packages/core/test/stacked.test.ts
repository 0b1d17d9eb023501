/** Stacked middlewares: one request meets keyscope twice (router-wide and per route). */
import { describe, expect, it } from 'vitest';
import { createKeyscope, MemoryStore, type AuthResult, type KeyscopeEvent } from '../src/index.js';
import { headers, setup } from './helpers.js';

const code = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);

describe('one request, authenticated once', () => {
  it('a second call for the same request object reuses the decision: no store read, usage counted once', async () => {
    const store = new MemoryStore();
    const ks = createKeyscope({ store, usage: { flushIntervalMs: 60_000 } });
    const { key, record } = await ks.keys.create({ ownerId: 'u', name: 'k', level: 'user' });
    const request = {};
    const first = await ks.authenticate({ headers: headers(key), path: '/validate', request });
    const second = await ks.authenticate({ headers: headers(key), path: '/validate', request });
    expect(second).toEqual(first);
    expect((await ks.keys.usage(record.id)).days[0]!.count).toBe(1);
    // Another request object is another request.
    await ks.authenticate({ headers: headers(key), path: '/validate', request: {} });
    expect((await ks.keys.usage(record.id)).days[0]!.count).toBe(2);
    await ks.close();
  });

  it('reuses without asking the store again', async () => {
    const { ks, store, user } = await setup({ cache: { max: 1, ttlMs: 0 } });
    const request = {};
    await ks.authenticate({ headers: headers(user.key), path: '/validate', request });
    const calls = store.findCalls;
    await ks.authenticate({ headers: headers(user.key), path: '/validate', request });
    expect(store.findCalls).toBe(calls);
  });

  it('the later call applies its own, stricter project rule; it cannot loosen a refusal, which ended the request', async () => {
    const { ks, user, project } = await setup();
    const request = {};
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate', request }))).toBe('ok');
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate', request, project: 'required' }))).toBe('project_required');
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/sites', request }))).toBe('project_required');
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/sites', request, project: 'optional' }))).toBe('ok');
    // A decided project satisfies any rule; so does a project key.
    const withProject = {};
    await ks.authenticate({ headers: headers(user.key, 'proj_alpha'), path: '/sites', request: withProject });
    expect(await ks.authenticate({ headers: headers(user.key, 'proj_alpha'), path: '/x', request: withProject, project: 'required' })).toMatchObject({ ok: true, auth: { projectId: 'proj_alpha' } });
    const projectRequest = {};
    await ks.authenticate({ headers: headers(project.key), path: '/validate', request: projectRequest });
    expect(code(await ks.authenticate({ headers: headers(project.key), path: '/sites', request: projectRequest, project: 'required' }))).toBe('ok');
  });

  it('a refusal is not remembered: the request ended with it', async () => {
    const { ks, user } = await setup();
    const request = {};
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/sites', request }))).toBe('project_required');
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/sites', request, project: 'optional' }))).toBe('ok');
  });

  it('tells onEvent once for a reused decision, and tells a later refusal with the key id', async () => {
    const events: KeyscopeEvent[] = [];
    const { ks, user } = await setup({ onEvent: (e) => events.push(e) });
    const request = {};
    await ks.authenticate({ headers: headers(user.key), path: '/validate', request });
    await ks.authenticate({ headers: headers(user.key), path: '/validate', request });
    await ks.authenticate({ headers: headers(user.key), path: '/validate', request, project: 'required' });
    expect(events.map((e) => e.type)).toEqual(['authenticated', 'refused']);
    expect(events[1]).toEqual({ type: 'refused', code: 'project_required', status: 403, keyId: user.record.id });
  });
});

describe('a lazy project requirement', () => {
  it('is asked only when the project rule needs it, and undefined defers to the path', async () => {
    const { ks, user, project } = await setup();
    let asked = 0;
    const lazy = (answer: 'optional' | 'required' | undefined) => () => (asked++, answer);
    // Both keys cached: a decision that waits for the store asks before it waits (below).
    for (const key of [project.key, user.key]) await ks.authenticate({ headers: headers(key, 'proj_alpha'), path: '/sites' });
    await ks.authenticate({ headers: headers(project.key), path: '/sites', project: lazy('required') });
    await ks.authenticate({ headers: headers(user.key, 'proj_alpha'), path: '/sites', project: lazy('required') });
    expect(asked).toBe(0);
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/sites', project: lazy('optional') }))).toBe('ok');
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate', project: lazy('required') }))).toBe('project_required');
    expect(code(await ks.authenticate({ headers: headers(user.key), path: '/validate', project: lazy(undefined) }))).toBe('ok');
    expect(code(await ks.authenticate({ headers: headers(user.key), path: () => '/sites', project: lazy(undefined) }))).toBe('project_required');
    expect(asked).toBe(4);
    // A decision that waits for the store takes the requirement first, once: as the request arrived.
    ks.invalidate();
    expect(code(await ks.authenticate({ headers: headers(project.key), path: '/sites', project: lazy('required') }))).toBe('ok');
    expect(asked).toBe(5);
  });
});
