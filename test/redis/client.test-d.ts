// Any ioredis client is accepted as it is, whatever its reply mapping; the factories return core's interfaces.
import { describe, expectTypeOf, it } from 'vitest';
import type { AttemptThrottle, InvalidationBus } from '@keyscope/core';
import { createRedisBus, createRedisThrottle, type RedisClient } from '@keyscope/redis';
import type { Redis } from 'ioredis';

describe('@keyscope/redis types', () => {
  it('takes an ioredis Redis of either reply mapping', () => {
    expectTypeOf<Redis>().toExtend<RedisClient>();
    expectTypeOf<Redis<'resp3'>>().toExtend<RedisClient>();
    expectTypeOf<{ publish(channel: string, message: string): Promise<number> }>().not.toExtend<RedisClient>();
  });

  it('returns a bus with close() and an AttemptThrottle', () => {
    expectTypeOf(createRedisBus).returns.toExtend<InvalidationBus & { close(): Promise<void> }>();
    expectTypeOf(createRedisThrottle).returns.toEqualTypeOf<AttemptThrottle>();
  });
});
