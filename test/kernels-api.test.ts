// The TypeScript kernel API: bad arguments are refused with the value quoted, async calls
// give the same results as sync ones and leave the event loop free, EDGE_KERNELS forces a variant.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import {
  activationLut, applyLut, avgPool, conv, convAsync, gemm, gemmAsync, globalAvgPool, kernelsInfo, maxPool, packConv,
  packGemm, qadd, qmul, quantizeLinear, setKernelThreads, setKernelVariant,
} from '../agent/kernels/index.js';

t.test('bad arguments are refused with what was expected and the value given', (t) => {
  const w = packGemm({ weights: new Int8Array(6), K: 2, N: 3 });
  t.throws(() => packGemm({ weights: new Int8Array(5), K: 2, N: 3 }), { code: 'EDGE_KERNEL_ARGUMENT', message: /weights\.length must be 6 .*got 5/ });
  t.throws(() => packGemm({ weights: new Uint8Array(6) as unknown as Int8Array, K: 2, N: 3 }), { message: /weights must be an Int8Array, got Uint8Array\(6\)/ });
  t.throws(() => packGemm({ weights: new Int8Array(6), K: 2, N: 3, zeroPoints: 200 }), { message: /zeroPoints\[0\] must be an integer in \[-128, 127\], got 200/ });
  t.throws(() => gemm(w, { a: new Uint8Array(4), M: 2, aZeroPoint: 256, multipliers: 0.1 }), { message: /aZeroPoint \(uint8\) must be an integer in \[0, 255\], got 256/ });
  t.throws(() => gemm(w, { a: new Uint8Array(4), M: 2, multipliers: -1 }), { message: /multipliers\[0\] must be a finite number > 0, got -1/ });
  t.throws(() => gemm(w, { a: new Uint8Array(4), M: 2 }), { message: /multipliers must be given for a quantized output, got undefined/ });
  t.throws(() => gemm(w, { a: new Uint8Array(5), M: 2, multipliers: 1 }), { message: /a\.length must be 4/ });
  t.throws(() => gemm(w, { a: new Uint8Array(4), M: 2, multipliers: [1, 2] }), { message: /multipliers must be a number or 1 or 3 numbers, got \[1, 2\]/ });
  t.throws(() => gemm(w, { a: new Uint8Array(4), M: 2, multipliers: 1, clampMin: 10, clampMax: 5 }), { message: /clampMax must be an integer in \[10, 255\], got 5/ });
  t.throws(() => packConv({ H: 4, W: 4, C: 6, outChannels: 4, kernel: [3, 3], groups: 4 }, new Int8Array(0)), { message: /groups must be a divisor of C \(6\) and outChannels \(4\), got 4/ });
  t.throws(() => packConv({ H: 2, W: 2, C: 1, outChannels: 1, kernel: [3, 3] }, new Int8Array(9)), { message: /kernel must be no larger than the padded input \(2x2\), got \[3, 3\]/ });
  t.throws(() => quantizeLinear(new Float32Array(4), { scale: 0, shape: [4] }), { message: /scale\[0\] must be a finite number > 0, got 0/ });
  t.throws(() => quantizeLinear(new Float32Array(4), { scale: 1, shape: [5] }), { message: /x\.length must be 5/ });
  t.throws(() => activationLut({ activation: 'gelu' as 'relu', inScale: 1, outScale: 1 }), { message: /activation must be one of relu.*got "gelu"/ });
  t.throws(() => setKernelVariant('sse9'), { message: /name must be one of scalar.*got "sse9"/ });
  t.throws(() => qadd({ a: new Uint8Array(6), aScale: 1, b: new Uint8Array(4), bScale: 1, yScale: 1 }), { message: /b\.length must be 6 \(same as a\), 1, or the channel count dividing a\.length, got 4/ });
  t.end();
});

