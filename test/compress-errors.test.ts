// A user's mistakes get one clear sentence and a non-zero exit, never a stack trace: a file
// that is not ONNX, calibration data that does not fit the model, an empty calibration
// folder, a bad key, labels that do not match the data.
import t, { type Test } from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeNpy } from '../agent/tensor/npy.js';
import { scratchDir, edgeModel, ROOT, type CliResult } from './helpers/edge-model-cli.js';

// A private folder: tap's testdir path is shared by concurrent runs of the same file.
const dir = scratchDir(t);
const digits = join(ROOT, 'models/digits-fp32/model.onnx');

function userError(t: Test, r: CliResult, pattern: RegExp): void {
  t.equal(r.code, 1, 'exit code 1');
  t.match(r.stderr, pattern);
  t.match(r.stderr, /^edge-model: /, 'one line that names the tool');
  t.notMatch(r.stderr, /\n\s+at |internal error/, 'no stack trace');
  t.equal(r.stdout, '', 'nothing on stdout');
}

const calib = join(dir, 'calib');
mkdirSync(calib);
writeNpy(join(calib, 'a.npy'), { dtype: 'float32', shape: [4, 1, 28, 28], data: new Float32Array(4 * 784).fill(0.5) });

t.test('a file that is not ONNX', async (t) => {
  const bogus = join(dir, 'notes.onnx');
  writeFileSync(bogus, 'these are my notes, not a model\n'.repeat(20));
  userError(t, edgeModel(['quantize', bogus, join(dir, 'out.onnx'), '--calib', calib]), /notes\.onnx is not an ONNX model.*expected an ONNX ModelProto/);
  userError(t, edgeModel(['inspect', bogus]), /is not an ONNX model/);
  // The TypeScript source behaves the same as the installed bin.
  userError(t, edgeModel(['inspect', join(dir, 'missing.onnx')], { tsx: true }), /cannot read model .*missing\.onnx: no such file/);
});

t.test('calibration data that does not match the model input', async (t) => {
  const wrong = join(dir, 'wrong');
  mkdirSync(wrong);
  writeNpy(join(wrong, 'rgb.npy'), { dtype: 'float32', shape: [2, 3, 32, 32], data: new Float32Array(2 * 3 * 32 * 32) });
  const r = edgeModel(['quantize', digits, join(dir, 'out.onnx'), '--calib', wrong]);
  userError(t, r, /rgb\.npy has shape \(2, 3, 32, 32\), but model input "input" expects \(N, 1, 28, 28\)/);
  const bad = join(dir, 'bad-npy');
  mkdirSync(bad);
  writeFileSync(join(bad, 'x.npy'), 'not numpy');
  userError(t, edgeModel(['quantize', digits, join(dir, 'out.onnx'), '--calib', bad]), /x\.npy is not a NumPy \.npy file/);
});

t.test('an empty or missing calibration folder', async (t) => {
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  writeFileSync(join(empty, 'README.txt'), 'put .npy files here');
  userError(t, edgeModel(['quantize', digits, join(dir, 'out.onnx'), '--calib', empty]), /calibration folder .*empty holds no \.npy files; expected one or more float32 \.npy arrays/);
  userError(t, edgeModel(['quantize', digits, join(dir, 'out.onnx'), '--calib', join(dir, 'nope')]), /cannot read calibration folder .*nope: no such folder/);
  userError(t, edgeModel(['quantize', digits, join(dir, 'out.onnx')]), /static quantization needs --calib DIR/);
});

t.test('an int8 model given to quantize', async (t) => {
  userError(t, edgeModel(['quantize', join(ROOT, 'models/digits-int8/model.onnx'), join(dir, 'twice.onnx'), '--calib', join(dir, 'calib')]),
    /model\.onnx is already quantized \(\d+ QuantizeLinear\/DequantizeLinear\/QLinear\/Integer operators\); quantize the fp32 model/);
});

t.test('a bad key', async (t) => {
  const pkg = join(dir, 'pkg');
  const p = edgeModel(['pack', digits, '--name', 'digits', '--version', '1.0.0', '--out', pkg]);
  t.equal(p.code, 0, p.stderr);
  const junk = join(dir, 'junk.key');
  writeFileSync(junk, '-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n');
  userError(t, edgeModel(['sign', pkg, '--key', junk]), /junk\.key is not a PEM private key; expected the PREFIX\.key that "edge-model keygen/);
  userError(t, edgeModel(['sign', pkg, '--key', join(dir, 'absent.key')]), /cannot read private key .*absent\.key: no such file/);
  t.equal(edgeModel(['keygen', '--out', join(dir, 'k')]).code, 0);
  userError(t, edgeModel(['verify', pkg, '--pubkey', join(dir, 'k.pub')]), /not signed/);
  const withPublic = edgeModel(['sign', pkg, '--key', join(dir, 'k.pub')]);
  userError(t, withPublic, /k\.pub is a public key; sign with the private key of the pair/);
  t.notMatch(withPublic.stderr, /refused|error:[0-9A-F]{8}/, 'does not blame the package, no OpenSSL code');
  t.equal(edgeModel(['sign', pkg, '--key', join(dir, 'k.key')]).code, 0);
  userError(t, edgeModel(['verify', pkg, '--pubkey', junk]), /not a PEM public key/);
  userError(t, edgeModel(['keygen', '--out', join(dir, 'k')]), /k\.key already exists; refusing to overwrite a key/);
});

t.test('labels that do not fit the data, and bad option values', async (t) => {
  const labels = join(dir, 'labels.txt');
  writeFileSync(labels, '1\n2\n3\n');
  userError(t, edgeModel(['eval', digits, '--data', calib, '--labels', labels]), /labels\.txt has 3 labels, but the data folder holds 4 samples/);
  writeFileSync(labels, '1\n2\ncat\n4\n');
  userError(t, edgeModel(['eval', digits, '--data', calib, '--labels', labels]), /line 3: "cat" is not a number/);
  writeFileSync(labels, '1\n2\n3\n12\n');
  userError(t, edgeModel(['eval', digits, '--data', calib, '--labels', labels]), /label #4 is 12; accuracy expects class indices 0\.\.9/);
  const r = edgeModel(['prune', digits, join(dir, 'p.onnx'), '--sparsity', '1.5']);
  t.equal(r.code, 1);
  t.match(r.stderr, /expected a fraction in \[0, 1\), got "1\.5"/);
  const m = edgeModel(['quantize', digits, join(dir, 'o.onnx'), '--calib', calib, '--method', 'median']);
  t.not(m.code, 0);
  t.match(m.stderr, /Allowed choices are minmax, percentile, entropy/);
});
