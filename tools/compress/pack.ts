// `edge-model pack MODEL --name N --version V`: a model package (agent/models: manifest.json
// with the sha256 of every file, docs/model-package.md) with the model's inputs and outputs,
// how it was quantized, optional evaluation results, and a drift reference profile built from
// the calibration data (agent/drift/reference.ts). `--archive` also writes the .edgepkg file.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { encodeModel, valueInfoShape, valueInfoType, dataTypeName, type ModelProto } from '../../agent/onnx/model.js';
import { buildReference, type DriftSample } from '../../agent/drift/reference.js';
import type { DriftSpec } from '../../agent/drift/spec.js';
import type { Tensor } from '../../agent/runtime/backend.js';
import { manifestProblems, type Manifest } from '../../agent/models/manifest.js';
import { packArchive } from '../../agent/models/archive.js';
import { writePackage, type ManifestDraft } from '../../agent/models/write.js';
import { chunks, listNpyFiles, loadBatch, singleInput } from './dataset.js';
import { EdgeError, Errors, ToolErrors } from './errors.js';
import { evaluateModel } from './evaluate.js';
import { realInputs } from './graph.js';
import type { Metric } from './metrics.js';
import { readModelFile } from './model-file.js';
import { floatTensor, openSession, runSession } from './ort-session.js';

export interface PackOptions {
  name: string;
  version: string;
  out: string;
  task?: string;
  description?: string;
  calib?: string;
  data?: string;
  labels?: string;
  metric?: Metric;
  archive?: boolean;
  /** A manifest.json (e.g. the fp32 package's) to copy task, description, pre- and postprocessing from. */
  template?: string;
}

const DTYPES: Record<string, Manifest['inputs'][number]['dtype']> = {
  float: 'float32', uint8: 'uint8', int8: 'int8', int32: 'int32', int64: 'int64',
};

function tensorSpecs(list: ReturnType<typeof realInputs>, what: string): Manifest['inputs'] {
  return list.map((v) => {
    const dtype = DTYPES[dataTypeName(valueInfoType(v))];
    if (!dtype) throw ToolErrors.MODEL_UNSUPPORTED(`${what} ${v.name} is ${dataTypeName(valueInfoType(v))}; packages carry float32, uint8, int8, int32 or int64 tensors`);
    const shape = valueInfoShape(v).map((d, i) => {
      if (typeof d === 'number' && d > 0) return d;
      // Symbolic names must be identifiers in the manifest (exporters write "p2o.Dim.0", "").
      const s = typeof d === 'string' && d ? d.replace(/[^A-Za-z0-9_]/g, '_') : i === 0 ? 'N' : `d${i}`;
      return /^[A-Za-z_]/.test(s) ? s : `d_${s}`;
    });
    return { name: v.name!, dtype, shape };
  });
}

export function quantizationOf(model: ModelProto): Manifest['quantization'] {
  const ops = new Set((model.graph!.node ?? []).map((n) => n.opType));
  if (ops.has('DynamicQuantizeLinear')) return { scheme: 'qdq-dynamic', precision: 'int8' };
  if (ops.has('QLinearConv') || ops.has('QLinearMatMul') || ops.has('MatMulInteger')) return { scheme: 'qoperator', precision: 'int8' };
  if (ops.has('QuantizeLinear') || ops.has('DequantizeLinear')) return { scheme: 'qdq-static', precision: 'int8' };
  return { scheme: 'none', precision: 'float32' };
}

