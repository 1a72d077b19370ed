// TelemetryBuffer: the durable, bounded store-and-forward queue between everything that
// records telemetry and the fleet link that forwards it. One SQLite file in WAL mode, one
// writer (this object), group commit. docs/telemetry.md explains the guarantees.
//
// When is a record committed? record() returns its sequence number at once; the record waits
// in memory (at most commitIntervalMs, or until commitMaxRecords are waiting) and is then
// written in one transaction with its neighbours. It counts as committed when that COMMIT
// returned: committedSeq >= seq, whenCommitted(seq) resolved, or the 'commit' event reported
// a seq at or above it. From then on a crash of the process cannot lose it; a power cut can
// lose it only with synchronous=normal (see docs/telemetry.md).
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync, statfsSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { AgentContext, Component } from '../component.js';
import { Errors, describe } from '../errors.js';
import type { Logger } from '../log.js';
import { SendBudget, utcDay } from './budget.js';
import { encodeRawBatch, rawLineBytes } from '../../protocol/telemetry-batch.js';
import { packMessage, rawLineCap } from './packer.js';
import { registerTelemetryMetrics } from './metrics.js';
import { STREAM_NAME } from '../../protocol/names.js';
import { streamPolicy, type StreamPolicy } from './policy.js';
import { isCorruption, isDiskFull, moveAside, openStore, salvage, setMaxBytes, sizeWal, type DB } from './store.js';
import type {
  EvictReason, Lease, LeaseOptions, QuarantinedRecord, RecordOptions, StreamStats,
  TelemetryBufferOptions, TelemetryConfig, TelemetryStats,
} from './types.js';

/** Bytes a row costs beyond its payload: the row header, two index entries, page slack. */
const ROW_OVERHEAD = 64;
/** Budget eviction starts above this share of maxBytes and goes down to LOW_WATER. */
const HIGH_WATER = 0.7;
const LOW_WATER = 0.6;
/** A batch larger than this is written in several transactions. */
const MAX_TXN_RECORDS = 10_000;
const MAINTENANCE_MS = 1000;
/**
 * Of the room on the filesystem (free space plus what the buffer's files hold) the buffer
 * takes this share at most: the WAL (a quarter of the budget plus one transaction), the
 * checkpoint and the agent's other files need the rest.
 */
const DISK_SHARE = 0.4;
/** The budget never goes below this, however little room the disk has (the schema's minimum). */
const MIN_CAPACITY = 64 * 1024;
const SWEEP_EVERY_MS = 5000;

interface Pending {
  seq: number;
  stream: string;
  priority: number;
  ts: number;
  expires: number | null;
  bytes: number;
  json: string;
  full: boolean;
  /** The next pending record belongs to the same batch (recordBatch): commit them together. */
  withNext: boolean;
}

/** A record that passed record()'s checks, not yet given a sequence number. */
interface Checked {
  json: string;
  bytes: number;
  priority: number;
  opts: RecordOptions;
}

interface LiveLease {
  id: string;
  stream: string;
  first: number;
  last: number;
  count: number;
  expiresAt: number;
}

interface StreamState {
  policy: StreamPolicy;
  budget: SendBudget;
  depth: number;
  bytes: number;
  pendingDepth: number;
  pendingBytes: number;
  accepted: number;
  delivered: number;
  evictedBy: Record<EvictReason, number>;
  quarantined: number;
  duplicates: number;
  /** Highest seq of this stream ever handed out in a lease (to count re-sends). */
  sentUpTo: number;
  /** Encoded bytes the head of the stream needs from the send budget (after a refusal). */
  needBytes: number;
  /** Raw size / encoded size of this stream's last message (packs the next one). */
  compressRatio: number;
  lease?: LiveLease;
}

const EVICT_REASONS: EvictReason[] = ['budget', 'age', 'ttl', 'full'];

export class TelemetryBuffer extends EventEmitter implements Component {
  readonly name = 'telemetry';
  readonly file: string;
  readonly config: TelemetryConfig;
  readonly #log: Logger | undefined;
  readonly #pageCapBytes: number;
  /** Largest encoded message the link sends (mqtt.batchMaxBytes): a record that cannot fit one alone is refused. */
  readonly #messageLimit: number | undefined;

  #db: DB | undefined;
  #dbId = '';
  #stmts: ReturnType<typeof prepare> | undefined;
  #nextSeq = 1;
  #committedSeq = 0;
  /** Every record up to this seq is on stable storage (the WAL was fsynced after its commit). */
  #durableSeq = 0;
  #pending: Pending[] = [];
  #commitTimer: NodeJS.Timeout | undefined;
  #maintenance: NodeJS.Timeout | undefined;
  #lastSweep = 0;
  #streams = new Map<string, StreamState>();
  #leases = new Map<string, LiveLease>();
  /** Lapsed or nacked leases, kept so a late PUBACK still deletes what it confirmed. */
  #lapsed = new Map<string, LiveLease>();
  #leaseCounter = 0;
  #leasePrefix = randomBytes(3).toString('hex');
  #waiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  #failing: string | undefined;
  #retryMs = 50;
  #retryTimer: NodeJS.Timeout | undefined;
  #recoveries = 0;
  #pageSize = 4096;
  #openError: string | undefined;
  #reopenTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The budget in force: config.maxBytes, or less when the filesystem has less room. */
  #capacity = 0;
  /** The last failure was the filesystem being full (not the file at its page cap). */
  #diskFull = false;
  #counters = { accepted: 0, delivered: 0, evicted: 0, quarantined: 0, duplicates: 0 };

  constructor(ctxOrOptions: AgentContext | TelemetryBufferOptions) {
    super();
    if ('http' in ctxOrOptions) {
      const ctx = ctxOrOptions;
      this.config = ctx.config.telemetry;
      this.file = path.resolve(ctx.config.dataDir, ctx.config.telemetry.file);
      this.#log = ctx.log.child({ component: 'telemetry' });
      registerTelemetryMetrics(ctx.metrics, this);
    } else {
      const o = ctxOrOptions;
      this.config = o.config;
      if (o.file) this.file = path.resolve(o.file);
      else if (o.dir) this.file = path.resolve(o.dir, o.config.file ?? 'telemetry.db');
      else throw new Error('TelemetryBuffer needs dir or file');
      this.#log = o.log?.child({ component: 'telemetry' });
      if (o.metrics) registerTelemetryMetrics(o.metrics, this);
    }
    this.#pageCapBytes = ('pageCapBytes' in ctxOrOptions ? ctxOrOptions.pageCapBytes : undefined) ?? this.config.maxBytes;
    this.#messageLimit = 'http' in ctxOrOptions ? ctxOrOptions.config.mqtt.batchMaxBytes : ctxOrOptions.messageLimit;
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Opens the database. In the agent a file that cannot be opened does not stop the daemon:
   * the buffer reports "storage not open" on /readyz and retries with backoff (a corrupt file
   * is moved aside at once instead).
   */
  async start(): Promise<void> {
    try {
      this.startSync();
    } catch (err) {
      this.#openError = describe(err);
      this.#log?.error({ err: this.#openError, file: this.file }, 'cannot open the telemetry database; retrying');
      this.#scheduleReopen(1000);
    }
  }

  /** Opens the database or throws (child processes, benchmarks, tools). */
  startSync(): void {
    if (this.#db) return;
    this.#stopped = false;
    mkdirSync(path.dirname(this.file), { recursive: true });
    this.#open();
    this.#openError = undefined;
    this.#maintenance = setInterval(() => this.#maintain(), MAINTENANCE_MS);
    this.#maintenance.unref();
  }

  #scheduleReopen(ms: number): void {
    this.#reopenTimer = setTimeout(() => {
      this.#reopenTimer = undefined;
      if (this.#stopped || this.#db) return;
      try {
        this.startSync();
        this.#log?.info({ file: this.file }, 'telemetry database open after retry');
      } catch (err) {
        this.#openError = describe(err);
        this.#scheduleReopen(Math.min(ms * 2, 30_000));
      }
    }, ms);
    this.#reopenTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopSync();
  }

