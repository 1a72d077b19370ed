// The controller's database on PostgreSQL (`edge-fleet serve --db postgres://...`): several
// controller replicas share it. A pg Pool; the schema by numbered migrations; telemetry in
// day partitions dropped by retention; device status and last-seen coalesced and written in
// batches (every `flushMs`).
import pg from 'pg';
import { FleetErrors } from '../../protocol/errors.js';
import type { ArtifactInfo } from '../store.js';
import { migrate } from './pg-migrations.js';
import { dropPartitionsBefore, ensurePartitions } from './pg-partitions.js';
import { DeviceWrites, deviceCounts, devicePage, devices, groupMembers, upsertReported } from './pg-devices.js';
import { pgStreamRecords } from './stream-records.js';
import { pgLearningCounts, pgTelemetryVolume } from './fleet-activity.js';
import { batches, driftReports, ingestBatch, telemetry, telemetrySummary } from './pg-telemetry.js';
import { pgRollouts } from './pg-rollouts.js';
import type { CommandRow, ControllerStore, DesiredDoc, DeviceQuery, RolloutRecords, TelemetryRecord } from './types.js';
import { inTransaction } from './pg-transaction.js';

export interface PostgresStoreOptions {
  /** How often coalesced device writes are flushed (ms). */
  flushMs?: number;
  /** Telemetry older than this many days is dropped by partition (0 = keep all). */
  retentionDays?: number;
  poolSize?: number;
}

/** BIGINT (oid 20) as a JS number: times in ms and sequence numbers fit in 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** The URL without its password, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

/** A clear error for a URL that does not parse as one PostgreSQL can use. */
function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw FleetErrors.BAD_DATABASE(url, 'not a valid URL');
  }
  if (!u.hostname) throw FleetErrors.BAD_DATABASE(redactUrl(url), 'the URL names no host');
  if (u.port && !(Number(u.port) > 0 && Number(u.port) < 65536)) throw FleetErrors.BAD_DATABASE(redactUrl(url), `port ${u.port} is not a port`);
}

