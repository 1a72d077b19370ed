// Moves telemetry from the SQLite buffer to the broker. The buffer is the only queue of
// record: a batch is leased, published QoS 1 while connected, and acked (deleted) only on
// its PUBACK. A disconnect nacks every open lease, so nothing waits in mqtt.js's memory.
// A bounded window of unacknowledged batches and a token bucket (records/s) keep a drain
// after a long outage from flooding the link.
import type { Lease, LeaseOptions } from '../telemetry/types.js';
import type { Logger } from '../log.js';
import { describe } from '../errors.js';

/** The part of TelemetryBuffer the drain uses. */
export interface LeaseSource {
  lease(maxBytes: number, opts?: LeaseOptions): Lease | undefined;
  ack(leaseId: string): unknown;
  nack(leaseId: string): unknown;
  /** Moves a lease's records aside with a reason (a batch the broker refuses for good). */
  quarantine?(leaseId: string, reason: string): unknown;
}

/** An MQTT 5 PUBACK reason code >= 0x80 is the broker's final word on that message. */
export function refusedByBroker(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && code >= 0x80 ? code : undefined;
}

export interface DrainOptions {
  inflight: number;
  recordsPerSecond: number;
  batchMaxBytes: number;
  /** How often to look for new records when the buffer was empty (ms). */
  idlePollMs?: number;
}

/** Publishes one batch; resolves on PUBACK, rejects when the message was not acknowledged. */
export type PublishBatch = (stream: string, payload: Buffer) => Promise<void>;

export interface DrainStats {
  running: boolean;
  inflight: number;
  batchesAcked: number;
  recordsAcked: number;
  batchesFailed: number;
  nackedOnDisconnect: number;
  batchesQuarantined: number;
  lastError?: string;
}

export class TelemetryDrain {
  readonly #open = new Map<string, Lease>();
  #generation = 0;
  #running = false;
  #pumping = false;
  #tokens: number;
  #lastRefill = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #waiters: (() => void)[] = [];
  #stats = { batchesAcked: 0, recordsAcked: 0, batchesFailed: 0, batchesQuarantined: 0, nackedOnDisconnect: 0, lastError: undefined as string | undefined };

  constructor(
    private readonly source: LeaseSource,
    private readonly publish: PublishBatch,
    private readonly opts: DrainOptions,
    private readonly log: Logger,
  ) {
    this.#tokens = opts.recordsPerSecond;
  }

  /** Connected: start draining. */
  resume(): void {
    if (this.#running) return;
    this.#running = true;
    this.kick();
  }

  /** Disconnected or stopping: nothing more is published; open leases go back to the buffer. */
  pause(): void {
    this.#running = false;
    this.#generation++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const id of this.#open.keys()) {
      this.#safe(() => this.source.nack(id));
      this.#stats.nackedOnDisconnect++;
    }
    this.#open.clear();
    this.#notify();
  }

