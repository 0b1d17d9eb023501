import { STATUS_CODES } from 'node:http';
import type { Reply } from '../api.js';

/**
 * The 4xx status a framework gave an error it raised about the request itself (a URL it could
 * not percent-decode, a body it could not parse), or `undefined` for anything else. Such an
 * error is the client's, not the server's: it is answered with its own status and not logged.
 */
export function clientErrorStatus(error: unknown): number | undefined {
  const { status, statusCode } = (error ?? {}) as { status?: unknown; statusCode?: unknown };
  const code = typeof status === 'number' ? status : statusCode;
  return typeof code === 'number' && Number.isInteger(code) && code >= 400 && code < 500 ? code : undefined;
}

/** The JSON problem answer for a client error, the same bytes from every framework. */
export function clientError(status: number): Reply {
  const body = JSON.stringify({ type: 'about:blank', title: STATUS_CODES[status] ?? 'Bad Request', status, detail: 'The request could not be processed as sent.' });
  const headers = { 'Content-Type': 'application/problem+json', 'Content-Length': String(Buffer.byteLength(body)), 'Cache-Control': 'no-store' };
  return { status, headers, body };
}
