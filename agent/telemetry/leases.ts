// Leases: the records of one stream handed to the fleet link in one message, until the
// broker confirms them (ack: the rows are deleted), delivery fails (nack: they go back to the
// head of their stream), the lease lapses, or they are quarantined as poison. One lease per
// stream is out at a time, so a stream is delivered in order.
import { randomBytes } from 'node:crypto';
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import type { RawLine } from '../../protocol/telemetry-batch.js';
import { packMessage, type Packing } from './packer.js';
import type { Statements } from './store.js';
import { ROW_OVERHEAD, type LiveLease, type StreamState, type StreamTable } from './streams.js';
import type { Lease } from './types.js';

/** Lapsed leases remembered at most (a late PUBACK of an older one deletes nothing). */
const MAX_LAPSED = 1000;

export class LeaseTable {
  readonly #streams: StreamTable;
  readonly #live = new Map<string, LiveLease>();
  /** Lapsed or nacked leases, kept so a late PUBACK still deletes what it confirmed. */
  readonly #lapsed = new Map<string, LiveLease>();
  #counter = 0;
  readonly #prefix = randomBytes(3).toString('hex');

  constructor(streams: StreamTable) {
    this.#streams = streams;
  }

  live(id: string): LiveLease | undefined {
    return this.#live.get(id);
  }

  /** A live or a remembered lapsed lease. */
  find(id: string): LiveLease | undefined {
    return this.#live.get(id) ?? this.#lapsed.get(id);
  }

  /**
   * Hands out the packed lines of a stream as a lease until expiresAt. Counts the records
   * already sent in an earlier lease as duplicates.
   */
  open(stream: string, s: StreamState, lines: RawLine[], payload: Buffer, expiresAt: number): Lease {
    const records: Lease['records'] = [];
    for (const l of lines) records.push({ seq: l.seq, stream, ts: l.ts, payload: JSON.parse(l.json) });
    const first = lines[0].seq;
    const last = lines[lines.length - 1].seq;
    if (first <= s.sentUpTo) {
      let dup = 0;
      for (const l of lines) if (l.seq <= s.sentUpTo) dup++;
      s.duplicates += dup;
      this.#streams.totals.duplicates += dup;
    }
    s.sentUpTo = Math.max(s.sentUpTo, last);
    const id = `${this.#prefix}-${++this.#counter}`;
    const live: LiveLease = { id, stream, first, last, count: lines.length, expiresAt };
    s.lease = live;
    this.#live.set(id, live);
    return { id, stream, records, payload, count: lines.length, firstSeq: first, lastSeq: last, expiresAt };
  }

  /** The lease is settled (acked or quarantined): forgotten, live or lapsed. */
  close(l: LiveLease): void {
    this.#end(l);
    this.#lapsed.delete(l.id);
  }

  /** The lease's records go back to the head of their stream; a late ack still deletes them. */
  lapse(l: LiveLease): void {
    this.#end(l);
    this.#lapsed.set(l.id, l);
    if (this.#lapsed.size > MAX_LAPSED) this.#lapsed.delete(this.#lapsed.keys().next().value as string);
  }

  lapseExpired(now: number, log: Logger | undefined): void {
    for (const l of this.#live.values()) {
      if (l.expiresAt <= now) {
        this.lapse(l);
        log?.debug({ lease: l.id, stream: l.stream }, 'telemetry lease lapsed; its records return to the queue');
      }
    }
  }

  /** The database is gone (stop, corruption): no lease can be acked any more. */
  clear(): void {
    this.#live.clear();
    this.#lapsed.clear();
    for (const s of this.#streams.values()) s.lease = undefined;
  }

  #end(l: LiveLease): void {
    this.#live.delete(l.id);
    const s = this.#streams.get(l.stream);
    if (s?.lease?.id === l.id) s.lease = undefined;
  }
}

/** Packs the head of a stream into its next message (packer.ts decides; this reads the rows). */
export function packHead(
  st: Statements, stream: string, db: string, s: StreamState, messageLimit: number, maxRecords: number, budgetBytes: number, now: number,
): Packing {
  const rows = (function* (it: IterableIterator<{ seq: number; ts: number; bytes: number; payload: string }>) {
    for (const r of it) yield { seq: r.seq, ts: r.ts, bytes: r.bytes, json: r.payload };
  })(st.head.iterate(stream) as IterableIterator<{ seq: number; ts: number; bytes: number; payload: string }>);
  const packing = packMessage({
    stream, db, rows, messageLimit, compressRatio: s.compressRatio,
    budget: { records: maxRecords, bytes: budgetBytes, bytesFull: s.budget.full(now) },
  });
  // Stop reading: the statement is busy until its iterator is closed.
  rows.return(undefined);
  return packing;
}

/** Charges a message to the stream's day budget and persists what was sent today. */
export function chargeBudget(st: Statements, stream: string, s: StreamState, bytes: number, now: number, log: Logger | undefined): void {
  if (!s.budget.limited) return;
  s.budget.charge(bytes, now);
  try {
    st.setCounter.run(stream, 'sent_today', s.budget.sentToday);
    st.setMeta.run(`budget_day:${stream}`, s.budget.day);
  } catch (err) {
    log?.warn({ err: describe(err) }, 'could not persist the day budget');
  }
}

/** Deletes the acked rows first..last of a stream (inside a write). Returns how many. */
export function deleteAcked(st: Statements, streams: StreamTable, stream: string, first: number, last: number): number {
  const rows = st.rangeSize.get(stream, first, last) as { n: number; b: number | null };
  if (!rows.n) return 0;
  st.deleteRange.run(stream, first, last);
  st.addCounter.run(stream, 'delivered', rows.n);
  const s = streams.stream(stream);
  s.depth -= rows.n;
  s.bytes -= (rows.b ?? 0) + rows.n * ROW_OVERHEAD;
  s.delivered += rows.n;
  streams.totals.delivered += rows.n;
  return rows.n;
}

/**
 * Moves records to the quarantine table with the reason (inside a write), keeping at most
 * maxQuarantineRecords there (negative: no limit). Returns how many were moved.
 */
export function moveToQuarantine(
  st: Statements, streams: StreamTable, seqs: number[], reason: string, now: number, maxQuarantineRecords: number,
): number {
  let moved = 0;
  for (const seq of seqs) {
    const row = st.getRecord.get(seq) as { stream: string; bytes: number } | undefined;
    if (!row) continue;
    st.toQuarantine.run(reason, now, seq);
    st.deleteOne.run(seq);
    st.addCounter.run(row.stream, 'quarantined', 1);
    const s = streams.stream(row.stream);
    s.depth--;
    s.bytes -= row.bytes + ROW_OVERHEAD;
    s.quarantined++;
    streams.totals.quarantined++;
    moved++;
  }
  if (maxQuarantineRecords >= 0) st.trimQuarantine.run(maxQuarantineRecords);
  return moved;
}
