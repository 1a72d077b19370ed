// One page of the fleet's devices, filtered and sorted by the store (SQL with indexes), and the
// fleet's counts by state and by model version: what the dashboard and `edge-fleet devices`
// show, so neither ever loads every device. The SQLite store (controller/store.ts) and the
// PostgreSQL store implement the same two methods; this file holds the types, the parsing of
// the query from HTTP parameters or CLI options, and the SQL both stores can share.
import { ID_PATTERN, MODEL_NAME, MODEL_VERSION } from '../protocol/names.js';
import type { DeviceRow } from './store.js';

export interface DeviceQuery {
  offset: number;
  limit: number;
  search?: string;
  state?: string;
  model?: string;
  version?: string;
  group?: string;
  sort: 'deviceId' | 'lastSeen' | 'state';
  order: 'asc' | 'desc';
}

export interface DevicePage { total: number; offset: number; limit: number; rows: DeviceRow[] }

export interface DeviceCounts {
  total: number;
  byState: Record<string, number>;
  /** Key "model@version" from the reported state: devices serving that version (active, probation, committed). */
  byVersion: Record<string, number>;
  /**
   * Devices with a deploy that did not land: a version their reported state calls failed or
   * rolled_back. Optional (a store may leave it out; the dashboard then says nothing).
   */
  failedDeploys?: number;
}

/** Reported model states that mean the device serves that version: they count in byVersion and match the model/version filter. */
export const SERVING_STATES = ['active', 'probation', 'committed'] as const;

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;
export const MAX_OFFSET = 10_000_000;
export const SORTS = ['deviceId', 'lastSeen', 'state'] as const;
export const ORDERS = ['asc', 'desc'] as const;
const KEYS = ['offset', 'limit', 'search', 'state', 'model', 'version', 'group', 'sort', 'order'] as const;

/** A bad query parameter: HTTP answers 400 with the message, the CLI prints it. */
export class DeviceQueryError extends Error {
  readonly statusCode = 400;
}

function wholeNumber(name: string, raw: string, min: number, max: number): number {
  const n = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new DeviceQueryError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  return n;
}

