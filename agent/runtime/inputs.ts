// Whether a request's tensors fit what a model declares (names, dtypes, shapes, and one size
// for each symbolic dimension); the runtime asks before queueing and again when the request runs.
import { shapeProblem, symbolicSizes } from '../tensor/shape.js';
import type { IOSpec, TensorMap } from './backend.js';

/** Why a set of input tensors does not fit a model's declared inputs. */
export function inputProblem(specs: IOSpec[], inputs: TensorMap): string | undefined {
  const expected = specs.map((s) => `"${s.name}"`).join(', ');
  for (const name of Object.keys(inputs)) {
    if (!specs.some((s) => s.name === name)) return `unknown input "${name}" (the model takes ${expected})`;
  }
  for (const s of specs) {
    const t = inputs[s.name];
    if (!t) return `missing input "${s.name}" (the model takes ${expected})`;
    const p = shapeProblem(s, t);
    if (p) return p;
  }
  return symbolicSizes(specs, inputs).problem;
}
