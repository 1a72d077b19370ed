// What a model package declares about drift (the `drift` section of its manifest): which
// features to profile and, optionally, its own thresholds. `buildReference` resolves the
// declaration against sample data (ranges, vector lengths, probabilities or logits) and
// stores the resolved form beside the reference profile.
import { Errors, type EdgeError } from '../errors.js';

export interface DriftThresholds {
  /**
   * Share of windows of data from the reference's own distribution that may warn (default 0.01).
   * Each statistic's warn level is the high quantile of its null distribution at the window's size
   * (agent/drift/calibration.ts), corrected (Sidak) for the number of features x statistics tested.
   */
  falseWarnRate: number;
  /** Share of such windows that may alert (default 0.001). */
  falseAlertRate: number;
  /** The dataset counts as drifted when at least this share of its input features drift (default 0.5). */
  datasetDriftShare: number;
  /** Fixed levels, only when set explicitly: they replace the calibrated level of that statistic whatever the window size. */
  psiWarn?: number;
  psiAlert?: number;
  jensenShannon?: number;
  wasserstein?: number;
}

export type FixedLevel = 'psiWarn' | 'psiAlert' | 'jensenShannon' | 'wasserstein';
const FIXED_LEVELS: readonly FixedLevel[] = ['psiWarn', 'psiAlert', 'jensenShannon', 'wasserstein'];

/**
 * No fixed distance levels by default: a fixed PSI or Jensen-Shannon level is crossed by sampling
 * noise alone in small windows and misses real change in large ones (issue 27).
 */
export const DEFAULT_THRESHOLDS: Readonly<DriftThresholds> = Object.freeze({
  falseWarnRate: 0.01,
  falseAlertRate: 0.001,
  datasetDriftShare: 0.5,
});

/** Keys of references and configs before calibration; what replaced them. */
const RETIRED: Record<string, string> = {
  ksPValue: 'falseWarnRate and falseAlertRate (every test is now corrected for the number of features x statistics)',
  chiSquarePValue: 'falseWarnRate and falseAlertRate (every test is now corrected for the number of features x statistics)',
  bonferroni: 'the always-on correction for the number of tests (falseWarnRate, falseAlertRate)',
};

export type ImageSummary = 'mean' | 'std' | `p${number}`;

/** One declaration in the manifest; a declaration can stand for several features. */
export type FeatureDecl =
  /**
   * Per channel summaries of an image tensor ([N,C,H,W] with channelAxis 1, [N,H,W,C] with 3, or
   * one channel), over every pixelStride-th pixel (default: an odd stride reading about 256
   * pixels per channel; 1 reads all): the summaries only need to be comparable, not exact, and
   * this keeps profiling cheap next to the inference.
   */
  | { kind: 'image'; tensor: string; channelAxis?: number | null; summaries?: ImageSummary[]; range?: [number, number]; name?: string; pixelStride?: number }
  /** One element (default the first) of each sample of a tensor. */
  | { kind: 'numeric'; tensor: string; index?: number; name?: string; bins?: number }
  /** Every element of each sample, each its own numeric feature. */
  | { kind: 'vector'; tensor: string; names?: string[] }
  /** One element of each sample, read as a category code. */
  | { kind: 'categorical'; tensor: string; index?: number; name?: string }
  /** The predicted class (argmax of an output): prediction drift. */
  | { kind: 'class'; tensor: string; name?: string }
  /** The top probability (of the softmax of logits when `softmax`). */
  | { kind: 'confidence'; tensor: string; softmax?: boolean; name?: string };

export interface DriftSpec {
  inputs: FeatureDecl[];
  outputs?: FeatureDecl[];
  /** Fixed bins per numeric feature, placed at the reference's quantiles (default 20). */
  bins?: number;
  /** KLL sketch size of the reference profile (default 512). */
  referenceSketchK?: number;
  thresholds?: Partial<DriftThresholds>;
}

/** A single feature after resolution: every field known. */
export interface ResolvedFeature {
  name: string;
  /** The statistic type: numeric (histogram + sketch) or categorical (counts). */
  type: 'numeric' | 'categorical';
  from: 'input' | 'output';
  tensor: string;
  extract:
    | { op: 'element'; index: number }
    | { op: 'channel'; stat: 'mean' | 'std' | 'percentile'; q: number; channel: number; channels: number; channelAxis: number | null; range: [number, number]; pixelStride?: number }
    | { op: 'argmax' }
    | { op: 'maxprob'; softmax: boolean };
}

export interface ResolvedSpec {
  features: ResolvedFeature[];
  bins: number;
  /** Only what the package declared; defaults and the device's config are merged at load time. */
  thresholds: Partial<DriftThresholds>;
}

export const DEFAULT_IMAGE_SUMMARIES: ImageSummary[] = ['mean', 'std', 'p10', 'p50', 'p90'];

/** Thresholds in effect: defaults, then the manifest's, then the operator's config. */
export function mergeThresholds(...layers: (Partial<DriftThresholds> | undefined)[]): DriftThresholds {
  const out: DriftThresholds = { ...DEFAULT_THRESHOLDS };
  for (const layer of layers) {
    if (!layer) continue;
    for (const [k, v] of Object.entries(layer) as [keyof DriftThresholds, unknown][]) {
      if (v === undefined) continue;
      if (k in RETIRED) throw specError(`drift threshold "${k}" is no longer used; it was replaced by ${RETIRED[k]}`);
      const rate = k === 'falseWarnRate' || k === 'falseAlertRate';
      if (!(k in DEFAULT_THRESHOLDS) && !FIXED_LEVELS.includes(k as FixedLevel)) {
        throw specError(`unknown drift threshold "${k}"; known: ${[...Object.keys(DEFAULT_THRESHOLDS), ...FIXED_LEVELS].join(', ')}`);
      }
      const bounded = rate || k === 'datasetDriftShare';
      if (typeof v !== 'number' || !(v >= 0) || (bounded && v > 1) || (rate && v === 0)) {
        throw specError(`drift threshold ${k} must be a number ${rate ? '> 0' : '>= 0'}${bounded ? ' and <= 1' : ''}, got ${JSON.stringify(v)}`);
      }
      out[k] = v;
    }
  }
  if (out.falseAlertRate > out.falseWarnRate) throw specError(`drift threshold falseAlertRate (${out.falseAlertRate}) must not exceed falseWarnRate (${out.falseWarnRate})`);
  return out;
}

/**
 * The thresholds a reference written before calibration stored: every default filled in, so
 * its fixed levels were not choices. Drops the retired keys and the fixed levels that equal the
 * old defaults; keeps anything else (an explicit choice).
 */
export function thresholdsOfLegacyReference(stored: Record<string, unknown> | undefined): Partial<DriftThresholds> {
  if (!stored || !('ksPValue' in stored)) return (stored ?? {}) as Partial<DriftThresholds>;
  const OLD: Record<string, number> = { psiWarn: 0.1, psiAlert: 0.25, jensenShannon: 0.1, wasserstein: 0.1 };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(stored)) {
    if (k in RETIRED || OLD[k] === v) continue;
    out[k] = v;
  }
  return out as Partial<DriftThresholds>;
}

export function specError(message: string): EdgeError {
  return Errors.DRIFT_SPEC_INVALID(message);
}

/** Parses "p90" to 0.9. */
export function percentileOf(s: string): number | undefined {
  const m = /^p(\d{1,2}(?:\.\d+)?|100)$/.exec(s);
  if (!m) return undefined;
  const q = Number(m[1]) / 100;
  return q >= 0 && q <= 1 ? q : undefined;
}