export class PostgresControllerStore implements ControllerStore {
  readonly kind = 'postgres' as const;
  readonly location: string;
  readonly rollouts: RolloutRecords;
  readonly #writes: DeviceWrites;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(readonly pool: pg.Pool, url: string, readonly opts: PostgresStoreOptions) {
    this.location = redactUrl(url);
    this.#writes = new DeviceWrites(pool);
    this.rollouts = pgRollouts(pool);
  }

  /** Connects, migrates, makes the telemetry partitions ahead and starts the flush timer. */
  static async open(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresControllerStore> {
    checkUrl(url);
    const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10, connectionTimeoutMillis: 5000, types });
    // An idle client's error (the server restarted) is reported by the next query; without a listener it would crash the process.
    pool.on('error', () => undefined);
    try {
      await pool.query('SELECT 1');
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw FleetErrors.DATABASE_UNREACHABLE(redactUrl(url), (err as Error).message || String(err));
    }
    const store = new PostgresControllerStore(pool, url, opts);
    await migrate(pool);
    await ensurePartitions(pool);
    store.#timer = setInterval(() => void store.maintain().catch(() => undefined), opts.flushMs ?? 200);
    store.#timer.unref();
    return store;
  }

  #lastMaintenance = 0;

  /** The periodic work: flush coalesced writes; hourly, partitions ahead and retention. */
  async maintain(now = Date.now()): Promise<void> {
    await this.flush();
    if (now - this.#lastMaintenance < 3_600_000) return;
    this.#lastMaintenance = now;
    await ensurePartitions(this.pool, now);
    if (this.opts.retentionDays) await this.dropTelemetryBefore(now - this.opts.retentionDays * 86_400_000);
  }

  /** Drops the telemetry day partitions that end before `before` (ms); returns their names. */
  dropTelemetryBefore(before: number): Promise<string[]> {
    return dropPartitionsBefore(this.pool, before);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.flush().catch(() => undefined);
    await this.pool.end();
  }

  flush = (): Promise<void> => this.#writes.flush();

  async upsertStatus(deviceId: string, status: Record<string, unknown> | null): Promise<void> {
    this.#writes.status(deviceId, status);
  }

  seen = (deviceId: string, at?: number): void => this.#writes.seen(deviceId, at);

  upsertReported = (deviceId: string, report: Record<string, unknown>) => upsertReported(this.pool, deviceId, report);

  devices = async () => { await this.flush(); return devices(this.pool); };
  device = async (id: string) => { await this.flush(); return (await devices(this.pool, id))[0]; };
  groupMembers = async (group: string) => { await this.flush(); return groupMembers(this.pool, group); };
  devicePage = async (q: DeviceQuery) => { await this.flush(); return devicePage(this.pool, q); };
  deviceCounts = async () => { await this.flush(); return deviceCounts(this.pool); };

  ingestBatch = (deviceId: string, stream: string, records: TelemetryRecord[], replica?: string) => ingestBatch(this.pool, deviceId, stream, records, replica);

  async reject(deviceId: string | undefined, topic: string, reason: string, bytes: number): Promise<void> {
    await this.pool.query('INSERT INTO rejected (device_id, topic, reason, bytes, received_at) VALUES ($1, $2, $3, $4, $5)', [deviceId ?? null, topic, reason, bytes, Date.now()]);
  }

  async rejected(): Promise<{ deviceId: string | null; topic: string; reason: string; bytes: number }[]> {
    const res = await this.pool.query<{ device_id: string | null; topic: string; reason: string; bytes: number }>('SELECT device_id, topic, reason, bytes FROM rejected ORDER BY id');
    return res.rows.map((r) => ({ deviceId: r.device_id, topic: r.topic, reason: r.reason, bytes: r.bytes }));
  }

  telemetry = (deviceId: string, opts?: { stream?: string; limit?: number; afterSeq?: number }) => telemetry(this.pool, deviceId, opts);
  telemetrySummary = (deviceId?: string) => telemetrySummary(this.pool, deviceId);
  batches = () => batches(this.pool);
  driftReports = (limit?: number) => driftReports(this.pool, limit);
  streamRecords: ControllerStore['streamRecords'] = (streams, q) => pgStreamRecords(this.pool, streams, q);
  telemetryVolume = (since: number) => pgTelemetryVolume(this.pool, since);
  learningCounts = () => pgLearningCounts(this.pool);

  async commandSent(id: string, deviceId: string, name: string, args: unknown): Promise<void> {
    await this.pool.query(`INSERT INTO commands (id, device_id, name, args_json, sent_at) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, args_json = excluded.args_json, sent_at = excluded.sent_at`, [id, deviceId, name, JSON.stringify(args ?? {}), Date.now()]);
  }

  async commandReplied(id: string, deviceId: string, reply: { ok?: unknown }): Promise<void> {
    await this.pool.query(`INSERT INTO commands (id, device_id, ok, reply_json, replied_at) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (id) DO UPDATE SET ok = excluded.ok, reply_json = excluded.reply_json, replied_at = excluded.replied_at`, [id, deviceId, Boolean(reply.ok), JSON.stringify(reply), Date.now()]);
  }

  async commands(deviceId?: string): Promise<CommandRow[]> {
    const res = await this.pool.query<{ id: string; device_id: string; name: string | null; ok: boolean | null; reply_json: unknown }>(
      `SELECT id, device_id, name, ok, reply_json FROM commands ${deviceId ? 'WHERE device_id = $1' : ''} ORDER BY COALESCE(sent_at, replied_at)`, deviceId ? [deviceId] : []);
    return res.rows.map((r) => ({ id: r.id, deviceId: r.device_id, name: r.name, ok: r.ok, reply: r.reply_json ?? null }));
  }

  async putArtifact(info: Omit<ArtifactInfo, 'publishedAt'>, chunk: (i: number) => Buffer): Promise<void> {
    await inTransaction(this.pool, async (c) => {
      await c.query('DELETE FROM chunks WHERE sha256 = $1', [info.sha256]);
      await c.query('DELETE FROM artifacts WHERE sha256 = $1 OR (name = $2 AND version = $3)', [info.sha256, info.name, info.version]);
      await c.query('INSERT INTO artifacts (sha256, name, version, size, chunk_size, chunks_json, signature, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [info.sha256, info.name, info.version, info.size, info.chunkSize, JSON.stringify(info.chunks), info.signature, Date.now()]);
      for (let i = 0; i < info.chunks.length; i++) await c.query('INSERT INTO chunks (sha256, idx, data) VALUES ($1, $2, $3)', [info.sha256, i, chunk(i)]);
    });
  }

  async artifact(key: { sha256: string } | { name: string; version: string }): Promise<ArtifactInfo | undefined> {
    const res = 'sha256' in key
      ? await this.pool.query<Record<string, unknown>>('SELECT * FROM artifacts WHERE sha256 = $1', [key.sha256])
      : await this.pool.query<Record<string, unknown>>('SELECT * FROM artifacts WHERE name = $1 AND version = $2', [key.name, key.version]);
    const row = res.rows[0];
    if (!row) return undefined;
    return {
      sha256: row.sha256 as string, name: row.name as string, version: row.version as string, size: row.size as number,
      chunkSize: row.chunk_size as number, chunks: Array.isArray(row.chunks_json) ? row.chunks_json as string[] : [],
      signature: (row.signature as string | null) ?? null, publishedAt: new Date(row.published_at as number).toISOString(),
    };
  }

  async artifacts(): Promise<ArtifactInfo[]> {
    const res = await this.pool.query<{ sha256: string }>('SELECT sha256 FROM artifacts ORDER BY name, published_at');
    return (await Promise.all(res.rows.map((r) => this.artifact(r)))).filter((a): a is ArtifactInfo => a !== undefined);
  }

  async chunk(sha256: string, index: number): Promise<Buffer | undefined> {
    return (await this.pool.query<{ data: Buffer }>('SELECT data FROM chunks WHERE sha256 = $1 AND idx = $2', [sha256, index])).rows[0]?.data;
  }

  async desired(target: string): Promise<DesiredDoc | undefined> {
    const doc = (await this.pool.query<{ doc_json: { v: 1; models?: unknown } | null }>('SELECT doc_json FROM desired WHERE target = $1', [target])).rows[0]?.doc_json;
    return doc && Array.isArray(doc.models) ? doc as DesiredDoc : undefined;
  }

  async setDesired(target: string, doc: object): Promise<void> {
    await this.pool.query(`INSERT INTO desired (target, doc_json, updated_at) VALUES ($1, $2, $3)
      ON CONFLICT (target) DO UPDATE SET doc_json = excluded.doc_json, updated_at = excluded.updated_at`, [target, JSON.stringify(doc), Date.now()]);
  }
}
