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
//
// This file is the facade; the parts: commit.ts (group commit), database.ts (the open file
// and its write transaction), capacity.ts (capacity and eviction), leases.ts, packer.ts (what
// goes into a message), streams.ts (per-stream state), recovery.ts, record-check.ts, store.ts.
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { AgentContext, Component } from '../component.js';
import { Errors, describe } from '../errors.js';
import type { Logger } from '../log.js';
import { Capacity, evictExpired, evictionWarning, fileSize } from './capacity.js';
import { GroupCommit } from './commit.js';
import { TelemetryDatabase } from './database.js';
import { chargeBudget, deleteAcked, LeaseTable, packHead } from './leases.js';
import { registerTelemetryMetrics } from './metrics.js';
import { checkRecord, type Checked } from './record-check.js';
import { StreamTable, streamStats, type StreamState } from './streams.js';
import type { Lease, LeaseOptions, QuarantinedRecord, RecordOptions, StreamStats, TelemetryBufferOptions, TelemetryConfig, TelemetryStats } from './types.js';

export { evictionWarning };

const MAINTENANCE_MS = 1000;
const SWEEP_EVERY_MS = 5000;

export class TelemetryBuffer extends EventEmitter implements Component {
  readonly name = 'telemetry';
  readonly file: string;
  readonly config: TelemetryConfig;
  readonly #log: Logger | undefined;
  /** Largest encoded message the link sends (mqtt.batchMaxBytes): a record that cannot fit one alone is refused. */
  readonly #messageLimit: number | undefined;
  readonly #streams: StreamTable;
  readonly #leases: LeaseTable;
  readonly #capacity: Capacity;
  readonly #commits: GroupCommit;
  readonly #database: TelemetryDatabase;

