// `edge-model compare A B --data DIR`: run both models on the same inputs and measure, per
// output, how far B strays from A: signal-to-quantization-noise ratio, top-1 agreement,
// maximum and mean absolute difference.
import type * as ort from 'onnxruntime-node';
import { listNpyFiles, loadBatch, singleInput } from './dataset.js';
import { ToolErrors } from './errors.js';
import { readModelFile } from './model-file.js';
import { floatTensor, modelRuns, openSession, runSession } from './ort-session.js';
import { Progress } from './progress.js';

export interface OutputComparison {
  name: string;
  sqnrDb: number;
  top1Agreement: number | null;
  maxAbsDiff: number;
  meanAbsDiff: number;
  values: number;
}

export interface Comparison {
  a: string;
  b: string;
  samples: number;
  /** Measured with exact integer arithmetic for int8 models (the same figures on every CPU). */
  outputs: OutputComparison[];
  /** What plain ONNX Runtime gives on this CPU, when it can differ from the exact figures. */
  ortOnThisCpu: { outputs: OutputComparison[]; why: string; sameAsExact: boolean };
  warning?: string;
}

/** Accumulates the statistics of one output over batches. */
export class OutputStats {
  private signal = 0;
  private noise = 0;
  private absSum = 0;
  private absMax = 0;
  private n = 0;
  private agree = 0;
  private rows = 0;
  private classes: number | null = null;

  constructor(readonly name: string) {}

  add(ref: ArrayLike<number>, test: ArrayLike<number>, shape: readonly number[]): void {
    if (ref.length !== test.length) {
      throw ToolErrors.MODEL_INVALID(`output ${this.name} has ${ref.length} values in the first model and ${test.length} in the second`);
    }
    for (let i = 0; i < ref.length; i++) {
      const r = ref[i];
      const d = test[i] - r;
      this.signal += r * r;
      this.noise += d * d;
      const a = Math.abs(d);
      this.absSum += a;
      if (a > this.absMax) this.absMax = a;
    }
    this.n += ref.length;
    const last = shape[shape.length - 1] ?? 1;
    if (shape.length >= 1 && last > 1) {
      this.classes = last;
      for (let row = 0; row + last <= ref.length; row += last) {
        if (argmax(ref, row, last) === argmax(test, row, last)) this.agree++;
        this.rows++;
      }
    }
  }

  result(): OutputComparison {
    const sqnr = this.noise === 0 ? Infinity : 10 * Math.log10(this.signal / this.noise);
    return {
      name: this.name,
      sqnrDb: sqnr,
      top1Agreement: this.classes === null || this.rows === 0 ? null : this.agree / this.rows,
      maxAbsDiff: this.absMax,
      meanAbsDiff: this.n ? this.absSum / this.n : 0,
      values: this.n,
    };
  }
}

export function argmax(v: ArrayLike<number>, from: number, len: number): number {
  let best = 0;
  for (let k = 1; k < len; k++) if (v[from + k] > v[from + best]) best = k;
  return best;
}

export async function compareModels(aFile: string, bFile: string, dataDir: string): Promise<Comparison> {
  const a = readModelFile(aFile);
  const b = readModelFile(bFile);
  const input = singleInput(a, aFile);
  const inputB = singleInput(b, bFile);
  if (input.name !== inputB.name) {
    throw ToolErrors.MODEL_INVALID(`the models take different inputs (${input.name} vs ${inputB.name}); compare two versions of one model`);
  }
  const files = listNpyFiles(dataDir, 'data', ToolErrors.DATA_INVALID);
  const ra = modelRuns(a);
  const rb = modelRuns(b);
  const sa = await openSession(ra.exact, aFile);
  const sb = await openSession(rb.exact, bFile);
  const names = sa.outputNames.filter((n) => sb.outputNames.includes(n));
  if (names.length === 0) throw ToolErrors.MODEL_INVALID(`the models share no output name (${sa.outputNames.join(', ')} vs ${sb.outputNames.join(', ')})`);
  // Beside the exact figures: the models as plain ONNX Runtime runs them on this CPU.
  const plainA = ra.differs ? await openSession(ra.asIs, aFile) : sa;
  const plainB = rb.differs ? await openSession(rb.asIs, bFile) : sb;
  const plain = ra.differs || rb.differs;
  const stats = names.map((n) => new OutputStats(n));
  const plainStats = names.map((n) => new OutputStats(n));
  let samples = 0;
  const batches = files.map((f) => loadBatch(f, input));
  const progress = new Progress('comparing', batches.reduce((s, x) => s + x.shape[0], 0));
  for (const batch of batches) {
    const feeds = { [input.name]: floatTensor(batch.data, batch.shape) };
    const oa = await runSession(sa, feeds, aFile);
    const ob = await runSession(sb, feeds, bFile);
    names.forEach((n, i) => stats[i].add(toNumbers(oa[n]), toNumbers(ob[n]), oa[n].dims));
    if (plain) {
      const pa = plainA === sa ? oa : await runSession(plainA, feeds, aFile);
      const pb = plainB === sb ? ob : await runSession(plainB, feeds, bFile);
      names.forEach((n, i) => plainStats[i].add(toNumbers(pa[n]), toNumbers(pb[n]), pa[n].dims));
    }
    samples += batch.shape[0];
    progress.tick(batch.shape[0]);
  }
  progress.end();
  for (const s of new Set([sa, sb, plainA, plainB])) await s.release();
  const outputs = stats.map((s) => s.result());
  if (!plain) return { a: aFile, b: bFile, samples, outputs, ortOnThisCpu: { outputs, why: rb.why, sameAsExact: true } };
  const ortOutputs = plainStats.map((s) => s.result());
  const worse = ortOutputs.filter((o, i) => o.sqnrDb < outputs[i].sqnrDb - 0.1 || (o.top1Agreement ?? 1) < (outputs[i].top1Agreement ?? 1));
  const why = rb.differs ? rb.why : ra.why;
  return {
    a: aFile, b: bFile, samples, outputs,
    ortOnThisCpu: { outputs: ortOutputs, why, sameAsExact: false },
    ...(worse.length ? { warning: `plain ONNX Runtime on this CPU is less accurate than the exact figures (${why}); edge-agent runs such models exactly (native engine, or uint8 weights in ONNX Runtime), and \`edge-model quantize --target ort-x86\` writes a model plain ONNX Runtime runs exactly` } : {}),
  };
}

function toNumbers(t: ort.Tensor): ArrayLike<number> {
  const d = t.data;
  if (d instanceof BigInt64Array) return Array.from(d, Number);
  return d as ArrayLike<number>;
}
