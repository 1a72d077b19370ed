// Benchmark of the int8 kernels against ONNX Runtime (MLAS) on the same machine, same data,
// one thread each, timed side by side in one run. `npm run bench:kernels [-- --json]`.
//
// Each row runs one operation both ways: ONNX Runtime runs a one-operator QLinearMatMul or
// QLinearConv model through onnxruntime-node (session.run), this project calls the addon
// synchronously with pre-packed weights and a preallocated output. Activations are uint8 and
// weights int8 (ONNX Runtime's fast u8s8 path). Times are CPU time per call, best of several
// interleaved rounds (the machine is shared; see race()).
// ratio = ONNX Runtime time / our time (> 1: we are faster).
//
// ARM notes (no board here; the NEON and dot-product kernels are verified under qemu):
//  - Cortex-A72 (Raspberry Pi 4, NEON, no dot product): the kernel's SMLAL (by element) does 4
//    16-bit MACs per instruction; the A72 issues 128-bit integer multiply-accumulates on one
//    of its two NEON pipes at 1 per cycle, so the ceiling is ~4 MACs/cycle/core = 8 int8
//    GOPS/GHz/core, ~12 GOPS per core at 1.5 GHz (Pi 4), ~48 GOPS with all four cores.
//    Expect 60-75% of that in large GEMMs (loads and widening share the pipes).
//  - Cortex-A76 (Raspberry Pi 5) and A78AE (Jetson Orin): SDOT does 16 MACs per instruction,
//    2 NEON pipes issue one each per cycle: 32 MACs/cycle/core = 64 GOPS/GHz/core, ~150 GOPS
//    per core at 2.4 GHz (Pi 5), ~600 GOPS on four cores; expect 70-85% in large GEMMs.
//  - XNNPACK's published int8 MobileNet v2 on a Pi 4 (4 cores, ARM64) is 17 ms: ~300 M MACs
//    at ~35 GOPS effective, which the A72 ceiling above allows; that is the bar for a board.
import * as ort from 'onnxruntime-node';
import { kernelAddon, type NativeHandle } from '../agent/kernels/addon.js';
import { kernelsInfo, setKernelThreads, setKernelVariant } from '../agent/kernels/index.js';
import { nchwToNhwc, qlinearConvModel, qlinearMatMulModel } from '../agent/kernels/reference-models.js';

const json = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
// --only TEXT: run only the rows whose case name contains TEXT (for quick looks at one layer).
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const addon = kernelAddon();
setKernelThreads(1);
const info = kernelsInfo();
const best = info.variant;

let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const u8 = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
const s8 = (n: number) => Int8Array.from({ length: n }, () => Math.floor(rnd() * 256) - 128);
const f32 = Math.fround;

interface Row {
  kind: 'gemm' | 'conv';
  name: string;
  shape: string;
  variant: string;
  ops: number;
  us: number;
  gops: number;
  ortUs: number;
  ortGops: number;
  ratio: number;
  peakFraction: number;
}

/**
 * Per-call microseconds of the two contenders in interleaved rounds, measured as this
 * process's CPU time (user + system) per call, best round of each. The machine is shared
 * with other jobs: wall-clock time counts the time other processes hold the core, CPU time
 * does not. Both sides run on this thread (ONNX Runtime with one intra-op thread), so their
 * CPU time is the work done. Single calls shorter than the clock's resolution are batched.
 */
async function race(ours: () => void, theirs: () => Promise<void>, budgetMs: number): Promise<[number, number]> {
  for (let i = 0; i < 3; i++) { ours(); await theirs(); }
  const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
  let c0 = cpu();
  await theirs();
  const one = Math.max((cpu() - c0) / 1e3, 0.002);
  const rounds = quick ? 3 : 7;
  const reps = Math.max(3, Math.min(20000, Math.round(budgetMs / rounds / 2 / one)));
  let a = Infinity, b = Infinity;
  for (let round = 0; round < rounds; round++) {
    c0 = cpu();
    for (let i = 0; i < reps; i++) ours();
    a = Math.min(a, (cpu() - c0) / reps);
    c0 = cpu();
    for (let i = 0; i < reps; i++) await theirs();
    b = Math.min(b, (cpu() - c0) / reps);
  }
  return [a, b];
}

const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' };
const peaks = new Map<string, number>();
const peak = (v: string) => {
  if (!peaks.has(v)) peaks.set(v, addon.kernelsPeak(v, 300));
  return peaks.get(v)!;
};

