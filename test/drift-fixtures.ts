// Seeded random data for the drift tests: a tabular model's inputs (four numeric features and
// one categorical) drawn from a known distribution, with knobs for the shifts under test.
import type { TensorMap } from '../agent/runtime/backend.js';
import type { DriftSpec } from '../agent/drift/index.js';
import { mulberry32 as rng } from '../tools/prng.js';

export { rng };

export function normal(r: () => number): number {
  const u = 1 - r(), v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export interface Shift {
  /** Added to feature "a" (in units of its std, 1). */
  meanA?: number;
  /** Multiplies the spread of feature "b" around its mean. */
  scaleB?: number;
  /** Share of rows whose color is the new category 7. */
  newColor?: number;
}

export const TABULAR_SPEC: DriftSpec = {
  inputs: [
    { kind: 'vector', tensor: 'x', names: ['a', 'b', 'c', 'd'] },
    { kind: 'categorical', tensor: 'color', name: 'color' },
  ],
};

/** One batch of `n` rows: x [n,4] float32 (a~N(0,1), b~N(5,2), c~Exp(1), d~U(0,1)), color [n,1] int32 in {0,1,2} (0.5/0.3/0.2). */
export function tabularBatch(r: () => number, n: number, shift: Shift = {}): TensorMap {
  const x = new Float32Array(n * 4);
  const color = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    x[i * 4] = normal(r) + (shift.meanA ?? 0);
    x[i * 4 + 1] = 5 + 2 * (shift.scaleB ?? 1) * normal(r);
    x[i * 4 + 2] = -Math.log(1 - r());
    x[i * 4 + 3] = r();
    const u = r();
    color[i] = shift.newColor && r() < shift.newColor ? 7 : u < 0.5 ? 0 : u < 0.8 ? 1 : 2;
  }
  return {
    x: { dtype: 'float32', shape: [n, 4], data: x },
    color: { dtype: 'int32', shape: [n, 1], data: color },
  };
}
