// A small float32 ONNX graph builder for the zoo models: random weights from a fixed seed,
// scaled (He-style, by fan-in) so activations keep roughly unit spread through deep stacks
// without BatchNorm; calibration then sees realistic, non-degenerate ranges.
import {
  DataType, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo,
  type NodeProto, type TensorProto,
} from '../../agent/onnx/model.js';
import { mulberry32 } from '../../tools/prng.js';

/** A value in the graph with its NCHW shape. */
export interface V { name: string; shape: number[] }

export type Act = 'relu' | 'relu6' | 'hardswish' | 'hardsigmoid' | undefined;

export interface ConvOpts { stride?: number; group?: number; act?: Act; gain?: number }

export class FloatGraph {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  readonly rand: () => number;
  private n = 0;

  constructor(seed: number) {
    this.rand = mulberry32(seed);
  }

  id(p: string): string { return `${p}_${this.n++}`; }

  private init(data: Float32Array | BigInt64Array, shape: number[], p: string): string {
    const name = this.id(p);
    this.inits.push(makeTensor(name, shape, data));
    return name;
  }

  /** Uniform in [-a, a] with variance gain / fanIn (He-uniform for gain 2). */
  private uniform(count: number, fanIn: number, gain: number): Float32Array {
    const a = Math.sqrt((3 * gain) / fanIn);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = (this.rand() * 2 - 1) * a;
    return out;
  }

  act(x: V, act: Act): V {
    if (!act) return x;
    const y = this.id(act);
    if (act === 'relu') this.nodes.push(makeNode('Relu', [x.name], [y]));
    else if (act === 'relu6') {
      const lo = this.init(new Float32Array([0]), [], 'lo'), hi = this.init(new Float32Array([6]), [], 'hi');
      this.nodes.push(makeNode('Clip', [x.name, lo, hi], [y]));
    } else if (act === 'hardswish') {
      // x * HardSigmoid(x): HardSwish itself needs opset 14, the quantizer works at opset 13.
      return this.mul(x, this.act(x, 'hardsigmoid'));
    } else this.nodes.push(makeNode('HardSigmoid', [x.name], [y], { alpha: { float: 1 / 6 }, beta: { float: 0.5 } }));
    return { name: y, shape: x.shape };
  }

  /** Square kernel, "same" padding (k / 2 each side), bias. */
  conv(x: V, outC: number, k: number, o: ConvOpts = {}): V {
    const [N, C, H, W] = x.shape;
    const stride = o.stride ?? 1, group = o.group ?? 1;
    const fanIn = (C / group) * k * k;
    const gain = o.gain ?? (o.act ? 2 : 1);
    const w = this.init(this.uniform(outC * fanIn, fanIn, gain), [outC, C / group, k, k], 'w');
    const bias = new Float32Array(outC);
    for (let i = 0; i < outC; i++) bias[i] = (this.rand() * 2 - 1) * 0.1;
    const b = this.init(bias, [outC], 'b');
    const p = Math.floor(k / 2);
    const y = this.id('conv');
    this.nodes.push(makeNode('Conv', [x.name, w, b], [y], { kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p], group }));
    const OH = Math.floor((H + 2 * p - k) / stride) + 1, OW = Math.floor((W + 2 * p - k) / stride) + 1;
    return this.act({ name: y, shape: [N, outC, OH, OW] }, o.act);
  }

  add(a: V, b: V): V {
    const y = this.id('add');
    this.nodes.push(makeNode('Add', [a.name, b.name], [y]));
    return { name: y, shape: a.shape };
  }

  mul(a: V, b: V): V {
    const y = this.id('mul');
    this.nodes.push(makeNode('Mul', [a.name, b.name], [y]));
    return { name: y, shape: a.shape };
  }

  maxpool(x: V, k: number, stride: number, pad: number): V {
    const [N, C, H, W] = x.shape;
    const y = this.id('maxpool');
    this.nodes.push(makeNode('MaxPool', [x.name], [y], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad] }));
    return { name: y, shape: [N, C, Math.floor((H + 2 * pad - k) / stride) + 1, Math.floor((W + 2 * pad - k) / stride) + 1] };
  }

  globalAvgPool(x: V): V {
    const y = this.id('gap');
    this.nodes.push(makeNode('GlobalAveragePool', [x.name], [y]));
    return { name: y, shape: [x.shape[0], x.shape[1], 1, 1] };
  }

  flatten(x: V): V {
    const y = this.id('flat');
    this.nodes.push(makeNode('Flatten', [x.name], [y], { axis: 1 }));
    return { name: y, shape: [x.shape[0], x.shape.slice(1).reduce((a, b) => a * b, 1)] };
  }

  gemm(x: V, out: number, act?: Act): V {
    const K = x.shape[1];
    const w = this.init(this.uniform(out * K, K, act ? 2 : 1), [out, K], 'fc');
    const b = this.init(new Float32Array(out), [out], 'fcb');
    const y = this.id('gemm');
    this.nodes.push(makeNode('Gemm', [x.name, w, b], [y], { transB: 1 }));
    return this.act({ name: y, shape: [x.shape[0], out] }, act);
  }

  /** The model with input `x` of the given shape (batch symbolic 'N') and output `y`. */
  model(input: V, output: V, name: string): Uint8Array {
    return encodeModel(makeModel({
      name,
      node: this.nodes,
      initializer: this.inits,
      input: [makeValueInfo(input.name, DataType.FLOAT, ['N', ...input.shape.slice(1)])],
      output: [makeValueInfo(output.name, DataType.FLOAT, ['N', ...output.shape.slice(1)])],
    }, 13, 'edge-agent scripts/zoo'));
  }
}

/** Image-like calibration and benchmark inputs: smooth per-channel fields plus noise, about N(0, 1). */
export function imageLikeInput(shape: number[], seed: number): Float32Array {
  const rand = mulberry32(seed);
  const [N, C, H, W] = shape;
  const out = new Float32Array(N * C * H * W);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const fx = 1 + rand() * 6, fy = 1 + rand() * 6, ph = rand() * 6.28, base = rand() * 2 - 1;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const v = base + Math.sin((fx * x) / W * 6.28 + ph) * Math.cos((fy * y) / H * 6.28) + (rand() - 0.5) * 0.6;
          out[((n * C + c) * H + y) * W + x] = v;
        }
      }
    }
  }
  return out;
}
