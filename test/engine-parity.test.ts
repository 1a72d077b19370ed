// Parity of the native int8 engine with ONNX Runtime on generated QDQ graphs: for the same
// int8 model and input, every output element agrees within one quantization step.
import t, { type Test } from 'tap';
import * as ort from 'onnxruntime-node';
import { NativeBackend } from '../agent/runtime/native/index.js';
import { QdqGraph, randomInput, type Q } from './helpers/engine-graphs.js';

interface Case {
  name: string;
  seed: number;
  signed?: boolean;
  inputShape: number[];
  build: (g: QdqGraph, x: Q) => Q;
}

async function parity(tt: Test, c: Case): Promise<void> {
  const g = new QdqGraph(c.seed, c.signed);
  const inScale = 0.02; const inZp = 128;
  const x = g.input('x', c.inputShape, inScale, inZp);
  const out = c.build(g, x);
  const bytes = g.model('x', ['N', ...c.inputShape.slice(1)], out);
  const session = await ort.InferenceSession.create(bytes);
  const native = NativeBackend.load(bytes, { name: c.name });
  try {
    let worst = 0; let differing = 0; let total = 0; let spread = new Set<number>();
    for (const batch of [1, 3]) {
      const shape = [batch, ...c.inputShape.slice(1)];
      const data = randomInput(g.rand, shape, inScale, inZp);
      const ref = await session.run({ x: new ort.Tensor('float32', data, shape) });
      const got = await native.run({ x: { dtype: 'float32', shape, data } });
      tt.same(got.y.shape, ref.y.dims, `${c.name}: output shape at batch ${batch}`);
      const r = ref.y.data as Float32Array; const n = got.y.data as Float32Array;
      tt.equal(n.length, r.length, 'output length');
      for (let i = 0; i < r.length; i++) {
        const steps = Math.abs(n[i] - r[i]) / out.scale;
        worst = Math.max(worst, steps);
        if (steps > 0.5) differing++;
        spread.add(Math.round(r[i] / out.scale));
        total++;
      }
    }
    tt.ok(worst <= 1.001, `${c.name}: worst difference ${worst.toFixed(3)} quantization steps (at most 1); ${differing}/${total} elements differ`);
    // The comparison means something only if the output is not constant.
    tt.ok(spread.size > Math.min(8, total / 4), `${c.name}: output takes ${spread.size} distinct levels`);
  } finally {
    await native.dispose();
    await session.release();
  }
}

const cases: Case[] = [
  {
    name: 'conv+relu, depthwise+clip, maxpool, 1x1 conv, global pool, gemm',
    seed: 1, inputShape: [1, 3, 16, 16],
    build: (g, x) => {
      let y = g.conv(x, 8, 3, { pad: 1, act: 'relu', perChannel: true });
      y = g.conv(y, 8, 3, { pad: 1, stride: 2, group: 8, act: 'relu6', perChannel: true });
      y = g.maxpool(y, 2, 2);
      y = g.conv(y, 16, 1, {});
      y = g.globalAvgPool(y);
      y = g.flatten(y);
      return g.gemm(y, 10, { perChannel: true });
    },
  },
  {
    name: 'flatten of a spatial map into gemm (weights permuted for NHWC), matmul',
    seed: 2, inputShape: [1, 1, 12, 12],
    build: (g, x) => {
      let y = g.conv(x, 4, 3, { act: 'relu' });
      y = g.maxpool(y, 2, 2);
      y = g.flatten(y);
      y = g.gemm(y, 16, { act: 'relu', transB: false });
      return g.gemm(y, 5, { matmul: true, transB: false });
    },
  },
  {
    name: 'residual add with fused relu, per-channel mul, average pool with padding',
    seed: 3, inputShape: [1, 4, 10, 10],
    build: (g, x) => {
      const a = g.conv(x, 6, 3, { pad: 1, act: 'relu' });
      const b = g.conv(a, 6, 3, { pad: 1 });
      let y = g.binary('Add', a, b, 'relu');
      y = g.binary('Mul', y, g.constOperand([1, 6, 1, 1], 0.01));
      y = g.avgpool(y, 3, 2, 1, 0);
      return g.avgpool(y, 2, 1, 0, 1);
    },
  },
  {
    name: 'lookup-table activations: sigmoid, tanh, leaky relu, hard swish',
    seed: 4, inputShape: [1, 2, 8, 8],
    build: (g, x) => {
      let y = g.conv(x, 4, 3, { pad: 1 });
      y = g.unary('LeakyRelu', y, { alpha: { float: 0.1 } });
      y = g.unary('HardSwish', y);
      const s = g.unary('Sigmoid', y);
      const th = g.unary('Tanh', y);
      return g.binary('Add', s, th);
    },
  },
  {
    name: 'int8 activations (zero points shifted into the u8 engine)',
    seed: 5, signed: true, inputShape: [1, 3, 9, 9],
    build: (g, x) => {
      let y = g.conv(x, 6, 3, { stride: 2, act: 'relu', perChannel: true });
      y = g.conv(y, 6, 3, { pad: 1, group: 6, bias: false });
      y = g.flatten(g.maxpool(y, 2, 1));
      return g.gemm(y, 7, {});
    },
  },
  {
    name: 'dilated and grouped convolutions, hard sigmoid, squeeze into gemm',
    seed: 6, inputShape: [1, 4, 11, 11],
    build: (g, x) => {
      let y = g.conv(x, 8, 3, { dilation: 2, pad: 2, act: 'relu' });
      y = g.conv(y, 8, 3, { group: 2, stride: 2, perChannel: true });
      y = g.unary('HardSigmoid', y, { alpha: { float: 0.3 }, beta: { float: 0.4 } });
      y = g.squeeze(g.globalAvgPool(y), [2, 3]);
      return g.gemm(y, 4, {});
    },
  },
];

for (const c of cases) t.test(c.name, (tt) => parity(tt, c));
