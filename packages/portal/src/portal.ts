import { randomBytes } from 'node:crypto';
import { keyStatus, type KeyInfo, type KeyLimitsInput, type KeyStatus, type OwnerKeyAdmin, type Project, type RateLimit } from '@keyscope/core';
import { CSS, SCRIPT } from './assets.js';
import { crossSiteReason, formToken, sameToken } from './csrf.js';
import { html, type Html } from './html.js';
import { portalOpenApi } from './openapi.js';
import type { GraceOption, PortalHandler, PortalOptions } from './options.js';
import { dailyCounts, sparkline } from './sparkline.js';
import * as view from './views.js';

const DAY_MS = 86_400_000;
const MAX_BODY = 16_384;
// Core's bounds for limits (keys.create and setLimits check them again): checked here so a
// message can name the field in the page's words.
const MAX_RATE = 1_000_000_000;
const MIN_WINDOW_MS = 1_000;
const MAX_WINDOW_MS = 366 * DAY_MS;
const DEFAULT_GRACE: GraceOption[] = [
  { label: 'no grace period', ms: 0 },
  { label: '1 hour', ms: 3_600_000 },
  { label: '24 hours', ms: 86_400_000 },
];

/** The Content-Security-Policy of every response: no inline script or style, no framing. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

type Fields = view.FieldErrors;

/** Limits as a form or the API asks for them: a field left out stays as it is, `null` means none. */
interface AskedLimits {
  rateLimit?: RateLimit | null;
  quota?: { limit: number; refill: 'day' | 'month' | null; remaining?: number } | null;
}

/**
 * A self-service API key page and JSON API for the signed-in owner, as one Fetch handler.
 * Everything goes through `keyscope.keys.forOwner(owner)`: another owner's key is never reachable.
 *
 * @example
 * const portal = createPortal({ keyscope: ks, owner: (req) => sessionUser(req), signInUrl: '/login' })
 * const response = await portal(new Request('https://app.example.com/portal'))
 */
