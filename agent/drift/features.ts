// Turns one inference's tensors into one row of feature values, cheaply: the declarations are
// compiled once into small jobs over preallocated scratch space, so observing allocates nothing.
// A tensor that is missing or has an unexpected size gives NaN (counted as missing), never an error:
// drift monitoring must not break inference.
import type { Tensor, TensorMap } from '../runtime/backend.js';
import type { ResolvedFeature } from './spec.js';

type Job = (inputs: TensorMap, outputs: TensorMap, b: number, row: Float64Array) => void;

/** Resolution of the per-sample percentile histogram (bins over the declared range). */
const PCT_BINS = 256;

export class FeatureExtractor {
  readonly features: ResolvedFeature[];
  readonly width: number;
  readonly #jobs: Job[] = [];
  readonly #batchTensor: { from: 'input' | 'output'; tensor: string } | undefined;

  constructor(features: ResolvedFeature[]) {
    this.features = features;
    this.width = features.length;
    const firstInput = features.find((f) => f.from === 'input') ?? features[0];
    this.#batchTensor = firstInput && { from: firstInput.from, tensor: firstInput.tensor };
    // Image summaries of one channel share one pass over the pixels.
    const channelGroups = new Map<string, { f: ResolvedFeature; col: number }[]>();
    features.forEach((f, col) => {
      if (f.extract.op === 'channel') {
        const key = `${f.from}\0${f.tensor}\0${f.extract.channel}`;
        const g = channelGroups.get(key) ?? [];
        g.push({ f, col });
        channelGroups.set(key, g);
      } else {
        this.#jobs.push(scalarJob(f, col));
      }
    });
    for (const g of channelGroups.values()) this.#jobs.push(channelJob(g));
  }

  /** Samples in this inference's batch (dimension 0 of the first input feature's tensor). */
  batchSize(inputs: TensorMap, outputs: TensorMap): number {
    if (!this.#batchTensor) return 0;
    const t = (this.#batchTensor.from === 'input' ? inputs : outputs)[this.#batchTensor.tensor];
    return t ? batchOf(t) : 1;
  }

  /** Writes sample b's feature values into row[0..width). */
  extract(inputs: TensorMap, outputs: TensorMap, b: number, row: Float64Array): void {
    for (let i = 0; i < this.#jobs.length; i++) this.#jobs[i](inputs, outputs, b, row);
  }
}

function batchOf(t: Tensor): number {
  return t.shape.length > 1 ? Math.max(1, t.shape[0]) : 1;
}

function pick(f: ResolvedFeature, inputs: TensorMap, outputs: TensorMap): Tensor | undefined {
  return (f.from === 'input' ? inputs : outputs)[f.tensor];
}

function at(t: Tensor, i: number): number {
  const d = t.data;
  return t.dtype === 'int64' ? Number((d as BigInt64Array)[i]) : (d as Float32Array)[i];
}

function scalarJob(f: ResolvedFeature, col: number): Job {
  const ex = f.extract;
  return (inputs, outputs, b, row) => {
    const t = pick(f, inputs, outputs);
    const batch = t ? batchOf(t) : 0;
    if (!t || b >= batch) {
      row[col] = NaN;
      return;
    }
    const size = t.data.length / batch;
    const base = b * size;
    switch (ex.op) {
      case 'element':
        row[col] = ex.index < size ? at(t, base + ex.index) : NaN;
        return;
      case 'argmax': {
        let best = -Infinity, arg = NaN;
        for (let i = 0; i < size; i++) {
          const v = at(t, base + i);
          if (v > best) {
            best = v;
            arg = i;
          }
        }
        row[col] = arg;
        return;
      }
      case 'maxprob': {
        let max = -Infinity;
        for (let i = 0; i < size; i++) {
          const v = at(t, base + i);
          if (v > max) max = v;
        }
        if (!ex.softmax) {
          row[col] = size ? max : NaN;
          return;
        }
        // softmax's top probability = 1 / sum exp(x_i - max)
        let s = 0;
        for (let i = 0; i < size; i++) s += Math.exp(at(t, base + i) - max);
        row[col] = size ? 1 / s : NaN;
        return;
      }
      default:
        row[col] = NaN;
    }
  };
}

function channelJob(group: { f: ResolvedFeature; col: number }[]): Job {
  const first = group[0].f;
  const ex = first.extract as Extract<ResolvedFeature['extract'], { op: 'channel' }>;
  const needPct = group.some((g) => (g.f.extract as typeof ex).stat === 'percentile');
  const scratch = new Uint32Array(PCT_BINS);
  const [lo, hi] = ex.range;
  const scale = hi > lo ? PCT_BINS / (hi - lo) : 0;
  const cols = Int32Array.from(group, (g) => g.col);
  const stats = group.map((g) => (g.f.extract as typeof ex).stat);
  const qs = Float64Array.from(group, (g) => (g.f.extract as typeof ex).q);
  const pctOrder = Int32Array.from(group.map((_, i) => i).filter((i) => stats[i] === 'percentile').sort((a, b) => qs[a] - qs[b]));
  const nanAll = (row: Float64Array) => {
    for (let i = 0; i < cols.length; i++) row[cols[i]] = NaN;
  };
  return (inputs, outputs, b, row) => {
    const t = pick(first, inputs, outputs);
    const batch = t ? batchOf(t) : 0;
    if (!t || b >= batch || t.dtype === 'int64') return nanAll(row);
    const size = t.data.length / batch;
    const per = Math.floor(size / ex.channels);
    if (per <= 0 || per * ex.channels !== size) return nanAll(row);
    let start: number, stride: number;
    if (ex.channelAxis === null || ex.channelAxis === 1) {
      start = b * size + ex.channel * per;
      stride = 1;
    } else {
      start = b * size + ex.channel;
      stride = ex.channels;
    }
    // Every pixelStride-th pixel of the channel (see FeatureDecl 'image').
    const step = ex.pixelStride ?? 1;
    const count = Math.ceil(per / step);
    stride *= step;
    const d = t.data as Float32Array;
    let s = 0, s2 = 0;
    if (needPct) {
      scratch.fill(0);
      const top = PCT_BINS - 1;
      for (let i = 0, j = start; i < count; i++, j += stride) {
        const v = d[j];
        s += v;
        s2 += v * v;
        const k = ((v - lo) * scale) | 0;
        scratch[k < 0 ? 0 : k > top ? top : k]++;
      }
    } else {
      for (let i = 0, j = start; i < count; i++, j += stride) {
        const v = d[j];
        s += v;
        s2 += v * v;
      }
    }
    const mean = s / count;
    for (let i = 0; i < cols.length; i++) {
      const st = stats[i];
      if (st === 'mean') row[cols[i]] = mean;
      else if (st === 'std') row[cols[i]] = Math.sqrt(Math.max(0, s2 / count - mean * mean));
    }
    if (needPct) {
      // All percentiles in one walk over the bins, in ascending q.
      const w = (hi - lo) / PCT_BINS;
      let acc = 0, k = 0;
      for (let o = 0; o < pctOrder.length; o++) {
        const i = pctOrder[o];
        const target = qs[i] * count;
        for (; k < PCT_BINS; k++) {
          const c = scratch[k];
          if (c > 0 && acc + c >= target) break;
          acc += c;
        }
        row[cols[i]] = k < PCT_BINS ? lo + w * (k + (target - acc) / scratch[k]) : hi;
      }
    }
  };
}
