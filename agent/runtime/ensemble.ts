// An ensemble: a named model whose answer fuses the answers of member models run on the
// same inputs. Fusion: the mean or weighted mean of the members' scores (probabilities
// when a member outputs logits), or a majority vote of their top-1 classes (the output
// then holds each class's share of the votes).
import type { Tensor, TensorMap } from './backend.js';
import { argmax, scoreRows } from './scores.js';
import type { Manifest } from '../models/manifest.js';

/** 'stacked' is fused by a learned combiner (stacking.ts), not by fuse(). */
export type Fusion = 'mean' | 'weighted' | 'vote' | 'stacked';

export interface MemberAnswer {
  outputs: TensorMap;
  manifest: Manifest;
}

export const ENSEMBLE_OUTPUT = 'scores';

/** The member output that is fused: the postprocessing output, else the first output. */
export function fusedOutputName(m: Manifest): string {
  return m.postprocessing?.output ?? m.outputs[0]!.name;
}

export function fuse(fusion: Fusion, weights: number[] | undefined, answers: MemberAnswer[]): Tensor {
  const perMember = answers.map((a) => scoreRows(a.manifest.postprocessing, a.outputs[fusedOutputName(a.manifest)]!));
  const n = perMember[0]!.length;
  const classes = perMember[0]![0]?.length ?? 0;
  for (const [i, m] of perMember.entries()) {
    if (m.length !== n || (m[0]?.length ?? 0) !== classes) {
      throw new Error(`member ${i} answered ${m.length} rows of ${m[0]?.length ?? 0} classes, the first member ${n} rows of ${classes}`);
    }
  }
  const w = fusion === 'weighted' ? weights! : answers.map(() => 1);
  const total = w.reduce((a, b) => a + b, 0) || 1;
  const out = new Float32Array(n * classes);
  for (let r = 0; r < n; r++) {
    for (const [i, m] of perMember.entries()) {
      const row = m[r]!;
      if (fusion === 'vote') out[r * classes + argmax(row)]! += 1 / perMember.length;
      else for (let c = 0; c < classes; c++) out[r * classes + c]! += (w[i]! / total) * row[c]!;
    }
  }
  return { dtype: 'float32', shape: [n, classes], data: out };
}
