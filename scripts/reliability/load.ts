// Steady load against the agent's local API: telemetry POSTs at a fixed record rate (a record
// counts as accepted only when the agent answered 201 with its seq) and inference requests at
// a fixed rate (latency of each answered request, counts per status).
import { digitBatch } from '../../test/helpers/model-packages.js';
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

export async function inferOnce(url: string, model = 'digits'): Promise<{ status: number; ms: number; body: any }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: INFER_BODY, signal: AbortSignal.timeout(30_000) });
  const body = await res.json().catch(() => undefined);
  return { status: res.status, ms: performance.now() - t0, body };
}

export class InferenceLoad {
  readonly latencies: number[] = [];
  readonly statuses = new Map<number | string, number>();
  readonly versions = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #inflight = new Set<Promise<void>>();

  /** `rate` requests per second, each fired on time (open loop): an overloaded agent sees them pile up. */
  constructor(readonly url: () => string, readonly rate: number) {}

  start(): this {
    const perTick = Math.max(1, Math.round((this.rate * TICK_MS) / 1000));
    this.#timer = setInterval(() => {
      for (let k = 0; k < perTick; k++) {
        const p = this.#one();
        this.#inflight.add(p);
        void p.finally(() => this.#inflight.delete(p));
      }
    }, TICK_MS);
    return this;
  }

  async #one(): Promise<void> {
    try {
      const r = await inferOnce(this.url());
      this.statuses.set(r.status, (this.statuses.get(r.status) ?? 0) + 1);
      if (r.status === 200) {
        this.latencies.push(r.ms);
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
