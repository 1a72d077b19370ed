// Small int8 ONNX graphs for the native engine's tests, in QDQ and QOperator form, with
// random weights from a fixed seed. Output scales come from a rough variance estimate so most
// values land inside the quantized range (saturated everywhere would prove little).
import {
  DataType, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo,
  type NodeProto, type TensorProto,
} from '../../agent/onnx/model.js';
import { mulberry32 as rng } from '../../tools/prng.js';

export { rng };

export interface Q { name: string; scale: number; zp: number; shape: number[] }

type Act = 'relu' | 'relu6' | undefined;

/** Builds a QDQ graph: every quantized value is a QuantizeLinear followed by a DequantizeLinear. */
export class QdqGraph {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  readonly rand: () => number;
  private n = 0;

  constructor(seed: number, readonly signed = false) {
    this.rand = rng(seed);
  }

  id(p: string): string { return `${p}${this.n++}`; }

  const(data: Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array, shape: number[], p = 'c'): string {
    const name = this.id(p);
    this.inits.push(makeTensor(name, shape, data));
    return name;
  }

  zp(v: number): string {
    return this.signed ? this.const(new Int8Array([v - 128]), [], 'zp') : this.const(new Uint8Array([v]), [], 'zp');
  }

  /** Q then DQ of a float value: returns the dequantized name and its parameters. */
  qdq(x: string, scale: number, zp: number, shape: number[]): Q {
    const s = this.const(new Float32Array([scale]), [], 's');
    const z = this.zp(zp);
    const q = this.id('q');
    const d = this.id('dq');
    this.nodes.push(makeNode('QuantizeLinear', [x, s, z], [q]));
    this.nodes.push(makeNode('DequantizeLinear', [q, s, z], [d]));
    return { name: d, scale, zp, shape };
  }

  /** Output scale so that the accumulation's spread covers about +-60 quantized steps. */
  outScale(x: Q, wScale: number, k: number): number {
    return x.scale * wScale * 30 * Math.sqrt(k) * 1.5;
  }

  private weights(count: number, perChannel: number): { w: string; scales: number[] } {
    const data = new Int8Array(count);
    // 7-bit weights: ORT's u8s8 kernels may saturate 16-bit pair sums on CPUs without VNNI.
    for (let i = 0; i < count; i++) data[i] = Math.floor(this.rand() * 127) - 63;
    const scales = Array.from({ length: perChannel }, () => 0.002 + this.rand() * 0.01);
    return { w: this.const(data, [count], 'w'), scales };
  }

  private dqWeights(count: number, shape: number[], perChannel: number, axis: number): { name: string; scales: number[] } {
    const { w, scales } = this.weights(count, perChannel);
    this.inits[this.inits.length - 1].dims = shape;
    const s = perChannel > 1 ? this.const(new Float32Array(scales), [perChannel], 'ws') : this.const(new Float32Array(scales), [], 'ws');
    const z = perChannel > 1 ? this.const(new Int8Array(perChannel), [perChannel], 'wz') : this.const(new Int8Array(1), [], 'wz');
    const name = this.id('wdq');
    this.nodes.push(makeNode('DequantizeLinear', [w, s, z], [name], perChannel > 1 ? { axis } : {}));
    return { name, scales };
  }

  private dqBias(count: number, accScales: number[]): string {
    const data = new Int32Array(count);
    for (let i = 0; i < count; i++) data[i] = Math.floor((this.rand() - 0.5) * 4000);
    const b = this.const(data, [count], 'b');
    const per = accScales.length > 1;
    const s = this.const(new Float32Array(accScales.map(Math.fround)), per ? [count] : [], 'bs');
    const z = this.const(new Int32Array(per ? count : 1), per ? [count] : [], 'bz');
    const name = this.id('bdq');
    this.nodes.push(makeNode('DequantizeLinear', [b, s, z], [name], per ? { axis: 0 } : {}));
    return name;
  }

  private act(y: string, act: Act): string {
    if (!act) return y;
    const out = this.id(act);
    if (act === 'relu') this.nodes.push(makeNode('Relu', [y], [out]));
    else {
      const lo = this.const(new Float32Array([0]), [], 'lo');
      const hi = this.const(new Float32Array([6 * 0.02]), [], 'hi');
      this.nodes.push(makeNode('Clip', [y, lo, hi], [out]));
    }
    return out;
  }

