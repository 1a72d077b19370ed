// Moves telemetry from the SQLite buffer to the fleet. The buffer is the only queue of
// record: a batch is leased, published QoS 1 while connected, and acked (deleted) only when
// it is confirmed. With acks from the controller (mqtt.telemetryAck "controller", the
// default) that is the controller's end-to-end ack, sent after its database commit; a
// PUBACK alone is not enough, because a broker restarted without persistence PUBACKs and
// drops what nobody is subscribed to. A batch not confirmed within ackTimeoutMs goes back
// to the buffer and is sent again, after a capped backoff and one batch at a time, so a
// controller that stays away does not make the agent fill the broker's queue with re-sends.
// With "broker" the PUBACK confirms (for controllers that do not ack). A disconnect nacks
// every open lease, so nothing waits in mqtt.js's memory. A bounded window of unconfirmed
// batches and a token bucket (records/s) keep a drain after a long outage from flooding the link.
import type { Lease, LeaseOptions } from '../telemetry/types.js';
import type { Logger } from '../log.js';
import { describe } from '../errors.js';
import { Backoff } from './backoff.js';
import { batchId, type TelemetryAck } from '../../protocol/telemetry-ack.js';

/** The part of TelemetryBuffer the drain uses. */
export interface LeaseSource {
  /** maxBytes is the message limit; opts.maxRecords the rate budget (see TelemetryBuffer.lease). */
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
  /** The rate budget: records per second, leased as at most the tokens at hand per batch. */
  recordsPerSecond: number;
  /** The message limit (encoded bytes): only a record that cannot fit it alone is poison. */
  batchMaxBytes: number;
  /** How often to look for new records when the buffer was empty (ms). */
  idlePollMs?: number;
  /** Who confirms a batch: the controller's end-to-end ack, or the broker's PUBACK. Default 'broker'. */
  ack?: AckMode;
  /** 'controller': a batch without an ack after this long is sent again (ms). */
  ackTimeoutMs?: number;
  /** 'controller': longest pause before a re-send while no ack comes (ms). */
  ackRetryMaxMs?: number;
}

export type AckMode = 'controller' | 'broker';
/** First pause before a re-send after an ack timeout (ms); doubles up to ackRetryMaxMs. */
const ACK_RETRY_MIN_MS = 1000;

/** Publishes one batch; resolves on PUBACK, rejects when the message was not acknowledged. */
export type PublishBatch = (stream: string, payload: Buffer) => Promise<void>;

export interface DrainStats {
  running: boolean;
  ackMode: AckMode;
  inflight: number;
  /** Batches the broker PUBACKed that wait for the controller's ack. */
  awaitingAck: number;
  /** Batches and records the broker PUBACKed (in either mode; re-sends count again). */
  batchesPubacked: number;
  recordsPubacked: number;
  /** Batches sent again because no ack came in time (ackTimeoutMs). */
  ackTimeouts: number;
  /** Valid acks that matched no open batch (late, or for a batch already re-sent). */
  acksUnmatched: number;
  /** Ack messages refused as malformed. */
  acksRefused: number;
  /** While acks are missing: when the next batch may go (ISO time), else null. */
  resendAfter: string | null;
  batchesAcked: number;
  recordsAcked: number;
  batchesFailed: number;
  nackedOnDisconnect: number;
  batchesQuarantined: number;
  lastError?: string;
}

/** One published batch waiting for its confirmation. */
interface OpenBatch {
  lease: Lease;
  sentAt: number;
  /** The broker's PUBACK came (with controller acks, the batch still waits). */
  pubacked: boolean;
  timer?: NodeJS.Timeout;
}