function text(name: string, raw: string, rule: RegExp | undefined, max: number): string {
  if (raw.length > max) throw new DeviceQueryError(`${name} is at most ${max} characters, got ${raw.length}`);
  if (rule && !rule.test(raw)) throw new DeviceQueryError(`${name} "${raw}" is not a valid ${name} (${rule.source})`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw new DeviceQueryError(`${name} must not contain control characters`);
  return raw;
}

/**
 * A DeviceQuery from HTTP query parameters or CLI options (strings; numbers are accepted too).
 * Empty values mean "not given". Unknown parameters, limits out of bounds, an unknown sort or
 * order, and names that break the protocol's name rules throw DeviceQueryError with the reason.
 * `version` may be given as "model@version" (the keys of DeviceCounts.byVersion).
 */
export function parseDeviceQuery(params: Record<string, unknown>): DeviceQuery {
  const unknown = Object.keys(params).filter((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown.length) throw new DeviceQueryError(`unknown parameter ${unknown.map((k) => `"${k}"`).join(', ')}; known: ${KEYS.join(', ')}`);
  const get = (k: (typeof KEYS)[number]): string | undefined => {
    const v = params[k];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) throw new DeviceQueryError(`${k} is given more than once`);
    if (typeof v !== 'string' && typeof v !== 'number') throw new DeviceQueryError(`${k} must be a string`);
    const s = String(v).trim();
    return s === '' ? undefined : s;
  };
  const q: DeviceQuery = {
    offset: get('offset') === undefined ? 0 : wholeNumber('offset', get('offset')!, 0, MAX_OFFSET),
    limit: get('limit') === undefined ? DEFAULT_LIMIT : wholeNumber('limit', get('limit')!, 1, MAX_LIMIT),
    sort: 'deviceId',
    order: 'asc',
  };
  const sort = get('sort');
  if (sort !== undefined) {
    if (!(SORTS as readonly string[]).includes(sort)) throw new DeviceQueryError(`sort must be one of ${SORTS.join(', ')}, got "${sort}"`);
    q.sort = sort as DeviceQuery['sort'];
  }
  const order = get('order');
  if (order !== undefined) {
    if (!(ORDERS as readonly string[]).includes(order)) throw new DeviceQueryError(`order must be asc or desc, got "${order}"`);
    q.order = order as DeviceQuery['order'];
  }
  const search = get('search');
  if (search !== undefined) q.search = text('search', search, undefined, 64);
  const state = get('state');
  if (state !== undefined) q.state = text('state', state, /^[A-Za-z0-9_-]{1,64}$/, 64);
  const group = get('group');
  if (group !== undefined) q.group = text('group', group, ID_PATTERN, 64);
  let model = get('model');
  let version = get('version');
  if (version?.includes('@')) {
    const [m, v] = [version.slice(0, version.indexOf('@')), version.slice(version.indexOf('@') + 1)];
    if (model !== undefined && model !== m) throw new DeviceQueryError(`version "${version}" names model "${m}" but model is "${model}"`);
    model = m;
    version = v;
  }
  if (version !== undefined && model === undefined) throw new DeviceQueryError('version needs a model: give model=NAME or version=NAME@VERSION');
  if (model !== undefined) q.model = text('model', model, MODEL_NAME, 64);
  if (version !== undefined) q.version = text('version', version, MODEL_VERSION, 64);
  return q;
}

/** The query as URL parameters (defaults left out): links between pages. */
export function deviceQueryParams(q: DeviceQuery): URLSearchParams {
  const p = new URLSearchParams();
  if (q.offset) p.set('offset', String(q.offset));
  if (q.limit !== DEFAULT_LIMIT) p.set('limit', String(q.limit));
  for (const k of ['search', 'state', 'model', 'version', 'group'] as const) if (q[k] !== undefined) p.set(k, q[k]!);
  if (q.sort !== 'deviceId') p.set('sort', q.sort);
  if (q.order !== 'asc') p.set('order', q.order);
  return p;
}

/** LIKE pattern for a substring, with % _ and \ taken literally (ESCAPE '\'). */
export function likeSubstring(s: string): string {
  return `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * WHERE (with `?` placeholders, in order) and ORDER BY for a query over `devices d`, with the
 * served models in `device_models(device_id, model, version, state)` and the groups as a JSON
 * array in d.groups_json. The sort always ends on the device id, so pages never overlap.
 */
export function deviceQuerySql(q: DeviceQuery): { where: string; args: unknown[]; orderBy: string } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.search !== undefined) { where.push("d.device_id LIKE ? ESCAPE '\\'"); args.push(likeSubstring(q.search)); }
  if (q.state !== undefined) { where.push('d.state = ?'); args.push(q.state); }
  if (q.model !== undefined) {
    const serving = SERVING_STATES.map(() => '?').join(', ');
    where.push(`EXISTS (SELECT 1 FROM device_models m WHERE m.model = ?${q.version !== undefined ? ' AND m.version = ?' : ''} AND m.state IN (${serving}) AND m.device_id = d.device_id)`);
    args.push(q.model, ...(q.version !== undefined ? [q.version] : []), ...SERVING_STATES);
  }
  if (q.group !== undefined) { where.push('EXISTS (SELECT 1 FROM device_groups g WHERE g.grp = ? AND g.device_id = d.device_id)'); args.push(q.group); }
  const dir = q.order === 'desc' ? 'DESC' : 'ASC';
  const col = q.sort === 'lastSeen' ? 'd.last_seen' : q.sort === 'state' ? 'd.state' : undefined;
  return {
    where: where.length ? `WHERE ${where.join(' AND ')}` : '',
    args,
    orderBy: `ORDER BY ${col ? `${col} ${dir}, ` : ''}d.device_id ${dir}`,
  };
}
