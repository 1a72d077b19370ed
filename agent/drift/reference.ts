// The reference profile of a model: built once, from sample data, when the model is packed
// (`edge-model pack --calib DIR` calls buildReference and writes the result into the package
// manifest's `drift` field). The device compares every window against it.
import type { Tensor, TensorMap } from '../runtime/backend.js';
import { DEFAULT_CALIBRATION_SIZES, WindowCalibration, type EncodedCalibration } from './calibration.js';
import { FeatureExtractor } from './features.js';
import { Profile, type EncodedProfile } from './profile.js';
import {
  DEFAULT_IMAGE_SUMMARIES, mergeThresholds, percentileOf, specError, thresholdsOfLegacyReference,
  type DriftSpec, type FeatureDecl, type ResolvedFeature, type ResolvedSpec,
} from './spec.js';

export interface DriftSample {
  inputs: TensorMap;
  /** The model's outputs for these inputs; needed when the spec declares output features. */
  outputs?: TensorMap;
}

export interface DriftReference {
  format: 'edge-drift-reference/1';
  spec: ResolvedSpec;
  profile: EncodedProfile;
  /** The null distribution of each statistic at window sizes 100..10,000 (calibration.ts); absent in references written before it, which the device then calibrates itself. */
  calibration?: EncodedCalibration;
  /** Observations in the reference (batch items, not files). */
  samples: number;
  createdAt: string;
}

const DEFAULT_BINS = 20;
const DEFAULT_REFERENCE_K = 512;

export interface CalibrationOptions {
  /** Window sizes to calibrate (default 100, 200, 500, 1000, 2000, 5000, 10000 and unbounded). */
  sizes?: number[];
  /** Bootstrap replicates per size (default 1000). */
  replicates?: number;
}

export function buildReference(samples: Iterable<DriftSample>, spec: DriftSpec, calibration: CalibrationOptions = {}): DriftReference {
  const list = [...samples];
  if (list.length === 0) throw specError('buildReference needs at least one sample');
  if (!spec || !Array.isArray(spec.inputs)) throw specError('drift spec: expected {inputs: [feature declarations], outputs?: [...]}');
  const bins = spec.bins ?? DEFAULT_BINS;
  if (!Number.isInteger(bins) || bins < 2 || bins > 1000) throw specError(`drift spec: bins must be an integer in [2, 1000], got ${JSON.stringify(spec.bins)}`);
  const k = spec.referenceSketchK ?? DEFAULT_REFERENCE_K;
  const features: ResolvedFeature[] = [];
  for (const d of spec.inputs) features.push(...resolve(d, 'input', list));
  for (const d of spec.outputs ?? []) features.push(...resolve(d, 'output', list));
  if (features.length === 0) throw specError('drift spec declares no features');
  const seen = new Set<string>();
  for (const f of features) {
    if (seen.has(f.name)) throw specError(`drift spec: two features are named "${f.name}"; give one a "name"`);
    seen.add(f.name);
  }
  mergeThresholds(spec.thresholds); // checked now; stored as declared (the device merges its own config over it)
  const resolved: ResolvedSpec = { features, bins, thresholds: { ...spec.thresholds } };

  // Extract every observation first: the histogram edges are the reference's own quantiles.
  const ex = new FeatureExtractor(features);
  const rows: Float64Array[] = [];
  for (const s of list) {
    const outputs = s.outputs ?? {};
    const batch = ex.batchSize(s.inputs, outputs);
    for (let b = 0; b < batch; b++) {
      const row = new Float64Array(ex.width);
      ex.extract(s.inputs, outputs, b, row);
      rows.push(row);
    }
  }
  return referenceFromRows(resolved, rows, k, calibration);
}

/**
 * The reference of feature rows already extracted (row[i] = feature i of one observation), for a
 * resolved spec: histogram edges at the rows' own quantiles, the profile, its calibration.
 */
