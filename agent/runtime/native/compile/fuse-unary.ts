// A pass over the finished plan: a quantized product of a value with a table of the same value,
// y = x * f(x) (SiLU exported as Sigmoid then Mul, as YOLOv5/v8 and EfficientNet do it), is a
// function of x alone, so the 'lut' and 'mul' ops become one 'lut' whose table is the two
// composed: entry v is what the engine's mul computes from v and table[v]. The fused plan is
// bit-identical to the unfused one (the mul's float32 arithmetic is reproduced exactly below,
// as native/src/kernels/eltwise.cc does it), one pass over the map instead of three.
import type { PlanOp } from '../plan.js';
import { roundHalfEven } from '../quant.js';
import type { CompiledModel } from './values.js';

const f32 = Math.fround;

/** The engine's qmul of one u8 pair (kernels/eltwise.cc run(): float32 throughout, half-to-even). */
function qmul(a: number, b: number, op: Extract<PlanOp, { op: 'add' | 'mul' }>): number {
  const rm = f32(f32(f32(op.aScale) * f32(op.bScale)) / f32(op.outputScale));
  const lo = Math.max(op.clamp[0], 0), hi = Math.min(op.clamp[1], 255);
  let v = f32(rm * ((a - op.aZeroPoint) * (b - op.bZeroPoint)));
  v = Math.min(Math.max(v, lo - op.outputZeroPoint), hi - op.outputZeroPoint);
  return roundHalfEven(v) + op.outputZeroPoint;
}

/** The tensors an op reads. */
function reads(op: PlanOp): number[] {
  const o = op as unknown as { input?: number; a?: number; b?: number; inputs?: number[] };
  return [o.input, o.a, o.b, ...(o.inputs ?? [])].filter((t): t is number => t !== undefined);
}

/** Fuses every mul(x, lut(x)) of the compiled model in place (and returns it). */
export function fuseUnaryProducts(compiled: CompiledModel): CompiledModel {
  const { plan, weights } = compiled;
  // A view reads its base: count uses on the base tensor.
  const base = (t: number): number => {
    while (plan.tensors[t].viewOf !== undefined) t = plan.tensors[t].viewOf!;
    return t;
  };
  const uses = new Map<number, number>();
  const use = (t: number): void => void uses.set(base(t), (uses.get(base(t)) ?? 0) + 1);
  for (const op of plan.ops) reads(op).forEach(use);
  for (const o of plan.outputs) use(o.tensor);
  const producer = new Map<number, number>();
  plan.ops.forEach((op, i) => producer.set((op as { output: number }).output, i));

  const dead = new Set<number>();
  plan.ops.forEach((op, i) => {
    if (op.op !== 'mul' || op.a === op.b) return;
    const size = (t: number): number => plan.tensors[t].shape.reduce((p, d) => p * d, 1);
    if (size(op.a) !== size(op.output) || size(op.b) !== size(op.output)) return; // only the full (same shape) product
    for (const [x, fx, xIsA] of [[op.a, op.b, true], [op.b, op.a, false]] as const) {
      const li = producer.get(fx);
      const l = li === undefined ? undefined : plan.ops[li];
      if (!l || l.op !== 'lut' || l.input !== x || dead.has(li!)) continue;
      const t = weights[l.table] as Uint8Array;
      const table = new Uint8Array(256);
      for (let v = 0; v < 256; v++) table[v] = xIsA ? qmul(v, t[v], op) : qmul(t[v], v, op);
      weights.push(table);
      plan.ops[i] = { op: 'lut', input: x, output: op.output, table: weights.length - 1 };
      if (uses.get(base(fx)) === 1) dead.add(li!);
      return;
    }
  });
  if (dead.size) plan.ops = plan.ops.filter((_, i) => !dead.has(i));
  compiled.stats.ops = plan.ops.length;
  return compiled;
}