  #maintenance: NodeJS.Timeout | undefined;
  #lastSweep = 0;
  #openError: string | undefined;
  #reopenTimer: NodeJS.Timeout | undefined;
  #stopped = false;

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
    const pageCapBytes = ('pageCapBytes' in ctxOrOptions ? ctxOrOptions.pageCapBytes : undefined) ?? this.config.maxBytes;
    this.#messageLimit = 'http' in ctxOrOptions ? ctxOrOptions.config.mqtt.batchMaxBytes : ctxOrOptions.messageLimit;
    this.#streams = new StreamTable(this.config);
    this.#leases = new LeaseTable(this.#streams);
    this.#capacity = new Capacity(this.config, this.file, pageCapBytes, this.#log);
    this.#commits = new GroupCommit(this.config, this.#capacity, this.#log);
    const state = { streams: this.#streams, leases: this.#leases, capacity: this.#capacity, commits: this.#commits };
    this.#database = new TelemetryDatabase(this.file, this.config, pageCapBytes, this.#log, state, {
      committed: (seq) => {
        // A listener's failure must not surface in record() of an already accepted record.
        try {
          this.emit('commit', seq);
        } catch (err) {
          this.#log?.error({ err: describe(err) }, 'a telemetry commit listener failed');
        }
      },
      recovered: (movedTo, error) => this.emit('recovered', { movedTo, error }),
    });
    this.#commits.bind(this.#database);
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
    if (this.#database.db()) return;
    this.#stopped = false;
    mkdirSync(path.dirname(this.file), { recursive: true });
    this.#database.open();
    this.#openError = undefined;
    this.#maintenance = setInterval(() => this.#maintain(), MAINTENANCE_MS);
    this.#maintenance.unref();
  }

  #scheduleReopen(ms: number): void {
    this.#reopenTimer = setTimeout(() => {
      this.#reopenTimer = undefined;
      if (this.#stopped || this.#database.db()) return;
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
    clearTimeout(this.#reopenTimer);
    this.#commits.stopTimers();
    this.#maintenance = this.#reopenTimer = undefined;
    this.#database.close();
    this.#leases.clear();
    this.#commits.rejectWaiters();
  }

  notReady(): string | undefined {
    if (!this.#database.db()) return this.#openError ? `storage not open: ${this.#openError}` : 'storage not open';
    if (this.#commits.failing) return `storage refusing writes: ${this.#commits.failing}`;
    return undefined;
  }

  status(): unknown {
    const s = this.stats();
    const { streams, ...rest } = s;
    const failing = this.#commits.failing;
    const warning = failing ? `storage refusing writes: ${failing}` : evictionWarning(s.accepted, s.evicted, s.capacityBytes);
    return { ...rest, warning, streams: Object.fromEntries(Object.entries(streams).map(([k, v]) => [k, { depth: v.depth, bytes: v.bytes, oldestAgeSeconds: v.oldestAgeSeconds }])) };
  }

  get open(): boolean {
    return this.#database.db() !== undefined;
  }

  /** Highest sequence number whose record is committed (every lower one is too). */
  get committedSeq(): number {
    return this.#commits.committedSeq;
  }

  /** Highest sequence number handed out by record(). */
  get lastSeq(): number {
    return this.#commits.nextSeq - 1;
  }

  /** Id of the current database (the batch header's "db"); changes only after corruption. */
  get dbId(): string {
    return this.#database.id;
  }

  // ---------------------------------------------------------------- recording

  /**
   * Accepts one record and returns its sequence number. Throws EDGE_TELEMETRY_INVALID for a
   * bad stream name, options or a payload JSON cannot represent (nothing is stored then).
   */
  record(stream: string, payload: unknown, opts: RecordOptions = {}): number {
    if (!this.#database.db()) throw Errors.TELEMETRY_CLOSED();
    const c = this.#check(stream, payload, opts);
    if (typeof c === 'string') throw Errors.TELEMETRY_INVALID(c);
    this.#commits.admit(1);
    const seq = this.#enqueue(this.#streams.stream(stream), stream, c);
    this.#commits.schedule();
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
    if (!this.#database.db()) throw Errors.TELEMETRY_CLOSED();
    if (entries.length === 0) return [];
    const checked: Checked[] = [];
    for (let i = 0; i < entries.length; i++) {
      const c = this.#check(stream, entries[i]!.payload, entries[i]!.opts ?? {});
      if (typeof c === 'string') {
        throw Errors.TELEMETRY_INVALID(entries.length === 1 ? c : `record ${i}: ${c}; nothing of the batch of ${entries.length} was stored`);
      }
      checked.push(c);
    }
    this.#commits.admit(checked.length);
    const s = this.#streams.stream(stream);
    const seqs = checked.map((c, i) => this.#enqueue(s, stream, c, i < checked.length - 1));
    this.#commits.schedule();
    return seqs;
  }

  #check(stream: string, payload: unknown, opts: RecordOptions): Checked | string {
    // A record must fit the disk budget several times over, or eviction could not make room.
    const maxRecordBytes = Math.min(this.config.maxRecordBytes, Math.floor(this.config.maxBytes / 8));
    return checkRecord(stream, payload, opts, { maxRecordBytes, messageLimit: this.#messageLimit, db: this.#database.id }, this.#streams);
  }

  #enqueue(s: StreamState, stream: string, c: Checked, withNext = false): number {
    const ts = Date.now();
    const expires = c.opts.ttlSeconds ? ts + Math.round(c.opts.ttlSeconds * 1000) : null;
    const seq = this.#commits.add(stream, c.json, c.bytes, c.priority, ts, expires, (c.opts.durable ?? s.policy.durable) === 'full', withNext);
    this.#streams.accept(s, c.bytes);
    return seq;
  }

  /** Commits everything recorded so far, now. */
  flushSync(): void {
    if (!this.#database.db()) throw Errors.TELEMETRY_CLOSED();
    this.#commits.flush();
  }

  async flush(): Promise<void> {
    this.flushSync();
  }

  /** Resolves once the record with this sequence number is committed. */
  whenCommitted(seq: number): Promise<void> {
    return this.#commits.whenCommitted(seq);
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
    if (!this.#database.db()) throw Errors.TELEMETRY_CLOSED();
    if (!Number.isInteger(maxBytes) || maxBytes < 1024) throw Errors.TELEMETRY_INVALID(`lease maxBytes must be an integer >= 1024, got ${maxBytes}`);
    const maxRecords = opts.maxRecords ?? Infinity;
    if (!(maxRecords >= 1)) throw Errors.TELEMETRY_INVALID(`lease maxRecords must be at least 1, got ${String(opts.maxRecords)}`);
    this.#commits.commitIfWriting();
    const now = Date.now();
    this.#leases.lapseExpired(now, this.#log);
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
    const budgetBytes = s.budget.available(now);
    if (budgetBytes <= 0) return undefined;
    const packing = packHead(this.#database.st, stream, this.#database.id, s, messageLimit, maxRecords, budgetBytes, now);
    const { lines, payload, poison } = packing;
    if (poison.length) {
      this.#database.quarantine(poison, `larger than the message limit (${messageLimit} bytes) even in a message of its own`);
      this.#log?.warn({ stream, seqs: poison, messageLimit }, 'telemetry records too large for any message were quarantined');
    }
    s.needBytes = packing.needBytes;
    if (!payload) return undefined;
    this.#database.makeDurable(lines[lines.length - 1].seq);
    s.compressRatio = packing.compressRatio;
    const lease = this.#leases.open(stream, s, lines, payload, now + this.config.leaseTimeoutSeconds * 1000);
    chargeBudget(this.#database.st, stream, s, payload.length, now, this.#log);
    return lease;
  }

  /**
   * The broker confirmed delivery (PUBACK): deletes the lease's records. A lease that had
   * lapsed still deletes whatever of it is not out in a newer lease. Returns the number of
   * records deleted (0 for an unknown lease).
   */
  ack(leaseId: string): number {
    if (!this.#database.db()) throw Errors.TELEMETRY_CLOSED();
    const live = this.#leases.live(leaseId);
    const l = live ?? this.#leases.find(leaseId);
    if (!l) return 0;
    this.#leases.close(l);
    const s = this.#streams.stream(l.stream);
    const first = l.first;
    let last = l.last;
    // A newer lease of the same stream owns its range; it will be acked (or re-sent) itself.
    if (!live && s.lease) {
      if (s.lease.first <= last) last = Math.min(last, s.lease.first - 1);
    }
    if (last < first) return 0;
    return this.#database.write(() => deleteAcked(this.#database.st, this.#streams, l.stream, first, last)) ?? 0;
  }

  /** Delivery failed: the lease's records go back to the head of their stream now. */
  nack(leaseId: string): void {
    const l = this.#leases.live(leaseId);
    if (l) this.#leases.lapse(l);
  }

  /**
   * Moves poison records (the broker refused them, or they cannot be encoded) to the
   * quarantine table with the reason, so they no longer block their stream. Takes a lease id
   * (all its records) or sequence numbers. Returns how many records were moved.
   */
  quarantine(target: string | number[], reason: string): number {
    if (!this.#database.db()) throw Errors.TELEMETRY_CLOSED();
    let seqs: number[];
    if (typeof target === 'string') {
      const l = this.#leases.find(target);
      if (!l) return 0;
      this.#leases.close(l);
      const rows = this.#database.st.rangeSeqs.all(l.stream, l.first, l.last) as { seq: number }[];
      seqs = rows.map((r) => r.seq);
    } else {
      this.#commits.commitIfWriting();
      seqs = target.filter((n) => Number.isSafeInteger(n));
    }
    const n = this.#database.quarantine(seqs, reason);
    if (n) this.#log?.warn({ count: n, reason }, 'telemetry records quarantined');
    return n;
  }

  /** The newest quarantined records (for the status page and operators). */
  quarantined(limit = 100): QuarantinedRecord[] {
    if (!this.#database.db()) throw Errors.TELEMETRY_CLOSED();
    return this.#database.st.listQuarantine.all(limit) as QuarantinedRecord[];
  }

  // ---------------------------------------------------------------- stats

  stats(): TelemetryStats {
    const now = Date.now();
    const streams: Record<string, StreamStats> = {};
    let depth = 0;
    let bytes = 0;
    let oldest = 0;
    for (const [name, s] of this.#streams.entries()) {
      let oldestAgeSeconds = 0;
      if (this.#database.db() && s.depth > 0) {
        const row = this.#database.st.headTs.get(name) as { ts: number } | undefined;
        if (row) oldestAgeSeconds = Math.max(0, (now - row.ts) / 1000);
      } else if (s.pendingDepth > 0) {
        const p = this.#commits.pending.find((r) => r.stream === name);
        if (p) oldestAgeSeconds = Math.max(0, (now - p.ts) / 1000);
      }
      streams[name] = streamStats(s, oldestAgeSeconds, now);
      depth += s.depth + s.pendingDepth;
      bytes += s.bytes + s.pendingBytes;
      oldest = Math.max(oldest, oldestAgeSeconds);
    }
    const totals = this.#streams.totals;
    return {
      open: !!this.#database.db(),
      failing: this.#commits.failing ?? null,
      file: this.file,
      fileBytes: fileSize(this.file),
      walBytes: fileSize(`${this.file}-wal`),
      maxBytes: this.config.maxBytes,
      capacityBytes: this.#capacity.bytes,
      diskFull: this.#commits.diskFull,
      lastSeq: this.#commits.nextSeq - 1,
      committedSeq: this.#commits.committedSeq,
      pending: this.#commits.pending.length,
      depth,
      bytes,
      oldestAgeSeconds: oldest,
      accepted: totals.accepted,
      delivered: totals.delivered,
      evicted: this.#streams.evicted(),
      quarantined: totals.quarantined,
      duplicates: totals.duplicates,
      recoveries: this.#database.recoveries,
      streams,
    };
  }

  // ---------------------------------------------------------------- maintenance

  /** Once a second: lapse leases, and every few seconds evict what outlived its ttl or maxAge. */
  #maintain(): void {
    const db = this.#database.db();
    if (!db) return;
    const now = Date.now();
    this.#leases.lapseExpired(now, this.#log);
    // While someone else holds the disk full, the budget keeps its last size: sized to what
    // is left then, the first commit after space frees would evict most of the queue.
    if (!this.#commits.diskFull) this.#capacity.sizeToDisk(db);
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
    if (!this.#database.db()) throw Errors.TELEMETRY_CLOSED();
    this.#commits.commitIfWriting();
    return this.#database.write(() => evictExpired(this.#database.st, this.#streams, now, this.config.maxAgeSeconds)) ?? 0;
  }
}
