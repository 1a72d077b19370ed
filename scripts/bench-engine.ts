// The native int8 engine against ONNX Runtime on the same int8 models, side by side in one
// run: batch-1 latency (p50, p99) through each backend's run(), plus the engine's libuv-worker
// and synchronous calls. Calls interleave one by one so machine noise hits every backend alike.
//   npm run bench:engine [-- --runs 3000 --ort-threads 1 --blocks --profile]
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { packageRoot } from '../agent/native.js';
import { NativeBackend } from '../agent/runtime/native/index.js';
import { QdqGraph, randomInput } from '../test/helpers/engine-graphs.js';

const arg = (name: string, d: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const RUNS = arg('runs', 2000);
const ORT_THREADS = arg('ort-threads', 1);

interface Subject { name: string; bytes: Uint8Array; inputShape: number[]; input: Float32Array }

function subjects(): Subject[] {
  const out: Subject[] = [];
  const digits = path.join(packageRoot, 'models/digits-int8/model.onnx');
  if (existsSync(digits)) {
    const x = new Float32Array(784);
    for (let i = 0; i < 784; i++) x[i] = ((i * 37) % 255) / 255;
    out.push({ name: 'digits-int8 (models/)', bytes: readFileSync(digits), inputShape: [1, 1, 28, 28], input: x });
  } else {
    console.log('models/digits-int8/model.onnx is missing: run scripts/train-digits.ts first');
  }
  // A larger generated QDQ CNN (3x32x32, up to 32 channels) to show where the time goes.
  const g = new QdqGraph(7);
  let y = g.input('x', [1, 3, 32, 32], 0.02, 128);
  y = g.conv(y, 16, 3, { pad: 1, act: 'relu', perChannel: true });
  y = g.conv(y, 16, 3, { pad: 1, stride: 2, group: 16, act: 'relu6', perChannel: true });
  y = g.conv(y, 32, 1, { act: 'relu', perChannel: true });
  y = g.maxpool(y, 2, 2);
  y = g.conv(y, 32, 3, { pad: 1, act: 'relu', perChannel: true });
  y = g.globalAvgPool(y);
  y = g.gemm(g.flatten(y), 10, { perChannel: true });
  out.push({ name: 'generated QDQ CNN 3x32x32', bytes: g.model('x', ['N', 3, 32, 32], y), inputShape: [1, 3, 32, 32], input: randomInput(g.rand, [1, 3, 32, 32], 0.02, 128) });
  return out;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const us = (ms: number): string => `${(ms * 1000).toFixed(1)} us`.padStart(10);

async function bench(s: Subject): Promise<void> {
  const session = await ort.InferenceSession.create(s.bytes, { intraOpNumThreads: ORT_THREADS, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const native = NativeBackend.load(s.bytes, { name: s.name, threads: 1 });
  const inName = session.inputNames[0];
  const feeds = { [inName]: new ort.Tensor('float32', s.input, s.inputShape) };
  const tensors = { [inName]: { dtype: 'float32' as const, shape: s.inputShape, data: s.input } };
  const times: Record<'ort' | 'native' | 'nativeWorker' | 'nativeSync', number[]> = { ort: [], native: [], nativeWorker: [], nativeSync: [] };
  const step = {
    ort: async () => { await session.run(feeds); },
    native: async () => { await native.run(tensors); },
    nativeWorker: async () => { await native.runOnWorker([s.input]); },
    nativeSync: async () => { native.runSync([s.input]); },
  };
  for (const k of Object.keys(step) as (keyof typeof step)[]) for (let i = 0; i < 200; i++) await step[k](); // warm-up
  // Two orderings, because the machine this runs on is usually shared: 'interleaved' (call by
  // call, rotating, so load from other processes hits every backend alike) and 'blocks' (200
  // calls of one backend at a time, so each keeps its caches warm). Both are reported.
  const keys = Object.keys(step) as (keyof typeof step)[];
  const ORDER = process.argv.includes('--blocks') ? 'blocks' : 'interleaved';
  if (ORDER === 'interleaved') {
    for (let i = 0; i < RUNS; i++) {
      for (let j = 0; j < keys.length; j++) {
        const k = keys[(i + j) % keys.length];
        const t0 = performance.now();
        await step[k]();
        times[k].push(performance.now() - t0);
      }
    }
  } else {
    for (let done = 0; done < RUNS; done += 200) {
      for (const k of keys) {
        for (let i = 0; i < 200; i++) {
          const t0 = performance.now();
          await step[k]();
          times[k].push(performance.now() - t0);
        }
      }
    }
  }
  const ortP50 = pct(times.ort, 50);
  const d = native.describe();
  console.log(`\n${s.name}: ${RUNS} runs each at batch 1 (${ORDER}), ORT intra-op threads ${ORT_THREADS}, engine threads 1, kernels ${d.kernelVariant}, ` +
    `${d.steps} engine steps from ${d.onnxNodes} ONNX nodes, arena ${d.arenaBytes} bytes`);
  console.log(`  ${'backend'.padEnd(28)}${'p50'.padStart(10)}${'p99'.padStart(10)}   p50 / ORT p50`);
  const line = (label: string, xs: number[]): void =>
    console.log(`  ${label.padEnd(28)}${us(pct(xs, 50))}${us(pct(xs, 99))}   ${(pct(xs, 50) / ortP50).toFixed(3)}`);
  line('ort int8 (session.run)', times.ort);
  line(`native int8 (Backend.run, ${d.runMode})`, times.native);
  line('native int8 (libuv worker)', times.nativeWorker);
  line('native int8 (sync call)', times.nativeSync);
  const ratio = pct(times.native, 50) / ortP50;
  console.log(`  target native p50 <= 0.5 x ORT p50 (Backend.run, warm-up ${d.warmupUs} us -> ${d.runMode}): ${ratio <= 0.5 ? 'met' : 'NOT met'} (${ratio.toFixed(3)})`);
  if (process.argv.includes('--profile')) {
    const steps = (native as unknown as { live(): { profile(i: Float32Array[], n: number): { step: string; ns: number }[] } }).live().profile([s.input], 2000);
    for (const p of steps) console.log(`    ${p.step.padEnd(16)}${(p.ns / 1000).toFixed(2).padStart(8)} us (thread CPU time)`);
  }
  await native.dispose();
  await session.release();
}

for (const s of subjects()) await bench(s);