export function createPortal(options: PortalOptions): PortalHandler {
  const cfg = resolveOptions(options);
  const { base, home } = cfg;
  const openApi = JSON.stringify(portalOpenApi(base, cfg.graces, cfg.expiryDays, cfg.editLimits), null, 2);

  const respond = (body: string | null, status: number, type: string | null, extra: Record<string, string> = {}) =>
    new Response(body, { status, headers: { ...SECURITY_HEADERS, ...(type ? { 'Content-Type': type } : {}), ...extra } });
  const page = (ctx: view.ViewContext, status: number, nav: 'keys' | 'help' | null, heading: string, body: Html) =>
    respond(view.layout(ctx, nav, heading, body), status, 'text/html; charset=utf-8');
  const json = (value: unknown, status = 200) => respond(JSON.stringify(value), status, 'application/json; charset=utf-8');
  const problem = (status: number, code: string, detail: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    respond(JSON.stringify({ type: `urn:keyscope:portal:${code}`, title: TITLES[status] ?? 'Error', status, detail, code, ...extra }), status, 'application/problem+json', headers);
  const anonymous: view.ViewContext = { base, home, title: cfg.title, token: null };
  const sent = sentForms(10_000, 60 * 60_000, cfg.now);

  const rotationDue = (key: KeyInfo & { status: KeyStatus }, now: number) =>
    cfg.rotationDueMs !== null && (key.status === 'active' || key.status === 'expiring') && now - key.createdAt.getTime() >= cfg.rotationDueMs;
  const keyJson = (key: KeyInfo, now: number) => {
    const status = keyStatus(key, now);
    return {
      id: key.id,
      name: key.name,
      level: key.level,
      projectId: key.projectId,
      start: key.start,
      createdAt: key.createdAt.toISOString(),
      lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
      expiresAt: key.expiresAt?.toISOString() ?? null,
      revokedAt: key.revokedAt?.toISOString() ?? null,
      status,
      rotationDue: rotationDue({ ...key, status }, now),
      rateLimit: key.rateLimit ? { limit: key.rateLimit.limit, windowMs: key.rateLimit.windowMs } : null,
      quota: key.quota ? { limit: key.quota.limit, remaining: key.quota.remaining, refill: key.quota.refill, resetAt: key.quota.resetAt?.toISOString() ?? null } : null,
    };
  };

  /** Checks a new key's fields the same way for the form and the API; `form` ignores a user key's project. */
  async function validateCreate(mine: OwnerKeyAdmin, input: { name: unknown; level: unknown; projectId: unknown; expiresInDays: unknown; rateLimit?: unknown; quota?: unknown }, form: boolean) {
    const errors: Fields = {};
    const projects = await mine.projects();
    const name = typeof input.name === 'string' ? input.name.trim() : '';
    if (typeof input.name !== 'string' || name === '') errors.name = 'Enter a key name.';
    else if ([...name].length > 64) errors.name = `Key name must be at most 64 characters (it has ${[...name].length}).`;
    else if (/[\x00-\x1f\x7f]/.test(name)) errors.name = 'Key name must not contain control characters.';
    const level = input.level;
    if (level !== 'user' && level !== 'project') errors.level = 'Choose a key level: User Level or Project Level.';
    let projectId: string | null = null;
    const project = input.projectId ?? '';
    if (level === 'project') {
      if (project === '') errors.projectId = 'Choose a project for a Project Level key.';
      else if (typeof project !== 'string' || !projects.some((p) => p.id === project)) errors.projectId = 'Choose one of your projects.';
      else projectId = project;
    } else if (level === 'user' && !form && project !== '') {
      errors.projectId = 'A User Level key reaches all your projects: leave projectId out.';
    }
    const days = input.expiresInDays ?? null;
    if (days !== null && !(typeof days === 'number' && cfg.expiryDays.includes(days))) {
      errors.expiry = `Choose when the key expires: never or in ${cfg.expiryDays.join(', ')} days.`;
    }
    const limits = checkLimits({ rateLimit: input.rateLimit, quota: input.quota }, errors);
    return { errors, projects, value: { name, level: level as 'user' | 'project', projectId, expiresInDays: days as number | null, limits } };
  }

  async function create(mine: OwnerKeyAdmin, value: { name: string; level: 'user' | 'project'; projectId: string | null; expiresInDays: number | null; limits: AskedLimits }, now: number) {
    try {
      return await mine.create({
        name: value.name,
        level: value.level,
        projectId: value.projectId,
        expiresAt: value.expiresInDays === null ? null : new Date(now + value.expiresInDays * DAY_MS),
        ...value.limits,
      });
    } catch (error) {
      if (codeOf(error) === 'invalid_argument') return { error: (error as Error).message };
      throw error;
    }
  }

  async function rows(mine: OwnerKeyAdmin, projects: Project[], now: number): Promise<view.KeyRow[]> {
    const keys = (await mine.list()).reverse();
    const names = new Map(projects.map((p) => [p.id, p.name]));
    return Promise.all(
      keys.map(async (key) => {
        const usage = await mine.usage(key.id).catch(() => null);
        return { key, projectName: key.projectId ? (names.get(key.projectId) ?? null) : null, rotationDue: rotationDue(key, now), spark: sparkline(dailyCounts(usage?.days ?? [], now)) };
      }),
    );
  }

  async function keysPage(ctx: view.ViewContext, mine: OwnerKeyAdmin, values: view.CreateValues, errors: Fields, status: number, notice: string | null) {
    const now = cfg.now();
    const projects = await mine.projects();
    const body = html`<p class="lead">Keys let your programs call the API on your behalf. Anyone holding a key can act as you: keep keys private. <a href="${base}/help">How to use a key</a></p>
${notice ? html`<p class="notice" role="status">${notice}</p>` : ''}
${html`${view.createForm(ctx, projects, cfg.expiryDays, values, errors)}`}
${view.keyTable(ctx, await rows(mine, projects, now))}`;
    return page(ctx, status, 'keys', cfg.title, body);
  }

  async function pages(request: Request, rest: string, method: string, ownerId: string, mine: OwnerKeyAdmin, url: URL): Promise<Response> {
    const token = formToken(cfg.secret, ownerId);
    const ctx: view.ViewContext = { base, home, title: cfg.title, token, once: randomBytes(12).toString('base64url'), editLimits: cfg.editLimits };
    const noLimits: view.LimitValues = { rateLimit: '', rateWindow: '60000', quota: '', quotaRefill: 'day', remaining: '' };
    const empty: view.CreateValues = { name: '', level: 'user', projectId: '', expiry: 'never', ...noLimits };
    const notFound = () => page(ctx, 404, null, 'Not found', view.message(ctx, 'There is no such page or key.'));
    const notAllowed = (allow: string) => respond('Method not allowed', 405, 'text/plain; charset=utf-8', { Allow: allow });

    let form: URLSearchParams | null = null;
    if (method === 'POST') {
      form = await readForm(request);
      if (form === null) return page(ctx, 415, null, 'Unsupported form', view.message(ctx, 'Send the form as application/x-www-form-urlencoded (at most 16 KB).'));
      if (!sameToken(form.get('_token'), token)) {
        return page(ctx, 403, null, 'Form expired', view.message(ctx, 'This form has expired or did not come from this page. Go back, reload the page and try again.'));
      }
      // A reload of the page that answered this form sends it again: make no second key.
      if (sent.seen(form.get('_once'))) {
        return page(ctx, 409, null, 'Already done', view.message(ctx, 'This form was already sent, so nothing more was done. A key it made is not shown again: find it in your keys table.'));
      }
    }

    if (rest === '/') {
      if (method !== 'GET') return notAllowed('GET, HEAD');
      const notice = NOTICES.get(url.searchParams.get('notice') ?? '') ?? null;
      return keysPage(ctx, mine, empty, {}, 200, notice);
    }
    if (rest === '/help') {
      if (method !== 'GET') return notAllowed('GET, HEAD');
      return page(ctx, 200, 'help', 'Using your API key', view.help(ctx, cfg.apiUrl, await mine.projects()));
    }
    if (rest === '/keys') {
      if (method !== 'POST') return notAllowed('POST');
      const values: view.CreateValues = { name: form!.get('name') ?? '', level: form!.get('level') ?? '', projectId: form!.get('projectId') ?? '', expiry: form!.get('expiry') ?? 'never', ...limitValues(form!, noLimits), remaining: '' };
      const expiry = values.expiry === 'never' || values.expiry === '' ? null : /^\d{1,5}$/.test(values.expiry) ? Number(values.expiry) : NaN;
      // An empty limit field is left out (not null), so a level's default quota still applies;
      // without editLimits the fields are not read at all.
      const asked: { rateLimit?: unknown; quota?: unknown } = cfg.editLimits ? formLimits(values, RATE_WINDOW_MS) : {};
      const { errors, projects, value } = await validateCreate(
        mine,
        { name: form!.get('name'), level: form!.get('level'), projectId: values.projectId, expiresInDays: expiry, rateLimit: asked.rateLimit ?? undefined, quota: asked.quota ?? undefined },
        true,
      );
      if (Object.keys(errors).length > 0) return keysPage(ctx, mine, values, errors, 422, null);
      const now = cfg.now();
      const made = await create(mine, value, now);
      if ('error' in made) return keysPage(ctx, mine, values, { form: made.error }, 422, null);
      const projectName = projects.find((p) => p.id === made.record.projectId)?.name ?? null;
      sent.remember(form!.get('_once'));
      // 200 with the page itself, never a redirect: the key is in this response only.
      return page(ctx, 200, 'keys', 'Key created', view.shownOnce(ctx, made.key, made.record, projectName, null));
    }
    const match = /^\/keys\/([^/]+)\/(revoke|rotate|limits)$/.exec(rest);
    if (!match || (match[2] === 'limits' && !cfg.editLimits)) return notFound();
    const id = decodeSegment(match[1]!);
    if (id === null) return notFound();
    const key = await mine.get(id);
    if (!key) return notFound();
    if (method !== 'GET' && method !== 'POST') return notAllowed('GET, HEAD, POST');

    if (match[2] === 'limits') {
      const current: view.LimitValues = {
        rateLimit: key.rateLimit ? String(key.rateLimit.limit) : '',
        rateWindow: String(key.rateLimit?.windowMs ?? 60_000),
        quota: key.quota ? String(key.quota.limit) : '',
        quotaRefill: key.quota ? (key.quota.refill ?? 'never') : 'day',
        remaining: '',
      };
      if (method === 'GET') return page(ctx, 200, null, 'Key limits', view.limitsForm(ctx, key, current, {}));
      if (key.kind === 'signed') return page(ctx, 409, null, 'Key limits', view.limitsForm(ctx, key, current, {}));
      const values = limitValues(form!, current);
      // The key's own window is offered too when it is none of the usual ones (set with the CLI).
      const asked = formLimits(values, key.rateLimit ? [...RATE_WINDOW_MS, key.rateLimit.windowMs] : RATE_WINDOW_MS);
      const errors: Fields = {};
      const limits = checkLimits(asked, errors);
      if (values.quota === '' && values.remaining !== '') errors.remaining = 'Set a quota to say how much of it is left.';
      if (Object.keys(errors).length > 0) return page(ctx, 422, null, 'Key limits', view.limitsForm(ctx, key, values, errors));
      const changes = changedLimits(key, limits);
      if (Object.keys(changes).length > 0) {
        const saved = await setLimits(mine, id, changes);
        if (saved !== null) return page(ctx, 422, null, 'Key limits', view.limitsForm(ctx, key, values, { form: saved }));
      }
      return respond(null, 303, null, { Location: `${home}?notice=limits` });
    }

    if (match[2] === 'revoke') {
      if (method === 'GET') return page(ctx, 200, null, 'Revoke key', view.revokeConfirm(ctx, key));
      await mine.revoke(id);
      return respond(null, 303, null, { Location: `${home}?notice=revoked` });
    }
    if (method === 'GET') return page(ctx, 200, null, 'Rotate key', view.rotateForm(ctx, key, cfg.graces, '', {}));
    const chosen = form!.get('grace') ?? '';
    const grace = cfg.graces.find((g) => String(g.ms) === chosen);
    if (!grace) return page(ctx, 422, null, 'Rotate key', view.rotateForm(ctx, key, cfg.graces, chosen, { grace: 'Choose how long the old key keeps working.' }));
    const rotated = await rotate(mine, id, grace.ms);
    if ('error' in rotated) return page(ctx, 422, null, 'Rotate key', view.rotateForm(ctx, key, cfg.graces, chosen, { form: rotated.error }));
    sent.remember(form!.get('_once'));
    const old = await mine.get(id);
    const projectName = key.projectId ? ((await mine.projects()).find((p) => p.id === key.projectId)?.name ?? null) : null;
    const previous = html`<p class="warning">${
      grace.ms === 0 || !old?.expiresAt
        ? html`The previous key (<code>${key.start}…</code>) is revoked and stops working now.`
        : html`The previous key (<code>${key.start}…</code>) keeps working until ${old.expiresAt.toISOString().replace('T', ' ').slice(0, 16)} UTC (${grace.label}), then it expires. Deploy the new key before then.`
    }</p>`;
    return page(ctx, 200, 'keys', 'Key rotated', view.shownOnce(ctx, rotated.key, rotated.record, projectName, previous));
  }

  /** `null` when saved, else core's message for limits it refuses (a signed key). */
  async function setLimits(mine: OwnerKeyAdmin, id: string, limits: KeyLimitsInput): Promise<string | null> {
    try {
      await mine.setLimits(id, limits);
      return null;
    } catch (error) {
      if (codeOf(error) === 'invalid_argument') return (error as Error).message;
      throw error;
    }
  }

  async function rotate(mine: OwnerKeyAdmin, id: string, gracePeriodMs: number) {
    try {
      return await mine.rotate(id, { gracePeriodMs });
    } catch (error) {
      if (codeOf(error) === 'invalid_argument') return { error: (error as Error).message };
      throw error;
    }
  }

  async function api(request: Request, rest: string, method: string, mine: OwnerKeyAdmin): Promise<Response> {
    const notFound = () => problem(404, 'not_found', 'No such key.');
    const notAllowed = (allow: string) => problem(405, 'method_not_allowed', `Use ${allow}.`, {}, { Allow: allow });
    let body: Record<string, unknown> = {};
    if (method === 'POST') {
      const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json') return problem(415, 'unsupported_media_type', 'Send Content-Type: application/json.');
      const text = await readBody(request);
      if (text === null) return problem(413, 'payload_too_large', `The body is larger than ${MAX_BODY} bytes.`);
      if (text.trim() !== '') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          return problem(400, 'invalid_json', 'The body is not valid JSON.');
        }
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return problem(400, 'invalid_json', 'The body must be a JSON object.');
        body = parsed as Record<string, unknown>;
      }
    }
    const now = cfg.now();
    if (rest === '/api/projects') {
      if (method !== 'GET') return notAllowed('GET');
      return json({ projects: (await mine.projects()).map((p) => ({ id: p.id, name: p.name })) });
    }
    if (rest === '/api/keys') {
      if (method === 'GET') return json({ keys: (await mine.list()).map((k) => keyJson(k, now)) });
      if (method !== 'POST') return notAllowed('GET, POST');
      const limits = cfg.editLimits ? { rateLimit: body.rateLimit, quota: body.quota } : {};
      const { errors, value } = await validateCreate(mine, { name: body.name, level: body.level, projectId: body.projectId, expiresInDays: body.expiresInDays, ...limits }, false);
      if (!cfg.editLimits) {
        if (body.rateLimit !== undefined) errors.rateLimit = LIMITS_NOT_HERE;
        if (body.quota !== undefined) errors.quota = LIMITS_NOT_HERE;
      }
      if (Object.keys(errors).length > 0) return problem(422, 'invalid_input', Object.values(errors).join(' '), { errors: apiFields(errors) });
      const made = await create(mine, value, now);
      if ('error' in made) return problem(422, 'invalid_input', made.error, { errors: {} });
      return json({ key: made.key, record: keyJson(made.record, now) }, 201);
    }
    const match = /^\/api\/keys\/([^/]+)(?:\/(revoke|rotate|usage|limits))?$/.exec(rest);
    if (!match || (match[2] === 'limits' && !cfg.editLimits)) return problem(404, 'not_found', 'No such route.');
    const id = decodeSegment(match[1]!);
    const key = id === null ? null : await mine.get(id);
    if (!key) return notFound();
    const action = match[2];
    if (action === undefined || action === 'usage') {
      if (method !== 'GET') return notAllowed('GET');
      if (action === undefined) return json(keyJson(key, now));
      const usage = await mine.usage(key.id);
      return json({ keyId: usage.keyId, lastUsedAt: usage.lastUsedAt?.toISOString() ?? null, days: usage.days, last30Days: dailyCounts(usage.days, now) });
    }
    if (method !== 'POST') return notAllowed('POST');
    if (action === 'revoke') return json(keyJson(await mine.revoke(key.id), cfg.now()));
    if (action === 'limits') {
      const errors: Fields = {};
      const limits = checkLimits({ rateLimit: body.rateLimit, quota: body.quota }, errors);
      if (Object.keys(errors).length > 0) return problem(422, 'invalid_input', Object.values(errors).join(' '), { errors: apiFields(errors) });
      const refused = await setLimits(mine, key.id, limits);
      if (refused !== null) return problem(409, 'not_limitable', refused);
      return json(keyJson((await mine.get(key.id)) ?? key, cfg.now()));
    }
    const gracePeriodMs = body.gracePeriodMs ?? 0;
    if (!cfg.graces.some((g) => g.ms === gracePeriodMs)) {
      return problem(422, 'invalid_input', `gracePeriodMs must be one of ${cfg.graces.map((g) => g.ms).join(', ')}.`, { errors: { gracePeriodMs: 'Choose one of the offered grace periods.' } });
    }
    const rotated = await rotate(mine, key.id, gracePeriodMs as number);
    if ('error' in rotated) return problem(409, 'not_rotatable', rotated.error);
    const old = await mine.get(key.id);
    return json({ key: rotated.key, record: keyJson(rotated.record, cfg.now()), previous: old ? keyJson(old, cfg.now()) : null });
  }

  return async function portal(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname;
    if (path !== home && !path.startsWith(`${base}/`)) return respond('Not found', 404, 'text/plain; charset=utf-8');
    const rest = path === home ? '/' : path.slice(base.length);
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    const isApi = rest === '/api' || rest.startsWith('/api/');

    if (rest === '/assets/portal.css' || rest === '/assets/portal.js' || rest === '/api/openapi.json') {
      if (method !== 'GET') return respond('Method not allowed', 405, 'text/plain; charset=utf-8', { Allow: 'GET, HEAD' });
      if (rest === '/assets/portal.css') return respond(CSS, 200, 'text/css; charset=utf-8');
      if (rest === '/assets/portal.js') return respond(SCRIPT, 200, 'text/javascript; charset=utf-8');
      return respond(openApi, 200, 'application/json; charset=utf-8');
    }
    if (method !== 'GET' && method !== 'POST') {
      return isApi ? problem(405, 'method_not_allowed', 'Use GET or POST.', {}, { Allow: 'GET, HEAD, POST' }) : respond('Method not allowed', 405, 'text/plain; charset=utf-8', { Allow: 'GET, HEAD, POST' });
    }
    if (method === 'POST') {
      const reason = crossSiteReason(request, cfg.origins);
      if (reason !== null) {
        return isApi
          ? problem(403, 'cross_site', `Refused: ${reason}.`)
          : page(anonymous, 403, null, 'Request refused', view.message(anonymous, `Refused: ${reason}. Keys can only be changed from this site's own pages.`));
      }
    }
    const ownerId = await cfg.owner(request);
    if (ownerId === null || ownerId === undefined || ownerId === '') {
      if (isApi) return problem(401, 'not_signed_in', 'Sign in to manage your API keys.');
      if (cfg.signInUrl !== null && method === 'GET') return respond(null, 303, null, { Location: cfg.signInUrl });
      return page(anonymous, 401, null, 'Sign in required', cfg.signInUrl === null ? view.message(anonymous, 'Sign in to manage your API keys.') : html`<section class="card"><p><a class="btn primary" href="${cfg.signInUrl}">Sign in</a> to manage your API keys.</p></section>`);
    }
    const mine = cfg.keys.forOwner(ownerId);
    return isApi ? api(request, rest, method, mine) : pages(request, rest, method, ownerId, mine, url);
  };
}

