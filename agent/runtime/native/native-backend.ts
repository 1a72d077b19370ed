// The 'native' backend: an int8 ONNX model compiled once into a plan for the project's own
// engine (pre-packed weights, one arena), run off the event loop via the addon's async path.
import { decodeModel, type ModelProto } from '../../onnx/model.js';
import { Errors } from '../../errors.js';
import type { Backend, DType, IOSpec, Tensor, TensorMap } from '../backend.js';
import { compileModel, type CompiledModel } from './compile/index.js';
import { createEngine, type EngineArray, type EngineFacts, type NativeEngine } from './engine-addon.js';

export interface NativeBackendOptions {
  /** Shown in errors ("model digits@1.2.0"). */
  name?: string;
  /** Intra-op threads of the engine's own pool (default 1: the calling or libuv worker thread alone; 0 = every core). */
  threads?: number;
  /**
   * Where run() executes. 'worker': always on the libuv pool (addon's async path). 'inline':
   * on the calling thread. 'auto' (default): inline when a warm-up run at load takes less
   * than inlineBelowUs, because then handing the work to another thread and back costs more
   * than the inference itself and blocks the event loop no longer than a thread hop would.
   */
  runMode?: 'auto' | 'worker' | 'inline';
  inlineBelowUs?: number;
}

const ARRAY_FOR: Record<'float32' | 'uint8' | 'int8', { new (n: number): EngineArray; name: string }> = {
  float32: Float32Array, uint8: Uint8Array, int8: Int8Array,
};

export class NativeBackend implements Backend {
  readonly kind = 'native' as const;
  readonly inputs: IOSpec[];
  readonly outputs: IOSpec[];
  private engine: NativeEngine | undefined;
  private readonly facts: EngineFacts;
  /** Whether inputs may carry a batch > 1 (symbolic batch, outputs batch-first). */
  private readonly batched: boolean;
  /** Chosen at load: run on the calling thread (tiny models) or on the libuv pool. */
  readonly runMode: 'worker' | 'inline';
  /** Median of the warm-up runs at load, in microseconds. */
  readonly warmupUs: number;

  private constructor(private readonly compiled: CompiledModel, engine: NativeEngine, readonly name: string, options: NativeBackendOptions) {
    this.engine = engine;
    this.facts = engine.describe();
    this.warmupUs = warmUp(engine, compiled);
    const mode = options.runMode ?? 'auto';
    this.runMode = mode === 'auto' ? (this.warmupUs < (options.inlineBelowUs ?? 200) ? 'inline' : 'worker') : mode;
    const symbolic = compiled.inputs.every((i) => typeof i.onnxShape[0] === 'string');
    this.batched = symbolic && compiled.outputs.every((o) => o.shape[0] === 1);
    const batchDim = (shape: number[]): (number | string)[] => (this.batched ? ['N', ...shape.slice(1)] : shape);
    this.inputs = compiled.inputs.map((i) => ({ name: i.name, dtype: i.dtype, shape: batchDim(i.shape) }));
    this.outputs = compiled.outputs.map((o) => ({ name: o.name, dtype: o.dtype, shape: batchDim(o.shape) }));
  }

  /** Compiles and loads; refuses unsupported models with EDGE_MODEL_UNSUPPORTED_OPS. */
  static load(model: Uint8Array | ModelProto, options: NativeBackendOptions = {}): NativeBackend {
    const name = options.name ?? 'model';
    const proto = model instanceof Uint8Array ? decodeModel(model, name) : model;
    const compiled = compileModel(proto, name);
    const engine = createEngine(compiled.plan, compiled.weights, { threads: options.threads ?? 1 });
    return new NativeBackend(compiled, engine, name, options);
  }

  /** Loads a model compiled already (the partitioner compiles each native segment once). */
  static fromCompiled(compiled: CompiledModel, options: NativeBackendOptions = {}): NativeBackend {
    const engine = createEngine(compiled.plan, compiled.weights, { threads: options.threads ?? 1 });
    return new NativeBackend(compiled, engine, options.name ?? 'model', options);
  }

