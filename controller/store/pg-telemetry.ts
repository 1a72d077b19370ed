// Telemetry on PostgreSQL: one transaction per batch, records inserted in one statement with
// ON CONFLICT DO NOTHING on (device, stream, seq, ts), so a batch that arrives twice at once
// (two replicas, a re-send) stores each record once: the second insert waits for the first
// transaction's key and then skips it. The caller acks only after this resolves (committed).
import type pg from 'pg';
import { storedDocument } from '../documents.js';
import type { BatchRow, IngestResult, StoredDriftReport, TelemetryRecord, TelemetryRow, TelemetrySummaryRow } from './types.js';
import { inTransaction } from './pg-transaction.js';

export async function ingestBatch(pool: pg.Pool, deviceId: string, stream: string, records: TelemetryRecord[], replica = ''): Promise<IngestResult> {
  const now = Date.now();
  const payloads = records.map((r) => JSON.stringify(r.payload ?? null));
  return inTransaction(pool, async (c) => {
    const ins = await c.query<{ seq: number }>(`INSERT INTO telemetry (device_id, stream, seq, ts, payload_json, received_at)
      SELECT $1, $2, s, t, p::json, $6 FROM unnest($3::bigint[], $4::bigint[], $5::text[]) AS u(s, t, p)
      ON CONFLICT DO NOTHING RETURNING seq`, [deviceId, stream, records.map((r) => r.seq), records.map((r) => r.ts), payloads, now]);
    const fresh = new Set(ins.rows.map((r) => r.seq));
    // A seq twice in one batch is stored once (the second is a duplicate), as on SQLite.
    const stored1 = records.filter((r) => fresh.delete(r.seq));
    const storedSeqs = stored1.map((r) => r.seq);
    if (stream === 'drift' && storedSeqs.length) {
      const drift = stored1;
      await c.query(`INSERT INTO drift (device_id, seq, ts, report_json) SELECT $1, s, t, p::json FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS u(s, t, p)
        ON CONFLICT DO NOTHING`, [deviceId, drift.map((r) => r.seq), drift.map((r) => r.ts), drift.map((r) => JSON.stringify(r.payload ?? null))]);
    }
    const stored = storedSeqs.length;
    await c.query(`INSERT INTO batches (device_id, stream, first_seq, last_seq, records, stored, duplicates, received_at, replica)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [deviceId, stream, records[0]?.seq ?? 0, records[records.length - 1]?.seq ?? 0,
      records.length, stored, records.length - stored, now, replica]);
    return { records: records.length, stored, duplicates: records.length - stored, storedSeqs };
  });
}

export async function telemetry(pool: pg.Pool, deviceId: string, opts: { stream?: string; limit?: number; afterSeq?: number } = {}): Promise<TelemetryRow[]> {
  const where = ['device_id = $1'];
  const args: unknown[] = [deviceId];
  if (opts.stream) { args.push(opts.stream); where.push(`stream = $${args.length}`); }
  if (opts.afterSeq !== undefined) { args.push(opts.afterSeq); where.push(`seq > $${args.length}`); }
  args.push(opts.limit ?? null);
  const res = await pool.query<{ device_id: string; stream: string; seq: number; ts: number; payload_json: unknown; received_at: number }>(
    `SELECT device_id, stream, seq, ts, payload_json, received_at FROM telemetry WHERE ${where.join(' AND ')} ORDER BY stream, seq LIMIT $${args.length}`, args);
  return res.rows.map((r) => ({ deviceId: r.device_id, stream: r.stream, seq: r.seq, ts: r.ts, payload: r.payload_json, receivedAt: r.received_at }));
}

export async function telemetrySummary(pool: pg.Pool, deviceId?: string): Promise<TelemetrySummaryRow[]> {
  const res = await pool.query<{ device_id: string; stream: string; records: number; duplicates: number; batches: number; last_seq: number }>(
    `SELECT device_id, stream, SUM(stored)::int AS records, SUM(duplicates)::int AS duplicates, COUNT(*)::int AS batches, MAX(last_seq) AS last_seq
     FROM batches ${deviceId ? 'WHERE device_id = $1' : ''} GROUP BY device_id, stream ORDER BY device_id, stream`, deviceId ? [deviceId] : []);
  return res.rows.map((r) => ({ deviceId: r.device_id, stream: r.stream, records: r.records, duplicates: r.duplicates, batches: r.batches, lastSeq: r.last_seq }));
}

export async function batches(pool: pg.Pool): Promise<BatchRow[]> {
  const res = await pool.query<Record<string, unknown>>('SELECT * FROM batches ORDER BY id');
  return res.rows.map((r) => ({
    deviceId: r.device_id as string, stream: r.stream as string, firstSeq: r.first_seq as number, lastSeq: r.last_seq as number,
    records: r.records as number, stored: r.stored as number, duplicates: r.duplicates as number, replica: r.replica as string,
  }));
}

export async function driftReports(pool: pg.Pool, limit = 100): Promise<StoredDriftReport[]> {
  const res = await pool.query<{ device_id: string; seq: number; ts: number; report_json: string }>(
    'SELECT device_id, seq, ts, report_json::text AS report_json FROM drift ORDER BY ts DESC, id DESC LIMIT $1', [limit]);
  const out: StoredDriftReport[] = [];
  for (const r of res.rows) {
    const report = storedDocument('drift', r.report_json);
    if (report) out.push({ deviceId: r.device_id, seq: r.seq, ts: r.ts, report });
  }
  return out;
}
