// Compares a window (or fleet) profile with the reference, feature by feature, and decides: the
// one verdict function the device (window.ts) and the controller's fleet merge both call.
// Every statistic is judged against its null distribution at this window's size (the
// calibration's bootstrap for PSI, Jensen-Shannon and Wasserstein; the known distributions of KS
// and chi-square), at a level corrected (Sidak) for the number of features x statistics tested,
// so that at most falseWarnRate of windows from the reference's own distribution warn, and
// falseAlertRate alert, whatever the window size and the number of features. A fixed level,
// when the package or the operator sets one, replaces the calibrated level of its statistic.
import type { WindowCalibration } from './calibration.js';
import { CategoricalProfile, NumericProfile, type Profile } from './profile.js';
import type { DriftThresholds } from './spec.js';
import { binnedStatistics, chiSquare, chiSquareSurvival, ksPValue } from './stats.js';

export type FeatureVerdict = 'ok' | 'warn' | 'drift';

export interface FeatureStats {
  psi: number;
  jensenShannon: number;
  /** Numeric features: Wasserstein-1 over the histogram's bins, divided by the reference standard deviation. */
  wasserstein?: number;
  /** Numeric features: the largest gap between the two CDFs at the histogram's edges. */
  ks?: number;
  ksPValue?: number;
  chiSquare?: number;
  chiSquareDf?: number;
  chiSquarePValue?: number;
}

export interface FeatureResult {
  name: string;
  type: 'numeric' | 'categorical';
  from: 'input' | 'output';
  /** Values compared (missing excluded). */
  n: number;
  missing: number;
  /** Share of values outside the reference's range (numeric) or in categories the reference never saw. */
  novel: number;
  stats: FeatureStats;
  verdict: FeatureVerdict;
  /** Which levels were crossed, in words ("psi 0.31 >= 0.052 (p 2.1e-9)"). */
  reasons: string[];
  /** Each statistic tested, with the levels it was held to at this window's size. */
  tests: StatisticTest[];
  /** The feature's largest statistic relative to its alert level (1 = at the level): for ranking. */
  score: number;
  /** Window mean and the reference mean (numeric), for a glance at the direction of a shift. */
  mean?: number;
  referenceMean?: number;
  /** The two distributions side by side, as shares per bin (or category): what the status pages chart. */
  histogram?: { labels: string[]; reference: number[]; current: number[] };
}

const shares = (counts: ArrayLike<number>): number[] => {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  return Array.from(counts, (c) => (total > 0 ? Math.round((c / total) * 1e4) / 1e4 : 0));
};

const short = (x: number): string => (Math.abs(x) >= 100 || x === 0 ? String(Math.round(x)) : x.toPrecision(2));

/** Bin labels of a fixed histogram with under- and overflow bins: "<e0", "e0", "e1", ..., ">=en". */
function binLabels(edges: ArrayLike<number>): string[] {
  const out = [`<${short(edges[0]!)}`];
  for (let i = 0; i < edges.length - 1; i++) out.push(short(edges[i]!));
  out.push(`>=${short(edges[edges.length - 1]!)}`);
  return out;
}

export type DriftStatistic = 'psi' | 'jensenShannon' | 'wasserstein' | 'ks' | 'chiSquare';

export interface StatisticTest {
  statistic: DriftStatistic;
  value: number;
  /** P(a value at least this large) in a window of this size from the reference's distribution; absent for a fixed level. */
  p?: number;
  /** The values at which this statistic warns and alerts at this window's size. */
  warnAt: number;
  alertAt: number;
  /** calibrated: the reference's bootstrap; analytic: the test's own distribution (KS, chi-square); fixed: an explicit override. */
  basis: 'calibrated' | 'analytic' | 'fixed';
}

