// The public shapes of the telemetry buffer. The fleet link codes against these; keep them stable.
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';

export type TelemetryConfig = Config['telemetry'];
export type Durability = 'normal' | 'full';

export interface RecordOptions {
  /** 0..9; lowest is evicted first. Default: the stream's policy. */
  priority?: number;
  /** Evicted (counted as reason "ttl") when still queued this many seconds after record(). */
  ttlSeconds?: number;
  /** 'full' fsyncs the commit holding this record. Default: the stream's policy. */
  durable?: Durability;
}

/** Options for use outside the agent (tests, benchmarks, tools). */
export interface TelemetryBufferOptions {
  /** Directory holding the database (file name from config.file)… */
  dir?: string;
  /** …or the database file itself. */
  file?: string;
  config: TelemetryConfig;
  log?: Logger;
  metrics?: Registry;
  /**
   * Hard cap of the file (PRAGMA max_page_count), default config.maxBytes. Tests set it
   * below the eviction high-water mark to make SQLite report SQLITE_FULL for real.
   */
  pageCapBytes?: number;
  /**
   * Largest encoded message the records are sent in (the agent passes mqtt.batchMaxBytes):
   * record() refuses a record that could not fit one even alone. Default: not checked.
   */
  messageLimit?: number;
}

export interface LeasedRecord {
  seq: number;
  stream: string;
  /** Wall-clock time of record() (ms since the epoch). */
  ts: number;
  payload: unknown;
}

/** Records handed out for one message. ack() deletes them; nack() or a timeout returns them. */
export interface Lease {
  id: string;
  stream: string;
  records: LeasedRecord[];
  /** The encoded message (encodeBatch of these records): publish exactly these bytes. */
  payload: Buffer;
  count: number;
  /** Sequence numbers of the first and last record (inclusive). */
  firstSeq: number;
  lastSeq: number;
  /** When the lease lapses and its records become leasable again (ms since the epoch). */
  expiresAt: number;
}

export interface LeaseOptions {
  /** Only this stream; otherwise the highest-priority stream that has records and budget. */
  stream?: string;
  /**
   * The rate budget: at most this many records in the message (the drain's token bucket).
   * Unlike maxBytes, the message limit, it never makes a record poison. Default: no limit.
   */
  maxRecords?: number;
}

export type EvictReason = 'budget' | 'age' | 'ttl' | 'full';

export interface StreamStats {
  /** Records queued (on disk and waiting for the next commit). */
  depth: number;
  /** Bytes those records account for on disk (payload plus row overhead estimate). */
  bytes: number;
  /** Age of the oldest queued record (s), 0 when empty. */
  oldestAgeSeconds: number;
  /** Whether a lease of this stream is out. */
  leased: boolean;
  accepted: number;
  delivered: number;
  evicted: number;
  evictedBy: Record<EvictReason, number>;
  quarantined: number;
  /** Records handed out again after a lease lapsed or was nacked (this process lifetime). */
  duplicates: number;
  /** Encoded bytes sent today (UTC) and what the day's budget still allows (null = unlimited). */
  sentBytesToday: number;
  budgetLeftToday: number | null;
}

export interface TelemetryStats {
  open: boolean;
  /** Why the disk refuses writes right now (records then wait in memory), or null. */
  failing: string | null;
  file: string;
  /** Database file size (bytes) and WAL size (bytes). */
  fileBytes: number;
  walBytes: number;
  maxBytes: number;
  /** The budget in force: maxBytes, or less when the filesystem has less room (statfs). */
  capacityBytes: number;
  /** The filesystem (not the budget) refused a write: new records are refused with 507. */
  diskFull: boolean;
  /** Highest sequence number handed out by record(), and the highest committed to disk. */
  lastSeq: number;
  committedSeq: number;
  pending: number;
  depth: number;
  bytes: number;
  oldestAgeSeconds: number;
  accepted: number;
  delivered: number;
  evicted: number;
  quarantined: number;
  duplicates: number;
  /** Corrupt databases moved aside since this process started. */
  recoveries: number;
  streams: Record<string, StreamStats>;
}

export interface QuarantinedRecord {
  seq: number;
  stream: string;
  ts: number;
  reason: string;
  at: number;
  /** The stored JSON text of the payload. */
  payload: string;
}
