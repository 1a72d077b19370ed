// Resident and proportional memory of a process, from /proc (Linux).
import { readFileSync } from 'node:fs';

export interface Memory {
  rssKb: number;
  pssKb: number;
}

export function memoryOf(pid: number): Memory | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return { rssKb: field('Rss'), pssKb: field('Pss') };
  } catch {
    return undefined;
  }
}

/** Samples a process's memory every intervalMs until stopped; keeps the peak and the series. */
export class MemorySampler {
  readonly samples: { t: number; rssKb: number }[] = [];
  peakRssKb = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly pid: number, readonly intervalMs = 1000) {}

  start(): this {
    const take = (): void => {
      const m = memoryOf(this.pid);
      if (!m) return;
      this.samples.push({ t: Date.now(), rssKb: m.rssKb });
      this.peakRssKb = Math.max(this.peakRssKb, m.rssKb);
    };
    take();
    this.#timer = setInterval(take, this.intervalMs);
    this.#timer.unref();
    return this;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Least-squares slope of RSS over time, in MB per hour. */
  slopeMbPerHour(): number {
    const n = this.samples.length;
    if (n < 3) return 0;
    const t0 = this.samples[0].t;
    const xs = this.samples.map((s) => (s.t - t0) / 3_600_000);
    const ys = this.samples.map((s) => s.rssKb / 1024);
    const mx = xs.reduce((a, b) => a + b, 0) / n;
    const my = ys.reduce((a, b) => a + b, 0) / n;
    let num = 0, den = 0;
    for (let i = 0; i < n; i++) {
      num += (xs[i] - mx) * (ys[i] - my);
      den += (xs[i] - mx) ** 2;
    }
    return den === 0 ? 0 : num / den;
  }
}

export { percentile } from '../../agent/rollout/stats.js';
