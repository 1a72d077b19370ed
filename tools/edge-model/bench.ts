// `edge-model bench PACKAGE --backend ort|native --runs N --json`: one model on one backend,
// measured the way scripts/bench-models.ts compares them: p50/p99 latency at batch 1,
// throughput at batch 1, resident memory added by loading (and warming) the model, and
// top-1 accuracy on the held-out digits when the model is a 28x28 digit classifier.
import { Command, InvalidArgumentError, Option } from 'commander';
import { describe } from '../../agent/errors.js';
import type { Tensor } from '../../agent/runtime/backend.js';
import { heldOutDigits, DIGIT_PIXELS, type DigitSet } from './digits.js';
import { openModel } from './open-model.js';

export interface BenchOptions {
  backend: 'ort' | 'native';
  runs: number;
  threads?: number;
  /** Inferences before timing starts. */
  warmup?: number;
  /** Skip the held-out accuracy pass. */
  noAccuracy?: boolean;
}

export interface BenchResult {
  model: string;
  version: string;
  package: string;
  precision: string;
  backend: string;
  threads: number;
  runs: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Inferences per second, one at a time at batch 1. */
  throughputPerSec: number;
  /** Resident set size added by loading and warming up the model (MiB). */
  rssAddedMiB: number;
  /** Top-1 accuracy on the held-out digits (null when the model is not a digit classifier). */
  accuracy: number | null;
  accuracySamples: number;
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
const round = (v: number, d = 4): number => Math.round(v * 10 ** d) / 10 ** d;

export async function benchPackage(target: string, opts: BenchOptions): Promise<BenchResult> {
  const threads = opts.threads ?? 1;
  // Loaded before the memory baseline; without the dev dependency `mnist`, inputs are synthetic.
  let digits: DigitSet | undefined;
  try {
    digits = heldOutDigits();
  } catch {
    digits = undefined;
  }
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const m = await openModel(target, opts.backend, { threads });
  try {
    const spec = m.pkg.manifest.inputs[0]!;
    const isDigits = digits !== undefined && m.pkg.manifest.inputs.length === 1 && spec.dtype === 'float32' && spec.shape.length === 4 && spec.shape[1] === 1 && spec.shape[2] === 28 && spec.shape[3] === 28;
    const one = (i: number): Tensor => {
      if (isDigits && digits) return { dtype: 'float32', shape: [1, 1, 28, 28], data: digits.images.slice((i % digits.count) * DIGIT_PIXELS, ((i % digits.count) + 1) * DIGIT_PIXELS) };
      const shape = spec.shape.map((d) => (typeof d === 'number' ? d : 1));
      const n = shape.reduce((a, b) => a * b, 1);
      const data = spec.dtype === 'float32' ? Float32Array.from({ length: n }, (_, k) => Math.sin(i + k)) : new (spec.dtype === 'int8' ? Int8Array : spec.dtype === 'uint8' ? Uint8Array : Int32Array)(n);
      return { dtype: spec.dtype, shape, data: data as Tensor['data'] };
    };
    const inputsFor = (i: number) => ({ [spec.name]: one(i) });
    for (let i = 0; i < (opts.warmup ?? 20); i++) await m.backend.run(inputsFor(i));
    global.gc?.();
    const rssAdded = (process.memoryUsage().rss - rssBefore) / (1024 * 1024);
    const times: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < opts.runs; i++) {
      const x = inputsFor(i);
      const s = performance.now();
      await m.backend.run(x);
      times.push(performance.now() - s);
    }
    const wall = performance.now() - t0;
    times.sort((a, b) => a - b);
    let accuracy: number | null = null;
    if (isDigits && digits && !opts.noAccuracy) {
      const out = m.pkg.manifest.postprocessing?.output ?? m.pkg.manifest.outputs[0]!.name;
      let right = 0;
      const B = 100;
      for (let n = 0; n < digits.count; n += B) {
        const k = Math.min(B, digits.count - n);
        const res = await m.backend.run({ [spec.name]: { dtype: 'float32', shape: [k, 1, 28, 28], data: digits.images.slice(n * DIGIT_PIXELS, (n + k) * DIGIT_PIXELS) } });
        const logits = res[out]!.data as Float32Array;
        const classes = logits.length / k;
        for (let i = 0; i < k; i++) {
          let best = 0;
          for (let c = 1; c < classes; c++) if (logits[i * classes + c]! > logits[i * classes + best]!) best = c;
          if (best === digits.labels[n + i]) right++;
        }
      }
      accuracy = right / digits.count;
    }
    return {
      model: m.pkg.manifest.name,
      version: m.pkg.manifest.version,
      package: target,
      precision: m.pkg.manifest.quantization.precision,
      backend: m.choice.chosen,
      threads,
      runs: opts.runs,
      p50Ms: round(quantile(times, 0.5)),
      p99Ms: round(quantile(times, 0.99)),
      meanMs: round(times.reduce((a, b) => a + b, 0) / times.length),
      throughputPerSec: round((opts.runs / wall) * 1000, 1),
      rssAddedMiB: round(rssAdded, 1),
      accuracy: accuracy === null ? null : round(accuracy),
      accuracySamples: accuracy === null || !digits ? 0 : digits.count,
    };
  } finally {
    await m.close();
  }
}

