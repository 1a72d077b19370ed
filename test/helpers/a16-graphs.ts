// W8A16 graphs for the native engine's tests: uint16 activations through com.microsoft
// QuantizeLinear/DequantizeLinear (what `edge-model quantize --activation-bits 16` writes),
// int8 weights per output channel, int32 biases.
import {
  DataType, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo, type NodeProto, type TensorProto,
} from '../../agent/onnx/model.js';
import { rng } from './engine-graphs.js';

const MS = 'com.microsoft';

/** A tiny graph builder: initializers and nodes, Q/DQ of activations in com.microsoft with uint16. */
export class A16Graph {
  nodes: NodeProto[] = [];
  inits: TensorProto[] = [];
  private n = 0;
  name(p: string): string { return `${p}${this.n++}`; }
  init(data: Float32Array | Int8Array | Int32Array | Uint16Array | BigInt64Array, shape: number[]): string {
    const name = this.name('k');
    this.inits.push(makeTensor(name, shape, data));
    return name;
  }
  /** Q then DQ (uint16): the dequantized name. */
  qdq(x: string, scale: number, zp: number): string {
    const s = this.init(new Float32Array([scale]), []);
    const z = this.init(new Uint16Array([zp]), []);
    const q = this.name('q'); const d = this.name('dq');
    this.nodes.push({ ...makeNode('QuantizeLinear', [x, s, z], [q]), domain: MS });
    this.nodes.push({ ...makeNode('DequantizeLinear', [q, s, z], [d]), domain: MS });
    return d;
  }
  /** int8 weights with per-channel scales along axis 0, dequantized. */
  weights(w: Int8Array, shape: number[], scales: Float32Array): string {
    const name = this.name('w');
    this.nodes.push(makeNode('DequantizeLinear', [this.init(w, shape), this.init(scales, [scales.length])], [name], { axis: 0 }));
    return name;
  }
  bias(b: Int32Array, scales: Float32Array): string {
    const name = this.name('b');
    this.nodes.push(makeNode('DequantizeLinear', [this.init(b, [b.length]), this.init(scales, [scales.length])], [name], { axis: 0 }));
    return name;
  }
  model(inShape: number[], out: string, outShape: number[]): Uint8Array {
    const m = makeModel({
      name: 'a16', node: this.nodes, initializer: this.inits,
      input: [makeValueInfo('x', DataType.FLOAT, inShape)], output: [makeValueInfo(out, DataType.FLOAT, outShape)],
    }, 13);
    m.opsetImport!.push({ domain: MS, version: 1 });
    return encodeModel(m);
  }
}


/**
 * A small W8A16 CNN on a [1, 4, 8, 8] float input: Conv 3x3 + Relu, depthwise 3x3, the Add of
 * the two, GlobalAveragePool, Flatten and Gemm to 5 outputs (every 16-bit op family).
 */
export function smallA16Model(seed: number): Uint8Array {
  const rand = rng(seed);
  const g = new A16Graph();
  const w = (n: number) => Int8Array.from({ length: n }, () => Math.floor(rand() * 255) - 127);
  const scales = (n: number) => Float32Array.from({ length: n }, () => 0.002 + rand() * 0.01);
  const bias = (n: number, s: Float32Array) => g.bias(Int32Array.from({ length: n }, () => Math.floor((rand() - 0.5) * 1e5)), Float32Array.from(s, (v) => Math.fround(v / 4096)));
  const x = g.qdq('x', 1 / 4096, 32768);
  const s1 = scales(8);
  const c1 = g.name('c');
  g.nodes.push(makeNode('Conv', [x, g.weights(w(8 * 4 * 9), [8, 4, 3, 3], s1), bias(8, s1)], [c1], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }));
  const r1 = g.name('r');
  g.nodes.push(makeNode('Relu', [c1], [r1]));
  const y1 = g.qdq(r1, 1 / 2048, 0);
  const s2 = scales(8);
  const c2 = g.name('c');
  g.nodes.push(makeNode('Conv', [y1, g.weights(w(8 * 9), [8, 1, 3, 3], s2), g.bias(new Int32Array(8), Float32Array.from(s2, (v) => Math.fround(v / 2048)))], [c2], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 8 }));
  const y2 = g.qdq(c2, 1 / 1024, 30000);
  const sum = g.name('add');
  g.nodes.push(makeNode('Add', [y1, y2], [sum]));
  const y3 = g.qdq(sum, 1 / 1024, 30000);
  const pooled = g.name('gap');
  g.nodes.push(makeNode('GlobalAveragePool', [y3], [pooled]));
  const y4 = g.qdq(pooled, 1 / 2048, 32768);
  const flat = g.name('flat');
  g.nodes.push(makeNode('Flatten', [y4], [flat], { axis: 1 }));
  const s5 = scales(5);
  const out = g.name('gemm');
  g.nodes.push(makeNode('Gemm', [flat, g.weights(w(5 * 8), [5, 8], s5), g.bias(new Int32Array(5), Float32Array.from(s5, (v) => Math.fround(v / 2048)))], [out], { transB: 1 }));
  return g.model([1, 4, 8, 8], g.qdq(out, 1 / 512, 32768), [1, 5]);
}
