// One inference split across the engine's thread pool: convolutions (direct few-channel, depthwise,
// pointwise, im2col) and GEMMs give the same bytes on 1, 2, 3 and "all" threads, and the same as
// the scalar kernels (the exact integer oracle) on one thread; runtime.threads reaches the engine.
import t from 'tap';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../agent/native.js';
import { ACCEPT_UNSIGNED } from '../agent/models/verify.js';
import { loadPackage } from '../agent/models/package.js';
import { openBackend } from '../agent/runtime/choose.js';
import { kernelsInfo, setKernelVariant } from '../agent/kernels/index.js';
import { NativeBackend } from '../agent/runtime/native/index.js';
import { QdqGraph, randomInput } from './helpers/engine-graphs.js';

t.setTimeout(120_000);

// Every conv algorithm at sizes above the engine's split threshold (2^18 multiply-accumulates),
// plus a residual add and a fully connected layer; 66x66 makes the direct conv's last band short.
function model(): { bytes: Uint8Array; shape: number[]; inputs: Float32Array[] } {
  const g = new QdqGraph(181);
  const shape = [1, 2, 66, 66];
  const x = g.input('x', shape, 0.02, 128);
  let y = g.conv(x, 16, 3, { stride: 2, pad: 1, act: 'relu6', perChannel: true }); // direct (2 input channels)
  const e = g.conv(y, 64, 1, { act: 'relu6', perChannel: true });                  // pointwise GEMM
  let d = g.conv(e, 64, 3, { pad: 1, group: 64, act: 'relu6', perChannel: true }); // depthwise
  d = g.conv(d, 16, 1, { perChannel: true });
  y = g.binary('Add', y, d);                                                        // residual
  y = g.conv(y, 48, 3, { stride: 2, pad: 1, act: 'relu', perChannel: true });       // im2col
  y = g.conv(y, 48, 3, { pad: 1, group: 4, act: 'relu', perChannel: true });        // grouped im2col
  y = g.conv(y, 8, 3, { stride: 2, pad: 1, act: 'relu', perChannel: true });        // 8x9x9
  y = g.conv(y, 160, 3, { pad: 1, act: 'relu', perChannel: true });                 // one im2col tile: split by columns
  y = g.conv(y, 8, 1, { perChannel: true });
  y = g.gemm(g.flatten(y), 600, { perChannel: true });                               // 648 x 600: split by the pool
  const bytes = g.model('x', ['N', 2, 66, 66], y);
  const inputs = Array.from({ length: 4 }, () => randomInput(g.rand, shape, 0.02, 128));
  return { bytes, shape, inputs };
}

const { bytes, inputs } = model();
const outputs = (threads: number): { bytes: Uint8Array[]; threads: unknown } => {
  const b = NativeBackend.load(bytes, { name: `threads-${threads}`, threads });
  try {
    return { bytes: inputs.map((x) => new Uint8Array((b.runSync([x])[0] as Float32Array).slice().buffer)), threads: b.describe().threads };
  } finally {
    void b.dispose();
  }
};
const differing = (a: Uint8Array[], b: Uint8Array[]): number => a.filter((v, i) => Buffer.compare(v, b[i]) !== 0).length;

t.test('N threads give the bytes of one thread', async (t) => {
  const one = outputs(1);
  t.equal(one.threads, 1, 'the one-thread engine says 1');
  const distinct = new Set(one.bytes.map((b) => Buffer.from(b).toString('hex'))).size;
  t.equal(distinct, inputs.length, 'each input gives its own output (so a mix-up would show)');
  for (const n of [2, 3]) {
    const many = outputs(n);
    t.equal(many.threads, n, `the engine runs ${n} threads`);
    t.equal(differing(one.bytes, many.bytes), 0, `${n} threads: all ${inputs.length} outputs bit-identical to 1 thread`);
  }
  const all = outputs(0);
  t.equal(all.threads, os.availableParallelism(), 'threads 0 means every hardware thread');
  t.equal(differing(one.bytes, all.bytes), 0, 'all hardware threads: bit-identical to 1 thread');
});

t.test('the SIMD kernels on 3 threads give the scalar oracle bytes on 1 thread', async (t) => {
  const best = kernelsInfo().variant;
  t.teardown(() => setKernelVariant(best));
  setKernelVariant('scalar');
  const scalar = outputs(1);
  setKernelVariant(best);
  const simd = outputs(3);
  t.equal(differing(scalar.bytes, simd.bytes), 0, `${best} on 3 threads equals scalar on 1 thread`);
});

t.test('runtime.threads reaches the native engine: 0 is every core', async (t) => {
  const pkg = await loadPackage(path.join(packageRoot, 'models/digits-int8'), { verifier: ACCEPT_UNSIGNED });
  for (const [threads, want] of [[0, os.availableParallelism()], [1, 1], [2, 2]]) {
    const opened = await openBackend(pkg, 'native', { threads, graphOptimizationLevel: 'all' });
    t.equal(opened.backend.describe().threads, want, `runtime.threads ${threads}: the engine runs ${want} thread(s)`);
    await opened.backend.dispose();
  }
});
