// The Open Inference Protocol's operations on the model runtime, apart from any transport:
// health, server and model metadata, readiness, and inference from the protocol's tensors
// (typed values, flattened or nested, or raw little-endian bytes). REST (/v2) and gRPC both
// call these; errors are EdgeErrors whose status each transport maps to its own form.
import { EdgeError, Errors } from '../errors.js';
import type { IOSpec, Tensor, TensorMap } from '../runtime/backend.js';
import type { ModelRuntime } from '../runtime/model-runtime.js';
import { TensorInputError, tensorFromBytes, tensorFromJson } from '../tensor/json.js';
import { formatShape } from '../tensor/shape.js';
import { AGENT_VERSION } from '../version.js';
import { PROTOCOL_DATATYPE, PROTOCOL_DATATYPES, protocolShape, tensorMetadata } from './datatypes.js';

/** One input as a client sent it (shape and datatype still unchecked). */
export interface InputTensor {
  name: unknown;
  datatype: unknown;
  shape: unknown;
  /** Typed values, flat or nested (JSON `data`, gRPC typed contents). */
  data?: unknown;
  /** Raw little-endian bytes (binary extension, gRPC raw_input_contents). */
  raw?: Uint8Array;
}

export interface InferRequest {
  model: string;
  /** Empty or undefined: the version the device chooses (A/B draws it). */
  version?: string;
  id?: string;
  inputs: InputTensor[];
  /** Requested outputs by name, in the order wanted; undefined: every output. */
  outputs?: string[];
  /** True once the client no longer waits (its deadline passed): the request is not run. */
  abandoned?: () => boolean;
  /** Aborts when the client goes away: the request leaves the model's queue. */
  signal?: AbortSignal;
}

export interface OutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  tensor: Tensor;
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  /** Which backend answered; for an ensemble, its members and their versions. */
  parameters: Record<string, string>;
  outputs: OutputTensor[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: ReturnType<typeof tensorMetadata>[];
  outputs: ReturnType<typeof tensorMetadata>[];
}

/** The protocol extensions served (REST: binary tensor data; both: the device's own parameters). */
export const EXTENSIONS = ['binary_tensor_data', 'parameters'];

export interface InferenceServiceOptions {
  maxElements: number;
  /** Why the agent is not ready (empty: ready). */
  notReady: () => string[];
}

const badInput = (model: string, problem: string): EdgeError => Errors.INPUT_INVALID(model, problem);

export class InferenceService {
  readonly #runtime: ModelRuntime;
  readonly #opts: InferenceServiceOptions;

  constructor(runtime: ModelRuntime, opts: InferenceServiceOptions) {
    this.#runtime = runtime;
    this.#opts = opts;
  }

  get runtime(): ModelRuntime {
    return this.#runtime;
  }

  ready(): boolean {
    return this.#opts.notReady().length === 0;
  }

  /** Why not ready, for the UNAVAILABLE / 503 answers. */
  notReady(): string {
    return this.#opts.notReady().join('; ');
  }

  serverMetadata(): { name: string; version: string; extensions: string[] } {
    return { name: 'edge-agent', version: AGENT_VERSION, extensions: EXTENSIONS };
  }

  /** Throws 404 for a model (or version) not held on this device. */
  modelMetadata(name: string, version?: string): ModelMetadata {
    const versions = this.#versions(name, version);
    const kind = this.#runtime.list().find((m) => m.name === name);
    const backend = kind?.kind === 'ensemble' ? 'ensemble' : String(kind?.backend ?? '');
    let inputs: IOSpec[] = [];
    let outputs: IOSpec[] = [];
    try {
      inputs = this.#runtime.inputSpecs(name);
      outputs = this.#runtime.outputSpecs(name);
    } catch (err) {
      // Configured but not loaded: the metadata says what is known (its name); infer says why.
      if (!(err instanceof EdgeError && err.statusCode === 503)) throw err;
    }
    return {
      name,
      versions,
      // Triton's platform names: onnxruntime_onnx for ONNX Runtime; ours for the rest.
      platform: backend === 'ort' ? 'onnxruntime_onnx' : backend === 'native' ? 'edge_int8' : backend === 'ensemble' ? 'ensemble' : 'edge',
      inputs: inputs.map(tensorMetadata),
      outputs: outputs.map(tensorMetadata),
    };
  }

  /** Throws 404 for a model not served; false while it (or that version) cannot answer. */
  modelReady(name: string, version?: string): boolean {
    const v = this.#runtime.versions(name);
    if (!v) throw this.#notFound(name);
    if (version) {
      if (!v.serving.includes(version) && !v.held.includes(version)) throw Errors.MODEL_VERSION_NOT_FOUND(name, version, v.serving, v.held);
      return v.serving.includes(version);
    }
    return v.serving.length > 0;
  }

