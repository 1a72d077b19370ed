// `edge-fleet devices` in a terminal: the counts above the table, where the page is below it.
import { deviceQueryParams, type DeviceCounts, type DevicePage, type DeviceQuery } from './device-query.js';

export function countsText(c: DeviceCounts): string {
  const states = Object.entries(c.byState).map(([k, n]) => `${n} ${k}`).join(', ');
  const versions = Object.entries(c.byVersion).map(([k, n]) => `${k}: ${n}`).join(', ');
  const failed = c.failedDeploys ? `; ${c.failedDeploys} with a failed deploy` : '';
  return `${c.total} device${c.total === 1 ? '' : 's'}${states ? `: ${states}` : ''}${failed}\nserving: ${versions || 'no model reported'}\n`;
}

/** "devices 51-100 of 10000 matching; next page: --offset 100". */
export function pageText(p: DevicePage, q: DeviceQuery): string {
  if (p.total === 0) return '';
  const first = Math.min(p.offset + 1, p.total);
  const last = Math.min(p.offset + p.rows.length, p.total);
  const filtered = [...deviceQueryParams({ ...q, offset: 0, limit: p.limit }).keys()].some((k) => !['sort', 'order', 'limit'].includes(k));
  const where = p.rows.length ? `devices ${first}-${last}` : `no devices at offset ${p.offset}`;
  const next = p.offset + p.limit < p.total ? `; next page: --offset ${p.offset + p.limit}` : '';
  return `${where} of ${p.total}${filtered ? ' matching' : ''}${next}\n`;
}