  stopSync(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#maintenance);
    clearTimeout(this.#commitTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#reopenTimer);
    this.#commitTimer = this.#retryTimer = this.#maintenance = this.#reopenTimer = undefined;
    if (this.#db) {
      this.#commit();
      if (this.#pending.length) {
        this.#log?.error({ pending: this.#pending.length, why: this.#failing }, 'telemetry records could not be written before stop');
      }
      try {
        this.#db.pragma('wal_checkpoint(TRUNCATE)');
      } catch (err) {
        this.#log?.warn({ err: describe(err) }, 'checkpoint at stop failed');
      }
      this.#db.close();
    }
    this.#db = undefined;
    this.#stmts = undefined;
    this.#leases.clear();
    this.#lapsed.clear();
    for (const s of this.#streams.values()) s.lease = undefined;
    for (const w of this.#waiters.splice(0)) w.reject(Errors.TELEMETRY_CLOSED());
  }

  notReady(): string | undefined {
    if (!this.#db) return this.#openError ? `storage not open: ${this.#openError}` : 'storage not open';
    if (this.#failing) return `storage refusing writes: ${this.#failing}`;
    return undefined;
  }

  status(): unknown {
    const s = this.stats();
    const { streams, ...rest } = s;
    const warning = this.#failing ? `storage refusing writes: ${this.#failing}` : evictionWarning(s.accepted, s.evicted, s.capacityBytes);
    return { ...rest, warning, streams: Object.fromEntries(Object.entries(streams).map(([k, v]) => [k, { depth: v.depth, bytes: v.bytes, oldestAgeSeconds: v.oldestAgeSeconds }])) };
  }

  get open(): boolean {
    return this.#db !== undefined;
  }

  /** Highest sequence number whose record is committed (every lower one is too). */
  get committedSeq(): number {
    return this.#committedSeq;
  }

  /** Highest sequence number handed out by record(). */
  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  /** Id of the current database (the batch header's "db"); changes only after corruption. */
  get dbId(): string {
    return this.#dbId;
  }

  // ---------------------------------------------------------------- recording

  /**
   * Accepts one record and returns its sequence number. Throws EDGE_TELEMETRY_INVALID for a
   * bad stream name, options or a payload JSON cannot represent (nothing is stored then).
   */
  record(stream: string, payload: unknown, opts: RecordOptions = {}): number {
    if (!this.#db) throw Errors.TELEMETRY_CLOSED();
    const c = this.#check(stream, payload, opts);
    if (typeof c === 'string') throw Errors.TELEMETRY_INVALID(c);
    this.#admit(1);
    const seq = this.#enqueue(this.#stream(stream), stream, c.json, c.bytes, c.priority, c.opts);
    this.#scheduleCommit();
    return seq;
  }

  /**
   * Accepts several records of one stream, all or none: every entry is checked (stream,
   * options, encoded size) and the buffer's admission is decided for the whole batch before
   * any is recorded, and the batch is committed in one transaction. So a client whose batch
   * was refused can send it again without storing any of it twice. Returns the sequence
   * numbers in order; throws as record() does, naming the entry ("record 2: ...").
   */
  recordBatch(stream: string, entries: readonly { payload: unknown; opts?: RecordOptions }[]): number[] {
    if (!this.#db) throw Errors.TELEMETRY_CLOSED();
    if (entries.length === 0) return [];
    const checked: Checked[] = [];
    for (let i = 0; i < entries.length; i++) {
      const c = this.#check(stream, entries[i]!.payload, entries[i]!.opts ?? {});
      if (typeof c === 'string') {
        throw Errors.TELEMETRY_INVALID(entries.length === 1 ? c : `record ${i}: ${c}; nothing of the batch of ${entries.length} was stored`);
      }
      checked.push(c);
    }
    this.#admit(checked.length);
    const s = this.#stream(stream);
    const seqs = checked.map((c, i) => this.#enqueue(s, stream, c.json, c.bytes, c.priority, c.opts, i < checked.length - 1));
    this.#scheduleCommit();
    return seqs;
  }

  /** Whether n more records may wait in memory now; throws (nothing changed) when not. */
  #admit(n: number): void {
    // A full filesystem does not free itself within a retry: refuse at once, clearly, rather
    // than hold records in memory that cannot be written.
    if (this.#failing && this.#diskFull) throw Errors.TELEMETRY_DISK_FULL(this.#pending.length, this.#failing);
    if (this.#failing && this.#pending.length + n > this.config.maxPendingRecords) {
      throw Errors.TELEMETRY_BACKLOG(this.#pending.length, this.#failing);
    }
  }

  #scheduleCommit(): void {
    // While the disk refuses writes the retry timer (with backoff) commits, not every record.
    if (this.#failing) return;
    if (this.#pending.length >= this.config.commitMaxRecords) this.#commit();
    else this.#commitTimer ??= setTimeout(() => this.#commit(), this.config.commitIntervalMs);
  }

  /** What record() refuses as invalid (the problem, in words), checked without changing anything. */
  #check(stream: string, payload: unknown, opts: RecordOptions): Checked | string {
    if (typeof stream !== 'string' || !STREAM_NAME.test(stream)) {
      return `stream ${JSON.stringify(stream)} must match ${STREAM_NAME}`;
    }
    let json: string | undefined;
    try {
      json = JSON.stringify(payload);
    } catch (err) {
      return `payload of ${stream} cannot be encoded as JSON (${describe(err)})`;
    }
    if (json === undefined) return `payload of ${stream} must be a JSON value, got ${typeof payload}`;
    const bytes = Buffer.byteLength(json);
    const limit = this.#maxRecordBytes();
    if (bytes > limit) return `payload of ${stream} is ${bytes} bytes, the limit is ${limit}`;
    if (this.#messageLimit !== undefined) {
      const encoded = aloneEncodedBytes(stream, this.#dbId, json, bytes, this.#messageLimit);
      if (encoded > this.#messageLimit) {
        return `payload of ${stream} does not fit a telemetry message even alone: ${encoded} bytes encoded, mqtt.batchMaxBytes is ${this.#messageLimit}`;
      }
    }
    const priority = opts.priority ?? (this.#streams.get(stream)?.policy ?? streamPolicy(this.config, stream)).priority;
    if (!Number.isInteger(priority) || priority < 0 || priority > 9) return `priority must be an integer 0..9, got ${String(opts.priority)}`;
    if (opts.ttlSeconds !== undefined && !(typeof opts.ttlSeconds === 'number' && opts.ttlSeconds > 0)) {
      return `ttlSeconds must be a positive number, got ${String(opts.ttlSeconds)}`;
    }
    if (opts.durable !== undefined && opts.durable !== 'normal' && opts.durable !== 'full') {
      return `durable must be "normal" or "full", got ${String(opts.durable)}`;
    }
    return { json, bytes, priority, opts };
  }

  #enqueue(s: StreamState, stream: string, json: string, bytes: number, priority: number, opts: RecordOptions, withNext = false): number {
    const ts = Date.now();
    const seq = this.#nextSeq++;
    this.#pending.push({
      seq, stream, priority, ts, bytes, json, withNext,
      expires: opts.ttlSeconds ? ts + Math.round(opts.ttlSeconds * 1000) : null,
      full: (opts.durable ?? s.policy.durable) === 'full',
    });
    s.pendingDepth++;
    s.pendingBytes += bytes + ROW_OVERHEAD;
    s.accepted++;
    this.#counters.accepted++;
    return seq;
  }

  /** Commits everything recorded so far, now. */
  flushSync(): void {
    if (!this.#db) throw Errors.TELEMETRY_CLOSED();
    this.#commit();
    if (this.#pending.length) throw Errors.TELEMETRY_BACKLOG(this.#pending.length, this.#failing ?? 'commit failed');
  }

  async flush(): Promise<void> {
    this.flushSync();
  }

  /** Resolves once the record with this sequence number is committed. */
  whenCommitted(seq: number): Promise<void> {
    if (seq <= this.#committedSeq) return Promise.resolve();
    if (!this.#db) return Promise.reject(Errors.TELEMETRY_CLOSED());
    if (!Number.isSafeInteger(seq) || seq >= this.#nextSeq) {
      return Promise.reject(Errors.TELEMETRY_INVALID(`no record has sequence number ${seq} yet (last is ${this.#nextSeq - 1})`));
    }
    return new Promise((resolve, reject) => this.#waiters.push({ seq, resolve, reject }));
  }

  // ---------------------------------------------------------------- delivery

  /**
   * Hands out the oldest records of one stream, in sequence order, packed into one encoded
   * message of at most maxBytes, the message limit (mqtt.batchMaxBytes): a record whose
   * message alone would be larger is quarantined. opts.maxRecords is the rate budget: how
   * many records may go now; it never makes a record poison. One lease per stream is out at
   * a time, so a stream is delivered in order. Returns undefined when nothing is leasable now
   * (empty, leased, or over its send budget; retryAfterMs() says when budget frees up).
   */
  lease(maxBytes: number, opts: LeaseOptions = {}): Lease | undefined {
    if (!this.#db) throw Errors.TELEMETRY_CLOSED();
    if (!Number.isInteger(maxBytes) || maxBytes < 1024) throw Errors.TELEMETRY_INVALID(`lease maxBytes must be an integer >= 1024, got ${maxBytes}`);
    const maxRecords = opts.maxRecords ?? Infinity;
    if (!(maxRecords >= 1)) throw Errors.TELEMETRY_INVALID(`lease maxRecords must be at least 1, got ${String(opts.maxRecords)}`);
    if (this.#pending.length && !this.#failing) this.#commit();
    const now = Date.now();
    this.#lapseLeases(now);
    let candidates: string[];
    if (opts.stream !== undefined) {
      candidates = [opts.stream];
    } else {
      candidates = [...this.#streams.entries()]
        .filter(([, s]) => s.depth > 0 && !s.lease)
        .sort((a, b) => b[1].policy.priority - a[1].policy.priority)
        .map(([k]) => k);
    }
    for (const stream of candidates) {
      const s = this.#streams.get(stream);
      if (!s || s.depth === 0 || s.lease) continue;
      const l = this.#leaseStream(stream, s, maxBytes, Math.floor(maxRecords), now);
      if (l) return l;
    }
    return undefined;
  }

  /** Milliseconds until a stream that has records but no budget may send again (0 = now or nothing waits). */
  retryAfterMs(): number {
    const now = Date.now();
    let best = Infinity;
    for (const s of this.#streams.values()) {
      if (s.depth === 0 || s.lease) continue;
      best = Math.min(best, s.budget.waitMs(now, s.needBytes));
    }
    return best === Infinity ? 0 : best;
  }

  #leaseStream(stream: string, s: StreamState, messageLimit: number, maxRecords: number, now: number): Lease | undefined {
    const st = this.#stmts!;
    const budgetBytes = s.budget.available(now);
    if (budgetBytes <= 0) return undefined;
    const rows = (function* (it: IterableIterator<{ seq: number; ts: number; bytes: number; payload: string }>) {
      for (const r of it) yield { seq: r.seq, ts: r.ts, bytes: r.bytes, json: r.payload };
    })(st.head.iterate(stream) as IterableIterator<{ seq: number; ts: number; bytes: number; payload: string }>);
    const packing = packMessage({
      stream, db: this.#dbId, rows, messageLimit, compressRatio: s.compressRatio,
      budget: { records: maxRecords, bytes: budgetBytes, bytesFull: s.budget.full(now) },
    });
    // Stop reading: the statement is busy until its iterator is closed.
    rows.return(undefined);
    const { lines, payload, poison } = packing;
    if (poison.length) {
      this.#quarantineSeqs(poison, `larger than the message limit (${messageLimit} bytes) even in a message of its own`);
      this.#log?.warn({ stream, seqs: poison, messageLimit }, 'telemetry records too large for any message were quarantined');
    }
    s.needBytes = packing.needBytes;
    if (!payload) return undefined;
    this.#makeDurable(lines[lines.length - 1].seq);
    s.compressRatio = packing.compressRatio;
    const records: Lease['records'] = [];
    for (const l of lines) records.push({ seq: l.seq, stream, ts: l.ts, payload: JSON.parse(l.json) });
    const first = lines[0].seq;
    const last = lines[lines.length - 1].seq;
    if (first <= s.sentUpTo) {
      let dup = 0;
      for (const l of lines) if (l.seq <= s.sentUpTo) dup++;
      s.duplicates += dup;
      this.#counters.duplicates += dup;
    }
    s.sentUpTo = Math.max(s.sentUpTo, last);
    if (s.budget.limited) {
      s.budget.charge(payload.length, now);
      try {
        st.setCounter.run(stream, 'sent_today', s.budget.sentToday);
        st.setMeta.run(`budget_day:${stream}`, s.budget.day);
      } catch (err) {
        this.#log?.warn({ err: describe(err) }, 'could not persist the day budget');
      }
    }
    const id = `${this.#leasePrefix}-${++this.#leaseCounter}`;
    const live: LiveLease = { id, stream, first, last, count: lines.length, expiresAt: now + this.config.leaseTimeoutSeconds * 1000 };
    s.lease = live;
    this.#leases.set(id, live);
    return { id, stream, records, payload, count: lines.length, firstSeq: first, lastSeq: last, expiresAt: live.expiresAt };
  }

  /**
   * The broker confirmed delivery (PUBACK): deletes the lease's records. A lease that had
   * lapsed still deletes whatever of it is not out in a newer lease. Returns the number of
   * records deleted (0 for an unknown lease).
   */
  ack(leaseId: string): number {
    if (!this.#db) throw Errors.TELEMETRY_CLOSED();
    const live = this.#leases.get(leaseId);
    const l = live ?? this.#lapsed.get(leaseId);
    if (!l) return 0;
    this.#endLease(l);
    this.#lapsed.delete(leaseId);
    const s = this.#stream(l.stream);
    const first = l.first;
    let last = l.last;
    // A newer lease of the same stream owns its range; it will be acked (or re-sent) itself.
    if (!live && s.lease) {
      if (s.lease.first <= last) last = Math.min(last, s.lease.first - 1);
    }
    if (last < first) return 0;
    const deleted = this.#write(() => {
      const rows = this.#stmts!.rangeSize.get(l.stream, first, last) as { n: number; b: number | null };
      if (!rows.n) return 0;
      this.#stmts!.deleteRange.run(l.stream, first, last);
      this.#stmts!.addCounter.run(l.stream, 'delivered', rows.n);
      s.depth -= rows.n;
      s.bytes -= (rows.b ?? 0) + rows.n * ROW_OVERHEAD;
      s.delivered += rows.n;
      this.#counters.delivered += rows.n;
      return rows.n;
    });
    return deleted ?? 0;
  }

  /** Delivery failed: the lease's records go back to the head of their stream now. */
  nack(leaseId: string): void {
    const l = this.#leases.get(leaseId);
    if (!l) return;
    this.#endLease(l);
    this.#rememberLapsed(l);
  }

  /**
   * Moves poison records (the broker refused them, or they cannot be encoded) to the
   * quarantine table with the reason, so they no longer block their stream. Takes a lease id
   * (all its records) or sequence numbers. Returns how many records were moved.
   */
  quarantine(target: string | number[], reason: string): number {
    if (!this.#db) throw Errors.TELEMETRY_CLOSED();
    let seqs: number[];
    if (typeof target === 'string') {
      const l = this.#leases.get(target) ?? this.#lapsed.get(target);
      if (!l) return 0;
      this.#endLease(l);
      this.#lapsed.delete(target);
      const rows = this.#stmts!.rangeSeqs.all(l.stream, l.first, l.last) as { seq: number }[];
      seqs = rows.map((r) => r.seq);
    } else {
      if (this.#pending.length && !this.#failing) this.#commit();
      seqs = target.filter((n) => Number.isSafeInteger(n));
    }
    const n = this.#quarantineSeqs(seqs, reason);
    if (n) this.#log?.warn({ count: n, reason }, 'telemetry records quarantined');
    return n;
  }

  /** The newest quarantined records (for the status page and operators). */
  quarantined(limit = 100): QuarantinedRecord[] {
    if (!this.#db) throw Errors.TELEMETRY_CLOSED();
    return this.#stmts!.listQuarantine.all(limit) as QuarantinedRecord[];
  }

  #quarantineSeqs(seqs: number[], reason: string): number {
    if (!seqs.length) return 0;
    const now = Date.now();
    return this.#write(() => {
      const st = this.#stmts!;
      let moved = 0;
      for (const seq of seqs) {
        const row = st.getRecord.get(seq) as { stream: string; bytes: number } | undefined;
        if (!row) continue;
        st.toQuarantine.run(reason, now, seq);
        st.deleteOne.run(seq);
        st.addCounter.run(row.stream, 'quarantined', 1);
        const s = this.#stream(row.stream);
        s.depth--;
        s.bytes -= row.bytes + ROW_OVERHEAD;
        s.quarantined++;
        this.#counters.quarantined++;
        moved++;
      }
      if (this.config.maxQuarantineRecords >= 0) st.trimQuarantine.run(this.config.maxQuarantineRecords);
      return moved;
    }) ?? 0;
  }

  /**
   * A record must be on stable storage before it leaves the device: with synchronous=normal a
   * power cut can roll back the last commits, and their sequence numbers would then be given
   * to new records, which the controller would drop as duplicates of what it already has.
   * One fsync'd commit makes every earlier commit durable, so this costs one fsync per
   * lease at most.
   */
  #makeDurable(seq: number): void {
    if (seq <= this.#durableSeq || this.config.synchronous === 'full') return;
    const db = this.#db!;
    const upTo = this.#committedSeq;
    db.pragma('synchronous = FULL');
    try {
      this.#write(() => this.#stmts!.setMeta.run('durable_seq', String(upTo)));
    } finally {
      if (this.#db) this.#db.pragma('synchronous = NORMAL');
    }
    this.#durableSeq = upTo;
  }

  #endLease(l: LiveLease): void {
    this.#leases.delete(l.id);
    const s = this.#streams.get(l.stream);
    if (s?.lease?.id === l.id) s.lease = undefined;
  }

  #rememberLapsed(l: LiveLease): void {
    this.#lapsed.set(l.id, l);
    if (this.#lapsed.size > 1000) this.#lapsed.delete(this.#lapsed.keys().next().value as string);
  }

  #lapseLeases(now: number): void {
    for (const l of this.#leases.values()) {
      if (l.expiresAt <= now) {
        this.#endLease(l);
        this.#rememberLapsed(l);
        this.#log?.debug({ lease: l.id, stream: l.stream }, 'telemetry lease lapsed; its records return to the queue');
      }
    }
  }

  // ---------------------------------------------------------------- stats

  stats(): TelemetryStats {
    const now = Date.now();
    const streams: Record<string, StreamStats> = {};
    let depth = 0;
    let bytes = 0;
    let oldest = 0;
    for (const [name, s] of this.#streams) {
      let oldestAgeSeconds = 0;
      if (this.#db && s.depth > 0) {
        const row = this.#stmts!.headTs.get(name) as { ts: number } | undefined;
        if (row) oldestAgeSeconds = Math.max(0, (now - row.ts) / 1000);
      } else if (s.pendingDepth > 0) {
        const p = this.#pending.find((r) => r.stream === name);
        if (p) oldestAgeSeconds = Math.max(0, (now - p.ts) / 1000);
      }
      const evicted = EVICT_REASONS.reduce((a, r) => a + s.evictedBy[r], 0);
      streams[name] = {
        depth: s.depth + s.pendingDepth,
        bytes: s.bytes + s.pendingBytes,
        oldestAgeSeconds,
        leased: !!s.lease,
        accepted: s.accepted,
        delivered: s.delivered,
        evicted,
        evictedBy: { ...s.evictedBy },
        quarantined: s.quarantined,
        duplicates: s.duplicates,
        sentBytesToday: s.budget.sentToday,
        budgetLeftToday: s.budget.dayLeft(now),
      };
      depth += s.depth + s.pendingDepth;
      bytes += s.bytes + s.pendingBytes;
      oldest = Math.max(oldest, oldestAgeSeconds);
    }
    return {
      open: !!this.#db,
      failing: this.#failing ?? null,
      file: this.file,
      fileBytes: fileSize(this.file),
      walBytes: fileSize(`${this.file}-wal`),
      maxBytes: this.config.maxBytes,
      capacityBytes: this.#capacity,
      diskFull: !!this.#failing && this.#diskFull,
      lastSeq: this.#nextSeq - 1,
      committedSeq: this.#committedSeq,
      pending: this.#pending.length,
      depth,
      bytes,
      oldestAgeSeconds: oldest,
      accepted: this.#counters.accepted,
      delivered: this.#counters.delivered,
      evicted: [...this.#streams.values()].reduce((a, s) => a + EVICT_REASONS.reduce((b, r) => b + s.evictedBy[r], 0), 0),
      quarantined: this.#counters.quarantined,
      duplicates: this.#counters.duplicates,
      recoveries: this.#recoveries,
      streams,
    };
  }

  // ---------------------------------------------------------------- internals

  #maxRecordBytes(): number {
    // A record must fit the disk budget several times over, or eviction could not make room.
    return Math.min(this.config.maxRecordBytes, Math.floor(this.config.maxBytes / 8));
  }

  #stream(name: string): StreamState {
    let s = this.#streams.get(name);
    if (!s) {
      const policy = streamPolicy(this.config, name);
      const now = Date.now();
      s = {
        policy,
        budget: new SendBudget(policy, this.config.burstSeconds, now, utcDay(now), 0),
        depth: 0, bytes: 0, pendingDepth: 0, pendingBytes: 0,
        accepted: 0, delivered: 0, quarantined: 0, duplicates: 0, sentUpTo: 0, compressRatio: 1, needBytes: 1,
        evictedBy: { budget: 0, age: 0, ttl: 0, full: 0 },
      };
      this.#streams.set(name, s);
    }
    return s;
  }

  #open(): void {
    const opts = { synchronous: this.config.synchronous, maxBytes: this.#pageCapBytes };
    let db: DB;
    try {
      db = openStore(this.file, opts);
    } catch (err) {
      if (!isCorruption(err)) throw err;
      this.#recover(err, () => openStore(this.file, opts));
      return;
    }
    this.#attach(db);
  }

  /** Moves a corrupt database aside, starts a fresh one and records an alert in it. */
  #recover(err: unknown, reopen: () => DB): void {
    try {
      this.#db?.close();
    } catch {
      // already unusable
    }
    this.#db = undefined;
    const old = salvage(this.file);
    const salvaged = old.nextSeq;
    const movedTo = moveAside(this.file);
    this.#recoveries++;
    const lost = Math.max(old.queued, [...this.#streams.values()].reduce((a, s) => a + s.depth, 0));
    // Keep sequence numbers rising past anything the old file may have sent: the salvaged
    // value when readable, and a clock-based floor (µs since the epoch) in case it was not.
    const floor = Math.max(this.#nextSeq, salvaged, Date.now() * 1000);
    this.#log?.error({ err: describe(err), movedTo, salvagedSeq: salvaged, nextSeq: floor }, 'telemetry database is corrupt; moved aside and started a fresh one');
    for (const s of this.#streams.values()) {
      s.depth = 0;
      s.bytes = 0;
      s.lease = undefined;
    }
    this.#leases.clear();
    this.#lapsed.clear();
    const db = reopen();
    // Pending records (not yet committed) are renumbered above the floor so the sequence
    // stays monotonic in the new file.
    const renumber = this.#pending.length > 0 && this.#pending[0].seq < floor;
    this.#attach(db, floor);
    if (renumber) for (const p of this.#pending) p.seq = this.#nextSeq++;
    const alert = JSON.stringify({
      kind: 'telemetry_database_corrupt',
      error: describe(err),
      movedTo,
      salvagedSeq: salvaged,
      queuedRecordsInOldFile: lost,
      message: 'the telemetry database was corrupt and was moved aside; records queued in it were not sent',
    });
    const alerts = this.#stream('alerts');
    this.#enqueue(alerts, 'alerts', alert, Buffer.byteLength(alert), alerts.policy.priority, { durable: 'full' });
    if (!this.#stopped) this.#commitTimer ??= setTimeout(() => this.#commit(), this.config.commitIntervalMs);
    try {
      this.emit('recovered', { movedTo, error: describe(err) });
    } catch (e) {
      this.#log?.error({ err: describe(e) }, 'a telemetry recovery listener failed');
    }
  }

  #attach(db: DB, seqFloor = 0): void {
    this.#db = db;
    this.#stmts = prepare(db);
    const st = this.#stmts;
    this.#pageSize = db.pragma('page_size', { simple: true }) as number;
    this.#dbId = (st.getMeta.get('db_id') as { value: string } | undefined)?.value ?? '';
    const metaSeq = Number((st.getMeta.get('next_seq') as { value: string } | undefined)?.value ?? 1);
    const maxSeq = (db.prepare('SELECT max(seq) AS m FROM records').get() as { m: number | null }).m ?? 0;
    const maxQ = (db.prepare('SELECT max(seq) AS m FROM quarantine').get() as { m: number | null }).m ?? 0;
    const next = Math.max(metaSeq, maxSeq + 1, maxQ + 1, seqFloor, 1);
    this.#committedSeq = next - 1;
    // After a crash the WAL may still sit in the page cache: nothing counts as fsynced yet.
    this.#durableSeq = 0;
    if (this.#pending.length === 0) this.#nextSeq = Math.max(this.#nextSeq, next);
    if (seqFloor > 0) {
      this.#nextSeq = Math.max(this.#nextSeq, next);
      st.setMeta.run('next_seq', String(this.#nextSeq));
    }
    // Counters and depths come from the file, so the identity
    // accepted = delivered + evicted + quarantined + queued holds across restarts.
    for (const s of this.#streams.values()) {
      s.accepted = s.pendingDepth;
      s.delivered = 0;
      s.quarantined = 0;
      s.evictedBy = { budget: 0, age: 0, ttl: 0, full: 0 };
    }
    this.#counters = { accepted: this.#pending.length, delivered: 0, evicted: 0, quarantined: 0, duplicates: this.#counters.duplicates };
    for (const row of db.prepare('SELECT stream, count(*) AS n, sum(bytes) AS b FROM records GROUP BY stream').all() as { stream: string; n: number; b: number }[]) {
      const s = this.#stream(row.stream);
      s.depth = row.n;
      s.bytes = row.b + row.n * ROW_OVERHEAD;
    }
    for (const row of db.prepare('SELECT stream, name, value FROM counters').all() as { stream: string; name: string; value: number }[]) {
      const s = this.#stream(row.stream);
      if (row.name === 'accepted') { s.accepted += row.value; this.#counters.accepted += row.value; }
      else if (row.name === 'delivered') { s.delivered = row.value; this.#counters.delivered += row.value; }
      else if (row.name === 'quarantined') { s.quarantined = row.value; this.#counters.quarantined += row.value; }
      else if (row.name.startsWith('evicted_')) {
        const reason = row.name.slice(8) as EvictReason;
        if (reason in s.evictedBy) s.evictedBy[reason] = row.value;
      }
    }
    const now = Date.now();
    for (const [name, s] of this.#streams) {
      const day = (st.getMeta.get(`budget_day:${name}`) as { value: string } | undefined)?.value ?? utcDay(now);
      const sent = (db.prepare("SELECT value FROM counters WHERE stream = ? AND name = 'sent_today'").get(name) as { value: number } | undefined)?.value ?? 0;
      s.budget = new SendBudget(s.policy, this.config.burstSeconds, now, day, sent);
    }
    // A file larger than the budget (the budget was lowered): evict down by the pages really
    // in use, then give the freed pages back to the file system.
    this.#capacity = 0;
    this.#sizeToDisk();
    const usedBytes = () => ((st.pageCount.get() as number) - (st.freelistCount.get() as number)) * this.#pageSize;
    if ((st.pageCount.get() as number) * this.#pageSize > this.#capacity) {
      const target = this.#capacity * LOW_WATER;
      for (let i = 0; i < 50; i++) {
        const used = usedBytes();
        const queued = this.#queuedBytes();
        if (used <= target || queued === 0) break;
        this.#write(() => this.#evictBytes(Math.max((used - target) * (queued / used), 4096), this.#budgetReason()));
      }
      try {
        db.pragma('incremental_vacuum');
        db.pragma('wal_checkpoint(TRUNCATE)');
        setMaxBytes(db, Math.min(this.#pageCapBytes, this.#capacity));
      } catch (err) {
        this.#log?.warn({ err: describe(err) }, 'could not shrink the telemetry database');
      }
    }
    this.#log?.info({ file: this.file, nextSeq: this.#nextSeq, queued: this.#queuedBytes() }, 'telemetry buffer open');
  }

  #queuedBytes(): number {
    let b = 0;
    for (const s of this.#streams.values()) b += s.bytes;
    return b;
  }

  /**
   * The budget the file may really use: telemetry.maxBytes, or DISK_SHARE of the room on its
   * filesystem when that is less. Without this the WAL of a flood fills a small disk before
   * its first checkpoint, and then nothing (not even the DELETE of an ack or an eviction) can
   * be written again. Checked at open and once a second.
   */
  #sizeToDisk(): void {
    const db = this.#db;
    if (!db) return;
    let room = Infinity;
    try {
      const fs = statfsSync(path.dirname(this.file));
      const own = fileSize(this.file) + fileSize(`${this.file}-wal`) + fileSize(`${this.file}-shm`);
      room = (fs.bavail * fs.bsize + own) * DISK_SHARE;
    } catch {
      // no statfs here: the configured budget alone
    }
    // In steps of 16 KB, so the pragmas are not rewritten for every page the WAL grows.
    const capacity = Math.max(MIN_CAPACITY, Math.min(this.config.maxBytes, Math.floor(room / 16384) * 16384));
    if (capacity !== this.#capacity) this.#resize(capacity);
  }

  #resize(capacity: number): void {
    const db = this.#db!;
    const first = this.#capacity === 0;
    this.#capacity = capacity;
    try {
      setMaxBytes(db, Math.min(this.#pageCapBytes, capacity));
      sizeWal(db, capacity);
    } catch (err) {
      this.#log?.warn({ err: describe(err) }, 'could not resize the telemetry database limits');
    }
    if (capacity < this.config.maxBytes) {
      this.#log?.[first ? 'warn' : 'debug']({ capacity, maxBytes: this.config.maxBytes }, 'the filesystem has less room than telemetry.maxBytes; the buffer keeps to a share of it');
    }
  }

  /** Eviction to stay within the budget counts as "full" when the disk, not maxBytes, set it. */
  #budgetReason(): EvictReason {
    return this.#capacity < this.config.maxBytes ? 'full' : 'budget';
  }

  /**
   * A SQLITE_FULL came from the filesystem (little free space left on it), not from the
   * file's page cap. A failed transaction is rolled back, so page_count cannot tell.
   */
  #filesystemFull(): boolean {
    try {
      const fs = statfsSync(path.dirname(this.file));
      return fs.bavail * fs.bsize < Math.max(64 * 1024, this.#capacity / 8);
    } catch {
      return false;
    }
  }

  /**
   * One write transaction. The in-memory accounting it changed is put back when it fails
   * (SQLITE_FULL rolls the transaction back), so memory only ever shows committed changes.
   */
  #txn<T>(fn: () => T): T {
    const snapshot = this.#snapshot();
    try {
      return this.#db!.transaction(fn)();
    } catch (err) {
      this.#restore(snapshot);
      throw err;
    }
  }

  /** Runs fn in a write transaction, handling SQLITE_FULL (evict, retry) and corruption. */
  #write<T>(fn: () => T): T | undefined {
    for (let attempt = 0; ; attempt++) {
      if (!this.#db) throw Errors.TELEMETRY_CLOSED();
      try {
        return this.#txn(fn);
      } catch (err) {
        // At the page cap evicting makes room. On a full filesystem it helps only when the
        // freed pages can take the new rows, so one try; while the disk is known to be full
        // the retries only wait for space (they must not evict the queue away bit by bit).
        if (isDiskFull(err) && attempt < (!this.#filesystemFull() ? 20 : this.#failing && this.#diskFull ? 0 : 1)) {
          this.#makeRoom();
          continue;
        }
        if (isCorruption(err) && attempt < 2) {
          this.#recover(err, () => openStore(this.file, { synchronous: this.config.synchronous, maxBytes: this.#pageCapBytes }));
          continue;
        }
        throw err;
      }
    }
  }

  /** In-memory accounting is changed inside transactions; a rollback must undo it too (#txn). */
  #snapshot(): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, s] of this.#streams) {
      m.set(k, JSON.stringify([s.depth, s.bytes, s.delivered, s.quarantined, s.evictedBy, s.pendingDepth, s.pendingBytes]));
    }
    m.set('', JSON.stringify(this.#counters));
    return m;
  }

  #restore(m: Map<string, string>): void {
    for (const [k, s] of this.#streams) {
      const v = m.get(k);
      if (!v) continue;
      [s.depth, s.bytes, s.delivered, s.quarantined, s.evictedBy, s.pendingDepth, s.pendingBytes] = JSON.parse(v);
    }
    this.#counters = JSON.parse(m.get('')!);
  }

  /**
   * SQLITE_FULL: the file hit its page cap, or the filesystem is full. Free a slice of the
   * budget. Throws (with disk: true when the filesystem is the cause) when that cannot help.
   */
  #makeRoom(): void {
    const disk = this.#filesystemFull();
    // A twentieth of what the file may hold (the page cap can be below the budget).
    const target = Math.max(Math.min(this.#capacity, this.#pageCapBytes) * 0.05, 8 * 1024);
    let freed: number;
    try {
      freed = this.#txn(() => this.#evictBytes(target, 'full'));
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      throw Object.assign(new Error('the disk is full: not even an eviction can be written'), { code: 'SQLITE_FULL', disk: true });
    }
    this.#log?.warn({ freed, disk }, 'telemetry database full; evicted to make room');
    if (freed === 0) throw Object.assign(new Error('database or disk is full and nothing is left to evict'), { code: 'SQLITE_FULL_NOTHING_TO_EVICT', disk });
  }

  /** Evicts lowest priority first, oldest first, skipping records out in a lease. Returns bytes freed. */
  #evictBytes(bytes: number, reason: EvictReason): number {
    if (bytes <= 0) return 0;
    const st = this.#stmts!;
    let freed = 0;
    const perStream = new Map<string, number>();
    const victims: number[] = [];
    for (const row of st.evictionOrder.iterate() as IterableIterator<{ seq: number; stream: string; bytes: number }>) {
      const l = this.#streams.get(row.stream)?.lease;
      if (l && row.seq >= l.first && row.seq <= l.last) continue;
      victims.push(row.seq);
      freed += row.bytes + ROW_OVERHEAD;
      perStream.set(row.stream, (perStream.get(row.stream) ?? 0) + 1);
      const s = this.#streams.get(row.stream)!;
      s.depth--;
      s.bytes -= row.bytes + ROW_OVERHEAD;
      if (freed >= bytes) break;
    }
    for (const seq of victims) st.deleteOne.run(seq);
    this.#countEvictions(perStream, reason);
    return freed;
  }

  #countEvictions(perStream: Map<string, number>, reason: EvictReason): void {
    for (const [stream, n] of perStream) {
      this.#stmts!.addCounter.run(stream, `evicted_${reason}`, n);
      this.#stream(stream).evictedBy[reason] += n;
      this.#counters.evicted += n;
    }
  }

  /** Writes pending records in group-commit transactions. Never throws. */
  #commit(): void {
    clearTimeout(this.#commitTimer);
    this.#commitTimer = undefined;
    if (!this.#db || this.#pending.length === 0) return;
    if (this.#failing && this.#diskFull && !this.#filesystemFull()) this.#sizeToDisk();
    const before = this.#committedSeq;
    let txnRecords = MAX_TXN_RECORDS;
    try {
      while (this.#pending.length) {
        let n = Math.min(this.#pending.length, txnRecords);
        // A transaction's pages all go to the WAL: keep it an eighth of the budget.
        for (let i = 0, b = 0; i < n; i++) {
          b += this.#pending[i].bytes + ROW_OVERHEAD;
          if (i > 0 && b > this.#capacity / 8) { n = i; break; }
        }
        // A batch of recordBatch() is committed whole: cut before it, or after it when it is
        // first (not when the disk is full and the records go in ever smaller pieces).
        if (txnRecords === MAX_TXN_RECORDS) n = this.#batchBoundary(n);
        const batch = this.#pending.slice(0, n);
        const full = this.config.synchronous !== 'full' && batch.some((r) => r.full);
        if (full) this.#db.pragma('synchronous = FULL');
        try {
          this.#write(() => this.#insert(batch));
        } catch (err) {
          // Nothing left to evict but the batch does not fit: write it in smaller pieces
          // (the older part of it is then evicted by policy to make room for the rest).
          if ((err as { code?: string }).code === 'SQLITE_FULL_NOTHING_TO_EVICT' && n > 1) {
            txnRecords = Math.max(1, n >> 1);
            continue;
          }
          throw err;
        } finally {
          if (full && this.#db) this.#db.pragma('synchronous = NORMAL');
        }
        this.#pending.splice(0, n);
        this.#committedSeq = batch[batch.length - 1].seq;
        if (full || this.config.synchronous === 'full') this.#durableSeq = this.#committedSeq;
      }
      if (this.#failing) {
        this.#log?.info('telemetry storage accepts writes again');
        this.#failing = undefined;
        this.#diskFull = false;
        this.#retryMs = 50;
      }
    } catch (err) {
      const e = err as { code?: string; disk?: boolean };
      this.#diskFull = e.disk ?? (isDiskFull(err) && this.#filesystemFull());
      this.#failing = `${e.code ?? 'error'}: ${describe(err)}`;
      this.#log?.error({ err: describe(err), pending: this.#pending.length }, 'telemetry commit failed; records stay in memory and are retried');
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => this.#commit(), this.#retryMs);
      this.#retryTimer.unref();
      this.#retryMs = Math.min(this.#retryMs * 2, 5000);
    }
    if (this.#committedSeq !== before) {
      this.#resolveWaiters();
      // A listener's failure must not surface in record() of an already accepted record.
      try {
        this.emit('commit', this.#committedSeq);
      } catch (err) {
        this.#log?.error({ err: describe(err) }, 'a telemetry commit listener failed');
      }
    }
  }

  /** The nearest cut at or before n (or after n, when the first batch is longer) that splits no batch. */
  #batchBoundary(n: number): number {
    const p = this.#pending;
    let cut = n;
    while (cut > 0 && p[cut - 1]!.withNext) cut--;
    if (cut > 0) return cut;
    cut = n;
    while (cut < p.length && p[cut - 1]!.withNext) cut++;
    return cut;
  }

  #insert(batch: Pending[]): void {
    const st = this.#stmts!;
    const perStream = new Map<string, number>();
    for (const r of batch) {
      st.insert.run(r.seq, r.stream, r.priority, r.ts, r.expires, r.bytes, r.json);
      perStream.set(r.stream, (perStream.get(r.stream) ?? 0) + 1);
      const s = this.#streams.get(r.stream)!;
      s.depth++;
      s.bytes += r.bytes + ROW_OVERHEAD;
      s.pendingDepth--;
      s.pendingBytes -= r.bytes + ROW_OVERHEAD;
    }
    for (const [stream, n] of perStream) st.addCounter.run(stream, 'accepted', n);
    st.setMeta.run('next_seq', String(batch[batch.length - 1].seq + 1));
    // Two measures of "full": the rows' estimated bytes against maxBytes, and the pages the
    // file really uses against what it may hold (rows share pages unevenly after deletes).
    const queued = this.#queuedBytes();
    const capacity = this.#capacity;
    const usedPages = (st.pageCount.get() as number) - (st.freelistCount.get() as number);
    const usedBytes = usedPages * this.#pageSize;
    let excess = Math.max(0, queued - capacity * LOW_WATER);
    if (queued <= capacity * HIGH_WATER) excess = 0;
    if (usedBytes > capacity * HIGH_WATER) {
      excess = Math.max(excess, (usedBytes - capacity * LOW_WATER) * (queued / usedBytes));
    }
    if (excess > 0) this.#evictBytes(excess, this.#budgetReason());
  }

  #resolveWaiters(): void {
    if (!this.#waiters.length) return;
    const keep: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
    for (const w of this.#waiters) (w.seq <= this.#committedSeq ? w.resolve() : keep.push(w));
    this.#waiters = keep;
  }

  /** Once a second: lapse leases, and every few seconds evict what outlived its ttl or maxAge. */
  #maintain(): void {
    if (!this.#db) return;
    const now = Date.now();
    this.#lapseLeases(now);
    // While someone else holds the disk full, the budget keeps its last size: sized to what
    // is left then, the first commit after space frees would evict most of the queue.
    if (!(this.#failing && this.#diskFull)) this.#sizeToDisk();
    if (now - this.#lastSweep < SWEEP_EVERY_MS) return;
    this.#lastSweep = now;
    try {
      this.sweepExpired(now);
    } catch (err) {
      this.#log?.warn({ err: describe(err) }, 'telemetry expiry sweep failed');
    }
  }

  /** Evicts records past their ttl or telemetry.maxAgeSeconds. Returns how many. Public for tests and tools. */
  sweepExpired(now = Date.now()): number {
    if (!this.#db) throw Errors.TELEMETRY_CLOSED();
    if (this.#pending.length && !this.#failing) this.#commit();
    return this.#write(() => {
      const st = this.#stmts!;
      let n = 0;
      const drop = (rows: { seq: number; stream: string; bytes: number }[], reason: EvictReason) => {
        const per = new Map<string, number>();
        for (const row of rows) {
          const s = this.#streams.get(row.stream)!;
          if (s.lease && row.seq >= s.lease.first && row.seq <= s.lease.last) continue;
          st.deleteOne.run(row.seq);
          s.depth--;
          s.bytes -= row.bytes + ROW_OVERHEAD;
          per.set(row.stream, (per.get(row.stream) ?? 0) + 1);
          n++;
        }
        this.#countEvictions(per, reason);
      };
      drop(st.expired.all(now) as { seq: number; stream: string; bytes: number }[], 'ttl');
      if (this.config.maxAgeSeconds > 0) {
        const cutoff = now - this.config.maxAgeSeconds * 1000;
        for (const [name, s] of this.#streams) {
          if (s.depth === 0) continue;
          // Sequence order is record() order, so the old records are at the head of a stream.
          const old: { seq: number; stream: string; bytes: number }[] = [];
          for (const row of st.headAged.iterate(name) as IterableIterator<{ seq: number; ts: number; bytes: number }>) {
            if (row.ts >= cutoff) break;
            old.push({ seq: row.seq, stream: name, bytes: row.bytes });
          }
          drop(old, 'age');
        }
      }
      return n;
    }) ?? 0;
  }
}

function prepare(db: Database.Database) {
  return {
    insert: db.prepare('INSERT INTO records (seq, stream, priority, ts, expires, bytes, payload) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    head: db.prepare('SELECT seq, ts, bytes, payload FROM records WHERE stream = ? ORDER BY seq'),
    headAged: db.prepare('SELECT seq, ts, bytes FROM records WHERE stream = ? ORDER BY seq'),
    headTs: db.prepare('SELECT ts FROM records WHERE stream = ? ORDER BY seq LIMIT 1'),
    rangeSize: db.prepare('SELECT count(*) AS n, sum(bytes) AS b FROM records WHERE stream = ? AND seq BETWEEN ? AND ?'),
    rangeSeqs: db.prepare('SELECT seq FROM records WHERE stream = ? AND seq BETWEEN ? AND ? ORDER BY seq'),
    deleteRange: db.prepare('DELETE FROM records WHERE stream = ? AND seq BETWEEN ? AND ?'),
    deleteOne: db.prepare('DELETE FROM records WHERE seq = ?'),
    getRecord: db.prepare('SELECT stream, bytes FROM records WHERE seq = ?'),
    evictionOrder: db.prepare('SELECT seq, stream, bytes FROM records ORDER BY priority, seq'),
    expired: db.prepare('SELECT seq, stream, bytes FROM records WHERE expires IS NOT NULL AND expires <= ?'),
    toQuarantine: db.prepare('INSERT OR REPLACE INTO quarantine (seq, stream, ts, payload, reason, at) SELECT seq, stream, ts, payload, ?, ? FROM records WHERE seq = ?'),
    trimQuarantine: db.prepare('DELETE FROM quarantine WHERE seq NOT IN (SELECT seq FROM quarantine ORDER BY seq DESC LIMIT ?)'),
    listQuarantine: db.prepare('SELECT seq, stream, ts, payload, reason, at FROM quarantine ORDER BY seq DESC LIMIT ?'),
    addCounter: db.prepare('INSERT INTO counters (stream, name, value) VALUES (?, ?, ?) ON CONFLICT (stream, name) DO UPDATE SET value = value + excluded.value'),
    setCounter: db.prepare('INSERT INTO counters (stream, name, value) VALUES (?, ?, ?) ON CONFLICT (stream, name) DO UPDATE SET value = excluded.value'),
    pageCount: db.prepare('PRAGMA page_count').pluck(),
    freelistCount: db.prepare('PRAGMA freelist_count').pluck(),
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
  };
}

/**
 * The encoded size of a message holding only this record (with the longest sequence number),
 * or 0 when its raw size alone shows that it fits: gzip runs only for records near the limit.
 */
function aloneEncodedBytes(stream: string, db: string, json: string, bytes: number, messageLimit: number): number {
  const now = Date.now();
  if (rawLineBytes(Number.MAX_SAFE_INTEGER, now, bytes) <= rawLineCap(stream, messageLimit)) return 0;
  return encodeRawBatch(stream, db, [{ seq: Number.MAX_SAFE_INTEGER, ts: now, json }]).length;
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * A buffer that throws away a good part of what it accepts is a state an operator must see
 * (on /readyz's warnings and the status page), not only a counter: at least 1 in 10 records
 * evicted since the agent started.
 */
export function evictionWarning(accepted: number, evicted: number, capacityBytes: number): string | undefined {
  if (evicted === 0 || evicted * 10 < accepted) return undefined;
  return `evicting records: ${evicted} of ${accepted} accepted were dropped to stay within ${Math.round(capacityBytes / 1024)} KB ` +
    '(raise telemetry.maxBytes, or check why the fleet link does not drain: broker, controller, drain rate)';
}
