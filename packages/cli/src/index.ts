export { main, EXIT, USAGE } from './cli.js';
export type { CliIO } from './cli.js';
export { redact } from './format.js';
export type { KeyJson, ListedKeyJson } from './format.js';
