// Model packages: loading checks each kind of bad package and names the package and the
// problem; the .edgepkg archive round-trips and refuses hostile entries; an agent serving a
// version keeps serving it when a bad package is offered as the next one.
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ACCEPT_UNSIGNED } from '../agent/models/verify.js';
import { loadPackage } from '../agent/models/package.js';
import { waitFor } from './helpers/wait.js';
import { extractArchive, packArchive } from '../agent/models/archive.js';
import { DataType, encodeModel, makeModel, makeNode, makeValueInfo } from '../agent/onnx/model.js';
import { copyPackage, digitBatch, FP32, INT8, postJson, readManifest, replaceFile, startAgent, tempDir, writeManifest, FP32_VERSION, INT8_VERSION } from './helpers/model-packages.js';

const work = tempDir();
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** Each way a package can be bad: how to break a copy, and what the refusal must say. */
const BAD: [string, (dir: string) => void, RegExp][] = [
  ['manifest is not JSON', (d) => writeFileSync(path.join(d, 'manifest.json'), '{"name": '), /manifest.json is not valid JSON/],
  ['manifest breaks the schema', (d) => writeManifest(d, { ...readManifest(d), version: 'one', colour: 'red' }), /unknown key "colour".*\/version: must be a semantic version/s],
  ['manifest has a bad dtype', (d) => { const m = readManifest(d); m.inputs[0].dtype = 'float64'; writeManifest(d, m); }, /\/inputs\/0\/dtype: must be one of "float32"/],
  ['manifest is missing', (d) => unlinkSync(path.join(d, 'manifest.json')), /manifest.json is missing/],
  ['model file is missing', (d) => unlinkSync(path.join(d, 'model.onnx')), /file model.onnx is listed in the manifest but missing/],
  ['model file does not match its hash', (d) => { const b = readFileSync(path.join(d, 'model.onnx')); b[b.length - 1] ^= 0xff; writeFileSync(path.join(d, 'model.onnx'), b); }, /file model.onnx does not match its sha256/],
  ['model file has another size', (d) => writeFileSync(path.join(d, 'model.onnx'), Buffer.concat([readFileSync(path.join(d, 'model.onnx')), Buffer.from([0])])), /model.onnx has \d+ bytes, the manifest says \d+/],
  ['model file is not ONNX', (d) => replaceFile(d, 'model.onnx', new TextEncoder().encode('this is not a model')), /is not an ONNX model/],
  ['manifest input name disagrees with the model', (d) => { const m = readManifest(d); m.inputs[0].name = 'image'; writeManifest(d, m); }, /the manifest's inputs \[image\] are not the model's inputs \[input\]/],
  ['manifest input shape disagrees with the model', (d) => { const m = readManifest(d); m.inputs[0].shape = ['N', 3, 28, 28]; writeManifest(d, m); }, /input input: the manifest's shape \[N, 3, 28, 28\] disagrees with the model's \[N, 1, 28, 28\]/],
  ['manifest output dtype disagrees with the model', (d) => { const m = readManifest(d); m.outputs[0].dtype = 'int8'; writeManifest(d, m); }, /output logits: the manifest says int8, the model has float/],
  ['labels disagree with the classes', (d) => { const m = readManifest(d); m.postprocessing.labels = ['a', 'b']; writeManifest(d, m); }, /labels has 2 names but output logits has 10 classes/],
  ['model.onnx is not listed', (d) => { const m = readManifest(d); delete m.files['model.onnx']; m.files['other.bin'] = { sha256: '0'.repeat(64), bytes: 0 }; writeManifest(d, m); }, /does not list model.onnx/],
];

t.test('the sample packages load and say what they are', async (t) => {
  for (const dir of [FP32, INT8]) {
    const p = await loadPackage(dir, { verifier: ACCEPT_UNSIGNED });
    t.equal(p.manifest.name, 'digits');
    t.same(p.manifest.inputs, [{ name: 'input', dtype: 'float32', shape: ['N', 1, 28, 28] }]);
    t.ok(p.manifest.evaluation!.value > 0.9, `${path.basename(dir)} recorded its held-out accuracy (${p.manifest.evaluation!.value})`);
    t.match(p.digest, /^[0-9a-f]{64}$/);
  }
});

