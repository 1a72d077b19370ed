// Steady load against the agent's local API: telemetry POSTs at a fixed record rate (a record
// counts as accepted only when the agent answered 201 with its seq) and inference requests at
// a fixed rate (latency of each answered request, counts per status).
import { randomBytes } from 'node:crypto';
import { digitBatch } from '../../test/helpers/model-packages.js';
import { RawHttpClient, type Prepared } from './http-client.js';
import { percentile } from './procstat.js';

const TICK_MS = 50;

export class TelemetryLoad {
  /** Seqs answered 201, per stream. */
  readonly sent = new Map<string, number[]>();
  refused = 0;
  #timer: NodeJS.Timeout | undefined;
  #inflight = new Set<Promise<void>>();
  #i = 0;

  /** url() is read on every tick, so a restarted agent (new port) is followed. */
  constructor(readonly url: () => string, readonly rate: number, readonly streams = ['metrics', 'events'], readonly payloadBytes = 0) {}

  start(): this {
    const perTick = Math.max(1, Math.round((this.rate * TICK_MS) / 1000));
    this.#timer = setInterval(() => {
      const stream = this.streams[this.#i++ % this.streams.length]!;
      const pad = this.payloadBytes ? Math.random().toString(36).repeat(Math.ceil(this.payloadBytes / 10)).slice(0, this.payloadBytes) : undefined;
      const records = Array.from({ length: perTick }, (_, k) => ({ payload: { i: this.#i, k, v: Math.sin(this.#i + k), ...(pad ? { pad } : {}) } }));
      const p = this.#post(stream, records);
      this.#inflight.add(p);
      void p.finally(() => this.#inflight.delete(p));
    }, TICK_MS);
    return this;
  }

  async #post(stream: string, records: unknown[]): Promise<void> {
    try {
      const res = await fetch(`${this.url()}/v1/telemetry/${stream}`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records }), signal: AbortSignal.timeout(10_000),
      });
      if (res.status !== 201) {
        this.refused += records.length;
        await res.text();
        return;
      }
      const body = (await res.json()) as { seqs: number[] };
      const list = this.sent.get(stream) ?? [];
      list.push(...body.seqs);
      this.sent.set(stream, list);
    } catch {
      this.refused += records.length; // the agent was down (crash scenario): not accepted
    }
  }

  accepted(): number {
    let n = 0;
    for (const l of this.sent.values()) n += l.length;
    return n;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#inflight]);
  }
}

const digit = digitBatch(0, 1);
const INFER_BODY = JSON.stringify({ inputs: { input: { shape: digit.shape, data: Array.from(digit.data) } } });

export async function inferOnce(url: string, model = 'digits'): Promise<{ status: number; ms: number; body: any; agentMs?: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: INFER_BODY, signal: AbortSignal.timeout(30_000) });
  const body = await res.json().catch(() => undefined);
  // The agent's own account, headers to answer (Server-Timing "total").
  const total = /total;dur=([0-9.]+)/.exec(res.headers.get('server-timing') ?? '')?.[1];
  return { status: res.status, ms: performance.now() - t0, body, agentMs: total === undefined ? undefined : Number(total) };
}

/** inferOnce() on a lean keep-alive client (http-client.ts): the generator's own CPU per request is a fraction of fetch's. */
export class RawInfer {
  readonly #client: RawHttpClient;
  readonly #request: Prepared;

  /** `stamp`: send x-request-start (the send time), so the agent may refuse what waited too long unread. */
  constructor(url: string, model = 'digits', maxConnections = Infinity, readonly stamp = false) {
    this.#client = new RawHttpClient(url, maxConnections);
    this.#request = this.#client.prepare(`/v1/models/${model}/infer`, INFER_BODY);
  }

  async once(): Promise<{ status: number; ms: number; body: any; agentMs?: number }> {
    const t0 = performance.now();
    const sentAt = Date.now();
    const r = await this.#client.request(this.#request, 30_000, this.stamp ? `x-request-start: ${sentAt}\r\n` : '');
    const ms = performance.now() - t0;
    const total = /total;dur=([0-9.]+)/.exec(r.headers)?.[1];
    let body: unknown;
    try {
      body = JSON.parse(r.body);
    } catch {
      body = undefined;
    }
    return { status: r.status, ms, body, agentMs: total === undefined ? undefined : Number(total) };
  }

  get connections(): number {
    return this.#client.opened;
  }

  close(): void {
    this.#client.close();
  }
}

export class InferenceLoad {
  readonly latencies: number[] = [];
  /** Of each request answered 200, as the agent reports it: queue wait and backend time (ms). */
  readonly queueMs: number[] = [];
  readonly serviceMs: number[] = [];
  /** Headers to answer inside the agent (Server-Timing total), ms. */
  readonly agentMs: number[] = [];
  readonly statuses = new Map<number | string, number>();
  readonly versions = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #inflight = new Set<Promise<void>>();

