import type { AuthContext } from '@keyscope/core';
import { keyscope } from '@keyscope/express';
import express, { type Request, type RequestHandler } from 'express';
import { expectTypeOf, test } from 'vitest';

test('req.auth is AuthContext | undefined', () => {
  expectTypeOf<Request['auth']>().toEqualTypeOf<AuthContext | undefined>();
  express().get('/validate', keyscope(null as never, { project: 'optional' }), (req) => {
    expectTypeOf(req.auth).toEqualTypeOf<AuthContext | undefined>();
  });
});

test('keyscope() is an Express middleware with checked options', () => {
  expectTypeOf(keyscope).returns.toEqualTypeOf<RequestHandler>();
  // @ts-expect-error: not an Express delegation mode
  keyscope(null as never, { onError: 'throw' });
  // @ts-expect-error: project is 'optional' | 'required'
  keyscope(null as never, { project: true });
});
