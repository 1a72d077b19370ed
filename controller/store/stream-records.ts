// Every stored record of some streams across devices (the learning loop's datasets read the
// `examples` and `feedback` streams this way: controller/dataset.ts). One query per store.
import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { TelemetryRow } from './types.js';

export interface StreamRecordsQuery {
  /** Only records whose device timestamp is at or after this (ms). */
  since?: number;
  /** Only these devices (all when absent or empty). */
  devices?: string[];
}

type Row = { device_id: string; stream: string; seq: number; ts: number; payload_json: unknown; received_at: number };

const toRow = (r: Row, payload: unknown): TelemetryRow =>
  ({ deviceId: r.device_id, stream: r.stream, seq: Number(r.seq), ts: Number(r.ts), payload, receivedAt: Number(r.received_at) });

export function sqliteStreamRecords(db: Database.Database, streams: string[], q: StreamRecordsQuery = {}): TelemetryRow[] {
  if (!streams.length) return [];
  const where = [`stream IN (${streams.map(() => '?').join(', ')})`];
  const args: unknown[] = [...streams];
  if (q.since !== undefined) { where.push('ts >= ?'); args.push(q.since); }
  if (q.devices?.length) { where.push(`device_id IN (${q.devices.map(() => '?').join(', ')})`); args.push(...q.devices); }
  const rows = db.prepare(`SELECT device_id, stream, seq, ts, payload_json, received_at FROM telemetry WHERE ${where.join(' AND ')} ORDER BY device_id, stream, seq`)
    .all(...args) as Row[];
  return rows.map((r) => {
    let payload: unknown = null;
    try {
      payload = JSON.parse(r.payload_json as string);
    } catch {
      // A record that is not JSON is nobody's example: left out by the caller's checks.
    }
    return toRow(r, payload);
  });
}

export async function pgStreamRecords(pool: pg.Pool, streams: string[], q: StreamRecordsQuery = {}): Promise<TelemetryRow[]> {
  if (!streams.length) return [];
  const where = ['stream = ANY($1::text[])'];
  const args: unknown[] = [streams];
  if (q.since !== undefined) { args.push(q.since); where.push(`ts >= $${args.length}`); }
  if (q.devices?.length) { args.push(q.devices); where.push(`device_id = ANY($${args.length}::text[])`); }
  const res = await pool.query<Row>(
    `SELECT device_id, stream, seq, ts, payload_json, received_at FROM telemetry WHERE ${where.join(' AND ')} ORDER BY device_id, stream, seq`, args);
  return res.rows.map((r) => toRow(r, r.payload_json));
}
