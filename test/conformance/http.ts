import { request } from 'node:http';

export interface RawResponse {
  status: number;
  /** Lowercased names; repeated headers joined by Node as usual. */
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

/**
 * One HTTP request with the path and headers exactly as given: no URL normalisation (Node's
 * fetch would resolve `..` and `%2e`), and a header listed twice is sent twice.
 */
export function send(port: number, method: string, path: string, headers: ReadonlyArray<readonly [string, string]>): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const flat = [['Host', `127.0.0.1:${port}`], ...headers].flat();
    const req = request({ host: '127.0.0.1', port, method, path, headers: flat, setHost: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
