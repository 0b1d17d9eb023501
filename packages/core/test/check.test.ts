import { describe, expect, it } from 'vitest';
import { createKeyscope, MemoryStore, type AuthInput, type AuthResult, type KeyscopeEvent } from '../src/index.js';
import { deferred, headers, setup } from './helpers.js';

/** The result `check` gave in this turn; fails the test when it gave a promise instead. */
function now(result: AuthResult | Promise<AuthResult>): AuthResult {
  if ('then' in result) throw new Error('expected the decision in this turn, got a promise');
  return result;
}

/** The promise `check` gave; fails the test when it decided in this turn instead. */
function later(result: AuthResult | Promise<AuthResult>): Promise<AuthResult> {
  if (!('then' in result)) throw new Error(`expected a promise, got ${JSON.stringify(result)} in this turn`);
  return result;
}

const codeOf = (result: AuthResult) => (result.ok ? 'ok' : result.error.code);

describe('check: the decision itself when nothing needs waiting for, a promise when something does', () => {
  it('a key read from the store comes as a promise; once cached, as the result itself, equal to what authenticate gives', async () => {
    const { ks, store, user } = await setup();
    const input: AuthInput = { headers: headers(user.key, 'proj_alpha'), path: '/sites' };
    const cold = await later(ks.check(input));
    const warm = now(ks.check(input));
    expect(warm).toEqual(cold);
    expect(warm).toEqual(await ks.authenticate(input));
    expect(warm.ok && warm.auth).toEqual({ keyId: user.record.id, keyName: 'user key', ownerId: 'demo-user', level: 'user', projectId: 'proj_alpha' });
    expect(store.findCalls).toBe(1);
  });

  it.each([
    ['no key', headers(undefined, 'proj_alpha'), 'missing_api_key'],
    ['a key of the wrong length', headers('ks_short', 'proj_alpha'), 'invalid_api_key'],
    ['a key with a bad checksum', headers(`ks_${'A'.repeat(36)}`, 'proj_alpha'), 'invalid_api_key'],
  ])('%s is refused in this turn, without the store', async (_, h, code) => {
    const { ks, store } = await setup();
    expect(codeOf(now(ks.check({ headers: h, path: '/sites', clientIp: '203.0.113.7' })))).toBe(code);
    expect(store.findCalls).toBe(0);
  });

  it('every project answer of a cached key comes in this turn once the directory has been asked', async () => {
    const { ks, store, user, project } = await setup();
    await ks.authenticate({ headers: headers(user.key, 'proj_alpha'), path: '/sites' });
    await ks.authenticate({ headers: headers(project.key), path: '/sites' });
    // proj_gamma is another owner's: the directory is asked once, then the 403 is cached too.
    expect(codeOf(await later(ks.check({ headers: headers(user.key, 'proj_gamma'), path: '/sites' })))).toBe('project_forbidden');
    const cases: [AuthInput, string][] = [
      [{ headers: headers(user.key, 'proj_gamma'), path: '/sites' }, 'project_forbidden'],
      [{ headers: headers(user.key), path: '/sites' }, 'project_required'],
      [{ headers: headers(user.key), path: '/validate' }, 'ok'],
      [{ headers: headers(project.key, 'proj_beta'), path: '/sites' }, 'project_forbidden'],
      [{ headers: headers(project.key), path: '/sites' }, 'ok'],
      [{ headers: headers(user.key, 'bad id!'), path: '/sites' }, 'project_forbidden'],
    ];
    const reads = store.ownsCalls;
    for (const [input, code] of cases) expect(codeOf(now(ks.check(input)))).toBe(code);
    expect(store.ownsCalls).toBe(reads);
  });

  it('an unknown, a revoked and an expired key: a promise on the first read, then the same 401 in this turn', async () => {
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const { ks, user } = await setup({ now: () => clock });
    const expiring = await ks.keys.create({ ownerId: 'demo-user', name: 'short', level: 'user', expiresAt: new Date(clock + 1000) });
    const unknown = (await createKeyscope({ store: new (await import('../src/index.js')).MemoryStore() }).keys.create({ ownerId: 'x', name: 'elsewhere', level: 'user' })).key;
    for (const key of [user.key, expiring.key, unknown]) await ks.authenticate({ headers: headers(key, 'proj_alpha'), path: '/sites' });
    await ks.keys.revoke(user.record.id);
    clock += 2000;
    for (const key of [user.key, expiring.key, unknown]) {
      const input = { headers: headers(key, 'proj_alpha'), path: '/sites' };
      // The revoked key's entry went with the revocation: read again once.
      const first = ks.check(input);
      const answer = 'then' in first ? await first : first;
      expect(now(ks.check(input))).toEqual(answer);
      expect(codeOf(answer)).toBe('invalid_api_key');
    }
  });

  it('a store that fails: a promise of the 503, never a pass', async () => {
    const { ks, store, user } = await setup();
    store.mode = 'throw';
    expect(codeOf(await later(ks.check({ headers: headers(user.key, 'proj_alpha'), path: '/sites' })))).toBe('auth_unavailable');
  });

  it('a key with limits waits for them, and its RateLimit fields come with the result', async () => {
    const { ks } = await setup();
    const limited = await ks.keys.create({ ownerId: 'demo-user', name: 'limited', level: 'user', rateLimit: { limit: 5, windowMs: 60_000 } });
    const input = { headers: headers(limited.key, 'proj_alpha'), path: '/sites' };
    await ks.authenticate(input);
    const result = await later(ks.check(input));
    expect(result.ok && result.headers).toMatchObject({ 'RateLimit-Policy': expect.any(String) });
  });

  it('with onEvent, a cached decision is told before check returns it', async () => {
    const events: KeyscopeEvent[] = [];
    const { ks, user } = await setup({ onEvent: (event) => events.push(event) });
    const input = { headers: headers(user.key, 'proj_alpha'), path: '/sites' };
    await ks.authenticate(input);
    events.length = 0;
    now(ks.check(input));
    now(ks.check({ headers: headers(user.key), path: '/sites' }));
    expect(events.map((event) => event.type === 'refused' ? `refused ${event.code}` : event.type)).toEqual(['authenticated', 'refused project_required']);
  });

  it('an input function that throws: check throws it, authenticate rejects with it', async () => {
    const { ks, user } = await setup();
    await ks.authenticate({ headers: headers(user.key), path: '/validate' });
    const input = { headers: headers(user.key), project: () => { throw new Error('route table broken'); } };
    expect(() => ks.check(input)).toThrow('route table broken');
    await expect(ks.authenticate(input)).rejects.toThrow('route table broken');
  });
});

