// The partitioned backend on small generated QDQ graphs: an operator the engine lacks (Erf) in
// the middle of a conv net runs on ONNX Runtime while the rest runs natively, the segments
// exchange int8 tensors, and the output agrees with the whole model on ONNX Runtime (exact on
// this CPU: the int8-weight form ortReference picks) within one quantization step. A use of a
// supported operator the compiler refuses moves that node only. `edge-model inspect` prints the
// partition. Which operators are unsupported is read from support.ts, never assumed.
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeModel, makeNode, DataType, type ModelProto } from '../agent/onnx/model.js';
import { isSupportedOp } from '../agent/runtime/native/support.js';
import { PartitionedBackend } from '../agent/runtime/partition/index.js';
import { QdqGraph, randomInput, type Q } from './helpers/engine-graphs.js';
import { ortReference, worstSteps } from './helpers/ort-reference.js';
import { edgeModel, scratchDir } from './helpers/edge-model-cli.js';
import * as ort from 'onnxruntime-node';

t.setTimeout(180_000);

const IN: [number, number, number, number] = [1, 3, 12, 12];

/** conv+relu -> Erf -> conv -> global pool -> flatten -> gemm: the Erf in the middle. */
function erfNet(seed: number): { bytes: Uint8Array; out: Q; g: QdqGraph } {
  const g = new QdqGraph(seed);
  const x = g.input('x', IN, 0.02, 128);
  let y = g.conv(x, 8, 3, { pad: 1, act: 'relu', perChannel: true });
  const e = g.id('erf');
  g.nodes.push(makeNode('Erf', [y.name], [e]));
  y = g.qdq(e, 1 / 255, 0, y.shape);
  y = g.conv(y, 8, 3, { pad: 1, stride: 2 });
  y = g.globalAvgPool(y);
  y = g.flatten(y);
  const out = g.gemm(y, 10);
  return { bytes: g.model('x', ['N', ...IN.slice(1)], out), out, g };
}

/** Runs both on `batch` random samples; the worst difference in output quantization steps. */
async function compare(tt: Test, b: PartitionedBackend, bytes: Uint8Array, g: QdqGraph, out: Q, batch: number): Promise<{ worst: number; levels: number }> {
  const ref = await ortReference(bytes);
  try {
    const shape = [batch, ...IN.slice(1)];
    const data = randomInput(g.rand, shape, 0.02, 128);
    const want = (await ref.exact.run({ x: new ort.Tensor('float32', data, shape) })).y.data as Float32Array;
    const got = await b.run({ x: { dtype: 'float32', shape, data } });
    tt.same(got.y.shape, [batch, 10], `output shape at batch ${batch}`);
    return { worst: worstSteps(want, got.y.data as Float32Array, out.scale), levels: new Set(Array.from(want, (v) => Math.round(v / out.scale))).size };
  } finally {
    await ref.release();
  }
}

function elemTypes(m: ModelProto, names: string[]): number[] {
  const infos = [...(m.graph!.input ?? []), ...(m.graph!.output ?? [])];
  return names.map((n) => infos.find((i) => i.name === n)!.type!.tensorType!.elemType!);
}

t.test('an Erf in the middle runs on ONNX Runtime, the rest natively, within 1 step of ONNX Runtime', async (t) => {
  const { bytes, out, g } = erfNet(7);
  const b = await PartitionedBackend.load(bytes, { name: 'erf-net' });
  t.teardown(() => b.dispose());
  const p = b.partition;
  const nodes = decodeModel(bytes).graph!.node!;
  t.equal(p.nodes.length, nodes.length, 'the partition places every node');
  t.same(new Set(p.segments.flatMap((s) => s.nodes)).size, nodes.length, 'every node is in some segment');
  const erf = p.nodes.find((n) => n.op === 'Erf')!;
  if (isSupportedOp('Erf', '')) {
    t.equal(erf.side, 'native', 'the engine has Erf now: it runs natively');
  } else {
    t.equal(erf.side, 'ort', 'Erf runs on ONNX Runtime');
    t.match(erf.why, /the engine has no Erf/, `says why: ${erf.why}`);
    t.ok(p.unsupported.includes('Erf'), 'Erf is listed as unsupported');
    t.same(p.segments.map((s) => s.side), ['native', 'ort', 'native'], 'native, then ONNX Runtime for the Erf, then native');
  }
  for (const n of p.nodes) if (n.side === 'ort') t.ok(n.why || n.op === 'DequantizeLinear' || n.op === 'QuantizeLinear', `${n.name} (${n.op}) is on ONNX Runtime with a reason, or is Q/DQ glue`);
  for (const [k, s] of p.segments.entries()) {
    const inner = (names: string[]) => names.filter((n) => n !== 'x' && n !== 'y');
    const types = elemTypes(s.model, [...inner(s.inputs), ...inner(s.outputs)]);
    t.ok(types.every((ty) => ty === DataType.UINT8 || ty === DataType.INT8), `segment ${k} (${s.side}) exchanges int8/uint8 tensors only: ${[...inner(s.inputs), ...inner(s.outputs)].join(', ')}`);
  }
  for (const batch of [1, 3]) {
    const { worst, levels } = await compare(t, b, bytes, g, out, batch);
    t.ok(worst <= 1.001, `batch ${batch}: worst difference ${worst.toFixed(3)} steps (at most 1)`);
    t.ok(levels > 5, `batch ${batch}: the output takes ${levels} levels (not constant)`);
  }
  t.match(b.describe(), { backend: 'partitioned', unsupported: p.unsupported, segments: p.segments.map((s) => ({ side: s.side })) }, 'describe() shows the partition for /v1/status');
});

