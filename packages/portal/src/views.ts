import type { KeyInfo, KeyStatus, Project } from '@keyscope/core';
import { date, html, type Html } from './html.js';

/** What every page needs to know about the portal. */
export interface ViewContext {
  base: string;
  home: string;
  title: string;
  token: string | null;
  /** A fresh value per rendered form: a form sent twice (a reload of its answer) is noticed. */
  once?: string;
  /** Whether owners may set their keys' limits (`editLimits`): the create form's fields and each key's Limits page. */
  editLimits?: boolean;
}

export type FieldErrors = Partial<Record<'name' | 'level' | 'projectId' | 'expiry' | 'grace' | 'rateLimit' | 'quota' | 'remaining' | 'form', string>>;

/** A limits form as sent (or to show): strings, `''` for an empty field. */
export interface LimitValues {
  /** Requests per window; `''`: no rate limit of its own. */
  rateLimit: string;
  /** The window in milliseconds, one of the offered ones. */
  rateWindow: string;
  /** Requests in all, or per day or month; `''`: no quota. */
  quota: string;
  /** `day`, `month` or `never`. */
  quotaRefill: string;
  /** What is left of the quota, on the Limits page only; `''`: as it is (or full, for a changed quota). */
  remaining: string;
}

export interface CreateValues extends LimitValues {
  name: string;
  level: string;
  projectId: string;
  expiry: string;
}

/** The rate-limit periods the forms offer. */
export const RATE_WINDOWS: readonly { ms: number; label: string }[] = [
  { ms: 1_000, label: 'per second' },
  { ms: 60_000, label: 'per minute' },
  { ms: 3_600_000, label: 'per hour' },
  { ms: 86_400_000, label: 'per day' },
];

/** The quota periods the forms offer (`never`: in total). */
export const QUOTA_REFILLS: readonly { value: 'day' | 'month' | 'never'; label: string }[] = [
  { value: 'day', label: 'per day' },
  { value: 'month', label: 'per month' },
  { value: 'never', label: 'in total' },
];

const WINDOW_UNITS = [
  [86_400_000, 'day'],
  [3_600_000, 'hour'],
  [60_000, 'minute'],
  [1_000, 'second'],
] as const;

/** `per minute`, `per 90 seconds`: a window set elsewhere (the CLI, code) may be any length. */
export function windowLabel(ms: number): string {
  for (const [unit, name] of WINDOW_UNITS) {
    if (ms % unit === 0) return ms === unit ? `per ${name}` : `per ${ms / unit} ${name}s`;
  }
  return `per ${ms} ms`;
}

export interface KeyRow {
  key: KeyInfo & { status: KeyStatus };
  projectName: string | null;
  rotationDue: boolean;
  spark: Html;
}

const STATUS_LABEL: Record<KeyStatus, string> = { active: 'Active', expiring: 'Expiring soon', expired: 'Expired', revoked: 'Revoked' };