export function referenceFromRows(spec: ResolvedSpec, rows: ArrayLike<number>[], sketchK = DEFAULT_REFERENCE_K, calibration: CalibrationOptions = {}): DriftReference {
  const edges = spec.features.map((f, i) => (f.type === 'numeric' ? quantileEdges(rows.map((r) => r[i]), spec.bins) : null));
  const profile = new Profile({ names: spec.features.map((f) => f.name), edges }, sketchK);
  for (const r of rows) profile.add(r);
  const encoded = profile.encode();
  // Calibrated on the encoded profile, as a device will decode it (float32 sketches).
  const cal = new WindowCalibration(Profile.decode(encoded), { replicates: calibration.replicates }).calibrate(calibration.sizes ?? DEFAULT_CALIBRATION_SIZES);
  return { format: 'edge-drift-reference/1', spec, profile: encoded, calibration: cal.encode(), samples: rows.length, createdAt: new Date().toISOString() };
}

/** Checks and decodes a reference read from a manifest. */
export interface LoadedReference {
  /** The spec with its thresholds merged over the defaults (a device merges its config over these). */
  spec: ResolvedSpec & { thresholds: ReturnType<typeof mergeThresholds> };
  profile: Profile;
  calibration: WindowCalibration;
}

export function loadReference(ref: unknown, what = 'drift reference'): LoadedReference {
  const r = ref as DriftReference;
  if (!r || typeof r !== 'object' || r.format !== 'edge-drift-reference/1' || !r.spec || !Array.isArray(r.spec.features)) {
    throw specError(`${what}: expected an object with format "edge-drift-reference/1", spec and profile (written by edge-model pack --calib)`);
  }
  let profile: Profile;
  try {
    profile = Profile.decode(r.profile, `${what}.profile`);
  } catch (err) {
    throw specError(`${what}: ${(err as Error).message}`);
  }
  if (profile.names.length !== r.spec.features.length || profile.names.some((n, i) => n !== r.spec.features[i].name)) {
    throw specError(`${what}: the profile's features do not match the spec's`);
  }
  let calibration: WindowCalibration;
  try {
    calibration = r.calibration
      ? new WindowCalibration(profile, {}, r.calibration)
      // Written before calibration: bootstrapped here, once, at the default sizes.
      : new WindowCalibration(profile).calibrate(DEFAULT_CALIBRATION_SIZES);
  } catch (err) {
    throw specError(`${what}: ${(err as Error).message}`);
  }
  const declared = r.calibration ? r.spec.thresholds : thresholdsOfLegacyReference(r.spec.thresholds as unknown as Record<string, unknown>);
  return { spec: { ...r.spec, thresholds: mergeThresholds(declared) }, profile, calibration };
}

/** Edges at the quantiles of the values (deduplicated), so each bin holds about the same share. */
export function quantileEdges(values: number[], bins: number): number[] {
  const v = values.filter((x) => x === x).sort((a, b) => a - b);
  if (v.length === 0) return [0, 1];
  const edges: number[] = [];
  for (let i = 0; i <= bins; i++) {
    const x = v[Math.min(v.length - 1, Math.round((i / bins) * (v.length - 1)))];
    if (edges.length === 0 || x > edges[edges.length - 1]) edges.push(x);
  }
  if (edges.length === 1) edges.push(edges[0] + Math.max(Math.abs(edges[0]) * 1e-9, 1e-9));
  return edges;
}

function tensorOf(d: FeatureDecl, from: 'input' | 'output', s: DriftSample): Tensor {
  const map = from === 'input' ? s.inputs : s.outputs;
  const t = map?.[d.tensor];
  if (!t) {
    const have = Object.keys(map ?? {});
    throw specError(`drift spec: ${from} tensor "${d.tensor}" is not in the samples (${from}s: ${have.length ? have.join(', ') : 'none given'})`);
  }
  return t;
}

function perSample(t: Tensor): number {
  const batch = t.shape.length > 1 ? Math.max(1, t.shape[0]) : 1;
  return t.data.length / batch;
}