const NOTICES = new Map([
  ['revoked', 'The key was revoked.'],
  ['limits', "The key's limits were saved."],
]);
const LIMITS_NOT_HERE = "Your keys' limits are set for you: leave this out.";
const RATE_WINDOW_MS = view.RATE_WINDOWS.map((w) => w.ms);

/** The limit fields of a form, each `fallback`'s where the form has none. */
function limitValues(form: URLSearchParams, fallback: view.LimitValues): view.LimitValues {
  const field = (name: keyof view.LimitValues) => (form.get(name) ?? fallback[name]).trim();
  return { rateLimit: field('rateLimit'), rateWindow: field('rateWindow'), quota: field('quota'), quotaRefill: field('quotaRefill'), remaining: field('remaining') };
}

/**
 * A limits form as the API would send it: `null` for an empty field, `NaN` where the text is not
 * a plain whole number or the period is not one of `windows`, for {@link checkLimits} to name.
 */
function formLimits(values: view.LimitValues, windows: readonly number[]): { rateLimit: unknown; quota: unknown } {
  const number = (text: string) => (/^\d{1,16}$/.test(text) ? Number(text) : NaN);
  const windowMs = Number(values.rateWindow);
  return {
    rateLimit: values.rateLimit === '' ? null : { limit: number(values.rateLimit), windowMs: windows.includes(windowMs) ? windowMs : NaN },
    quota:
      values.quota === ''
        ? null
        : { limit: number(values.quota), refill: values.quotaRefill === 'never' ? null : values.quotaRefill, ...(values.remaining === '' ? {} : { remaining: number(values.remaining) }) },
  };
}

