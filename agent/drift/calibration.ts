// How large each drift statistic gets from sampling noise alone, at a given window size: the
// null distribution the verdict compares against (issue 27). A fixed PSI or Jensen-Shannon
// level is crossed by noise in windows of a few hundred and misses real change in windows of
// many thousands; the null's high quantile at the window's own size is neither.
//
// A parametric bootstrap over the reference's bin counts, as NannyML derives thresholds from
// the reference itself: a pseudo-reference of the reference's size and a pseudo-window of n
// values, both drawn from the reference's shares, and the statistic between them, repeated
// (the pseudo-reference matters: with a reference of 8,000 and windows of 10,000 its own noise
// is half the total). The mean and spread of each statistic are kept per calibrated size; a
// gamma distribution with those moments, on the distance scale (see `power`), gives the far tail
// probabilities the verdict needs, beyond what a thousand replicates see. Between calibrated sizes the moments are
// interpolated linearly in 1/n (the noise of a share falls as 1/n); sizes below the smallest
// are bootstrapped on demand. Seeded: the same reference gives the same calibration anywhere.
import { mulberry32 } from '../../tools/prng.js';
import type { CategoricalProfile, NumericProfile, Profile } from './profile.js';
import { binnedStatistics, gammaQ } from './stats.js';

/** The statistics calibrated by the bootstrap; KS and chi-square use their own known distributions. */
export type BootstrappedStatistic = 'psi' | 'jensenShannon' | 'wasserstein';

/** Mean and standard deviation of a statistic's null, on the scale of `power` (sqrt PSI, JS, W1). */
export type NullMoments = [mean: number, sd: number];

export interface EncodedCalibration {
  format: 'edge-drift-calibration/1';
  replicates: number;
  seed: number;
  /** Window sizes calibrated, ascending; 0 = unbounded (the window's shares equal the truth's: only the reference's own noise). */
  sizes: number[];
  /** Per feature, in the profile's order: per statistic, the null's moments at each size. */
  features: { name: string; nulls: Partial<Record<BootstrappedStatistic, NullMoments[]>> }[];
}

/** 1-2-5 from 100 to 10,000, and unbounded: every window and fleet size interpolates between two. */
export const DEFAULT_CALIBRATION_SIZES = [100, 200, 500, 1000, 2000, 5000, 10_000, 0];
export const DEFAULT_REPLICATES = 1000;
const DEFAULT_SEED = 0x27d7;
/** Sizes bootstrapped on demand (below the smallest calibrated) kept per reference. */
const MAX_EXTRA_SIZES = 16;

/**
 * The scale each statistic's gamma is fitted on: the distance scale (sqrt PSI, JS, W1). On it the
 * gamma's tail is mostly heavier than the bootstrap's own: against 50,000-replicate bootstraps of
 * the digits reference at window 1,000, the level at p = 1e-4 comes out 3-12% higher for sqrt PSI,
 * 2-5% for JS, -4% to +16% for W1 (fitted on PSI itself or JS squared: within -4..+3%; W1 squared:
 * 11% lower). The margin is wanted: on features with many tied values
 * (the digits' p95 and p99 image summaries) random splits of held-out data spread PSI 15-35% more
 * than the bootstrap from the reference's bin shares does.
 */
const power: Record<BootstrappedStatistic, number> = { psi: 0.5, jensenShannon: 1, wasserstein: 1 };

export class WindowCalibration {
  readonly reference: Profile;
  readonly replicates: number;
  readonly seed: number;
  /** size -> per feature -> per statistic moments; size 0 = unbounded. */
  readonly #bySize = new Map<number, Partial<Record<BootstrappedStatistic, NullMoments>>[]>();
  #extra: number[] = [];

  constructor(reference: Profile, opts: { replicates?: number; seed?: number } = {}, encoded?: EncodedCalibration) {
    this.reference = reference;
    this.replicates = encoded?.replicates ?? opts.replicates ?? DEFAULT_REPLICATES;
    this.seed = encoded?.seed ?? opts.seed ?? DEFAULT_SEED;
    if (!Number.isInteger(this.replicates) || this.replicates < 50) throw new RangeError(`calibration replicates must be an integer >= 50, got ${this.replicates}`);
    if (encoded) this.#load(encoded);
  }

