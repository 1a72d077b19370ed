// Shapes: element counts, and checking a tensor against what a model declares.
import type { IOSpec, Tensor } from '../runtime/backend.js';

export const elementCount = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export const formatShape = (shape: readonly (number | string)[]): string => `[${shape.join(', ')}]`;

export const describeSpec = (s: IOSpec): string => `${s.dtype} with shape ${formatShape(s.shape)}`;

/** Why a tensor does not fit a declared input, or undefined when it does. */
export function shapeProblem(spec: IOSpec, t: Tensor): string | undefined {
  const expected = `expected ${describeSpec(spec)}`;
  if (t.dtype !== spec.dtype) return `input "${spec.name}": ${expected}, got ${t.dtype}`;
  const bad = t.shape.length !== spec.shape.length || spec.shape.some((d, i) => (typeof d === 'number' ? t.shape[i] !== d : !(t.shape[i]! >= 1)));
  if (bad) return `input "${spec.name}": ${expected}, got shape ${formatShape(t.shape)}`;
  if (elementCount(t.shape) !== t.data.length) return `input "${spec.name}": shape ${formatShape(t.shape)} holds ${elementCount(t.shape)} values, got ${t.data.length}`;
  return undefined;
}

/** The size of each symbolic dimension, which must be the same across inputs (the batch). */
export function symbolicSizes(specs: IOSpec[], tensors: Record<string, Tensor>): { sizes: Record<string, number>; problem?: string } {
  const sizes: Record<string, number> = {};
  for (const s of specs) {
    const t = tensors[s.name];
    if (!t) continue;
    s.shape.forEach((d, i) => {
      if (typeof d !== 'string') return;
      sizes[d] ??= t.shape[i]!;
    });
    for (const [i, d] of s.shape.entries()) {
      if (typeof d === 'string' && sizes[d] !== t.shape[i]) {
        return { sizes, problem: `input "${s.name}": dimension ${d} is ${t.shape[i]} here but ${sizes[d]} in another input` };
      }
    }
  }
  return { sizes };
}
