// Calibration: run the float model in ONNX Runtime over the calibration set with every tensor
// the quantizer needs exposed as an extra graph output, and reduce what flows through each to
// a range [min, max]. minmax keeps the extremes; percentile and entropy (KL divergence, as
// TensorRT does) clip rare outliers so the common values get finer steps; mse picks the range
// whose rounding and clipping error is smallest (mse-range.ts).
import { DataType, encodeModel, makeValueInfo, type ModelProto } from '../../agent/onnx/model.js';
import { onnx } from '../../agent/onnx/model.js';
import { chunks, listNpyFiles, loadBatch, singleInput } from './dataset.js';
import { floatTensor, openSession, runSession } from './ort-session.js';
import { Progress } from './progress.js';
import { mseRange, type Live } from './mse-range.js';

export type RangeMethod = 'minmax' | 'percentile' | 'entropy' | 'mse';
export const RANGE_METHODS: RangeMethod[] = ['minmax', 'percentile', 'entropy', 'mse'];

export interface Range { min: number; max: number }

export interface CalibrationOptions {
  method: RangeMethod;
  /** For percentile: the share of values kept inside the range, in percent. */
  percentile?: number;
  /** Samples per ORT run (every exposed tensor of a run is in memory at once). */
  maxBatch?: number;
  /** Tensors whose per-channel (axis 1) means to collect, for bias correction. */
  channelMeans?: string[];
  /** Tensors whose per-channel (axis 1) minimum and maximum to collect, for channel equalization. */
  channelRanges?: string[];
  /** For mse: the interval outside which a tensor's readers no longer tell values apart. */
  live?: Map<string, Live>;
  /** Tensors kept at their extremes whatever the method (the model's input and outputs). */
  extremes?: Set<string>;
}

const BINS = 2048;

export interface CalibrationResult {
  ranges: Map<string, Range>;
  /** Mean of each channel (axis 1) over batch and space, for the tensors asked for. */
  means: Map<string, Float64Array>;
  /** Minimum and maximum of each channel (axis 1), for the tensors asked for. */
  channelRanges: Map<string, { min: Float64Array; max: Float64Array }>;
  samples: number;
  files: number;
}

export async function calibrate(model: ModelProto, tensors: string[], dir: string, opts: CalibrationOptions): Promise<CalibrationResult> {
  const input = singleInput(model, 'the model');
  const files = listNpyFiles(dir, 'calibration');
  // Check every file's shape before the long part starts.
  let samples = 0;
  for (const f of files) samples += loadBatch(f, input).shape[0];

  const probe = onnx.ModelProto.decode(encodeModel(model));
  const outputs = new Set((probe.graph!.output ?? []).map((o) => o.name));
  for (const t of tensors) if (!outputs.has(t)) probe.graph!.output!.push(onnx.ValueInfoProto.create(makeValueInfo(t, DataType.FLOAT, [])));
  // A shapeless value info means "any shape"; drop the dims list so ORT does not read rank 0.
  for (const o of probe.graph!.output!) if (tensors.includes(o.name ?? '') && o.type?.tensorType) o.type.tensorType.shape = null;
  const session = await openSession(encodeModel(probe), 'the model prepared for calibration');
  const wanted = tensors.filter((t) => input.name !== t);

  const mins = new Map<string, number>(tensors.map((t) => [t, Infinity]));
  const maxs = new Map<string, number>(tensors.map((t) => [t, -Infinity]));
  const maxBatch = opts.maxBatch ?? 32;

  const pass = async (label: string, visit: (name: string, data: Float32Array, shape: readonly number[]) => void) => {
    const progress = new Progress(label, samples);
    for (const f of files) {
      for (const b of chunks(loadBatch(f, input), maxBatch)) {
        const out = await runSession(session, { [input.name]: floatTensor(b.data, b.shape) }, `calibration run on ${f}`, wanted);
        if (tensors.includes(input.name)) visit(input.name, b.data, b.shape);
        for (const t of wanted) visit(t, out[t].data as Float32Array, out[t].dims);
        progress.tick(b.shape[0]);
      }
    }
    progress.end();
  };

  const meanWanted = new Set(opts.channelMeans ?? []);
  const sums = new Map<string, { sum: Float64Array; count: number }>();
  const rangeWanted = new Set(opts.channelRanges ?? []);
  const channelRanges = new Map<string, { min: Float64Array; max: Float64Array }>();
  await pass('calibrating (ranges)', (name, d, shape) => {
    if (rangeWanted.has(name) && shape.length >= 2) {
      const c = shape[1];
      const inner = shape.slice(2).reduce((a, b) => a * b, 1);
      const acc = channelRanges.get(name) ?? { min: new Float64Array(c).fill(Infinity), max: new Float64Array(c).fill(-Infinity) };
      for (let i = 0; i < d.length; i++) {
        const k = Math.floor(i / inner) % c;
        if (d[i] < acc.min[k]) acc.min[k] = d[i];
        if (d[i] > acc.max[k]) acc.max[k] = d[i];
      }
      channelRanges.set(name, acc);
    }
    if (meanWanted.has(name) && shape.length >= 2) {
      const c = shape[1];
      const inner = shape.slice(2).reduce((a, b) => a * b, 1);
      const acc = sums.get(name) ?? { sum: new Float64Array(c), count: 0 };
      for (let i = 0; i < d.length; i++) acc.sum[Math.floor(i / inner) % c] += d[i];
      acc.count += d.length / c;
      sums.set(name, acc);
    }
    let lo = mins.get(name)!;
    let hi = maxs.get(name)!;
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    mins.set(name, lo);
    maxs.set(name, hi);
  });

  const ranges = new Map<string, Range>();
  if (opts.method === 'minmax') {
    for (const t of tensors) ranges.set(t, { min: mins.get(t)!, max: maxs.get(t)! });
  } else {
    // Second pass: histograms over the ranges now known (|x| for entropy, x for percentile).
    const hists = new Map<string, Float64Array>(tensors.map((t) => [t, new Float64Array(BINS)]));
    const lo = (t: string) => (opts.method === 'entropy' ? 0 : mins.get(t)!);
    const hi = (t: string) => (opts.method === 'entropy' ? Math.max(Math.abs(mins.get(t)!), Math.abs(maxs.get(t)!)) : maxs.get(t)!);
    await pass(`calibrating (${opts.method} histograms)`, (name, d) => {
      const h = hists.get(name)!;
      const a = lo(name);
      const width = (hi(name) - a) / BINS || 1;
      const abs = opts.method === 'entropy';
      for (let i = 0; i < d.length; i++) {
        const v = abs ? Math.abs(d[i]) : d[i];
        let k = Math.floor((v - a) / width);
        if (k >= BINS) k = BINS - 1;
        if (k < 0) k = 0;
        h[k]++;
      }
    });
    for (const t of tensors) {
      const h = hists.get(t)!;
      const min = mins.get(t)!;
      const max = maxs.get(t)!;
      if (opts.extremes?.has(t)) {
        ranges.set(t, { min, max });
      } else if (opts.method === 'mse') {
        ranges.set(t, mseRange(h, min, max, opts.live?.get(t)));
      } else if (opts.method === 'percentile') {
        const keep = (opts.percentile ?? 99.99) / 100;
        const width = (max - min) / BINS;
        const [qlo, qhi] = quantiles(h, (1 - keep) / 2, 1 - (1 - keep) / 2);
        ranges.set(t, { min: min + qlo * width, max: min + (qhi + 1) * width });
      } else {
        const amax = hi(t);
        const levels = min >= 0 ? 256 : 128;
        let total = 0;
        for (const c of h) total += c;
        // KL search on a sparse histogram (small tensors such as squeeze-excitation vectors
        // over a small calibration set) picks arbitrary thresholds: keep those at minmax, and
        // never clip more than 0.1% of the values.
        const floor = quantiles(h, 0.999, 0.999)[0] + 1;
        const bins = total < 16 * BINS ? BINS : Math.max(klThreshold(h, levels), floor);
        const threshold = bins * (amax / BINS);
        ranges.set(t, { min: Math.max(min, -threshold), max: Math.min(max, threshold) });
      }
    }
  }
  await session.release();
  const means = new Map([...sums].map(([k, v]) => [k, v.sum.map((x) => x / v.count)]));
  return { ranges, means, channelRanges, samples, files: files.length };
}