function resolve(d: FeatureDecl, from: 'input' | 'output', samples: DriftSample[]): ResolvedFeature[] {
  if (!d || typeof d !== 'object' || typeof d.tensor !== 'string') throw specError(`drift spec: each ${from} declaration needs {kind, tensor}, got ${JSON.stringify(d)}`);
  const t0 = tensorOf(d, from, samples[0]);
  const size = perSample(t0);
  const base = { from, tensor: d.tensor };
  const checkIndex = (index: number) => {
    if (!Number.isInteger(index) || index < 0 || index >= size) throw specError(`drift spec: index ${index} is outside ${d.tensor}'s ${size} values per sample`);
  };
  switch (d.kind) {
    case 'numeric':
    case 'categorical': {
      const index = d.index ?? 0;
      checkIndex(index);
      const name = d.name ?? (size === 1 ? d.tensor : `${d.tensor}[${index}]`);
      return [{ ...base, name, type: d.kind, extract: { op: 'element', index } }];
    }
    case 'vector':
      return Array.from({ length: size }, (_, i) => ({ ...base, name: d.names?.[i] ?? `${d.tensor}[${i}]`, type: 'numeric' as const, extract: { op: 'element' as const, index: i } }));
    case 'class':
      return [{ ...base, name: d.name ?? `${d.tensor}.class`, type: 'categorical', extract: { op: 'argmax' } }];
    case 'confidence': {
      const softmax = d.softmax ?? !looksLikeProbabilities(t0, size);
      return [{ ...base, name: d.name ?? `${d.tensor}.confidence`, type: 'numeric', extract: { op: 'maxprob', softmax } }];
    }
    case 'image': {
      const rank = t0.shape.length;
      const channelAxis = d.channelAxis === undefined ? (rank === 4 ? 1 : null) : d.channelAxis;
      if (channelAxis !== null && channelAxis !== 1 && channelAxis !== rank - 1) {
        throw specError(`drift spec: image ${d.tensor}: channelAxis must be 1 (NCHW), ${rank - 1} (NHWC) or null (one channel), got ${channelAxis}`);
      }
      const channels = channelAxis === null ? 1 : Number(t0.shape[channelAxis]);
      const summaries = d.summaries ?? DEFAULT_IMAGE_SUMMARIES;
      const range = d.range ?? valueRange(samples.map((s) => tensorOf(d, from, s)));
      if (!(range[1] >= range[0])) throw specError(`drift spec: image ${d.tensor}: range must be [low, high] with low <= high`);
      const perChannel = Math.floor(perSample(t0) / channels);
      let pixelStride = d.pixelStride ?? Math.max(1, Math.ceil(perChannel / 256));
      if (d.pixelStride === undefined && pixelStride > 1 && pixelStride % 2 === 0) pixelStride++; // odd: not aligned with even image rows
      if (!Number.isInteger(pixelStride) || pixelStride < 1) throw specError(`drift spec: image ${d.tensor}: pixelStride must be an integer >= 1, got ${JSON.stringify(d.pixelStride)}`);
      const out: ResolvedFeature[] = [];
      for (let c = 0; c < channels; c++) {
        for (const s of summaries) {
          const q = percentileOf(s);
          if (s !== 'mean' && s !== 'std' && q === undefined) throw specError(`drift spec: image summary "${s}" is not one of mean, std, p0..p100`);
          const stat = s === 'mean' || s === 'std' ? s : 'percentile';
          const prefix = d.name ?? d.tensor;
          out.push({
            ...base,
            name: channels === 1 ? `${prefix}.${s}` : `${prefix}.c${c}.${s}`,
            type: 'numeric',
            extract: { op: 'channel', stat, q: q ?? 0, channel: c, channels, channelAxis, range: [range[0], range[1]], pixelStride },
          });
        }
      }
      return out;
    }
    default:
      throw specError(`drift spec: unknown feature kind ${JSON.stringify((d as { kind?: unknown }).kind)}; expected image, numeric, vector, categorical, class or confidence`);
  }
}

function valueRange(ts: Tensor[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const t of ts) {
    if (t.dtype === 'uint8') return [0, 255];
    if (t.dtype === 'int8') return [-128, 127];
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) {
      if (d[i] < lo) lo = d[i];
      if (d[i] > hi) hi = d[i];
    }
  }
  return Number.isFinite(lo) ? [lo, hi > lo ? hi : lo + 1] : [0, 1];
}

function looksLikeProbabilities(t: Tensor, size: number): boolean {
  if (t.dtype === 'int64') return false;
  const d = t.data as Float32Array;
  let s = 0;
  for (let i = 0; i < size; i++) {
    if (d[i] < 0 || d[i] > 1) return false;
    s += d[i];
  }
  return Math.abs(s - 1) < 1e-3;
}
