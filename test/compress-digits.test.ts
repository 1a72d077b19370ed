// The digits CNN of models/ from fp32 to a signed int8 package with the installed bin
// (bin/edge-model.js on the compiled dist/): int8 accuracy on the held-out digits within 0.5
// points of fp32, the package at most a third of the fp32 one, signature checks that catch
// tampering, and int8 outputs that agree between ONNX Runtime and the native engine.
import t from 'tap';
// Several edge-model runs under qemu's Haswell emulation: minutes on a loaded 2-core machine (CI at
// 9d1d4e6 saw this file pass every assertion and still hit tap's 300 s file timeout).
t.setTimeout(600_000);
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readNpy } from '../agent/tensor/npy.js';
import { writeDigitFolders } from '../scripts/build-digits-int8.js';
import { qemuSkip, scratchDir, edgeModel, ensureBuilt, ROOT } from './helpers/edge-model-cli.js';
import { ortReference, worstSteps } from './helpers/ort-reference.js';

ensureBuilt();
const bin = (args: string[]) => edgeModel(args);
// A private folder: tap's testdir path is shared by concurrent runs of the same file.
const dir = scratchDir(t);
const data = writeDigitFolders(dir);
const fp32 = join(ROOT, 'models/digits-fp32/model.onnx');
const int8 = join(dir, 'digits-int8.onnx');

let fp32Accuracy = NaN;

t.test('quantize, then eval on the held-out digits: within 0.5 points of fp32', async (t) => {
  const q = bin(['quantize', fp32, int8, '--calib', data.calib]);
  t.equal(q.code, 0, q.stderr);
  t.match(q.stdout, /target auto: the native engine runs every operator: int8 weights/);
  t.match(q.stdout, /quantized: 2 Conv, 2 MaxPool, 1 Flatten, 1 Gemm/);
  t.match(q.stdout, /calibration: 1000 samples from 10 files/);
  const e32 = JSON.parse(bin(['eval', fp32, '--data', data.held, '--labels', data.labels, '--json']).stdout);
  const e8r = bin(['eval', int8, '--data', data.held, '--labels', data.labels, '--json']);
  t.equal(e8r.code, 0, e8r.stderr);
  const e8 = JSON.parse(e8r.stdout);
  t.equal(e8.samples, 2000);
  t.equal(typeof e8.ortOnThisCpu.value, 'number', `ONNX Runtime on this CPU beside the exact figure: ${e8.ortOnThisCpu.value} (${e8.ortOnThisCpu.why})`);
  t.ok(e32.value > 0.9, `fp32 accuracy ${e32.value}`);
  fp32Accuracy = e32.value;
  const points = 100 * Math.abs(e8.value - e32.value);
  t.ok(points <= 0.5, `int8 ${e8.value} vs fp32 ${e32.value}: ${points.toFixed(2)} points`);
  t.ok(e8.bytes <= statSync(fp32).size / 3, `model ${statSync(fp32).size} -> ${e8.bytes} bytes`);
  for (const m of ['precision', 'recall', 'f1', 'auc']) t.ok(e8.all[m] > 0.9 && e8.all[m] <= 1, `${m} ${e8.all[m]}`);
  t.comment(`digits: fp32 accuracy ${e32.value}, int8 ${e8.value} (${points.toFixed(2)} points); model ${statSync(fp32).size} -> ${e8.bytes} bytes`);

  const text = bin(['eval', int8, '--data', data.held, '--labels', data.labels, '--metric', 'f1']);
  t.match(text.stdout, /^f1: 0\.9\d+ on 2000 samples/);
});

