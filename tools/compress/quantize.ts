// `edge-model quantize`: read, canonicalize (constants, opset 13), fold BatchNorm, then static
// (calibrated) or dynamic quantization; the result is checked by loading it in ONNX Runtime.
import { statSync } from 'node:fs';
import { encodeModel, type ModelProto } from '../../agent/onnx/model.js';
import { withUint8Weights } from '../../agent/onnx/int8-weights.js';
import type { QuantTarget } from './targets.js';
import { calibrate, type RangeMethod } from './calibrate.js';
import { singleInput } from './dataset.js';
import { ToolErrors } from './errors.js';
import { foldBatchNorms } from './fold-batchnorm.js';
import { canonicalize } from './graph.js';
import { simplify, type SimplifyReport } from './simplify.js';
import { liveIntervals, narrowSaturatedRanges } from './saturating-ranges.js';
import { depthwisePairs, equalizeDepthwise } from './equalize-depthwise.js';
import { foldAffines } from './fold-affine.js';
import { readModelFile, writeModelFile } from './model-file.js';
import { openSession } from './ort-session.js';
import { applyDynamic } from './quantize-dynamic.js';
import { applyStatic, planStatic, type QuantFormat } from './quantize-static.js';
import { widenRange, type ActivationBits, type WeightBits } from './quant-math.js';

export interface QuantizeOptions {
  calib?: string;
  dynamic?: boolean;
  perChannel: boolean;
  method: RangeMethod;
  percentile?: number;
  format: QuantFormat;
  /** Fold the average error of the rounded weights into the bias (default true). */
  biasCorrection?: boolean;
  /** Node names (or output tensor names) to keep in float. */
  exclude?: string[];
  /** What will run the model (how its weights are stored); default 'auto'. */
  target?: QuantTarget;
  /**
   * 7: weights within [-63, 63] (depthwise convolutions keep 8 bits), so the native engine's
   * AVX2 kernel runs them with vpmaddubsw, exactly, on x86 CPUs without VNNI. Default 8.
   */
  weightBits?: WeightBits;
  /**
   * 16: activations uint16 ("W8A16"; weights stay 8 bits), for models whose accuracy 8-bit
   * activations cannot hold (PP-OCRv4 rec). ONNX Runtime runs them; the native engine runs the
   * CNN ops on them (Conv, Gemm, Add, GlobalAveragePool, reshapes). Default 8.
   */
  activationBits?: ActivationBits;
  /** Calibrated activation ranges are widened this many times about zero (default 2 with 16 bits, else 1). */
  rangeHeadroom?: number;
}

export interface TargetChoice {
  target: QuantTarget;
  weights: 'int8' | 'uint8';
  why: string;
}

export interface QuantizeReport {
  input: string;
  output: string;
  mode: 'static' | 'dynamic';
  weightBits: WeightBits;
  activationBits: ActivationBits;
  format?: QuantFormat;
  method?: RangeMethod;
  foldedBatchNorms: number;
  /** Scalar/per-channel Mul and Add folded into the Conv beside them (static only). */
  foldedAffines?: number;
  /** Conv -> depthwise Conv pairs whose channels were equalized (static only). */
  equalizedDepthwise?: number;
  simplified: SimplifyReport;
  quantized: Record<string, number>;
  floatOps?: Record<string, number>;
  calibration?: { files: number; samples: number; tensors: number };
  /** How the weights were stored for the target, and why. */
  target: TargetChoice;
  bytesBefore: number;
  bytesAfter: number;
}

const QUANTIZED_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'QLinearConv', 'QLinearMatMul', 'MatMulInteger', 'ConvInteger']);