t.test('a use the compiler refuses moves that node (and only what must follow it) to ONNX Runtime', async (t) => {
  // A Conv whose float result feeds two QuantizeLinears: a supported operator whose fused
  // kernel needs exactly one output scale.
  const g = new QdqGraph(11);
  const x = g.input('x', IN, 0.02, 128);
  const y = g.conv(x, 8, 3, { pad: 1, perChannel: true });
  const convOut = g.nodes.find((n) => n.opType === 'Conv')!.output![0];
  const other = g.qdq(convOut, y.scale * 2, 128, y.shape);
  const sum = g.binary('Add', y, other);
  const pooled = g.globalAvgPool(sum);
  const out = g.gemm(g.flatten(pooled), 10);
  const bytes = g.model('x', ['N', ...IN.slice(1)], out);
  const b = await PartitionedBackend.load(bytes, { name: 'two-scales' });
  t.teardown(() => b.dispose());
  const conv = b.partition.nodes.find((n) => n.op === 'Conv')!;
  t.comment(`Conv with two output scales: ${conv.side}${conv.why ? ` (${conv.why})` : ''}`);
  if (conv.side === 'ort') {
    t.match(conv.why, /the engine refused it: Conv/, `the refusal is named: ${conv.why}`);
    t.ok(b.partition.refused.length > 0, 'refusals are listed');
  }
  t.ok(b.partition.nodes.some((n) => n.side === 'native' && n.op === 'Gemm'), 'the Gemm after it still runs natively');
  const { worst } = await compare(t, b, bytes, g, out, 2);
  t.ok(worst <= 1.001, `worst difference ${worst.toFixed(3)} steps (at most 1)`);
});

t.test('a float model is refused: there is no quantized tensor to cut at', async (t) => {
  const { makeModel, makeValueInfo, encodeModel } = await import('../agent/onnx/model.js');
  const m = encodeModel(makeModel({
    name: 'f', node: [makeNode('Relu', ['x'], ['y'])], initializer: [],
    input: [makeValueInfo('x', DataType.FLOAT, [1, 4])], output: [makeValueInfo('y', DataType.FLOAT, [1, 4])],
  }));
  await t.rejects(PartitionedBackend.load(m, { name: 'fp32' }), { code: 'EDGE_MODEL_UNSUPPORTED_OPS', message: /no quantized tensors to cut at/ });
});

t.test('a symbolic dimension beyond the batch needs a fixed shape', async (t) => {
  const { g, out } = erfNet(3);
  const bytes = g.model('x', ['N', 3, 'H', 'W'], out, 'y2');
  await t.rejects(PartitionedBackend.load(bytes, { name: 'dyn' }), /input x has a symbolic dimension 2 \(H\).*give the input a fixed shape/);
  const b = await PartitionedBackend.load(bytes, { name: 'dyn', inputShapes: { x: [...IN] } });
  t.same(b.inputs[0].shape, ['N', ...IN.slice(1)], 'with inputShapes it plans that shape (the batch stays symbolic)');
  await b.dispose();
});

t.test('edge-model inspect prints the partition', async (t) => {
  const dir = scratchDir(t);
  const file = join(dir, 'erf-net.onnx');
  writeFileSync(file, erfNet(7).bytes);
  const r = edgeModel(['inspect', file, '--json'], { tsx: true });
  t.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  if (isSupportedOp('Erf', '')) {
    t.equal(info.backends.native, true, 'the engine runs it all: no partition needed');
    return;
  }
  t.match(info.backends.native, /Erf/, 'native: no, naming Erf');
  t.equal(info.partition.nativeNodes + info.partition.ortNodes, decodeModel(erfNet(7).bytes).graph!.node!.length, 'every node counted once');
  t.same(info.partition.unsupported, ['Erf'], 'the unsupported operator is named');
  t.match(info.partition.ortNodeReasons, [{ op: 'Erf', why: /the engine has no Erf/ }], 'each node off the engine says why');
  t.same(info.partition.segments.map((s: { side: string }) => s.side), ['native', 'ort', 'native']);
  const text = edgeModel(['inspect', file], { tsx: true });
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /partition {2}\d+ nodes native, \d+ on ONNX Runtime, in 3 segments/, 'the text form has the summary');
  t.match(text.stdout, /\n +1 ort +\d+ nodes +.*Erf 1/, 'and a line per segment with its operators');
  t.match(text.stdout, /unsupported operators: Erf/);
});