async function gemmRow(name: string, M: number, K: number, N: number, variant = best): Promise<Row | undefined> {
  if (only && !name.includes(only)) return undefined;
  const a = u8(M * K), b = s8(K * N);
  const aScale = 0.02, bScale = 0.004, yScale = 0.5, aZeroPoint = 128, yZeroPoint = 120;
  const session = await ort.InferenceSession.create(
    qlinearMatMulModel({ M, K, N, aScale, aZeroPoint, b, bScale, bZeroPoint: 0, yScale, yZeroPoint }), sessionOptions);
  const feeds = { a: new ort.Tensor('uint8', a, [M, K]) };
  setKernelVariant(variant);
  const packed: NativeHandle = addon.kernelsPackGemm(b, K, N, false, null);
  const out = new Uint8Array(M * N);
  const scales = new Float32Array([f32(f32(aScale * bScale) / yScale)]);
  const ours = () => { addon.kernelsGemm(packed, a, M, aZeroPoint, null, out, scales, yZeroPoint, 0, 255, false); };
  const theirs = async () => { await session.run(feeds); };
  const [us, ortUs] = await race(ours, theirs, quick ? 100 : 400);
  const check = (await session.run(feeds)).y.data as Uint8Array;
  ours();
  let worst = 0;
  for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - check[i]));
  if (worst > 1) throw new Error(`${name}: output differs from ONNX Runtime by ${worst}`);
  await session.release();
  setKernelVariant(best);
  const ops = 2 * M * K * N;
  return row('gemm', name, `M=${M} K=${K} N=${N}`, variant, ops, us, ortUs);
}

async function convRow(name: string, C: number, H: number, W: number, OC: number, k: number, stride: number, groups: number): Promise<Row | undefined> {
  if (only && !name.includes(only)) return undefined;
  const pad = (k - 1) >> 1;
  const x = u8(C * H * W), w = s8(OC * (C / groups) * k * k);
  const xScale = 0.02, wScale = 0.004, yScale = 0.3, xZeroPoint = 128, yZeroPoint = 100;
  const bias = Int32Array.from({ length: OC }, () => Math.floor(rnd() * 2000) - 1000);
  const g = { kernel: [k, k] as [number, number], strides: [stride, stride] as [number, number], pads: [pad, pad, pad, pad] as [number, number, number, number], dilations: [1, 1] as [number, number] };
  const session = await ort.InferenceSession.create(qlinearConvModel({
    C, H, W, OC, ...g, groups, xScale, xZeroPoint, w, wScales: new Float32Array([wScale]), wZeroPoint: 0, yScale, yZeroPoint, bias,
  }), sessionOptions);
  const feeds = { x: new ort.Tensor('uint8', x, [1, C, H, W]) };
  const shape = Int32Array.from([1, H, W, C, OC, k, k, stride, stride, pad, pad, pad, pad, 1, 1, groups]);
  const packed = addon.kernelsPackConv(w, shape, null);
  const OH = Math.floor((H + 2 * pad - k) / stride) + 1, OW = Math.floor((W + 2 * pad - k) / stride) + 1;
  const xh = nchwToNhwc(x, C, H, W), out = new Uint8Array(OH * OW * OC);
  const scales = new Float32Array([f32(f32(xScale * wScale) / yScale)]);
  const ours = () => { addon.kernelsConv(packed, xh, xZeroPoint, bias, out, scales, yZeroPoint, 0, 255, false); };
  const theirs = async () => { await session.run(feeds); };
  const [us, ortUs] = await race(ours, theirs, quick ? 100 : 400);
  await session.release();
  const ops = 2 * OH * OW * OC * (C / groups) * k * k;
  return row('conv', name, `${H}x${W}x${C}->${OC} k${k} s${stride}${groups > 1 ? ` g${groups}` : ''}`, best, ops, us, ortUs);
}

function row(kind: Row['kind'], name: string, shape: string, variant: string, ops: number, us: number, ortUs: number): Row {
  const gops = ops / us / 1e3, ortGops = ops / ortUs / 1e3;
  const p = peak(variant);
  return { kind, name, shape, variant, ops, us: +us.toFixed(2), gops: +gops.toFixed(1), ortUs: +ortUs.toFixed(2), ortGops: +ortGops.toFixed(1),
    ratio: +(ortUs / us).toFixed(2), peakFraction: p > 0 ? +(gops / p).toFixed(3) : 0 };
}

