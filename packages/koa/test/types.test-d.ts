import type { AuthContext } from '@keyscope/core';
import { keyscope, protectedRoutes } from '@keyscope/koa';
import Router from '@koa/router';
import Koa from 'koa';
import { expectTypeOf, test } from 'vitest';

test('ctx.state.auth is AuthContext | undefined', () => {
  new Koa().use(keyscope(null as never)).use((ctx) => {
    expectTypeOf(ctx.state.auth).toEqualTypeOf<AuthContext | undefined>();
  });
  new Router().get('/validate', keyscope(null as never, { project: 'optional' }), (ctx) => {
    expectTypeOf(ctx.state.auth).toEqualTypeOf<AuthContext | undefined>();
  });
});

test('keyscope() options are checked', () => {
  expectTypeOf(keyscope).returns.toEqualTypeOf<Koa.Middleware>();
  // @ts-expect-error: not a Koa delegation mode
  keyscope(null as never, { onError: 'next' });
});

test('protectedRoutes() takes an @koa/router Router and gives a Koa middleware', () => {
  const api = new Router({ prefix: '/api/v1' }).get('/sites', (ctx) => void (ctx.body = ctx.state.auth));
  expectTypeOf(protectedRoutes(null as never, api)).toEqualTypeOf<Koa.Middleware>();
  new Koa().use(protectedRoutes(null as never, api, { project: 'required' }));
  // @ts-expect-error: not a router
  protectedRoutes(null as never, {});
});