  /** Calibrated sizes, ascending, 0 (unbounded) last. */
  get sizes(): number[] {
    return [...this.#bySize.keys()].sort((a, b) => (a === 0 ? 1 : b === 0 ? -1 : a - b));
  }

  /** Bootstraps these window sizes (those not calibrated yet). */
  calibrate(sizes: number[]): this {
    const todo = [...new Set(sizes)].filter((n) => !this.#bySize.has(n));
    for (const n of todo) if (!(n === 0 || (Number.isInteger(n) && n >= 1))) throw new RangeError(`calibration window size must be an integer >= 1 (or 0 for unbounded), got ${n}`);
    if (todo.length === 0) return this;
    const perSize = todo.map(() => this.reference.features.map(() => ({}) as Partial<Record<BootstrappedStatistic, NullMoments>>));
    this.reference.features.forEach((f, i) => {
      const moments = f.type === 'numeric' ? this.#numeric(f, i, todo) : this.#categorical(f, i, todo);
      todo.forEach((_, s) => (perSize[s][i] = moments[s]));
    });
    todo.forEach((n, s) => this.#bySize.set(n, perSize[s]));
    return this;
  }

  /**
   * The null's moments of feature i's statistic in a window of n values: calibrated, or
   * interpolated in 1/n between the two calibrated sizes around n, or bootstrapped now (below
   * the smallest calibrated size, or with nothing above n).
   */
  nullOf(i: number, stat: BootstrappedStatistic, n: number): NullMoments | undefined {
    if (!this.#bySize.has(n) && !this.#bracket(n)) this.#calibrateExtra(n);
    const exact = this.#bySize.get(n);
    if (exact) return exact[i]?.[stat];
    const [lo, hi] = this.#bracket(n)!; // lo < n < hi (hi may be 0: unbounded)
    const a = this.#bySize.get(lo)![i]?.[stat], b = this.#bySize.get(hi)![i]?.[stat];
    if (!a || !b) return undefined;
    const x = 1 / n, xa = 1 / lo, xb = hi === 0 ? 0 : 1 / hi;
    const t = (x - xb) / (xa - xb);
    return [b[0] + t * (a[0] - b[0]), b[1] + t * (a[1] - b[1])];
  }

  /** P(statistic >= value) in a window of n from the reference's distribution; undefined when not calibrated (e.g. W1 of a constant feature). */
  pValue(i: number, stat: BootstrappedStatistic, n: number, value: number): number | undefined {
    const m = this.nullOf(i, stat, n);
    if (!m) return undefined;
    return gammaSurvival(m, Math.pow(Math.max(0, value), power[stat]));
  }

  /** The statistic's value whose pValue is p. */
  level(i: number, stat: BootstrappedStatistic, n: number, p: number): number | undefined {
    const m = this.nullOf(i, stat, n);
    if (!m) return undefined;
    return Math.pow(gammaQuantileAbove(m, p), 1 / power[stat]);
  }

  encode(): EncodedCalibration {
    const sizes = this.sizes.filter((n) => !this.#extra.includes(n));
    return {
      format: 'edge-drift-calibration/1',
      replicates: this.replicates,
      seed: this.seed,
      sizes,
      features: this.reference.names.map((name, i) => {
        const nulls: EncodedCalibration['features'][number]['nulls'] = {};
        for (const stat of ['psi', 'jensenShannon', 'wasserstein'] as const) {
          const per = sizes.map((n) => this.#bySize.get(n)![i]?.[stat]);
          if (per.every((m) => m)) nulls[stat] = per.map((m) => [round(m![0]), round(m![1])]);
        }
        return { name, nulls };
      }),
    };
  }

  #load(e: EncodedCalibration): void {
    const what = 'drift calibration';
    if (!e || e.format !== 'edge-drift-calibration/1' || !Array.isArray(e.sizes) || !Array.isArray(e.features)) {
      throw new TypeError(`${what}: expected {format: "edge-drift-calibration/1", sizes, features} (written by edge-model pack --calib)`);
    }
    if (e.features.length !== this.reference.names.length || e.features.some((f, i) => f.name !== this.reference.names[i])) {
      throw new TypeError(`${what}: its features do not match the reference profile's`);
    }
    e.sizes.forEach((n, s) => {
      this.#bySize.set(n, e.features.map((f) => {
        const out: Partial<Record<BootstrappedStatistic, NullMoments>> = {};
        for (const [stat, per] of Object.entries(f.nulls ?? {}) as [BootstrappedStatistic, NullMoments[]][]) {
          const m = per?.[s];
          if (!Array.isArray(m) || !(m[0] >= 0) || !(m[1] >= 0)) throw new TypeError(`${what}: ${f.name}.${stat} at size ${n} is not [mean, sd]`);
          out[stat] = [m[0], m[1]];
        }
        return out;
      }));
    });
  }

  /** The calibrated sizes just below and above n (above may be 0, unbounded); undefined when n is below the smallest or above the largest. */
  #bracket(n: number): [number, number] | undefined {
    const sizes = this.sizes;
    const finite = sizes.filter((s) => s > 0);
    if (finite.length === 0 || n < finite[0]) return undefined;
    let lo = finite[0];
    for (const s of finite) if (s <= n) lo = s;
    const hi = finite.find((s) => s > n) ?? (this.#bySize.has(0) ? 0 : undefined);
    return hi === undefined ? undefined : [lo, hi];
  }

  #calibrateExtra(n: number): void {
    if (this.#extra.length >= MAX_EXTRA_SIZES) this.#bySize.delete(this.#extra.shift()!);
    this.calibrate([n]);
    this.#extra.push(n);
  }

  #numeric(f: NumericProfile, i: number, sizes: number[]): Partial<Record<BootstrappedStatistic, NullMoments>>[] {
    const counts = f.hist.counts;
    const m = Math.round(sum(counts));
    if (m === 0) return sizes.map(() => ({}));
    // The reference holds nothing outside its own edges (they are its minimum and maximum),
    // but a new value lands there with probability about 1/(m+1) on each side: windows draw so.
    const inRange = shares(counts);
    const windowShares = Float64Array.from(inRange);
    const last = windowShares.length - 1;
    if (counts[0] === 0) windowShares[0] = 1 / (m + 1);
    if (counts[last] === 0) windowShares[last] = 1 / (m + 1);
    const edges = f.hist.edges, scale = f.std;
    return this.#run(i, sizes, m, inRange, normalise(windowShares), (r, c) => binnedStatistics(r, c, edges, scale));
  }

  #categorical(f: CategoricalProfile, i: number, sizes: number[]): Partial<Record<BootstrappedStatistic, NullMoments>>[] {
    // The same slots the verdict builds: the reference's codes ascending, then "other".
    const codes = [...f.counts.counts.keys()].sort((a, b) => a - b);
    const counts = [...codes.map((k) => f.counts.counts.get(k)!), f.counts.other];
    const m = Math.round(sum(counts));
    if (m === 0) return sizes.map(() => ({}));
    const p = shares(counts);
    return this.#run(i, sizes, m, p, p, (r, c) => binnedStatistics(r, c));
  }