const rows: Row[] = [];
const emit = (r: Row | undefined) => {
  if (!r) return;
  rows.push(r);
  if (!json) {
    console.log(`${r.name.padEnd(26)} ${r.shape.padEnd(28)} ${r.variant.padEnd(10)} ${r.us.toFixed(1).padStart(9)} ${r.gops.toFixed(1).padStart(7)} ` +
      `${r.ortUs.toFixed(1).padStart(9)} ${r.ortGops.toFixed(1).padStart(7)} ${(r.ratio.toFixed(2) + 'x').padStart(7)} ${(r.peakFraction * 100).toFixed(0).padStart(5)}%`);
  }
};

if (!json) {
  console.log(`edge-agent int8 kernels vs ONNX Runtime ${ort.env.versions.common} (1 thread each); cpu: ${info.cpu}; best variant: ${best}`);
  console.log(`${'case'.padEnd(26)} ${'shape'.padEnd(28)} ${'variant'.padEnd(10)} ${'us'.padStart(9)} ${'GOPS'.padStart(7)} ${'ORT us'.padStart(9)} ${'ORT GOPS'.padStart(7)} ${'ratio'.padStart(7)} ${'%peak'.padStart(6)}`);
}
// Headline shapes, on every variant this CPU runs.
// (The scalar variant is the oracle, not a contender: it is left out.)
for (const v of info.supported.filter((s) => s !== 'scalar')) {
  emit(await gemmRow('large', 256, 1024, 1024, v));
  emit(await gemmRow('matrix-vector', 1, 1024, 1024, v));
}
// M = 1 shapes.
emit(await gemmRow('mv: MobileNet classifier', 1, 1280, 1000));
emit(await gemmRow('mv: digits dense', 1, 784, 10));
emit(await gemmRow('mv: 512x512', 1, 512, 512));
emit(await gemmRow('mv: 256x64', 1, 256, 64));
// The sample model (models/digits-int8): its convolutions.
emit(await convRow('digits conv1', 1, 28, 28, 8, 3, 1, 1));
emit(await convRow('digits conv2', 8, 14, 14, 16, 3, 1, 1));
// MobileNet v2 at 224x224: 1x1 convolutions as GEMMs (M = H*W).
for (const [M, K, N] of [[12544, 32, 16], [12544, 16, 96], [3136, 24, 144], [3136, 144, 24], [784, 32, 192], [784, 192, 32],
  [196, 64, 384], [196, 384, 64], [196, 96, 576], [49, 160, 960], [49, 960, 160], [49, 320, 1280]] as [number, number, number][]) {
  emit(await gemmRow('mbv2 1x1', M, K, N));
}
// MobileNet v2 at 224x224: the stem and the depthwise 3x3 layers.
emit(await convRow('mbv2 stem', 3, 224, 224, 32, 3, 2, 1));
for (const [C, H, s] of [[32, 112, 1], [96, 112, 2], [144, 56, 1], [144, 56, 2], [192, 28, 1], [192, 28, 2], [384, 14, 1],
  [576, 14, 1], [576, 14, 2], [960, 7, 1]] as [number, number, number][]) {
  emit(await convRow('mbv2 dw3x3', C, H, H, C, 3, s, C));
}

const summary = {
  variant: best, cpu: info.cpu, ort: ort.env.versions.common, peakGops: Object.fromEntries(peaks),
  targets: {
    large: rows.filter((r) => r.name === 'large' && r.variant === best).map((r) => r.ratio)[0],
    mvMin: Math.min(...rows.filter((r) => r.name.startsWith('mv') || (r.name === 'matrix-vector' && r.variant === best)).map((r) => r.ratio)),
    smallLayersMin: Math.min(...rows.filter((r) => r.name.startsWith('digits')).map((r) => r.ratio)),
  },
};
if (json) {
  console.log(JSON.stringify({ ...summary, rows }, null, 2));
} else {
  console.log(`peak (one thread, the kernel's MAC instruction in a loop): ${[...peaks].map(([v, g]) => `${v} ${g.toFixed(0)} GOPS`).join(', ')}`);
  console.log(`targets: large ${summary.targets.large}x (want >= 0.9x), M=1 worst ${summary.targets.mvMin}x (want >= 1.5x), small layers worst ${summary.targets.smallLayersMin}x (want >= 1.5x)`);
}
