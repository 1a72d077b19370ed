// The 'partitioned' backend: a model the native engine runs only in part. At load the graph is
// cut into native segments (each compiled for the engine) and ONNX Runtime segments (each a
// session of its own), like an ONNX Runtime execution provider or a TFLite delegate; a run
// passes the boundary tensors from one segment to the next as they are (the typed arrays the
// engine or ONNX Runtime returned, no copies), int8/uint8 at quantized cuts.
import * as ort from 'onnxruntime-node';
import { decodeModel, encodeModel, valueInfoShape, valueInfoType, DataType, type ModelProto } from '../../onnx/model.js';
import { Errors } from '../../errors.js';
import type { Backend, DType, IOSpec, Tensor, TensorMap } from '../backend.js';
import { NativeBackend } from '../native/native-backend.js';
import { createEngine } from '../native/engine-addon.js';
import { ortInt8Form } from '../ort-int8.js';
import type { OrtOptions } from '../ort-backend.js';
import { partitionModel, type Partition } from './partitioner.js';
import { fixedInputShapes, probeTensors, realInputs, withConstantsAsInitializers } from './submodel.js';

export interface PartitionedOptions {
  name?: string;
  /** Intra-op threads of the engine and of ONNX Runtime (0: ONNX Runtime picks, the engine takes 1). */
  threads?: number;
  graphOptimizationLevel?: OrtOptions['graphOptimizationLevel'];
  /** Fixed shapes for inputs with symbolic dimensions beyond the batch. */
  inputShapes?: Record<string, number[]>;
}

/** A tensor between segments: any ONNX Runtime type (an ONNX Runtime segment may hand another one int64 or bool). */
interface Boundary { type: string; shape: number[]; data: ort.Tensor['data'] }

type Runner =
  | { side: 'native'; inputs: string[]; outputs: string[]; backend: NativeBackend }
  | { side: 'ort'; inputs: string[]; outputs: string[]; session: ort.InferenceSession; exact: boolean; note: string };

const DTYPES: Record<number, DType> = {
  [DataType.FLOAT]: 'float32', [DataType.UINT8]: 'uint8', [DataType.INT8]: 'int8', [DataType.INT32]: 'int32', [DataType.INT64]: 'int64',
};

export class PartitionedBackend implements Backend {
  readonly kind = 'partitioned' as const;
  readonly inputs: IOSpec[];
  readonly outputs: IOSpec[];
  private runners: Runner[] | undefined;
  /** Whether a batch > 1 runs sample by sample (symbolic batch, every output batch-first at 1). */
  private readonly batched: boolean;

  private constructor(readonly name: string, readonly partition: Partition, runners: Runner[], inputs: IOSpec[], outputs: IOSpec[], batched: boolean) {
    this.runners = runners;
    this.inputs = inputs;
    this.outputs = outputs;
    this.batched = batched;
  }

  /** Cuts, compiles and opens every segment. Throws when no node can run natively (then it is plain ONNX Runtime). */
  static async load(model: Uint8Array | ModelProto, options: PartitionedOptions = {}): Promise<PartitionedBackend> {
    const name = options.name ?? 'model';
    const proto = withConstantsAsInitializers(model instanceof Uint8Array ? decodeModel(model, name) : model);
    const quantized = (proto.graph!.node ?? []).some((n) => n.opType === 'QuantizeLinear' || n.opType?.startsWith('QLinear'));
    if (!quantized) throw Errors.MODEL_UNSUPPORTED_OPS(name, ['the graph has no quantized tensors to cut at (the engine runs int8 models)']);
    const shapes = fixedInputShapes(proto, options.inputShapes);
    const facts = await probeTensors(proto, shapes);
    // The engine checks each plan again; what it refuses goes to ONNX Runtime.
    const partition = partitionModel(proto, facts, name, (c) => createEngine(c.plan, c.weights, { threads: 1 }).dispose());
    if (!partition.segments.some((s) => s.side === 'native')) {
      throw Errors.MODEL_UNSUPPORTED_OPS(name, [`no part of the graph runs natively (${partition.unsupported.join(', ') || partition.refused.join('; ')})`]);
    }
    const runners: Runner[] = [];
    try {
      for (const seg of partition.segments) {
        if (seg.side === 'native') {
          runners.push({ side: 'native', inputs: seg.inputs, outputs: seg.outputs, backend: NativeBackend.fromCompiled(seg.compiled!, { name: `${name} (native segment)`, threads: options.threads || 1 }) });
        } else {
          const bytes = encodeModel(seg.model);
          const form = ortInt8Form(seg.model, bytes);
          const session = await ort.InferenceSession.create(form.bytes, {
            intraOpNumThreads: options.threads ?? 0, interOpNumThreads: 1, executionMode: 'sequential',
            graphOptimizationLevel: options.graphOptimizationLevel ?? 'all', logSeverityLevel: 3,
          });
          runners.push({ side: 'ort', inputs: seg.inputs, outputs: seg.outputs, session, exact: form.exact, note: form.note });
        }
      }
    } catch (err) {
      await release(runners);
      throw err;
    }
    const symbolic = realInputs(proto).every((vi) => typeof valueInfoShape(vi)[0] !== 'number' || valueInfoShape(vi)[0] === 0);
    const outNames = (proto.graph!.output ?? []).map((o) => o.name!);
    const batched = symbolic && outNames.every((o) => facts.get(o)?.shape[0] === 1);
    const spec = (n: string, elemType: number): IOSpec => {
      const s = facts.get(n)!.shape;
      return { name: n, dtype: DTYPES[elemType] ?? 'float32', shape: batched ? ['N', ...s.slice(1)] : s };
    };
    const inputs = realInputs(proto).map((vi) => spec(vi.name!, valueInfoType(vi)));
    const outputs = outNames.map((o) => spec(o, facts.get(o)!.elemType));
    return new PartitionedBackend(name, partition, runners, inputs, outputs, batched);
  }

