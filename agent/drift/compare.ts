// Compares a window (or fleet) profile with the reference, feature by feature, and decides.
// A feature drifts when the change is both significant (KS or chi-square p-value below the
// Bonferroni-corrected level: not noise of a small window) and large (PSI, Jensen-Shannon or
// normalised Wasserstein over its threshold: big enough to matter in a large window).
import { CategoricalProfile, NumericProfile, type Profile } from './profile.js';
import type { DriftThresholds } from './spec.js';
import { chiSquare, jensenShannon, ksPValue, ksStatistic, psi, wasserstein1, type WeightedSample } from './stats.js';

export type FeatureVerdict = 'ok' | 'warn' | 'drift';

export interface FeatureStats {
  psi: number;
  jensenShannon: number;
  /** Numeric features: Wasserstein-1 divided by the reference standard deviation. */
  wasserstein?: number;
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
  /** Which thresholds were crossed, in words ("psi 0.31 >= 0.25"). */
  reasons: string[];
  /** The feature's largest effect size relative to its threshold (1 = at the threshold): for ranking. */
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

export interface Comparison {
  features: FeatureResult[];
  /** The significance level each test used (after Bonferroni). */
  alpha: { ks: number; chiSquare: number };
  dataset: { drifted: boolean; share: number; driftedFeatures: string[]; inputFeatures: number };
  prediction: { drifted: boolean; driftedFeatures: string[] };
  verdict: 'ok' | 'warn' | 'alert';
}

export function compareProfiles(
  reference: Profile,
  current: Profile,
  from: ('input' | 'output')[],
  th: DriftThresholds,
): Comparison {
  const tested = current.features.filter((f) => f.n > 0).length || 1;
  const div = th.bonferroni ? tested : 1;
  const alpha = { ks: th.ksPValue / div, chiSquare: th.chiSquarePValue / div };
  const features = reference.features.map((rf, i): FeatureResult => {
    const cf = current.features[i];
    const name = reference.names[i];
    if (current.names[i] !== name || cf.type !== rf.type) throw new RangeError(`profiles differ at feature ${i}: ${name} vs ${current.names[i]}`);
    return rf.type === 'numeric'
      ? compareNumeric(name, from[i] ?? 'input', rf, cf as NumericProfile, th, alpha.ks)
      : compareCategorical(name, from[i] ?? 'input', rf, cf as CategoricalProfile, th, alpha.chiSquare);
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

// The reference does not change between windows: its sorted sample is built once.
const refSamples = new WeakMap<NumericProfile, { n: number; sample: WeightedSample }>();
function referenceSample(ref: NumericProfile): WeightedSample {
  const hit = refSamples.get(ref);
  if (hit && hit.n === ref.sketch.n) return hit.sample;
  const sample = ref.sketch.sample();
  refSamples.set(ref, { n: ref.sketch.n, sample });
  return sample;
}

const edgesBins = (edges: ArrayLike<number>): number => edges.length + 1;

function compareNumeric(name: string, from: 'input' | 'output', ref: NumericProfile, cur: NumericProfile, th: DriftThresholds, alpha: number): FeatureResult {
  const n = cur.n;
  const base = { name, type: 'numeric' as const, from, n, missing: cur.missing, mean: cur.mean, referenceMean: ref.mean };
  const novel = n ? cur.hist.outOfRange / n : 0;
  if (n === 0 || ref.n === 0) {
    return { ...base, novel, stats: { psi: 0, jensenShannon: 0 }, verdict: 'ok', reasons: ['no values to compare'], score: 0 };
  }
  const rs = referenceSample(ref), cs = cur.sketch.sample();
  const d = ksStatistic(rs, cs);
  const p = ksPValue(d, ref.n, n);
  const refStd = ref.std;
  const w = wasserstein1(rs, cs);
  const wn = refStd > 0 ? w / refStd : w > 0 ? Infinity : 0;
  const stats: FeatureStats = {
    psi: psi(ref.hist.counts, cur.hist.counts),
    jensenShannon: jensenShannon(ref.hist.counts, cur.hist.counts),
    wasserstein: wn,
    ks: d,
    ksPValue: p,
  };
  const histogram = ref.hist.counts.length === edgesBins(ref.hist.edges)
    ? { labels: binLabels(ref.hist.edges), reference: shares(ref.hist.counts), current: shares(cur.hist.counts) }
    : undefined;
  return { ...base, novel, stats, ...decide(stats, p, alpha, 'ks', th), histogram };
}

function compareCategorical(name: string, from: 'input' | 'output', ref: CategoricalProfile, cur: CategoricalProfile, th: DriftThresholds, alpha: number): FeatureResult {
  const keys = new Set<number>([...ref.counts.counts.keys(), ...cur.counts.counts.keys()]);
  const codes = [...keys].sort((a, b) => a - b);
  const r = codes.map((k) => ref.counts.counts.get(k) ?? 0);
  const c = codes.map((k) => cur.counts.counts.get(k) ?? 0);
  r.push(ref.counts.other);
  c.push(cur.counts.other);
  const n = cur.n;
  let novelCount = cur.counts.other;
  for (const [k, v] of cur.counts.counts) if (!ref.counts.counts.has(k)) novelCount += v;
  const base = { name, type: 'categorical' as const, from, n, missing: cur.missing, novel: n ? novelCount / n : 0 };
  if (n === 0 || ref.n === 0) return { ...base, stats: { psi: 0, jensenShannon: 0 }, verdict: 'ok', reasons: ['no values to compare'], score: 0 };
  const chi = chiSquare(r, c);
  const stats: FeatureStats = {
    psi: psi(r, c),
    jensenShannon: jensenShannon(r, c),
    chiSquare: chi.statistic,
    chiSquareDf: chi.df,
    chiSquarePValue: chi.pValue,
  };
  const histogram = { labels: [...codes.map(String), 'other'], reference: shares(r), current: shares(c) };
  return { ...base, stats, ...decide(stats, chi.pValue, alpha, 'chi-square', th), histogram };
}

function decide(s: FeatureStats, p: number, alpha: number, test: string, th: DriftThresholds): { verdict: FeatureVerdict; reasons: string[]; score: number } {
  const reasons: string[] = [];
  const significant = p < alpha;
  if (significant) reasons.push(`${test} p ${fmt(p)} < ${fmt(alpha)}`);
  let large = false;
  if (s.psi >= th.psiAlert) {
    large = true;
    reasons.push(`psi ${fmt(s.psi)} >= ${th.psiAlert}`);
  } else if (s.psi >= th.psiWarn) reasons.push(`psi ${fmt(s.psi)} >= ${th.psiWarn} (warn)`);
  if (s.jensenShannon >= th.jensenShannon) {
    large = true;
    reasons.push(`jensen-shannon ${fmt(s.jensenShannon)} >= ${th.jensenShannon}`);
  }
  if (s.wasserstein !== undefined && s.wasserstein >= th.wasserstein) {
    large = true;
    reasons.push(`wasserstein ${fmt(s.wasserstein)} >= ${th.wasserstein}`);
  }
  const verdict: FeatureVerdict = significant && large ? 'drift' : reasons.length ? 'warn' : 'ok';
  const ratios = [s.psi / th.psiAlert, s.jensenShannon / th.jensenShannon];
  if (s.wasserstein !== undefined) ratios.push(s.wasserstein / th.wasserstein);
  // Capped: a feature whose reference barely varies (std ~ 0) would otherwise dwarf the ranking.
  return { verdict, reasons, score: round(Math.min(999, Math.max(...ratios))) };
}

function fmt(x: number): string {
  return x === 0 ? '0' : Math.abs(x) >= 0.001 ? String(Number(x.toFixed(3))) : x.toExponential(2);
}

function round(x: number): number {
  return Number(x.toPrecision(4));
}
