// The drift statistics, each on its own, over plain arrays: bin counts for PSI, Jensen-Shannon
// and chi-square; weighted step CDFs (sorted values with weights) for Wasserstein-1 and KS.
// Written by hand because they are small, and the product needs their exact conventions.

/** Proportions with empty bins lifted to `floor` (PSI and JS are undefined on zeros). */
function proportions(counts: ArrayLike<number>, floor: number): Float64Array {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i];
  const p = new Float64Array(counts.length);
  for (let i = 0; i < counts.length; i++) p[i] = Math.max(total > 0 ? counts[i] / total : 0, floor);
  return p;
}

/** Floor used for empty bins: the usual 1e-4 (Evidently, NannyML). */
export const EMPTY_BIN = 1e-4;

/**
 * Population Stability Index between the reference (expected) and the current (actual) bin
 * counts: sum over bins of (a - e) * ln(a / e), with empty bins lifted to 1e-4.
 */
export function psi(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  checkSameLength(reference, current, 'psi');
  const e = proportions(reference, EMPTY_BIN);
  const a = proportions(current, EMPTY_BIN);
  let s = 0;
  for (let i = 0; i < e.length; i++) s += (a[i] - e[i]) * Math.log(a[i] / e[i]);
  return s;
}

/**
 * Jensen-Shannon distance (the square root of the divergence, natural log, as scipy's
 * jensenshannon): 0 for equal distributions, at most sqrt(ln 2) ~ 0.833.
 */
export function jensenShannon(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  checkSameLength(reference, current, 'jensenShannon');
  const p = proportions(reference, 0);
  const q = proportions(current, 0);
  const sp = sum(p), sq = sum(q);
  if (sp === 0 || sq === 0) return 0;
  let d = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i] / sp, qi = q[i] / sq, m = (pi + qi) / 2;
    if (pi > 0) d += 0.5 * pi * Math.log(pi / m);
    if (qi > 0) d += 0.5 * qi * Math.log(qi / m);
  }
  return Math.sqrt(Math.max(0, d));
}

/** A distribution given as ascending values with positive weights (a sketch's items, or a sample). */
export interface WeightedSample {
  values: ArrayLike<number>;
  weights: ArrayLike<number>;
}

/** Walks the union of both supports, calling fn(x, nextX, Fa(x), Fb(x)) on each step. */
function walkCdfs(a: WeightedSample, b: WeightedSample, fn: (x: number, next: number, fa: number, fb: number) => void): void {
  const wa = sum(a.weights), wb = sum(b.weights);
  if (wa <= 0 || wb <= 0) throw new RangeError('both distributions need at least one value');
  let i = 0, j = 0, ca = 0, cb = 0;
  const na = a.values.length, nb = b.values.length;
  while (i < na || j < nb) {
    const x = j >= nb || (i < na && a.values[i] <= b.values[j]) ? a.values[i] : b.values[j];
    while (i < na && a.values[i] === x) ca += a.weights[i++];
    while (j < nb && b.values[j] === x) cb += b.weights[j++];
    const next = Math.min(i < na ? a.values[i] : Infinity, j < nb ? b.values[j] : Infinity);
    fn(x, next, ca / wa, cb / wb);
  }
}

/** Wasserstein-1 (earth mover's) distance between two weighted samples: the area between their CDFs. */
export function wasserstein1(a: WeightedSample, b: WeightedSample): number {
  let area = 0;
  walkCdfs(a, b, (x, next, fa, fb) => {
    if (Number.isFinite(next)) area += Math.abs(fa - fb) * (next - x);
  });
  return area;
}

/** The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two CDFs. */
export function ksStatistic(a: WeightedSample, b: WeightedSample): number {
  let d = 0;
  walkCdfs(a, b, (_x, _n, fa, fb) => {
    d = Math.max(d, Math.abs(fa - fb));
  });
  return d;
}

/**
 * Survival function of the Kolmogorov distribution, Q(l) = P(K > l)
 * = 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 l^2); for small l the dual (theta-function) series,
 * which converges there in a few terms.
 */
