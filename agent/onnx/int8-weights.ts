// The int8 weights of a quantized ONNX model, seen from ONNX Runtime's x86 kernels.
//
// On x86 without VNNI, ONNX Runtime multiplies u8 activations by s8 weights with vpmaddubsw,
// which adds each pair of products into a saturating int16: 255 * 127 * 2 > 32767. A pair
// cannot saturate when every weight is within ±64 (255 * 64 * 2 = 32640). Its u8 x u8 kernels
// widen to 16 bits first and are exact on every CPU, so the same model with its weights stored
// as uint8 (value + 128, zero point + 128) computes exactly the same numbers without saturating.
import { DataType, dims, makeTensor, tensorData, type ModelProto, type NodeProto, type TensorProto } from './model.js';

/** Largest |w| that no pair of u8 x s8 products can saturate int16 with. */
export const ORT_SAFE_WEIGHT = 64;

/** Where an integer operator takes its weight and the weight's zero point. */
interface WeightSlot { weight: number; scale?: number; zeroPoint: number }
const WEIGHT_SLOTS: Record<string, WeightSlot> = {
  QLinearConv: { weight: 3, scale: 4, zeroPoint: 5 },
  QLinearMatMul: { weight: 3, scale: 4, zeroPoint: 5 },
  ConvInteger: { weight: 1, zeroPoint: 3 },
  MatMulInteger: { weight: 1, zeroPoint: 3 },
  // In QDQ form every int8 initializer that is dequantized is a weight: activations are never
  // initializers. Rewriting it keeps DequantizeLinear's result identical for any consumer.
  DequantizeLinear: { weight: 0, scale: 1, zeroPoint: 2 },
};

export interface Int8Weights {
  /** Initializers holding int8 weights of integer products. */
  tensors: string[];
  /** The largest |w| over them (0 when there are none). */
  maxAbs: number;
  /** Those with some |w| > ORT_SAFE_WEIGHT. */
  wide: string[];
}

function int8WeightOf(node: NodeProto, inits: Map<string, TensorProto>): { slot: WeightSlot; tensor: TensorProto } | undefined {
  const slot = WEIGHT_SLOTS[node.opType ?? ''];
  if (!slot || (node.domain && node.domain !== 'ai.onnx')) return undefined;
  const tensor = inits.get(node.input?.[slot.weight] ?? '');
  return tensor && tensor.dataType === DataType.INT8 ? { slot, tensor } : undefined;
}

/** The model's int8 weights and how wide they are. */
export function int8Weights(model: ModelProto): Int8Weights {
  const g = model.graph;
  const inits = new Map((g?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const seen = new Map<string, number>();
  for (const node of g?.node ?? []) {
    const found = int8WeightOf(node, inits);
    if (!found || seen.has(found.tensor.name ?? '')) continue;
    let max = 0;
    for (const v of tensorData(found.tensor) as Int8Array) max = Math.max(max, Math.abs(v));
    seen.set(found.tensor.name ?? '', max);
  }
  const tensors = [...seen.keys()];
  return {
    tensors,
    maxAbs: Math.max(0, ...seen.values()),
    wide: tensors.filter((n) => seen.get(n)! > ORT_SAFE_WEIGHT),
  };
}

/**
 * The same model with every int8 weight stored as uint8 (w + 128) and its zero point moved by
 * 128: ONNX Runtime runs it with its u8 x u8 kernels, which are exact on every CPU. Returns
 * undefined when the model has no int8 weights. The input is not modified.
 */
export function withUint8Weights(model: ModelProto): ModelProto | undefined {
  const src = model.graph;
  if (!src) return undefined;
  const inits = new Map((src.initializer ?? []).map((t) => [t.name ?? '', t]));
  const added: TensorProto[] = [];
  const made = new Map<string, string>();
  const taken = new Set(inits.keys());
  const fresh = (base: string): string => {
    let name = `${base}_u8`;
    for (let i = 2; taken.has(name); i++) name = `${base}_u8_${i}`;
    taken.add(name);
    return name;
  };
  /** The uint8 copy of an int8 tensor (values + 128), made once per source tensor. */
  const shifted = (t: TensorProto): string => {
    const key = t.name ?? '';
    let name = made.get(key);
    if (name) return name;
    name = fresh(key);
    const v = tensorData(t) as Int8Array;
    const u = new Uint8Array(v.length);
    for (let i = 0; i < v.length; i++) u[i] = v[i] + 128;
    added.push(makeTensor(name, dims(t), u));
    made.set(key, name);
    return name;
  };
  let changed = false;
  const nodes = (src.node ?? []).map((node) => {
    const found = int8WeightOf(node, inits);
    if (!found) return node;
    const input = [...(node.input ?? [])];
    const zpName = input[found.slot.zeroPoint];
    const zp = zpName ? inits.get(zpName) : undefined;
    // A zero point that is not a constant int8: leave this operator as it is (checked before
    // any uint8 copy is made, so none is added unused).
    if (zpName && !(zp && zp.dataType === DataType.INT8)) return node;
    input[found.slot.weight] = shifted(found.tensor);
    if (zp) {
      input[found.slot.zeroPoint] = shifted(zp);
    } else {
      // No zero point means 0: the uint8 form needs an explicit 128, shaped like the scale
      // (one per channel for per-axis weights).
      const scale = found.slot.scale === undefined ? undefined : inits.get(input[found.slot.scale] ?? '');
      const shape = scale ? dims(scale) : [];
      const n = shape.reduce((a, b) => a * b, 1);
      const name = fresh(`${found.tensor.name}_zero_point`);
      added.push(makeTensor(name, shape, new Uint8Array(n).fill(128)));
      while (input.length < found.slot.zeroPoint) input.push('');
      input[found.slot.zeroPoint] = name;
    }
    changed = true;
    return { ...node, input };
  });
  if (!changed) return undefined;
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  const initializer = [...(src.initializer ?? []).filter((t) => used.has(t.name ?? '') || !made.has(t.name ?? '')), ...added];
  return { ...model, graph: { ...src, node: nodes, initializer } } as ModelProto;
}