  /**
   * `rate` requests per second, each fired on time (open loop): an overloaded agent sees them
   * pile up. `raw`: send them with this lean client (one agent, no restarts) instead of fetch().
   */
  constructor(readonly url: () => string, readonly rate: number, readonly raw?: RawInfer) {}

  start(): this {
    // Arrivals spread evenly (each due request sent on the first 5 ms tick after its time),
    // not in bursts of a 50 ms tick: a burst makes every admitted request wait for the
    // intake of the whole burst, which says more about the generator than the agent.
    const t0 = performance.now();
    let sent = 0;
    this.#timer = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) * this.rate) / 1000);
      for (; sent < due; sent++) {
        const p = this.#one();
        this.#inflight.add(p);
        void p.finally(() => this.#inflight.delete(p));
      }
    }, 5);
    return this;
  }

  async #one(): Promise<void> {
    try {
      const r = this.raw ? await this.raw.once() : await inferOnce(this.url());
      this.statuses.set(r.status, (this.statuses.get(r.status) ?? 0) + 1);
      if (r.status === 200) {
        this.latencies.push(r.ms);
        this.queueMs.push(Number(r.body?.queueMs));
        this.serviceMs.push(Number(r.body?.latencyMs));
        this.agentMs.push(Number(r.agentMs));
        const v = String(r.body?.version);
        this.versions.set(v, (this.versions.get(v) ?? 0) + 1);
      }
    } catch {
      this.statuses.set('refused', (this.statuses.get('refused') ?? 0) + 1);
    }
  }

  count(status: number | string): number {
    return this.statuses.get(status) ?? 0;
  }

  /** Requests answered with anything but 200 and the listed statuses. */
  failed(expected: (number | string)[] = []): number {
    let n = 0;
    for (const [s, c] of this.statuses) if (s !== 200 && !expected.includes(s)) n += c;
    return n;
  }

  p99(): number | undefined {
    return this.latencies.length ? Math.round(percentile(this.latencies, 99) * 10) / 10 : undefined;
  }

  summary(): string {
    return [...this.statuses].map(([s, c]) => `${s}:${c}`).join(' ');
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#inflight]);
  }
}

/** Runs fn every intervalMs until the deadline; returns how many times it ran. */
export async function repeatUntil(deadline: number, fn: (i: number) => Promise<void>): Promise<number> {
  let i = 0;
  while (Date.now() < deadline) await fn(i++);
  return i;
}

/**
 * Telemetry that compresses badly mixed into one stream: each tick a POST of a few small
 * records and one record of 1..64 KB of random bytes in base64 (images, field examples), as
 * one batch. Accepted = answered 201, as for TelemetryLoad.
 */
export class IncompressibleLoad {
  readonly sent = new Map<string, number[]>();
  refused = 0;
  /** Incompressible records answered 201, and their payload bytes. */
  large = 0;
  largeBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #inflight = new Set<Promise<void>>();
  #i = 0;

  /** `rate` records per second, of which one in `smallPerLarge + 1` is incompressible. */
  constructor(readonly url: () => string, readonly rate: number, readonly stream = 'samples', readonly smallPerLarge = 9, readonly minBytes = 1024, readonly maxBytes = 64 * 1024) {}

  start(): this {
    const perTick = this.smallPerLarge + 1;
    const tickMs = Math.max(10, Math.round((perTick * 1000) / this.rate));
    this.#timer = setInterval(() => {
      const i = this.#i++;
      // Sizes spread evenly on a log scale between minBytes and maxBytes.
      const bytes = Math.round(this.minBytes * (this.maxBytes / this.minBytes) ** Math.random());
      const blob = randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64').slice(0, bytes);
      const records: { payload: unknown }[] = Array.from({ length: this.smallPerLarge }, (_, k) => ({ payload: { i, k, v: Math.sin(i + k) } }));
      records.splice(Math.floor(Math.random() * (records.length + 1)), 0, { payload: { i, image: blob } });
      const p = this.#post(records, bytes);
      this.#inflight.add(p);
      void p.finally(() => this.#inflight.delete(p));
    }, tickMs);
    return this;
  }

  async #post(records: unknown[], largeBytes: number): Promise<void> {
    try {
      const res = await fetch(`${this.url()}/v1/telemetry/${this.stream}`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records }), signal: AbortSignal.timeout(10_000),
      });
      if (res.status !== 201) {
        this.refused += records.length;
        await res.text();
        return;
      }
      const body = (await res.json()) as { seqs: number[] };
      const list = this.sent.get(this.stream) ?? [];
      list.push(...body.seqs);
      this.sent.set(this.stream, list);
      this.large++;
      this.largeBytes += largeBytes;
    } catch {
      this.refused += records.length;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#inflight]);
  }
}
