// A YOLOv8n-like detector at 320x320 in fp32 with random weights (fixed seed): the structure
// of Ultralytics' YOLOv8n (width 0.25, depth 0.33) as its ONNX export lays it out, built with
// agent/onnx/model.ts. Conv+BatchNorm is folded (a Conv with bias) and SiLU is Sigmoid*Mul,
// as in the exported graph. Backbone: Conv/C2f stages to stride 32 and SPPF (MaxPool chain +
// Concat). Neck: FPN top-down (Resize nearest x2 + Concat + C2f) and PAN bottom-up (stride-2
// Conv + Concat + C2f). Head: per level a box branch (4 x 16 DFL bins) and a class branch (80),
// concatenated, flattened over the 2100 anchors, then DFL (Reshape/Transpose/Softmax and a 1x1
// Conv with weights 0..15), dist2bbox against the anchor grid, and Sigmoid class scores:
// output0 is [1, 84, 2100] (cx, cy, w, h in pixels, then 80 class scores), like YOLOv8's.
// About 2.2 GFLOP a run, ~3.2 M parameters; the weights are meaningless, the cost is real.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sha256 } from '../../agent/models/hash.js';
import { PACKAGE_FORMAT } from '../../agent/models/package-format.js';
import { DataType, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo, type NodeProto, type TensorProto } from '../../agent/onnx/model.js';

export const YOLO_LIKE_INPUT = { name: 'images', shape: [1, 3, 320, 320] as const };
export const YOLO_LIKE_OUTPUT = { name: 'output0', shape: [1, 84, 2100] as const };

const CLASSES = 80;
const REG_MAX = 16;
const STRIDES = [8, 16, 32] as const;

