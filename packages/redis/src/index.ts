export { createRedisBus } from './bus.js';
export type { RedisBus, RedisBusOptions } from './bus.js';
export { createRedisThrottle } from './throttle.js';
export type { RedisThrottleOptions } from './throttle.js';
export { createRedisRateLimiter } from './rate-limit.js';
export type { RedisRateLimiterOptions } from './rate-limit.js';
export type { RedisClient, SubscriberConnection } from './client.js';
