/**
 * One HTTP/1.1 request written byte for byte on a plain socket: header names, values and the
 * request target go out exactly as given (Node's client refuses control characters and some
 * targets; a server must still cope with them). The answer is read to the end of the connection.
 */
import { connect } from 'node:net';

export interface RawAnswer {
  /** The status code; 0 when the server closed or reset the connection without an answer. */
  status: number;
  /** Lowercased names; a repeated header comes back as an array. */
  headers: Record<string, string | string[]>;
  /** The body, de-chunked. */
  text: string;
}

/** Thrown when no answer arrives in time. */
export class NoAnswer extends Error {}

export function rawRequest(port: number, head: Buffer, timeoutMs = 5_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(parseAnswer(Buffer.concat(chunks)));
    };
    const timer = setTimeout(() => finish(new NoAnswer(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A server that refuses a request before reading all of it may reset the connection; what it
    // wrote before that is still the answer.
    socket.on('error', () => finish());
    socket.end(head);
  });
}

function parseAnswer(bytes: Buffer): RawAnswer {
  const split = bytes.indexOf('\r\n\r\n');
  if (split === -1) return { status: 0, headers: {}, text: '' };
  const [statusLine = '', ...lines] = bytes.subarray(0, split).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string | string[]> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prior = headers[name];
    headers[name] = prior === undefined ? value : [...(Array.isArray(prior) ? prior : [prior]), value];
  }
  let body = bytes.subarray(split + 4);
  if (String(headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked') body = dechunk(body);
  return { status, headers, text: body.toString('utf8') };
}

function dechunk(bytes: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = bytes.indexOf('\r\n', at);
    if (eol === -1) break;
    const size = Number.parseInt(bytes.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(bytes.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