export class TelemetryDrain {
  readonly #open = new Map<string, OpenBatch>();
  #running = false;
  #pumping = false;
  #tokens: number;
  #lastRefill = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #waiters: (() => void)[] = [];
  #stats = {
    batchesAcked: 0, recordsAcked: 0, batchesPubacked: 0, recordsPubacked: 0, batchesFailed: 0, batchesQuarantined: 0, nackedOnDisconnect: 0,
    ackTimeouts: 0, acksUnmatched: 0, acksRefused: 0, lastError: undefined as string | undefined,
  };
  readonly #ackMode: AckMode;
  readonly #resend: Backoff;
  /** No batch goes before this time (ms since the epoch): acks are missing, backing off. */
  #resendAt = 0;
  /** When the last ack timeout advanced the backoff; older batches timing out do not advance it again. */
  #lastMissAt = 0;
  /** Ack timeouts since the last ack: while > 0 one batch at a time is out. */
  #misses = 0;
  #lastRefusedLog = 0;
  /**
   * The message limit in force: opts.batchMaxBytes, or less when the broker takes only smaller
   * packets (its CONNACK says so; set by the fleet link at each connect).
   */
  messageLimit: number;

  constructor(
    private readonly source: LeaseSource,
    private readonly publish: PublishBatch,
    private readonly opts: DrainOptions,
    private readonly log: Logger,
  ) {
    this.#tokens = opts.recordsPerSecond;
    this.messageLimit = opts.batchMaxBytes;
    this.#ackMode = opts.ack ?? 'broker';
    this.#resend = new Backoff(Math.min(ACK_RETRY_MIN_MS, opts.ackRetryMaxMs ?? 60_000), opts.ackRetryMaxMs ?? 60_000);
  }

  get ackMode(): AckMode {
    return this.#ackMode;
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
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const [id, b] of this.#open) {
      clearTimeout(b.timer);
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
   * The controller's ack (already checked by parseAck): confirms the open batch it names
   * exactly (stream, first, last, count and the sha256 of the message as sent). An ack that
   * matches none (late, for a re-send, or forged) is counted and ignored: nothing is deleted.
   */
  onAck(ack: Pick<TelemetryAck, 'stream' | 'first' | 'last' | 'count' | 'batch'>): number {
    if (this.#ackMode !== 'controller') return 0;
    let n = 0;
    for (const b of [...this.#open.values()]) {
      const l = b.lease;
      if (l.stream !== ack.stream || l.firstSeq !== ack.first || l.lastSeq !== ack.last || l.count !== ack.count) continue;
      if (batchId(l.payload) !== ack.batch) continue;
      this.#confirm(b);
      n++;
    }
    if (n === 0) {
      this.#stats.acksUnmatched++;
      this.log.debug({ stream: ack.stream, first: ack.first, last: ack.last }, 'telemetry ack matches no open batch; ignored');
      return 0;
    }
    // The controller answers: whatever made us back off is over.
    this.#misses = 0;
    this.#resendAt = 0;
    this.#lastMissAt = 0;
    this.#resend.reset();
    this.#after();
    return n;
  }

  /** A malformed ack message: counted, logged (at most every 10 s), dropped. */
  refuseAck(topic: string, problem: string): void {
    this.#stats.acksRefused++;
    const now = Date.now();
    if (now - this.#lastRefusedLog < 10_000) return;
    this.#lastRefusedLog = now;
    this.log.warn({ topic, problem, refused: this.#stats.acksRefused }, `refused a telemetry ack: ${problem}`);
  }

  /**
   * Resolves when the buffer had nothing more to lease and no batch is unconfirmed, or
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
  /** flush() calls in progress: the rate limit is off while an operator waits for a flush. */
  #flushing = 0;

  stats(): DrainStats {
    let awaitingAck = 0;
    for (const b of this.#open.values()) if (b.pubacked) awaitingAck++;
    const { batchesAcked, recordsAcked, batchesPubacked, recordsPubacked, batchesFailed, nackedOnDisconnect, batchesQuarantined, ackTimeouts, acksUnmatched, acksRefused, lastError } = this.#stats;
    return {
      running: this.#running, ackMode: this.#ackMode, inflight: this.#open.size, awaitingAck,
      batchesAcked, recordsAcked, batchesPubacked, recordsPubacked, batchesFailed, nackedOnDisconnect, batchesQuarantined, ackTimeouts, acksUnmatched, acksRefused,
      resendAfter: this.#resendAt > Date.now() ? new Date(this.#resendAt).toISOString() : null,
      ...(lastError !== undefined ? { lastError } : {}),
    };
  }

  #refill(): void {
    const now = Date.now();
    const rate = this.opts.recordsPerSecond;
    // At most one second of burst: an idle link does not earn a flood.
    this.#tokens = Math.min(rate, this.#tokens + ((now - this.#lastRefill) / 1000) * rate);
    this.#lastRefill = now;
  }

  /** While acks are missing, one batch at a time probes the controller. */
  #window(): number {
    return this.#misses > 0 ? 1 : this.opts.inflight;
  }

  #pump(): void {
    this.#pumping = true;
    try {
      while (this.#running && this.#open.size < this.#window()) {
        const wait = this.#resendAt - Date.now();
        if (wait > 0) {
          this.#schedule(wait);
          return;
        }
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
          // The message limit and the rate budget are separate: a record larger than what the
          // tokens would buy in bytes is not "too large", it only goes in a batch of its own.
          lease = this.source.lease(this.messageLimit, { maxRecords: Math.max(1, Math.floor(this.#tokens)) });
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
        this.#send(lease);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #send(lease: Lease): void {
    const b: OpenBatch = { lease, sentAt: Date.now(), pubacked: false };
    this.#open.set(lease.id, b);
    if (this.#ackMode === 'controller') {
      // Not past the buffer's own lease expiry: after it the records are leasable again anyway.
      const ms = Math.max(1, Math.min(this.opts.ackTimeoutMs ?? 15_000, lease.expiresAt - b.sentAt));
      b.timer = setTimeout(() => this.#ackTimedOut(b), ms);
      b.timer.unref();
    }
    this.publish(lease.stream, lease.payload).then(
      () => {
        this.#stats.batchesPubacked++;
        this.#stats.recordsPubacked += lease.count;
        if (this.#open.get(lease.id) !== b) return; // confirmed, timed out or nacked at a disconnect already
        if (this.#ackMode === 'controller') {
          b.pubacked = true; // the broker has it; the records stay until the controller has them
          return;
        }
        this.#confirm(b);
        this.#after();
      },
      (err: unknown) => {
        if (this.#open.get(lease.id) !== b) return;
        this.#close(b);
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

  #close(b: OpenBatch): void {
    clearTimeout(b.timer);
    this.#open.delete(b.lease.id);
  }

  /** Delivery confirmed: the records leave the buffer. */
  #confirm(b: OpenBatch): void {
    this.#close(b);
    this.#safe(() => this.source.ack(b.lease.id));
    this.#stats.batchesAcked++;
    this.#stats.recordsAcked += b.lease.count;
  }

  /** No ack in time: the records go back to the buffer, and the next send waits (backoff). */
  #ackTimedOut(b: OpenBatch): void {
    if (this.#open.get(b.lease.id) !== b) return;
    this.#close(b);
    this.#safe(() => this.source.nack(b.lease.id));
    this.#stats.ackTimeouts++;
    this.#misses++;
    const now = Date.now();
    // Batches that went out before the last timeout do not lengthen the pause again.
    if (b.sentAt >= this.#lastMissAt) {
      const delay = this.#resend.next();
      this.#resendAt = now + delay;
      this.#lastMissAt = now;
      this.log.warn({ stream: b.lease.stream, records: b.lease.count, pubacked: b.pubacked, resendInMs: delay, timeouts: this.#stats.ackTimeouts },
        'no ack from the controller for a telemetry batch; it stays in the buffer and is sent again');
    }
    this.#after();
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