  #run(
    feature: number, sizes: number[], m: number, refShares: Float64Array, windowShares: Float64Array,
    statsOf: (ref: Float64Array, cur: ArrayLike<number>) => Partial<Record<BootstrappedStatistic | 'ks', number>>,
  ): Partial<Record<BootstrappedStatistic, NullMoments>>[] {
    const stats: BootstrappedStatistic[] = ['psi', 'jensenShannon', 'wasserstein'];
    const acc = sizes.map(() => stats.map(() => ({ s: 0, s2: 0, seen: 0 })));
    const pseudoRef = new Float64Array(refShares.length), pseudoWin = new Float64Array(refShares.length);
    for (let r = 0; r < this.replicates; r++) {
      draw(mulberry32(mix(this.seed, feature, r, -1)), refShares, m, pseudoRef);
      for (let s = 0; s < sizes.length; s++) {
        const n = sizes[s];
        // Unbounded: the window's shares are the truth's; only the reference is noisy.
        if (n === 0) pseudoWin.set(windowShares);
        else draw(mulberry32(mix(this.seed, feature, r, n)), windowShares, n, pseudoWin);
        const v = statsOf(pseudoRef, pseudoWin);
        for (let k = 0; k < stats.length; k++) {
          const x = v[stats[k]];
          if (x === undefined || !Number.isFinite(x)) continue;
          const t = Math.pow(Math.max(0, x), power[stats[k]]);
          const a = acc[s][k];
          a.s += t;
          a.s2 += t * t;
          a.seen++;
        }
      }
    }
    return acc.map((perStat) => {
      const out: Partial<Record<BootstrappedStatistic, NullMoments>> = {};
      perStat.forEach((a, k) => {
        if (a.seen < this.replicates) return;
        const mean = a.s / a.seen;
        out[stats[k]] = [mean, Math.sqrt(Math.max(0, a.s2 / a.seen - mean * mean))];
      });
      return out;
    });
  }
}

