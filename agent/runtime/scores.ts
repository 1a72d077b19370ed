// Reading classifier outputs: per-row softmax and top-1, and the manifest's postprocessing.
import type { Manifest } from '../models/manifest.js';
import type { Tensor } from './backend.js';

/** Rows of a [.., classes] tensor as float arrays (last dimension = classes). */
export function rows(t: Tensor): Float32Array[] {
  const classes = t.shape[t.shape.length - 1] ?? 1;
  const data = t.data instanceof BigInt64Array ? Float32Array.from(t.data, Number) : Float32Array.from(t.data as ArrayLike<number>);
  const out: Float32Array[] = [];
  for (let i = 0; i + classes <= data.length; i += classes) out.push(data.subarray(i, i + classes));
  return out;
}

export function softmax(row: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  const out = new Float32Array(row.length);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += out[i] = Math.exp(row[i]! - max);
  for (let i = 0; i < row.length; i++) out[i]! /= sum;
  return out;
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

export interface Prediction {
  index: number;
  label?: string;
  /** The probability (after softmax) or raw score of the top class. */
  score: number;
}

/** Top-1 per batch row as the manifest's postprocessing describes, or undefined without one. */
export function predictions(post: Manifest['postprocessing'], outputs: Record<string, Tensor>): Prediction[] | undefined {
  if (!post || !post.argmax) return undefined;
  const t = outputs[post.output];
  if (!t) return undefined;
  return rows(t).map((r) => {
    const scores = post.softmax ? softmax(r) : r;
    const index = argmax(scores);
    return { index, label: post.labels?.[index], score: scores[index]! };
  });
}

/** Scores per row for comparing or fusing models: probabilities when the output holds logits. */
export function scoreRows(post: Manifest['postprocessing'], t: Tensor): Float32Array[] {
  return rows(t).map((r) => (post?.softmax ? softmax(r) : r));
}
