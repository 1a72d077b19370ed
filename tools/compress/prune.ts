// `edge-model prune IN OUT --sparsity S [--structured]`: magnitude pruning of Conv, Gemm and
// MatMul weights. Unstructured: the smallest |w| of each layer become zero. Structured: whole
// output channels (filters, or Gemm/MatMul output columns) with the smallest L2 norm become
// zero, which a later pass or a sparse kernel can drop. `eval` reports what it cost.
import { attr, DataType, dims, makeTensor, tensorData } from '../../agent/onnx/model.js';
import { ToolErrors } from './errors.js';
import { canonicalize } from './graph.js';
import { readModelFile, writeModelFile } from './model-file.js';

export interface PruneReport {
  layers: number;
  parameters: number;
  zeroed: number;
  sparsity: number;
  bytes: number;
}

export function pruneFile(input: string, output: string, sparsity: number, structured: boolean): PruneReport {
  if (!(sparsity >= 0 && sparsity < 1)) throw ToolErrors.USAGE(`--sparsity ${sparsity} is out of range; expected a fraction in [0, 1), e.g. 0.5`);
  const model = readModelFile(input);
  const g = canonicalize(model);
  let layers = 0;
  let parameters = 0;
  let zeroed = 0;
  const done = new Set<string>();
  for (const n of g.graph.node!) {
    if (!['Conv', 'Gemm', 'MatMul'].includes(n.opType!)) continue;
    const wName = n.input?.[1];
    const t = wName ? g.inits.get(wName) : undefined;
    if (!t || t.dataType !== DataType.FLOAT || done.has(wName!)) continue;
    done.add(wName!);
    const shape = dims(t);
    if (shape.length < 2) continue;
    const w = Float32Array.from(tensorData(t) as Float32Array);
    if (structured) {
      // Output channel axis: Conv 0; Gemm transB 0; MatMul / Gemm 1.
      const axis = n.opType === 'Conv' || (n.opType === 'Gemm' && attr(n, 'transB')) ? 0 : 1;
      const channels = shape[axis];
      const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
      const norms = new Float64Array(channels);
      for (let i = 0; i < w.length; i++) norms[Math.floor(i / inner) % channels] += w[i] * w[i];
      const drop = Math.floor(channels * sparsity);
      const order = Array.from(norms.keys()).sort((a, b) => norms[a] - norms[b]).slice(0, drop);
      const gone = new Uint8Array(channels);
      for (const c of order) gone[c] = 1;
      for (let i = 0; i < w.length; i++) if (gone[Math.floor(i / inner) % channels]) w[i] = 0;
    } else {
      const k = Math.floor(w.length * sparsity);
      if (k > 0) {
        const mags = Float32Array.from(w, Math.abs).sort();
        const threshold = mags[k - 1];
        let left = k;
        // Zero exactly k weights: all below the threshold, then ties at it.
        for (let i = 0; i < w.length; i++) if (Math.abs(w[i]) < threshold) {
          w[i] = 0;
          left--;
        }
        for (let i = 0; i < w.length && left > 0; i++) if (w[i] !== 0 && Math.abs(w[i]) === threshold) {
          w[i] = 0;
          left--;
        }
      }
    }
    let z = 0;
    for (const v of w) if (v === 0) z++;
    const replacement = makeTensor(wName!, shape, w);
    Object.assign(t, { rawData: replacement.rawData, floatData: [] });
    layers++;
    parameters += w.length;
    zeroed += z;
  }
  if (layers === 0) throw ToolErrors.MODEL_UNSUPPORTED(`${input} has no Conv, Gemm or MatMul with float weights to prune`);
  model.producerName = 'edge-model';
  const bytes = writeModelFile(output, model);
  return { layers, parameters, zeroed, sparsity: zeroed / parameters, bytes };
}
