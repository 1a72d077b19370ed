// Whether ONNX Runtime computes a quantized model exactly on this CPU, and the form in which
// it does (agent/onnx/int8-weights.ts explains the saturation and the uint8-weight form).
import { readFileSync } from 'node:fs';
import { encodeModel, type ModelProto } from '../onnx/model.js';
import { int8Weights, withUint8Weights, ORT_SAFE_WEIGHT } from '../onnx/int8-weights.js';
import { loadNative } from '../native.js';

export interface OrtCpu {
  /** ONNX Runtime's u8 x s8 kernels saturate at int16 on this CPU. */
  saturates: boolean;
  /** Why, in words (the CPU's features, or the override). */
  why: string;
}

let cached: OrtCpu | undefined;

/**
 * ONNX Runtime saturates on x86-64 without VNNI (it uses vpmaddubsw there); with AVX-512 VNNI
 * or AVX-VNNI, and on ARM, its int8 products are exact. EDGE_ORT_SATURATES=1|0 overrides the
 * detection (tests force it to see the behaviour of a CPU they do not run on).
 */
export function ortCpu(): OrtCpu {
  const forced = process.env.EDGE_ORT_SATURATES;
  if (forced === '1' || forced === '0') {
    return { saturates: forced === '1', why: `EDGE_ORT_SATURATES=${forced}` };
  }
  if (cached) return cached;
  if (process.arch !== 'x64') return (cached = { saturates: false, why: `${process.arch}: ONNX Runtime's int8 products are exact` });
  const features = cpuFeatureList();
  const vnni = features.some((f) => f === 'avx512vnni' || f === 'avx512_vnni' || f === 'avxvnni' || f === 'avx_vnni');
  cached = vnni
    ? { saturates: false, why: 'x86-64 with VNNI: ONNX Runtime\'s int8 products are exact' }
    : { saturates: true, why: `x86-64 without VNNI (${features.filter((f) => f.startsWith('avx')).join(', ') || 'no AVX'}): ONNX Runtime adds pairs of u8 x s8 products in saturating int16` };
  return cached;
}

/** CPU features from cpuid through the addon (what ONNX Runtime sees, also under qemu), else /proc/cpuinfo. */
function cpuFeatureList(): string[] {
  try {
    return loadNative().cpuFeatures().split(',').filter(Boolean);
  } catch {
    try {
      const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
      return flags ? flags[1].trim().split(/\s+/) : [];
    } catch {
      return [];
    }
  }
}

export interface OrtInt8Form {
  /** The model bytes to give ONNX Runtime. */
  bytes: Uint8Array;
  /** ONNX Runtime computes those bytes exactly (no int16 saturation). */
  exact: boolean;
  /** The model was rewritten to uint8 weights. */
  rewritten: boolean;
  /** What was decided, in words (empty for a model without int8 weights). */
  note: string;
}

/**
 * The form of a model ONNX Runtime should run on this CPU: the model itself where its int8
 * products are exact (no int8 weights, every weight within ±64, or a CPU that does not
 * saturate); otherwise the same model with uint8 weights, which it computes exactly.
 */
export function ortInt8Form(model: ModelProto, bytes: Uint8Array, cpu: OrtCpu = ortCpu()): OrtInt8Form {
  const w = int8Weights(model);
  if (w.tensors.length === 0) return { bytes, exact: true, rewritten: false, note: '' };
  if (w.wide.length === 0) return { bytes, exact: true, rewritten: false, note: `int8 weights within ±${ORT_SAFE_WEIGHT}: exact in ONNX Runtime on every CPU` };
  if (!cpu.saturates) return { bytes, exact: true, rewritten: false, note: `ONNX Runtime is exact here (${cpu.why})` };
  const u8 = withUint8Weights(model);
  if (!u8) return { bytes, exact: false, rewritten: false, note: `ONNX Runtime saturates on this CPU (${cpu.why}) and the model's weights cannot be rewritten` };
  return {
    bytes: encodeModel(u8),
    exact: true,
    rewritten: true,
    note: `${cpu.why}; ${w.wide.length} int8 weight tensors exceed ±${ORT_SAFE_WEIGHT} (up to ${w.maxAbs}), so ONNX Runtime runs them as uint8 weights, which it computes exactly`,
  };
}
