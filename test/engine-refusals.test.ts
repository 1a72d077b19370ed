// What the native engine refuses, and that refusing never crashes the process: unsupported
// operators are named at load, malformed plans and weights (random mutations of a real plan)
// are rejected by the C++ checks with EDGE_NATIVE_PLAN_INVALID, bad inputs get a clear 400.
import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DataType, decodeModel, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo } from '../agent/onnx/model.js';
import { packageRoot } from '../agent/native.js';
import { EdgeError } from '../agent/errors.js';
import { NativeBackend, canRunNatively, compileModel, createEngine } from '../agent/runtime/native/index.js';
import { smallA16Model } from './helpers/a16-graphs.js';
import { QdqGraph } from './helpers/engine-graphs.js';

function modelWith(extra: 'LRN+DepthToSpace' | 'float-conv'): Uint8Array {
  if (extra === 'float-conv') {
    // A float Conv: no int8 weights at all.
    return encodeModel(makeModel({
      name: 'f', node: [makeNode('Conv', ['x', 'w'], ['y'], { kernel_shape: [1, 1] })],
      initializer: [makeTensor('w', [2, 1, 1, 1], new Float32Array([1, 2]))],
      input: [makeValueInfo('x', DataType.FLOAT, [1, 1, 4, 4])],
      output: [makeValueInfo('y', DataType.FLOAT, [1, 2, 4, 4])],
    }));
  }
  const g = new QdqGraph(3);
  const x = g.input('x', [1, 2, 4, 4], 0.02, 128);
  const y = g.conv(x, 2, 1, {});
  const lrn = g.id('lrn');
  g.nodes.push(makeNode('LRN', [y.name], [lrn], { size: 3 }));
  const d2s = g.id('d2s');
  g.nodes.push(makeNode('DepthToSpace', [lrn], [d2s], { blocksize: 1 }));
  return g.model('x', [1, 2, 4, 4], g.qdq(d2s, 1 / 255, 0, [1, 2, 4, 4]));
}

t.test('a model with unsupported operators is refused at load, naming them', async (t) => {
  const bytes = modelWith('LRN+DepthToSpace');
  const err = (() => { try { NativeBackend.load(bytes, { name: 'detector@2.0.0' }); } catch (e) { return e; } })();
  t.ok(err instanceof EdgeError, 'a typed EdgeError');
  t.equal((err as EdgeError).code, 'EDGE_MODEL_UNSUPPORTED_OPS');
  t.match((err as EdgeError).message, /detector@2\.0\.0.*DepthToSpace, LRN/, 'the message names the model and both operators');
  t.same((err as EdgeError).details, { unsupported: ['DepthToSpace', 'LRN'] });
  t.same(canRunNatively(decodeModel(bytes)), { ok: false, unsupported: ['DepthToSpace', 'LRN'] }, "the 'auto' check says why");
});

t.test('a supported operator used in a way the engine cannot fuse is refused with the node named', async (t) => {
  const bytes = modelWith('float-conv');
  t.throws(() => NativeBackend.load(bytes, { name: 'float-model' }), {
    code: 'EDGE_MODEL_UNSUPPORTED_OPS', message: /Conv 'Conv_y'.*DequantizeLinear/,
  });
  const r = canRunNatively(decodeModel(bytes));
  t.equal(r.ok, false);
  t.match(r.unsupported[0], /^Conv 'Conv_y'/);
});

t.test('bytes that are not ONNX are refused before compiling', async (t) => {
  t.throws(() => NativeBackend.load(new TextEncoder().encode('not a model'), { name: 'junk' }), { code: 'EDGE_ONNX_INVALID' });
});

t.test('wrong inputs are refused with what was expected; the engine keeps working', async (t) => {
  const bytes = readFileSync(path.join(packageRoot, 'models/digits-int8/model.onnx'));
  const b = NativeBackend.load(bytes, { name: 'digits' });
  t.teardown(() => b.dispose());
  const good = { input: { dtype: 'float32' as const, shape: [1, 1, 28, 28], data: new Float32Array(784) } };
  await t.rejects(b.run({ input: { dtype: 'float32', shape: [1, 1, 28, 27], data: new Float32Array(756) } }), { code: 'EDGE_BAD_REQUEST', message: /float32 \[N, 1, 28, 28\]/ });
  await t.rejects(b.run({ input: { dtype: 'uint8', shape: [1, 1, 28, 28], data: new Uint8Array(784) } }), { code: 'EDGE_BAD_REQUEST', message: /got dtype uint8/ });
  await t.rejects(b.run({ input: { dtype: 'float32', shape: [1, 1, 28, 28], data: new Float32Array(10) } }), { code: 'EDGE_BAD_REQUEST', message: /10 values/ });
  await t.rejects(b.run({}), { code: 'EDGE_BAD_REQUEST', message: /missing input 'input'/ });
  await t.rejects(b.run({ ...good, extra: good.input }), { code: 'EDGE_BAD_REQUEST', message: /unknown input 'extra'/ });
  const out = await b.run(good);
  t.equal(out.logits.data.length, 10, 'a good request still runs');
  await b.dispose();
  await t.rejects(b.run(good), { code: 'EDGE_NOT_READY' }, 'a disposed backend refuses instead of crashing');
});