  /** Look for records now (after record(), or from telemetry.flush). */
  kick(): void {
    if (!this.#running || this.#pumping) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pump();
  }

  /**
   * Resolves when the buffer had nothing more to lease and no batch is unacknowledged, or
   * rejects when the link drops. Ignores the rate limit while waiting (an operator asked).
   */
  async flush(timeoutMs: number): Promise<{ recordsAcked: number }> {
    const before = this.#stats.recordsAcked;
    const deadline = Date.now() + timeoutMs;
    this.#flushing++;
    try {
      return await this.#flushLoop(before, deadline, timeoutMs);
    } finally {
      this.#flushing--;
    }
  }

  async #flushLoop(before: number, deadline: number, timeoutMs: number): Promise<{ recordsAcked: number }> {
    for (;;) {
      if (!this.#running) throw new Error('not connected to the broker');
      this.kick();
      if (this.#open.size === 0 && !this.#pumping && this.#idle) break;
      if (Date.now() > deadline) throw new Error(`telemetry still draining after ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50).unref();
      });
    }
    return { recordsAcked: this.#stats.recordsAcked - before };
  }

  #idle = false;
  #bytesPerRecord = 0;
  /** flush() calls in progress: the rate limit is off while an operator waits for a flush. */
  #flushing = 0;

  stats(): DrainStats {
    return { running: this.#running, inflight: this.#open.size, ...this.#stats };
  }

  /**
   * A batch no bigger than the tokens at hand (by the last batch's bytes per record), so the
   * drain rate is kept batch by batch, not only on average. Never below the buffer's 1 KiB minimum.
   */
  #leaseBytes(): number {
    if (!this.#bytesPerRecord) return Math.min(this.opts.batchMaxBytes, Math.max(1024, Math.floor(this.#tokens * 64)));
    return Math.min(this.opts.batchMaxBytes, Math.max(1024, Math.floor(this.#tokens * this.#bytesPerRecord)));
  }

  #refill(): void {
    const now = Date.now();
    const rate = this.opts.recordsPerSecond;
    // At most one second of burst: an idle link does not earn a flood.
    this.#tokens = Math.min(rate, this.#tokens + ((now - this.#lastRefill) / 1000) * rate);
    this.#lastRefill = now;
  }

  #pump(): void {
    this.#pumping = true;
    try {
      while (this.#running && this.#open.size < this.opts.inflight) {
        this.#refill();
        if (this.#flushing > 0) this.#tokens = Math.max(this.#tokens, this.opts.recordsPerSecond);
        if (this.#tokens <= 0) {
          // Wait until the bucket is positive again.
          const waitMs = Math.ceil((-this.#tokens / this.opts.recordsPerSecond) * 1000) + 1;
          this.#schedule(waitMs);
          return;
        }
        let lease: Lease | undefined;
        try {
          lease = this.source.lease(this.#leaseBytes());
        } catch (err) {
          this.#stats.lastError = describe(err);
          this.log.error({ err: describe(err) }, 'telemetry lease failed');
          this.#schedule(1000);
          return;
        }
        if (!lease) {
          this.#idle = true;
          if (this.#open.size === 0) this.#schedule(this.opts.idlePollMs ?? 200);
          this.#notify();
          return;
        }
        this.#idle = false;
        this.#tokens -= lease.count;
        if (lease.count > 0) this.#bytesPerRecord = lease.payload.length / lease.count;
        this.#send(lease);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #send(lease: Lease): void {
    const gen = this.#generation;
    this.#open.set(lease.id, lease);
    this.publish(lease.stream, lease.payload).then(
      () => {
        if (gen !== this.#generation) return; // already nacked at the disconnect; the buffer re-sends
        this.#open.delete(lease.id);
        this.#safe(() => this.source.ack(lease.id));
        this.#stats.batchesAcked++;
        this.#stats.recordsAcked += lease.count;
        this.#after();
      },
      (err: unknown) => {
        if (gen !== this.#generation) return;
        this.#open.delete(lease.id);
        this.#stats.batchesFailed++;
        this.#stats.lastError = describe(err);
        const refused = refusedByBroker(err);
        // Re-sending what the broker refused (not authorised, too large, bad payload) would
        // block the stream behind it forever: those records go to quarantine, counted.
        if (refused !== undefined && this.source.quarantine) {
          this.#stats.batchesQuarantined++;
          this.log.warn({ stream: lease.stream, records: lease.count, reasonCode: refused }, 'broker refused a telemetry batch; quarantined');
          this.#safe(() => this.source.quarantine!(lease.id, `broker refused the batch with reason code 0x${refused.toString(16)}: ${describe(err)}`));
        } else {
          this.#safe(() => this.source.nack(lease.id));
        }
        this.#after();
      },
    );
  }

  #after(): void {
    this.#notify();
    if (this.#running && !this.#pumping && this.#timer === undefined) this.#pump();
  }

  #schedule(ms: number): void {
    if (!this.#running || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, ms);
    this.#timer.unref();
  }

  #notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const r of w) r();
  }

  #safe(fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      this.log.warn({ err: describe(err) }, 'telemetry buffer refused an ack/nack');
    }
  }
}
