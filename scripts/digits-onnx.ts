// ONNX export of the digits CNN trained by scripts/train-digits.ts, as float and as an
// interim static int8 QDQ model (QuantizeLinear/DequantizeLinear pairs around every
// quantized tensor: uint8 activations per tensor, int8 weights per output channel, int32
// biases), the form ONNX Runtime's own quantizer writes and the native engine reads.
import { DataType, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo, type NodeProto, type TensorProto } from '../agent/onnx/model.js';

export interface DigitsWeights {
  w1: Float32Array; b1: Float32Array; // [8,1,3,3], [8]
  w2: Float32Array; b2: Float32Array; // [16,8,3,3], [16]
  w3: Float32Array; b3: Float32Array; // [10,784], [10]
}

/** Calibrated float ranges of the activations that get quantized. */
export interface ActivationRanges { relu1: number; relu2: number; logitsMin: number; logitsMax: number }

const IO = {
  input: makeValueInfo('input', DataType.FLOAT, ['N', 1, 28, 28]),
  output: makeValueInfo('logits', DataType.FLOAT, ['N', 10]),
};
const convAttrs = { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] };
const poolAttrs = { kernel_shape: [2, 2], strides: [2, 2] };

export function exportDigitsFp32(w: DigitsWeights): Uint8Array {
  return encodeModel(makeModel({
    name: 'digits_cnn',
    node: [
      makeNode('Conv', ['input', 'w1', 'b1'], ['c1'], convAttrs),
      makeNode('Relu', ['c1'], ['r1']),
      makeNode('MaxPool', ['r1'], ['p1'], poolAttrs),
      makeNode('Conv', ['p1', 'w2', 'b2'], ['c2'], convAttrs),
      makeNode('Relu', ['c2'], ['r2']),
      makeNode('MaxPool', ['r2'], ['p2'], poolAttrs),
      makeNode('Flatten', ['p2'], ['f'], { axis: 1 }),
      makeNode('Gemm', ['f', 'w3', 'b3'], ['logits'], { transB: 1 }),
    ],
    initializer: [
      makeTensor('w1', [8, 1, 3, 3], w.w1), makeTensor('b1', [8], w.b1),
      makeTensor('w2', [16, 8, 3, 3], w.w2), makeTensor('b2', [16], w.b2),
      makeTensor('w3', [10, 784], w.w3), makeTensor('b3', [10], w.b3),
    ],
    input: [IO.input],
    output: [IO.output],
  }));
}

/** Per output channel symmetric int8 weights: scale = max|w| / 127. */
function quantizeWeights(w: Float32Array, channels: number): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let i = 0; i < per; i++) m = Math.max(m, Math.abs(w[c * per + i]!));
    const s = m > 0 ? m / 127 : 1;
    scales[c] = s;
    for (let i = 0; i < per; i++) q[c * per + i] = Math.max(-127, Math.min(127, Math.round(w[c * per + i]! / s)));
  }
  return { q, scales };
}

export function exportDigitsInt8(w: DigitsWeights, r: ActivationRanges): Uint8Array {
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const scalar = (name: string, v: number): string => {
    inits.push(makeTensor(name, [], new Float32Array([v])));
    return name;
  };
  const zpU8 = (name: string, v: number): string => {
    inits.push(makeTensor(name, [], new Uint8Array([v])));
    return name;
  };
  /** x (float) -> Q -> DQ; returns the dequantized name. */
  const qdq = (x: string, scale: string, zp: string): string => {
    nodes.push(makeNode('QuantizeLinear', [x, scale, zp], [`${x}_q`]));
    nodes.push(makeNode('DequantizeLinear', [`${x}_q`, scale, zp], [`${x}_dq`]));
    return `${x}_dq`;
  };
  /** A quantized weight and bias pair, dequantized in the graph. */
  const weights = (name: string, shape: number[], wf: Float32Array, bf: Float32Array, inScale: number): [string, string] => {
    const { q, scales } = quantizeWeights(wf, shape[0]!);
    inits.push(makeTensor(`${name}_q`, shape, q));
    inits.push(makeTensor(`${name}_scale`, [shape[0]!], scales));
    inits.push(makeTensor(`${name}_zp`, [shape[0]!], new Int8Array(shape[0]!)));
    nodes.push(makeNode('DequantizeLinear', [`${name}_q`, `${name}_scale`, `${name}_zp`], [`${name}_dq`], { axis: 0 }));
    const bScales = scales.map((s) => s * inScale);
    const bq = new Int32Array(bf.length);
    for (let i = 0; i < bf.length; i++) bq[i] = Math.round(bf[i]! / bScales[i]!);
    inits.push(makeTensor(`${name}_bias_q`, [bf.length], bq));
    inits.push(makeTensor(`${name}_bias_scale`, [bf.length], new Float32Array(bScales)));
    nodes.push(makeNode('DequantizeLinear', [`${name}_bias_q`, `${name}_bias_scale`], [`${name}_bias_dq`], { axis: 0 }));
    return [`${name}_dq`, `${name}_bias_dq`];
  };

  const sIn = 1 / 255, s1 = r.relu1 / 255, s2 = r.relu2 / 255;
  const sOut = (r.logitsMax - r.logitsMin) / 255;
  const zOut = Math.max(0, Math.min(255, Math.round(-r.logitsMin / sOut)));
  scalar('input_scale', sIn); zpU8('zp0', 0);
  scalar('act1_scale', s1); scalar('act2_scale', s2);
  scalar('logits_scale', sOut); zpU8('logits_zp', zOut);

  const x0 = qdq('input', 'input_scale', 'zp0');
  const [w1, b1] = weights('w1', [8, 1, 3, 3], w.w1, w.b1, sIn);
  nodes.push(makeNode('Conv', [x0, w1, b1], ['c1'], convAttrs));
  nodes.push(makeNode('Relu', ['c1'], ['r1']));
  const r1 = qdq('r1', 'act1_scale', 'zp0');
  nodes.push(makeNode('MaxPool', [r1], ['p1'], poolAttrs));
  const p1 = qdq('p1', 'act1_scale', 'zp0');
  const [w2, b2] = weights('w2', [16, 8, 3, 3], w.w2, w.b2, s1);
  nodes.push(makeNode('Conv', [p1, w2, b2], ['c2'], convAttrs));
  nodes.push(makeNode('Relu', ['c2'], ['r2']));
  const r2 = qdq('r2', 'act2_scale', 'zp0');
  nodes.push(makeNode('MaxPool', [r2], ['p2'], poolAttrs));
  const p2 = qdq('p2', 'act2_scale', 'zp0');
  nodes.push(makeNode('Flatten', [p2], ['f'], { axis: 1 }));
  const f = qdq('f', 'act2_scale', 'zp0');
  const [w3, b3] = weights('w3', [10, 784], w.w3, w.b3, s2);
  nodes.push(makeNode('Gemm', [f, w3, b3], ['g'], { transB: 1 }));
  nodes.push(makeNode('QuantizeLinear', ['g', 'logits_scale', 'logits_zp'], ['g_q']));
  nodes.push(makeNode('DequantizeLinear', ['g_q', 'logits_scale', 'logits_zp'], ['logits']));

  return encodeModel(makeModel({ name: 'digits_cnn_int8', node: nodes, initializer: inits, input: [IO.input], output: [IO.output] }));
}