export interface Comparison {
  features: FeatureResult[];
  /** The level each test was held to (after the Sidak correction over `tests` tests). */
  alpha: { warn: number; alert: number; tests: number };
  dataset: { drifted: boolean; share: number; driftedFeatures: string[]; inputFeatures: number };
  prediction: { drifted: boolean; driftedFeatures: string[] };
  verdict: 'ok' | 'warn' | 'alert';
}

export function compareProfiles(
  reference: Profile,
  current: Profile,
  from: ('input' | 'output')[],
  th: DriftThresholds,
  calibration: WindowCalibration,
): Comparison {
  if (calibration.reference !== reference) throw new RangeError('compareProfiles: the calibration belongs to another reference profile');
  let tests = 0;
  reference.features.forEach((rf, i) => {
    const cf = current.features[i];
    if (cf && cf.n > 0 && rf.n > 0) tests += testsOf(rf, th);
  });
  tests ||= 1;
  // Sidak: P(no test of `tests` fires) = (1 - a)^tests = 1 - rate, exact for independent tests
  // and conservative for the correlated statistics of one feature.
  const alpha = { warn: sidak(th.falseWarnRate, tests), alert: sidak(th.falseAlertRate, tests), tests };
  const features = reference.features.map((rf, i): FeatureResult => {
    const cf = current.features[i];
    const name = reference.names[i];
    if (current.names[i] !== name || cf.type !== rf.type) throw new RangeError(`profiles differ at feature ${i}: ${name} vs ${current.names[i]}`);
    const judge: Judge = { feature: i, calibration, th, alpha };
    return rf.type === 'numeric'
      ? compareNumeric(name, from[i] ?? 'input', rf, cf as NumericProfile, judge)
      : compareCategorical(name, from[i] ?? 'input', rf, cf as CategoricalProfile, judge);
  });
  const inputs = features.filter((f) => f.from === 'input');
  const driftedInputs = inputs.filter((f) => f.verdict === 'drift').map((f) => f.name);
  const share = inputs.length ? driftedInputs.length / inputs.length : 0;
  const datasetDrifted = inputs.length > 0 && share >= th.datasetDriftShare;
  const driftedOutputs = features.filter((f) => f.from === 'output' && f.verdict === 'drift').map((f) => f.name);
  const verdict = datasetDrifted || driftedOutputs.length ? 'alert' : features.some((f) => f.verdict !== 'ok') ? 'warn' : 'ok';
  return {
    features,
    alpha,
    dataset: { drifted: datasetDrifted, share, driftedFeatures: driftedInputs, inputFeatures: inputs.length },
    prediction: { drifted: driftedOutputs.length > 0, driftedFeatures: driftedOutputs },
    verdict,
  };
}

const edgesBins = (edges: ArrayLike<number>): number => edges.length + 1;

interface Judge {
  feature: number;
  calibration: WindowCalibration;
  th: DriftThresholds;
  alpha: Comparison['alpha'];
}

function sidak(rate: number, tests: number): number {
  return -Math.expm1(Math.log1p(-rate) / tests);
}

/** How many p-value tests a feature contributes (a statistic with a fixed level is not one). */
function testsOf(f: NumericProfile | CategoricalProfile, th: DriftThresholds): number {
  const psiFixed = th.psiWarn !== undefined || th.psiAlert !== undefined;
  const jsFixed = th.jensenShannon !== undefined;
  if (f.type === 'categorical') return (psiFixed ? 0 : 1) + (jsFixed ? 0 : 1) + 1; // + chi-square
  return (psiFixed ? 0 : 1) + (jsFixed ? 0 : 1) + (th.wasserstein !== undefined || !(f.std > 0) ? 0 : 1) + 1; // + KS
}

