import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { databaseFile } from '../keyscope.config.js';
import { cliCommand } from './banner.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('cliCommand: the CLI lines the server prints, to run from the repository root', () => {
  it('names examples/keyscope.config.ts, and no KEYSCOPE_DB for the default database of pnpm start', () => {
    expect(cliCommand(databaseFile({}, ROOT), 'keys list --owner demo-user')).toBe(
      'pnpm keyscope keys list --config examples/keyscope.config.ts --owner demo-user',
    );
  });

  it('repeats KEYSCOPE_DB for any other file: relative to the repository root inside it, else absolute, quoted when needed', () => {
    expect(cliCommand(path.join(ROOT, 'data', 'x.db'), 'keys list --owner demo-user')).toBe(
      'KEYSCOPE_DB=data/x.db pnpm keyscope keys list --config examples/keyscope.config.ts --owner demo-user',
    );
    expect(cliCommand('/srv/my keys/x.db', 'keys create --owner demo-user --name k --level user')).toBe(
      "KEYSCOPE_DB='/srv/my keys/x.db' pnpm keyscope keys create --config examples/keyscope.config.ts --owner demo-user --name k --level user",
    );
  });

  it('finds the database as the server does: KEYSCOPE_DB, else .keyscope/example.db, from the current directory', () => {
    expect(databaseFile({}, '/app')).toBe(path.join('/app', '.keyscope', 'example.db'));
    expect(databaseFile({ KEYSCOPE_DB: 'x.db' }, '/app')).toBe(path.join('/app', 'x.db'));
    expect(databaseFile({ KEYSCOPE_DB: '/data/x.db' }, '/app')).toBe('/data/x.db');
  });
});
