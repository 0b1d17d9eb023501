#!/usr/bin/env node
import { main } from './cli.js';

main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  // Touched only by `keys verify`, so other commands never wait on a terminal.
  get stdin() {
    return process.stdin;
  },
  env: process.env,
}).then((code) => {
  process.exitCode = code;
});
