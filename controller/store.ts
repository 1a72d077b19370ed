// The controller's SQLite database: devices and their last status, telemetry records
// de-duplicated by (device, stream, seq), drift reports, model reports, command results,
// published artifacts (chunked) and desired state. One file; several replicas may share it
// (WAL) or keep their own.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { storedDocument, type DriftReportDoc } from './documents.js';
import { deviceQuerySql, SERVING_STATES, type DeviceCounts, type DevicePage, type DeviceQuery } from './device-query.js';
import { reportedModels } from './deploy-problems.js';
import { DEVICE_COLUMNS, deviceRow, type StoredDevice } from './device-rows.js';

/** JSON text from the database, or `fallback` when it does not parse (a damaged or hand-edited row). */
function parseStored<T>(json: string | null | undefined, fallback: T): T {
  if (json == null) return fallback;
  try {
    return JSON.parse(json) as T;
  } catch {
    return fallback;
  }
}

export interface DeviceRow {
  deviceId: string;
  state: string;
  status: Record<string, unknown> | null;
  /** The last message of any kind from the device (status, telemetry, reported state, a command reply, an artifact request). */
  lastSeen: string;
  /**
   * Seconds the agent has been up as of lastSeen: the status's uptimeSeconds plus the time from
   * that status to the last message (a device publishes its status only on connect and on change).
   * Absent while the device is not online or its status has none.
   */
  uptimeSeconds?: number;
  reported: Record<string, unknown> | null;
}

export interface TelemetryRow {
  deviceId: string;
  stream: string;
  seq: number;
  ts: number;
  payload: unknown;
  receivedAt: number;
}

export interface IngestResult {
  records: number;
  stored: number;
  duplicates: number;
  /** Sequence numbers stored by this batch (not seen before), in batch order. */
  storedSeqs: number[];
}

