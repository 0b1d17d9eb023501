import type { AuthContext } from '@keyscope/core';
import { keyscope } from '@keyscope/koa';
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