/** Bin indices where the cumulative count first reaches each fraction. */
function quantiles(h: Float64Array, a: number, b: number): [number, number] {
  let total = 0;
  for (const c of h) total += c;
  let acc = 0;
  let qa = 0;
  let qb = h.length - 1;
  let foundA = false;
  for (let i = 0; i < h.length; i++) {
    acc += h[i];
    if (!foundA && acc >= a * total) {
      qa = i;
      foundA = true;
    }
    if (acc >= b * total) {
      qb = i;
      break;
    }
  }
  return [qa, qb];
}

/**
 * The histogram bin count (a threshold in bins) whose clipped-and-requantized distribution
 * is closest to the original in KL divergence.
 */
export function klThreshold(hist: Float64Array, levels: number): number {
  const n = hist.length;
  let total = 0;
  let last = 0;
  for (let i = 0; i < n; i++) {
    total += hist[i];
    if (hist[i] > 0) last = i + 1;
  }
  if (total === 0 || last <= levels) return Math.max(last, 1);
  let best = last;
  let bestKl = Infinity;
  const p = new Float64Array(n);
  const q = new Float64Array(n);
  for (let i = levels; i <= last; i++) {
    let outliers = 0;
    for (let k = i; k < n; k++) outliers += hist[k];
    for (let k = 0; k < i; k++) p[k] = hist[k];
    p[i - 1] += outliers;
    // Merge the first i bins into `levels` groups, then spread each group back evenly over
    // its non-empty bins.
    for (let j = 0; j < levels; j++) {
      const s = Math.floor((j * i) / levels);
      const e = Math.floor(((j + 1) * i) / levels);
      let sum = 0;
      let nonzero = 0;
      for (let k = s; k < e; k++) {
        sum += hist[k];
        if (hist[k] > 0) nonzero++;
      }
      for (let k = s; k < e; k++) q[k] = hist[k] > 0 ? sum / nonzero : 0;
    }
    let sp = 0;
    let sq = 0;
    for (let k = 0; k < i; k++) {
      sp += p[k];
      sq += q[k];
    }
    let kl = 0;
    for (let k = 0; k < i; k++) {
      if (p[k] === 0) continue;
      const pk = p[k] / sp;
      const qk = q[k] > 0 ? q[k] / sq : 1e-12;
      kl += pk * Math.log(pk / qk);
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return best;
}
