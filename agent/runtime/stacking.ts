// Stacking (fusion "stacked"): an ensemble's members answer, their score rows (probabilities
// when a member's manifest says it outputs logits) are concatenated member after member, and a
// small learned model, the combiner (an ONNX file, e.g. written by `edge-model stack`), maps
// them to the ensemble's class logits; the ensemble answers their softmax. The combiner takes
// one float input [N, members x classes] and its first output is [N, classes].
import { readFileSync } from 'node:fs';
import type * as Ort from 'onnxruntime-node';
import type { Tensor } from './backend.js';
import { fusedOutputName, type MemberAnswer } from './ensemble.js';
import { scoreRows, softmax } from './scores.js';

/** The members' score rows side by side: row r = member 0's row r, then member 1's, ... */
export function stackedFeatures(answers: MemberAnswer[]): { data: Float32Array; rows: number; width: number } {
  const perMember = answers.map((a) => scoreRows(a.manifest.postprocessing, a.outputs[fusedOutputName(a.manifest)]!));
  const rows = perMember[0]!.length;
  for (const [i, m] of perMember.entries()) if (m.length !== rows) throw new Error(`member ${i} answered ${m.length} rows, the first member ${rows}`);
  const width = perMember.reduce((s, m) => s + (m[0]?.length ?? 0), 0);
  const data = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    let o = r * width;
    for (const m of perMember) {
      data.set(m[r]!, o);
      o += m[r]!.length;
    }
  }
  return { data, rows, width };
}

// ONNX Runtime is imported when a combiner first opens: an agent serving only native models
// never maps it (test/reliability-footprint.test.ts).
const loadOrt = (): Promise<typeof Ort> => import('onnxruntime-node');

export class Combiner {
  #session: Promise<Ort.InferenceSession> | undefined;

  constructor(readonly file: string) {}

  /** Opens the combiner (once); a missing or broken file fails here, with the file named. */
  open(): Promise<Ort.InferenceSession> {
    this.#session ??= (async () => {
      const bytes = readFileSync(this.file);
      const ort = await loadOrt();
      return ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
    })();
    this.#session.catch(() => { this.#session = undefined; });
    return this.#session;
  }

  async fuse(answers: MemberAnswer[]): Promise<Tensor> {
    const f = stackedFeatures(answers);
    const session = await this.open();
    const input = session.inputNames[0]!;
    const ort = await loadOrt();
    const out = (await session.run({ [input]: new ort.Tensor('float32', f.data, [f.rows, f.width]) }))[session.outputNames[0]!]!;
    const classes = out.dims[out.dims.length - 1]!;
    const logits = out.data as Float32Array;
    const scores = new Float32Array(f.rows * classes);
    for (let r = 0; r < f.rows; r++) scores.set(softmax(logits.subarray(r * classes, (r + 1) * classes)), r * classes);
    return { dtype: 'float32', shape: [f.rows, classes], data: scores };
  }

  async close(): Promise<void> {
    const s = await this.#session?.catch(() => undefined);
    await s?.release();
  }
}
