// New versions of the sample digits package for rollout tests: a good one, one that outputs
// NaN, one that is ten times slower, one that answers class CONSTANT_CLASS whatever the input,
// one that names digits 0-4 one too high (4 as 0). Same inputs and outputs as the original; real ONNX.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeModel, encodeModel, makeNode, makeTensor, type ModelProto } from '../../agent/onnx/model.js';
import { copyPackage, FP32, readManifest, replaceFile, writeManifest } from './model-packages.js';

export type Variant = 'good' | 'nan' | 'slow' | 'constant' | 'rotated';

/** The class the 'constant' variant always answers. */
export const CONSTANT_CLASS = 1;
/** What the 'rotated' variant answers for a digit the original answers as `c`. */
export const rotatedClass = (c: number): number => (c < 5 ? (c + 1) % 5 : c);

/** Renames the graph output "logits" to "logits_raw" and lets `extra` produce "logits" from it. */
function rewire(model: ModelProto, extra: (raw: string) => { nodes: ReturnType<typeof makeNode>[]; inits: ReturnType<typeof makeTensor>[] }): void {
  const g = model.graph!;
  for (const n of g.node!) n.output = n.output!.map((o) => (o === 'logits' ? 'logits_raw' : o));
  const { nodes, inits } = extra('logits_raw');
  g.node!.push(...nodes);
  g.initializer!.push(...inits);
}

function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 0.02;
  }
  return out;
}

export function variantPackage(variant: Variant, version: string, into?: string): string {
  const dir = copyPackage(FP32, into);
  const model = decodeModel(readFileSync(path.join(dir, 'model.onnx')));
  if (variant === 'nan') {
    rewire(model, (raw) => ({
      nodes: [makeNode('Add', [raw, 'nan_const'], ['logits'])],
      inits: [makeTensor('nan_const', [1], new Float32Array([NaN]))],
    }));
  } else if (variant === 'constant') {
    // The original's logits times 0, plus a bias on one class: always CONSTANT_CLASS, from the input's graph.
    const bias = new Float32Array(10);
    bias[CONSTANT_CLASS] = 10;
    rewire(model, (raw) => ({
      nodes: [makeNode('Mul', [raw, 'const_zero'], ['const_nothing']), makeNode('Add', ['const_nothing', 'const_bias'], ['logits'])],
      inits: [makeTensor('const_zero', [1], new Float32Array([0])), makeTensor('const_bias', [1, 10], bias)],
    }));
  } else if (variant === 'rotated') {
    // The logits through a permutation matrix: class c's score moves to rotatedClass(c).
    const perm = new Float32Array(100);
    for (let c = 0; c < 10; c++) perm[c * 10 + rotatedClass(c)] = 1;
    rewire(model, (raw) => ({
      nodes: [makeNode('MatMul', [raw, 'rot_perm'], ['logits'])],
      inits: [makeTensor('rot_perm', [10, 10], perm)],
    }));
  } else if (variant === 'slow') {
    // Work that depends on the input (so it cannot be folded away) and contributes 0 to the
    // answer: a chain of 2048-wide layers sharing one weight, about 200 M multiply-adds. (At
    // 12 layers, 50 M, an AVX-512 CPU ran it only 3x slower than the original, on the edge of
    // the probation's 3x latency rule: rollout-device failed there now and then.)
    const width = 2048;
    const layers = 48;
    const chain = Array.from({ length: layers }, (_, i) => makeNode('MatMul', [i === 0 ? 'slow_h0' : `slow_h${i}`, 'slow_w'], [`slow_h${i + 1}`]));
    rewire(model, (raw) => ({
      nodes: [
        makeNode('Flatten', ['input'], ['slow_flat'], { axis: 1 }),
        makeNode('MatMul', ['slow_flat', 'slow_w0'], ['slow_h0']),
        ...chain,
        makeNode('ReduceSum', [`slow_h${layers}`], ['slow_sum'], { keepdims: 1 }),
        makeNode('Mul', ['slow_sum', 'slow_zero'], ['slow_nothing']),
        makeNode('Add', [raw, 'slow_nothing'], ['logits']),
      ],
      inits: [
        makeTensor('slow_w0', [784, width], rand(784 * width, 1)),
        makeTensor('slow_w', [width, width], rand(width * width, 2)),
        makeTensor('slow_zero', [1], new Float32Array([0])),
      ],
    }));
  }
  replaceFile(dir, 'model.onnx', encodeModel(model));
  const m = readManifest(dir);
  m.version = version;
  delete m.signature;
  writeManifest(dir, m);
  return dir;
}
