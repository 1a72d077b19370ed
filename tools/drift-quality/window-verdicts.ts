// Draws windows of feature rows and counts the verdicts they get: the measured false-alarm rate
// (rows from the reference's distribution) or detection power (shifted rows). The verdict is the
// device's own: a window profile compared by compareProfiles against the calibrated reference.
import { compareProfiles } from '../../agent/drift/compare.js';
import { loadReference, referenceFromRows, type LoadedReference } from '../../agent/drift/reference.js';
import type { DriftThresholds, ResolvedSpec } from '../../agent/drift/spec.js';
import { mulberry32 } from '../prng.js';
import type { FeatureRows } from './feature-rows.js';

export interface VerdictCounts {
  windows: number;
  ok: number;
  warn: number;
  alert: number;
}

export interface WindowDraw {
  windowSize: number;
  windows: number;
  seed: number;
  /** Which row a window takes next; default uniform with replacement (a bootstrap of the rows). */
  pick?: (rand: () => number) => number;
  /** Default: the reference's own (its package's thresholds over the defaults). */
  thresholds?: DriftThresholds;
}

export function countVerdicts(reference: LoadedReference, rows: FeatureRows, d: WindowDraw): VerdictCounts {
  const rand = mulberry32(d.seed);
  const pick = d.pick ?? ((r: () => number) => (r() * rows.count) | 0);
  const from = reference.spec.features.map((f) => f.from);
  const th = d.thresholds ?? reference.spec.thresholds;
  const window = reference.profile.emptyLike(200);
  const out: VerdictCounts = { windows: d.windows, ok: 0, warn: 0, alert: 0 };
  const row = new Float64Array(rows.width);
  for (let w = 0; w < d.windows; w++) {
    window.reset();
    for (let i = 0; i < d.windowSize; i++) {
      const k = pick(rand);
      for (let j = 0; j < rows.width; j++) row[j] = rows.values[k * rows.width + j];
      window.add(row);
    }
    out[compareProfiles(reference.profile, window, from, th, reference.calibration).verdict]++;
  }
  return out;
}

/** Share of windows flagged (warn or alert). */
export const flagged = (c: VerdictCounts): number => (c.warn + c.alert) / c.windows;

/**
 * The false-alarm rate measured with data the model never trained on, and no more of it than
 * there is: the rows are split at random, again and again, into a reference (rebuilt and
 * calibrated from that part, as `edge-model pack --calib` would) and a pool; windows drawn from
 * one pool without replacement are disjoint, so each is an independent sample from the same
 * distribution as its reference. (Resampling one fixed pool with replacement would not do: every
 * window would carry that pool's own deviation from the reference, measuring the pool, not the
 * method.) Per window size, as many disjoint windows as the pool holds are taken from each split
 * until `windows` are counted.
 */
export function splitFalseAlarms(
  spec: ResolvedSpec,
  rows: FeatureRows,
  d: { referenceSize: number; windowSizes: number[]; windows: number; seed: number; sketchK?: number; replicates?: number },
): Map<number, VerdictCounts> {
  const rand = mulberry32(d.seed);
  const out = new Map(d.windowSizes.map((n) => [n, { windows: 0, ok: 0, warn: 0, alert: 0 } as VerdictCounts]));
  const pool = rows.count - d.referenceSize;
  for (const n of d.windowSizes) if (n > pool) throw new RangeError(`${rows.count} rows cannot hold a reference of ${d.referenceSize} and a window of ${n}`);
  const order = Int32Array.from({ length: rows.count }, (_, i) => i);
  const at = (k: number) => rows.values.subarray(k * rows.width, (k + 1) * rows.width);
  const from = spec.features.map((f) => f.from);
  while ([...out.values()].some((c) => c.windows < d.windows)) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = (rand() * (i + 1)) | 0;
      const x = order[i];
      order[i] = order[j];
      order[j] = x;
    }
    const sizes = d.windowSizes.filter((n) => out.get(n)!.windows < d.windows);
    const built = referenceFromRows(spec, Array.from(order.subarray(0, d.referenceSize), at), d.sketchK, { sizes, replicates: d.replicates });
    const reference = loadReference(built);
    const window = reference.profile.emptyLike(200);
    for (const n of sizes) {
      const c = out.get(n)!;
      for (let start = d.referenceSize; start + n <= rows.count && c.windows < d.windows; start += n) {
        window.reset();
        for (let i = 0; i < n; i++) window.add(at(order[start + i]));
        c[compareProfiles(reference.profile, window, from, reference.spec.thresholds, reference.calibration).verdict]++;
        c.windows++;
      }
    }
  }
  return out;
}