function compareNumeric(name: string, from: 'input' | 'output', ref: NumericProfile, cur: NumericProfile, j: Judge): FeatureResult {
  const n = cur.n;
  const base = { name, type: 'numeric' as const, from, n, missing: cur.missing, mean: cur.mean, referenceMean: ref.mean };
  const novel = n ? cur.hist.outOfRange / n : 0;
  if (n === 0 || ref.n === 0) {
    return { ...base, novel, stats: { psi: 0, jensenShannon: 0 }, verdict: 'ok', reasons: ['no values to compare'], tests: [], score: 0 };
  }
  const b = binnedStatistics(ref.hist.counts, cur.hist.counts, ref.hist.edges, ref.std);
  const p = ksPValue(b.ks!, ref.n, n);
  const stats: FeatureStats = { psi: b.psi, jensenShannon: b.jensenShannon, wasserstein: b.wasserstein, ks: b.ks, ksPValue: p };
  const tests = [
    calibrated('psi', b.psi, n, j),
    calibrated('jensenShannon', b.jensenShannon, n, j),
    b.wasserstein === undefined ? undefined : calibrated('wasserstein', b.wasserstein, n, j),
    analytic('ks', b.ks!, p, j, (q) => invert((d) => ksPValue(d, ref.n, n), q, 1)),
  ].filter((t): t is StatisticTest => t !== undefined);
  const histogram = ref.hist.counts.length === edgesBins(ref.hist.edges)
    ? { labels: binLabels(ref.hist.edges), reference: shares(ref.hist.counts), current: shares(cur.hist.counts) }
    : undefined;
  return { ...base, novel, stats, ...decide(tests, j.alpha), tests: tests.map(rounded), histogram };
}

function compareCategorical(name: string, from: 'input' | 'output', ref: CategoricalProfile, cur: CategoricalProfile, j: Judge): FeatureResult {
  // Slots: the reference's codes ascending, then "other", then codes only the window has (the
  // calibration's bootstrap uses the same first slots).
  const refCodes = [...ref.counts.counts.keys()].sort((a, b) => a - b);
  const newCodes = [...cur.counts.counts.keys()].filter((k) => !ref.counts.counts.has(k)).sort((a, b) => a - b);
  const r = [...refCodes.map((k) => ref.counts.counts.get(k)!), ref.counts.other, ...newCodes.map(() => 0)];
  const c = [...refCodes.map((k) => cur.counts.counts.get(k) ?? 0), cur.counts.other, ...newCodes.map((k) => cur.counts.counts.get(k)!)];
  const n = cur.n;
  let novelCount = cur.counts.other;
  for (const k of newCodes) novelCount += cur.counts.counts.get(k)!;
  const base = { name, type: 'categorical' as const, from, n, missing: cur.missing, novel: n ? novelCount / n : 0 };
  if (n === 0 || ref.n === 0) return { ...base, stats: { psi: 0, jensenShannon: 0 }, verdict: 'ok', reasons: ['no values to compare'], tests: [], score: 0 };
  const b = binnedStatistics(r, c);
  const chi = chiSquare(r, c);
  const stats: FeatureStats = {
    psi: b.psi,
    jensenShannon: b.jensenShannon,
    chiSquare: chi.statistic,
    chiSquareDf: chi.df,
    chiSquarePValue: chi.pValue,
  };
  const tests = [
    calibrated('psi', b.psi, n, j),
    calibrated('jensenShannon', b.jensenShannon, n, j),
    analytic('chiSquare', chi.statistic, chi.pValue, j, (q) => (chi.df === 0 ? Infinity : invert((x) => chiSquareSurvival(x, chi.df), q, chi.df + 10))),
  ].filter((t): t is StatisticTest => t !== undefined);
  const labels = [...refCodes.map(String), 'other', ...newCodes.map(String)];
  const histogram = { labels, reference: shares(r), current: shares(c) };
  return { ...base, stats, ...decide(tests, j.alpha), tests: tests.map(rounded), histogram };
}

