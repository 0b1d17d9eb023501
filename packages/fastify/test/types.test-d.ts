import type { AuthContext } from '@keyscope/core';
import { keyscope } from '@keyscope/fastify';
import Fastify, { type FastifyContextConfig, type FastifyRequest } from 'fastify';
import { expectTypeOf, test } from 'vitest';

test('request.auth is AuthContext | null', () => {
  expectTypeOf<FastifyRequest['auth']>().toEqualTypeOf<AuthContext | null>();
  Fastify().get('/sites', (request) => {
    expectTypeOf(request.auth).toEqualTypeOf<AuthContext | null>();
  });
});

test('route config keyscope is { project } or false: true and misspelt keys are type errors', () => {
  expectTypeOf<FastifyContextConfig['keyscope']>().toEqualTypeOf<{ project: 'optional' | 'required' } | false | undefined>();
  const app = Fastify();
  app.get('/health', { config: { keyscope: false } }, () => 'ok');
  app.get('/validate', { config: { keyscope: { project: 'optional' } } }, () => 'ok');
  // @ts-expect-error: project is 'optional' | 'required'
  app.get('/x', { config: { keyscope: { project: 'maybe' } } }, () => 'ok');
  // @ts-expect-error: true is not a rule (a route behind the plugin is protected without saying so)
  app.get('/y', { config: { keyscope: true } }, () => 'ok');
  // @ts-expect-error: a misspelt rule key
  app.get('/z', { config: { keyscope: { projects: 'optional' } } }, () => 'ok');
  app.route({ method: 'GET', url: '/w', config: { keyscope: { project: 'required' } }, handler: () => 'ok' });
  // @ts-expect-error: a misspelt rule key through app.route too
  app.route({ method: 'GET', url: '/v', config: { keyscope: { Project: 'required' } }, handler: () => 'ok' });
});

test('register checks the plugin options', () => {
  const app = Fastify();
  void app.register(keyscope, { keyscope: null as never, onError: 'throw' });
  // @ts-expect-error: the authenticator is required
  void app.register(keyscope, { onError: 'respond' });
});
