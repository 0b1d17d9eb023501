import type { UsageDay } from '@keyscope/core';
import { html, type Html } from './html.js';

const DAY_MS = 86_400_000;

/** Requests per UTC day for the `days` days ending today, oldest first (missing days are 0). */
export function dailyCounts(usage: readonly UsageDay[], now: number, days = 30): number[] {
  const byDay = new Map(usage.map((d) => [d.day, d.count]));
  const counts: number[] = [];
  for (let i = days - 1; i >= 0; i--) counts.push(byDay.get(new Date(now - i * DAY_MS).toISOString().slice(0, 10)) ?? 0);
  return counts;
}

/** An inline SVG sparkline (markup, not an image: allowed by the CSP without `img-src`). */
export function sparkline(counts: readonly number[]): Html {
  const width = 120;
  const height = 28;
  const pad = 2;
  const max = Math.max(1, ...counts);
  const total = counts.reduce((a, b) => a + b, 0);
  const step = counts.length > 1 ? (width - 2 * pad) / (counts.length - 1) : 0;
  const points = counts.map((c, i) => `${(pad + i * step).toFixed(1)},${(height - pad - (c / max) * (height - 2 * pad)).toFixed(1)}`);
  const label = `${total} request${total === 1 ? '' : 's'} in the last ${counts.length} days, at most ${Math.max(0, ...counts)} a day`;
  const last = points[points.length - 1]?.split(',') ?? ['0', '0'];
  return html`<svg class="spark" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${label}" data-counts="${counts.join(',')}"><title>${label}</title><polyline fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round" points="${points.join(' ')}"/><circle cx="${last[0]}" cy="${last[1]}" r="2" fill="currentColor"/></svg>`;
}
