// Which backend runs a model version. 'auto' takes the native int8 engine when it is built
// and supports the whole graph: without loading ONNX Runtime at all when a warm-up run costs
// under COMPARE_ABOVE_MS, else timed against ONNX Runtime and the faster kept (the exact one
// where ONNX Runtime saturates on this CPU); when the engine runs
// only part of it, 'auto' opens both the partitioned backend and ONNX Runtime, times each at
// warm-up and keeps the faster (partition.ts); ONNX Runtime otherwise. The choice and its
// reason are kept for the log and /v1/status.
import type { ModelPackage } from '../models/package.js';
import { describe, Errors } from '../errors.js';
import type { Backend, BackendKind } from './backend.js';
import { ortCpu, ortInt8Form } from './ort-int8.js';
import { int8Weights } from '../onnx/int8-weights.js';
// ONNX Runtime is imported only when a model needs it: a native-only device never maps its
// shared library (about 20-30 MB of RSS; docs/reliability.md, footprint).
import type { OrtOptions } from './ort-backend.js';
import { fastestOf, openPartitioned, timeAtWarmUp } from './partition-choice.js';

export type BackendRequest = 'auto' | BackendKind;

export interface BackendChoice {
  requested: BackendRequest;
  chosen: BackendKind;
  reason: string;
  /** Set when the chosen backend is known to compute this model inexactly here. */
  warning?: string;
}

/** What the native engine module (agent/runtime/native/index.ts) exports. */
interface NativeModule {
  canRunNatively(model: ModelPackage['proto']): boolean | { ok: boolean; reason?: string; unsupported?: string[] };
  NativeBackend: { load(model: ModelPackage['proto'], opts: { threads?: number; name?: string }): Backend };
}

let nativeModule: Promise<NativeModule | string> | undefined;

/** The native engine's module, or why it is not available. */
export function loadNativeModule(): Promise<NativeModule | string> {
  nativeModule ??= import('./native/index.js' as string).then(
    (m: Partial<NativeModule>) => (m.NativeBackend && m.canRunNatively ? (m as NativeModule) : 'the native engine module does not export NativeBackend and canRunNatively'),
    (err: unknown) => `the native engine is not available (${describe(err).split('\n')[0]})`,
  );
  return nativeModule;
}

function nativeVerdict(r: ReturnType<NativeModule['canRunNatively']>): { ok: boolean; reason: string } {
  if (typeof r === 'boolean') return { ok: r, reason: r ? 'every operator is supported' : 'the graph is not int8 or uses operators the engine lacks' };
  return { ok: r.ok, reason: r.reason ?? (r.unsupported?.length ? `unsupported operators: ${r.unsupported.join(', ')}` : r.ok ? 'every operator is supported' : 'not supported') };
}

export interface OpenedBackend {
  backend: Backend;
  choice: BackendChoice;
}

/** Beside an auto choice of the native engine: what ONNX Runtime would have done with the model here. */
function ortNote(pkg: ModelPackage): string {
  const cpu = ortCpu();
  if (!cpu.saturates) return '';
  return int8Weights(pkg.proto).wide.length > 0 ? `; the native engine is exact, while ONNX Runtime saturates int8 products on this CPU (${cpu.why})` : '';
}

