#!/usr/bin/env node
import { main } from './cli.js';

main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  // Touched only by `keys verify` and `keys import`, so other commands never wait on a terminal.
  get stdin() {
    return process.stdin;
  },
  env: process.env,
}).then((code) => {
  process.exitCode = code;
  // The command is done and its store closed. A config module may still hold handles the CLI
  // never saw (its own database pool, a timer): don't hang on them. Unref'd, so a process with
  // nothing left open exits at once, as usual.
  setTimeout(() => process.exit(code), 1_000).unref();
});