t.test('each bad package is refused with the package and the problem named', async (t) => {
  for (const [what, breakIt, problem] of BAD) {
    const dir = copyPackage(FP32, work);
    breakIt(dir);
    const err = await loadPackage(dir, { verifier: ACCEPT_UNSIGNED }).then(() => undefined, (e: unknown) => e as { code: string; message: string });
    t.ok(err, `${what}: refused`);
    t.equal(err?.code, 'EDGE_PACKAGE_INVALID', `${what}: code`);
    t.match(err?.message, dir, `${what}: names the package`);
    t.match(err?.message, problem, `${what}: says the problem (${err?.message})`);
  }
});

t.test('an agent keeps serving its version when each bad package is offered', async (t) => {
  const running = await startAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }] });
  t.teardown(() => running.stop());
  const one = digitBatch(0, 1);
  const ask = () => postJson(`${running.url}/v1/models/digits/infer`, { inputs: { input: { shape: one.shape, data: Array.from(one.data) } } });
  const before = await ask();
  t.equal(before.status, 200);
  for (const [what, breakIt, problem] of BAD) {
    const dir = copyPackage(INT8, work);
    breakIt(dir);
    await t.rejects(running.agent.models.activate('digits', dir), { code: 'EDGE_PACKAGE_INVALID', message: problem }, `${what}: activation refused`);
    const after = await ask();
    t.equal(after.status, 200, `${what}: still serving`);
    t.equal(after.body.version, FP32_VERSION, `${what}: still the old version`);
    t.same(after.body.outputs, before.body.outputs, `${what}: same answers`);
    const listed = running.agent.models.list()[0] as { lastError?: { package: string } };
    t.equal(listed.lastError?.package, dir, `${what}: /v1/models shows the refused package`);
  }
  const ready = await fetch(`${running.url}/readyz`);
  t.equal(ready.status, 200, 'still ready: the configured model serves');
  // A good package afterwards is taken, and clears the error.
  await running.agent.models.activate('digits', INT8, 'ort');
  const now = await ask();
  t.equal(now.body.version, INT8_VERSION);
  t.notOk((running.agent.models.list()[0] as { lastError?: unknown }).lastError, 'error cleared by a good package');
});

t.test('a package that loads but fails its warm-up inference is refused', async (t) => {
  // Reshape of a [N,4] input to [3]: parses and loads, fails when run.
  const dir = copyPackage(FP32, work);
  const bytes = encodeModel(makeModel({
    name: 'bad-at-run',
    node: [makeNode('Reshape', ['x', 'shape'], ['y'])],
    initializer: [{ name: 'shape', dims: [1], dataType: DataType.INT64, rawData: new Uint8Array(new BigInt64Array([3n]).buffer) }],
    input: [makeValueInfo('x', DataType.FLOAT, ['N', 4])],
    output: [makeValueInfo('y', DataType.FLOAT, [3])],
  }));
  replaceFile(dir, 'model.onnx', bytes);
  const m = readManifest(dir);
  m.inputs = [{ name: 'x', dtype: 'float32', shape: ['N', 4] }];
  m.outputs = [{ name: 'y', dtype: 'float32', shape: [3] }];
  delete m.postprocessing;
  writeManifest(dir, m);
  await loadPackage(dir, { verifier: ACCEPT_UNSIGNED }); // the package itself is consistent
  const running = await startAgent({ models: [{ name: 'bad', package: dir, backend: 'ort' }, { name: 'good', package: FP32, backend: 'ort' }] });
  t.teardown(() => running.stop());
  const ready = await fetch(`${running.url}/readyz`);
  const body = await ready.json() as { reasons: string[] };
  t.equal(ready.status, 503, 'not ready: a configured model never warmed up');
  t.match(body.reasons.join(' '), /model bad failed to load: .*warm-up inference failed on ort/, 'the reason names the model and the warm-up');
  const good = await postJson(`${running.url}/v1/models/good/infer`, { inputs: { input: { shape: [1, 1, 28, 28], data: Array.from(digitBatch(0, 1).data) } } });
  t.equal(good.status, 200, 'the other model serves');
  const bad = await postJson(`${running.url}/v1/models/bad/infer`, { inputs: { x: [[1, 2, 3, 4]] } });
  t.equal(bad.status, 503, 'the refused model answers 503, not ready');
});