  /** The versions listed in metadata: serving first, then held; `version` must be one of them. */
  #versions(name: string, version?: string): string[] {
    const v = this.#runtime.versions(name);
    if (!v) throw this.#notFound(name);
    const all = [...v.serving, ...v.held];
    if (version && !all.includes(version)) throw Errors.MODEL_VERSION_NOT_FOUND(name, version, v.serving, v.held);
    return all;
  }

  #notFound(name: string): EdgeError {
    return Errors.MODEL_NOT_FOUND(name, this.#runtime.list().map((m) => String(m.name)));
  }

  async infer(req: InferRequest): Promise<InferResponse> {
    const name = req.model;
    if (!this.#runtime.has(name)) throw this.#notFound(name);
    const specs = this.#runtime.inputSpecs(name);
    const outSpecs = this.#runtime.outputSpecs(name);
    const wanted = req.outputs;
    if (wanted) {
      for (const o of wanted) {
        if (!outSpecs.some((s) => s.name === o)) throw badInput(name, `unknown output ${JSON.stringify(o)}; the model gives ${outSpecs.map((s) => `"${s.name}"`).join(', ')}`);
      }
    }
    const inputs = decodeInputs(name, specs, req.inputs, this.#opts.maxElements);
    const result = await this.#runtime.infer(name, inputs, { version: req.version || undefined, abandoned: req.abandoned, signal: req.signal });
    const names = wanted?.length ? wanted : Object.keys(result.outputs);
    const parameters: Record<string, string> = { backend: result.backend };
    if (result.members) parameters.members = result.members.map((m) => `${m.model}@${m.version}:${m.backend}`).join(',');
    return {
      model_name: result.model,
      model_version: result.version,
      ...(req.id ? { id: req.id } : {}),
      parameters,
      outputs: names.map((n) => {
        const t = result.outputs[n]!;
        return { name: n, datatype: PROTOCOL_DATATYPE[t.dtype], shape: [...t.shape], tensor: t };
      }),
    };
  }
}

/** The model's inputs from the protocol's tensors: names, datatypes, shapes and sizes checked. */
export function decodeInputs(model: string, specs: IOSpec[], inputs: InputTensor[], maxElements: number): TensorMap {
  const takes = specs.map((s) => `"${s.name}" (${PROTOCOL_DATATYPE[s.dtype]}, shape ${formatShape(protocolShape(s.shape))})`).join(', ');
  if (!Array.isArray(inputs) || inputs.length === 0) throw badInput(model, `"inputs" must be a non-empty list of tensors; the model takes ${takes}`);
  const out: TensorMap = {};
  for (const [i, input] of inputs.entries()) {
    if (input === null || typeof input !== 'object') throw badInput(model, `inputs[${i}] must be an object with "name", "shape", "datatype" and "data"`);
    const inName = input.name;
    if (typeof inName !== 'string') throw badInput(model, `inputs[${i}]: "name" must be a string; the model takes ${takes}`);
    const spec = specs.find((s) => s.name === inName);
    if (!spec) throw badInput(model, `unknown input ${JSON.stringify(inName)}; the model takes ${takes}`);
    if (out[inName]) throw badInput(model, `input "${inName}" is given twice`);
    const expected = PROTOCOL_DATATYPE[spec.dtype];
    if (input.datatype !== expected) {
      const known = (PROTOCOL_DATATYPES as readonly unknown[]).includes(input.datatype);
      throw badInput(model, `input "${inName}": expected datatype ${expected} (shape ${formatShape(protocolShape(spec.shape))}), got ${JSON.stringify(input.datatype) ?? 'none'}${known ? '' : ` (the protocol's datatypes: ${PROTOCOL_DATATYPES.join(', ')})`}`);
    }
    try {
      const shape = checkShape(inName, input.shape, maxElements);
      if (input.raw !== undefined) {
        if (input.data !== undefined) throw new TensorInputError(`input "${inName}": give its values as data or as raw bytes, not both`);
        out[inName] = tensorFromBytes(spec, shape, input.raw, 'the raw content has');
      } else if (Array.isArray(input.data)) {
        const count = shape.reduce((a, b) => a * b, 1);
        out[inName] = tensorFromJson(spec, { shape, data: flatten(inName, input.data, shape.length, count) }, maxElements);
      } else {
        throw new TensorInputError(`input "${inName}": give its values as "data" (a flat or nested array), as binary data ("parameters": {"binary_data_size": N}) or, over gRPC, as contents or raw_input_contents`);
      }
    } catch (err) {
      if (err instanceof TensorInputError) throw badInput(model, err.message);
      throw err;
    }
  }
  return out;
}

function checkShape(name: string, v: unknown, maxElements: number): number[] {
  if (!Array.isArray(v) || v.length === 0 || v.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new TensorInputError(`input "${name}": "shape" must be a non-empty list of whole numbers >= 0, got ${JSON.stringify(v)?.slice(0, 60) ?? 'none'}`);
  }
  let n = 1;
  for (const d of v as number[]) {
    n *= d;
    if (n > maxElements) throw new TensorInputError(`input "${name}": shape ${formatShape(v as number[])} is more than the ${maxElements} elements allowed (runtime.maxElements)`);
  }
  return v as number[];
}

/** Nested data in row-major order, flattened; at most `depth` levels and `count` values. */
function flatten(name: string, data: unknown[], depth: number, count: number): unknown[] {
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (v: unknown, level: number): void => {
    if (!Array.isArray(v)) {
      out.push(v);
      return;
    }
    if (level >= depth) throw new TensorInputError(`input "${name}": "data" is nested deeper than its shape's ${depth} dimensions`);
    for (const x of v) {
      walk(x, level + 1);
      if (out.length > count) throw new TensorInputError(`input "${name}": "data" holds more than the ${count} values its shape does`);
    }
  };
  walk(data, 0);
  return out;
}
