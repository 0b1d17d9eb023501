/// <reference lib="dom" />
/**
 * The key portal in a real headless Chromium, against the example server started as `pnpm start`
 * starts it (Fastify, a fresh temp database): sign in as a seeded owner, create keys in the form,
 * use them against the API, revoke one from the table, and check another owner sees none of them.
 * Saves the screenshots shown in the root README under docs/ (PORTAL_SCREENSHOTS names another
 * directory, to look at them without touching docs/).
 *
 * Needs Chromium (`apt-get install -y chromium`; `.ci/run` installs it). Without it every test here
 * fails with a message saying so — it is never skipped. CHROMIUM_PATH points at another binary.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page, type Response as PwResponse } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processScope, ROOT, startServer, type ServerProcess } from '../e2e/harness.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const DOCS = process.env.PORTAL_SCREENSHOTS || path.join(ROOT, 'docs');
const VIEWPORT = { width: 1280, height: 860 };

const { tmp, running } = processScope();
let server: ServerProcess;
let base: string;
let browser: Browser | undefined;
let context: BrowserContext;
let page: Page;

/** What the tests below learn and hand on, in order. */
const state: { projectKey?: string; userKey?: string; quotaKey?: string; demoKeyIds: string[] } = { demoKeyIds: [] };

function api(pathname: string, key: string, project?: string): Promise<Response> {
  return fetch(`${base}${pathname}`, { headers: { 'X-API-Key': key, ...(project ? { 'X-Project-ID': project } : {}) } });
}

/** Sign in through the demo sign-in page, as a person would: /portal sends us there. */
async function signIn(owner: string): Promise<PwResponse | null> {
  await page.goto(`${base}/portal`);
  expect(new URL(page.url()).pathname, 'an anonymous visit to /portal goes to the sign-in page').toBe('/signin');
  await page.getByRole('radio', { name: new RegExp(owner) }).check();
  const [response] = await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
  expect(new URL(page.url()).pathname).toBe('/portal');
  return response;
}

/** Fill and submit the create form; the key read from the page that answers the POST. */
async function createKey(name: string, level: 'User Level' | 'Project Level', project?: string, screenshot?: string): Promise<string> {
  await page.getByLabel('Key Name').fill(name);
  await page.getByRole('radio', { name: new RegExp(level) }).check();
  if (project) await page.getByLabel('Project', { exact: true }).selectOption(project);
  if (screenshot) await page.screenshot({ path: path.join(DOCS, screenshot), fullPage: false });
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/portal/keys'),
    page.getByRole('button', { name: 'Create key' }).click(),
  ]);
  expect(response.status(), `POST /portal/keys: ${await response.text()}`).toBe(200);
  await page.waitForLoadState();
  await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Key created');
  const key = await page.getByLabel('API key', { exact: true }).inputValue();
  expect(key).toMatch(/^ks_[A-Za-z0-9]{20,}$/);
  return key;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: the portal's browser test needs it. Install it with ` +
        '`apt-get install -y chromium` (.ci/run does), or set CHROMIUM_PATH to a Chromium binary.',
    );
  }
  mkdirSync(DOCS, { recursive: true });
  [server, browser] = await Promise.all([
    startServer('fastify', path.join(tmp.dir, 'portal.db')),
    chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] }),
  ]);
  running.push(server);
  base = `http://127.0.0.1:${server.port}`;
  context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, locale: 'en-US', timezoneId: 'UTC' });
  page = await context.newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