export interface ArtifactInfo {
  sha256: string;
  name: string;
  version: string;
  size: number;
  chunkSize: number;
  chunks: string[];
  signature: string | null;
  publishedAt: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  status_json TEXT,
  groups_json TEXT NOT NULL DEFAULT '[]',
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  reported_json TEXT,
  reported_at INTEGER
);
CREATE INDEX IF NOT EXISTS devices_state ON devices (state, device_id);
CREATE INDEX IF NOT EXISTS devices_last_seen ON devices (last_seen, device_id);
-- The models of each device's reported state, one row per model version (kept with
-- reported_json): counts by version and the version filter without reading every document.
CREATE TABLE IF NOT EXISTS device_models (
  device_id TEXT NOT NULL,
  model TEXT NOT NULL,
  version TEXT NOT NULL,
  state TEXT NOT NULL,
  pos INTEGER NOT NULL DEFAULT 0,
  reason TEXT,
  shadow_json TEXT,
  field_json TEXT,
  PRIMARY KEY (device_id, model, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS device_models_version ON device_models (model, version, state, device_id);
-- The groups of each device's status (kept with groups_json): group members by index.
CREATE TABLE IF NOT EXISTS device_groups (
  grp TEXT NOT NULL,
  device_id TEXT NOT NULL,
  PRIMARY KEY (grp, device_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS device_groups_device ON device_groups (device_id);
CREATE TABLE IF NOT EXISTS telemetry (
  device_id TEXT NOT NULL,
  stream TEXT NOT NULL,
  seq INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  payload_json TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (device_id, stream, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL,
  stream TEXT NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  records INTEGER NOT NULL,
  stored INTEGER NOT NULL,
  duplicates INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  replica TEXT NOT NULL
);
-- The dashboard's telemetry chart reads the last hour of batches on every update.
CREATE INDEX IF NOT EXISTS batches_received ON batches (received_at);
CREATE TABLE IF NOT EXISTS rejected (
  id INTEGER PRIMARY KEY,
  device_id TEXT,
  topic TEXT NOT NULL,
  reason TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS drift (
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  report_json TEXT NOT NULL,
  UNIQUE (device_id, seq)
);
CREATE TABLE IF NOT EXISTS commands (
  id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL,
  name TEXT,
  args_json TEXT,
  sent_at INTEGER,
  ok INTEGER,
  reply_json TEXT,
  replied_at INTEGER
);
CREATE TABLE IF NOT EXISTS artifacts (
  sha256 TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  size INTEGER NOT NULL,
  chunk_size INTEGER NOT NULL,
  chunks_json TEXT NOT NULL,
  signature TEXT,
  published_at INTEGER NOT NULL,
  UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS chunks (
  sha256 TEXT NOT NULL,
  idx INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (sha256, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS desired (
  target TEXT PRIMARY KEY,
  doc_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
`;

export class FleetStore {
  readonly db: Database.Database;
  readonly file: string;
  readonly #insertRecord: Database.Statement;
  readonly #insertBatch: Database.Statement;
  readonly #insertDrift: Database.Statement;
  readonly #getChunk: Database.Statement;

  constructor(file: string) {
    this.file = file;
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    const had = new Set((this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    this.db.exec(SCHEMA);
    // Databases written before device_models/device_groups existed: filled once from the stored documents.
    if (had.has('devices') && (!had.has('device_models') || !had.has('device_groups'))) this.#backfillDeviceIndex();
    // Databases written before status_at existed: the column is added, empty until the next status.
    const cols = this.db.prepare('PRAGMA table_info(devices)').all() as { name: string }[];
    if (!cols.some((c) => c.name === 'status_at')) this.db.exec('ALTER TABLE devices ADD COLUMN status_at INTEGER');
    // Databases written before field accuracy was reported: empty until the device's next report.
    const modelCols = this.db.prepare('PRAGMA table_info(device_models)').all() as { name: string }[];
    if (!modelCols.some((c) => c.name === 'field_json')) this.db.exec('ALTER TABLE device_models ADD COLUMN field_json TEXT');
    this.#insertRecord = this.db.prepare('INSERT OR IGNORE INTO telemetry (device_id, stream, seq, ts, payload_json, received_at) VALUES (?, ?, ?, ?, ?, ?)');
    this.#insertBatch = this.db.prepare('INSERT INTO batches (device_id, stream, first_seq, last_seq, records, stored, duplicates, received_at, replica) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.#insertDrift = this.db.prepare('INSERT OR IGNORE INTO drift (device_id, seq, ts, report_json) VALUES (?, ?, ?, ?)');
    this.#getChunk = this.db.prepare('SELECT data FROM chunks WHERE sha256 = ? AND idx = ?');
  }

  close(): void {
    this.db.close();
  }

  #backfillDeviceIndex(): void {
    this.db.transaction(() => {
      const rows = this.db.prepare('SELECT device_id, groups_json, reported_json FROM devices').all() as { device_id: string; groups_json: string; reported_json: string | null }[];
      for (const r of rows) {
        this.#setGroups(r.device_id, parseStored<unknown>(r.groups_json, []));
        this.#setModels(r.device_id, storedDocument('reported', r.reported_json) ?? null);
      }
    })();
  }

  #setGroups(deviceId: string, groups: unknown): void {
    this.db.prepare('DELETE FROM device_groups WHERE device_id = ?').run(deviceId);
    if (!Array.isArray(groups)) return;
    const ins = this.db.prepare('INSERT OR IGNORE INTO device_groups (grp, device_id) VALUES (?, ?)');
    for (const g of groups) if (typeof g === 'string') ins.run(g, deviceId);
  }

  #setModels(deviceId: string, reported: unknown): void {
    this.db.prepare('DELETE FROM device_models WHERE device_id = ?').run(deviceId);
    // A version named twice keeps its first entry (the one a reader of the document finds first).
    const ins = this.db.prepare('INSERT OR IGNORE INTO device_models (device_id, model, version, state, pos, reason, shadow_json, field_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const json = (v: unknown): string | null => (v && typeof v === 'object' ? JSON.stringify(v) : null);
    reportedModels(reported).forEach((m, i) => {
      const { shadow, field } = m as { shadow?: unknown; field?: unknown };
      ins.run(deviceId, m.name, String(m.version), String(m.state), i, typeof m.reason === 'string' ? m.reason : null, json(shadow), json(field));
    });
  }

  /**
   * What each device's reported state says about one model (its first entry for it), from
   * device_models: the rollout driver's reports without reading every device's documents.
   */
  modelReports(model: string): { deviceId: string; version: string; state: string; reason?: string; shadow?: { agreement?: unknown; samples?: unknown }; field?: unknown }[] {
    const out: ReturnType<FleetStore['modelReports']> = [];
    let last = '';
    for (const r of this.db.prepare('SELECT device_id, version, state, reason, shadow_json, field_json FROM device_models WHERE model = ? ORDER BY device_id, pos').all(model) as
      { device_id: string; version: string; state: string; reason: string | null; shadow_json: string | null; field_json: string | null }[]) {
      if (r.device_id === last) continue;
      last = r.device_id;
      const rep: (typeof out)[number] = { deviceId: r.device_id, version: r.version, state: r.state };
      if (r.reason !== null) rep.reason = r.reason;
      const shadow = parseStored<unknown>(r.shadow_json, null);
      if (shadow && typeof shadow === 'object') rep.shadow = shadow as { agreement?: unknown; samples?: unknown };
      const field = parseStored<unknown>(r.field_json, null);
      if (field && typeof field === 'object') rep.field = field;
      out.push(rep);
    }
    return out;
  }

  // --- devices -------------------------------------------------------------------------

  upsertStatus(deviceId: string, status: Record<string, unknown> | null): void {
    const now = Date.now();
    const state = status ? String(status.state ?? 'unknown') : 'unknown';
    const groups = Array.isArray(status?.groups) ? JSON.stringify(status!.groups) : '[]';
    this.db.transaction(() => {
      this.#setGroups(deviceId, status?.groups);
      this.db.prepare(`INSERT INTO devices (device_id, state, status_json, groups_json, first_seen, last_seen, status_at) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET state = excluded.state, status_json = excluded.status_json, groups_json = excluded.groups_json,
        last_seen = MAX(last_seen, excluded.last_seen), status_at = excluded.status_at`)
      .run(deviceId, state, status ? JSON.stringify(status) : null, groups, now, now, now);
    })();
  }

  /** A message from the device arrived (any kind): it was alive then. A device not known yet is added as 'unknown'. */
  seen(deviceId: string, at = Date.now()): void {
    this.db.prepare(`INSERT INTO devices (device_id, state, first_seen, last_seen) VALUES (?, 'unknown', ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen)`).run(deviceId, at, at);
  }

  upsertReported(deviceId: string, report: Record<string, unknown>): void {
    const now = Date.now();
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO devices (device_id, state, first_seen, last_seen, reported_json, reported_at) VALUES (?, 'unknown', ?, ?, ?, ?)
        ON CONFLICT (device_id) DO UPDATE SET reported_json = excluded.reported_json, reported_at = excluded.reported_at`)
        .run(deviceId, now, now, JSON.stringify(report), now);
      this.#setModels(deviceId, report);
    })();
  }

  devices(): DeviceRow[] {
    return (this.db.prepare(`SELECT ${DEVICE_COLUMNS} FROM devices ORDER BY device_id`).all() as StoredDevice[]).map(deviceRow);
  }

  device(deviceId: string): DeviceRow | undefined {
    const r = this.db.prepare(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE device_id = ?`).get(deviceId) as StoredDevice | undefined;
    return r && deviceRow(r);
  }

  /** One page of devices, filtered and sorted in SQL (controller/device-query.ts). */
  devicePage(q: DeviceQuery): DevicePage {
    const { where, args, orderBy } = deviceQuerySql(q);
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM devices d ${where}`).get(...args) as { n: number }).n;
    const rows = this.db.prepare(`SELECT ${DEVICE_COLUMNS.split(', ').map((c) => `d.${c}`).join(', ')} FROM devices d ${where} ${orderBy} LIMIT ? OFFSET ?`)
      .all(...args, q.limit, q.offset) as StoredDevice[];
    return { total, offset: q.offset, limit: q.limit, rows: rows.map(deviceRow) };
  }

  /** Devices by state, by model@version they serve per their reported state, and those with a failed deploy. */
  deviceCounts(): DeviceCounts {
    const byState: Record<string, number> = {};
    let total = 0;
    for (const r of this.db.prepare('SELECT state, COUNT(*) AS n FROM devices GROUP BY state ORDER BY state').all() as { state: string; n: number }[]) {
      byState[r.state] = r.n;
      total += r.n;
    }
    const byVersion: Record<string, number> = {};
    for (const r of this.db.prepare(`SELECT model, version, COUNT(*) AS n FROM device_models WHERE state IN (${SERVING_STATES.map(() => '?').join(', ')})
      GROUP BY model, version ORDER BY model, version`).all(...SERVING_STATES) as { model: string; version: string; n: number }[]) {
      byVersion[`${r.model}@${r.version}`] = r.n;
    }
    const failedDeploys = (this.db.prepare("SELECT COUNT(DISTINCT device_id) AS n FROM device_models WHERE state IN ('failed', 'rolled_back')").get() as { n: number }).n;
    return { total, byState, byVersion, failedDeploys };
  }

  groupMembers(group: string): string[] {
    const rows = group === '*' || group === 'all'
      ? this.db.prepare('SELECT device_id FROM devices ORDER BY device_id').all()
      : this.db.prepare('SELECT device_id FROM device_groups WHERE grp = ? ORDER BY device_id').all(group);
    return (rows as { device_id: string }[]).map((r) => r.device_id);
  }

  // --- telemetry -----------------------------------------------------------------------

  /** Stores one decoded batch in one transaction; records seen before count as duplicates. */
  ingestBatch(deviceId: string, stream: string, records: { seq: number; ts: number; payload: unknown }[], replica = ''): IngestResult {
    const now = Date.now();
    return this.db.transaction(() => {
      let stored = 0;
      const storedSeqs: number[] = [];
      for (const r of records) {
        const res = this.#insertRecord.run(deviceId, stream, r.seq, r.ts, JSON.stringify(r.payload ?? null), now);
        if (res.changes > 0) {
          stored++;
          storedSeqs.push(r.seq);
          if (stream === 'drift') this.#insertDrift.run(deviceId, r.seq, r.ts, JSON.stringify(r.payload ?? null));
        }
      }
      const first = records[0]?.seq ?? 0;
      const last = records[records.length - 1]?.seq ?? 0;
      this.#insertBatch.run(deviceId, stream, first, last, records.length, stored, records.length - stored, now, replica);
      return { records: records.length, stored, duplicates: records.length - stored, storedSeqs };
    })();
  }

  reject(deviceId: string | undefined, topic: string, reason: string, bytes: number): void {
    this.db.prepare('INSERT INTO rejected (device_id, topic, reason, bytes, received_at) VALUES (?, ?, ?, ?, ?)').run(deviceId ?? null, topic, reason, bytes, Date.now());
  }

  rejected(): { deviceId: string | null; topic: string; reason: string; bytes: number }[] {
    return (this.db.prepare('SELECT device_id, topic, reason, bytes FROM rejected ORDER BY id').all() as { device_id: string | null; topic: string; reason: string; bytes: number }[])
      .map((r) => ({ deviceId: r.device_id, topic: r.topic, reason: r.reason, bytes: r.bytes }));
  }

  telemetry(deviceId: string, opts: { stream?: string; limit?: number; afterSeq?: number } = {}): TelemetryRow[] {
    const where = ['device_id = ?'];
    const args: unknown[] = [deviceId];
    if (opts.stream) { where.push('stream = ?'); args.push(opts.stream); }
    if (opts.afterSeq !== undefined) { where.push('seq > ?'); args.push(opts.afterSeq); }
    const limit = opts.limit ?? -1;
    const rows = this.db.prepare(`SELECT device_id, stream, seq, ts, payload_json, received_at FROM telemetry WHERE ${where.join(' AND ')} ORDER BY stream, seq LIMIT ?`)
      .all(...args, limit) as { device_id: string; stream: string; seq: number; ts: number; payload_json: string; received_at: number }[];
    return rows.map((r) => ({ deviceId: r.device_id, stream: r.stream, seq: r.seq, ts: r.ts, payload: parseStored<unknown>(r.payload_json, null), receivedAt: r.received_at }));
  }

  /** Per device and stream: records stored, duplicates received, batches, highest seq. */
  telemetrySummary(deviceId?: string): { deviceId: string; stream: string; records: number; duplicates: number; batches: number; lastSeq: number }[] {
    const rows = this.db.prepare(`SELECT device_id, stream, SUM(stored) AS records, SUM(duplicates) AS duplicates, COUNT(*) AS batches, MAX(last_seq) AS last_seq
      FROM batches ${deviceId ? 'WHERE device_id = ?' : ''} GROUP BY device_id, stream ORDER BY device_id, stream`).all(...(deviceId ? [deviceId] : [])) as
      { device_id: string; stream: string; records: number; duplicates: number; batches: number; last_seq: number }[];
    return rows.map((r) => ({ deviceId: r.device_id, stream: r.stream, records: r.records, duplicates: r.duplicates, batches: r.batches, lastSeq: r.last_seq }));
  }

  batches(): { deviceId: string; stream: string; firstSeq: number; lastSeq: number; records: number; stored: number; duplicates: number; replica: string }[] {
    return (this.db.prepare('SELECT * FROM batches ORDER BY id').all() as Record<string, unknown>[]).map((r) => ({
      deviceId: r.device_id as string, stream: r.stream as string, firstSeq: r.first_seq as number, lastSeq: r.last_seq as number,
      records: r.records as number, stored: r.stored as number, duplicates: r.duplicates as number, replica: r.replica as string,
    }));
  }

  /** The newest drift reports; a stored row that is not a drift report (older versions stored anything) is skipped. */
  driftReports(limit = 100): { deviceId: string; seq: number; ts: number; report: DriftReportDoc }[] {
    const out: { deviceId: string; seq: number; ts: number; report: DriftReportDoc }[] = [];
    for (const r of this.db.prepare('SELECT device_id, seq, ts, report_json FROM drift ORDER BY ts DESC, id DESC LIMIT ?').all(limit) as
      { device_id: string; seq: number; ts: number; report_json: string }[]) {
      const report = storedDocument('drift', r.report_json);
      if (report) out.push({ deviceId: r.device_id, seq: r.seq, ts: r.ts, report });
    }
    return out;
  }

  // --- commands ------------------------------------------------------------------------

  commandSent(id: string, deviceId: string, name: string, args: unknown): void {
    this.db.prepare(`INSERT INTO commands (id, device_id, name, args_json, sent_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, args_json = excluded.args_json, sent_at = excluded.sent_at`)
      .run(id, deviceId, name, JSON.stringify(args ?? {}), Date.now());
  }

  commandReplied(id: string, deviceId: string, reply: { ok?: unknown }): void {
    this.db.prepare(`INSERT INTO commands (id, device_id, ok, reply_json, replied_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET ok = excluded.ok, reply_json = excluded.reply_json, replied_at = excluded.replied_at`)
      .run(id, deviceId, reply.ok ? 1 : 0, JSON.stringify(reply), Date.now());
  }

  commands(deviceId?: string): { id: string; deviceId: string; name: string | null; ok: boolean | null; reply: unknown }[] {
    return (this.db.prepare(`SELECT id, device_id, name, ok, reply_json FROM commands ${deviceId ? 'WHERE device_id = ?' : ''} ORDER BY COALESCE(sent_at, replied_at)`)
      .all(...(deviceId ? [deviceId] : [])) as { id: string; device_id: string; name: string | null; ok: number | null; reply_json: string | null }[])
      .map((r) => ({ id: r.id, deviceId: r.device_id, name: r.name, ok: r.ok === null ? null : r.ok === 1, reply: parseStored<unknown>(r.reply_json, null) }));
  }

  // --- artifacts -----------------------------------------------------------------------

  putArtifact(info: Omit<ArtifactInfo, 'publishedAt'>, chunk: (i: number) => Buffer): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM chunks WHERE sha256 = ?').run(info.sha256);
      this.db.prepare('DELETE FROM artifacts WHERE sha256 = ? OR (name = ? AND version = ?)').run(info.sha256, info.name, info.version);
      this.db.prepare('INSERT INTO artifacts (sha256, name, version, size, chunk_size, chunks_json, signature, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(info.sha256, info.name, info.version, info.size, info.chunkSize, JSON.stringify(info.chunks), info.signature, Date.now());
      const ins = this.db.prepare('INSERT INTO chunks (sha256, idx, data) VALUES (?, ?, ?)');
      for (let i = 0; i < info.chunks.length; i++) ins.run(info.sha256, i, chunk(i));
    })();
  }

  artifact(key: { sha256: string } | { name: string; version: string }): ArtifactInfo | undefined {
    const row = ('sha256' in key
      ? this.db.prepare('SELECT * FROM artifacts WHERE sha256 = ?').get(key.sha256)
      : this.db.prepare('SELECT * FROM artifacts WHERE name = ? AND version = ?').get(key.name, key.version)) as Record<string, unknown> | undefined;
    if (!row) return undefined;
    return {
      sha256: row.sha256 as string, name: row.name as string, version: row.version as string, size: row.size as number,
      chunkSize: row.chunk_size as number, chunks: parseStored<string[]>(row.chunks_json as string, []),
      signature: (row.signature as string | null) ?? null, publishedAt: new Date(row.published_at as number).toISOString(),
    };
  }

  artifacts(): ArtifactInfo[] {
    return (this.db.prepare('SELECT sha256 FROM artifacts ORDER BY name, published_at').all() as { sha256: string }[]).map((r) => this.artifact(r)!);
  }

  chunk(sha256: string, index: number): Buffer | undefined {
    return (this.#getChunk.get(sha256, index) as { data: Buffer } | undefined)?.data;
  }

  // --- desired state -------------------------------------------------------------------

  desired(target: string): { v: 1; models: Record<string, unknown>[] } | undefined {
    const row = this.db.prepare('SELECT doc_json FROM desired WHERE target = ?').get(target) as { doc_json: string } | undefined;
    const doc = parseStored<{ v: 1; models?: unknown } | null>(row?.doc_json, null);
    return doc && Array.isArray(doc.models) ? doc as { v: 1; models: Record<string, unknown>[] } : undefined;
  }

  setDesired(target: string, doc: object): void {
    this.db.prepare(`INSERT INTO desired (target, doc_json, updated_at) VALUES (?, ?, ?)
      ON CONFLICT (target) DO UPDATE SET doc_json = excluded.doc_json, updated_at = excluded.updated_at`).run(target, JSON.stringify(doc), Date.now());
  }
}
