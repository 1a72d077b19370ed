// The zoo models (scripts/zoo/) on the native int8 engine and on ONNX Runtime, side by side in
// one run: each fp32 model is quantized as `edge-model quantize` does it (static, per-channel,
// QDQ, calibrated on generated inputs), then batch-1 p50 latency of native int8, ORT int8 and
// ORT fp32 at 1 thread and at N threads (engine threads / ORT intraOpNumThreads), the ratios the
// targets name, two-thread scaling, the share of this CPU's measured int8 peak rate reached (the
// model's conv and GEMM multiply-accumulates per p50 run), and int8 SQNR against fp32. Subjects take turns in short
// blocks so load from other processes hits every subject alike. A model the engine takes only in
// part runs on the partitioned backend (the share of nodes native and the operators sent to ONNX
// Runtime are printed); one it refuses is skipped with the reason.
//   npm run bench:zoo [-- --runs 40 --block 10 --threads 2 --only mobilenet-v2 --profile --scaling]
// --scaling adds, per model, the steps that lose most at N threads against 1/N of their 1-thread
// wall time (the engine's step profile with EDGE_PROFILE_CLOCK=wall).
// --profile adds the engine's per-step profile (thread CPU time, by layer kind, and the slowest
// layers with their shapes) beside ONNX Runtime's per-node profile (its session profiling
// option; wall time per node, so it grows with the machine's load where thread CPU time does not).
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { kernelAddon } from '../agent/kernels/addon.js';
import { kernelsInfo } from '../agent/kernels/index.js';
import { decodeModel } from '../agent/onnx/model.js';
import { compileModel } from '../agent/runtime/native/compile/index.js';
import { NativeBackend } from '../agent/runtime/native/index.js';
import { describePartition, PartitionedBackend } from '../agent/runtime/partition/index.js';
import { writeNpy } from '../agent/tensor/npy.js';
import { quantizeFile } from '../tools/compress/quantize.js';
import { ZOO, type ZooEntry } from './zoo/index.js';

const arg = (name: string, d: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const RUNS = arg('runs', 40);
const BLOCK = arg('block', 10);
const N = arg('threads', os.availableParallelism());
const CALIBRATION = arg('calib', 8);
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1].split(',') : undefined;
const PROFILE = process.argv.includes('--profile');
const SCALING = process.argv.includes('--scaling');

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (v: number): string => `${v.toFixed(2)} ms`.padStart(10);

/** Signal-to-quantization-noise ratio of `q` against the reference, in dB. */
function sqnr(ref: Float32Array, q: Float32Array): number {
  let s = 0, e = 0;
  for (let i = 0; i < ref.length; i++) { s += ref[i] * ref[i]; e += (ref[i] - q[i]) ** 2; }
  return 10 * Math.log10(s / Math.max(e, 1e-30));
}

async function quantize(z: ZooEntry, dir: string): Promise<{ fp32: Uint8Array; int8: Uint8Array }> {
  const fp32 = z.build();
  const calib = join(dir, 'calib');
  mkdirSync(calib);
  for (let i = 0; i < CALIBRATION; i++) {
    writeNpy(join(calib, `sample-${i}.npy`), { dtype: 'float32', shape: z.inputShape, data: z.calibration(i) });
  }
  writeFileSync(join(dir, 'fp32.onnx'), fp32);
  await quantizeFile(join(dir, 'fp32.onnx'), join(dir, 'int8.onnx'), { calib, perChannel: true, method: 'minmax', format: 'qdq' });
  return { fp32, int8: readFileSync(join(dir, 'int8.onnx')) };
}

type Run = () => Promise<Float32Array>;

async function ortSubject(bytes: Uint8Array, threads: number, input: Float32Array, shape: number[], profileDir?: string): Promise<{ run: Run; session: ort.InferenceSession }> {
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    // ONNX Runtime's pool threads otherwise spin after each run, holding a core that the next
    // subject in this process (the engine's own pool) then cannot get: its split measured 1.02x
    // at 2 threads with spinning ORT sessions open, 1.72x without.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
    ...(profileDir ? { enableProfiling: true, profileFilePrefix: join(profileDir, 'ort') } : {}),
  });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input, shape) };
  const out = session.outputNames[0];
  return { session, run: async () => (await session.run(feeds))[out].data as Float32Array };
}

/**
 * When ONNX Runtime's int8 result is well below the engine's: the same model under its basic
 * optimizations only, which compute each QDQ node as written. The gap is then its QDQ fusions
 * (on the YOLO-like model its fused QLinearSoftmax, a com.microsoft kernel, loses the DFL bins:
 * 1 dB at the softmax's output), not the quantized model.
 */