describe('the key portal in Chromium (example server, Fastify)', () => {
  it('prints the portal URL, sends an anonymous visitor to the demo sign-in, and signs demo-user in with an HttpOnly session cookie', async () => {
    expect(server.output()).toContain(`Key portal (demo sign-in as demo-user or other-user): ${base}/portal`);
    const response = await signIn('demo-user');
    expect(response?.status()).toBe(200);
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === 'keyscope_session');
    expect(session, JSON.stringify(cookies)).toBeDefined();
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(session!.expires * 1000 - Date.now()).toBeLessThanOrEqual(8 * 3600_000 + 5_000);
    // The cookie is a JWT (HS256), not readable by the page's scripts.
    expect(session!.value.split('.')).toHaveLength(3);
    expect(await page.evaluate(() => document.cookie)).not.toContain('keyscope_session');
  });

  it('serves the portal pages with strict headers: a CSP without unsafe-inline, no framing, no caching', async () => {
    const response = await page.goto(`${base}/portal`);
    const headers = response!.headers();
    const csp = headers['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(headers['cache-control']).toBe('no-store');
    expect(headers['x-content-type-options']).toBe('nosniff');
    // The sign-in page too.
    const signin = await fetch(`${base}/signin`);
    expect(signin.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(signin.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  });

  it('hides the project dropdown for User Level and shows it after choosing Project Level', async () => {
    await page.goto(`${base}/portal`);
    const project = page.getByLabel('Project', { exact: true });
    await expect.poll(() => page.getByRole('radio', { name: /User Level/ }).isChecked()).toBe(true);
    expect(await project.isVisible()).toBe(false);
    await page.getByRole('radio', { name: /Project Level/ }).check();
    expect(await project.isVisible()).toBe(true);
    const options = await project.locator('option').evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value));
    expect(options).toEqual(['', 'proj_alpha', 'proj_beta']);
    await page.getByRole('radio', { name: /User Level/ }).check();
    expect(await project.isVisible()).toBe(false);
  });

  it('creates a Project Level key for proj_alpha, shown once; it works at once for proj_alpha only', async () => {
    state.projectKey = await createKey('ci-alpha', 'Project Level', 'proj_alpha', 'portal-create.png');
    await page.screenshot({ path: path.join(DOCS, 'portal-key-shown.png'), fullPage: false });
    expect(await page.getByText('It will not be shown again').isVisible()).toBe(true);

    expect((await api('/sites', state.projectKey)).status).toBe(200);
    expect((await api('/sites', state.projectKey, 'proj_alpha')).status).toBe(200);
    const other = await api('/sites', state.projectKey, 'proj_beta');
    expect(other.status).toBe(403);
    expect(((await other.json()) as { code: string }).code).toBe('project_forbidden');
  });

  it('never shows the key again: not on a reload of the page that showed it, not on the keys page, not after a reload', async () => {
    // Reloading the answer to the create form sends the form again: no second key, no key shown.
    await page.reload();
    expect(await page.content()).not.toContain(state.projectKey!);
    await page.goto(`${base}/portal`);
    expect(await page.content()).not.toContain(state.projectKey!);
    expect(await page.getByRole('rowheader', { name: 'ci-alpha', exact: true }).count()).toBe(1);
    await page.reload();
    expect(await page.content()).not.toContain(state.projectKey!);
    // The table lists it by name and display start only.
    const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'ci-alpha', exact: true }) });
    expect(await row.locator('code', { hasText: /…$/ }).textContent()).toBe(`${state.projectKey!.slice(0, 7)}…`);
  });

  it('revokes the key from the table (after a confirm); the API refuses it at once with 401', async () => {
    const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'ci-alpha', exact: true }) });
    let asked = '';
    page.once('dialog', (dialog) => {
      asked = dialog.message();
      void dialog.accept();
    });
    await Promise.all([page.waitForURL(/\/portal\?notice=revoked$/), row.getByRole('link', { name: /Revoke/ }).click()]);
    expect(asked).toContain('ci-alpha');
    expect(await row.locator('[data-status-badge]').textContent()).toBe('Revoked');
    expect(await page.getByRole('status').textContent()).toContain('revoked');

    const refused = await api('/sites', state.projectKey!);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { code: string }).code).toBe('invalid_api_key');
  });

  it('creates a User Level key: 403 on /sites without X-Project-ID, 200 with a project of demo-user', async () => {
    await page.goto(`${base}/portal`);
    state.userKey = await createKey('ci-user', 'User Level');
    expect(await page.getByText('User Level: all your projects').isVisible()).toBe(true);

    const without = await api('/sites', state.userKey);
    expect(without.status).toBe(403);
    expect(((await without.json()) as { code: string }).code).toBe('project_required');
    for (const project of ['proj_alpha', 'proj_beta', 'proj_alpha', 'proj_alpha']) expect((await api('/sites', state.userKey, project)).status).toBe(200);
    expect((await api('/monitoring', state.userKey, 'proj_alpha')).status).toBe(200);
    expect((await api('/sites', state.userKey, 'proj_gamma')).status).toBe(403);

    await page.goto(`${base}/portal`);
    expect(await page.content()).not.toContain(state.userKey);
  });

  it('creates a key with a rate limit and a daily quota in the form; the table shows them, and the quota counts down', async () => {
    await page.goto(`${base}/portal`);
    await page.getByLabel('Key Name').fill('ci-quota');
    await page.getByRole('radio', { name: /User Level/ }).check();
    await page.getByLabel('Rate limit', { exact: true }).fill('100');
    await page.getByLabel('Rate limit period').selectOption({ label: 'per minute' });
    await page.getByLabel('Quota', { exact: true }).fill('50');
    await page.getByLabel('Quota period').selectOption({ label: 'per day' });
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/portal/keys'),
      page.getByRole('button', { name: 'Create key' }).click(),
    ]);
    expect(response.status(), `POST /portal/keys: ${await response.text()}`).toBe(200);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Key created');
    state.quotaKey = await page.getByLabel('API key', { exact: true }).inputValue();

    // One request takes one unit of the quota.
    expect((await api('/validate', state.quotaKey)).status).toBe(200);
    await page.goto(`${base}/portal`);
    const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'ci-quota', exact: true }) });
    expect(await row.locator('[data-rate-limit]').textContent()).toBe('100 per minute');
    expect(await row.locator('[data-quota]').textContent()).toBe('49 of 50 left today');
    expect(await page.content()).not.toContain(state.quotaKey);
    await page.screenshot({ path: path.join(DOCS, 'portal-limits.png'), fullPage: true });
  });

  it('shows usage as a sparkline in the table once the counts are written', async () => {
    const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'ci-user', exact: true }) });
    // Usage is written in batches once a second: reload until the row counts today's requests.
    await expect
      .poll(
        async () => {
          await page.goto(`${base}/portal`);
          return row.locator('svg.spark').getAttribute('data-counts');
        },
        { timeout: 10_000, interval: 500 },
      )
      .toMatch(/,[1-9]\d*$/);
    const label = await row.locator('svg.spark').getAttribute('aria-label');
    expect(label).toMatch(/^\d+ requests? in the last 30 days/);
    state.demoKeyIds = await page.locator('tr[data-key-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key-id')!));
    expect(state.demoKeyIds.length).toBeGreaterThanOrEqual(4); // the two seeded keys, ci-alpha, ci-user
    await page.screenshot({ path: path.join(DOCS, 'portal-table.png'), fullPage: true });
  });

  it('signs out, then another owner sees none of demo-user’s keys and gets 404 for their revoke URLs', async () => {
    await page.goto(`${base}/signin`);
    expect(await page.getByText('Signed in as demo-user').isVisible()).toBe(true);
    await Promise.all([page.waitForURL(`${base}/signin`), page.getByRole('button', { name: 'Sign out' }).click()]);
    expect((await context.cookies(base)).some((c) => c.name === 'keyscope_session')).toBe(false);
    const anonymous = await fetch(`${base}/portal`, { redirect: 'manual' });
    expect(anonymous.status).toBe(303);

    await signIn('other-user');
    const html = await page.content();
    for (const name of ['ci-alpha', 'ci-user', 'ci-quota', 'demo user key', 'demo alpha key']) expect(html).not.toContain(name);
    for (const id of state.demoKeyIds) expect(html).not.toContain(id);
    // other-user's own project only.
    await page.getByRole('radio', { name: /Project Level/ }).check();
    const options = await page.getByLabel('Project', { exact: true }).locator('option').evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value));
    expect(options).toEqual(['', 'proj_gamma']);

    for (const id of state.demoKeyIds) {
      const response = await page.goto(`${base}/portal/keys/${encodeURIComponent(id)}/revoke`);
      expect(response!.status(), id).toBe(404);
      const rotate = await page.goto(`${base}/portal/keys/${encodeURIComponent(id)}/rotate`);
      expect(rotate!.status(), id).toBe(404);
      const viaApi = await page.request.get(`${base}/portal/api/keys/${encodeURIComponent(id)}`);
      expect(viaApi.status(), id).toBe(404);
    }
    // demo-user's user key still works: other-user could not touch it.
    expect((await api('/sites', state.userKey!, 'proj_alpha')).status).toBe(200);
  });

  it('works with JavaScript off: the project list is always there, and a Project Level key is made and shown once', async () => {
    const noScript = await browser!.newContext({ javaScriptEnabled: false, viewport: VIEWPORT });
    try {
      const tab = await noScript.newPage();
      await tab.goto(`${base}/portal`);
      await tab.getByRole('radio', { name: /other-user/ }).check();
      await Promise.all([tab.waitForURL(`${base}/portal`), tab.getByRole('button', { name: 'Sign in' }).click()]);
      // Without the script nothing hides the project list.
      expect(await tab.getByLabel('Project', { exact: true }).isVisible()).toBe(true);
      await tab.getByLabel('Key Name').fill('no-script');
      await tab.getByRole('radio', { name: /Project Level/ }).check();
      await tab.getByLabel('Project', { exact: true }).selectOption('proj_gamma');
      await Promise.all([tab.waitForLoadState(), tab.getByRole('button', { name: 'Create key' }).click()]);
      const key = await tab.getByLabel('API key', { exact: true }).inputValue();
      expect((await api('/sites', key)).status).toBe(200);
      expect((await api('/sites', key, 'proj_alpha')).status).toBe(403);
    } finally {
      await noScript.close();
    }
  });
});