export function kolmogorovQ(lambda: number): number {
  if (!(lambda > 0)) return 1;
  if (lambda < 1.18) {
    // 1 - sqrt(2 pi)/l * sum_{j>=1} exp(-(2j-1)^2 pi^2 / (8 l^2))
    const y = Math.exp((-Math.PI * Math.PI) / (8 * lambda * lambda));
    let s = 0;
    for (let j = 1; j <= 8; j++) s += Math.pow(y, (2 * j - 1) * (2 * j - 1));
    return clamp01(1 - (Math.sqrt(2 * Math.PI) / lambda) * s);
  }
  let s = 0;
  for (let j = 1; j <= 100; j++) {
    const term = Math.exp(-2 * j * j * lambda * lambda);
    s += j % 2 ? term : -term;
    if (term < 1e-16) break;
  }
  return clamp01(2 * s);
}

/**
 * Asymptotic p-value of the two-sample KS statistic d for sample sizes n and m, with
 * Stephens' small-sample correction (Numerical Recipes): Q((sqrt(ne) + 0.12 + 0.11/sqrt(ne)) d).
 */
export function ksPValue(d: number, n: number, m: number): number {
  if (n <= 0 || m <= 0) return 1;
  const en = Math.sqrt((n * m) / (n + m));
  return kolmogorovQ((en + 0.12 + 0.11 / en) * d);
}

export interface ChiSquareResult {
  statistic: number;
  df: number;
  pValue: number;
}

/**
 * Chi-square test of homogeneity on a 2 x K table (reference counts vs current counts):
 * does the current window come from the same category distribution as the reference?
 * Categories empty in both are left out; df = K - 1.
 */
export function chiSquare(reference: ArrayLike<number>, current: ArrayLike<number>): ChiSquareResult {
  checkSameLength(reference, current, 'chiSquare');
  const nr = sum(reference), nc = sum(current), n = nr + nc;
  if (nr <= 0 || nc <= 0) return { statistic: 0, df: 0, pValue: 1 };
  let stat = 0, k = 0;
  for (let i = 0; i < reference.length; i++) {
    const col = reference[i] + current[i];
    if (col <= 0) continue;
    k++;
    const er = (col * nr) / n, ec = (col * nc) / n;
    stat += (reference[i] - er) ** 2 / er + (current[i] - ec) ** 2 / ec;
  }
  const df = Math.max(0, k - 1);
  return { statistic: stat, df, pValue: df === 0 ? 1 : chiSquareSurvival(stat, df) };
}

/** P(X > x) for a chi-square variable with df degrees of freedom. */
export function chiSquareSurvival(x: number, df: number): number {
  if (x <= 0) return 1;
  return gammaQ(df / 2, x / 2);
}

/** Regularised upper incomplete gamma Q(a, x) (series below a+1, continued fraction above). */
export function gammaQ(a: number, x: number): number {
  if (x < 0 || a <= 0) throw new RangeError(`gammaQ needs a > 0 and x >= 0, got a=${a} x=${x}`);
  if (x === 0) return 1;
  const lnPre = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    let ap = a, del = 1 / a, s = del;
    for (let i = 0; i < 1000; i++) {
      ap += 1;
      del *= x / ap;
      s += del;
      if (Math.abs(del) < Math.abs(s) * 1e-15) break;
    }
    return clamp01(1 - s * Math.exp(lnPre));
  }
  // Lentz's continued fraction.
  const tiny = 1e-300;
  let b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return clamp01(Math.exp(lnPre) * h);
}

/** ln Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms; ~1e-15 relative). */
export function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

function checkSameLength(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  if (a.length !== b.length) throw new RangeError(`${what}: the two distributions have ${a.length} and ${b.length} bins; they must share bins`);
}

/**
 * CDF gaps of two fixed-bin histograms over the same slots ([below, bins..., above]): the
 * cumulative share of each after every slot. Values outside the edges count at the edge.
 */
function cdfGaps(reference: ArrayLike<number>, current: ArrayLike<number>): Float64Array {
  checkSameLength(reference, current, 'binned CDF');
  const nr = sum(reference), nc = sum(current);
  const g = new Float64Array(reference.length);
  if (nr <= 0 || nc <= 0) return g;
  let cr = 0, cc = 0;
  for (let i = 0; i < reference.length; i++) {
    cr += reference[i];
    cc += current[i];
    g[i] = cc / nc - cr / nr;
  }
  return g;
}