t.test('pack both the same way: the int8 package is at most a third of the fp32 one', async (t) => {
  // Like for like: the same pack options for both. (The drift reference of --calib is the
  // same ~15 kB of statistics whatever the precision, so it is checked separately below.)
  const common = ['--template', join(ROOT, 'models/digits-fp32/manifest.json'), '--archive'];
  const p32 = bin(['pack', fp32, '--name', 'digits', '--version', '1.0.0', '--out', join(dir, 'size32'), ...common]);
  t.equal(p32.code, 0, p32.stderr);
  const p8 = bin(['pack', int8, '--name', 'digits', '--version', '1.0.0-int8', '--out', join(dir, 'size8'), ...common]);
  t.equal(p8.code, 0, p8.stderr);
  const folder = (d: string) => ['model.onnx', 'manifest.json'].reduce((sum, f) => sum + statSync(join(dir, d, f)).size, 0);
  const a32 = statSync(join(dir, 'size32.edgepkg')).size;
  const a8 = statSync(join(dir, 'size8.edgepkg')).size;
  t.ok(a8 <= a32 / 3, `.edgepkg ${a32} -> ${a8} bytes (${(a32 / a8).toFixed(2)}x)`);
  t.comment(`digits packages (same pack options): .edgepkg fp32 ${a32} -> int8 ${a8} bytes (ratio ${(a8 / a32).toFixed(3)}); folders ${folder('size32')} -> ${folder('size8')} bytes`);
});

t.test('pack with evaluation and a drift reference from the calibration data', async (t) => {
  const p8 = bin(['pack', int8, '--name', 'digits', '--version', '1.0.0-int8', '--out', join(dir, 'pkg8'), '--template', join(ROOT, 'models/digits-fp32/manifest.json'),
    '--calib', data.calib, '--data', data.held, '--labels', data.labels, '--archive']);
  t.equal(p8.code, 0, p8.stderr);
  t.match(p8.stdout, /qdq-static/);
  t.match(p8.stdout, /accuracy: 0\.9\d+ on 2000 samples/);
  const manifest = JSON.parse(readFileSync(join(dir, 'pkg8/manifest.json'), 'utf8'));
  t.equal(manifest.quantization.scheme, 'qdq-static');
  t.equal(manifest.evaluation.samples, 2000);
  t.equal(manifest.drift.format, 'edge-drift-reference/1', 'drift reference built from the calibration data');
  t.equal(manifest.drift.samples, 1000);
  t.same(manifest.postprocessing.labels.length, 10, 'the template carried the labels over');
  // The agent's own loader accepts what pack wrote.
  const { loadPackage } = await import('../agent/models/package.js');
  const { ACCEPT_UNSIGNED } = await import('../agent/models/verify.js');
  const loaded = await loadPackage(join(dir, 'pkg8'), { verifier: ACCEPT_UNSIGNED });
  t.equal(loaded.manifest.version, '1.0.0-int8');
});

t.test('keygen, sign and verify; tampering and the wrong key are refused', async (t) => {
  const k = bin(['keygen', '--out', join(dir, 'release')]);
  t.equal(k.code, 0, k.stderr);
  t.equal(statSync(join(dir, 'release.key')).mode & 0o777, 0o600, 'private key is owner-only');
  bin(['keygen', '--out', join(dir, 'other')]);
  const pkg = join(dir, 'pkg8');
  const s = bin(['sign', pkg, '--key', join(dir, 'release.key')]);
  t.equal(s.code, 0, s.stderr);
  const v = bin(['verify', pkg, '--pubkey', join(dir, 'release.pub')]);
  t.equal(v.code, 0, v.stderr);
  t.match(v.stdout, /verified .* signed by key [0-9a-f]{16}, 1 files intact/);
  const wrong = bin(['verify', pkg, '--pubkey', join(dir, 'other.pub')]);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /not among the trusted keys/);
  t.notMatch(wrong.stderr, /\n\s+at /, 'no stack trace');

  // The archive form signs and verifies in place.
  const archive = join(dir, 'pkg8.edgepkg');
  t.equal(bin(['sign', archive, '--key', join(dir, 'release.key')]).code, 0);
  t.equal(bin(['verify', archive, '--pubkey', join(dir, 'release.pub')]).code, 0);

  const model = join(pkg, 'model.onnx');
  const bytes = readFileSync(model);
  bytes[bytes.length - 1] ^= 1;
  writeFileSync(model, bytes);
  const tampered = bin(['verify', pkg, '--pubkey', join(dir, 'release.pub')]);
  t.equal(tampered.code, 1);
  t.match(tampered.stderr, /model\.onnx" does not match its sha256/);
});