/** A statistic held to its bootstrap null at this size, or to a fixed level when one is set. */
function calibrated(statistic: 'psi' | 'jensenShannon' | 'wasserstein', value: number, n: number, j: Judge): StatisticTest | undefined {
  const fixed = statistic === 'psi'
    ? (j.th.psiWarn !== undefined || j.th.psiAlert !== undefined ? [j.th.psiWarn, j.th.psiAlert] : undefined)
    : j.th[statistic] !== undefined ? [j.th[statistic], j.th[statistic]] : undefined;
  const cal = j.calibration;
  const warnAt = () => cal.level(j.feature, statistic, n, j.alpha.warn) ?? Infinity;
  const alertAt = () => cal.level(j.feature, statistic, n, j.alpha.alert) ?? Infinity;
  if (fixed) return { statistic, value, warnAt: fixed[0] ?? warnAt(), alertAt: fixed[1] ?? alertAt(), basis: 'fixed' };
  const p = cal.pValue(j.feature, statistic, n, value);
  if (p === undefined) return undefined;
  return { statistic, value, p, warnAt: warnAt(), alertAt: alertAt(), basis: 'calibrated' };
}

function analytic(statistic: 'ks' | 'chiSquare', value: number, p: number, j: Judge, levelOf: (p: number) => number): StatisticTest {
  return { statistic, value, p, warnAt: levelOf(j.alpha.warn), alertAt: levelOf(j.alpha.alert), basis: 'analytic' };
}

/** Four significant digits in the report (decided on the exact values). */
function rounded(t: StatisticTest): StatisticTest {
  const r: StatisticTest = { ...t, value: round(t.value), warnAt: round(t.warnAt), alertAt: round(t.alertAt) };
  if (t.p !== undefined) r.p = Number(t.p.toPrecision(3));
  return r;
}

/** The x at which a decreasing survival function falls to p (bisection from [0, hi], hi doubled as needed). */
function invert(survival: (x: number) => number, p: number, hi: number): number {
  let lo = 0;
  for (let k = 0; k < 60 && survival(hi) > p; k++) hi *= 2;
  for (let k = 0; k < 60; k++) {
    const mid = (lo + hi) / 2;
    if (survival(mid) > p) lo = mid;
    else hi = mid;
  }
  return hi;
}

function decide(tests: StatisticTest[], alpha: Comparison['alpha']): { verdict: FeatureVerdict; reasons: string[]; score: number } {
  const reasons: string[] = [];
  let level = 0;
  for (const t of tests) {
    // A test fires on its p (the levels are its bisected inverse, for reading); a fixed level on the value.
    const alert = t.p !== undefined ? t.p <= alpha.alert : t.value >= t.alertAt;
    const warn = alert || (t.p !== undefined ? t.p <= alpha.warn : t.value >= t.warnAt);
    if (!warn) continue;
    level = Math.max(level, alert ? 2 : 1);
    const p = t.p !== undefined ? `, p ${fmt(t.p)}` : ', fixed';
    reasons.push(`${label[t.statistic]} ${fmt(t.value)} >= ${fmt(alert ? t.alertAt : t.warnAt)}${alert ? '' : ' (warn)'}${p}`);
  }
  const ratios = tests.map((t) => (t.alertAt > 0 ? t.value / t.alertAt : t.value > 0 ? Infinity : 0));
  // Capped: a feature whose reference barely varies would otherwise dwarf the ranking.
  return { verdict: level === 2 ? 'drift' : level === 1 ? 'warn' : 'ok', reasons, score: round(Math.min(999, Math.max(0, ...ratios))) };
}

const label: Record<DriftStatistic, string> = { psi: 'psi', jensenShannon: 'jensen-shannon', wasserstein: 'wasserstein', ks: 'ks', chiSquare: 'chi-square' };

function fmt(x: number): string {
  return x === 0 ? '0' : !Number.isFinite(x) ? String(x) : Math.abs(x) >= 0.001 ? String(Number(x.toFixed(3))) : x.toExponential(2);
}

function round(x: number): number {
  return Number(x.toPrecision(4));
}