t.test('async gemm and conv return what the sync calls return, without blocking the event loop', async (t) => {
  setKernelThreads(1);
  const M = 1024, K = 1024, N = 1024;
  const a = new Uint8Array(M * K).map((_, i) => (i * 7) & 255);
  const w = packGemm({ weights: new Int8Array(K * N).map((_, i) => ((i * 13) % 255) - 127), K, N });
  const o = { a, M, aZeroPoint: 128, multipliers: 1e-4, outZeroPoint: 100 };
  const sync = gemm(w, o);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  let immediate = false;
  setImmediate(() => { immediate = true; });
  const pending = gemmAsync(w, o);
  t.equal(immediate, false, 'the call returned before any callback ran');
  const asyncOut = await pending;
  clearInterval(timer);
  t.ok(immediate, 'a setImmediate callback ran while the GEMM was in flight');
  t.same(Buffer.from(asyncOut as Uint8Array), Buffer.from(sync as Uint8Array), 'async output equals sync output');
  t.comment(`timer ticks during the async GEMM: ${ticks}`);

  const pc = packConv({ H: 20, W: 20, C: 16, outChannels: 32, kernel: [3, 3], pads: [1, 1, 1, 1] }, new Int8Array(32 * 16 * 9).map((_, i) => (i % 19) - 9));
  const x = new Uint8Array(20 * 20 * 16).map((_, i) => (i * 31) & 255);
  const co = { x, xZeroPoint: 3, multipliers: 0.002, outZeroPoint: 7 };
  t.same(Buffer.from((await convAsync(pc, co)) as Uint8Array), Buffer.from(conv(pc, co) as Uint8Array), 'async conv equals sync conv');
  await t.rejects(gemmAsync(w, { ...o, M: 3 }), { message: /a\.length must be 3072/ }, 'async calls validate too');
});

t.test('multi-threaded results equal single-threaded ones', (t) => {
  const M = 100, K = 300, N = 200;
  const a = new Uint8Array(M * K).map((_, i) => (i * 11) & 255);
  const w = packGemm({ weights: new Int8Array(K * N).map((_, i) => ((i * 5) % 255) - 127), K, N, zeroPoints: 3 });
  setKernelThreads(1);
  const one = gemm(w, { a, M, outType: 'int32' });
  t.equal(setKernelThreads(3), 3, 'thread count set');
  const three = gemm(w, { a, M, outType: 'int32' });
  setKernelThreads(1);
  t.same(Array.from(three), Array.from(one), 'same int32 output with 3 threads');
  t.end();
});

t.test('pooling, add/mul with broadcasting and LUT activations run from TypeScript', (t) => {
  const x = Uint8Array.from([1, 200, 3, 4, 50, 6, 7, 8, 90, 10, 11, 12, 13, 14, 15, 16, 17, 18]); // 1x3x3x2 NHWC
  t.same(Array.from(maxPool(x, { H: 3, W: 3, C: 2, kernel: [2, 2] })), [90, 200, 90, 12, 90, 16, 90, 18], 'max pool 2x2');
  const g = globalAvgPool(x, { H: 3, W: 3, C: 2 }, { xScale: 1, yScale: 1 });
  t.same(Array.from(g), [Math.round((1 + 3 + 50 + 7 + 90 + 11 + 13 + 15 + 17) / 9), Math.round((200 + 4 + 6 + 8 + 10 + 12 + 14 + 16 + 18) / 9)], 'global average');
  t.same(Array.from(avgPool(x, { H: 3, W: 3, C: 2, kernel: [3, 3], pads: [1, 1, 1, 1] }, { xScale: 1, yScale: 1 })).length, 18, 'padded avg pool keeps size');
  const sum = qadd({ a: Uint8Array.from([10, 20, 30, 40]), aScale: 0.5, b: Uint8Array.from([2, 4]), bScale: 0.5, yScale: 0.5, channels: 2 });
  t.same(Array.from(sum), [12, 24, 32, 44], 'per-channel broadcast add');
  const prod = qmul({ a: Int8Array.from([-4, 2, 100]), aScale: 1, b: Int8Array.from([3]), bScale: 1, yScale: 1 });
  t.same(Array.from(prod), [-12, 6, 127], 'scalar broadcast mul saturates');
  const relu = activationLut({ activation: 'relu', inType: 'int8', inScale: 0.1, inZeroPoint: 0, outType: 'int8', outScale: 0.1 });
  t.same(Array.from(applyLut(relu, Int8Array.from([-5, 0, 7]), 'int8')), [0, 0, 7], 'ReLU through a LUT');
  t.end();
});

t.test('EDGE_KERNELS forces a variant and the choice is reported', (t) => {
  const script = `import('./agent/kernels/index.ts').then(m => console.log(JSON.stringify(m.kernelsInfo())))`;
  const run = (env: Record<string, string>) => spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
    env: { ...process.env, ...env }, encoding: 'utf8', cwd: process.cwd(),
  });
  const forced = run({ EDGE_KERNELS: 'scalar' });
  t.equal(forced.status, 0, forced.stderr);
  t.equal(JSON.parse(forced.stdout).variant, 'scalar', 'EDGE_KERNELS=scalar is used');
  const bogus = JSON.parse(run({ EDGE_KERNELS: 'bogus' }).stdout);
  t.equal(bogus.variant, kernelsInfo().supported.at(-1), 'an unknown name falls back to the best variant');
  t.match(bogus.forcedError, /EDGE_KERNELS names no known variant/, 'and says why');
  t.end();
});
