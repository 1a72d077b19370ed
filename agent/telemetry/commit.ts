// Group commit: records wait in memory (at most commitIntervalMs, or until commitMaxRecords
// are waiting) and are then written in one transaction with their neighbours. This module
// hands out sequence numbers, keeps the records not yet written, commits them, and while the
// disk refuses writes keeps them in memory and retries with backoff. committedSeq and
// durableSeq say how far the file is written and fsynced.
import { Errors, describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { Capacity } from './capacity.js';
import { evictBytes } from './capacity.js';
import { isDiskFull, usedBytes, type DB, type Statements } from './store.js';
import { ROW_OVERHEAD, type StreamTable } from './streams.js';
import type { TelemetryConfig } from './types.js';

/** A batch larger than this is written in several transactions. */
const MAX_TXN_RECORDS = 10_000;

/** A record accepted by record(), waiting in memory for its commit. */
export interface Pending {
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

/** What a commit needs of the buffer: its database and its write transaction. */
export interface CommitStore {
  /** The open database, undefined while closed. */
  db(): DB | undefined;
  /** One write transaction, with the buffer's handling of SQLITE_FULL and corruption. */
  write<T>(fn: () => T): T | undefined;
  /** Inserts the batch's rows (inside write). */
  insert(batch: readonly Pending[]): void;
  /** Records up to seq are committed now (the buffer's 'commit' event). */
  committed(seq: number): void;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class GroupCommit {
  readonly #config: TelemetryConfig;
  readonly #capacity: Capacity;
  readonly #log: Logger | undefined;
  #store: CommitStore | undefined;
  #pending: Pending[] = [];
  #nextSeq = 1;
  #committedSeq = 0;
  /** Every record up to this seq is on stable storage (the WAL was fsynced after its commit). */
  #durableSeq = 0;
  #waiters: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  #failing: string | undefined;
  /** The last failure was the filesystem being full (not the file at its page cap). */
  #diskFull = false;
  #retryMs = 50;
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(config: TelemetryConfig, capacity: Capacity, log: Logger | undefined) {
    this.#config = config;
    this.#capacity = capacity;
    this.#log = log;
  }

  /** Set once by the buffer that owns this (the store calls back into it). */
  bind(store: CommitStore): void {
    this.#store = store;
  }

  get pending(): readonly Pending[] {
    return this.#pending;
  }

  get nextSeq(): number {
    return this.#nextSeq;
  }

  get committedSeq(): number {
    return this.#committedSeq;
  }

  get durableSeq(): number {
    return this.#durableSeq;
  }

  /** Why the disk refuses writes now, or undefined. */
  get failing(): string | undefined {
    return this.#failing;
  }

  /** The disk refuses writes because the filesystem is full. */
  get diskFull(): boolean {
    return !!this.#failing && this.#diskFull;
  }

  /** A newly opened file: next is its first free sequence number, floor one to stay above (after recovery). */
  attach(next: number, floor: number): void {
    this.#committedSeq = next - 1;
    // After a crash the WAL may still sit in the page cache: nothing counts as fsynced yet.
    this.#durableSeq = 0;
    if (this.#pending.length === 0 || floor > 0) this.#nextSeq = Math.max(this.#nextSeq, next);
  }

  /** Pending records numbered below floor get new numbers from the next free one up. */
  renumberFrom(floor: number): boolean {
    return this.#pending.length > 0 && this.#pending[0].seq < floor;
  }

  renumber(): void {
    for (const p of this.#pending) p.seq = this.#nextSeq++;
  }

  /** Whether n more records may wait in memory now; throws (nothing changed) when not. */
  admit(n: number): void {
    // A full filesystem does not free itself within a retry: refuse at once, clearly, rather
    // than hold records in memory that cannot be written.
    if (this.#failing && this.#diskFull) throw Errors.TELEMETRY_DISK_FULL(this.#pending.length, this.#failing);
    if (this.#failing && this.#pending.length + n > this.#config.maxPendingRecords) {
      throw Errors.TELEMETRY_BACKLOG(this.#pending.length, this.#failing);
    }
  }

  /** Queues a record and returns its sequence number. */
  add(stream: string, json: string, bytes: number, priority: number, ts: number, expires: number | null, full: boolean, withNext: boolean): number {
    const seq = this.#nextSeq++;
    this.#pending.push({ seq, stream, priority, ts, bytes, json, withNext, expires, full });
    return seq;
  }

  schedule(): void {
    // While the disk refuses writes the retry timer (with backoff) commits, not every record.
    if (this.#failing) return;
    if (this.#pending.length >= this.#config.commitMaxRecords) this.commit();
    else this.scheduleTimer();
  }

  scheduleTimer(): void {
    this.#timer ??= setTimeout(() => this.commit(), this.#config.commitIntervalMs);
  }

  /** Commits what waits unless the disk is refusing writes (then the retry timer does). */
  commitIfWriting(): void {
    if (this.#pending.length && !this.#failing) this.commit();
  }

  /** Commits everything recorded so far, now; throws when some of it could not be written. */
  flush(): void {
    this.commit();
    if (this.#pending.length) throw Errors.TELEMETRY_BACKLOG(this.#pending.length, this.#failing ?? 'commit failed');
  }

  /** Resolves once the record with this sequence number is committed. */
  whenCommitted(seq: number): Promise<void> {
    if (seq <= this.#committedSeq) return Promise.resolve();
    if (!this.#store?.db()) return Promise.reject(Errors.TELEMETRY_CLOSED());
    if (!Number.isSafeInteger(seq) || seq >= this.#nextSeq) {
      return Promise.reject(Errors.TELEMETRY_INVALID(`no record has sequence number ${seq} yet (last is ${this.#nextSeq - 1})`));
    }
    return new Promise((resolve, reject) => this.#waiters.push({ seq, resolve, reject }));
  }

  /** Every record committed so far is fsynced now. */
  durableUpTo(seq: number): void {
    this.#durableSeq = seq;
  }

  stopTimers(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#retryTimer);
    this.#timer = this.#retryTimer = undefined;
  }

  /** The buffer closed: nothing waiting will be committed by it. */
  rejectWaiters(): void {
    for (const w of this.#waiters.splice(0)) w.reject(Errors.TELEMETRY_CLOSED());
  }

  /** Writes pending records in group-commit transactions. Never throws. */
  commit(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const store = this.#store!;
    const db = store.db();
    if (!db || this.#pending.length === 0) return;
    if (this.#failing && this.#diskFull && !this.#capacity.filesystemFull()) this.#capacity.sizeToDisk(db);
    const before = this.#committedSeq;
    let txnRecords = MAX_TXN_RECORDS;
    try {
      while (this.#pending.length) {
        let n = Math.min(this.#pending.length, txnRecords);
        // A transaction's pages all go to the WAL: keep it an eighth of the budget.
        const txnBytes = this.#capacity.txnBytes;
        for (let i = 0, b = 0; i < n; i++) {
          b += this.#pending[i].bytes + ROW_OVERHEAD;
          if (i > 0 && b > txnBytes) { n = i; break; }
        }
        // A batch of recordBatch() is committed whole: cut before it, or after it when it is
        // first (not when the disk is full and the records go in ever smaller pieces).
        if (txnRecords === MAX_TXN_RECORDS) n = batchBoundary(this.#pending, n);
        const batch = this.#pending.slice(0, n);
        const full = this.#config.synchronous !== 'full' && batch.some((r) => r.full);
        if (full) store.db()!.pragma('synchronous = FULL');
        try {
          store.write(() => store.insert(batch));
        } catch (err) {
          // Nothing left to evict but the batch does not fit: write it in smaller pieces
          // (the older part of it is then evicted by policy to make room for the rest).
          if ((err as { code?: string }).code === 'SQLITE_FULL_NOTHING_TO_EVICT' && n > 1) {
            txnRecords = Math.max(1, n >> 1);
            continue;
          }
          throw err;
        } finally {
          if (full) store.db()?.pragma('synchronous = NORMAL');
        }
        this.#pending.splice(0, n);
        this.#committedSeq = batch[batch.length - 1].seq;
        if (full || this.#config.synchronous === 'full') this.#durableSeq = this.#committedSeq;
      }
      if (this.#failing) {
        this.#log?.info('telemetry storage accepts writes again');
        this.#failing = undefined;
        this.#diskFull = false;
        this.#retryMs = 50;
      }
    } catch (err) {
      const e = err as { code?: string; disk?: boolean };
      this.#diskFull = e.disk ?? (isDiskFull(err) && this.#capacity.filesystemFull());
      this.#failing = `${e.code ?? 'error'}: ${describe(err)}`;
      this.#log?.error({ err: describe(err), pending: this.#pending.length }, 'telemetry commit failed; records stay in memory and are retried');
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => this.commit(), this.#retryMs);
      this.#retryTimer.unref();
      this.#retryMs = Math.min(this.#retryMs * 2, 5000);
    }
    if (this.#committedSeq !== before) {
      this.#resolveWaiters();
      store.committed(this.#committedSeq);
    }
  }

  #resolveWaiters(): void {
    if (!this.#waiters.length) return;
    const keep: Waiter[] = [];
    for (const w of this.#waiters) (w.seq <= this.#committedSeq ? w.resolve() : keep.push(w));
    this.#waiters = keep;
  }
}

/** The nearest cut at or before n (or after n, when the first batch is longer) that splits no batch. */
function batchBoundary(p: readonly Pending[], n: number): number {
  let cut = n;
  while (cut > 0 && p[cut - 1]!.withNext) cut--;
  if (cut > 0) return cut;
  cut = n;
  while (cut < p.length && p[cut - 1]!.withNext) cut++;
  return cut;
}

/** Inserts a batch of pending records, then evicts by policy to stay within the budget. */
export function insertBatch(st: Statements, streams: StreamTable, capacity: Capacity, pageSize: number, batch: readonly Pending[]): void {
  const perStream = new Map<string, number>();
  for (const r of batch) {
    st.insert.run(r.seq, r.stream, r.priority, r.ts, r.expires, r.bytes, r.json);
    perStream.set(r.stream, (perStream.get(r.stream) ?? 0) + 1);
    streams.inserted(r.stream, r.bytes);
  }
  for (const [stream, n] of perStream) st.addCounter.run(stream, 'accepted', n);
  st.setMeta.run('next_seq', String(batch[batch.length - 1].seq + 1));
  const excess = capacity.excess(streams.queuedBytes(), usedBytes(st, pageSize));
  if (excess > 0) evictBytes(st, streams, excess, capacity.budgetReason());
}
