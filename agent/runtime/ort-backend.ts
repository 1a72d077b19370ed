// ONNX Runtime backend: one InferenceSession per model version, created once at load.
// onnxruntime-node (1.30) calls the native run synchronously inside a setImmediate: the
// inference blocks the event loop for its duration (intra-op threads, when > 1, help inside it).
import * as ort from 'onnxruntime-node';
import type { Backend, IOSpec, Tensor, TensorMap } from './backend.js';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface OrtOptions {
  /** Intra-op threads; 0 lets ONNX Runtime choose (one per core). */
  threads: number;
  graphOptimizationLevel: GraphOptimizationLevel;
}

export class OrtBackend implements Backend {
  readonly kind = 'ort' as const;
  readonly inputs: IOSpec[];
  readonly outputs: IOSpec[];
  readonly #session: ort.InferenceSession;
  readonly #opts: OrtOptions;

  private constructor(session: ort.InferenceSession, inputs: IOSpec[], outputs: IOSpec[], opts: OrtOptions) {
    this.#session = session;
    this.inputs = inputs;
    this.outputs = outputs;
    this.#opts = opts;
  }

  static async create(model: Uint8Array, inputs: IOSpec[], outputs: IOSpec[], opts: OrtOptions): Promise<OrtBackend> {
    const session = await ort.InferenceSession.create(model, {
      intraOpNumThreads: opts.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: opts.graphOptimizationLevel,
    });
    return new OrtBackend(session, inputs, outputs, opts);
  }

  async run(inputs: TensorMap): Promise<TensorMap> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor(t.dtype, t.data, t.shape);
    const out = await this.#session.run(feeds);
    const result: TensorMap = {};
    for (const spec of this.outputs) {
      const t = out[spec.name];
      if (!t) continue;
      result[spec.name] = { dtype: spec.dtype, shape: [...t.dims], data: t.data as Tensor['data'] };
    }
    return result;
  }

  async dispose(): Promise<void> {
    await this.#session.release();
  }

  describe(): Record<string, unknown> {
    return { engine: 'onnxruntime-node', threads: this.#opts.threads || 'auto', graphOptimizationLevel: this.#opts.graphOptimizationLevel };
  }
}