/**
 * Limits from a form or a JSON body, checked the same way for both, with messages per field in
 * `errors`: `undefined` where a field is left out, `null` where it asks for none.
 */
function checkLimits(input: { rateLimit?: unknown; quota?: unknown }, errors: Fields): AskedLimits {
  const out: AskedLimits = {};
  const whole = (value: unknown, min: number, max: number): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
  const { rateLimit, quota } = input;
  if (rateLimit === null) out.rateLimit = null;
  else if (rateLimit !== undefined) {
    const rate = (typeof rateLimit === 'object' ? rateLimit : {}) as { limit?: unknown; windowMs?: unknown };
    if (!whole(rate.limit, 1, MAX_RATE)) errors.rateLimit = `Enter the rate limit as a whole number of requests from 1 to ${MAX_RATE.toLocaleString('en-US')}, or leave it empty.`;
    else if (!whole(rate.windowMs, MIN_WINDOW_MS, MAX_WINDOW_MS)) errors.rateLimit = "Choose the rate limit's period.";
    else out.rateLimit = { limit: rate.limit, windowMs: rate.windowMs };
  }
  if (quota === null) out.quota = null;
  else if (quota !== undefined) {
    const asked = (typeof quota === 'object' ? quota : {}) as { limit?: unknown; refill?: unknown; remaining?: unknown };
    const refill = asked.refill ?? null;
    if (!whole(asked.limit, 1, Number.MAX_SAFE_INTEGER)) errors.quota = 'Enter the quota as a whole number of requests (1 or more), or leave it empty.';
    else if (refill !== null && refill !== 'day' && refill !== 'month') errors.quota = "Choose the quota's period: per day, per month or in total.";
    else if (asked.remaining !== undefined && !whole(asked.remaining, 0, asked.limit)) {
      errors.remaining = `Enter what is left as a whole number from 0 to the quota (${asked.limit}), or leave it empty.`;
    } else {
      out.quota = { limit: asked.limit, refill, ...(asked.remaining === undefined ? {} : { remaining: asked.remaining as number }) };
    }
  }
  return out;
}