t.test('the int8 digits agree between ONNX Runtime and the native engine within 1 quantization step', async (t) => {
  const { NativeBackend } = await import('../agent/runtime/native/index.js');
  const { decodeModel } = await import('../agent/onnx/model.js');
  const bytes = readFileSync(int8);
  const model = decodeModel(bytes);
  const dq = model.graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.output![0] === 'logits')!;
  const scale = model.graph!.initializer!.find((i) => i.name === dq.input![1])!;
  const step = new Float32Array(Uint8Array.from(scale.rawData!).buffer)[0];
  const native = NativeBackend.load(bytes, { name: 'digits-int8' });
  const reference = await ortReference(bytes);
  const x = readNpy(join(data.held, 'heldout.npy'));
  const n = 64;
  const batch = (x.data as Float32Array).slice(0, n * 784);
  const a = (await reference.exact.run({ input: new ort.Tensor('float32', batch, [n, 1, 28, 28]) })).logits.data as Float32Array;
  const plain = (await reference.plain.run({ input: new ort.Tensor('float32', batch, [n, 1, 28, 28]) })).logits.data as Float32Array;
  const b = (await native.run({ input: { dtype: 'float32', shape: [n, 1, 28, 28], data: batch } })).logits.data as Float32Array;
  t.equal(b.length, a.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / step);
  t.ok(worst <= 1 + 1e-6, `largest difference ${worst.toFixed(3)} steps (step ${step})`);
  const worstPlain = worstSteps(plain, b, step);
  if (reference.plainIsExact) t.ok(worstPlain <= 1 + 1e-6, `plain ONNX Runtime is exact here (${reference.why}): ${worstPlain.toFixed(3)} steps`);
  else t.comment(`plain ONNX Runtime saturates here (${reference.why}): ${worstPlain.toFixed(3)} steps`);
  await native.dispose();
  await reference.release();
});

t.test('on an x86 CPU without VNNI (qemu Haswell): eval is exact, plain ONNX Runtime is beside it, --target ort-x86 holds the bar in plain ONNX Runtime', { skip: qemuSkip() }, async (t) => {
  const haswell = (args: string[]) => {
    const r = edgeModel(args, { qemuCpu: 'Haswell' });
    t.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const e8 = haswell(['eval', int8, '--data', data.held, '--labels', data.labels, '--json']);
  t.match(e8.ortOnThisCpu.why, /without VNNI/, e8.ortOnThisCpu.why);
  t.ok(100 * Math.abs(e8.value - fp32Accuracy) <= 0.5, `exact int8 ${e8.value} vs fp32 ${fp32Accuracy} on Haswell`);
  t.equal(e8.ortOnThisCpu.sameAsExact, false);
  const forX86 = join(dir, 'digits-int8-ort-x86.onnx');
  const q = bin(['quantize', fp32, forX86, '--calib', data.calib, '--target', 'ort-x86']);
  t.equal(q.code, 0, q.stderr);
  const ex = haswell(['eval', forX86, '--data', data.held, '--labels', data.labels, '--json']);
  t.equal(ex.ortOnThisCpu.sameAsExact, true, 'uint8 weights: plain ONNX Runtime is exact');
  t.ok(100 * Math.abs(ex.ortOnThisCpu.value - fp32Accuracy) <= 0.5, `--target ort-x86 in plain ONNX Runtime on Haswell: ${ex.ortOnThisCpu.value} vs fp32 ${fp32Accuracy}`);
  t.comment(`Haswell digits: int8 exact ${e8.value}, plain ONNX Runtime ${e8.ortOnThisCpu.value}; --target ort-x86 plain ONNX Runtime ${ex.ortOnThisCpu.value}; fp32 ${fp32Accuracy}`);
});

t.test('the shipped models/digits-int8 (built by scripts/build-digits-int8.ts) holds the bar too', async (t) => {
  const shipped = join(ROOT, 'models/digits-int8/model.onnx');
  const e8 = JSON.parse(bin(['eval', shipped, '--data', data.held, '--labels', data.labels, '--json']).stdout);
  t.ok(100 * Math.abs(e8.value - fp32Accuracy) <= 0.5, `shipped int8 ${e8.value} vs fp32 ${fp32Accuracy}`);
  t.ok(statSync(shipped).size <= statSync(fp32).size / 3, `shipped model ${statSync(shipped).size} bytes`);
  const manifest = JSON.parse(readFileSync(join(ROOT, 'models/digits-int8/manifest.json'), 'utf8'));
  t.equal(manifest.quantization.producer, 'edge-model');
});
