// Plan-level fusion: a quantized Add of two same-shaped maps where one operand is a conv's
// output read by nothing else (MobileNetV2's inverted residual blocks: the 1x1 projection plus
// the block's input) becomes an option of that conv, so the engine adds the residual in the
// conv's output stage while the tile is still in cache, instead of a separate pass over both
// maps. Exactness is unchanged: the engine computes the conv's u8 result, then the same
// float32 add as the 'add' step (kernels/eltwise.h), on each tile.
import type { Plan, PlanOp } from '../plan.js';

type ConvOp = Extract<PlanOp, { op: 'conv' }>;

/** The tensors an op reads (every op names them input, a, b, inputs or residual). */
function reads(o: PlanOp): number[] {
  const r = o as unknown as Record<string, unknown>;
  const out: number[] = [];
  for (const key of ['input', 'a', 'b', 'residual']) if (typeof r[key] === 'number') out.push(r[key] as number);
  if (Array.isArray(r.inputs)) out.push(...(r.inputs as number[]));
  return out;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Returns the plan with every fusable residual Add folded into its conv (ops are in run order). */
export function fuseResidualAdds(plan: Plan): Plan {
  const ops = [...plan.ops];
  const producer = new Map<number, number>();
  const readCount = new Map<number, number>();
  ops.forEach((o, i) => {
    producer.set(o.output, i);
    for (const t of reads(o)) readCount.set(t, (readCount.get(t) ?? 0) + 1);
  });
  const planOutputs = new Set(plan.outputs.map((o) => o.tensor));
  // A view shares its tensor's bytes, so a viewed conv output is read under another name.
  for (const t of plan.tensors) if (t.viewOf !== undefined) planOutputs.add(t.viewOf);
  const removed = new Set<number>();
  for (let i = 0; i < ops.length; i++) {
    const add = ops[i];
    if (add.op !== 'add' || plan.tensors[add.a].dtype !== 'u8') continue; // 16-bit convs take no residual
    const shapeA = plan.tensors[add.a].shape; const shapeB = plan.tensors[add.b].shape;
    if (!sameShape(shapeA, shapeB) || !sameShape(shapeA, plan.tensors[add.output].shape)) continue;
    for (const side of ['a', 'b'] as const) {
      const convOut = add[side];
      const other = side === 'a' ? add.b : add.a;
      const j = producer.get(convOut);
      if (j === undefined || removed.has(j)) continue;
      const conv = ops[j];
      if (conv.op !== 'conv' || conv.residual !== undefined) continue;
      // Read by this add only, not a graph output, not viewed (planOutputs holds those too).
      if (readCount.get(convOut) !== 1 || planOutputs.has(convOut) || other === convOut) continue;
      // The residual must exist when the conv runs: a plan input or constant, or made earlier.
      const k = producer.get(other);
      if (k !== undefined && k >= j) continue;
      const fused: ConvOp = {
        ...conv,
        output: add.output,
        residual: other,
        residualScale: side === 'a' ? add.bScale : add.aScale,
        residualZeroPoint: side === 'a' ? add.bZeroPoint : add.aZeroPoint,
        convScale: side === 'a' ? add.aScale : add.bScale,
        addScale: add.outputScale, addZeroPoint: add.outputZeroPoint, addClamp: add.clamp,
      };
      if (fused.convScale === undefined) continue;
      ops[j] = fused;
      removed.add(i);
      producer.set(add.output, j);
      break;
    }
  }
  if (!removed.size) return plan;
  return { ...plan, ops: ops.filter((_, i) => !removed.has(i)) };
}

/** For tests: the add ops a plan still has, and the convs carrying a residual. */
export function fusionCounts(plan: Plan): { adds: number; fused: number } {
  let adds = 0; let fused = 0;
  for (const o of plan.ops) {
    if (o.op === 'add') adds++;
    if (o.op === 'conv' && (o as ConvOp).residual !== undefined) fused++;
  }
  return { adds, fused };
}