/** The KS statistic of two histograms over the same edges: the largest CDF gap at an edge. */
export function ksBinned(reference: ArrayLike<number>, current: ArrayLike<number>): number {
  let d = 0;
  for (const x of cdfGaps(reference, current)) d = Math.max(d, Math.abs(x));
  return d;
}

/**
 * Wasserstein-1 of two histograms over `edges` (counts [below, bins..., above]): the area
 * between the CDFs, linear within a bin, values outside the edges placed at the nearest edge.
 */
export function wasserstein1Binned(edges: ArrayLike<number>, reference: ArrayLike<number>, current: ArrayLike<number>): number {
  if (current.length !== edges.length + 1) throw new RangeError(`wasserstein1Binned: ${current.length} counts for ${edges.length} edges (expected ${edges.length + 1})`);
  const g = cdfGaps(reference, current);
  // g[i] is the gap at edges[i] (after the below-range slot and bins 1..i).
  let area = 0;
  for (let i = 0; i + 1 < edges.length; i++) {
    const a = g[i], b = g[i + 1], w = edges[i + 1] - edges[i];
    area += a * b >= 0 ? (w * (Math.abs(a) + Math.abs(b))) / 2 : (w * (a * a + b * b)) / (2 * (Math.abs(a) + Math.abs(b)));
  }
  return area;
}

/** What a window's histogram (or category counts) is tested on, against the reference's. */
export interface BinnedStatistics {
  psi: number;
  jensenShannon: number;
  /** Numeric features only (histograms with edges). */
  ks?: number;
  /** Wasserstein-1 over the edges divided by `scale` (the reference's standard deviation); absent when scale is 0. */
  wasserstein?: number;
}

/**
 * The statistics of two count vectors over the same slots: the one function both the verdict
 * (compare.ts) and the calibration's bootstrap (calibration.ts) call, so their conventions agree.
 * One pass for the shares (the bootstrap calls it a million times at pack time); the same values
 * as psi(), jensenShannon(), ksBinned() and wasserstein1Binned() (test/drift-stats.test.ts).
 */
export function binnedStatistics(reference: ArrayLike<number>, current: ArrayLike<number>, edges?: ArrayLike<number>, scale = 0): BinnedStatistics {
  checkSameLength(reference, current, 'binnedStatistics');
  const nr = sum(reference), nc = sum(current);
  let psiSum = 0, js = 0, ks = 0, area = 0, cr = 0, cc = 0, gPrev = 0;
  const withCdf = edges !== undefined && nr > 0 && nc > 0;
  for (let i = 0; i < reference.length; i++) {
    const pr = nr > 0 ? reference[i] / nr : 0, pc = nc > 0 ? current[i] / nc : 0;
    const e = pr > EMPTY_BIN ? pr : EMPTY_BIN, a = pc > EMPTY_BIN ? pc : EMPTY_BIN;
    psiSum += (a - e) * Math.log(a / e);
    const m = (pr + pc) / 2;
    if (pr > 0) js += 0.5 * pr * Math.log(pr / m);
    if (pc > 0) js += 0.5 * pc * Math.log(pc / m);
    if (withCdf) {
      cr += reference[i];
      cc += current[i];
      const g = cc / nc - cr / nr;
      if (Math.abs(g) > ks) ks = Math.abs(g);
      // g at edges[i]; the segment edges[i-1]..edges[i] lies between gPrev and g.
      if (i >= 1 && i < edges!.length) {
        const w = edges![i] - edges![i - 1];
        area += gPrev * g >= 0 ? (w * (Math.abs(gPrev) + Math.abs(g))) / 2 : (w * (gPrev * gPrev + g * g)) / (2 * (Math.abs(gPrev) + Math.abs(g)));
      }
      gPrev = g;
    }
  }
  const out: BinnedStatistics = { psi: psiSum, jensenShannon: nr > 0 && nc > 0 ? Math.sqrt(Math.max(0, js)) : 0 };
  if (edges) {
    if (current.length !== edges.length + 1) throw new RangeError(`binnedStatistics: ${current.length} counts for ${edges.length} edges (expected ${edges.length + 1})`);
    out.ks = ks;
    if (scale > 0) out.wasserstein = area / scale;
  }
  return out;
}
