// `edge-model inspect`: what a model takes and gives, what it is made of, what one inference
// costs (multiply-accumulates of Conv/Gemm/MatMul and their quantized forms) and where it runs.
import { statSync } from 'node:fs';
import { attr, dataTypeName, dims, encodeModel, onnx, DataType, valueInfoShape, valueInfoType, type ModelProto, type TensorProto, type ValueInfoProto } from '../../agent/onnx/model.js';
import { constantsToInitializers, GraphIndex, realInputs, opsetOf } from './graph.js';
import { readModelFile } from './model-file.js';
import * as ort from 'onnxruntime-node';
import { ToolErrors } from './errors.js';
import type { PartitionReport } from '../../agent/runtime/partition/index.js';

export interface TensorInfo { name: string; dtype: string; shape: (number | string)[] }

export interface Inspection {
  file: string;
  bytes: number;
  opset: number;
  producer: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  operators: Record<string, number>;
  parameters: number;
  /** Parameters stored as 8-bit integers. */
  int8Parameters: number;
  /** Zero-valued parameters (pruning shows here). */
  zeroParameters: number;
  macs: number | null;
  macsNote?: string;
  backends: { ort: boolean | string; native: boolean | string };
  /**
   * For a quantized model the native engine runs only in part: how the partitioned backend
   * cuts it (which nodes go native, which to ONNX Runtime and why), or why it cannot.
   */
  partition?: PartitionReport | string;
}

const MAC_OPS: Record<string, { weight: number }> = {
  Conv: { weight: 1 }, QLinearConv: { weight: 3 }, ConvInteger: { weight: 1 },
  Gemm: { weight: 1 }, MatMul: { weight: 1 }, MatMulInteger: { weight: 1 }, QLinearMatMul: { weight: 3 },
};

function toInfo(v: ValueInfoProto): TensorInfo {
  return { name: v.name!, dtype: dataTypeName(valueInfoType(v)), shape: valueInfoShape(v) };
}

export async function inspectModel(file: string, shapeOverride?: number[]): Promise<Inspection> {
  const model = readModelFile(file);
  const g = model.graph!;
  const operators: Record<string, number> = {};
  for (const n of g.node!) {
    const k = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType!;
    operators[k] = (operators[k] ?? 0) + 1;
  }
  let parameters = 0;
  let int8Parameters = 0;
  let zeroParameters = 0;
  const inits = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
  for (const t of g.initializer ?? []) {
    const n = dims(t).reduce((a, b) => a * b, 1);
    parameters += n;
    if (t.dataType === DataType.INT8 || t.dataType === DataType.UINT8) int8Parameters += n;
    if (t.dataType === DataType.FLOAT && t.rawData && t.rawData.length === n * 4) {
      const v = new Float32Array(t.rawData.buffer.slice(t.rawData.byteOffset, t.rawData.byteOffset + t.rawData.byteLength));
      for (let i = 0; i < v.length; i++) if (v[i] === 0) zeroParameters++;
    } else if (t.dataType === DataType.INT8 && t.rawData) {
      for (let i = 0; i < t.rawData.length; i++) if (t.rawData[i] === 0) zeroParameters++;
    }
  }
  // Constant nodes hold weights in older exports.
  for (const n of g.node!) {
    if (n.opType !== 'Constant') continue;
    const t = attr(n, 'value');
    if (t && typeof t === 'object' && !Array.isArray(t)) parameters += dims(t as TensorProto).reduce((a, b) => a * b, 1);
  }
  const inputs = realInputs(g).map(toInfo);
  const outputs = (g.output ?? []).map(toInfo);

  const backends: Inspection['backends'] = { ort: true, native: false };
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
    await session.release();
  } catch (err) {
    backends.ort = `no: ${(err as Error).message.split('\n')[0]}`;
  }
  backends.native = await nativeVerdict(model);

  const partition = backends.ort === true && backends.native !== true ? await partitionOf(model, inputs, shapeOverride) : undefined;
  const { macs, note } = backends.ort === true ? await countMacs(model, inputs, inits, shapeOverride) : { macs: null, note: 'ONNX Runtime cannot load the model' };
  return {
    file, bytes: statSync(file).size, opset: opsetOf(model), producer: model.producerName ?? '',
    inputs, outputs, operators, parameters, int8Parameters, zeroParameters, macs, macsNote: note, backends,
    ...(partition === undefined ? {} : { partition }),
  };
}

/** The partitioned backend's cut of a quantized model (undefined for a float model: nothing to cut at). */
async function partitionOf(model: ModelProto, inputs: TensorInfo[], shapeOverride?: number[]): Promise<PartitionReport | string | undefined> {
  if (!model.graph!.node!.some((n) => n.opType === 'QuantizeLinear' || n.opType?.startsWith('QLinear'))) return undefined;
  let part: { describePartition: (m: ModelProto, shapes?: Record<string, number[]>) => Promise<PartitionReport> };
  try {
    part = await import('../../agent/runtime/partition/index.js');
  } catch {
    return 'unknown: the partitioner is not part of this build';
  }
  try {
    return await part.describePartition(model, shapeOverride && inputs[0] ? { [inputs[0].name]: shapeOverride } : undefined);
  } catch (err) {
    return `no: ${(err as Error).message.split('\n')[0]}`;
  }
}

/** Asks the native engine's own compiler (when that part of the project is present). */
async function nativeVerdict(model: ModelProto): Promise<boolean | string> {
  let native: { canRunNatively?: (m: ModelProto) => { ok: boolean; unsupported: string[] } };
  try {
    native = (await import('../../agent/runtime/native/index.js')) as typeof native;
  } catch {
    return 'unknown: the native engine is not part of this build';
  }
  if (!native.canRunNatively) return 'unknown: the native engine has no support check';
  const v = native.canRunNatively(model);
  return v.ok ? true : `no: ${v.unsupported.join('; ')}`;
}

