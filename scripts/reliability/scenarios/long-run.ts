// Long run: a steady telemetry + inference load for the whole duration with the agent's RSS
// sampled each second; the growth trend is the least-squares slope over the second half (after
// warm-up: caches, JIT and SQLite's page cache fill during the first half).
import { figuresOf, Rig, type ScenarioOptions } from '../rig.js';
import type { Figures } from '../figures.js';
import { InferenceLoad, TelemetryLoad } from '../load.js';
import { MemorySampler } from '../procstat.js';

/** The stated bound: RSS growth over the second half, MB per hour. */
export const SLOPE_BOUND_MB_PER_HOUR = 30;

/** The V8 heap in use, from the agent's own /metrics (prom-client default metrics). */
async function heapUsedMb(url: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const m = /^edge_agent_nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\d+(?:\.\d+)?)/m.exec(text);
    return m ? Number(m[1]) / 1024 / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Least-squares slope, MB per hour, of (ms timestamp, MB) points. */
function slope(points: { t: number; mb: number }[]): number {
  const n = points.length;
  if (n < 3) return 0;
  const xs = points.map((p) => (p.t - points[0]!.t) / 3_600_000);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = points.reduce((a, p) => a + p.mb, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i]! - mx) * (points[i]!.mb - my); den += (xs[i]! - mx) ** 2; }
  return den === 0 ? 0 : num / den;
}

export interface LongRunFigures extends Figures {
  heapSlopeMbPerHour: number;
  heapSamples: number;
  slopeMbPerHour: number;
  firstHalfPeakMb: number;
  secondHalfPeakMb: number;
  samples: number;
}

export async function run(opts: ScenarioOptions): Promise<LongRunFigures> {
  const rig = await new Rig().start();
  try {
    const tel = new TelemetryLoad(() => rig.url, opts.rate).start();
    const inf = new InferenceLoad(() => rig.url, Math.max(1, Math.round(opts.rate / 5))).start();
    const deadline = Date.now() + opts.durationMs;
    // The heap floor: the lowest heap-in-use reading of each 10 s window, i.e. what survives
    // the collections in it. A leak raises the floor; a cache filling up levels off.
    const heap: { t: number; mb: number }[] = [];
    let windowMin = Infinity;
    let windowEnd = Date.now() + 10_000;
    const heapTimer = setInterval(() => {
      void heapUsedMb(rig.url).then((mb) => {
        if (mb !== undefined) windowMin = Math.min(windowMin, mb);
        if (Date.now() >= windowEnd && windowMin < Infinity) {
          heap.push({ t: Date.now(), mb: windowMin });
          windowMin = Infinity;
          windowEnd += 10_000;
        }
      });
    }, 1000);
    let next = Date.now() + 60_000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(1000, deadline - Date.now())));
      if (Date.now() >= next) {
        next += 60_000;
        const s = rig.samplers[0]!;
        opts.log?.(`long-run: ${Math.round((deadline - Date.now()) / 1000)} s left, RSS ${(s.samples.at(-1)!.rssKb / 1024).toFixed(1)} MB, accepted ${tel.accepted()}, inferences ${inf.latencies.length}`);
      }
    }
    clearInterval(heapTimer);
    await tel.stop();
    await inf.stop();
    const heapSlope = Math.round(slope(heap.slice(Math.floor(heap.length / 2))) * 10) / 10;
    const all = rig.samplers[0]!;
    all.stop();
    const half = Math.floor(all.samples.length / 2);
    const second = new MemorySampler(all.pid);
    second.samples.push(...all.samples.slice(half));
    const peak = (xs: { rssKb: number }[]): number => Math.round((Math.max(...xs.map((x) => x.rssKb)) / 1024) * 10) / 10;
    const rssSlope = Math.round(second.slopeMbPerHour() * 10) / 10;
    const f = await figuresOf(rig, {
      scenario: 'long-run', load: `${opts.rate} rec/s + ${inf.rate} inf/s for ${Math.round(opts.durationMs / 1000)} s`, faults: 0,
      p99Ms: inf.p99(), sent: tel.sent,
      notes: `RSS slope ${rssSlope} MB/h over the 2nd half (bound ${SLOPE_BOUND_MB_PER_HOUR}), heap floor slope ${heapSlope} MB/h (${heap[0]?.mb.toFixed(1)} -> ${heap.at(-1)?.mb.toFixed(1)} MB); inference ${inf.summary()}`,
    });
    return { ...f, slopeMbPerHour: rssSlope, heapSlopeMbPerHour: heapSlope, heapSamples: heap.length, firstHalfPeakMb: peak(all.samples.slice(0, half)), secondHalfPeakMb: peak(all.samples.slice(half)), samples: all.samples.length };
  } finally {
    await rig.stop();
  }
}
