// The residual Add fused into the producing conv's output stage (compile/fuse.ts, the conv
// step's residual option, GemmArgs::residual_add): the compiler folds exactly the adds it may,
// and the fused plan gives the same bytes as the unfused one (conv then add, each exact against
// its scalar oracle) with the CPU's kernels and with the scalar ones, on 1 and 2 threads.
import t from 'tap';
import { decodeModel } from '../agent/onnx/model.js';
import { kernelsInfo, setKernelVariant } from '../agent/kernels/index.js';
import { compileModel, NativeBackend } from '../agent/runtime/native/index.js';
import { fusionCounts } from '../agent/runtime/native/compile/fuse.js';
import { QdqGraph, randomInput } from './helpers/engine-graphs.js';

t.setTimeout(120_000);

interface Built { bytes: Uint8Array; shape: number[]; adds: number; fused: number }

// MobileNetV2-like inverted residual blocks: the 1x1 projection's add is fused into the GEMM
// tiles (the conv output as the add's a, then as its b); an add after a 3x3 conv (im2col) and
// after a depthwise conv is fused as a pass at the end of the conv; the add of two convs'
// outputs goes into the later conv (the earlier one's output must exist when it runs); adds
// whose conv output is also read elsewhere stay adds.
function blocks(): Built {
  const g = new QdqGraph(7301);
  const x = g.input('x', [1, 8, 18, 18], 0.02, 128);
  const h0 = g.conv(x, 16, 3, { pad: 1, act: 'relu' });
  const block = (h: ReturnType<QdqGraph['conv']>, convFirst: boolean) => {
    const e = g.conv(h, 48, 1, { act: 'relu6', perChannel: true });
    const d = g.conv(e, 48, 3, { pad: 1, group: 48, act: 'relu6', perChannel: true });
    const p = g.conv(d, 16, 1, { perChannel: true });
    return convFirst ? g.binary('Add', p, h) : g.binary('Add', h, p);
  };
  const s1 = block(h0, true);
  const s2 = block(s1, false);
  const s3 = g.binary('Add', g.conv(s2, 16, 3, { pad: 1 }), s2); // im2col conv
  const s4 = g.binary('Add', g.conv(s3, 16, 3, { pad: 1, group: 16 }), s3); // depthwise
  const shared = g.conv(s4, 16, 1, {});
  const s5 = g.binary('Add', shared, s4); // `shared` is read twice: not fused
  const s6 = g.binary('Add', s5, shared);
  const late = g.conv(s6, 16, 1, {});
  const s7 = g.binary('Add', late, g.conv(s6, 16, 1, { act: 'relu' })); // fused into the second conv
  return { bytes: g.model('x', ['N', 8, 18, 18], s7), shape: [1, 8, 18, 18], adds: 2, fused: 5 };
}

// Few rows and 160 channels: the GEMM splits the columns across threads, so the residual add
// runs per row segment; the residual is the quantized graph input.
function wide(): Built {
  const g = new QdqGraph(7302);
  const x = g.input('x', [1, 160, 5, 5], 0.02, 128);
  const p = g.conv(x, 160, 1, { perChannel: true });
  return { bytes: g.model('x', ['N', 160, 5, 5], g.binary('Add', p, x, 'relu')), shape: [1, 160, 5, 5], adds: 0, fused: 1 };
}

async function run(b: Built, fuse: boolean, threads: number, data: Float32Array[]): Promise<Float32Array[]> {
  const compiled = compileModel(decodeModel(b.bytes, 'fuse'), 'fuse', { fuse });
  const native = NativeBackend.fromCompiled(compiled, { name: 'fuse', threads });
  try {
    const out: Float32Array[] = [];
    for (let i = 0; i < data.length; i++) {
      const shape = [i + 1, ...b.shape.slice(1)];
      out.push((await native.run({ x: { dtype: 'float32', shape, data: data[i] } })).y.data as Float32Array);
    }
    return out;
  } finally {
    await native.dispose();
  }
}

for (const [name, build] of [['inverted residual blocks', blocks], ['wide, column-split', wide]] as const) {
  t.test(name, async (tt) => {
    const b = build();
    const fusedPlan = compileModel(decodeModel(b.bytes, 'fuse'), 'fuse').plan;
    const plain = compileModel(decodeModel(b.bytes, 'fuse'), 'fuse', { fuse: false }).plan;
    tt.same(fusionCounts(fusedPlan), { adds: b.adds, fused: b.fused }, 'adds left and convs with a fused residual');
    tt.equal(fusionCounts(plain).fused, 0, 'fuse: false keeps every add');
    tt.equal(plain.ops.length - fusedPlan.ops.length, b.fused, 'one op fewer per fused add');

    const g = new QdqGraph(99);
    const data = [1, 2].map((n) => randomInput(g.rand, [n, ...b.shape.slice(1)], 0.02, 128));
    const best = kernelsInfo().variant;
    tt.teardown(() => setKernelVariant(best));
    setKernelVariant('scalar');
    const oracle = await run(b, false, 1, data);
    const scalarFused = await run(b, true, 1, data);
    setKernelVariant(best);
    for (const threads of [1, 2]) {
      const got = await run(b, true, threads, data);
      const unfused = await run(b, false, threads, data);
      for (let i = 0; i < data.length; i++) {
        tt.same(got[i], oracle[i], `${best} fused, ${threads} thread(s), batch ${i + 1}: same as scalar unfused`);
        tt.same(unfused[i], oracle[i], `${best} unfused, ${threads} thread(s), batch ${i + 1}: same as scalar unfused`);
      }
    }
    for (let i = 0; i < data.length; i++) tt.same(scalarFused[i], oracle[i], `scalar fused, batch ${i + 1}`);
    // The comparison means something only if the output varies.
    tt.ok(new Set(oracle[0]).size > 8, `output takes ${new Set(oracle[0]).size} distinct values`);
  });
}
