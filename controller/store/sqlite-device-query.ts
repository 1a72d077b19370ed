// The device list's paging, filters, sort and counts on SQLite, in SQL over the devices table
// (JSON1 reads the models out of the reported state), so no query loads every device.
import type { FleetStore } from '../store.js';
import type { DeviceCounts, DevicePage, DeviceQuery } from './types.js';

const SORT: Record<DeviceQuery['sort'], string> = { deviceId: 'device_id', lastSeen: 'last_seen', state: 'state' };

/** The WHERE clause and its arguments for the query's filters. */
function filters(q: DeviceQuery): { where: string; args: unknown[] } {
  const parts: string[] = [];
  const args: unknown[] = [];
  if (q.search) { parts.push("device_id LIKE ? ESCAPE '\\'"); args.push(`%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`); }
  if (q.state) { parts.push('state = ?'); args.push(q.state); }
  if (q.group && q.group !== '*' && q.group !== 'all') {
    parts.push("EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(groups_json) THEN groups_json ELSE '[]' END) g WHERE g.value = ?)");
    args.push(q.group);
  }
  if (q.model !== undefined || q.version !== undefined) {
    const m: string[] = [];
    if (q.model !== undefined) { m.push("json_extract(m.value, '$.name') = ?"); args.push(q.model); }
    if (q.version !== undefined) { m.push("json_extract(m.value, '$.version') = ?"); args.push(q.version); }
    parts.push(`EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(reported_json) THEN reported_json ELSE '{}' END, '$.models') m WHERE ${m.join(' AND ')})`);
  }
  return { where: parts.length ? `WHERE ${parts.join(' AND ')}` : '', args };
}

export function devicePage(store: FleetStore, q: DeviceQuery): DevicePage {
  const { where, args } = filters(q);
  const total = (store.db.prepare(`SELECT COUNT(*) AS n FROM devices ${where}`).get(...args) as { n: number }).n;
  const dir = q.order === 'desc' ? 'DESC' : 'ASC';
  const ids = (store.db.prepare(`SELECT device_id FROM devices ${where} ORDER BY ${SORT[q.sort]} ${dir}, device_id ${dir} LIMIT ? OFFSET ?`)
    .all(...args, q.limit, q.offset) as { device_id: string }[]).map((r) => r.device_id);
  const rows = ids.map((id) => store.device(id)).filter((r): r is NonNullable<typeof r> => r !== undefined);
  return { total, offset: q.offset, limit: q.limit, rows };
}

export function deviceCounts(store: FleetStore): DeviceCounts {
  const total = (store.db.prepare('SELECT COUNT(*) AS n FROM devices').get() as { n: number }).n;
  const byState: Record<string, number> = {};
  for (const r of store.db.prepare('SELECT state, COUNT(*) AS n FROM devices GROUP BY state').all() as { state: string; n: number }[]) byState[r.state] = r.n;
  const byVersion: Record<string, number> = {};
  const rows = store.db.prepare(`SELECT json_extract(m.value, '$.name') AS model, json_extract(m.value, '$.version') AS version, COUNT(DISTINCT d.device_id) AS n
    FROM devices d, json_each(CASE WHEN json_valid(d.reported_json) THEN d.reported_json ELSE '{}' END, '$.models') m
    WHERE model IS NOT NULL AND version IS NOT NULL GROUP BY model, version`).all() as { model: string; version: string; n: number }[];
  for (const r of rows) byVersion[`${r.model}@${r.version}`] = r.n;
  return { total, byState, byVersion };
}
