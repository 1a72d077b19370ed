// A float graph output that is a Concat of dequantized values (a detector's last Concat of box
// coordinates in pixels and class scores in 0..1: one int8 scale for both would round every
// score to zero, so the quantizer leaves that Concat float). Each input is dequantized to
// float32 and the float32 bytes are concatenated by a byte 'copy' (no requantization), the
// float32 output being a view of the bytes: exact, as ONNX Runtime's float Concat is.
import { attr, type NodeProto } from '../../../onnx/model.js';
import type { CopyOp } from '../plan.js';
import type { Compiler } from './compiler.js';
import { toPlain } from './layout.js';

export function floatConcatOutput(c: Compiler, node: NodeProto): { tensor: number; dtype: 'float32'; shape: number[] } {
  const ins = (node.input ?? []).map((name) => {
    const v = c.get(name);
    if (v.k !== 'dq') throw c.bad(`a float Concat output takes dequantized inputs only (${name} is not one)`);
    return v.d;
  });
  const rank = ins[0].q.shape.length;
  let axis = Number(attr(node, 'axis') ?? 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) throw c.bad(`axis ${attr(node, 'axis')} is outside rank ${rank}`);
  if (ins.some((d) => d.q.shape.length !== rank || d.q.shape.some((v, i) => i !== axis && v !== ins[0].q.shape[i]))) {
    throw c.bad(`inputs [${ins.map((d) => `[${d.q.shape}]`).join(', ')}] differ outside axis ${axis}`);
  }
  const shape = [...ins[0].q.shape];
  shape[axis] = ins.reduce((s, d) => s + d.q.shape[axis], 0);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1) * 4; // bytes per index on the axis
  const op: CopyOp = { op: 'copy', output: -1, inputs: [], count: [], start: [], step: [], at: [], perm: [], requant: [] };
  let offset = 0;
  for (const d of ins) {
    const src = d.q.layout === 'flat-hwc' ? toPlain(c, d.q) : d.q;
    const f = c.tensor('f32', src.shape);
    c.ops.push({ op: 'dequantize', input: src.tensor, output: f, scale: d.scale, zeroPoint: d.zp, nhwcToNchw: src.layout === 'nhwc' });
    const bytes = c.tensor('u8', [outer, d.q.shape[axis] * inner], f);
    op.inputs.push(bytes);
    op.count.push(outer, d.q.shape[axis] * inner);
    op.start.push(0, 0); op.step.push(1, 1); op.perm.push(0, 1);
    op.at.push(0, offset);
    op.requant.push(0);
    offset += d.q.shape[axis] * inner;
  }
  op.output = c.tensor('u8', [outer, offset]);
  c.ops.push(op);
  return { tensor: c.tensor('f32', shape, op.output), dtype: 'float32', shape };
}
