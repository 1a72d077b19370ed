// The buffer's open SQLite file: opening it (and loading the per-stream state from it), the
// one write transaction every change goes through (SQLITE_FULL answered by eviction,
// corruption by moving the file aside and starting a fresh one), and closing it.
import { Errors, describe } from '../errors.js';
import type { Logger } from '../log.js';
import { evictBytes, shrinkToCapacity, type Capacity } from './capacity.js';
import { insertBatch, type CommitStore, type GroupCommit, type Pending } from './commit.js';
import { moveToQuarantine, type LeaseTable } from './leases.js';
import { corruptionAlert, moveCorruptFileAside } from './recovery.js';
import { isCorruption, isDiskFull, metaValue, nextFreeSeq, openStore, prepare, type DB, type Statements } from './store.js';
import type { StreamTable } from './streams.js';
import type { TelemetryConfig } from './types.js';

/** What the buffer tells its listeners ('commit' and 'recovered' events). */
export interface DatabaseEvents {
  committed(seq: number): void;
  recovered(movedTo: string, error: string): void;
}

/** The in-memory parts of the buffer that follow the file. */
export interface BufferState {
  streams: StreamTable;
  leases: LeaseTable;
  capacity: Capacity;
  commits: GroupCommit;
}

export class TelemetryDatabase implements CommitStore {
  readonly #file: string;
  readonly #config: TelemetryConfig;
  readonly #pageCapBytes: number;
  readonly #log: Logger | undefined;
  readonly #state: BufferState;
  readonly #events: DatabaseEvents;
  #db: DB | undefined;
  #stmts: Statements | undefined;
  #pageSize = 4096;
  #dbId = '';
  #recoveries = 0;
  /** close() is under way: a recovery now must not arm the commit timer again. */
  #closing = false;

  constructor(file: string, config: TelemetryConfig, pageCapBytes: number, log: Logger | undefined, state: BufferState, events: DatabaseEvents) {
    this.#file = file;
    this.#config = config;
    this.#pageCapBytes = pageCapBytes;
    this.#log = log;
    this.#state = state;
    this.#events = events;
  }

  db(): DB | undefined {
    return this.#db;
  }

  /** The prepared statements of the open file. */
  get st(): Statements {
    return this.#stmts!;
  }

  /** Id of the current database (the batch header's "db"); changes only after corruption. */
  get id(): string {
    return this.#dbId;
  }

  get recoveries(): number {
    return this.#recoveries;
  }

