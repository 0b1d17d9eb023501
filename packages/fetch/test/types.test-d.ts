import type { AuthContext } from '@keyscope/core';
import { authenticateRequest } from '@keyscope/fetch';
import { keyscope } from '@keyscope/fetch/hono';
import { Hono } from 'hono';
import { expectTypeOf, test } from 'vitest';

test("c.get('auth') is AuthContext", () => {
  new Hono().get('/validate', keyscope(null as never, { project: 'optional' }), (c) => {
    expectTypeOf(c.get('auth')).toEqualTypeOf<AuthContext>();
    expectTypeOf(c.var.auth).toEqualTypeOf<AuthContext>();
    return c.json(c.get('auth'));
  });
});

test('authenticateRequest resolves to the caller or a Response', async () => {
  const result = await authenticateRequest(null as never, new Request('http://api.test/'));
  if (result.ok) expectTypeOf(result.auth).toEqualTypeOf<AuthContext>();
  else expectTypeOf(result.response).toEqualTypeOf<Response>();
});
