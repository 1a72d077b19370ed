// The controller's database as the controller uses it: one async interface with two
// implementations, SQLite (the embedded default: controller/store/sqlite.ts wraps the
// synchronous FleetStore) and PostgreSQL (controller/store/postgres.ts, for replicas and large
// fleets). test/fleet-store-contract.test.ts runs the same cases against both.
import type { ArtifactInfo, DeviceRow, IngestResult, TelemetryRow } from '../store.js';
import type { DriftReportDoc } from '../documents.js';
import type { Assignment } from '../rollout/store.js';
import type { Rollout, RolloutState } from '../rollout/plan.js';

export type { ArtifactInfo, DeviceRow, IngestResult, TelemetryRow };

// The device list's query, page and counts (the dashboard at 10,000 devices): one definition,
// with the HTTP/CLI parameter parser, in controller/device-query.ts.
import type { DeviceCounts, DevicePage, DeviceQuery } from '../device-query.js';
export type { DeviceCounts, DevicePage, DeviceQuery };

import type { StreamRecordsQuery } from './stream-records.js';
export type { StreamRecordsQuery };

import type { LearningCountRow, TelemetryVolumeRow } from './fleet-activity.js';
export type { LearningCountRow, TelemetryVolumeRow };

export interface TelemetryRecord {
  seq: number;
  ts: number;
  payload: unknown;
}

// A type, not an interface: rows go to table() as Record<string, unknown>.
export type TelemetrySummaryRow = {
  deviceId: string;
  stream: string;
  records: number;
  duplicates: number;
  batches: number;
  lastSeq: number;
};

export interface BatchRow {
  deviceId: string;
  stream: string;
  firstSeq: number;
  lastSeq: number;
  records: number;
  stored: number;
  duplicates: number;
  replica: string;
}

export interface CommandRow {
  id: string;
  deviceId: string;
  name: string | null;
  ok: boolean | null;
  reply: unknown;
}

export interface StoredDriftReport {
  deviceId: string;
  seq: number;
  ts: number;
  report: DriftReportDoc;
}

export type DesiredDoc = { v: 1; models: Record<string, unknown>[] };

/** Rollout plans and their device assignments (controller/rollout/store.ts on SQLite). */
export interface RolloutRecords {
  create(r: Rollout): Promise<void>;
  get(id: string): Promise<Rollout | undefined>;
  list(): Promise<Rollout[]>;
  running(): Promise<Rollout[]>;
  setStage(id: string, stageIndex: number, at: number): Promise<void>;
  setState(id: string, state: RolloutState, reason?: string, evidence?: unknown): Promise<void>;
  assign(id: string, a: Assignment): Promise<void>;
  assignments(id: string): Promise<Assignment[]>;
  recordOutcome(id: string, deviceId: string, outcome: { state: string; reason?: string; at: number }): Promise<void>;
  event(id: string, kind: string, detail: unknown): Promise<void>;
  events(id: string): Promise<{ at: number; kind: string; detail: unknown }[]>;
  /**
   * Takes (or renews) the lease on a rollout for `owner` for ttlMs: true when `owner` holds it now.
   * One replica drives a rollout at a time; a replica that dies stops renewing and another
   * takes the rollout over once the lease has expired.
   */
  lease(id: string, owner: string, ttlMs: number): Promise<boolean>;
}

export interface ControllerStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Where it is, for logs: the file, or the URL without its password. */
  readonly location: string;
  readonly rollouts: RolloutRecords;
  /** Writes what is buffered (coalesced last-seen and status) and closes. */
  close(): Promise<void>;
  /** Writes the coalesced device writes now (reads do this first). */
  flush(): Promise<void>;

  // devices
  upsertStatus(deviceId: string, status: Record<string, unknown> | null): Promise<void>;
  /** A message from the device arrived: coalesced, written with the next flush. */
  seen(deviceId: string, at?: number): void;
  upsertReported(deviceId: string, report: Record<string, unknown>): Promise<void>;
  devices(): Promise<DeviceRow[]>;
  device(deviceId: string): Promise<DeviceRow | undefined>;
  groupMembers(group: string): Promise<string[]>;
  devicePage(q: DeviceQuery): Promise<DevicePage>;
  deviceCounts(): Promise<DeviceCounts>;

  // telemetry
  /** Stores one batch in one transaction; records seen before (device, stream, seq) are duplicates. Resolves after the commit. */
  ingestBatch(deviceId: string, stream: string, records: TelemetryRecord[], replica?: string): Promise<IngestResult>;
  reject(deviceId: string | undefined, topic: string, reason: string, bytes: number): Promise<void>;
  rejected(): Promise<{ deviceId: string | null; topic: string; reason: string; bytes: number }[]>;
  telemetry(deviceId: string, opts?: { stream?: string; limit?: number; afterSeq?: number }): Promise<TelemetryRow[]>;
  telemetrySummary(deviceId?: string): Promise<TelemetrySummaryRow[]>;
  batches(): Promise<BatchRow[]>;
  driftReports(limit?: number): Promise<StoredDriftReport[]>;
  /** Every stored record of these streams across devices, by device, stream and seq (datasets: controller/dataset.ts). */
  streamRecords(streams: string[], q?: StreamRecordsQuery): Promise<TelemetryRow[]>;
  /** Records stored per stream and minute since `since` (ms), oldest minute first (the dashboard's chart). */
  telemetryVolume(since: number): Promise<TelemetryVolumeRow[]>;
  /** Examples, and labels by label, per model version (the dashboard's learning table). */
  learningCounts(): Promise<LearningCountRow[]>;

  // commands
  commandSent(id: string, deviceId: string, name: string, args: unknown): Promise<void>;
  commandReplied(id: string, deviceId: string, reply: { ok?: unknown }): Promise<void>;
  commands(deviceId?: string): Promise<CommandRow[]>;

  // artifacts
  putArtifact(info: Omit<ArtifactInfo, 'publishedAt'>, chunk: (i: number) => Buffer): Promise<void>;
  artifact(key: { sha256: string } | { name: string; version: string }): Promise<ArtifactInfo | undefined>;
  artifacts(): Promise<ArtifactInfo[]>;
  chunk(sha256: string, index: number): Promise<Buffer | undefined>;

  // desired state
  desired(target: string): Promise<DesiredDoc | undefined>;
  setDesired(target: string, doc: object): Promise<void>;
}
