import { describe, expect, it } from 'vitest';
import { checkAdapterOptions, checkOf, createKeyscope, MemoryStore, pathBelow, toError } from '../src/index.js';

describe('pathBelow', () => {
  it.each([
    ['/api/v1', '/api/v1/validate', '/validate'],
    ['/api/v1', '/api/v1', '/'],
    ['/api/v1', '/api/v1?x=1', '/?x=1'],
    ['/api/v1', '/api/v1x/validate', '/api/v1x/validate'],
    ['/api/v1', '/validate', '/validate'],
    ['/', '/validate', '/validate'],
    [undefined, '/validate', '/validate'],
    ['', '/validate', '/validate'],
  ])('pathBelow(%j, %j) is %j', (prefix, path, expected) => {
    expect(pathBelow(prefix, path)).toBe(expected);
  });
});

describe('checkAdapterOptions', () => {
  const ks = createKeyscope({ store: new MemoryStore() });

  it('fills in the default error mode and hands back ks', () => {
    expect(checkAdapterOptions(ks, {}, 'next')).toEqual({ ks, onError: 'respond', check: expect.any(Function) });
    expect(checkAdapterOptions(ks, { project: 'optional', onError: 'next' }, 'next')).toMatchObject({ project: 'optional', onError: 'next' });
  });

  it.each([
    [undefined, {}, /ks must come from createKeyscope/],
    [ks, null, /options must be an object/],
    [ks, { project: 'sometimes' }, /options\.project/],
    [ks, { onError: 'throw' }, /options\.onError must be 'respond' or 'next'/],
  ])('rejects bad setup with a TypeError naming it (%#)', (k, options, message) => {
    expect(() => checkAdapterOptions(k as never, options as never, 'next')).toThrow(TypeError);
    expect(() => checkAdapterOptions(k as never, options as never, 'next')).toThrow(message);
  });

  it.each([undefined, null, 0, '', false, 'route', 'router'])('toError(%j) is an Error carrying the value as its cause, never "go on" or "skip"', (value) => {
    const error = toError(value);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).cause).toBe(value);
  });

  it('toError leaves every other thrown value as it was (its status, realm and message keep their meaning)', () => {
    for (const value of [new TypeError('kept'), { status: 403, message: 'blocked by policy' }, 'blocked', 451, new Response('blocked', { status: 451 })]) expect(toError(value)).toBe(value);
  });

  it('checkOf calls whatever was wrapped, looked up at each call: authenticate, check, or neither', async () => {
    const input = { headers: { 'x-api-key': 'nope' } };
    const calls: string[] = [];
    const own = { ...ks };
    const decide = checkOf(own);
    expect('then' in decide(input)).toBe(false);
    // authenticate replaced after checkOf was taken (a spy, an incident switch): it decides from the next call.
    own.authenticate = async (i) => (calls.push('authenticate'), ks.authenticate(i));
    expect('then' in decide(input)).toBe(true);
    // check replaced (the same-turn path wrapped): that check decides.
    const checked = { ...ks, check: (i: typeof input) => (calls.push('check'), ks.check(i)) };
    expect('then' in checkOf(checked)(input)).toBe(false);
    expect(calls).toEqual(['authenticate', 'check']);
  });

  it("hands back check: ks.check, or ks.authenticate for a Keyscope without check (written by hand, or an older core's)", async () => {
    const input = { headers: { 'x-api-key': 'nope' } };
    const answer = checkAdapterOptions(ks, {}, 'next').check(input);
    expect('then' in answer).toBe(false);
    const calls: string[] = [];
    const handMade = { ...ks, check: undefined, authenticate: async (i: typeof input) => (calls.push('authenticate'), ks.check(i)) };
    const viaAuthenticate = checkAdapterOptions(handMade as never, {}, 'next').check(input);
    expect('then' in viaAuthenticate).toBe(true);
    expect(await viaAuthenticate).toEqual(answer);
    expect(calls).toEqual(['authenticate']);
  });

  it('names the option that should hold ks', () => {
    expect(() => checkAdapterOptions(undefined, {}, 'throw', 'options.keyscope')).toThrow(/options\.keyscope must come from createKeyscope/);
  });
});