/**
 * What a Limits form changes: only fields that differ from the key's. The form shows the quota
 * as it was when the page was drawn; sending it back unchanged would hand back the units used
 * since, so an unchanged quota without a new "left" count is left out.
 */
function changedLimits(key: KeyInfo, asked: AskedLimits): KeyLimitsInput {
  const out: KeyLimitsInput = {};
  const rate = key.rateLimit ?? null;
  const wanted = asked.rateLimit ?? null;
  if (rate?.limit !== wanted?.limit || rate?.windowMs !== wanted?.windowMs) out.rateLimit = wanted;
  const quota = key.quota ?? null;
  const next = asked.quota ?? null;
  if (next === null) {
    if (quota !== null) out.quota = null;
  } else if (quota === null || next.remaining !== undefined || quota.limit !== next.limit || quota.refill !== next.refill) {
    out.quota = next;
  }
  return out;
}

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Not signed in',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  413: 'Payload too large',
  415: 'Unsupported media type',
  422: 'Invalid input',
};

function apiFields(errors: Fields): Record<string, string> {
  const out: Record<string, string> = {};
  const names: Partial<Record<string, string>> = { expiry: 'expiresInDays', remaining: 'quota.remaining' };
  for (const [field, message] of Object.entries(errors)) out[names[field] ?? field] = message!;
  return out;
}

