/**
 * A decision that needed the store settles in a callback after the hook returned: whatever fails
 * there (writing the refusal included) must still reach Fastify's error path, once, as the async
 * hook's rejection used to.
 */
import { createKeyscope, generateKey, MemoryStore } from '@keyscope/core';
import { keyscope } from '@keyscope/fastify';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
beforeAll(() => void process.on('unhandledRejection', onUnhandled));
afterAll(() => void process.off('unhandledRejection', onUnhandled));

const within = <T>(promise: Promise<T>, ms: number) => Promise.race([promise, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), ms))]);

describe('@keyscope/fastify: failures after a store read', () => {
  it('an error while writing the refusal reaches the error handler: no hang, no unhandled rejection', async () => {
    const ks = createKeyscope({ store: new MemoryStore(), usage: false });
    const app = Fastify();
    const errors: string[] = [];
    // Something that breaks the refusal's headers (an earlier hook's doing).
    app.addHook('onRequest', (_request, reply, done) => {
      reply.headers = () => {
        throw new Error('header write failed');
      };
      done();
    });
    app.setErrorHandler((error, _request, reply) => {
      errors.push((error as Error).message);
      return reply.code(500).send('error handler');
    });
    await app.register(keyscope, { keyscope: ks });
    app.get('/sites', () => 'reached');
    unhandled.length = 0;
    // A well-formed key the store does not know: the store is read, so the refusal is written later.
    const response = await within(app.inject({ url: '/sites', headers: { 'x-api-key': generateKey('ks'), 'x-project-id': 'proj_a' } }), 1000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(unhandled.map(String)).toEqual([]);
    expect(response).not.toBe('hung');
    expect(response !== 'hung' && response.statusCode).toBe(500);
    expect(errors).toEqual(['header write failed']);
    await app.close();
  });
});
