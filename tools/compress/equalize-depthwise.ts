// Channel equalization before a depthwise convolution (Nagel et al. 2019, "Data-Free
// Quantization", cross-layer equalization, here driven by the calibrated activation ranges).
// A Conv whose output only a depthwise Conv reads is linear per output channel, and the
// depthwise Conv is linear per input channel: multiplying channel c of the first by s_c and
// dividing the depthwise filter of channel c by s_c leaves the float result unchanged (zero
// padding stays zero). Both weights are quantized per output channel, so their int8 error does
// not change either; what changes is the one per-tensor uint8 range of the tensor between them,
// which every channel now fills: a channel that varied by 0.06 around -3.2 in a tensor spanning
// [-20, 20] (PP-LCNetV3's stem, the first layer of PP-OCRv4 det and rec) used to vary by less
// than one step, and the depthwise filter, large after BatchNorm folding, multiplied that error.
import { attr, DataType, dims, makeTensor, tensorData, type NodeProto } from '../../agent/onnx/model.js';
import type { GraphIndex } from './graph.js';

export interface DepthwisePair {
  /** The Conv whose output channels are scaled. */
  first: NodeProto;
  /** The depthwise Conv reading it. */
  depthwise: NodeProto;
  /** The tensor between them. */
  tensor: string;
}

const floatInit = (g: GraphIndex, name: string | undefined) => {
  const t = name ? g.inits.get(name) : undefined;
  return t && t.dataType === DataType.FLOAT ? t : undefined;
};

/** Conv -> depthwise Conv pairs with nothing else reading the tensor between them. */
export function depthwisePairs(g: GraphIndex, skip: Set<string> = new Set()): DepthwisePair[] {
  const pairs: DepthwisePair[] = [];
  for (const first of g.graph.node!) {
    if (first.opType !== 'Conv' || (first.output ?? []).length !== 1) continue;
    const tensor = first.output![0];
    if (g.isGraphOutput(tensor) || skip.has(first.name ?? '') || skip.has(tensor)) continue;
    const w1 = floatInit(g, first.input![1]);
    if (!w1 || dims(w1).length !== 4 || (first.input![2] && !floatInit(g, first.input![2]))) continue;
    const readers = g.consumers(tensor);
    if (readers.length !== 1) continue;
    const dw = readers[0];
    if (dw.opType !== 'Conv' || dw.input![0] !== tensor || skip.has(dw.name ?? '')) continue;
    const w2 = floatInit(g, dw.input![1]);
    const channels = dims(w1)[0];
    if (!w2 || dims(w2).length !== 4 || dims(w2)[1] !== 1) continue;
    if (Number(attr(dw, 'group') ?? 1) !== channels || dims(w2)[0] % channels !== 0) continue;
    pairs.push({ first, depthwise: dw, tensor });
  }
  return pairs;
}

/**
 * The scale of each channel: as large as keeps the channel inside the tensor's overall range
 * [min over channels, max over channels] (0 included), so each channel spans as many of the
 * 256 steps as the widest one.
 */
export function equalizingScales(min: ArrayLike<number>, max: ArrayLike<number>): Float64Array {
  let lo = 0;
  let hi = 0;
  for (let c = 0; c < min.length; c++) {
    lo = Math.min(lo, min[c]);
    hi = Math.max(hi, max[c]);
  }
  return Float64Array.from({ length: min.length }, (_, c) => {
    let s = Infinity;
    if (max[c] > 0) s = Math.min(s, hi / max[c]);
    if (min[c] < 0) s = Math.min(s, lo / min[c]);
    return Number.isFinite(s) && s > 1 ? s : 1;
  });
}

/** Rescales each pair by its tensor's per-channel ranges; returns how many pairs changed. */
export function equalizeDepthwise(g: GraphIndex, pairs: DepthwisePair[], ranges: Map<string, { min: Float64Array; max: Float64Array }>): number {
  let changed = 0;
  for (const { first, depthwise, tensor } of pairs) {
    const r = ranges.get(tensor);
    const w1t = g.inits.get(first.input![1])!;
    const w2t = g.inits.get(depthwise.input![1])!;
    const m = dims(w1t)[0];
    if (!r || r.min.length !== m) continue;
    const s = equalizingScales(r.min, r.max);
    if (s.every((v) => v === 1)) continue;
    const w1 = tensorData(w1t) as Float32Array;
    const per1 = w1.length / m;
    const w1s = Float32Array.from(w1, (v, i) => v * s[Math.floor(i / per1)]);
    const b1 = first.input![2] ? (tensorData(g.inits.get(first.input![2])!) as Float32Array) : new Float32Array(m);
    const b1s = Float32Array.from(b1, (v, c) => v * s[c]);
    const w2 = tensorData(w2t) as Float32Array;
    const mult = dims(w2t)[0] / m;
    const per2 = w2.length / dims(w2t)[0];
    const w2s = Float32Array.from(w2, (v, i) => v / s[Math.floor(Math.floor(i / per2) / mult)]);
    // Fresh names: a weight may be shared with another Conv.
    const w1n = g.addInit(makeTensor(g.fresh(`${first.input![1]}_eq`), dims(w1t), w1s));
    const b1n = g.addInit(makeTensor(g.fresh(`${tensor}_eq_bias`), [m], b1s));
    const w2n = g.addInit(makeTensor(g.fresh(`${depthwise.input![1]}_eq`), dims(w2t), w2s));
    first.input = [first.input![0], w1n, b1n];
    depthwise.input = [depthwise.input![0], w2n, ...depthwise.input!.slice(2)];
    changed++;
  }
  if (changed) g.pruneUnusedInits();
  return changed;
}
