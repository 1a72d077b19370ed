// What a model package declares about drift (the `drift` section of its manifest): which
// features to profile and, optionally, its own thresholds. `buildReference` resolves the
// declaration against sample data (ranges, vector lengths, probabilities or logits) and
// stores the resolved form beside the reference profile.
import { EdgeError } from '../errors.js';

export interface DriftThresholds {
  /** PSI at or above this is a warning (default 0.1). */
  psiWarn: number;
  /** PSI at or above this is large (default 0.25). */
  psiAlert: number;
  /** Jensen-Shannon distance (natural log) at or above this is large (default 0.1). */
  jensenShannon: number;
  /** Wasserstein-1 distance divided by the reference standard deviation at or above this is large (default 0.1). */
  wasserstein: number;
  /** KS test significance level, before the Bonferroni correction (default 0.05). */
  ksPValue: number;
  /** Chi-square test significance level for categorical features, before Bonferroni (default 0.05). */
  chiSquarePValue: number;
  /** Divide the significance levels by the number of features tested (default true). */
  bonferroni: boolean;
  /** The dataset counts as drifted when at least this share of its input features drift (default 0.5). */
  datasetDriftShare: number;
}

/** Defaults from the established tools (Evidently, NannyML, the PSI literature). */
export const DEFAULT_THRESHOLDS: Readonly<DriftThresholds> = Object.freeze({
  psiWarn: 0.1,
  psiAlert: 0.25,
  jensenShannon: 0.1,
  wasserstein: 0.1,
  ksPValue: 0.05,
  chiSquarePValue: 0.05,
  bonferroni: true,
  datasetDriftShare: 0.5,
});

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
  thresholds: DriftThresholds;
}

export const DEFAULT_IMAGE_SUMMARIES: ImageSummary[] = ['mean', 'std', 'p10', 'p50', 'p90'];

/** Thresholds in effect: defaults, then the manifest's, then the operator's config. */
export function mergeThresholds(...layers: (Partial<DriftThresholds> | undefined)[]): DriftThresholds {
  const out: DriftThresholds = { ...DEFAULT_THRESHOLDS };
  for (const layer of layers) {
    if (!layer) continue;
    for (const [k, v] of Object.entries(layer) as [keyof DriftThresholds, unknown][]) {
      if (v === undefined) continue;
      if (!(k in DEFAULT_THRESHOLDS)) throw specError(`unknown drift threshold "${k}"; known: ${Object.keys(DEFAULT_THRESHOLDS).join(', ')}`);
      if (k === 'bonferroni') {
        if (typeof v !== 'boolean') throw specError(`drift threshold bonferroni must be true or false, got ${JSON.stringify(v)}`);
        out.bonferroni = v;
      } else {
        if (typeof v !== 'number' || !(v >= 0) || ((k === 'ksPValue' || k === 'chiSquarePValue' || k === 'datasetDriftShare') && v > 1)) {
          throw specError(`drift threshold ${k} must be a number >= 0${k.endsWith('Value') || k === 'datasetDriftShare' ? ' and <= 1' : ''}, got ${JSON.stringify(v)}`);
        }
        out[k] = v;
      }
    }
  }
  return out;
}

export function specError(message: string): EdgeError {
  return new EdgeError('EDGE_DRIFT_SPEC_INVALID', message, 400);
}

/** Parses "p90" to 0.9. */
export function percentileOf(s: string): number | undefined {
  const m = /^p(\d{1,2}(?:\.\d+)?|100)$/.exec(s);
  if (!m) return undefined;
  const q = Number(m[1]) / 100;
  return q >= 0 && q <= 1 ? q : undefined;
}
