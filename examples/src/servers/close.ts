import type { Server } from 'node:http';

/**
 * Stop accepting, let in-flight requests finish, then resolve. Idle keep-alive connections are
 * closed at once; a request still running after `graceMs` is cut off so shutdown always ends.
 */
export function closeServer(server: Server, graceMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    force.unref();
    server.close((error) => {
      clearTimeout(force);
      if (error) reject(error);
      else resolve();
    });
    server.closeIdleConnections();
  });
}