/** mulberry32: a small seeded generator, so every build is byte-identical. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  #n = 0;
  readonly #rand: () => number;

  constructor(seed: number) {
    this.#rand = rng(seed);
  }

  name(prefix: string): string {
    return `${prefix}_${this.#n++}`;
  }

  /** Uniform weights with variance 1/fan_in (activations stay in range through ~60 layers). */
  weights(shape: number[], fanIn: number): Float32Array {
    const a = Math.sqrt(3 / fanIn);
    const out = new Float32Array(shape.reduce((x, y) => x * y, 1));
    for (let i = 0; i < out.length; i++) out[i] = (this.#rand() * 2 - 1) * a;
    return out;
  }

  init(prefix: string, shape: number[], data: Float32Array | BigInt64Array): string {
    const name = this.name(prefix);
    this.inits.push(makeTensor(name, shape, data));
    return name;
  }

  node(op: string, inputs: string[], attrs: Record<string, number | number[] | string> = {}, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, () => this.name(op.toLowerCase()));
    this.nodes.push(makeNode(op, inputs, outs, attrs, this.name(op)));
    return outs;
  }

  one(op: string, inputs: string[], attrs: Record<string, number | number[] | string> = {}): string {
    return this.node(op, inputs, attrs)[0]!;
  }

  /** Conv (BatchNorm folded into weight and bias) + SiLU as Sigmoid*Mul; `act` false for the head's last 1x1. */
  conv(x: string, cin: number, cout: number, k: number, stride = 1, act = true): string {
    const w = this.init('w', [cout, cin, k, k], this.weights([cout, cin, k, k], cin * k * k));
    const b = this.init('b', [cout], this.weights([cout], 100));
    const p = (k - 1) >> 1;
    const y = this.one('Conv', [x, w, b], { kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p], dilations: [1, 1], group: 1 });
    return act ? this.one('Mul', [y, this.one('Sigmoid', [y])]) : y;
  }

  /** C2f: 1x1 to 2c, Split in two, n bottlenecks chained on the second half, Concat all, 1x1 out. */
  c2f(x: string, cin: number, cout: number, n: number, shortcut: boolean): string {
    const c = cout / 2;
    const y = this.conv(x, cin, 2 * c, 1);
    const split = this.init('split', [2], BigInt64Array.from([BigInt(c), BigInt(c)]));
    const parts = [...this.node('Split', [y, split], { axis: 1 }, 2)];
    let last = parts[1]!;
    for (let i = 0; i < n; i++) {
      const h = this.conv(this.conv(last, c, c, 3), c, c, 3);
      last = shortcut ? this.one('Add', [last, h]) : h;
      parts.push(last);
    }
    return this.conv(this.one('Concat', parts, { axis: 1 }), (2 + n) * c, cout, 1);
  }

  /** SPPF: 1x1 to c/2, three chained 5x5 max pools, Concat of the four, 1x1 out. */
  sppf(x: string, cin: number, cout: number): string {
    const h = cin / 2;
    const y0 = this.conv(x, cin, h, 1);
    const pool = (v: string): string => this.one('MaxPool', [v], { kernel_shape: [5, 5], strides: [1, 1], pads: [2, 2, 2, 2] });
    const y1 = pool(y0);
    const y2 = pool(y1);
    const y3 = pool(y2);
    return this.conv(this.one('Concat', [y0, y1, y2, y3], { axis: 1 }), 4 * h, cout, 1);
  }

  upsample(x: string): string {
    const scales = this.init('scales', [4], Float32Array.from([1, 1, 2, 2]));
    return this.one('Resize', [x, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  }

  i64(prefix: string, values: number[]): string {
    return this.init(prefix, [values.length], BigInt64Array.from(values.map(BigInt)));
  }
}

/** Anchor centres (x + 0.5, y + 0.5 in grid units) and each anchor's stride, over the 3 levels. */
function anchorGrid(size: number): { points: Float32Array; strides: Float32Array; count: number } {
  const cells = STRIDES.map((s) => (size / s) ** 2);
  const count = cells.reduce((a, b) => a + b, 0);
  const points = new Float32Array(2 * count);
  const strides = new Float32Array(count);
  let at = 0;
  for (const s of STRIDES) {
    const g = size / s;
    for (let y = 0; y < g; y++) {
      for (let x = 0; x < g; x++, at++) {
        points[at] = x + 0.5;
        points[count + at] = y + 0.5;
        strides[at] = s;
      }
    }
  }
  return { points, strides, count };
}

/** The detector as ONNX bytes (opset 13); the same bytes on every call. */
export function buildYoloLike(seed = 8): Uint8Array {
  const g = new GraphBuilder(seed);
  const [, , size] = YOLO_LIKE_INPUT.shape;
  // Backbone (YOLOv8n: 16-32-64-128-256 channels, C2f repeats 1-2-2-1).
  let x = g.conv(YOLO_LIKE_INPUT.name, 3, 16, 3, 2);
  x = g.conv(x, 16, 32, 3, 2);
  x = g.c2f(x, 32, 32, 1, true);
  x = g.conv(x, 32, 64, 3, 2);
  const p3 = g.c2f(x, 64, 64, 2, true);
  x = g.conv(p3, 64, 128, 3, 2);
  const p4 = g.c2f(x, 128, 128, 2, true);
  x = g.conv(p4, 128, 256, 3, 2);
  x = g.c2f(x, 256, 256, 1, true);
  const p5 = g.sppf(x, 256, 256);
  // Neck: top-down.
  const t4 = g.c2f(g.one('Concat', [g.upsample(p5), p4], { axis: 1 }), 384, 128, 1, false);
  const n3 = g.c2f(g.one('Concat', [g.upsample(t4), p3], { axis: 1 }), 192, 64, 1, false);
  // Bottom-up.
  const n4 = g.c2f(g.one('Concat', [g.conv(n3, 64, 64, 3, 2), t4], { axis: 1 }), 192, 128, 1, false);
  const n5 = g.c2f(g.one('Concat', [g.conv(n4, 128, 128, 3, 2), p5], { axis: 1 }), 384, 256, 1, false);
  // Decoupled head per level: box (64 = 4 sides x 16 bins) and class (80) branches.
  const levels: [string, number][] = [[n3, 64], [n4, 128], [n5, 256]];
  const boxCh = Math.max(16, levels[0]![1] / 4, REG_MAX * 4);
  const clsCh = Math.max(levels[0]![1], Math.min(CLASSES, 100));
  const flat = g.i64('shape', [1, 4 * REG_MAX + CLASSES, -1]);
  const perLevel = levels.map(([f, ch]) => {
    const box = g.conv(g.conv(g.conv(f, ch, boxCh, 3), boxCh, boxCh, 3), boxCh, 4 * REG_MAX, 1, 1, false);
    const cls = g.conv(g.conv(g.conv(f, ch, clsCh, 3), clsCh, clsCh, 3), clsCh, CLASSES, 1, 1, false);
    return g.one('Reshape', [g.one('Concat', [box, cls], { axis: 1 }), flat]);
  });
  const all = g.one('Concat', perLevel, { axis: 2 });
  const [dist, logits] = g.node('Split', [all, g.i64('split', [4 * REG_MAX, CLASSES])], { axis: 1 }, 2) as [string, string];
  const { points, strides, count } = anchorGrid(size);
  // DFL: [1,64,A] -> [1,4,16,A] -> [1,16,4,A], softmax over the bins, expectation by a 1x1 conv.
  const bins = g.one('Transpose', [g.one('Reshape', [dist, g.i64('shape', [1, 4, REG_MAX, count])])], { perm: [0, 2, 1, 3] });
  const probs = g.one('Softmax', [bins], { axis: 1 });
  const dflW = g.init('dfl', [1, REG_MAX, 1, 1], Float32Array.from({ length: REG_MAX }, (_, i) => i));
  const ltrb = g.one('Reshape', [g.one('Conv', [probs, dflW], { kernel_shape: [1, 1] }), g.i64('shape', [1, 4, count])]);
  // dist2bbox: left-top and right-bottom distances around each anchor -> centre and size, in pixels.
  const [lt, rb] = g.node('Split', [ltrb, g.i64('split', [2, 2])], { axis: 1 }, 2) as [string, string];
  const anchors = g.init('anchors', [1, 2, count], points);
  const x1y1 = g.one('Sub', [anchors, lt]);
  const x2y2 = g.one('Add', [anchors, rb]);
  const half = g.init('half', [1], Float32Array.from([0.5]));
  const centre = g.one('Mul', [g.one('Add', [x1y1, x2y2]), half]);
  const wh = g.one('Sub', [x2y2, x1y1]);
  const boxes = g.one('Mul', [g.one('Concat', [centre, wh], { axis: 1 }), g.init('strides', [1, 1, count], strides)]);
  const scores = g.one('Sigmoid', [logits]);
  g.nodes.push(makeNode('Concat', [boxes, scores], [YOLO_LIKE_OUTPUT.name], { axis: 1 }, 'Concat_output0'));
  const graph = {
    name: 'yolo-like',
    node: g.nodes,
    initializer: g.inits,
    input: [makeValueInfo(YOLO_LIKE_INPUT.name, DataType.FLOAT, [...YOLO_LIKE_INPUT.shape])],
    output: [makeValueInfo(YOLO_LIKE_OUTPUT.name, DataType.FLOAT, [...YOLO_LIKE_OUTPUT.shape])],
  };
  return encodeModel(makeModel(graph, 13, 'edge-agent scripts/zoo/yolo-like.ts'));
}

/** A model package folder (model.onnx + manifest.json, unsigned) serving the detector; returns the folder. */
export function writeYoloLikePackage(dir: string, name = 'detector', version = '1.0.0'): string {
  const model = buildYoloLike();
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'model.onnx'), model);
  const manifest = {
    format: PACKAGE_FORMAT,
    name,
    version,
    task: 'object-detection',
    description: 'YOLOv8n-like detector at 320x320 with random weights (scripts/zoo/yolo-like.ts): the cost of a real one, no meaningful boxes',
    inputs: [{ name: YOLO_LIKE_INPUT.name, dtype: 'float32', shape: [...YOLO_LIKE_INPUT.shape] }],
    outputs: [{ name: YOLO_LIKE_OUTPUT.name, dtype: 'float32', shape: [...YOLO_LIKE_OUTPUT.shape] }],
    preprocessing: { layout: 'NCHW', colorSpace: 'rgb', scale: 1 / 255, mean: [0], std: [1] },
    quantization: { scheme: 'none', precision: 'float32' },
    files: { 'model.onnx': { sha256: sha256(model), bytes: model.length } },
  };
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return dir;
}