export function layout(ctx: ViewContext, page: 'keys' | 'help' | null, heading: string, body: Html): string {
  const current = (name: string) => (page === name ? html` aria-current="page"` : '');
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
${ctx.token ? html`<meta name="portal-token" content="${ctx.token}">` : ''}
<title>${heading === ctx.title ? ctx.title : `${heading} · ${ctx.title}`}</title>
<link rel="stylesheet" href="${ctx.base}/assets/portal.css">
<script src="${ctx.base}/assets/portal.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><div class="wrap"><span class="brand">${ctx.title}</span>
<nav aria-label="Portal"><a href="${ctx.home}"${current('keys')}>Keys</a><a href="${ctx.base}/help"${current('help')}>Help</a></nav></div></header>
<main id="main" class="wrap">
<h1>${heading}</h1>
${body}
</main>
</body>
</html>
`.value;
}

function tokenField(ctx: ViewContext): Html {
  return html`<input type="hidden" name="_token" value="${ctx.token ?? ''}">${ctx.once ? html`<input type="hidden" name="_once" value="${ctx.once}">` : ''}`;
}

function fieldError(id: string, message: string | undefined): Html {
  return message ? html`<p class="error" id="${id}-error">${message}</p>` : html``;
}

function invalidAttrs(id: string, message: string | undefined): Html {
  return message ? html` aria-invalid="true" aria-describedby="${id}-error"` : html``;
}

/**
 * The rate limit and quota fields, shared by the create form and the Limits page: a number and
 * its period each. `extraWindow` offers a key's current window when it is none of the usual ones.
 */
function limitFields(values: LimitValues, errors: FieldErrors, extraWindow: number | null): Html {
  const windows = extraWindow === null || RATE_WINDOWS.some((w) => w.ms === extraWindow) ? RATE_WINDOWS : [...RATE_WINDOWS, { ms: extraWindow, label: windowLabel(extraWindow) }];
  return html`<div class="field${errors.rateLimit ? ' invalid' : ''}">
<label for="key-rate">Rate limit</label>
<div class="inline"><input type="number" id="key-rate" name="rateLimit" min="1" max="1000000000" step="1" inputmode="numeric" placeholder="No limit" value="${values.rateLimit}"${invalidAttrs('key-rate', errors.rateLimit)}>
<select id="key-rate-window" name="rateWindow" aria-label="Rate limit period">
${windows.map((w) => html`<option value="${w.ms}"${values.rateWindow === String(w.ms) ? html` selected` : ''}>${w.label}</option>`)}
</select></div>
${fieldError('key-rate', errors.rateLimit)}<p class="hint">Requests the key may make per period. Leave it empty for no limit of its own.</p>
</div>
<div class="field${errors.quota ? ' invalid' : ''}">
<label for="key-quota">Quota</label>
<div class="inline"><input type="number" id="key-quota" name="quota" min="1" step="1" inputmode="numeric" placeholder="No quota" value="${values.quota}"${invalidAttrs('key-quota', errors.quota)}>
<select id="key-quota-refill" name="quotaRefill" aria-label="Quota period">
${QUOTA_REFILLS.map((r) => html`<option value="${r.value}"${values.quotaRefill === r.value ? html` selected` : ''}>${r.label}</option>`)}
</select></div>
${fieldError('key-quota', errors.quota)}<p class="hint">Requests the key may make per UTC day (from 00:00 UTC), per month (from the 1st) or in total. Leave it empty for no quota.</p>
</div>`;
}

export function createForm(ctx: ViewContext, projects: Project[], expiryDays: number[], values: CreateValues, errors: FieldErrors): Html {
  const level = values.level === 'project' ? 'project' : 'user';
  const radio = (value: string, title: string, text: string) =>
    html`<label class="choice"><input type="radio" name="level" value="${value}"${level === value ? html` checked` : ''}> <span><strong>${title}</strong><small>${text}</small></span></label>`;
  return html`<section class="card" aria-labelledby="create-heading">
<h2 id="create-heading">Create a new key</h2>
${errors.form ? html`<p class="alert" role="alert">${errors.form}</p>` : ''}
<form method="post" action="${ctx.base}/keys" data-create>
${tokenField(ctx)}
<div class="field${errors.name ? ' invalid' : ''}">
<label for="key-name">Key Name</label>
<input type="text" id="key-name" name="name" required maxlength="64" placeholder="example-api-key" autocomplete="off" value="${values.name}"${invalidAttrs('key-name', errors.name)}>
${fieldError('key-name', errors.name)}<p class="hint">1–64 characters, to tell your keys apart.</p>
</div>
<fieldset class="field${errors.level ? ' invalid' : ''}"${invalidAttrs('level', errors.level)}>
<legend>Key Level</legend>
<div class="choices">${radio('user', 'User Level', 'Access all your projects')}${radio('project', 'Project Level', 'Access one specific project')}</div>
${fieldError('level', errors.level)}
</fieldset>
<div class="field${errors.projectId ? ' invalid' : ''}" data-project-field>
<label for="key-project">Project</label>
<select id="key-project" name="projectId"${projects.length === 0 ? html` disabled` : ''}${invalidAttrs('key-project', errors.projectId)}>
<option value="">${projects.length === 0 ? 'You have no projects yet' : 'Choose a project…'}</option>
${projects.map((p) => html`<option value="${p.id}"${values.projectId === p.id ? html` selected` : ''}>${p.name} (${p.id})</option>`)}
</select>
${fieldError('key-project', errors.projectId)}<p class="hint">Required for a Project Level key.</p>
</div>
<div class="field${errors.expiry ? ' invalid' : ''}">
<label for="key-expiry">Expires</label>
<select id="key-expiry" name="expiry"${invalidAttrs('key-expiry', errors.expiry)}>
<option value="never">Never</option>
${expiryDays.map((d) => html`<option value="${d}"${values.expiry === String(d) ? html` selected` : ''}>In ${d} days</option>`)}
</select>
${fieldError('key-expiry', errors.expiry)}
</div>
${ctx.editLimits ? limitFields(values, errors, null) : ''}
<button type="submit" class="btn primary">Create key</button>
</form>
</section>`;
}

export function keyTable(ctx: ViewContext, rows: KeyRow[]): Html {
  if (rows.length === 0) return html`<section class="card" aria-labelledby="keys-heading"><h2 id="keys-heading">Your keys</h2><p class="empty">No keys yet. Create one above.</p></section>`;
  return html`<section class="card" aria-labelledby="keys-heading">
<h2 id="keys-heading">Your keys</h2>
<div class="table-wrap">
<table>
<thead><tr><th scope="col">Name</th><th scope="col">Level</th><th scope="col">Project</th><th scope="col">Key</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col">Status</th><th scope="col">Limits</th><th scope="col">Requests, 30 days</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>
${rows.map((row) => keyRow(ctx, row))}
</tbody>
</table>
</div>
</section>`;
}

/**
 * A key's own limits: `100 per minute`, `37 of 50 left today` (as the next request would find
 * it), and with `href` a link to change them (here rather than among the actions: the table
 * keeps its width).
 */
function limitsCell(key: KeyInfo, href: string | null): Html {
  const { rateLimit, quota } = key;
  const count = (n: number) => n.toLocaleString('en-US');
  const period = { day: 'today', month: 'this month' } as const;
  const change = href ? html`<a class="limit-edit" href="${href}">${rateLimit || quota ? 'Change' : 'Set'}<span class="sr-only"> the limits of ${key.name}</span></a>` : '';
  if (!rateLimit && !quota) return html`<span class="muted">None</span>${change ? html` ${change}` : ''}`;
  return html`${rateLimit ? html`<span class="limit" data-rate-limit>${count(rateLimit.limit)} ${windowLabel(rateLimit.windowMs)}</span>` : ''}${
    quota
      ? html`<span class="limit" data-quota${quota.resetAt ? html` title="Starts again ${quota.resetAt.toISOString().replace('T', ' ').slice(0, 16)} UTC"` : ''}>${count(quota.remaining)} of ${count(quota.limit)} left ${quota.refill ? period[quota.refill] : 'in total'}</span>`
      : ''
  }${change}`;
}

function keyRow(ctx: ViewContext, { key, projectName, rotationDue, spark }: KeyRow): Html {
  const usable = key.status === 'active' || key.status === 'expiring';
  const id = encodeURIComponent(key.id);
  // A signed key carries no limits of its own (core refuses them).
  const limitsHref = ctx.editLimits && usable && key.kind !== 'signed' ? `${ctx.base}/keys/${id}/limits` : null;
  return html`<tr data-key-id="${key.id}" data-status="${key.status}">
<th scope="row">${key.name}</th>
<td>${key.level === 'user' ? 'User' : 'Project'}</td>
<td>${key.level === 'user' ? html`<span class="muted">All projects</span>` : html`${projectName ?? key.projectId} <code>${key.projectId}</code>`}</td>
<td><code>${key.start}…</code></td>
<td class="nowrap">${date(key.createdAt)}</td>
<td class="nowrap">${date(key.lastUsedAt)}</td>
<td class="nowrap">${date(key.expiresAt)}</td>
<td><span class="badge badge-${key.status}" data-status-badge>${STATUS_LABEL[key.status]}</span>${rotationDue ? html`<span class="badge badge-due" data-rotation-due title="Created more than the rotation period ago">Rotation due</span>` : ''}</td>
<td class="limits">${limitsCell(key, limitsHref)}</td>
<td>${spark}</td>
<td class="actions">${
    usable
      ? html`<a class="btn small" href="${ctx.base}/keys/${id}/rotate">Rotate<span class="sr-only"> ${key.name}</span></a><a class="btn small danger" href="${ctx.base}/keys/${id}/revoke" data-confirm="Revoke the key “${key.name}” (${key.start}…)? Requests with it are refused from now on. This cannot be undone.">Revoke<span class="sr-only"> ${key.name}</span></a>`
      : ''
  }</td>
</tr>`;
}

/** The key, shown once: only ever in the response to the POST that made it. */
export function shownOnce(ctx: ViewContext, key: string, record: KeyInfo, projectName: string | null, previous: Html | null): Html {
  return html`<section class="card" aria-labelledby="new-key-heading">
<h2 id="new-key-heading">Your new API key “${record.name}”</h2>
<p class="warning" role="alert"><strong>Copy this key now. It will not be shown again.</strong> Only a hash of it is stored: if you lose it, rotate it or create a new one.</p>
<div class="field">
<label for="new-key">API key</label>
<div class="copy-row"><input type="text" id="new-key" readonly value="${key}" spellcheck="false" autocomplete="off" data-select-on-focus><button type="button" class="btn" data-copy="new-key" hidden>Copy</button></div>
<p class="hint" data-copy-status aria-live="polite"></p>
</div>
<dl class="facts">
<dt>Level</dt><dd>${record.level === 'user' ? 'User Level: all your projects' : html`Project Level: ${projectName ?? record.projectId} <code>${record.projectId}</code>`}</dd>
<dt>Starts with</dt><dd><code>${record.start}…</code></dd>
<dt>Expires</dt><dd>${date(record.expiresAt)}</dd>
</dl>
${previous ?? ''}
<p>Send it in the <code>X-API-Key</code> header; see <a href="${ctx.base}/help">how to use your key</a>. Keep it in an environment variable or a secret store, never in client-side code or a repository.</p>
<p><a class="btn primary" href="${ctx.home}">Done, back to your keys</a></p>
</section>`;
}

export function revokeConfirm(ctx: ViewContext, key: KeyInfo & { status: KeyStatus }): Html {
  if (key.status === 'revoked') return html`<section class="card"><p>The key “${key.name}” (<code>${key.start}…</code>) is already revoked.</p><p><a class="btn" href="${ctx.home}">Back to your keys</a></p></section>`;
  return html`<section class="card">
<p>Revoke the key “${key.name}” (<code>${key.start}…</code>)? Every request with it is refused from now on. This cannot be undone.</p>
<form method="post" action="${ctx.base}/keys/${encodeURIComponent(key.id)}/revoke">
${tokenField(ctx)}
<button type="submit" class="btn danger solid">Revoke key</button> <a class="btn" href="${ctx.home}">Cancel</a>
</form>
</section>`;
}

export function rotateForm(ctx: ViewContext, key: KeyInfo & { status: KeyStatus }, graces: { label: string; ms: number }[], chosen: string, errors: FieldErrors): Html {
  if (key.status === 'revoked' || key.status === 'expired') {
    return html`<section class="card"><p>The key “${key.name}” (<code>${key.start}…</code>) is ${key.status}: it cannot be rotated. Create a new key instead.</p><p><a class="btn" href="${ctx.home}">Back to your keys</a></p></section>`;
  }
  return html`<section class="card">
${errors.form ? html`<p class="alert" role="alert">${errors.form}</p>` : ''}
<p>Rotating “${key.name}” (<code>${key.start}…</code>) creates a new key with the same name, level and project, shown to you once. The old key then stops working, at once or after a grace period while you deploy the new one.</p>
<form method="post" action="${ctx.base}/keys/${encodeURIComponent(key.id)}/rotate">
${tokenField(ctx)}
<fieldset class="field${errors.grace ? ' invalid' : ''}">
<legend>The old key keeps working</legend>
<div class="choices">
${graces.map((g, i) => html`<label class="choice"><input type="radio" name="grace" value="${g.ms}"${chosen === String(g.ms) || (chosen === '' && i === 0) ? html` checked` : ''}> <span><strong>${g.ms === 0 ? 'Not at all' : `For ${g.label}`}</strong><small>${g.ms === 0 ? 'Revoked at once' : 'Then it expires'}</small></span></label>`)}
</div>
${fieldError('grace', errors.grace)}
</fieldset>
<button type="submit" class="btn primary">Rotate key</button> <a class="btn" href="${ctx.home}">Cancel</a>
</form>
</section>`;
}

/** The Limits page of one key: its rate limit, quota and what is left of the quota. */
export function limitsForm(ctx: ViewContext, key: KeyInfo & { status: KeyStatus }, values: LimitValues, errors: FieldErrors): Html {
  if (key.kind === 'signed') {
    return html`<section class="card"><p>The key “${key.name}” (<code>${key.start}…</code>) is a signed key: it carries no limits of its own.</p><p><a class="btn" href="${ctx.home}">Back to your keys</a></p></section>`;
  }
  const quota = key.quota ?? null;
  return html`<section class="card">
${errors.form ? html`<p class="alert" role="alert">${errors.form}</p>` : ''}
<p>Limits of “${key.name}” (<code>${key.start}…</code>). Past them, requests with the key are refused (429) until the period allows more. Changes apply from its next request.</p>
<form method="post" action="${ctx.base}/keys/${encodeURIComponent(key.id)}/limits">
${tokenField(ctx)}
${limitFields(values, errors, key.rateLimit?.windowMs ?? null)}
<div class="field${errors.remaining ? ' invalid' : ''}">
<label for="key-remaining">Left of the quota</label>
<input type="number" id="key-remaining" name="remaining" min="0" step="1" inputmode="numeric" placeholder="${quota ? `${quota.remaining} (as it is)` : 'Full'}" value="${values.remaining}"${invalidAttrs('key-remaining', errors.remaining)}>
${fieldError('key-remaining', errors.remaining)}<p class="hint">${
    quota ? `Now ${quota.remaining} of ${quota.limit}. Leave it empty to keep what is left; a changed quota starts full.` : 'A new quota starts full unless you say how much is left.'
  }</p>
</div>
<button type="submit" class="btn primary">Save limits</button> <a class="btn" href="${ctx.home}">Cancel</a>
</form>
</section>`;
}

export function message(ctx: ViewContext, text: string): Html {
  return html`<section class="card"><p>${text}</p><p><a class="btn" href="${ctx.home}">Back to your keys</a></p></section>`;
}

export function help(ctx: ViewContext, apiUrl: string, projects: Project[]): Html {
  const example = projects[0]?.id ?? 'proj_123';
  return html`<section class="card" aria-labelledby="h-send">
<h2 id="h-send">Sending your key</h2>
<p>Include your API key in the <code>X-API-Key</code> header of every request:</p>
<pre><code>curl -H "X-API-Key: $API_KEY" ${apiUrl}/validate</code></pre>
<p>With a <strong>User Level</strong> key, also name the project in the <code>X-Project-ID</code> header, except for the <code>/validate</code> and <code>/projects</code> endpoints:</p>
<pre><code>curl -H "X-API-Key: $API_KEY" -H "X-Project-ID: ${example}" ${apiUrl}/sites</code></pre>
<p>A <strong>Project Level</strong> key acts on its own project; it needs no <code>X-Project-ID</code> and may name no other project.</p>
<table>
<thead><tr><th scope="col">Key level</th><th scope="col">Access</th><th scope="col">Project header</th></tr></thead>
<tbody>
<tr><th scope="row">User Level</th><td>All projects owned by your account</td><td><code>X-Project-ID</code> required except for <code>/validate</code> and <code>/projects</code></td></tr>
<tr><th scope="row">Project Level</th><td>A single project</td><td>Not needed</td></tr>
</tbody>
</table>
</section>
<section class="card" aria-labelledby="h-errors">
<h2 id="h-errors">Authentication errors</h2>
<table>
<thead><tr><th scope="col">Status</th><th scope="col">Error</th><th scope="col">Meaning</th></tr></thead>
<tbody>
<tr><th scope="row">401 Unauthorized</th><td>Invalid API key</td><td>The key is missing, incorrect, expired or revoked.</td></tr>
<tr><th scope="row">403 Forbidden</th><td>Insufficient permissions</td><td>The key has no access to the requested project, or a User Level key named no project where one is required.</td></tr>
</tbody>
</table>
</section>
<section class="card" aria-labelledby="h-security">
<h2 id="h-security">Security best practices</h2>
<ul>
<li><strong>Keep keys private:</strong> never expose API keys in client-side code or public repositories.</li>
<li><strong>Use environment variables:</strong> store keys in environment variables or secure configuration files.</li>
<li><strong>Rotate regularly:</strong> rotate your keys periodically; keys marked “Rotation due” are overdue.</li>
<li><strong>Monitor usage:</strong> check your keys' usage regularly to detect any unauthorized access, and revoke a key you suspect.</li>
</ul>
</section>
${projects.length > 0 ? html`<section class="card" aria-labelledby="h-projects"><h2 id="h-projects">Your projects</h2><table><thead><tr><th scope="col">Project</th><th scope="col">X-Project-ID</th></tr></thead><tbody>${projects.map((p) => html`<tr><th scope="row">${p.name}</th><td><code>${p.id}</code></td></tr>`)}</tbody></table></section>` : ''}`;
}