/** Runs the model over the calibration set and builds the drift reference from inputs and outputs. */
async function driftReference(model: ModelProto, modelFile: string, dir: string): Promise<Record<string, unknown>> {
  const input = singleInput(model, modelFile);
  const files = listNpyFiles(dir, 'calibration');
  const session = await openSession(encodeModel(model), modelFile);
  const out = session.outputNames[0];
  const samples: DriftSample[] = [];
  let lastDims: readonly number[] = [];
  for (const f of files) {
    for (const b of chunks(loadBatch(f, input), 64)) {
      const r = await runSession(session, { [input.name]: floatTensor(b.data, b.shape) }, `drift reference run on ${f}`, [out]);
      lastDims = r[out].dims;
      const outT: Tensor = { dtype: 'float32', shape: [...r[out].dims], data: Float32Array.from(r[out].data as Float32Array) };
      samples.push({ inputs: { [input.name]: { dtype: 'float32', shape: b.shape, data: Float32Array.from(b.data) } }, outputs: { [out]: outT } });
    }
  }
  await session.release();
  const rank = input.shape.length;
  const classes = lastDims[lastDims.length - 1] ?? 1;
  const spec: DriftSpec = {
    // A 128-entry quantile sketch per feature: enough for KS and PSI on a device window, and it
    // keeps the reference from outweighing a small int8 model in its own package.
    referenceSketchK: 128,
    inputs: [{ kind: 'image', tensor: input.name, channelAxis: rank === 4 ? 1 : null }],
    outputs: classes > 1 ? [{ kind: 'class', tensor: out }, { kind: 'confidence', tensor: out, softmax: !isProbability(samples, out) }] : [{ kind: 'numeric', tensor: out }],
  };
  return buildReference(samples, spec) as unknown as Record<string, unknown>;
}

/** True when every row of the output already sums to 1 (a softmax inside the model). */
function isProbability(samples: DriftSample[], out: string): boolean {
  const t = samples[0].outputs![out];
  const w = t.shape[t.shape.length - 1];
  const d = t.data as Float32Array;
  for (let r = 0; r + w <= d.length; r += w) {
    let s = 0;
    for (let k = 0; k < w; k++) {
      if (d[r + k] < 0) return false;
      s += d[r + k];
    }
    if (Math.abs(s - 1) > 1e-3) return false;
  }
  return true;
}

function readTemplate(file: string): Partial<Manifest> {
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as Partial<Manifest>;
    if (typeof m !== 'object' || m === null) throw new Error('not a JSON object');
    return m;
  } catch (err) {
    throw Errors.PACKAGE_INVALID(`--template ${file}`, `expected a package manifest.json (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export interface PackReport { dir: string; archive?: string; manifest: Manifest }

export async function packModel(modelFile: string, opts: PackOptions): Promise<PackReport> {
  const model = readModelFile(modelFile);
  if (existsSync(opts.out) && readdirSync(opts.out).length > 0) {
    throw Errors.PACKAGE_INVALID(opts.out, 'already exists and is not empty; choose a new --out folder');
  }
  const template = opts.template ? readTemplate(opts.template) : {};
  const draft: ManifestDraft = {
    name: opts.name,
    version: opts.version,
    task: opts.task ?? template.task ?? 'classification',
    ...(opts.description ?? template.description ? { description: opts.description ?? template.description } : {}),
    ...(template.preprocessing ? { preprocessing: template.preprocessing } : {}),
    ...(template.postprocessing ? { postprocessing: template.postprocessing } : {}),
    inputs: tensorSpecs(realInputs(model.graph!), 'input'),
    outputs: tensorSpecs(model.graph!.output ?? [], 'output'),
    quantization: { ...quantizationOf(model), producer: model.producerName || 'unknown' } as Manifest['quantization'],
  };
  // Check the caller's fields before the long steps (the file list is filled in at the end).
  const early = manifestProblems({ format: 1, ...draft, files: {} }).filter((p) => !/files/.test(p));
  if (early.length) throw Errors.PACKAGE_INVALID(modelFile, `cannot pack it: ${early.join('; ')}`);
  if (opts.data || opts.labels) {
    if (!opts.data || !opts.labels) throw ToolErrors.USAGE('evaluation needs both --data DIR and --labels FILE');
    const ev = await evaluateModel(modelFile, opts.data, opts.labels, opts.metric ?? 'accuracy');
    draft.evaluation = { dataset: opts.data, metric: ev.metric, value: ev.value, samples: ev.samples, measuredAt: new Date().toISOString(), metrics: ev.all } as Manifest['evaluation'];
  }
  if (opts.calib) draft.drift = await driftReference(model, modelFile, opts.calib);
  let manifest: Manifest;
  try {
    manifest = writePackage(opts.out, draft, { 'model.onnx': readFileSync(modelFile) });
  } catch (err) {
    throw err instanceof EdgeError ? err : Errors.PACKAGE_INVALID(opts.out, (err as Error).message);
  }
  let archive: string | undefined;
  if (opts.archive) {
    archive = `${opts.out.replace(/\/+$/, '')}.edgepkg`;
    await packArchive(opts.out, archive);
  }
  return { dir: opts.out, archive, manifest };
}
