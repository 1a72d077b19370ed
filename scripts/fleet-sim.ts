// The fleet simulator (issue 20): N simulated devices as real MQTT clients speaking the
// agent's protocol (scripts/fleet-sim-worker.ts), spread over several worker processes so one
// 2-core machine reaches 10,000 connections. Each worker reports its counters four times a
// second; FleetSim sums them and keeps the per-second CONNACK histogram of the whole fleet.
//
//   npx tsx scripts/fleet-sim.ts --broker mqtt://127.0.0.1:1883 --devices 1000 [--workers 4]
//
// Used as a library by scripts/bench-fleet-scale.ts and test/fleet-scale-2000.test.ts.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SimOptions, ToWorker, WorkerCounters } from './fleet-sim-worker.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export type Totals = Omit<WorkerCounters, 'connectsPerSecond'>;

export interface FleetSimOptions extends Partial<SimOptions> {
  url: string;
  devices: number;
  workers?: number;
  /** Device ids are `${prefix}${i}`. */
  prefix?: string;
}

export const SIM_DEFAULTS: Omit<SimOptions, 'url'> = {
  minMs: 1000, capMs: 10_000, stableAfterMs: 10_000, backlogSpreadMs: 5000, ackTimeoutMs: 15_000,
  connectTimeoutMs: 15_000, keepaliveSeconds: 30, batchRecords: 50, steady: { everyMs: 0, records: 0 }, rampMs: 0,
};

interface SimWorker { proc: ChildProcess; ids: string[]; counters?: WorkerCounters }

export class FleetSim {
  readonly ids: string[];
  readonly #workers: SimWorker[] = [];
  /** Epoch second -> CONNACKs the whole fleet got in that second. */
  readonly connectsPerSecond = new Map<number, number>();
  #exited = '';

  constructor(readonly opts: FleetSimOptions) {
    const prefix = opts.prefix ?? 'sim-';
    this.ids = Array.from({ length: opts.devices }, (_, i) => `${prefix}${i}`);
  }

