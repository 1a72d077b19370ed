// The embedded default: the synchronous SQLite FleetStore behind the async interface. Every
// call is done by the time its promise is made, so the order of writes is the order of calls,
// and callers that read `sync` directly (the tests, the rollout loop) see the same database.
import { FleetStore } from '../store.js';
import { RolloutStore } from '../rollout/store.js';
import { sqliteStreamRecords } from './stream-records.js';
import { sqliteLearningCounts, sqliteTelemetryVolume } from './fleet-activity.js';
import type { ControllerStore, DeviceQuery, RolloutRecords } from './types.js';

/** Runs a synchronous call as a promise: a throw becomes a rejection. */
function later<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

function rolloutRecords(rs: RolloutStore, store: FleetStore): RolloutRecords {
  store.db.exec('CREATE TABLE IF NOT EXISTS rollout_leases (rollout_id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL)');
  const take = store.db.prepare(`INSERT INTO rollout_leases (rollout_id, owner, expires_at) VALUES (?, ?, ?)
    ON CONFLICT (rollout_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE rollout_leases.owner = excluded.owner OR rollout_leases.expires_at < ?`);
  return {
    create: (r) => later(() => rs.create(r)),
    get: (id) => later(() => rs.get(id)),
    list: () => later(() => rs.list()),
    running: () => later(() => rs.running()),
    setStage: (id, i, at) => later(() => rs.setStage(id, i, at)),
    setState: (id, s, reason, evidence) => later(() => rs.setState(id, s, reason, evidence)),
    assign: (id, a) => later(() => rs.assign(id, a)),
    assignments: (id) => later(() => rs.assignments(id)),
    recordOutcome: (id, d, o) => later(() => rs.recordOutcome(id, d, o)),
    event: (id, k, d) => later(() => rs.event(id, k, d)),
    events: (id) => later(() => rs.events(id)),
    lease: (id, owner, ttlMs) => later(() => {
      const now = Date.now();
      return take.run(id, owner, now + ttlMs, now).changes > 0;
    }),
  };
}

export class SqliteControllerStore implements ControllerStore {
  readonly kind = 'sqlite' as const;
  readonly rollouts: RolloutRecords;

  constructor(readonly sync: FleetStore) {
    this.rollouts = rolloutRecords(new RolloutStore(sync.db), sync);
  }

  static open(file: string): SqliteControllerStore {
    return new SqliteControllerStore(new FleetStore(file));
  }

  get location(): string {
    return this.sync.file;
  }

  close = () => later(() => this.sync.close());
  flush = () => Promise.resolve();
  upsertStatus = (d: string, s: Record<string, unknown> | null) => later(() => this.sync.upsertStatus(d, s));
  seen = (d: string, at?: number): void => this.sync.seen(d, at);
  upsertReported = (d: string, r: Record<string, unknown>) => later(() => this.sync.upsertReported(d, r));
  devices = () => later(() => this.sync.devices());
  device = (d: string) => later(() => this.sync.device(d));
  groupMembers = (g: string) => later(() => this.sync.groupMembers(g));
  devicePage = (q: DeviceQuery) => later(() => this.sync.devicePage(q));
  deviceCounts = () => later(() => this.sync.deviceCounts());
  ingestBatch: ControllerStore['ingestBatch'] = (d, s, r, replica) => later(() => this.sync.ingestBatch(d, s, r, replica));
  reject: ControllerStore['reject'] = (d, t, r, b) => later(() => this.sync.reject(d, t, r, b));
  rejected = () => later(() => this.sync.rejected());
  telemetry: ControllerStore['telemetry'] = (d, o) => later(() => this.sync.telemetry(d, o));
  telemetrySummary = (d?: string) => later(() => this.sync.telemetrySummary(d));
  batches = () => later(() => this.sync.batches());
  driftReports = (limit?: number) => later(() => this.sync.driftReports(limit));
  streamRecords: ControllerStore['streamRecords'] = (streams, q) => later(() => sqliteStreamRecords(this.sync.db, streams, q));
  telemetryVolume = (since: number) => later(() => sqliteTelemetryVolume(this.sync.db, since));
  learningCounts = () => later(() => sqliteLearningCounts(this.sync.db));
  commandSent: ControllerStore['commandSent'] = (id, d, n, a) => later(() => this.sync.commandSent(id, d, n, a));
  commandReplied: ControllerStore['commandReplied'] = (id, d, r) => later(() => this.sync.commandReplied(id, d, r));
  commands = (d?: string) => later(() => this.sync.commands(d));
  putArtifact: ControllerStore['putArtifact'] = (info, chunk) => later(() => this.sync.putArtifact(info, chunk));
  artifact: ControllerStore['artifact'] = (key) => later(() => this.sync.artifact(key));
  artifacts = () => later(() => this.sync.artifacts());
  chunk = (sha: string, i: number) => later(() => this.sync.chunk(sha, i));
  desired = (t: string) => later(() => this.sync.desired(t));
  setDesired = (t: string, doc: object) => later(() => this.sync.setDesired(t, doc));
}