describe('a decision that waits sees the request as it arrived', () => {
  // What other middleware may change on the request while the key is read from the store. The
  // cached decision of the same request, as it arrived, is what the first one must answer too.
  const rows: Array<{ name: string; arrived: () => { input: AuthInput; change: () => void } }> = [
    {
      name: 'the path turns project-optional',
      arrived: () => {
        let path = '/sites';
        return { input: { headers: {}, path: () => path }, change: () => void (path = '/validate') };
      },
    },
    {
      name: 'the project rule turns optional',
      arrived: () => {
        let rule: 'required' | 'optional' = 'required';
        return { input: { headers: {}, path: '/sites', project: () => rule }, change: () => void (rule = 'optional') };
      },
    },
    {
      name: 'an unowned X-Project-ID is taken away on a project-optional path',
      arrived: () => {
        const sent: Record<string, string> = { 'x-project-id': 'proj_gamma' };
        return { input: { headers: sent, path: '/validate' }, change: () => void delete sent['x-project-id'] };
      },
    },
  ];
  for (const { name, arrived } of rows) {
    it(`${name} during the store read: the answer is the one for the request as it arrived`, async () => {
      const { ks, store, user } = await setup();
      const withKey = (input: AuthInput): AuthInput => {
        // The key header joins the request's own headers object, so a change to it is seen.
        (input.headers as Record<string, string>)['x-api-key'] = user.key;
        return input;
      };
      const read = deferred();
      store.gate = read.promise;
      const first = withKey(arrived().input);
      const { input: raced, change } = arrived();
      withKey(raced);
      const pending = later(ks.check(raced));
      change();
      read.resolve();
      const late = await pending;
      store.gate = undefined;
      // The same request as it arrived, now from the cache: decided in this turn.
      const cached = now(ks.check(first));
      expect(codeOf(late)).toBe(codeOf(cached));
      expect(codeOf(late)).not.toBe('ok');
      expect(store.findCalls).toBe(1);
    });
  }
});

describe('a decision that waits takes only what it may need, and fails only where it would have', () => {
  const broken = () => {
    throw new Error('route table broken');
  };
  /** The code `f` decides, or how it threw (in this turn or as a rejection). */
  const outcome = (f: () => AuthResult | Promise<AuthResult>): Promise<string> => {
    try {
      return Promise.resolve(f()).then(codeOf, (error: Error) => `threw ${error.message}`);
    } catch (error) {
      return Promise.resolve(`threw in this turn: ${(error as Error).message}`);
    }
  };
  const strangerKey = async () => (await createKeyscope({ store: new MemoryStore(), usage: false }).keys.create({ ownerId: 'x', name: 'x', level: 'user' })).key;

  it('a project-level key, which needs no rule, passes from the store as from the cache when the rule cannot be read', async () => {
    const { ks, project } = await setup();
    const input: AuthInput = { headers: headers(project.key), path: '/sites', project: broken };
    const cold = await outcome(() => ks.check(input));
    const warm = await outcome(() => ks.check(input));
    expect({ cold, warm }).toEqual({ cold: 'ok', warm: 'ok' });
  });

  it('an unknown key is a 401 whether or not the rule can be read; a user key that needs it fails as before', async () => {
    const { ks, user } = await setup();
    const stranger = await strangerKey();
    expect(await outcome(() => ks.check({ headers: headers(stranger), path: broken }))).toBe('invalid_api_key');
    expect(await outcome(() => ks.check({ headers: headers(user.key), path: broken }))).toBe('threw route table broken');
  });

  it('the throttle counts the client as it arrived', async () => {
    const { ks, store } = await setup({ throttle: { maxFailures: 1, windowMs: 60_000 } });
    const stranger = await strangerKey();
    await ks.authenticate({ headers: headers('nonsense'), clientIp: '10.0.0.9' }); // 10.0.0.9 is over its limit
    let ip = '10.0.0.1';
    const read = deferred();
    store.gate = read.promise;
    const pending = later(ks.check({ headers: headers(stranger), path: '/sites', clientIp: () => ip }));
    ip = '10.0.0.9'; // a middleware rewriting X-Forwarded-For while the store is read
    read.resolve();
    expect(codeOf(await pending)).toBe('invalid_api_key');
  });

  it('a decision that waited is reused by a stacked middleware, which applies its own rule', async () => {
    const { ks, store, user } = await setup();
    const request = {};
    expect(codeOf(await later(ks.check({ headers: headers(user.key), path: '/validate', request })))).toBe('ok');
    expect(codeOf(now(ks.check({ headers: headers(user.key), path: '/sites', request })))).toBe('project_required');
    expect(codeOf(now(ks.check({ headers: headers(user.key), project: 'optional', request })))).toBe('ok');
    expect(store.findCalls).toBe(1);
  });
});