/** Runs one inference with the product layers' outputs exposed to learn their shapes. */
async function countMacs(model: ModelProto, inputs: TensorInfo[], inits: Map<string, TensorProto>, shapeOverride?: number[]): Promise<{ macs: number | null; note?: string }> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [i, inp] of inputs.entries()) {
    let shape: number[];
    if (shapeOverride && i === 0) shape = shapeOverride;
    else {
      const dynamic = inp.shape.map((d, k) => (typeof d === 'number' && d > 0 ? d : k === 0 ? 1 : -1));
      if (dynamic.includes(-1)) return { macs: null, note: `input ${inp.name} has dynamic dimensions ${JSON.stringify(inp.shape)}; pass --shape to count MACs` };
      shape = dynamic;
    }
    const n = shape.reduce((a, b) => a * b, 1);
    const t = inp.dtype;
    if (t === 'float') feeds[inp.name] = new ort.Tensor('float32', new Float32Array(n), shape);
    else if (t === 'int64') feeds[inp.name] = new ort.Tensor('int64', new BigInt64Array(n), shape);
    else if (t === 'uint8') feeds[inp.name] = new ort.Tensor('uint8', new Uint8Array(n), shape);
    else return { macs: null, note: `input ${inp.name} is ${t}` };
  }
  const probe = onnx.ModelProto.decode(encodeModel(model));
  // Weights may sit in Constant nodes (old exporters) or behind a DequantizeLinear (QDQ).
  constantsToInitializers(new GraphIndex(probe.graph!));
  for (const t of probe.graph!.initializer ?? []) inits.set(t.name!, t);
  for (const n of probe.graph!.node!) if (n.opType === 'DequantizeLinear' && inits.has(n.input![0])) inits.set(n.output![0], inits.get(n.input![0])!);
  const targets = probe.graph!.node!.filter((n) => MAC_OPS[n.opType!] && inits.has(n.input![MAC_OPS[n.opType!].weight]));
  const outs = new Set(probe.graph!.output!.map((o) => o.name));
  // Exposed without a type: quantized layers give uint8/int32, and ORT infers what it is.
  for (const n of targets) if (!outs.has(n.output![0])) probe.graph!.output!.push(onnx.ValueInfoProto.create({ name: n.output![0] }));
  let result: ort.InferenceSession.OnnxValueMapType;
  try {
    const s = await ort.InferenceSession.create(encodeModel(probe), { logSeverityLevel: 3 });
    result = await s.run(feeds);
    await s.release();
  } catch (err) {
    return { macs: null, note: `could not run the model to measure shapes: ${(err as Error).message.split('\n')[0]}` };
  }
  let macs = 0;
  for (const n of targets) {
    const w = dims(inits.get(n.input![MAC_OPS[n.opType!].weight])!);
    const outElems = result[n.output![0]].dims.reduce((a, b) => a * b, 1);
    if (n.opType!.includes('Conv')) macs += outElems * w.slice(1).reduce((a, b) => a * b, 1);
    else {
      const transB = n.opType === 'Gemm' && attr(n, 'transB');
      macs += outElems * (transB ? w[1] : w[0]);
    }
  }
  return { macs };
}

export function formatInspection(i: Inspection): string {
  const shape = (s: (number | string)[]) => `[${s.map((d) => (typeof d === 'string' ? d || '?' : d)).join(', ')}]`;
  const lines = [
    `model      ${i.file}`,
    `size       ${i.bytes} bytes (${(i.bytes / 1024).toFixed(1)} KiB)`,
    `opset      ${i.opset}${i.producer ? `  producer ${i.producer}` : ''}`,
    'inputs',
    ...i.inputs.map((t) => `  ${t.name}  ${t.dtype} ${shape(t.shape)}`),
    'outputs',
    ...i.outputs.map((t) => `  ${t.name}  ${t.dtype} ${shape(t.shape)}`),
    'operators',
    ...Object.entries(i.operators).sort((a, b) => b[1] - a[1]).map(([k, v]) => `  ${k.padEnd(24)} ${v}`),
    `parameters ${i.parameters} (${i.int8Parameters} 8-bit, ${i.zeroParameters} zero)`,
    `MACs       ${i.macs === null ? `unknown (${i.macsNote})` : `${i.macs} per inference`}`,
    `backends   ort: ${i.backends.ort === true ? 'yes' : i.backends.ort}; native: ${i.backends.native === true ? 'yes' : i.backends.native}`,
    ...formatPartition(i.partition),
  ];
  return lines.join('\n');
}

function formatPartition(p: Inspection['partition']): string[] {
  if (p === undefined) return [];
  if (typeof p === 'string') return [`partition  ${p}`];
  const ops = (o: Record<string, number>) => Object.entries(o).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  return [
    `partition  ${p.nativeNodes} nodes native, ${p.ortNodes} on ONNX Runtime, in ${p.segments.length} segments`,
    ...p.segments.map((s, k) => `  ${String(k).padStart(2)} ${s.side.padEnd(6)} ${String(s.nodes).padStart(4)} nodes  ${ops(s.operators)}`),
    `  unsupported operators: ${p.unsupported.join(', ') || 'none'}`,
    ...p.refused.map((r) => `  refused by the engine: ${r}`),
  ];
}

export function parseShape(s: string): number[] {
  const parts = s.split(/[x,]/).map((p) => Number(p.trim()));
  if (parts.length === 0 || parts.some((p) => !Number.isInteger(p) || p <= 0)) {
    throw ToolErrors.USAGE(`--shape "${s}" is not a shape; expected dimensions like 1x3x48x192`);
  }
  return parts;
}
