// The partitioned backend in the runtime's choice: opening it for `backend: partitioned`, and
// for 'auto' on a model the engine runs only in part, timing it against ONNX Runtime at
// warm-up and keeping the faster. The measured figures go into the reason (log, /v1/status).
import type { ModelPackage } from '../models/package.js';
import { describe, Errors } from '../errors.js';
import type { Backend, IOSpec, Tensor, TensorMap } from './backend.js';
import type { OpenedBackend } from './choose.js';
import type { OrtOptions } from './ort-backend.js';
import type { PartitionedBackend } from './partition/index.js';

/** Fixed input shapes from the manifest where it has them (the batch at 1). */
function manifestShapes(inputs: IOSpec[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const i of inputs) {
    const rest = i.shape.slice(1);
    if (i.shape.length && rest.every((d) => typeof d === 'number' && d > 0)) out[i.name] = [1, ...(rest as number[])];
  }
  return out;
}

async function loadPartitioned(pkg: ModelPackage, ort: OrtOptions): Promise<PartitionedBackend> {
  const { PartitionedBackend } = await import('./partition/index.js');
  return PartitionedBackend.load(pkg.proto, {
    name: `${pkg.manifest.name}@${pkg.manifest.version}`, threads: ort.threads, graphOptimizationLevel: ort.graphOptimizationLevel,
    inputShapes: manifestShapes(pkg.manifest.inputs),
  });
}

/** What the partition is, in words: "412 of 455 nodes native; on ONNX Runtime: Softmax". */
export function partitionSummary(b: PartitionedBackend): string {
  const p = b.partition;
  const native = p.nodes.filter((n) => n.side === 'native').length;
  const ortOps = [...p.unsupported, ...p.refused.map((r) => `refused: ${r}`)];
  return `${native} of ${p.nodes.length} nodes native in ${p.segments.filter((s) => s.side === 'native').length} segments; on ONNX Runtime: ${ortOps.join('; ') || 'nothing'}`;
}

export async function openPartitioned(pkg: ModelPackage, ort: OrtOptions): Promise<OpenedBackend> {
  const native = await import('./native/index.js').catch((err: unknown) => describe(err).split('\n')[0]);
  if (typeof native === 'string') throw Errors.NATIVE_UNAVAILABLE(`${pkg.dir}: backend "partitioned" requested but the native engine is not available (${native})`);
  const backend = await loadPartitioned(pkg, ort);
  const warning = backend.ortWarning;
  return { backend, choice: { requested: 'partitioned', chosen: 'partitioned', reason: `configured; ${partitionSummary(backend)}`, ...(warning ? { warning } : {}) } };
}

/** Median latency of a few batch-1 runs on zeros, in milliseconds (after one untimed run). */
export async function timeAtWarmUp(b: Backend, runs = 5): Promise<number> {
  const feeds: TensorMap = {};
  for (const i of b.inputs) {
    const shape = i.shape.map((d) => (typeof d === 'number' ? d : 1));
    const n = shape.reduce((a, c) => a * c, 1);
    const data: Tensor['data'] = i.dtype === 'float32' ? new Float32Array(n) : i.dtype === 'uint8' ? new Uint8Array(n)
      : i.dtype === 'int8' ? new Int8Array(n) : i.dtype === 'int32' ? new Int32Array(n) : new BigInt64Array(n);
    feeds[i.name] = { dtype: i.dtype, shape, data };
  }
  await b.run(feeds);
  const times: number[] = [];
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    await b.run(feeds);
    times.push(performance.now() - t0);
  }
  times.sort((a, c) => a - c);
  return times[times.length >> 1];
}

/**
 * 'auto' for a model the engine runs only in part: the partitioned backend and ONNX Runtime
 * both opened and timed; the faster stays, the other is released. A backend that computes the
 * model inexactly on this CPU (a warning) only wins when both are inexact.
 */
export async function fastestOf(pkg: ModelPackage, why: string, openOrt: (reason: string) => Promise<OpenedBackend>, ort: OrtOptions): Promise<OpenedBackend> {
  let part: PartitionedBackend;
  try {
    part = await loadPartitioned(pkg, ort);
  } catch (err) {
    return openOrt(`${why}; no partition (${describe(err).split('\n')[0]})`);
  }
  let ortOpened: OpenedBackend;
  try {
    ortOpened = await openOrt(why);
  } catch (err) {
    const warning = part.ortWarning;
    return { backend: part, choice: { requested: 'auto', chosen: 'partitioned', reason: `${why}; ${partitionSummary(part)}; ONNX Runtime alone failed to load the model (${describe(err).split('\n')[0]})`, ...(warning ? { warning } : {}) } };
  }
  try {
    const partMs = await timeAtWarmUp(part);
    const ortMs = await timeAtWarmUp(ortOpened.backend);
    const partWarning = part.ortWarning;
    const partExact = !partWarning;
    const ortExact = !ortOpened.choice.warning;
    const pickPart = partExact !== ortExact ? partExact : partMs <= ortMs;
    const measured = `measured at warm-up: partitioned ${partMs.toFixed(2)} ms (${partitionSummary(part)}), ONNX Runtime ${ortMs.toFixed(2)} ms`;
    const because = partExact !== ortExact ? `the ${pickPart ? 'partitioned backend' : 'ONNX Runtime'} is the exact one here` : `${pickPart ? 'partitioned' : 'ONNX Runtime'} is faster`;
    if (pickPart) {
      await ortOpened.backend.dispose();
      return { backend: part, choice: { requested: 'auto', chosen: 'partitioned', reason: `${why}; ${measured}: ${because}`, ...(partWarning ? { warning: partWarning } : {}) } };
    }
    await part.dispose();
    return { backend: ortOpened.backend, choice: { ...ortOpened.choice, reason: `${ortOpened.choice.reason}; ${measured}: ${because}` } };
  } catch (err) {
    await part.dispose().catch(() => undefined);
    await ortOpened.backend.dispose().catch(() => undefined);
    throw err;
  }
}