/** P(T >= t) for T gamma-distributed with these moments; a point mass when the spread is ~0. */
export function gammaSurvival([mean, sd]: NullMoments, t: number): number {
  if (!(sd > 1e-12 * Math.max(mean, 1e-300)) || !(mean > 0)) return t > mean * (1 + 1e-9) + 1e-15 ? 0 : 1;
  const shape = (mean * mean) / (sd * sd), scale = (sd * sd) / mean;
  return t <= 0 ? 1 : gammaQ(shape, t / scale);
}

/** The t with gammaSurvival(moments, t) = p (bisection: monotone, and only needed per window). */
export function gammaQuantileAbove(moments: NullMoments, p: number): number {
  const [mean, sd] = moments;
  if (!(sd > 1e-12 * Math.max(mean, 1e-300)) || !(mean > 0)) return mean;
  let lo = 0, hi = mean + 10 * sd;
  while (gammaSurvival(moments, hi) > p) hi *= 2;
  for (let k = 0; k < 80 && hi - lo > 1e-12 * hi; k++) {
    const mid = (lo + hi) / 2;
    if (gammaSurvival(moments, mid) > p) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * Multinomial counts of n draws over the slots (shares summing to 1), as a chain of binomials:
 * O(slots) per replicate whatever n, so a device can calibrate a window of 100,000 (or a fleet
 * its merged size) as cheaply as one of 100.
 */
function draw(rand: () => number, p: Float64Array, n: number, out: Float64Array): void {
  let left = n, mass = 1;
  for (let i = 0; i < p.length; i++) {
    if (left === 0 || i === p.length - 1) {
      out[i] = left;
      left = 0;
      continue;
    }
    const c = mass > 0 ? binomial(rand, left, Math.min(1, p[i] / mass)) : 0;
    out[i] = c;
    left -= c;
    mass -= p[i];
  }
}

/**
 * A Binomial(n, p) count: exact by inversion when the smaller expected count is below 30, else
 * the normal approximation (continuity-corrected, clamped), whose error at such counts is far
 * below the bootstrap's own.
 */
export function binomial(rand: () => number, n: number, p: number): number {
  if (p <= 0 || n <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - binomial(rand, n, 1 - p);
  const mean = n * p;
  if (mean < 30) {
    const q = 1 - p, s = p / q, a = (n + 1) * s;
    let r = Math.pow(q, n), u = rand(), x = 0;
    while (u > r && x < n) {
      u -= r;
      x++;
      r *= a / x - s;
    }
    return x;
  }
  const u = 1 - rand(), v = rand();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  const x = Math.round(mean + Math.sqrt(mean * (1 - p)) * z);
  return x < 0 ? 0 : x > n ? n : x;
}

function shares(counts: ArrayLike<number>): Float64Array {
  return normalise(Float64Array.from(counts as ArrayLike<number>));
}

function normalise(p: Float64Array): Float64Array {
  const s = sum(p);
  for (let i = 0; i < p.length; i++) p[i] = s > 0 ? p[i] / s : 0;
  return p;
}

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

/** A 32-bit seed per (calibration seed, feature, replicate, size): replicates do not depend on which sizes are calibrated together. */
function mix(seed: number, feature: number, replicate: number, size: number): number {
  let h = seed >>> 0;
  for (const x of [feature, replicate, size]) {
    h = Math.imul(h ^ (x >>> 0), 0x9e3779b1);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
  }
  return h >>> 0;
}

function round(x: number): number {
  return Number(x.toPrecision(6));
}