export async function openBackend(pkg: ModelPackage, requested: BackendRequest, ort: OrtOptions): Promise<OpenedBackend> {
  const { inputs, outputs } = pkg.manifest;
  const openOrt = async (reason: string): Promise<OpenedBackend> => {
    const { OrtBackend } = await import('./ort-backend.js');
    const form = ortInt8Form(pkg.proto, pkg.model);
    if (form.rewritten) {
      try {
        return { backend: await OrtBackend.create(form.bytes, inputs, outputs, ort), choice: { requested, chosen: 'ort', reason: `${reason}; ${form.note}` } };
      } catch (err) {
        form.note = `ONNX Runtime saturates int8 products on this CPU (${ortCpu().why}) and refused the model with uint8 weights (${describe(err).split('\n')[0]}): its results may be off by many quantization steps; ` +
          're-quantize with `edge-model quantize --target ort-x86` or run it on the native engine';
        form.exact = false;
      }
    }
    const backend = await OrtBackend.create(pkg.model, inputs, outputs, ort);
    return { backend, choice: { requested, chosen: 'ort', reason: form.note ? `${reason}; ${form.note}` : reason, ...(form.exact ? {} : { warning: form.note }) } };
  };
  if (requested === 'ort') return openOrt('configured');
  if (requested === 'partitioned') return openPartitioned(pkg, ort);
  const native = await loadNativeModule();
  if (typeof native === 'string') {
    if (requested === 'native') throw Errors.NATIVE_UNAVAILABLE(`${pkg.dir}: backend "native" requested but ${native}`);
    return openOrt(`auto: ${native}`);
  }
  let verdict: { ok: boolean; reason: string };
  try {
    verdict = nativeVerdict(native.canRunNatively(pkg.proto));
  } catch (err) {
    verdict = { ok: false, reason: describe(err) };
  }
  if (!verdict.ok) {
    if (requested === 'native') {
      throw Errors.MODEL_UNSUPPORTED_OPS(pkg.dir, [verdict.reason]);
    }
    return fastestOf(pkg, `auto: native engine declined (${verdict.reason})`, openOrt, ort);
  }
  try {
    // runtime.threads reaches the engine as is: 0 = every core. The engine splits only the
    // convolutions and GEMMs big enough to pay for waking its pool, so small models stay on one.
    const backend = native.NativeBackend.load(pkg.proto, { threads: ort.threads, name: `${pkg.manifest.name}@${pkg.manifest.version}` });
    if (requested === 'native') return { backend, choice: { requested, chosen: 'native', reason: 'configured' } };
    return await nativeOrOrt(pkg, backend, `auto: ${verdict.reason}${ortNote(pkg)}`, openOrt);
  } catch (err) {
    if (requested === 'native') throw err;
    return openOrt(`auto: native engine failed to load the model (${describe(err)})`);
  }
}

/**
 * Below this warm-up time (ms) 'auto' keeps the native engine without opening ONNX Runtime: a
 * model this cheap is dominated by ONNX Runtime's fixed cost per run, and a native-only device
 * never maps ONNX Runtime's library.
 */
export const COMPARE_ABOVE_MS = 2;

/**
 * 'auto' on a model the engine runs whole: a costly one is timed against ONNX Runtime at
 * warm-up and the faster kept, unless ONNX Runtime is inexact here (its int8 products saturate
 * on this CPU), when the exact engine stays whatever the times.
 */
async function nativeOrOrt(pkg: ModelPackage, backend: Backend, why: string, openOrt: (reason: string) => Promise<OpenedBackend>): Promise<OpenedBackend> {
  const keep = (reason: string): OpenedBackend => ({ backend, choice: { requested: 'auto', chosen: 'native', reason } });
  const nativeMs = await timeAtWarmUp(backend);
  if (nativeMs <= COMPARE_ABOVE_MS) return keep(why);
  let other: OpenedBackend;
  try {
    other = await openOrt(why);
  } catch (err) {
    return keep(`${why}; native ${nativeMs.toFixed(2)} ms at warm-up; ONNX Runtime failed to load the model (${describe(err).split('\n')[0]})`);
  }
  if (other.choice.warning) {
    await other.backend.dispose();
    return keep(`${why}; native ${nativeMs.toFixed(2)} ms at warm-up; ONNX Runtime not taken: ${other.choice.warning}`);
  }
  let ortMs: number;
  try {
    ortMs = await timeAtWarmUp(other.backend);
  } catch (err) {
    await other.backend.dispose();
    return keep(`${why}; ONNX Runtime failed its warm-up run (${describe(err).split('\n')[0]})`);
  }
  const measured = `measured at warm-up: native ${nativeMs.toFixed(2)} ms, ONNX Runtime ${ortMs.toFixed(2)} ms`;
  if (nativeMs <= ortMs) {
    await other.backend.dispose();
    return keep(`${why}; ${measured}: native is faster`);
  }
  await backend.dispose();
  return { backend: other.backend, choice: { ...other.choice, reason: `${why}; ${measured}: ONNX Runtime is faster` } };
}