// ---- malformed plans: random mutations of a real compiled plan --------------------------

const digits = compileModel(decodeModel(readFileSync(path.join(packageRoot, 'models/digits-int8/model.onnx'))));
// A W8A16 plan (u16 tensors: native/src/engine/steps_a16.cc) takes the same mutations.
const a16 = compileModel(decodeModel(smallA16Model(5)));
const clone = <T>(v: T): T => structuredClone(v);

type Mutation = (plan: Record<string, any>, weights: unknown[], pick: number, value: unknown) => void;
const oddValues = [-1, 0, 1, 3, 255, 256, 1e9, -1e9, 0.5, NaN, Infinity, -Infinity, 2 ** 31, 'x', null, [], {}, true];

const mutations: Record<string, Mutation> = {
  'op field': (p, _w, pick, v) => {
    const op = p.ops[pick % p.ops.length];
    const keys = Object.keys(op).filter((k) => k !== 'op');
    op[keys[pick % keys.length]] = v;
  },
  'op list element': (p, _w, pick, v) => {
    const op = p.ops[pick % p.ops.length];
    const keys = Object.keys(op).filter((k) => Array.isArray(op[k]));
    if (keys.length) { const l = op[keys[pick % keys.length]]; l[pick % l.length] = v; }
  },
  'op kind': (p, _w, pick, v) => { p.ops[pick % p.ops.length].op = typeof v === 'string' ? v : ['conv', 'gemm', 'lut', 'transpose', 'maxpool'][pick % 5]; },
  'missing field': (p, _w, pick) => {
    const op = p.ops[pick % p.ops.length];
    const keys = Object.keys(op);
    delete op[keys[pick % keys.length]];
  },
  'tensor shape': (p, _w, pick, v) => { const t = p.tensors[pick % p.tensors.length]; t.shape[pick % t.shape.length] = v; },
  'tensor dtype': (p, _w, pick) => { p.tensors[pick % p.tensors.length].dtype = ['u8', 's8', 'i32', 'f32', 'f64', 'u16'][pick % 6]; },
  'tensor view': (p, _w, pick, v) => { p.tensors[pick % p.tensors.length].viewOf = v; },
  'tensor constant': (p, _w, pick, v) => { p.tensors[pick % p.tensors.length].constant = v; },
  'io tensor': (p, _w, pick, v) => { (pick % 2 ? p.inputs : p.outputs)[0].tensor = v; },
  'ops reordered': (p, _w, pick) => { const i = pick % p.ops.length; const j = (pick * 7 + 3) % p.ops.length; [p.ops[i], p.ops[j]] = [p.ops[j], p.ops[i]]; },
  'op dropped': (p, _w, pick) => { p.ops.splice(pick % p.ops.length, 1); },
  'weight truncated': (_p, w, pick) => { const i = pick % w.length; w[i] = (w[i] as Int8Array).subarray(0, Math.floor((w[i] as Int8Array).length / 2)); },
  'weight retyped': (_p, w, pick) => { const i = pick % w.length; w[i] = [new Float64Array(4), new Uint16Array(4), 'x', null, new Int8Array(0)][pick % 5]; },
  'weight removed': (_p, w) => { w.pop(); },
  'plan replaced': (p, _w, pick, v) => { const keys = ['tensors', 'ops', 'inputs', 'outputs']; p[keys[pick % 4]] = v; },
};

for (const [label, base, inputSize, outputs] of [['int8 digits', digits, 784, 10], ['W8A16 CNN', a16, 4 * 8 * 8, 5]] as const) t.test(`malformed plans and weights are refused without crashing (${label})`, async (t) => {
  let refused = 0; let accepted = 0;
  const input = new Float32Array(inputSize).fill(0.5);
  fc.assert(fc.property(
    fc.constantFrom(...Object.keys(mutations)), fc.nat(10_000), fc.constantFrom(...oddValues),
    (name, pick, value) => {
      const plan = clone(base.plan) as unknown as Record<string, any>;
      const weights: unknown[] = base.weights.map((w) => w.slice());
      mutations[name](plan, weights, pick, clone(value));
      let engine;
      try {
        engine = createEngine(plan, weights);
      } catch (err) {
        refused++;
        if (!(err instanceof EdgeError) || err.code !== 'EDGE_NATIVE_PLAN_INVALID' || err.message.length < 30) {
          throw new Error(`mutation "${name}" was refused badly: ${String(err)}`);
        }
        return;
      }
      // Accepted (the mutation kept the plan valid): it must run or refuse the input cleanly.
      accepted++;
      try {
        engine.run([input]);
      } catch (err) {
        if (!(err instanceof Error)) throw err;
      } finally {
        engine.dispose();
      }
    },
  ), { numRuns: 400, seed: 4242 });
  t.ok(refused > 200, `${refused} malformed plans refused with EDGE_NATIVE_PLAN_INVALID`);
  t.ok(accepted > 0, `${accepted} harmless mutations still build and run`);
  // And the engine still works after all that.
  const e = createEngine(base.plan, base.weights);
  t.equal(e.run([input])[0].length, outputs, 'a valid plan runs afterwards');
  e.dispose();
});
