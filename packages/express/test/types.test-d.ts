import type { AuthContext } from '@keyscope/core';
import { authOf, keyscope } from '@keyscope/express';
import '@keyscope/express/augment';
import express, { type Request, type RequestHandler } from 'express';
import { expectTypeOf, test } from 'vitest';

test('authOf(req) is AuthContext, with no augmentation needed', () => {
  expectTypeOf(authOf).parameter(0).toEqualTypeOf<Request>();
  expectTypeOf(authOf).returns.toEqualTypeOf<AuthContext>();
});

test("with '@keyscope/express/augment' imported, req.auth is AuthContext | undefined", () => {
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
  keyscope(null as never, { property: 'apiKey' });
  keyscope(null as never, { property: false });
  // @ts-expect-error: property is a name or false
  keyscope(null as never, { property: true });
});