t.test('.edgepkg archives round-trip and the agent serves one', async (t) => {
  const file = path.join(work, 'digits.edgepkg');
  await packArchive(INT8, file);
  const dest = path.join(work, 'unpacked');
  await extractArchive(file, dest, { verifier: ACCEPT_UNSIGNED });
  const p = await loadPackage(dest, { verifier: ACCEPT_UNSIGNED });
  t.equal(p.manifest.version, INT8_VERSION);
  t.same(readFileSync(path.join(dest, 'model.onnx')), readFileSync(path.join(INT8, 'model.onnx')), 'model bytes intact');
  const running = await startAgent({ models: [{ name: 'digits', package: file, backend: 'ort' }] });
  t.teardown(() => running.stop());
  const res = await postJson(`${running.url}/v1/models/digits/infer`, { inputs: { input: { shape: [1, 1, 28, 28], data: Array.from(digitBatch(5, 1).data) } } });
  t.equal(res.status, 200);
  t.equal(res.body.version, INT8_VERSION);
  const unpacked = path.join(running.agent.config.dataDir, 'packages');
  t.equal(readdirSync(unpacked).length, 1, 'the archive was unpacked under dataDir/packages');
  // Two swaps later the archive's version is neither active nor previous: its files go.
  await running.agent.models.activate('digits', FP32, 'ort');
  t.equal(readdirSync(unpacked).length, 1, 'kept while it is the previous version (rollback)');
  await running.agent.models.activate('digits', copyPackage(FP32, work), 'ort');
  await waitFor(() => readdirSync(unpacked).length === 0, { timeoutMs: 5000, what: 'the unpacked archive to be deleted' });
  t.pass('deleted once no loaded version uses it');
});

/** A tar archive built by hand, so that entries can be as hostile as an attacker likes. */
function tarOf(entries: { name: string; type?: string; body?: string; link?: string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(body.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(e.type ?? '0', 156);
    if (e.link) h.write(e.link, 157, 100);
    h.write('ustar\0' + '00', 257);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

t.test('hostile archives are refused before anything is written', async (t) => {
  const manifest = readFileSync(path.join(FP32, 'manifest.json'), 'utf8');
  const cases: [string, Buffer, RegExp][] = [
    ['path traversal', tarOf([{ name: 'manifest.json', body: manifest }, { name: '../escaped.txt', body: 'x' }]), /"..\/escaped.txt" is not a plain file name/],
    ['absolute path', tarOf([{ name: 'manifest.json', body: manifest }, { name: '/tmp/abs.txt', body: 'x' }]), /is not a plain file name/],
    ['nested folder', tarOf([{ name: 'manifest.json', body: manifest }, { name: 'sub/file.txt', body: 'x' }]), /is not a plain file name/],
    ['symlink', tarOf([{ name: 'manifest.json', body: manifest }, { name: 'model.onnx', type: '2', link: '/etc/passwd' }]), /is a SymbolicLink, only plain files are allowed/],
    ['hard link', tarOf([{ name: 'manifest.json', body: manifest }, { name: 'model.onnx', type: '1', link: 'manifest.json' }]), /is a Link, only plain files are allowed/],
    ['duplicate entry', tarOf([{ name: 'manifest.json', body: manifest }, { name: 'manifest.json', body: '{}' }]), /appears twice/],
    ['no manifest', tarOf([{ name: 'model.onnx', body: 'x' }]), /has no manifest.json/],
  ];
  for (const [what, bytes, problem] of cases) {
    const file = path.join(work, `${what.replace(/ /g, '-')}.edgepkg`);
    writeFileSync(file, bytes);
    const dest = path.join(work, `out-${what.replace(/ /g, '-')}`);
    await t.rejects(extractArchive(file, dest, { verifier: ACCEPT_UNSIGNED }), { code: 'EDGE_PACKAGE_INVALID', message: problem }, `${what}: refused`);
    t.notOk(existsSync(dest), `${what}: nothing extracted`);
  }
  t.notOk(existsSync(path.join(work, 'escaped.txt')), 'nothing escaped the extraction folder');
  const garbage = path.join(work, 'garbage.edgepkg');
  writeFileSync(garbage, 'not a tar at all');
  await t.rejects(extractArchive(garbage, path.join(work, 'out-garbage'), { verifier: ACCEPT_UNSIGNED }), { code: 'EDGE_PACKAGE_INVALID', message: /not a readable .edgepkg archive/ });
  mkdirSync(path.join(work, 'full'), { recursive: true });
  writeFileSync(path.join(work, 'full', 'x'), 'x');
  await packArchive(FP32, path.join(work, 'ok.edgepkg'));
  await t.rejects(extractArchive(path.join(work, 'ok.edgepkg'), path.join(work, 'full'), { verifier: ACCEPT_UNSIGNED }), /is not empty/, 'never extracts over existing files');
});