function codeOf(error: unknown): unknown {
  return error !== null && typeof error === 'object' ? (error as { code?: unknown }).code : undefined;
}

function decodeSegment(segment: string): string | null {
  try {
    const id = decodeURIComponent(segment);
    return id === '' ? null : id;
  } catch {
    return null;
  }
}

/** The body as text, or `null` past `MAX_BODY` bytes (read no further). */
async function readBody(request: Request): Promise<string | null> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY) return null;
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readForm(request: Request): Promise<URLSearchParams | null> {
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return null;
  const text = await readBody(request);
  return text === null ? null : new URLSearchParams(text);
}

function resolveOptions(options: PortalOptions) {
  if (options === null || typeof options !== 'object') throw new TypeError('createPortal(options): options must be an object');
  const keys = options.keyscope?.keys;
  if (!keys || typeof keys.forOwner !== 'function') throw new TypeError('options.keyscope must be a keyscope instance (createKeyscope): keyscope.keys.forOwner is missing');
  if (typeof options.owner !== 'function') throw new TypeError('options.owner must be a function (request) => owner id | null');
  const basePath = options.basePath ?? '/portal';
  if (typeof basePath !== 'string' || !/^(\/[A-Za-z0-9._~-]+)*\/?$/.test(basePath) || basePath === '') {
    throw new RangeError(`options.basePath must be a path like '/portal' (letters, digits, '.', '_', '~', '-'), got ${JSON.stringify(basePath)}`);
  }
  const base = basePath.replace(/\/$/, '');
  const signInUrl = options.signInUrl ?? null;
  if (signInUrl !== null && (typeof signInUrl !== 'string' || signInUrl === '')) throw new TypeError('options.signInUrl must be a non-empty string (a URL or a path)');
  const due = options.rotationDueDays ?? 90;
  if (due !== false && !(typeof due === 'number' && Number.isFinite(due) && due > 0)) throw new RangeError(`options.rotationDueDays must be a number of days > 0 or false, got ${String(due)}`);
  const graces = options.graceOptions ?? DEFAULT_GRACE;
  if (!Array.isArray(graces) || graces.length === 0) throw new TypeError('options.graceOptions must be a non-empty array of { label, ms }');
  for (const g of graces) {
    if (!g || typeof g.label !== 'string' || g.label === '' || !Number.isSafeInteger(g.ms) || g.ms < 0) {
      throw new RangeError(`options.graceOptions entries must be { label: string, ms: whole milliseconds >= 0 }, got ${JSON.stringify(g)}`);
    }
  }
  if (new Set(graces.map((g) => g.ms)).size !== graces.length) throw new RangeError('options.graceOptions must not offer the same ms twice');
  const expiryDays = options.expiryDays ?? [30, 90, 365];
  if (!Array.isArray(expiryDays) || expiryDays.some((d) => !Number.isSafeInteger(d) || d <= 0 || d > 36_500)) {
    throw new RangeError(`options.expiryDays must be an array of whole days between 1 and 36500, got ${JSON.stringify(expiryDays)}`);
  }
  const secret = options.secret ?? randomBytes(32).toString('base64url');
  if (typeof secret !== 'string' || secret.length < 32) throw new RangeError('options.secret must be a string of at least 32 characters');
  let origins: string[] | null = null;
  if (options.origin !== undefined) {
    origins = (Array.isArray(options.origin) ? options.origin : [options.origin]).map((o) => {
      let parsed: URL | null = null;
      try {
        parsed = new URL(o);
      } catch {
        // reported below
      }
      if (!parsed || parsed.origin !== o.replace(/\/$/, '')) throw new RangeError(`options.origin must be origins like 'https://app.example.com', got ${JSON.stringify(o)}`);
      return parsed.origin;
    });
  }
  if (options.editLimits !== undefined && typeof options.editLimits !== 'boolean') throw new TypeError('options.editLimits must be a boolean');
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') throw new TypeError('options.now must be a function returning epoch milliseconds');
  return {
    keys,
    owner: options.owner,
    base,
    home: base === '' ? '/' : base,
    signInUrl,
    rotationDueMs: due === false ? null : due * DAY_MS,
    graces: graces.map((g) => ({ label: g.label, ms: g.ms })),
    expiryDays: [...expiryDays],
    secret,
    origins,
    editLimits: options.editLimits ?? false,
    title: options.title ?? 'API Keys',
    apiUrl: (options.apiUrl ?? 'https://api.example.com').replace(/\/$/, ''),
    now,
  };
}

/**
 * The `_once` values of forms that made a key, for an hour and at most `max` of them (oldest
 * forgotten first): per portal instance, so a reload landing on another instance is not caught.
 */
function sentForms(max: number, ttlMs: number, now: () => number) {
  const seen = new Map<string, number>();
  return {
    seen(once: string | null): boolean {
      if (!once) return false;
      const at = seen.get(once);
      return at !== undefined && now() - at < ttlMs;
    },
    remember(once: string | null): void {
      if (!once || once.length > 64) return;
      seen.set(once, now());
      if (seen.size > max) seen.delete(seen.keys().next().value!);
    },
  };
}
