// Issue 18: the native engine's AVX2 kernels (what x86 CPUs without VNNI, e.g. AMD Zen 3, run)
// with 8-bit weights (vpmaddwd on widened weights) and with 7-bit weights (`edge-model quantize
// --weight-bits 7`: vpmaddubsw, exact because u8 x s7 pairs cannot saturate), beside ONNX
// Runtime int8 and fp32, all at 1 thread, side by side in one run (subjects take turns in
// blocks). Also the quality cost of 7 bits: SQNR of each int8 model against fp32.
//   npm run bench:avx2 [-- --runs 40 --block 10 --only mobilenet-v2]
// ONNX Runtime picks its own kernels from the CPU: on a machine with VNNI its int8 numbers are
// VNNI ones, not what it would do on an AVX2-only CPU (the output says which).
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { kernelsInfo, setKernelVariant } from '../agent/kernels/index.js';
import { decodeModel } from '../agent/onnx/model.js';
import { NativeBackend } from '../agent/runtime/native/index.js';
import { writeNpy } from '../agent/tensor/npy.js';
import { quantizeFile } from '../tools/compress/quantize.js';
import { ZOO, type ZooEntry } from './zoo/index.js';

const arg = (name: string, d: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const RUNS = arg('runs', 40);
const BLOCK = arg('block', 10);
const CALIBRATION = arg('calib', 8);
const QUALITY_INPUTS = 4;
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1].split(',') : ['mobilenet-v2', 'resnet18'];

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (v: number): string => `${v.toFixed(2)} ms`.padStart(10);

/** Signal-to-quantization-noise ratio of `q` against the reference, in dB. */
function sqnr(ref: Float32Array[], q: Float32Array[]): number {
  let s = 0, e = 0;
  ref.forEach((r, j) => { for (let i = 0; i < r.length; i++) { s += r[i] * r[i]; e += (r[i] - q[j][i]) ** 2; } });
  return 10 * Math.log10(s / Math.max(e, 1e-30));
}

/** Weights of the quantized model outside [-64, 63] (int8 initializers named *_q). */
function wideWeights(model: Uint8Array): { tensors: number; wide: number } {
  let tensors = 0, wide = 0;
  for (const t of decodeModel(model).graph?.initializer ?? []) {
    if (t.dataType !== 3 || !t.rawData) continue; // INT8
    tensors++;
    const v = new Int8Array(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    if (v.some((x) => x < -64 || x > 63)) wide++;
  }
  return { tensors, wide };
}

type Run = (input: Float32Array) => Promise<Float32Array>;

async function ortRun(bytes: Uint8Array, shape: number[]): Promise<{ run: Run; close: () => Promise<void> }> {
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  const out = session.outputNames[0];
  return {
    run: async (x) => (await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, shape) }))[out].data as Float32Array,
    close: () => session.release(),
  };
}

function nativeRun(bytes: Uint8Array, name: string, shape: number[]): { run: Run; close: () => Promise<void> } {
  const b = NativeBackend.load(bytes, { threads: 1, name });
  const inName = b.inputs[0].name, out = b.outputs[0].name;
  return { run: async (x) => (await b.run({ [inName]: { dtype: 'float32', shape, data: x } }))[out].data as Float32Array, close: () => b.dispose() };
}