  conv(x: Q, cout: number, k: number, o: { stride?: number; pad?: number; group?: number; dilation?: number; act?: Act; perChannel?: boolean; bias?: boolean } = {}): Q {
    const [N, C, H, W] = x.shape;
    const group = o.group ?? 1;
    const stride = o.stride ?? 1; const pad = o.pad ?? 0; const dil = o.dilation ?? 1;
    const cg = C / group;
    const w = this.dqWeights(cout * cg * k * k, [cout, cg, k, k], o.perChannel ? cout : 1, 0);
    const inputs = [x.name, w.name];
    if (o.bias !== false) inputs.push(this.dqBias(cout, w.scales.map((s) => Math.fround(x.scale * s))));
    const y = this.id('conv');
    this.nodes.push(makeNode('Conv', inputs, [y], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad], group, dilations: [dil, dil] }));
    const Ho = Math.floor((H + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
    const Wo = Math.floor((W + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
    const scale = this.outScale(x, w.scales[0], cg * k * k);
    return this.qdq(this.act(y, o.act), scale, o.act ? 5 : 128, [N, cout, Ho, Wo]);
  }

  gemm(x: Q, nOut: number, o: { act?: Act; transB?: boolean; perChannel?: boolean; matmul?: boolean } = {}): Q {
    const K = x.shape[x.shape.length - 1];
    const transB = o.transB ?? true;
    const w = this.dqWeights(nOut * K, transB ? [nOut, K] : [K, nOut], o.perChannel ? nOut : 1, transB ? 0 : 1);
    const y = this.id('gemm');
    if (o.matmul) this.nodes.push(makeNode('MatMul', [x.name, w.name], [y]));
    else this.nodes.push(makeNode('Gemm', [x.name, w.name, this.dqBias(nOut, w.scales.map((s) => Math.fround(x.scale * s)))], [y], { transB: transB ? 1 : 0 }));
    return this.qdq(this.act(y, o.act), this.outScale(x, w.scales[0], K), o.act ? 5 : 128, [...x.shape.slice(0, -1), nOut]);
  }

  maxpool(x: Q, k: number, stride: number, pad = 0): Q {
    const y = this.id('mp');
    this.nodes.push(makeNode('MaxPool', [x.name], [y], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad] }));
    const [N, C, H, W] = x.shape;
    return this.qdq(y, x.scale, x.zp, [N, C, Math.floor((H + 2 * pad - k) / stride) + 1, Math.floor((W + 2 * pad - k) / stride) + 1]);
  }

  avgpool(x: Q, k: number, stride: number, pad = 0, countIncludePad = 0): Q {
    const y = this.id('ap');
    this.nodes.push(makeNode('AveragePool', [x.name], [y], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad], count_include_pad: countIncludePad }));
    const [N, C, H, W] = x.shape;
    return this.qdq(y, x.scale * 0.8, 120, [N, C, Math.floor((H + 2 * pad - k) / stride) + 1, Math.floor((W + 2 * pad - k) / stride) + 1]);
  }

  globalAvgPool(x: Q): Q {
    const y = this.id('gap');
    this.nodes.push(makeNode('GlobalAveragePool', [x.name], [y]));
    return this.qdq(y, x.scale * 0.5, x.zp, [x.shape[0], x.shape[1], 1, 1]);
  }

  /** Squeeze (axes as an input, opset 13+). */
  squeeze(x: Q, axes: number[]): Q {
    const y = this.id('sq');
    this.nodes.push(makeNode('Squeeze', [x.name, this.const(BigInt64Array.from(axes.map(BigInt)), [axes.length], 'ax')], [y]));
    return { ...x, name: y, shape: x.shape.filter((_, i) => !axes.includes(i)) };
  }

  flatten(x: Q): Q {
    const y = this.id('flat');
    this.nodes.push(makeNode('Flatten', [x.name], [y], { axis: 1 }));
    return { ...x, name: y, shape: [x.shape[0], x.shape.slice(1).reduce((a, b) => a * b, 1)] };
  }

  binary(op: 'Add' | 'Mul', a: Q, b: Q, act?: Act): Q {
    const y = this.id(op);
    this.nodes.push(makeNode(op, [a.name, b.name], [y]));
    const scale = op === 'Add' ? (a.scale + b.scale) * 1.2 : a.scale * b.scale * 60;
    return this.qdq(this.act(y, act), scale, act ? 5 : 128, a.shape);
  }

  /** A constant quantized operand (per-channel for a 4D map when channels is given). */
  constOperand(shape: number[], scale: number): Q {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = this.signed ? new Int8Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.floor(this.rand() * 256) - (this.signed ? 128 : 0);
    const c = this.const(data, shape, 'k');
    const s = this.const(new Float32Array([scale]), [], 's');
    const z = this.zp(128);
    const name = this.id('kdq');
    this.nodes.push(makeNode('DequantizeLinear', [c, s, z], [name]));
    return { name, scale, zp: 128, shape };
  }

  unary(op: 'Sigmoid' | 'Tanh' | 'LeakyRelu' | 'HardSwish' | 'HardSigmoid' | 'Relu', x: Q, attrs: Record<string, { float: number }> = {}): Q {
    const y = this.id(op);
    this.nodes.push(makeNode(op, [x.name], [y], attrs));
    const [scale, zp] = op === 'Sigmoid' || op === 'HardSigmoid' ? [1 / 255, 0] : op === 'Tanh' ? [1 / 127, 128] : [x.scale, x.zp];
    return this.qdq(y, scale, zp, x.shape);
  }

  /** The graph's float input, quantized. */
  input(name: string, shape: number[], scale: number, zp: number): Q {
    return this.qdq(name, scale, zp, shape);
  }

  model(inputName: string, inputShape: (number | string)[], out: Q, outputName = 'y'): Uint8Array {
    this.nodes.push(makeNode('Identity', [out.name], [outputName]));
    return encodeModel(makeModel({
      name: 'qdq',
      node: this.nodes,
      initializer: this.inits,
      input: [makeValueInfo(inputName, DataType.FLOAT, inputShape)],
      output: [makeValueInfo(outputName, DataType.FLOAT, ['N', ...out.shape.slice(1)])],
    }, 14));
  }
}

/** Random float input with the given shape, spread over the quantized range of (scale, zp). */
export function randomInput(rand: () => number, shape: number[], scale: number, zp: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (rand() * 255 - zp) * scale * 1.05;
  return x;
}
