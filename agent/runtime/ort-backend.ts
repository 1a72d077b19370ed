// ONNX Runtime backend: one InferenceSession per model version, created once at load.
// onnxruntime-node (1.30) calls the native run synchronously inside a setImmediate: an
// inference blocks the thread that runs it for its whole duration (intra-op threads, when > 1,
// help inside it). So a model whose runs cost more than offThreadAboveMs gets its session on a
// worker thread of its own (ort-thread.ts) and the event loop stays free; a cheap one stays on
// the calling thread, where a thread hop would cost more than the run.
import * as ort from 'onnxruntime-node';
import { allocate } from '../tensor/json.js';
import type { Backend, IOSpec, Tensor, TensorMap } from './backend.js';
import { OrtThreadSession } from './ort-thread.js';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface OrtOptions {
  /** Intra-op threads; 0 lets ONNX Runtime choose (one per core). */
  threads: number;
  graphOptimizationLevel: GraphOptimizationLevel;
  /**
   * A model whose warm-up run (timed at load on the calling thread, the fastest of at most five)
   * takes longer than this (ms) is served from a worker thread of its own; 0 puts every model there. Unset: on the calling thread,
   * nothing measured (tools that run a model once).
   */
  offThreadAboveMs?: number;
  /** Niceness of a worker thread serving a model (0-19; 0 = the process's). */
  offThreadNice?: number;
  /** Shown in errors and thread names ("digits@1.0.0"). */
  name?: string;
}

/** Where the session runs, and why (for the log and /v1/status). */
export interface OrtPlacement {
  thread: 'main' | 'worker';
  reason: string;
  /** The timed warm-up run (ms), when measured. */
  runMs?: number;
}

/**
 * At most this many timed runs decide where a model runs; the first at or under the limit ends
 * it. On a loaded machine a cheap model's single run can exceed the limit, and serving a tiny
 * model from a thread there only adds the hop's scheduling delay to every answer.
 */
const PROBE_RUNS = 5;

/** Zeros at batch 1 (every symbolic dimension 1), as ModelVersion.warmUp feeds. */
function probeInputs(inputs: IOSpec[]): TensorMap {
  const out: TensorMap = {};
  for (const s of inputs) {
    const shape = s.shape.map((d) => (typeof d === 'number' ? d : 1));
    out[s.name] = { dtype: s.dtype, shape, data: allocate(s.dtype, shape.reduce((a, b) => a * b, 1)) };
  }
  return out;
}

async function createSession(model: Uint8Array, opts: OrtOptions): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, {
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: opts.graphOptimizationLevel,
  });
}

export class OrtBackend implements Backend {
  readonly kind = 'ort' as const;
  readonly inputs: IOSpec[];
  readonly outputs: IOSpec[];
  readonly placement: OrtPlacement;
  readonly #session: ort.InferenceSession | undefined;
  readonly #thread: OrtThreadSession | undefined;
  readonly #opts: OrtOptions;

  private constructor(where: { session?: ort.InferenceSession; thread?: OrtThreadSession }, inputs: IOSpec[], outputs: IOSpec[], opts: OrtOptions, placement: OrtPlacement) {
    this.#session = where.session;
    this.#thread = where.thread;
    this.inputs = inputs;
    this.outputs = outputs;
    this.#opts = opts;
    this.placement = placement;
  }

  static async create(model: Uint8Array, inputs: IOSpec[], outputs: IOSpec[], opts: OrtOptions): Promise<OrtBackend> {
    const limit = opts.offThreadAboveMs;
    const session = await createSession(model, opts);
    if (limit === undefined) {
      return new OrtBackend({ session }, inputs, outputs, opts, { thread: 'main', reason: 'runtime.offThreadAboveMs is not set' });
    }
    // Measured here first: most models cost far less than a thread hop, and starting a thread
    // for each would cost every load. A run above the limit is run again (a first run pays for
    // lazy set-up; a loaded machine stretches any one run), so a costly model holds the loop
    // for at most PROBE_RUNS runs, once, at load.
    const probe = probeInputs(inputs);
    const here = new OrtBackend({ session }, inputs, outputs, opts, { thread: 'main', reason: '' });
    const times: number[] = [];
    for (let i = 0; i < PROBE_RUNS; i++) {
      const t0 = performance.now();
      try {
        await here.#runHere(probe);
      } catch (err) {
        // Not this step's to report: the runtime's own warm-up runs next and refuses the
        // package with the reason (package-loader.ts).
        return new OrtBackend({ session }, inputs, outputs, opts, { thread: 'main', reason: `a timing run failed (${String((err as Error).message ?? err).split('\n')[0]})` });
      }
      times.push(performance.now() - t0);
      if (times[times.length - 1]! <= limit) break;
    }
    const runMs = Math.min(...times);
    const measured = `a warm-up run takes ${runMs.toFixed(2)} ms`;
    if (runMs <= limit) {
      return new OrtBackend({ session }, inputs, outputs, opts, { thread: 'main', runMs, reason: `${measured}, within runtime.offThreadAboveMs (${limit} ms): a thread hop would cost more than it spares the event loop` });
    }
    await session.release();
    const thread = await OrtThreadSession.start(model, { name: opts.name ?? 'model', threads: opts.threads, graphOptimizationLevel: opts.graphOptimizationLevel, nice: opts.offThreadNice });
    return new OrtBackend({ thread }, inputs, outputs, opts, { thread: 'worker', runMs, reason: `${measured}, above runtime.offThreadAboveMs (${limit} ms): served from its own worker thread` });
  }

  async run(inputs: TensorMap): Promise<TensorMap> {
    const out = this.#thread ? (await this.#thread.run(inputs)).outputs : await this.#runHere(inputs);
    const result: TensorMap = {};
    for (const spec of this.outputs) {
      const t = out[spec.name];
      if (t) result[spec.name] = { dtype: spec.dtype, shape: t.shape, data: t.data };
    }
    return result;
  }

  async #runHere(inputs: TensorMap): Promise<TensorMap> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor(t.dtype, t.data, t.shape);
    const out = await this.#session!.run(feeds);
    const result: TensorMap = {};
    for (const [name, t] of Object.entries(out)) result[name] = { dtype: t.type as Tensor['dtype'], shape: [...t.dims], data: t.data as Tensor['data'] };
    return result;
  }

  /** The worker thread serving this model, when it has one (tests end it to stand for a crash). */
  get thread(): OrtThreadSession | undefined {
    return this.#thread;
  }

  async dispose(): Promise<void> {
    if (this.#thread) await this.#thread.dispose();
    else await this.#session!.release();
  }

  describe(): Record<string, unknown> {
    return {
      engine: 'onnxruntime-node',
      threads: this.#opts.threads || 'auto',
      graphOptimizationLevel: this.#opts.graphOptimizationLevel,
      thread: this.placement.thread,
      threadReason: this.placement.reason,
      warmupRunMs: this.placement.runMs === undefined ? undefined : Math.round(this.placement.runMs * 100) / 100,
      ...(this.#thread ? { threadNice: this.#opts.offThreadNice ?? 0, threadRestarts: this.#thread.restarts, lastThreadCrash: this.#thread.lastCrash } : {}),
    };
  }
}
