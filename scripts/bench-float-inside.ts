// The ops real models need (issue 18) on the native engine, side by side in one run: each as a
// one-op QDQ model, batch-1 latency p50 of the engine with the best kernels of this CPU, of the
// engine with the scalar kernels (a child process: EDGE_KERNELS is read once per process), and
// of ONNX Runtime on the same model. Shapes follow PP-OCRv4: det's FPN upsampling (ConvTranspose
// k2 s2, Resize nearest), rec's SVTR attention (MatMul of two activations, Softmax, LayerNorm).
//   npm run bench:float-inside [-- --runs 300]
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { DataType, encodeModel, makeModel, makeNode, makeValueInfo } from '../agent/onnx/model.js';
import { NativeBackend, kernelVariant } from '../agent/runtime/native/index.js';
import { kernelsInfo } from '../agent/kernels/index.js';
import { QdqGraph, randomInput, type Q } from '../test/helpers/engine-graphs.js';

const arg = (name: string, d: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const RUNS = arg('runs', 300);
const CHILD = process.argv.includes('--child');

interface Subject { name: string; bytes: Uint8Array; inputs: [string, number[]][] }

function model(g: QdqGraph, inputs: [string, number[]][], out: Q, opset = 13): Uint8Array {
  g.nodes.push(makeNode('Identity', [out.name], ['y']));
  return encodeModel(makeModel({
    name: 'bench', node: g.nodes, initializer: g.inits,
    input: inputs.map(([n, s]) => makeValueInfo(n, DataType.FLOAT, s)),
    output: [makeValueInfo('y', DataType.FLOAT, out.shape)],
  }, opset));
}

function subjects(): Subject[] {
  const out: Subject[] = [];
  {
    const g = new QdqGraph(1);
    const x = g.input('x', [1, 96, 40, 40], 0.02, 128);
    const w = g.const(Int8Array.from({ length: 96 * 24 * 4 }, () => Math.floor(g.rand() * 127) - 63), [96, 24, 2, 2], 'w');
    g.nodes.push(makeNode('DequantizeLinear', [w, g.const(new Float32Array([0.005]), [], 's'), g.const(new Int8Array(1), [], 'z')], ['wdq']));
    g.nodes.push(makeNode('ConvTranspose', [x.name, 'wdq'], ['ct'], { kernel_shape: [2, 2], strides: [2, 2] }));
    out.push({ name: 'ConvTranspose 96->24 k2 s2, 40x40 -> 80x80', bytes: model(g, [['x', [1, 96, 40, 40]]], g.qdq('ct', 0.05, 128, [1, 24, 80, 80])), inputs: [['x', [1, 96, 40, 40]]] });
  }
  {
    const g = new QdqGraph(2);
    const a = g.input('a', [1, 8, 80, 32], 0.02, 128);
    const b = g.input('b', [1, 8, 32, 80], 0.02, 128);
    g.nodes.push(makeNode('MatMul', [a.name, b.name], ['mm']));
    out.push({ name: 'MatMul of activations 8 x [80x32] x [32x80]', bytes: model(g, [['a', [1, 8, 80, 32]], ['b', [1, 8, 32, 80]]], g.qdq('mm', 0.05, 128, [1, 8, 80, 80])), inputs: [['a', [1, 8, 80, 32]], ['b', [1, 8, 32, 80]]] });
  }
  {
    const g = new QdqGraph(3);
    const x = g.input('x', [1, 8, 80, 80], 0.05, 128);
    g.nodes.push(makeNode('Softmax', [x.name], ['sm'], { axis: -1 }));
    out.push({ name: 'Softmax 8 x 80 x 80, last axis', bytes: model(g, [['x', [1, 8, 80, 80]]], g.qdq('sm', 1 / 256, 0, [1, 8, 80, 80])), inputs: [['x', [1, 8, 80, 80]]] });
  }
  {
    const g = new QdqGraph(4);
    const x = g.input('x', [1, 80, 120], 0.05, 128);
    g.nodes.push(makeNode('LayerNormalization', [x.name, g.const(new Float32Array(120).fill(1), [120], 'g'), g.const(new Float32Array(120), [120], 'b')], ['ln'], { axis: -1 }));
    out.push({ name: 'LayerNormalization 80 x 120', bytes: model(g, [['x', [1, 80, 120]]], g.qdq('ln', 0.03, 128, [1, 80, 120]), 17), inputs: [['x', [1, 80, 120]]] });
  }
  for (const mode of ['nearest', 'linear']) {
    const g = new QdqGraph(5);
    const x = g.input('x', [1, 96, 20, 20], 0.02, 128);
    g.nodes.push(makeNode('Resize', [x.name, '', g.const(new Float32Array([1, 1, 2, 2]), [4], 's')], ['rs'],
      mode === 'nearest' ? { mode, coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' } : { mode }));
    out.push({ name: `Resize ${mode} x2, 96 x 20x20`, bytes: model(g, [['x', [1, 96, 20, 20]]], g.qdq('rs', 0.02, 128, [1, 96, 40, 40])), inputs: [['x', [1, 96, 20, 20]]] });
  }
  return out;
}

const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeNative(s: Subject): Promise<number> {
  const native = NativeBackend.load(s.bytes, { name: s.name, threads: 1 });
  const rand = new QdqGraph(9).rand;
  const data = s.inputs.map(([, shape]) => randomInput(rand, shape, 0.02, 128));
  const times: number[] = [];
  for (let i = 0; i < RUNS + 30; i++) {
    const t0 = performance.now();
    native.runSync(data);
    if (i >= 30) times.push(performance.now() - t0);
  }
  await native.dispose();
  return p50(times);
}

async function timeOrt(s: Subject): Promise<number> {
  const session = await ort.InferenceSession.create(s.bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const rand = new QdqGraph(9).rand;
  const feeds = Object.fromEntries(s.inputs.map(([n, shape]) => [n, new ort.Tensor('float32', randomInput(rand, shape, 0.02, 128), shape)]));
  const times: number[] = [];
  for (let i = 0; i < RUNS + 30; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    if (i >= 30) times.push(performance.now() - t0);
  }
  await session.release();
  return p50(times);
}

if (CHILD) {
  const out: Record<string, number> = {};
  for (const s of subjects()) out[s.name] = await timeNative(s);
  console.log(JSON.stringify(out));
} else {
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', '--runs', String(RUNS)], {
    env: { ...process.env, EDGE_KERNELS: 'scalar' }, encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`the scalar child failed: ${child.stderr}`);
  const scalar = JSON.parse(child.stdout.trim().split('\n').pop()!) as Record<string, number>;
  console.log(`cpu: ${kernelsInfo().cpu}; engine kernels ${kernelVariant()} (and scalar in a child process); 1 thread; ${RUNS} runs each, p50 at batch 1`);
  const us = (ms: number): string => `${(ms * 1000).toFixed(0)} us`.padStart(10);
  console.log(`  ${'op'.padEnd(46)}${'native'.padStart(10)}${'scalar'.padStart(10)}${'ORT'.padStart(10)}  scalar/native  ORT/native`);
  for (const s of subjects()) {
    const nat = await timeNative(s); const ortP = await timeOrt(s);
    const sc = scalar[s.name];
    console.log(`  ${s.name.padEnd(46)}${us(nat)}${us(sc)}${us(ortP)}  ${(sc / nat).toFixed(2).padStart(13)}  ${(ortP / nat).toFixed(2).padStart(10)}`);
  }
}