async function bench(z: ZooEntry): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `avx2-${z.name}-`));
  try {
    const fp32 = z.build();
    const calib = join(dir, 'calib');
    mkdirSync(calib);
    for (let i = 0; i < CALIBRATION; i++) writeNpy(join(calib, `s${i}.npy`), { dtype: 'float32', shape: z.inputShape, data: z.calibration(i) });
    writeFileSync(join(dir, 'fp32.onnx'), fp32);
    const models: Record<'8' | '7', Uint8Array> = { '8': new Uint8Array(), '7': new Uint8Array() };
    for (const bits of [8, 7] as const) {
      await quantizeFile(join(dir, 'fp32.onnx'), join(dir, `q${bits}.onnx`), { calib, perChannel: true, method: 'minmax', format: 'qdq', weightBits: bits });
      models[bits] = readFileSync(join(dir, `q${bits}.onnx`));
    }
    const ww = wideWeights(models['7']);
    setKernelVariant('avx2'); // for the weights packed from here on
    const subjects: { label: string; r: { run: Run; close: () => Promise<void> } }[] = [
      { label: 'native avx2, 8-bit weights', r: nativeRun(models['8'], `${z.name}-q8`, z.inputShape) },
      { label: 'native avx2, 7-bit weights', r: nativeRun(models['7'], `${z.name}-q7`, z.inputShape) },
      { label: 'ORT int8, 8-bit weights', r: await ortRun(models['8'], z.inputShape) },
      { label: 'ORT int8, 7-bit weights', r: await ortRun(models['7'], z.inputShape) },
      { label: 'ORT fp32', r: await ortRun(fp32, z.inputShape) },
    ];
    const inputs = Array.from({ length: QUALITY_INPUTS }, (_, i) => z.calibration(CALIBRATION + 1 + i)); // not calibration samples
    const outs = new Map<string, Float32Array[]>();
    for (const s of subjects) {
      const o: Float32Array[] = [];
      for (const x of inputs) o.push(Float32Array.from(await s.r.run(x)));
      outs.set(s.label, o);
    }
    const input = inputs[0];
    const times = subjects.map(() => [] as number[]), cpu = subjects.map(() => [] as number[]);
    for (let round = 0; round * BLOCK < RUNS; round++) {
      for (let j = 0; j < subjects.length; j++) {
        const k = (round + j) % subjects.length;
        await subjects[k].r.run(input);
        for (let i = 0; i < BLOCK; i++) {
          const c0 = process.cpuUsage(), t0 = performance.now();
          await subjects[k].r.run(input);
          times[k].push(performance.now() - t0);
          const c = process.cpuUsage(c0);
          cpu[k].push((c.user + c.system) / 1000);
        }
      }
    }
    console.log(`\n${z.name} ${z.inputShape.join('x')}, 1 thread, ${times[0].length} runs each in blocks of ${BLOCK} rotating; ` +
      `7-bit model: ${ww.tensors - ww.wide}/${ww.tensors} int8 weight tensors within [-64, 63] (the rest: depthwise, kept 8-bit)`);
    console.log(`  ${'subject'.padEnd(30)}${'p50'.padStart(10)}${'min'.padStart(10)}${'cpu p50'.padStart(10)}  SQNR vs fp32`);
    const ref = outs.get('ORT fp32')!;
    subjects.forEach((s, i) => console.log(`  ${s.label.padEnd(30)}${ms(pct(times[i], 50))}${ms(pct(times[i], 0))}${ms(pct(cpu[i], 50))}  ` +
      (s.label === 'ORT fp32' ? '' : `${sqnr(ref, outs.get(s.label)!).toFixed(1)} dB`)));
    const c = (i: number): number => pct(cpu[i], 50);
    console.log(`  cpu p50 ratios: native 7-bit / 8-bit ${(c(1) / c(0)).toFixed(3)}; native / ORT int8: 8-bit ${(c(0) / c(2)).toFixed(3)}, ` +
      `7-bit ${(c(1) / c(2)).toFixed(3)}; native 7-bit / ORT fp32 ${(c(1) / c(4)).toFixed(3)}`);
    for (const s of subjects) await s.r.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const info = kernelsInfo();
const vnni = /vnni/.test(info.cpu);
console.log(`bench:avx2: native engine forced to its avx2 kernels vs ONNX Runtime ${ort.env.versions.common}, 1 thread; ` +
  `cpu features: ${info.cpu}; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(vnni
  ? 'note: this CPU has VNNI, which ONNX Runtime uses for its int8 (vpdpbusd): its int8 times here are VNNI times, faster than it would be on an AVX2-only CPU such as AMD Zen 3'
  : 'note: no VNNI on this CPU: ONNX Runtime int8 runs its AVX2 vpmaddubsw kernels too');
for (const z of ZOO) if (only.includes(z.name)) await bench(z);
