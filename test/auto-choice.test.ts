// backend 'auto' on a model the native engine runs whole: a cheap model stays native without
// ONNX Runtime being opened; a costly one is timed on both at warm-up and the faster is kept.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../agent/native.js';
import { ACCEPT_UNSIGNED } from '../agent/models/verify.js';
import { loadPackage } from '../agent/models/package.js';
import { COMPARE_ABOVE_MS, openBackend } from '../agent/runtime/choose.js';
import { packModel } from '../tools/compress/pack.js';
import { QdqGraph } from './helpers/engine-graphs.js';
import { tempDir } from './helpers/model-packages.js';

t.setTimeout(180_000);

const ort = { threads: 1, graphOptimizationLevel: 'all' as const };

t.test('a cheap model: native, ONNX Runtime never opened', async (t) => {
  const pkg = await loadPackage(path.join(packageRoot, 'models/digits-int8'), { verifier: ACCEPT_UNSIGNED });
  const opened = await openBackend(pkg, 'auto', ort);
  t.teardown(() => opened.backend.dispose());
  t.equal(opened.choice.chosen, 'native');
  t.notMatch(opened.choice.reason, /measured|ONNX Runtime/, `no comparison below ${COMPARE_ABOVE_MS} ms: ${opened.choice.reason}`);
});

t.test('a costly model: both timed at warm-up, the faster kept, the figures in the reason', async (t) => {
  // 3x3 convolutions at 112x112 with 64 channels: about 1 G multiply-adds, tens of
  // milliseconds, far above the limit on any CPU.
  const g = new QdqGraph(7);
  const x = g.input('x', [1, 16, 112, 112], 0.02, 128);
  let y = g.conv(x, 64, 3, { pad: 1, act: 'relu', perChannel: true });
  y = g.conv(y, 64, 3, { pad: 1, act: 'relu', perChannel: true });
  y = g.conv(y, 64, 3, { pad: 1, act: 'relu', perChannel: true });
  y = g.conv(y, 8, 1, { perChannel: true });
  const dir = tempDir();
  const file = path.join(dir, 'big.onnx');
  writeFileSync(file, g.model('x', [1, 16, 112, 112], y));
  const out = path.join(dir, 'pkg');
  await packModel(file, { name: 'big', version: '1.0.0', out, task: 'regression' });
  const pkg = await loadPackage(out, { verifier: ACCEPT_UNSIGNED });
  const opened = await openBackend(pkg, 'auto', ort);
  t.teardown(() => opened.backend.dispose());
  const m = /measured at warm-up: native ([\d.]+) ms, ONNX Runtime ([\d.]+) ms: (native|ONNX Runtime) is faster/.exec(opened.choice.reason);
  if (!m) {
    // Only where ONNX Runtime saturates int8 products is it not timed: the exact engine stays.
    t.match(opened.choice.reason, /ONNX Runtime not taken: .*saturat/, `the reason says why ONNX Runtime was not timed: ${opened.choice.reason}`);
    t.equal(opened.choice.chosen, 'native');
    return;
  }
  const [nativeMs, ortMs] = [Number(m[1]), Number(m[2])];
  t.ok(nativeMs > COMPARE_ABOVE_MS, `the native warm-up (${nativeMs} ms) is above the limit, so it was compared`);
  t.equal(opened.choice.chosen, nativeMs <= ortMs ? 'native' : 'ort', `the faster is kept: ${opened.choice.reason}`);
  t.equal(opened.backend.kind, opened.choice.chosen, 'and it is the backend that serves');
});
