// Long run: a steady telemetry + inference load for the whole duration, the agent run as the
// systemd unit runs it (its node flags and environment), RSS sampled each second.
//
// RSS alone cannot tell a leak from the garbage collector: V8's old generation grows between
// major collections and its committed size only shrinks after one, so RSS saws up and down by
// 5-30 MB over minutes, and the slope of a 5-minute half mostly measures where the teeth fall.
// So the verdict reads two series from the agent's own /metrics each second, and the stated
// bound applies to each, as a least-squares slope over the second half (after warm-up):
//  - the live JS heap: heap in use read just after each major collection (a JS leak);
//  - memory outside the JS heap: RSS minus the V8 heap's committed size (SQLite's page cache,
//    malloc arenas, ONNX Runtime and the addon's buffers, thread stacks: a native leak).
// The committed JS heap is bounded separately, by --max-old-space-size in the unit.
import { figuresOf, Rig, type ScenarioOptions } from '../rig.js';
import type { Figures } from '../figures.js';
import { InferenceLoad, TelemetryLoad } from '../load.js';
import { memoryOf, MemorySampler } from '../procstat.js';
import { shippedRun } from '../shipped.js';
import { heapOf } from '../agent-metrics.js';

/**
 * The stated bound, MB per hour, on both series. It is about what a 10-minute run can resolve:
 * 30 MB/h is 2.5 MB over its second half, the size of the steps the readings take anyway (a
 * young-generation page, an SQLite cache step). It is a smoke test, not a guarantee: at
 * exactly 30 MB/h an agent with MemoryMax=512M and a ~170 MB working set would be killed after
 * about 11 h. Run `--duration 1h` for a bound worth trusting (same code, 6x the resolution).
 */
export const SLOPE_BOUND_MB_PER_HOUR = 30;

/** Least-squares slope, MB per hour, of (ms timestamp, MB) points. */
function slope(points: { t: number; mb: number }[]): number {
  const n = points.length;
  if (n < 3) return NaN;
  const xs = points.map((p) => (p.t - points[0]!.t) / 3_600_000);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = points.reduce((a, p) => a + p.mb, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i]! - mx) * (points[i]!.mb - my); den += (xs[i]! - mx) ** 2; }
  return den === 0 ? 0 : num / den;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

export interface LongRunFigures extends Figures {
  /** Slope of the live JS heap (in use after each major collection) over the 2nd half, MB/h. */
  heapSlopeMbPerHour: number;
  /** Heap readings taken just after a major collection. */
  heapSamples: number;
  /** Readings of /metrics paired with an RSS sample (one a second when the agent answers). */
  metricsSamples: number;
  /** Slope of RSS minus the V8 heap's committed size over the 2nd half, MB/h. */
  nativeSlopeMbPerHour: number;
  /** Raw RSS slope over the 2nd half, MB/h (GC sawtooth included; reported, not judged). */
  slopeMbPerHour: number;
  /** Both judged slopes within SLOPE_BOUND_MB_PER_HOUR. */
  withinBound: boolean;
  firstHalfPeakMb: number;
  secondHalfPeakMb: number;
  samples: number;
  nodeArgs: string[];
}

export async function run(opts: ScenarioOptions): Promise<LongRunFigures> {
  const shipped = shippedRun();
  const rig = await new Rig({ nodeArgs: shipped.nodeArgs, env: shipped.env }).start();
  try {
    const tel = new TelemetryLoad(() => rig.url, opts.rate).start();
    const inf = new InferenceLoad(() => rig.url, Math.max(1, Math.round(opts.rate / 5))).start();
    const deadline = Date.now() + opts.durationMs;
    const live: { t: number; mb: number }[] = [];
    const native: { t: number; mb: number }[] = [];
    let majorGcs: number | undefined;
    let reading = false;
    const heapTimer = setInterval(() => {
      if (reading) return; // a slow /metrics answer: skip the tick rather than pile up
      reading = true;
      void heapOf(rig.url).then((h) => {
        reading = false;
        const m = memoryOf(rig.agent.proc.pid!);
        if (!h || !m) return;
        const t = Date.now();
        native.push({ t, mb: m.rssKb / 1024 - h.totalMb });
        if (majorGcs !== undefined && h.majorGcs > majorGcs) live.push({ t, mb: h.usedMb });
        majorGcs = h.majorGcs;
      });
    }, 1000);
    let next = Date.now() + 60_000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(1000, deadline - Date.now())));
      if (Date.now() >= next) {
        next += 60_000;
        const s = rig.samplers[0]!;
        opts.log?.(`long-run: ${Math.round((deadline - Date.now()) / 1000)} s left, RSS ${(s.samples.at(-1)!.rssKb / 1024).toFixed(1)} MB, outside the JS heap ${native.at(-1)?.mb.toFixed(1)} MB, live heap ${live.at(-1)?.mb.toFixed(1)} MB after ${live.length} major GCs, accepted ${tel.accepted()}, inferences ${inf.latencies.length}`);
      }
    }
    clearInterval(heapTimer);
    await tel.stop();
    await inf.stop();
    const all = rig.samplers[0]!;
    all.stop();
    const half = Math.floor(all.samples.length / 2);
    const mid = all.samples[half]?.t ?? Date.now();
    const secondHalf = (xs: { t: number; mb: number }[]): { t: number; mb: number }[] => xs.filter((p) => p.t >= mid);
    const second = new MemorySampler(all.pid);
    second.samples.push(...all.samples.slice(half));
    const peak = (xs: { rssKb: number }[]): number => round1(Math.max(...xs.map((x) => x.rssKb)) / 1024);
    const rssSlope = round1(second.slopeMbPerHour());
    const heapSlope = round1(slope(secondHalf(live)));
    const nativeSlope = round1(slope(secondHalf(native)));
    // Fewer than 3 major collections in the 2nd half: the live heap is not judged (NaN fails the bound).
    const withinBound = heapSlope <= SLOPE_BOUND_MB_PER_HOUR && nativeSlope <= SLOPE_BOUND_MB_PER_HOUR;
    const range = (xs: { mb: number }[]): string => xs.length ? `${xs[0]!.mb.toFixed(1)} -> ${xs.at(-1)!.mb.toFixed(1)} MB` : 'no readings';
    const f = await figuresOf(rig, {
      scenario: 'long-run', load: `${opts.rate} rec/s + ${inf.rate} inf/s for ${Math.round(opts.durationMs / 1000)} s`, faults: 0,
      p99Ms: inf.p99(), sent: tel.sent,
      notes: `over the 2nd half, bound ${SLOPE_BOUND_MB_PER_HOUR} MB/h ${withinBound ? 'met' : 'NOT met'}: live JS heap ${heapSlope} MB/h (after each of ${live.length} major GCs, ${range(live)}), outside the JS heap ${nativeSlope} MB/h (${range(native)}); raw RSS ${rssSlope} MB/h (GC sawtooth included); node ${shipped.nodeArgs.join(' ')}; inference ${inf.summary()}`,
    });
    return {
      ...f, slopeMbPerHour: rssSlope, heapSlopeMbPerHour: heapSlope, heapSamples: live.length, metricsSamples: native.length, nativeSlopeMbPerHour: nativeSlope, withinBound,
      firstHalfPeakMb: peak(all.samples.slice(0, half)), secondHalfPeakMb: peak(all.samples.slice(half)), samples: all.samples.length, nodeArgs: shipped.nodeArgs,
    };
  } finally {
    await rig.stop();
  }
}