  async start(): Promise<void> {
    const n = Math.max(1, Math.min(this.opts.workers ?? 4, this.ids.length));
    const simOpts: SimOptions = { ...SIM_DEFAULTS, ...this.opts, url: this.opts.url } as SimOptions;
    const ready: Promise<void>[] = [];
    for (let w = 0; w < n; w++) {
      const ids = this.ids.filter((_, i) => i % n === w);
      const proc = fork(path.join(here, 'fleet-sim-worker.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const entry: SimWorker = { proc, ids };
      this.#workers.push(entry);
      proc.on('exit', (code, sig) => { if (code !== 0) this.#exited ||= `simulator worker ${w} exited (${code ?? sig})`; });
      ready.push(new Promise((resolve) => {
        proc.on('message', (m: { type: string; counters?: WorkerCounters }) => {
          if (m.type === 'ready') resolve();
          if (m.type === 'counters' && m.counters) {
            entry.counters = m.counters;
            for (const [s, k] of Object.entries(m.counters.connectsPerSecond)) this.connectsPerSecond.set(Number(s), (this.connectsPerSecond.get(Number(s)) ?? 0) + k);
          }
        });
      }));
    }
    await Promise.all(ready);
    for (const w of this.#workers) w.proc.send({ type: 'start', ids: w.ids, opts: simOpts } satisfies ToWorker);
  }

  /** A worker that died is a failed run, not a slow one. */
  get failure(): string {
    return this.#exited;
  }

  /** The fleet's counters (summed over the workers' latest reports). */
  totals(): Totals {
    const t: Totals = { devices: 0, connected: 0, everConnected: 0, connects: 0, reconnects: 0, busy: 0, batchesSent: 0, resends: 0, batchesAcked: 0,
      recordsMade: 0, recordsAcked: 0, duplicatesAcked: 0, openBatches: 0, minLastConnectAt: 0, oldestOpenSentAt: 0, drift: 0, cmdReplies: 0 };
    for (const w of this.#workers) {
      const c = w.counters;
      if (!c) continue;
      for (const k of Object.keys(t) as (keyof Totals)[]) {
        if (k === 'oldestOpenSentAt') {
          if (c.oldestOpenSentAt && (!t.oldestOpenSentAt || c.oldestOpenSentAt < t.oldestOpenSentAt)) t.oldestOpenSentAt = c.oldestOpenSentAt;
        } else if (k === 'minLastConnectAt') {
          t.minLastConnectAt = w === this.#workers[0] ? c.minLastConnectAt : (c.minLastConnectAt && t.minLastConnectAt ? Math.min(t.minLastConnectAt, c.minLastConnectAt) : 0);
        } else t[k] += c[k];
      }
    }
    return t;
  }

  /** Whether every worker has reported since `sinceMs` (so totals() is that fresh). */
  async fresh(): Promise<Totals> {
    await new Promise((r) => setTimeout(r, 300));
    return this.totals();
  }

  #send(m: ToWorker, ids?: string[]): void {
    for (const w of this.#workers) {
      if (!ids) { w.proc.send(m); continue; }
      const mine = ids.filter((id) => w.ids.includes(id));
      if (mine.length) w.proc.send({ ...m, ids: mine } as ToWorker);
    }
  }

  /** Every device (or those listed) records `records` more telemetry records. */
  record(records: number, ids?: string[]): void {
    this.#send({ type: 'record', records, ids }, ids);
  }

  /** The devices lose their connection uncleanly (the broker sends their Last Will) and stay away. */
  drop(ids: string[]): void {
    this.#send({ type: 'drop', ids }, ids);
  }

  /** Dropped devices connect again. */
  revive(ids: string[]): void {
    this.#send({ type: 'revive', ids }, ids);
  }

  /** The peak of the per-second CONNACK histogram from `fromMs` on, skipping its first second. */
  peakConnectRate(fromMs: number, skipSeconds = 1): { peak: number; at: number } {
    const first = Math.floor(fromMs / 1000) + skipSeconds;
    let peak = 0, at = 0;
    for (const [s, k] of this.connectsPerSecond) if (s >= first && k > peak) { peak = k; at = s; }
    return { peak, at };
  }

  /** CONNACKs in each second from `fromMs` for `seconds` seconds. */
  connectHistogram(fromMs: number, seconds: number): number[] {
    const first = Math.floor(fromMs / 1000);
    return Array.from({ length: seconds }, (_, i) => this.connectsPerSecond.get(first + i) ?? 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#workers.map((w) => new Promise<void>((resolve) => {
      if (w.proc.exitCode !== null || w.proc.signalCode !== null) return resolve();
      const t = setTimeout(() => { w.proc.kill('SIGKILL'); }, 5000);
      w.proc.once('exit', () => { clearTimeout(t); resolve(); });
      try { w.proc.send({ type: 'stop' } satisfies ToWorker); } catch { w.proc.kill('SIGKILL'); }
    })));
  }
}

async function main(): Promise<void> {
  const { Command, InvalidArgumentError } = await import('commander');
  const int = (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
    return n;
  };
  const o = new Command('fleet-sim')
    .description('simulated devices speaking the agent protocol against a broker and edge-fleet serve')
    .requiredOption('--broker <url>', 'broker URL (mqtt://host:port)')
    .option('--devices <n>', 'simulated devices', int, 1000)
    .option('--workers <n>', 'worker processes', int, 4)
    .option('--cap <ms>', 'reconnect cap (mqtt.reconnectMaxMs)', int, SIM_DEFAULTS.capMs)
    .option('--every <ms>', 'each device records --records telemetry records every <ms> (0 = none)', int, 10_000)
    .option('--records <n>', 'records per device per --every', int, 10)
    .option('--prefix <p>', 'device id prefix', 'sim-')
    .parse().opts<{ broker: string; devices: number; workers: number; cap: number; every: number; records: number; prefix: string }>();
  const sim = new FleetSim({ url: o.broker, devices: o.devices, workers: o.workers, capMs: o.cap, prefix: o.prefix, steady: { everyMs: o.every, records: o.records } });
  await sim.start();
  const timer = setInterval(() => process.stdout.write(JSON.stringify(sim.totals()) + '\n'), 2000);
  const stop = (): void => { clearInterval(timer); void sim.stop().then(() => process.exit(0)); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((err: unknown) => { process.stderr.write(`fleet-sim: ${err instanceof Error ? err.message : String(err)}\n`); process.exit(1); });
}
