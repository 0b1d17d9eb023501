import type { Keyscope } from '@keyscope/core';
import type { Api } from '../api.js';
import type { WebHandler } from '../web.js';

/** What every framework's server module exports as `start`. */
export type StartServer = (deps: { keyscope: Keyscope; api: Api; web: WebHandler }, listen: { port: number; host: string }) => Promise<RunningServer>;

export interface RunningServer {
  /** The address actually bound (PORT=0 picks a free port). */
  port: number;
  /** Stop accepting connections and resolve once in-flight requests have been answered. */
  close(): Promise<void>;
}