  /** Opens the file (a corrupt one is moved aside and a fresh one started); throws when it cannot. */
  open(): void {
    this.#closing = false;
    let db: DB;
    try {
      db = openStore(this.#file, this.#openOptions());
    } catch (err) {
      if (!isCorruption(err)) throw err;
      this.#recover(err);
      return;
    }
    this.#attach(db);
  }

  /** Commits what waits, checkpoints and closes the file. */
  close(): void {
    this.#closing = true;
    const db = this.#db;
    if (db) {
      const commits = this.#state.commits;
      commits.commit();
      if (commits.pending.length) {
        this.#log?.error({ pending: commits.pending.length, why: commits.failing }, 'telemetry records could not be written before stop');
      }
      try {
        this.#db?.pragma('wal_checkpoint(TRUNCATE)');
      } catch (err) {
        this.#log?.warn({ err: describe(err) }, 'checkpoint at stop failed');
      }
      this.#db?.close();
    }
    this.#db = undefined;
    this.#stmts = undefined;
  }

  insert(batch: readonly Pending[]): void {
    insertBatch(this.#stmts!, this.#state.streams, this.#state.capacity, this.#pageSize, batch);
  }

  committed(seq: number): void {
    this.#events.committed(seq);
  }

  /**
   * A record must be on stable storage before it leaves the device: with synchronous=normal a
   * power cut can roll back the last commits, and their sequence numbers would then be given
   * to new records, which the controller would drop as duplicates of what it already has.
   * One fsync'd commit makes every earlier commit durable, so this costs one fsync per
   * lease at most.
   */
  makeDurable(seq: number): void {
    const commits = this.#state.commits;
    if (seq <= commits.durableSeq || this.#config.synchronous === 'full') return;
    const upTo = commits.committedSeq;
    this.#db!.pragma('synchronous = FULL');
    try {
      this.write(() => this.#stmts!.setMeta.run('durable_seq', String(upTo)));
    } finally {
      if (this.#db) this.#db.pragma('synchronous = NORMAL');
    }
    commits.durableUpTo(upTo);
  }

  /** Moves records to the quarantine table with the reason. Returns how many. */
  quarantine(seqs: number[], reason: string): number {
    if (!seqs.length) return 0;
    const now = Date.now();
    return this.write(() => moveToQuarantine(this.#stmts!, this.#state.streams, seqs, reason, now, this.#config.maxQuarantineRecords)) ?? 0;
  }

  /** Runs fn in a write transaction, handling SQLITE_FULL (evict, retry) and corruption. */
  write<T>(fn: () => T): T | undefined {
    for (let attempt = 0; ; attempt++) {
      if (!this.#db) throw Errors.TELEMETRY_CLOSED();
      try {
        return this.#txn(fn);
      } catch (err) {
        // At the page cap evicting makes room. On a full filesystem it helps only when the
        // freed pages can take the new rows, so one try; while the disk is known to be full
        // the retries only wait for space (they must not evict the queue away bit by bit).
        if (isDiskFull(err) && attempt < (!this.#state.capacity.filesystemFull() ? 20 : this.#state.commits.diskFull ? 0 : 1)) {
          this.#makeRoom();
          continue;
        }
        if (isCorruption(err) && attempt < 2) {
          this.#recover(err);
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * One write transaction. The in-memory accounting it changed is put back when it fails
   * (SQLITE_FULL rolls the transaction back), so memory only ever shows committed changes.
   */
  #txn<T>(fn: () => T): T {
    const snapshot = this.#state.streams.snapshot();
    try {
      return this.#db!.transaction(fn)();
    } catch (err) {
      this.#state.streams.restore(snapshot);
      throw err;
    }
  }

  /**
   * SQLITE_FULL: the file hit its page cap, or the filesystem is full. Free a slice of the
   * budget. Throws (with disk: true when the filesystem is the cause) when that cannot help.
   */
  #makeRoom(): void {
    const { capacity, streams } = this.#state;
    const disk = capacity.filesystemFull();
    let freed: number;
    try {
      freed = this.#txn(() => evictBytes(this.#stmts!, streams, capacity.roomTarget(), 'full'));
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      throw Object.assign(new Error('the disk is full: not even an eviction can be written'), { code: 'SQLITE_FULL', disk: true });
    }
    this.#log?.warn({ freed, disk }, 'telemetry database full; evicted to make room');
    if (freed === 0) throw Object.assign(new Error('database or disk is full and nothing is left to evict'), { code: 'SQLITE_FULL_NOTHING_TO_EVICT', disk });
  }

  #openOptions() {
    return { synchronous: this.#config.synchronous, maxBytes: this.#pageCapBytes };
  }

  /** Moves a corrupt database aside, starts a fresh one and records an alert in it. */
  #recover(err: unknown): void {
    const { streams, leases, commits } = this.#state;
    try {
      this.#db?.close();
    } catch {
      // already unusable
    }
    this.#db = undefined;
    const moved = moveCorruptFileAside(this.#file, streams.queuedRecords(), commits.nextSeq);
    this.#recoveries++;
    this.#log?.error({ err: describe(err), movedTo: moved.movedTo, salvagedSeq: moved.salvagedSeq, nextSeq: moved.floor }, 'telemetry database is corrupt; moved aside and started a fresh one');
    streams.forgetQueued();
    leases.clear();
    const db = openStore(this.#file, this.#openOptions());
    // Pending records (not yet committed) are renumbered above the floor so the sequence
    // stays monotonic in the new file.
    const renumber = commits.renumberFrom(moved.floor);
    this.#attach(db, moved.floor);
    if (renumber) commits.renumber();
    const alert = corruptionAlert(describe(err), moved);
    const bytes = Buffer.byteLength(alert);
    const alerts = streams.stream('alerts');
    commits.add('alerts', alert, bytes, alerts.policy.priority, Date.now(), null, true, false);
    streams.accept(alerts, bytes);
    if (!this.#closing) commits.scheduleTimer();
    try {
      this.#events.recovered(moved.movedTo, describe(err));
    } catch (e) {
      this.#log?.error({ err: describe(e) }, 'a telemetry recovery listener failed');
    }
  }

  #attach(db: DB, seqFloor = 0): void {
    const { streams, capacity, commits } = this.#state;
    this.#db = db;
    const st = this.#stmts = prepare(db);
    this.#pageSize = db.pragma('page_size', { simple: true }) as number;
    this.#dbId = metaValue(st, 'db_id') ?? '';
    commits.attach(Math.max(nextFreeSeq(db, st), seqFloor), seqFloor);
    if (seqFloor > 0) st.setMeta.run('next_seq', String(commits.nextSeq));
    streams.load(db, st, commits.pending.length, Date.now());
    capacity.reset();
    capacity.sizeToDisk(db);
    shrinkToCapacity(db, st, this.#pageSize, capacity, streams, (fn) => this.write(fn), this.#log);
    this.#log?.info({ file: this.#file, nextSeq: commits.nextSeq, queued: streams.queuedBytes() }, 'telemetry buffer open');
  }
}