  async run(inputs: TensorMap): Promise<TensorMap> {
    const runners = this.live();
    for (const spec of this.inputs) {
      const t = inputs[spec.name];
      const want = `${spec.dtype} [${spec.shape.join(', ')}]`;
      if (!t) throw Errors.BAD_REQUEST(`${this.name}: missing input '${spec.name}' (expected ${want})`);
      const ok = t.dtype === spec.dtype && t.shape.length === spec.shape.length && t.shape.every((d, i) => d === spec.shape[i] || (i === 0 && this.batched && Number.isInteger(d) && d >= 1));
      if (!ok || t.shape.reduce((a, b) => a * b, 1) !== t.data.length) {
        throw Errors.BAD_REQUEST(`${this.name}: input '${spec.name}' must be ${want}, got ${t.dtype} [${t.shape.join(', ')}] with ${t.data.length} values`);
      }
    }
    const batch = this.batched ? inputs[this.inputs[0].name].shape[0] : 1;
    if (batch === 1) return this.runSample(runners, inputs);
    const samples: TensorMap[] = [];
    for (let b = 0; b < batch; b++) {
      const one: TensorMap = {};
      for (const [n, t] of Object.entries(inputs)) {
        const per = t.data.length / t.shape[0];
        one[n] = { dtype: t.dtype, shape: [1, ...t.shape.slice(1)], data: t.data.subarray(b * per, (b + 1) * per) as Tensor['data'] };
      }
      samples.push(await this.runSample(runners, one));
    }
    const out: TensorMap = {};
    for (const spec of this.outputs) {
      const first = samples[0][spec.name];
      const per = first.data.length;
      const data = new (first.data.constructor as new (n: number) => Tensor['data'])(per * batch);
      samples.forEach((s, b) => (data as Float32Array).set(s[spec.name].data as Float32Array, b * per));
      out[spec.name] = { dtype: first.dtype, shape: [batch, ...first.shape.slice(1)], data };
    }
    return out;
  }

  private async runSample(runners: Runner[], inputs: TensorMap): Promise<TensorMap> {
    const env = new Map<string, Boundary>();
    for (const [n, t] of Object.entries(inputs)) env.set(n, { type: t.dtype, shape: t.shape, data: t.data });
    for (const r of runners) {
      if (r.side === 'native') {
        const feeds: TensorMap = {};
        for (const n of r.inputs) {
          const b = env.get(n)!;
          feeds[n] = { dtype: b.type as DType, shape: b.shape, data: b.data as Tensor['data'] };
        }
        const res = await r.backend.run(feeds);
        for (const n of r.outputs) env.set(n, { type: res[n].dtype, shape: res[n].shape, data: res[n].data });
      } else {
        const feeds: Record<string, ort.Tensor> = {};
        for (const n of r.inputs) {
          const b = env.get(n)!;
          feeds[n] = new ort.Tensor(b.type as 'float32', b.data as Float32Array, b.shape);
        }
        const res = await r.session.run(feeds, r.outputs);
        for (const n of r.outputs) env.set(n, { type: res[n].type, shape: [...res[n].dims], data: res[n].data });
      }
    }
    const out: TensorMap = {};
    for (const spec of this.outputs) {
      const b = env.get(spec.name)!;
      out[spec.name] = { dtype: spec.dtype, shape: b.shape, data: b.data as Tensor['data'] };
    }
    return out;
  }

  async dispose(): Promise<void> {
    const r = this.runners;
    this.runners = undefined;
    if (r) await release(r);
  }

  /** The partition for /v1/status: each segment's side and size, and what kept nodes off the engine. */
  describe(): Record<string, unknown> {
    const native = this.partition.nodes.filter((n) => n.side === 'native').length;
    const inexact = (this.runners ?? []).filter((r) => r.side === 'ort' && !r.exact).map((r) => (r as { note: string }).note);
    return {
      backend: 'partitioned',
      nativeNodes: native,
      ortNodes: this.partition.nodes.length - native,
      segments: this.partition.segments.map((s) => ({ side: s.side, nodes: s.nodes.length, inputs: s.inputs, outputs: s.outputs })),
      unsupported: this.partition.unsupported,
      refused: this.partition.refused,
      ...(inexact.length ? { ortInexact: inexact } : {}),
    };
  }

  /** Whether every ONNX Runtime segment computes its int8 products exactly on this CPU, and why not. */
  get ortWarning(): string | undefined {
    const r = (this.runners ?? []).find((x) => x.side === 'ort' && !x.exact) as { note: string } | undefined;
    return r?.note;
  }

  private live(): Runner[] {
    if (!this.runners) throw Errors.NOT_READY(`partitioned backend for ${this.name} was disposed`);
    return this.runners;
  }
}

async function release(runners: Runner[]): Promise<void> {
  for (const r of runners) {
    if (r.side === 'native') await r.backend.dispose();
    else await r.session.release();
  }
}
