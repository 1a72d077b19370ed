// Per-stream state of the telemetry buffer: what each stream holds (committed and still in
// memory), its counters, its send budget and its lease. Counters and depths are loaded from
// the file at open, so accepted = delivered + evicted + quarantined + queued holds across
// restarts; they change only inside write transactions (snapshot() and restore() undo a
// rolled-back one).
import { SendBudget, utcDay } from './budget.js';
import { streamPolicy, type StreamPolicy } from './policy.js';
import { allCounters, metaValue, queuedByStream, sentToday, type DB, type Statements } from './store.js';
import type { EvictReason, StreamStats, TelemetryConfig } from './types.js';

/** Bytes a row costs beyond its payload: the row header, two index entries, page slack. */
export const ROW_OVERHEAD = 64;

export const EVICT_REASONS: EvictReason[] = ['budget', 'age', 'ttl', 'full'];

/** A lease handed out and not yet acked, nacked or lapsed. */
export interface LiveLease {
  id: string;
  stream: string;
  first: number;
  last: number;
  count: number;
  expiresAt: number;
}

export interface StreamState {
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

/** The buffer's totals over all streams. */
export interface Totals {
  accepted: number;
  delivered: number;
  evicted: number;
  quarantined: number;
  duplicates: number;
}

export class StreamTable {
  readonly #config: TelemetryConfig;
  readonly #streams = new Map<string, StreamState>();
  totals: Totals = { accepted: 0, delivered: 0, evicted: 0, quarantined: 0, duplicates: 0 };

  constructor(config: TelemetryConfig) {
    this.#config = config;
  }

  get(name: string): StreamState | undefined {
    return this.#streams.get(name);
  }

  /** The stream's state, created on first use. */
  stream(name: string): StreamState {
    let s = this.#streams.get(name);
    if (!s) {
      const policy = streamPolicy(this.#config, name);
      const now = Date.now();
      s = {
        policy,
        budget: new SendBudget(policy, this.#config.burstSeconds, now, utcDay(now), 0),
        depth: 0, bytes: 0, pendingDepth: 0, pendingBytes: 0,
        accepted: 0, delivered: 0, quarantined: 0, duplicates: 0, sentUpTo: 0, compressRatio: 1, needBytes: 1,
        evictedBy: { budget: 0, age: 0, ttl: 0, full: 0 },
      };
      this.#streams.set(name, s);
    }
    return s;
  }

  /** The stream's policy, without creating its state. */
  policy(name: string): StreamPolicy {
    return this.#streams.get(name)?.policy ?? streamPolicy(this.#config, name);
  }

  entries(): IterableIterator<[string, StreamState]> {
    return this.#streams.entries();
  }

  values(): IterableIterator<StreamState> {
    return this.#streams.values();
  }

  /** Estimated bytes of the committed rows of every stream. */
  queuedBytes(): number {
    let b = 0;
    for (const s of this.#streams.values()) b += s.bytes;
    return b;
  }

  /** Committed rows of every stream. */
  queuedRecords(): number {
    let n = 0;
    for (const s of this.#streams.values()) n += s.depth;
    return n;
  }

  evicted(): number {
    let n = 0;
    for (const s of this.#streams.values()) n += evictedOf(s);
    return n;
  }

  /** A record was accepted into memory (not yet committed). */
  accept(s: StreamState, bytes: number): void {
    s.pendingDepth++;
    s.pendingBytes += bytes + ROW_OVERHEAD;
    s.accepted++;
    this.totals.accepted++;
  }

  /** A pending record's row was inserted. */
  inserted(stream: string, bytes: number): void {
    const s = this.#streams.get(stream)!;
    s.depth++;
    s.bytes += bytes + ROW_OVERHEAD;
    s.pendingDepth--;
    s.pendingBytes -= bytes + ROW_OVERHEAD;
  }

  /** Rows evicted for a reason, n per stream (their depth and bytes already taken off). */
  countEvicted(stream: string, reason: EvictReason, n: number): void {
    this.stream(stream).evictedBy[reason] += n;
    this.totals.evicted += n;
  }

  /** The database was lost (corruption): nothing is queued or leased any more. */
  forgetQueued(): void {
    for (const s of this.#streams.values()) {
      s.depth = 0;
      s.bytes = 0;
      s.lease = undefined;
    }
  }

  /** Counters, depths and day budgets from a freshly opened file; pendingRecords still wait in memory. */
  load(db: DB, st: Statements, pendingRecords: number, now: number): void {
    for (const s of this.#streams.values()) {
      s.accepted = s.pendingDepth;
      s.delivered = 0;
      s.quarantined = 0;
      s.evictedBy = { budget: 0, age: 0, ttl: 0, full: 0 };
    }
    const totals = { accepted: pendingRecords, delivered: 0, evicted: 0, quarantined: 0, duplicates: this.totals.duplicates };
    for (const row of queuedByStream(db)) {
      const s = this.stream(row.stream);
      s.depth = row.n;
      s.bytes = row.b + row.n * ROW_OVERHEAD;
    }
    for (const row of allCounters(db)) {
      const s = this.stream(row.stream);
      if (row.name === 'accepted') { s.accepted += row.value; totals.accepted += row.value; }
      else if (row.name === 'delivered') { s.delivered = row.value; totals.delivered += row.value; }
      else if (row.name === 'quarantined') { s.quarantined = row.value; totals.quarantined += row.value; }
      else if (row.name.startsWith('evicted_')) {
        const reason = row.name.slice(8) as EvictReason;
        if (reason in s.evictedBy) s.evictedBy[reason] = row.value;
      }
    }
    this.totals = totals;
    for (const [name, s] of this.#streams) {
      const day = metaValue(st, `budget_day:${name}`) ?? utcDay(now);
      s.budget = new SendBudget(s.policy, this.#config.burstSeconds, now, day, sentToday(db, name));
    }
  }

  /** In-memory accounting is changed inside transactions; a rollback must undo it too. */
  snapshot(): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, s] of this.#streams) {
      m.set(k, JSON.stringify([s.depth, s.bytes, s.delivered, s.quarantined, s.evictedBy, s.pendingDepth, s.pendingBytes]));
    }
    m.set('', JSON.stringify(this.totals));
    return m;
  }

  restore(m: Map<string, string>): void {
    for (const [k, s] of this.#streams) {
      const v = m.get(k);
      if (!v) continue;
      [s.depth, s.bytes, s.delivered, s.quarantined, s.evictedBy, s.pendingDepth, s.pendingBytes] = JSON.parse(v);
    }
    this.totals = JSON.parse(m.get('')!);
  }
}

function evictedOf(s: StreamState): number {
  return EVICT_REASONS.reduce((a, r) => a + s.evictedBy[r], 0);
}

/** One stream's line of stats(). */
export function streamStats(s: StreamState, oldestAgeSeconds: number, now: number): StreamStats {
  return {
    depth: s.depth + s.pendingDepth,
    bytes: s.bytes + s.pendingBytes,
    oldestAgeSeconds,
    leased: !!s.lease,
    accepted: s.accepted,
    delivered: s.delivered,
    evicted: evictedOf(s),
    evictedBy: { ...s.evictedBy },
    quarantined: s.quarantined,
    duplicates: s.duplicates,
    sentBytesToday: s.budget.sentToday,
    budgetLeftToday: s.budget.dayLeft(now),
  };
}
