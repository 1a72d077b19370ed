// Devices on PostgreSQL: statuses and last-seen times are coalesced in memory and written in
// one statement per flush (a device that sends 50 messages between flushes costs one row
// update, not 50); reported state is written at once with its models into device_models, which
// the dashboard's filters and counts query.
import type pg from 'pg';
import { DEVICE_COLUMNS, deviceRow, type StoredDevice } from '../device-rows.js';
import { SERVING_STATES } from '../device-query.js';
import type { DeviceCounts, DevicePage, DeviceQuery, DeviceRow } from './types.js';
import { inTransaction } from './pg-transaction.js';

const SELECT_DEVICE = `SELECT ${DEVICE_COLUMNS.replace('status_json', 'status_json::text AS status_json').replace('reported_json', 'reported_json::text AS reported_json')} FROM devices`;

/** Device writes waiting for the next flush: the newest status and the latest time seen, per device. */
export class DeviceWrites {
  #statuses = new Map<string, { status: Record<string, unknown> | null; at: number }>();
  #seen = new Map<string, number>();
  #flushing: Promise<void> = Promise.resolve();

  constructor(private readonly pool: pg.Pool) {}

  status(deviceId: string, status: Record<string, unknown> | null, at = Date.now()): void {
    this.#statuses.set(deviceId, { status, at });
  }

  seen(deviceId: string, at = Date.now()): void {
    this.#seen.set(deviceId, Math.max(at, this.#seen.get(deviceId) ?? 0));
  }

  get pending(): number {
    return this.#statuses.size + this.#seen.size;
  }