  async run(inputs: TensorMap): Promise<TensorMap> {
    const engine = this.live();
    const batch = this.checkInputs(inputs);
    const per = this.compiled.inputs.map((spec) => spec.shape.reduce((a, b) => a * b, 1));
    const results: EngineArray[][] = [];
    // The plan is compiled for one sample; a batch runs sample by sample on the same arena.
    for (let b = 0; b < batch; b++) {
      const args = this.compiled.inputs.map((spec, i) => {
        const data = inputs[spec.name].data as EngineArray;
        return batch === 1 ? data : (data.subarray(b * per[i], (b + 1) * per[i]) as EngineArray);
      });
      results.push(this.runMode === 'inline' ? engine.run(args) : await engine.runAsync(args));
    }
    const out: TensorMap = {};
    this.compiled.outputs.forEach((spec, i) => {
      const shape = batch === 1 ? spec.shape : [batch, ...spec.shape.slice(1)];
      let data: EngineArray;
      if (batch === 1) data = results[0][i];
      else {
        const n = results[0][i].length;
        data = new ARRAY_FOR[spec.dtype](n * batch);
        results.forEach((r, b) => (data as Float32Array).set(r[i] as Float32Array, b * n));
      }
      out[spec.name] = { dtype: spec.dtype as DType, shape, data } satisfies Tensor;
    });
    return out;
  }

  /** Runs one sample on the libuv pool whatever the run mode (benchmarks). */
  runOnWorker(inputs: EngineArray[]): Promise<EngineArray[]> {
    return this.live().runAsync(inputs);
  }

  /** Runs one sample synchronously on the calling thread (benchmarks, CLI one-offs). */
  runSync(inputs: EngineArray[]): EngineArray[] {
    return this.live().run(inputs);
  }

  async dispose(): Promise<void> {
    this.engine?.dispose();
    this.engine = undefined;
  }

  describe(): Record<string, unknown> {
    return {
      backend: 'native',
      kernelVariant: this.facts.variant,
      threads: this.facts.threads,
      steps: this.facts.steps,
      onnxNodes: this.compiled.stats.nodes,
      arenaBytes: this.facts.arenaBytes,
      runMode: this.runMode,
      warmupUs: Math.round(this.warmupUs),
      weightBytes: this.facts.weightBytes,
    };
  }

  private live(): NativeEngine {
    if (!this.engine) throw Errors.NOT_READY(`native backend for ${this.name} was disposed`);
    return this.engine;
  }

  /** Checks names, dtypes and shapes; returns the batch size. */
  private checkInputs(inputs: TensorMap): number {
    let batch = -1;
    for (const spec of this.compiled.inputs) {
      const t = inputs[spec.name];
      const want = `${spec.dtype} [${(this.batched ? ['N', ...spec.shape.slice(1)] : spec.shape).join(', ')}]`;
      if (!t) throw Errors.BAD_REQUEST(`${this.name}: missing input '${spec.name}' (expected ${want})`);
      if (t.dtype !== spec.dtype || !(t.data instanceof ARRAY_FOR[spec.dtype])) {
        throw Errors.BAD_REQUEST(`${this.name}: input '${spec.name}' must be ${want}, got dtype ${t.dtype}`);
      }
      const fixedOk = t.shape.length === spec.shape.length && t.shape.every((d, i) => (i === 0 && this.batched) || d === spec.shape[i]);
      const b = t.shape[0];
      const count = t.shape.reduce((a, c) => a * c, 1);
      if (!fixedOk || !(Number.isInteger(b) && b >= 1) || count !== t.data.length) {
        throw Errors.BAD_REQUEST(`${this.name}: input '${spec.name}' must be ${want}, got shape [${t.shape.join(', ')}] with ${t.data.length} values`);
      }
      const thisBatch = this.batched ? b : 1;
      if (batch !== -1 && batch !== thisBatch) throw Errors.BAD_REQUEST(`${this.name}: inputs disagree on the batch size`);
      batch = thisBatch;
    }
    for (const name of Object.keys(inputs)) {
      if (!this.compiled.inputs.some((s) => s.name === name)) {
        throw Errors.BAD_REQUEST(`${this.name}: unknown input '${name}' (expected ${this.compiled.inputs.map((s) => s.name).join(', ')})`);
      }
    }
    return batch;
  }
}

/** Runs a few zero-filled inferences on the calling thread; returns the median in microseconds. */
function warmUp(engine: NativeEngine, compiled: CompiledModel): number {
  const inputs = compiled.inputs.map((spec) => new ARRAY_FOR[spec.dtype](spec.shape.reduce((a, b) => a * b, 1)));
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = process.hrtime.bigint();
    engine.run(inputs);
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}