async function unfusedOrt(int8: Uint8Array, input: Float32Array, shape: number[], ref: Float32Array, native: number): Promise<string> {
  const s = await ort.InferenceSession.create(int8, { graphOptimizationLevel: 'basic' });
  try {
    const out = (await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', input, shape) }))[s.outputNames[0]].data as Float32Array;
    const q = sqnr(ref, out);
    return ` (${q.toFixed(1)} dB with its QDQ fusions off${Math.abs(q - native) <= 1 ? ': the loss is in its fused kernels' : ''})`;
  } finally {
    await s.release();
  }
}

type Native = NativeBackend | PartitionedBackend;

function nativeSubject(backend: Native, input: Float32Array, shape: number[]): Run {
  const tensors = { [backend.inputs[0].name]: { dtype: 'float32' as const, shape, data: input } };
  const out = backend.outputs[0].name;
  return async () => (await backend.run(tensors))[out].data as Float32Array;
}

/**
 * The model on the engine: whole (backend native) when it compiles, else partitioned (the
 * share of nodes native and the operators that went to ONNX Runtime are printed), else the
 * reason the engine refuses it (undefined: the model is skipped).
 */
async function openNative(z: ZooEntry, int8: Uint8Array, threads: number, say: boolean): Promise<Native | undefined> {
  try {
    const b = NativeBackend.load(int8, { threads, name: z.name });
    if (say) console.log(`  ${z.name} runs on backend native: all ${decodeModel(int8).graph!.node!.length} nodes`);
    return b;
  } catch (whole) {
    try {
      const p = await PartitionedBackend.load(int8, { threads, name: z.name });
      if (say) {
        const r = await describePartition(decodeModel(int8));
        const ortOps: Record<string, number> = {};
        for (const n of r.ortNodeReasons) ortOps[n.op] = (ortOps[n.op] ?? 0) + 1;
        console.log(`  ${z.name} runs partitioned: ${r.nativeNodes}/${r.nativeNodes + r.ortNodes} nodes native, ` +
          `${r.segments.length} segments; to ONNX Runtime: ${Object.entries(ortOps).map(([op, n]) => `${op} x${n}`).join(', ') || 'none'} ` +
          `(whole-model native refused: ${(whole as Error).message})`);
      }
      return p;
    } catch (part) {
      console.log(`\n${z.name}: the engine refuses it, skipped: ${(whole as Error).message}; partitioned: ${(part as Error).message}`);
      return undefined;
    }
  }
}

/** Multiply-accumulates of the model's convolutions and GEMMs (what the int8 peak rate is about). */
function modelMacs(int8: Uint8Array): number {
  const plan = compileModel(decodeModel(int8)).plan;
  let macs = 0;
  for (const op of plan.ops) {
    if (op.op === 'conv') {
      const x = plan.tensors[op.input].shape, y = plan.tensors[op.output].shape;
      macs += y[0] * y[1] * y[2] * y[3] * (x[3] / op.group) * op.kernel[0] * op.kernel[1];
    } else if (op.op === 'gemm') {
      const x = plan.tensors[op.input].shape, y = plan.tensors[op.output].shape;
      macs += y.reduce((a, b) => a * b, 1) * x[x.length - 1];
    }
  }
  return macs;
}

let peakGops: number | undefined;
/** This CPU's measured peak int8 rate on one thread for the active variant (GOPS, 2 per MAC). */
function peak(): number {
  peakGops ??= kernelAddon().kernelsPeak(kernelsInfo().variant, 300);
  return peakGops;
}

interface Prof { kinds: Map<string, { us: number; count: number }>; top: { label: string; us: number }[] }

function addKind(by: Map<string, { us: number; count: number }>, kind: string, us: number): void {
  const e = by.get(kind) ?? { us: 0, count: 0 };
  e.us += us; e.count++;
  by.set(kind, e);
}

/** The engine's steps (thread CPU time), labelled with the layer's shape: by kind and the slowest. */
function nativeProfile(int8: Uint8Array, backend: NativeBackend, input: Float32Array): Prof {
  const live = (backend as unknown as { live(): { profile(i: Float32Array[], n: number): { step: string; ns: number }[] } }).live();
  const plan = compileModel(decodeModel(int8)).plan;
  const kinds = new Map<string, { us: number; count: number }>();
  const top: { label: string; us: number }[] = [];
  live.profile([input], 20).forEach((p, i) => {
    const op = plan.ops[i];
    let kind = p.step.replace(/ #\d+$/, ''), label = p.step;
    if (op?.op === 'conv') {
      const x = plan.tensors[op.input].shape, y = plan.tensors[op.output].shape;
      kind = op.group > 1 && op.group === x[3] ? 'conv depthwise' : op.kernel[0] * op.kernel[1] === 1 ? 'conv 1x1' : `conv ${op.kernel.join('x')}`;
      const macs = y[1] * y[2] * y[3] * (x[3] / op.group) * op.kernel[0] * op.kernel[1];
      label = `${p.step} ${kind} ${x.slice(1).join('x')} -> ${y.slice(1).join('x')} s${op.strides[0]} (${(macs / p.ns).toFixed(0)} GMAC/s)`;
    }
    addKind(kinds, kind, p.ns / 1000);
    top.push({ label, us: p.ns / 1000 });
  });
  return { kinds, top };
}

/**
 * Where the N-thread run loses against half the 1-thread time, step by step (wall time per step,
 * EDGE_PROFILE_CLOCK=wall): the steps that lose most, with their shapes and speed-ups.
 */
function scalingProfile(int8: Uint8Array, input: Float32Array, threads: number): void {
  const before = process.env.EDGE_PROFILE_CLOCK;
  process.env.EDGE_PROFILE_CLOCK = 'wall';
  try {
    const walls = [1, threads].map((t) => {
      const b = NativeBackend.load(int8, { threads: t, name: 'zoo-scaling' });
      const live = (b as unknown as { live(): { profile(i: Float32Array[], n: number): { step: string; ns: number }[] } }).live();
      live.profile([input], 10);
      const prof = live.profile([input], 100);
      void b.dispose();
      return prof;
    });
    const labels = nativeProfile(int8, NativeBackend.load(int8, { threads: 1, name: 'zoo-labels' }), input).top.map((x) => x.label.replace(/ \(\d+ GMAC\/s\)$/, ''));
    const rows = walls[0].map((p, i) => ({ label: labels[i] ?? p.step, one: p.ns / 1000, many: walls[1][i].ns / 1000 }));
    const sum = (k: 'one' | 'many') => rows.reduce((a, r) => a + r[k], 0);
    console.log(`  scaling by step (wall time, 100 runs): steps total ${sum('one').toFixed(0)} us at 1 thread, ${sum('many').toFixed(0)} us at ${threads} ` +
      `(${(sum('one') / sum('many')).toFixed(2)}x); the steps losing most against 1/${threads} of their 1-thread time:`);
    rows.sort((a, b) => (b.many - b.one / threads) - (a.many - a.one / threads));
    for (const r of rows.slice(0, 12)) {
      console.log(`    ${r.label.padEnd(60)} ${r.one.toFixed(1).padStart(7)} us -> ${r.many.toFixed(1).padStart(7)} us  ${(r.one / r.many).toFixed(2)}x  loses ${(r.many - r.one / threads).toFixed(1)} us`);
    }
  } finally {
    if (before === undefined) delete process.env.EDGE_PROFILE_CLOCK;
    else process.env.EDGE_PROFILE_CLOCK = before;
  }
}

/** ORT's profile file (per-node kernel times, per run): by op type and the slowest nodes. */
function ortProfile(file: string, runs: number): Prof {
  const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  const kinds = new Map<string, { us: number; count: number }>();
  const nodes = new Map<string, number>();
  for (const ev of events) {
    if (ev.cat !== 'Node' || !ev.name.endsWith('_kernel_time')) continue;
    const kind = ev.args?.op_name ?? '?';
    addKind(kinds, kind, ev.dur / runs);
    const label = `${ev.name.replace(/_kernel_time$/, '')} (${kind})`;
    nodes.set(label, (nodes.get(label) ?? 0) + ev.dur / runs);
  }
  for (const e of kinds.values()) e.count = Math.round(e.count / runs);
  return { kinds, top: [...nodes].map(([label, us]) => ({ label, us })) };
}

function printProfile(title: string, p: Prof): void {
  const total = [...p.kinds.values()].reduce((s, e) => s + e.us, 0);
  console.log(`  ${title}: ${(total / 1000).toFixed(2)} ms per run`);
  for (const [k, e] of [...p.kinds.entries()].sort((a, b) => b[1].us - a[1].us).slice(0, 8)) {
    console.log(`    ${k.padEnd(24)}${String(e.count).padStart(4)} x ${(e.us / 1000).toFixed(2).padStart(7)} ms  ${((100 * e.us) / total).toFixed(1).padStart(5)}%`);
  }
  console.log('    slowest:');
  for (const e of [...p.top].sort((a, b) => b.us - a.us).slice(0, 6)) console.log(`      ${(e.us / 1000).toFixed(3).padStart(7)} ms  ${e.label}`);
}

async function bench(z: ZooEntry): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `zoo-${z.name}-`));
  try {
    const q0 = performance.now();
    const { fp32, int8 } = await quantize(z, dir);
    const quantMs = performance.now() - q0;
    const input = z.calibration(CALIBRATION + 1); // not one of the calibration samples
    const threadCounts = [...new Set([1, N])];
    const subjects: { label: string; kind: 'native' | 'ortInt8' | 'ortFp32'; threads: number; run: Run }[] = [];
    const closers: (() => Promise<void>)[] = [];
    let partitioned = false;
    for (const t of threadCounts) {
      const backend = await openNative(z, int8, t, t === threadCounts[0]);
      if (!backend) {
        for (const c of closers) await c();
        return;
      }
      closers.push(() => backend.dispose());
      partitioned = backend instanceof PartitionedBackend;
      subjects.push({ label: `${partitioned ? 'partitioned' : 'native'} int8, ${t} thread${t > 1 ? 's' : ''}`, kind: 'native', threads: t, run: nativeSubject(backend, input, z.inputShape) });
      const oi = await ortSubject(int8, t, input, z.inputShape);
      closers.push(() => oi.session.release());
      subjects.push({ label: `ORT int8, ${t} thread${t > 1 ? 's' : ''}`, kind: 'ortInt8', threads: t, run: oi.run });
      const of = await ortSubject(fp32, t, input, z.inputShape);
      closers.push(() => of.session.release());
      subjects.push({ label: `ORT fp32, ${t} thread${t > 1 ? 's' : ''}`, kind: 'ortFp32', threads: t, run: of.run });
    }
    const outputs = new Map<string, Float32Array>();
    for (const s of subjects) for (let i = 0; i < 5; i++) outputs.set(s.label, Float32Array.from(await s.run())); // warm-up
    // Blocks of BLOCK runs per subject, the order rotating each round, the first run of each
    // block not counted: ONNX Runtime's pool threads spin for a while after a run, and call by
    // call interleaving would bill that spinning (on 2 cores, a whole core) to the next subject.
    const times = subjects.map(() => [] as number[]);
    const cpu = subjects.map(() => [] as number[]);
    for (let round = 0; round * BLOCK < RUNS; round++) {
      for (let j = 0; j < subjects.length; j++) {
        const k = (round + j) % subjects.length;
        await subjects[k].run();
        for (let i = 0; i < BLOCK; i++) {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          await subjects[k].run();
          times[k].push(performance.now() - t0);
          const c = process.cpuUsage(c0);
          cpu[k].push((c.user + c.system) / 1000);
        }
      }
    }
    const p50 = (kind: string, t: number): number => pct(times[subjects.findIndex((s) => s.kind === kind && s.threads === t)], 50);
    const ref = outputs.get('ORT fp32, 1 thread')!;
    console.log(`\n${z.name} ${z.inputShape.join('x')}: ${fp32.length} bytes fp32 -> ${int8.length} bytes int8 (quantized in ${(quantMs / 1000).toFixed(1)} s, ${CALIBRATION} calibration inputs); ${times[0].length} runs each, in blocks of ${BLOCK} rotating`);
    // min beside p50: on a shared machine the fastest run is the closest to an idle machine.
    // cpu: the process's CPU time per run (all its threads, ORT's spinning included), which
    // other processes inflate less than wall time.
    console.log(`  ${'subject'.padEnd(26)}${'p50'.padStart(10)}${'p90'.padStart(10)}${'min'.padStart(10)}${'cpu p50'.padStart(10)}`);
    subjects.forEach((s, i) => console.log(`  ${s.label.padEnd(26)}${ms(pct(times[i], 50))}${ms(pct(times[i], 90))}${ms(pct(times[i], 0))}${ms(pct(cpu[i], 50))}`));
    for (const t of threadCounts) {
      const a = p50('native', t) / p50('ortInt8', t), b = p50('native', t) / p50('ortFp32', t);
      const goal = z.int8Target ?? 1;
      console.log(`  ${t} thread${t > 1 ? 's' : ' '}: native/ORT int8 ${a.toFixed(3)} (target <= ${goal.toFixed(1)}: ${a <= goal ? 'met' : 'NOT met'}), ` +
        `native/ORT fp32 ${b.toFixed(3)} (target <= 0.5: ${b <= 0.5 ? 'met' : 'NOT met'})`);
    }
    if (N > 1) {
      const scale = (kind: string): string => {
        const s = p50(kind, 1) / p50(kind, N);
        return `${s.toFixed(2)}x (efficiency ${((100 * s) / N).toFixed(0)}%)`;
      };
      console.log(`  ${N} threads vs 1: native ${scale('native')}, ORT int8 ${scale('ortInt8')}, ORT fp32 ${scale('ortFp32')}`);
    }
    if (N > 1 && !partitioned) {
      // The engine's own view, which the load does not distort: the calling thread's CPU time
      // per run (it takes part in every split step, and takes more tasks when a worker lags).
      const calling = (threads: number): number => {
        const b = NativeBackend.load(int8, { threads, name: 'zoo-split' });
        const live = (b as unknown as { live(): { profile(i: Float32Array[], n: number): { ns: number }[] } }).live();
        const ns = live.profile([input], 20).reduce((sum, p) => sum + p.ns, 0);
        void b.dispose();
        return ns / 1e6;
      };
      const one = calling(1), many = calling(N);
      console.log(`  engine work split: the calling thread spends ${many.toFixed(2)} ms per run at ${N} threads, ${one.toFixed(2)} ms at 1 ` +
        `(${(one / many).toFixed(2)}x: the ${N}-thread speed-up on an idle machine, less the hand-offs)`);
    }
    if (!partitioned && peak() > 0) {
      const gops = 2 * modelMacs(int8) / 1e9;
      console.log(`  peak: ${(gops / 2).toFixed(2)} G multiply-accumulates per run; this CPU's measured int8 peak ${peak().toFixed(0)} GOPS per thread (${kernelsInfo().variant}); ` +
        threadCounts.map((t) => { const r = gops / (p50('native', t) / 1000); return `${t} thread${t > 1 ? 's' : ''} ${r.toFixed(0)} GOPS = ${((100 * r) / (peak() * t)).toFixed(0)}% of ${t}x peak`; }).join(', '));
    }
    const label = (kind: string, t: number): string => subjects.find((s) => s.kind === kind && s.threads === t)!.label;
    const nat1 = outputs.get(label('native', 1))!;
    const natN = outputs.get(label('native', N))!;
    const same = nat1.every((v, i) => v === natN[i]);
    const ortQ = sqnr(ref, outputs.get('ORT int8, 1 thread')!), natQ = sqnr(ref, nat1);
    console.log(`  SQNR vs ORT fp32: ${partitioned ? 'partitioned' : 'native'} int8 ${natQ.toFixed(1)} dB, ORT int8 ${ortQ.toFixed(1)} dB` +
      `${natQ - ortQ > 3 ? await unfusedOrt(int8, input, z.inputShape, ref, natQ) : ''}; native ${N} threads ${same ? 'bit-identical to' : 'DIFFERS from'} 1 thread`);
    if (SCALING && N > 1 && !partitioned) scalingProfile(int8, input, N);
    if (PROFILE) {
      if (!partitioned) {
        const backend = NativeBackend.load(int8, { threads: 1, name: 'zoo-profile' });
        printProfile('native int8 steps, 1 thread (thread CPU time)', nativeProfile(int8, backend, input));
        await backend.dispose();
      }
      const pdir = join(dir, 'profile');
      mkdirSync(pdir);
      for (const [label, bytes] of [['ORT int8 nodes, 1 thread', int8], ['ORT fp32 nodes, 1 thread', fp32]] as const) {
        for (const f of readdirSync(pdir)) rmSync(join(pdir, f));
        const o = await ortSubject(bytes, 1, input, z.inputShape, pdir);
        for (let i = 0; i < 20; i++) await o.run();
        const file = o.session.endProfiling?.() as unknown as string | undefined;
        await o.session.release();
        const found = readdirSync(pdir).find((f) => f.endsWith('.json'));
        const path = found ? join(pdir, found) : file;
        if (path) printProfile(label, ortProfile(path, 20));
      }
    }
    for (const c of closers) await c();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const info = kernelsInfo();
console.log(`bench:zoo: native int8 engine vs ONNX Runtime ${ort.env.versions.common}; cpu: ${info.cpu}; ` +
  `kernel variant ${info.variant}; ${os.availableParallelism()} hardware threads; threads measured: 1 and ${N}; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
if (os.loadavg()[0] > os.availableParallelism()) {
  console.log(`note: the load (${os.loadavg()[0].toFixed(1)}) exceeds the ${os.availableParallelism()} hardware threads: wall-clock p50s and ` +
    'thread scaling then measure the scheduler as much as the code (threads that sleep between steps are favoured over ' +
    'busy ones); the cpu column, the process CPU time per run, is the steadier comparison at 1 thread');
}
for (const z of ZOO) if (!only || only.includes(z.name)) await bench(z);