export async function quantizeFile(input: string, output: string, opts: QuantizeOptions): Promise<QuantizeReport> {
  const weightBits = opts.weightBits ?? 8;
  if (weightBits !== 7 && weightBits !== 8) throw ToolErrors.USAGE(`--weight-bits must be 7 or 8 (got ${String(weightBits)})`);
  const activationBits = opts.activationBits ?? 8;
  if (activationBits !== 8 && activationBits !== 16) throw ToolErrors.USAGE(`--activation-bits must be 8 or 16 (got ${String(activationBits)})`);
  const headroom = opts.rangeHeadroom ?? (activationBits === 16 ? 2 : 1);
  if (!(headroom >= 1 && headroom <= 64)) throw ToolErrors.USAGE(`--range-headroom must be a number from 1 to 64 (got ${String(opts.rangeHeadroom)})`);
  if (activationBits === 16) {
    if (opts.dynamic) throw ToolErrors.USAGE('--activation-bits 16 is for static quantization (--calib); --dynamic quantizes activations to 8 bits at run time');
    if (opts.format === 'qoperator') throw ToolErrors.USAGE('16-bit activations are written as QuantizeLinear/DequantizeLinear only (--format qdq); QLinearConv takes 8 bits');
  }
  const model = readModelFile(input);
  const already = (model.graph?.node ?? []).filter((n) => QUANTIZED_OPS.has(n.opType ?? '')).length;
  if (already > 0) {
    throw ToolErrors.MODEL_UNSUPPORTED(`${input} is already quantized (${already} QuantizeLinear/DequantizeLinear/QLinear/Integer operators); quantize the fp32 model it was made from`);
  }
  const bytesBefore = statSync(input).size;
  const g = canonicalize(model);
  const simplified = simplify(model, g);
  const folded = foldBatchNorms(g);
  let report: Omit<QuantizeReport, 'bytesAfter' | 'target' | 'weightBits' | 'activationBits'>;
  if (opts.dynamic) {
    const { quantized } = applyDynamic(g, opts.perChannel, weightBits);
    if (Object.keys(quantized).length === 0) {
      throw ToolErrors.MODEL_UNSUPPORTED(`${input} has no MatMul or Gemm with a constant weight; dynamic quantization has nothing to do (use static quantization with --calib for CNNs)`);
    }
    report = { input, output, mode: 'dynamic', foldedBatchNorms: folded, simplified, quantized, bytesBefore };
  } else {
    if (!opts.calib) throw ToolErrors.USAGE('static quantization needs --calib DIR (a folder of .npy inputs); or pass --dynamic');
    singleInput(model, input);
    const excluded = new Set(opts.exclude ?? []);
    const affines = foldAffines(g, excluded);
    // Channel equalization before depthwise convolutions needs each channel's range first.
    const pairs = depthwisePairs(g, excluded);
    let equalized = 0;
    if (pairs.length > 0) {
      const pre = await calibrate(model, pairs.map((p) => p.tensor), opts.calib, { method: 'minmax', channelRanges: pairs.map((p) => p.tensor) });
      equalized = equalizeDepthwise(g, pairs, pre.channelRanges);
    }
    const plan = planStatic(g, excluded, opts.format);
    if (plan.items.length === 0) {
      throw ToolErrors.MODEL_UNSUPPORTED(`${input} has no Conv, Gemm or MatMul with constant weights to quantize`);
    }
    const biasCorrection = opts.biasCorrection ?? true;
    // mse keeps the model's input and outputs at their extremes: an image's range is its
    // domain, and a clipped output is a wrong answer, not a rounding one.
    const ends = new Set(plan.tensors.filter((t) => g.isGraphOutput(t) || (model.graph!.input ?? []).some((i) => i.name === t)));
    const cal = await calibrate(model, plan.tensors, opts.calib, {
      method: opts.method, percentile: opts.percentile, live: liveIntervals(g, plan.tensors), extremes: opts.method === 'mse' ? ends : undefined, channelMeans: biasCorrection ? plan.items.map((it) => it.act) : [],
    });
    if (headroom !== 1) {
      // The model's input keeps its calibrated range: an image's range is its domain.
      const inputs = new Set((model.graph!.input ?? []).map((i) => i.name));
      for (const [t, r] of cal.ranges) if (!inputs.has(t)) cal.ranges.set(t, widenRange(r, headroom));
    }
    narrowSaturatedRanges(g, cal.ranges);
    const { quantized, floatOps } = applyStatic(g, plan, cal.ranges, { format: opts.format, perChannel: opts.perChannel, inputMeans: cal.means, weightBits, activationBits });
    if (activationBits === 16 && !(model.opsetImport ?? []).some((o) => o.domain === 'com.microsoft')) {
      (model.opsetImport ??= []).push({ domain: 'com.microsoft', version: 1 });
    }
    report = {
      input, output, mode: 'static', format: opts.format, method: opts.method, foldedBatchNorms: folded, foldedAffines: affines, equalizedDepthwise: equalized, simplified, quantized, floatOps,
      calibration: { files: cal.files, samples: cal.samples, tensors: plan.tensors.length }, bytesBefore,
    };
  }
  const target = await storeWeightsFor(model, opts.target ?? 'auto');
  model.producerName = 'edge-model';
  // Refuse to write a model ONNX Runtime would not load.
  const session = await openSession(encodeModel(model), `the quantized model`);
  await session.release();
  const bytesAfter = writeModelFile(output, model);
  return { ...report, weightBits, activationBits, target, bytesAfter };
}

async function storeWeightsFor(model: ModelProto, target: QuantTarget): Promise<TargetChoice> {
  let uint8 = target === 'ort-x86';
  let why: string;
  if (target === 'auto') {
    const { canRunNatively } = await import('../../agent/runtime/native/index.js');
    const native = canRunNatively(model);
    uint8 = !native.ok;
    why = native.ok
      ? 'the native engine runs every operator: int8 weights (exact on the native engine and on ONNX Runtime on ARM or x86 with VNNI; edge-agent runs ONNX Runtime exactly on other x86 CPUs too)'
      : `the native engine cannot run it (${native.unsupported.join(', ')}): uint8 weights, which ONNX Runtime computes exactly on every CPU`;
  } else {
    why = uint8
      ? 'uint8 weights: ONNX Runtime computes them exactly on every x86 CPU (its u8 x s8 kernels saturate without VNNI)'
      : 'int8 weights: exact on the native engine and on ONNX Runtime on ARM or x86 with VNNI';
  }
  if (uint8) {
    const rewritten = withUint8Weights(model);
    if (rewritten) model.graph = rewritten.graph;
  }
  return { target, weights: uint8 ? 'uint8' : 'int8', why };
}
