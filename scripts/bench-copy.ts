// The copy family (Concat with requantization, Transpose, Slice, Max) in the native engine, run
// under each kernel variant this CPU supports, side by side in one run: the requantizing rows
// are scalar, AVX2 or NEON by variant, the moves are memcpy and tiled transposes in every
// variant. Prints the CPU's features, per-call time (best of interleaved rounds) and the ratio
// to the scalar variant. Whole engine runs: the first row is what the graph edges alone cost
// (the shared machine makes differences below ~10% noise). `npx tsx scripts/bench-copy.ts [-- --runs 200]`
import { performance } from 'node:perf_hooks';
import { DataType, decodeModel, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo, type NodeProto, type TensorProto } from '../agent/onnx/model.js';
import { kernelsInfo, setKernelVariant } from '../agent/kernels/index.js';
import { compileModel, createEngine } from '../agent/runtime/native/index.js';

const RUNS = process.argv.includes('--runs') ? Number(process.argv[process.argv.indexOf('--runs') + 1]) : 100;

function model(shape: number[], body: (x: string, q: (y: string, s: number, z: number) => string, c: (d: Float32Array | Uint8Array | BigInt64Array, s: number[]) => string, nodes: NodeProto[]) => string): Uint8Array {
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let n = 0;
  const c = (d: Float32Array | Uint8Array | BigInt64Array, s: number[]) => { const name = `c${n++}`; inits.push(makeTensor(name, s, d)); return name; };
  const qdq = (op: 'QuantizeLinear' | 'DequantizeLinear', y: string, s: number, z: number) => {
    const o = `${op}${n++}`;
    nodes.push(makeNode(op, [y, c(new Float32Array([s]), []), c(new Uint8Array([z]), [])], [o]));
    return o;
  };
  const x = qdq('DequantizeLinear', qdq('QuantizeLinear', 'x', 1 / 16, 128), 1 / 16, 128);
  const y = body(x, (v, s, z) => qdq('QuantizeLinear', v, s, z), c, nodes);
  nodes.push(makeNode('Identity', [qdq('DequantizeLinear', y, 1 / 16, 128)], ['y']));
  return encodeModel(makeModel({ name: 'bench', node: nodes, initializer: inits, input: [makeValueInfo('x', DataType.FLOAT, shape)], output: [makeValueInfo('y', DataType.FLOAT, ['N'])] }, 13));
}

const S = [1, 64, 56, 56];
const cases: { name: string; bytes: Uint8Array }[] = [
  // Every model quantizes a float input and dequantizes its output: this row is that cost alone.
  { name: 'baseline: the graph edges alone (quantize the float input, dequantize the output)', bytes: model(S, (x, q) => q(x, 1 / 16, 128)) },
  {
    name: 'Concat 2 x [64,56,56] on channels, one input requantized',
    bytes: model(S, (x, q, _c, nodes) => {
      nodes.push(makeNode('DequantizeLinear', [q(x, 1 / 8, 100), 'sb', 'zb'], ['b']));
      nodes.push(makeNode('Concat', [x, 'b'], ['cat'], { axis: 1 }));
      return q('cat', 1 / 16, 128);
    }),
  },
  { name: 'Transpose [0,3,1,2] of [64,56,56] (tiled 2-D swap)', bytes: model(S, (x, q, _c, nodes) => { nodes.push(makeNode('Transpose', [x], ['t'], { perm: [0, 3, 1, 2] })); return q('t', 1 / 16, 128); }) },
  { name: 'Slice every other row and column of [64,56,56]', bytes: model(S, (x, q, c, nodes) => { nodes.push(makeNode('Slice', [x, c(BigInt64Array.from([0n, 0n]), [2]), c(BigInt64Array.from([56n, 56n]), [2]), c(BigInt64Array.from([2n, 3n]), [2]), c(BigInt64Array.from([2n, 2n]), [2])], ['s'])); return q('s', 1 / 16, 128); }) },
  { name: 'Max of [64,56,56] with a per-row [64,56,1], both requantized', bytes: model(S, (x, q, c, nodes) => {
    nodes.push(makeNode('Slice', [x, c(BigInt64Array.from([0n]), [1]), c(BigInt64Array.from([1n]), [1]), c(BigInt64Array.from([3n]), [1])], ['col']));
    nodes.push(makeNode('DequantizeLinear', [q('col', 1 / 12, 90), 'sb', 'zb'], ['colq']));
    nodes.push(makeNode('Max', [x, 'colq'], ['m']));
    return q('m', 1 / 10, 128);
  }) },
];

const info = kernelsInfo();
console.log(`cpu features: ${(info as unknown as { cpu?: string }).cpu ?? JSON.stringify(info)}`);
console.log(`variants: ${info.supported.join(', ')}; ${RUNS} calls per variant per round, best of 5 interleaved rounds\n`);
const input = new Float32Array(S.reduce((a, b) => a * b, 1)).map((_, i) => ((i * 37) % 255 - 128) / 16);
for (const cs of cases) {
  // Scale/zero-point initializers named 'sb'/'zb' the bodies refer to.
  const m = decodeModel(cs.bytes);
  m.graph!.initializer!.push(makeTensor('sb', [], new Float32Array([1 / 8])), makeTensor('zb', [], new Uint8Array([100])));
  if (cs.name.startsWith('Max')) { m.graph!.initializer!.pop(); m.graph!.initializer!.pop(); m.graph!.initializer!.push(makeTensor('sb', [], new Float32Array([1 / 12])), makeTensor('zb', [], new Uint8Array([90]))); }
  const compiled = compileModel(m);
  const engine = createEngine(compiled.plan, compiled.weights);
  const best = new Map<string, number>();
  for (let round = 0; round < 5; round++) {
    for (const v of info.supported) {
      setKernelVariant(v);
      engine.run([input]);
      const t0 = performance.now();
      for (let i = 0; i < RUNS; i++) engine.run([input]);
      const per = (performance.now() - t0) / RUNS;
      best.set(v, Math.min(best.get(v) ?? Infinity, per));
    }
  }
  engine.dispose();
  console.log(cs.name);
  const scalar = best.get('scalar')!;
  for (const [v, ms] of best) console.log(`  ${v.padEnd(11)} ${(ms * 1000).toFixed(1).padStart(8)} us   x${(scalar / ms).toFixed(2)} vs scalar`);
}
setKernelVariant(info.variant);
