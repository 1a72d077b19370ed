// samples.collect: the fleet asks a device for real inputs (for labelling, retraining, or a
// look at what drifted). The next N inferences of a model are copied into the telemetry
// stream "samples", so they travel like any telemetry: buffered, batched, acknowledged.
import type { TensorMap } from '../runtime/backend.js';

export interface InferenceLike {
  model: string;
  version: string;
  inputs: TensorMap;
  outputs?: TensorMap;
  ok: boolean;
}

export const SAMPLES_STREAM = 'samples';
/** Elements kept per tensor: a sample is a record, and records have a size limit. */
const MAX_ELEMENTS = 16_384;

interface Request {
  model: string;
  left: number;
  seqs: number[];
  done: () => void;
}

export class SampleCollector {
  readonly #waiting: Request[] = [];

  constructor(private readonly record: (stream: string, payload: unknown) => number) {}

  /** Feed every inference here (ModelRuntime.onInference). */
  observe(e: InferenceLike): void {
    if (!e.ok || this.#waiting.length === 0) return;
    for (const r of [...this.#waiting]) {
      if (r.model !== e.model || r.left <= 0) continue;
      r.seqs.push(this.record(SAMPLES_STREAM, { model: e.model, version: e.version, ts: Date.now(), inputs: encode(e.inputs), outputs: e.outputs ? encode(e.outputs) : undefined }));
      if (--r.left === 0) r.done();
    }
  }

  /** Collects the next `count` inferences of `model`; resolves early on timeout with what it has. */
  collect(model: string, count: number, timeoutMs: number): Promise<{ model: string; requested: number; collected: number; stream: string; seqs: number[] }> {
    return new Promise((resolve) => {
      const req: Request = { model, left: count, seqs: [], done: () => finish() };
      const timer = setTimeout(() => finish(), timeoutMs);
      timer.unref();
      const finish = (): void => {
        clearTimeout(timer);
        const i = this.#waiting.indexOf(req);
        if (i >= 0) this.#waiting.splice(i, 1);
        resolve({ model, requested: count, collected: req.seqs.length, stream: SAMPLES_STREAM, seqs: req.seqs });
      };
      this.#waiting.push(req);
    });
  }
}

function encode(m: TensorMap): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(m)) {
    const data = t.data as ArrayLike<number | bigint>;
    const n = Math.min(data.length, MAX_ELEMENTS);
    const values: number[] = new Array(n);
    for (let i = 0; i < n; i++) values[i] = Number(data[i]);
    out[name] = { dtype: t.dtype, shape: t.shape, data: values, ...(data.length > n ? { truncated: data.length } : {}) };
  }
  return out;
}