export interface HeadToHead {
  package: string;
  runs: number;
  /** Per backend: p50 and p99 (ms) at batch 1, measured alternately in one process. */
  ort: { p50Ms: number; p99Ms: number };
  native: { p50Ms: number; p99Ms: number };
}

/**
 * The same package on both backends in one process, alternating inference by inference
 * (and which goes first), so both see the same machine load: the fair latency ratio.
 */
export async function headToHead(target: string, runs: number, threads = 1): Promise<HeadToHead> {
  const digits = heldOutDigits();
  const a = await openModel(target, 'ort', { threads });
  try {
    const b = await openModel(target, 'native', { threads });
    try {
      const name = a.pkg.manifest.inputs[0]!.name;
      const x = (i: number) => ({ [name]: { dtype: 'float32' as const, shape: [1, 1, 28, 28], data: digits.images.slice((i % digits.count) * DIGIT_PIXELS, ((i % digits.count) + 1) * DIGIT_PIXELS) } });
      for (let i = 0; i < 50; i++) { await a.backend.run(x(i)); await b.backend.run(x(i)); }
      const ta: number[] = [], tb: number[] = [];
      const time = async (m: typeof a, input: ReturnType<typeof x>, into: number[]) => {
        const s = performance.now();
        await m.backend.run(input);
        into.push(performance.now() - s);
      };
      for (let i = 0; i < runs; i++) {
        const input = x(i);
        if (i % 2) { await time(a, input, ta); await time(b, input, tb); } else { await time(b, input, tb); await time(a, input, ta); }
      }
      ta.sort((p, q) => p - q);
      tb.sort((p, q) => p - q);
      return {
        package: target, runs,
        ort: { p50Ms: round(quantile(ta, 0.5)), p99Ms: round(quantile(ta, 0.99)) },
        native: { p50Ms: round(quantile(tb, 0.5)), p99Ms: round(quantile(tb, 0.99)) },
      };
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}

export function formatBench(r: BenchResult): string {
  const acc = r.accuracy === null ? 'n/a' : `${(r.accuracy * 100).toFixed(2)}%`;
  return `${`${r.model}@${r.version}`.padEnd(18)} ${r.precision.padEnd(7)} ${r.backend.padEnd(6)} p50 ${r.p50Ms.toFixed(3).padStart(7)} ms  p99 ${r.p99Ms.toFixed(3).padStart(7)} ms  ${r.throughputPerSec.toFixed(0).padStart(6)}/s  rss +${r.rssAddedMiB.toFixed(1).padStart(5)} MiB  acc ${acc}`;
}

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive whole number, got "${v}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('latency (p50/p99 at batch 1), throughput, memory and held-out digit accuracy of a package on a backend')
    .argument('<package>', 'package folder, .edgepkg file or .onnx file')
    .addOption(new Option('-b, --backend <backend>', 'ort (ONNX Runtime) or native (the int8 engine)').choices(['ort', 'native']).default('ort'))
    .option('-n, --runs <n>', 'timed inferences', positive, 1000)
    .option('--threads <n>', 'intra-op threads', positive, 1)
    .option('--no-accuracy', 'skip the held-out accuracy pass')
    .option('--json', 'print the result as JSON')
    .action(async (pkg: string, o: { backend: 'ort' | 'native'; runs: number; threads: number; accuracy: boolean; json?: boolean }) => {
      try {
        const r = await benchPackage(pkg, { backend: o.backend, runs: o.runs, threads: o.threads, noAccuracy: !o.accuracy });
        process.stdout.write((o.json ? JSON.stringify(r) : formatBench(r)) + '\n');
      } catch (err) {
        process.stderr.write(`edge-model: ${describe(err)}\n`);
        process.exitCode = 1;
      }
    });
}
