/**
 * What the documentation must not say: commands that fail with the pnpm we require, and (in the
 * package READMEs, which npm shows on their own) links into the repository that break there or
 * mentions of test files.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const markdown = execFileSync('git', ['ls-files', '*.md'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
const packageReadmes = markdown.filter((file) => /^packages\/[^/]+\/README\.md$/.test(file));

describe('documentation', () => {
  it.each(markdown)('%s gives no pnpm command with -s (pnpm 12 rejects it: --silent)', (file) => {
    expect(readFileSync(join(root, file), 'utf8')).not.toMatch(/\bpnpm(?:@[\d.]+)?\s+-s\b/);
  });

  it('finds the package READMEs', () => expect(packageReadmes.length).toBeGreaterThanOrEqual(7));

  it.each(packageReadmes)('%s stands on its own: no relative links, no test files, a link list at the end', (file) => {
    const text = readFileSync(join(root, file), 'utf8');
    const prose = text.replace(/```[\s\S]*?```/g, '');
    const relative = [...prose.matchAll(/\]\((?!https?:|mailto:|#)([^)]+)\)/g)].map((m) => m[1]);
    expect(relative, 'relative links break on a package page').toEqual([]);
    expect(text).not.toMatch(/\btest\/[\w./-]+\.(ts|mjs|js)\b|readme-example/);
    expect(text).toMatch(/^## Links\s*$/m);
  });
});