  /** Writes what is buffered; flushes run one after another, so a later one never overtakes. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#write(), () => this.#write());
    return this.#flushing;
  }

  async #write(): Promise<void> {
    const statuses = this.#statuses;
    const seen = this.#seen;
    if (statuses.size === 0 && seen.size === 0) return;
    this.#statuses = new Map();
    this.#seen = new Map();
    try {
      // Sorted by device id: two replicas flushing overlapping devices lock rows in one order (no deadlock).
      if (statuses.size) await this.#writeStatuses([...statuses].sort(([a], [b]) => (a < b ? -1 : 1)));
      statuses.clear();
      if (seen.size) await this.#writeSeen([...seen].sort(([a], [b]) => (a < b ? -1 : 1)));
    } catch (err) {
      // The database is away: what was not written waits for the next flush (newer news wins).
      for (const [d, s] of statuses) if (!this.#statuses.has(d)) this.#statuses.set(d, s);
      for (const [d, at] of seen) this.seen(d, at);
      throw err;
    }
  }

  async #writeStatuses(rows: [string, { status: Record<string, unknown> | null; at: number }][]): Promise<void> {
    const ids = rows.map(([d]) => d);
    const states = rows.map(([, s]) => (s.status ? String(s.status.state ?? 'unknown') : 'unknown'));
    const docs = rows.map(([, s]) => (s.status ? JSON.stringify(s.status) : null));
    const groups = rows.map(([, s]) => JSON.stringify(Array.isArray(s.status?.groups) ? (s.status!.groups as unknown[]).map(String) : []));
    const ats = rows.map(([, s]) => s.at);
    await this.pool.query(`INSERT INTO devices (device_id, state, status_json, groups, first_seen, last_seen, status_at)
      SELECT d, st, doc::jsonb, ARRAY(SELECT jsonb_array_elements_text(g::jsonb)), at, at, at
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS u(d, st, doc, g, at)
      ON CONFLICT (device_id) DO UPDATE SET state = excluded.state, status_json = excluded.status_json, groups = excluded.groups,
        last_seen = GREATEST(devices.last_seen, excluded.last_seen), status_at = excluded.status_at`, [ids, states, docs, groups, ats]);
  }

  async #writeSeen(rows: [string, number][]): Promise<void> {
    await this.pool.query(`INSERT INTO devices (device_id, state, first_seen, last_seen)
      SELECT d, 'unknown', at, at FROM unnest($1::text[], $2::bigint[]) AS u(d, at)
      ON CONFLICT (device_id) DO UPDATE SET last_seen = GREATEST(devices.last_seen, excluded.last_seen)`, [rows.map(([d]) => d), rows.map(([, at]) => at)]);
  }
}

/** The models a reported state names, as (model, version) pairs. */
function reportedModels(report: Record<string, unknown>): { model: string; version: string; state: string }[] {
  const models = Array.isArray(report.models) ? report.models as { name?: unknown; version?: unknown; state?: unknown }[] : [];
  return models.filter((m) => typeof m?.name === 'string' && typeof m.version === 'string')
    .map((m) => ({ model: m.name as string, version: m.version as string, state: typeof m.state === 'string' ? m.state : '' }));
}

export async function upsertReported(pool: pg.Pool, deviceId: string, report: Record<string, unknown>): Promise<void> {
  const now = Date.now();
  const models = reportedModels(report);
  await inTransaction(pool, async (c) => {
    await c.query(`INSERT INTO devices (device_id, state, first_seen, last_seen, reported_json, reported_at) VALUES ($1, 'unknown', $2, $2, $3::jsonb, $2)
      ON CONFLICT (device_id) DO UPDATE SET reported_json = excluded.reported_json, reported_at = excluded.reported_at`, [deviceId, now, JSON.stringify(report)]);
    await c.query('DELETE FROM device_models WHERE device_id = $1', [deviceId]);
    if (models.length) {
      await c.query(`INSERT INTO device_models (device_id, model, version, state) SELECT $1, m, v, s FROM unnest($2::text[], $3::text[], $4::text[]) AS u(m, v, s) ON CONFLICT DO NOTHING`,
        [deviceId, models.map((m) => m.model), models.map((m) => m.version), models.map((m) => m.state)]);
    }
  });
}

export async function devices(pool: pg.Pool, deviceId?: string): Promise<DeviceRow[]> {
  const res = deviceId === undefined
    ? await pool.query<StoredDevice>(`${SELECT_DEVICE} ORDER BY device_id`)
    : await pool.query<StoredDevice>(`${SELECT_DEVICE} WHERE device_id = $1`, [deviceId]);
  return res.rows.map(deviceRow);
}

export async function groupMembers(pool: pg.Pool, group: string): Promise<string[]> {
  const res = group === '*' || group === 'all'
    ? await pool.query<{ device_id: string }>('SELECT device_id FROM devices ORDER BY device_id')
    : await pool.query<{ device_id: string }>('SELECT device_id FROM devices WHERE groups @> ARRAY[$1::text] ORDER BY device_id', [group]);
  return res.rows.map((r) => r.device_id);
}

const SORT: Record<DeviceQuery['sort'], string> = { deviceId: 'device_id', lastSeen: 'last_seen', state: 'state' };

function filters(q: DeviceQuery): { where: string; args: unknown[] } {
  const parts: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown): string => { args.push(v); return `$${args.length}`; };
  if (q.search) parts.push(`device_id ILIKE ${arg(`%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)}`);
  if (q.state) parts.push(`state = ${arg(q.state)}`);
  if (q.group && q.group !== '*' && q.group !== 'all') parts.push(`groups @> ARRAY[${arg(q.group)}::text]`);
  if (q.model !== undefined || q.version !== undefined) {
    const m: string[] = ['m.device_id = devices.device_id', `m.state = ANY(${arg([...SERVING_STATES])}::text[])`];
    if (q.model !== undefined) m.push(`m.model = ${arg(q.model)}`);
    if (q.version !== undefined) m.push(`m.version = ${arg(q.version)}`);
    parts.push(`EXISTS (SELECT 1 FROM device_models m WHERE ${m.join(' AND ')})`);
  }
  return { where: parts.length ? `WHERE ${parts.join(' AND ')}` : '', args };
}

export async function devicePage(pool: pg.Pool, q: DeviceQuery): Promise<DevicePage> {
  const { where, args } = filters(q);
  const dir = q.order === 'desc' ? 'DESC' : 'ASC';
  const [count, page] = await Promise.all([
    pool.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM devices ${where}`, args),
    pool.query<StoredDevice>(`${SELECT_DEVICE} ${where} ORDER BY ${SORT[q.sort]} ${dir}, device_id ${dir} LIMIT $${args.length + 1} OFFSET $${args.length + 2}`,
      [...args, q.limit, q.offset]),
  ]);
  return { total: count.rows[0]!.n, offset: q.offset, limit: q.limit, rows: page.rows.map(deviceRow) };
}

export async function deviceCounts(pool: pg.Pool): Promise<DeviceCounts> {
  const [states, versions, failed] = await Promise.all([
    pool.query<{ state: string; n: number }>('SELECT state, COUNT(*)::int AS n FROM devices GROUP BY state'),
    pool.query<{ model: string; version: string; n: number }>('SELECT model, version, COUNT(*)::int AS n FROM device_models WHERE state = ANY($1::text[]) GROUP BY model, version', [[...SERVING_STATES]]),
    pool.query<{ n: number }>("SELECT COUNT(DISTINCT device_id)::int AS n FROM device_models WHERE state IN ('failed', 'rolled_back')"),
  ]);
  const byState: Record<string, number> = {};
  let total = 0;
  for (const r of states.rows) { byState[r.state] = r.n; total += r.n; }
  const byVersion: Record<string, number> = {};
  for (const r of versions.rows) byVersion[`${r.model}@${r.version}`] = r.n;
  return { total, byState, byVersion, failedDeploys: failed.rows[0]!.n };
}
